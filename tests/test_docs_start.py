"""The getting-started pages, run: the quick start, sign-in providers, your own user model
and writing an adapter. Each test loads a sample from docs/samples as a reader would run it
and drives it through the real ``/auth`` routes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2
import pytest

from tests.support.apps import client_for, csrf_token, set_cookies
from tests.support.docs import load_sample
from tests.support.fake_github import FakeGitHub
from tests.support.oauth import APP_ORIGIN, ProviderBrowser, app_client, begin_sign_in, land
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProviderServer

SECRET = "a-docs-secret-that-is-long-enough-0123456789"
SESSION_COOKIE = "authjs.session-token"
HTML = {"accept": "text/html"}


@pytest.fixture(autouse=True)
def auth_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_SECRET", SECRET)


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


async def sign_in_with_credentials(
    client: httpx2.AsyncClient,
    email: str = "ada@example.com",
    password: str = "correct horse",
    *,
    callback_url: str = "/",
    provider: str = "credentials",
) -> httpx2.Response:
    """What the built-in sign-in page's form does: the CSRF token, then the form post."""
    token = await csrf_token(client)
    return await client.post(
        f"/auth/callback/{provider}",
        data={
            "csrfToken": token,
            "email": email,
            "password": password,
            "callbackUrl": callback_url,
        },
    )


async def sign_out(client: httpx2.AsyncClient) -> httpx2.Response:
    token = await csrf_token(client)
    return await client.post("/auth/signout", data={"csrfToken": token})


def signed_in(response: httpx2.Response) -> bool:
    cookie = set_cookies(response).get(SESSION_COOKIE, "")
    return bool(cookie) and not cookie.startswith(f"{SESSION_COOKIE}=;")


# -- the quick start ---------------------------------------------------------------------


async def test_quickstart_starlette_signs_in_and_shows_the_page() -> None:
    app = load_sample("quickstart_starlette.py").app
    async with client_for(app) as client:
        # A browser asking for the page is sent to sign in, and told to come back.
        page = await client.get("/", headers=HTML)
        assert page.status_code == 303
        location = page.headers["location"]
        assert urlsplit(location).path == "/auth/signin"
        assert query_of(location)["callbackUrl"] == "http://testserver/"
        # Anything else is told 401.
        refused = await client.get("/")
        assert refused.status_code == 401 and refused.json() == {"error": "SessionRequired"}

        sign_in_page = await client.get(location)
        assert sign_in_page.status_code == 200
        assert 'name="email"' in sign_in_page.text and 'name="password"' in sign_in_page.text

        wrong = await sign_in_with_credentials(client, password="wrong")
        assert wrong.status_code == 302
        assert wrong.headers["location"] == (
            "http://testserver/auth/signin?error=CredentialsSignin&code=credentials"
        )
        told = await client.get(wrong.headers["location"])
        assert "Those details did not match an account." in told.text
        assert (await client.get("/auth/session")).json() is None

        done = await sign_in_with_credentials(client)
        assert done.status_code == 302 and done.headers["location"] == "http://testserver/"
        assert signed_in(done)

        page = await client.get("/", headers=HTML)
        assert page.status_code == 200
        assert page.text.startswith("Hello Ada, signed in until ")

        session = (await client.get("/auth/session")).json()
        assert session["user"] == {"name": "Ada", "email": "ada@example.com"}
        assert session["expires"].endswith("Z")

        assert (await sign_out(client)).status_code == 302
        assert (await client.get("/auth/session")).json() is None
        assert (await client.get("/", headers=HTML)).status_code == 303


async def test_quickstart_fastapi_gives_the_session_to_its_dependencies() -> None:
    app = load_sample("quickstart_fastapi.py").app
    async with client_for(app) as client:
        assert (await client.get("/")).json() == {"signedIn": False, "signIn": "/auth/signin"}
        me = await client.get("/me")
        assert me.status_code == 401 and me.json() == {"detail": "SessionRequired"}

        assert signed_in(await sign_in_with_credentials(client))

        home = (await client.get("/")).json()
        assert home["signedIn"] is True
        assert home["user"] == {"name": "Ada", "email": "ada@example.com"}
        assert (await client.get("/me")).json() == {
            "id": "1",
            "name": "Ada",
            "email": "ada@example.com",
        }


async def test_quickstart_asgi_reads_the_session_from_the_scope() -> None:
    app = load_sample("quickstart_asgi.py").app
    async with client_for(app) as client:
        anonymous = await client.get("/anything")
        assert anonymous.status_code == 401
        assert anonymous.json() == {"error": "sign in at /auth/signin"}
        assert (await client.get("/auth/signin")).status_code == 200

        assert signed_in(await sign_in_with_credentials(client))

        hello = await client.get("/anything")
        assert hello.status_code == 200 and hello.json() == {"hello": "Ada"}


async def test_quickstart_session_shows_its_fields_and_updates() -> None:
    app = load_sample("quickstart_session.py").app
    async with client_for(app) as client:
        assert (await client.get("/")).json() == {"signedIn": False}
        assert signed_in(await sign_in_with_credentials(client))

        seen = (await client.get("/")).json()
        assert seen["id"] == "1" and seen["name"] == "Ada" and seen["email"] == "ada@example.com"
        assert seen["image"] is None
        assert seen["expires"].endswith("+00:00")
        assert seen["json"]["user"] == {"name": "Ada", "email": "ada@example.com", "theme": "light"}
        assert seen["json"] == (await client.get("/auth/session")).json()

        updated = await client.post("/theme?theme=dark")
        assert updated.status_code == 200
        assert updated.json()["user"]["theme"] == "dark"
        assert signed_in(updated), "the answer carries the re-issued cookie"
        assert (await client.get("/auth/session")).json()["user"]["theme"] == "dark"


# -- sign-in providers -------------------------------------------------------------------


async def test_providers_credentials_fields_and_codes() -> None:
    app = load_sample("providers_credentials.py").app
    async with client_for(app) as client:
        page = (await client.get("/auth/signin")).text
        assert 'name="username"' in page and "Staff account" in page
        assert 'action="http://testserver/auth/callback/staff"' in page

        async def attempt(username: str, password: str) -> httpx2.Response:
            token = await csrf_token(client)
            return await client.post(
                "/auth/callback/staff",
                data={"csrfToken": token, "username": username, "password": password},
            )

        wrong = await attempt("ada", "wrong")
        assert query_of(wrong.headers["location"]) == {
            "error": "CredentialsSignin",
            "code": "credentials",
        }
        locked = await attempt("bob", "battery staple")
        assert query_of(locked.headers["location"]) == {
            "error": "CredentialsSignin",
            "code": "account_locked",
        }
        assert signed_in(await attempt("Ada", "correct horse"))
        session = (await client.get("/")).json()
    assert session["id"] == "1" and session["user"] == {"name": "Ada"}


@pytest.fixture
def github_at_the_fake(
    fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeGitHub]:
    """``GitHub()`` talking to the fake GitHub instead of github.com."""
    from asgi_session.providers import _github

    monkeypatch.setattr(_github, "_GITHUB", fake_github.url)
    monkeypatch.setattr(_github, "_GITHUB_API", f"{fake_github.url}/api/v3")
    monkeypatch.setenv("AUTH_GITHUB_ID", fake_github.client_id)
    monkeypatch.setenv("AUTH_GITHUB_SECRET", fake_github.client_secret)
    yield fake_github


@pytest.fixture
def google_at_the_provider(
    oidc_provider: OIDCProviderServer, monkeypatch: pytest.MonkeyPatch
) -> OIDCProviderServer:
    """``Google()`` talking to the test's OpenID provider instead of accounts.google.com."""
    from asgi_session.providers import Google

    defaults = Google.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "issuer", oidc_provider.issuer)
    monkeypatch.setenv("AUTH_GOOGLE_ID", CLIENT_ID)
    monkeypatch.setenv("AUTH_GOOGLE_SECRET", CLIENT_SECRET)
    return oidc_provider


async def oauth_sign_in(
    client: httpx2.AsyncClient, browser: ProviderBrowser, provider: str
) -> httpx2.Response:
    """The sign-in page's button, the provider's pages, and the way back."""
    started = await begin_sign_in(client, provider, callback_url="/")
    assert started.status_code == 302, started.text
    return await land(client, await browser.authorize(started.headers["location"]))


async def test_providers_oauth_github_and_google(
    github_at_the_fake: FakeGitHub,
    google_at_the_provider: OIDCProviderServer,
    provider_browser: ProviderBrowser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTH_URL", APP_ORIGIN)
    app = load_sample("providers_oauth.py").app
    async with app_client(app) as client:
        listed = (await client.get("/auth/providers")).json()
        assert listed["github"]["callbackUrl"] == f"{APP_ORIGIN}/auth/callback/github"
        assert listed["google"]["callbackUrl"] == f"{APP_ORIGIN}/auth/callback/google"

        done = await oauth_sign_in(client, provider_browser, "github")
        assert done.headers["location"] == f"{APP_ORIGIN}/"
        assert (await client.get("/")).json()["user"] == {
            "name": "The Octocat",
            "email": "octocat@example.com",
            "image": "https://avatars.example.com/u/583231",
        }
    async with app_client(app) as client:
        done = await oauth_sign_in(client, provider_browser, "google")
        assert done.headers["location"] == f"{APP_ORIGIN}/"
        assert (await client.get("/")).json()["user"]["email"] == "alice@example.com"


async def test_providers_oidc_signs_in_and_oauth_goes_to_its_endpoints(
    oidc_provider: OIDCProviderServer,
    provider_browser: ProviderBrowser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTH_URL", APP_ORIGIN)
    monkeypatch.setenv("CORP_ISSUER", oidc_provider.issuer)
    monkeypatch.setenv("CORP_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("CORP_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("AUTH_ACME_ID", "acme-client")
    monkeypatch.setenv("AUTH_ACME_SECRET", "acme-secret")
    sample = load_sample("providers_oidc.py")
    async with app_client(sample.app) as client:
        done = await oauth_sign_in(client, provider_browser, "corp")
        assert done.headers["location"] == f"{APP_ORIGIN}/"
        assert (await client.get("/")).json()["user"] == {
            "name": "Alice",
            "email": "alice@example.com",
            "image": "https://img.example.com/alice.png",
        }

        started = await begin_sign_in(client, "acme")
        location = started.headers["location"]
        assert location.startswith("https://acme.example/oauth/authorize?")
        params = query_of(location)
        assert params["client_id"] == "acme-client" and params["scope"] == "read:user"
        assert params["redirect_uri"] == f"{APP_ORIGIN}/auth/callback/acme"
        assert params["code_challenge_method"] == "S256" and params["state"]
    assert sample.acme_profile(
        {"uid": 7, "display_name": "Ada", "mail": "ada@example.com", "avatar": None}, {}
    ) == {"id": 7, "name": "Ada", "email": "ada@example.com", "image": None}


async def test_providers_email_link_signs_in_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_URL", "http://testserver")
    app = load_sample("providers_email.py").app
    async with client_for(app) as client:
        token = await csrf_token(client)
        asked = await client.post(
            "/auth/signin/email",
            data={"csrfToken": token, "email": "Ada@Example.com", "callbackUrl": "/"},
        )
        assert asked.status_code == 302
        assert urlsplit(asked.headers["location"]).path == "/auth/verify-request"
        line = capsys.readouterr().out.strip()
        assert line.startswith(
            "Sign-in link for ada@example.com: http://testserver/auth/callback/email?"
        )
        link = line.split(": ", 1)[1]

        done = await client.get(link)
        assert done.status_code == 302 and done.headers["location"] == "http://testserver/"
        session = (await client.get("/")).json()
        assert session["user"] == {"email": "ada@example.com"}

    async with client_for(app) as other:
        again = await other.get(link)
        assert query_of(again.headers["location"])["error"] == "Verification"
        assert (await other.get("/")).json() is None


async def test_providers_callbacks_and_events(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.auth")
    app = load_sample("providers_callbacks.py").app
    async with client_for(app) as client:
        refused = await sign_in_with_credentials(client, "eve@elsewhere.example", "apple pie")
        assert query_of(refused.headers["location"])["error"] == "AccessDenied"

        done = await sign_in_with_credentials(
            client, callback_url="https://docs.example.com/welcome"
        )
        assert done.headers["location"] == "https://docs.example.com/welcome"
        session = (await client.get("/")).json()
        assert session["user"] == {
            "id": "1",
            "name": "Ada",
            "email": "ada@example.com",
            "role": "admin",
        }
        out = await sign_out(client)
        assert out.headers["location"] == "http://testserver"
    assert [record.getMessage() for record in caplog.records] == [
        "sign-in: user 1 with credentials",
        "sign-out: user 1",
    ]
    async with client_for(app) as client:
        elsewhere = await sign_in_with_credentials(client, callback_url="https://evil.example/")
        assert elsewhere.headers["location"] == "http://testserver"


async def test_providers_pages_replace_the_sign_in_page() -> None:
    app = load_sample("providers_pages.py").app
    async with client_for(app) as client:
        sent = await client.get("/", headers=HTML)
        assert sent.status_code == 303
        login = sent.headers["location"]
        assert urlsplit(login).path == "/login"
        assert query_of(login) == {"callbackUrl": "http://testserver/"}
        # The built-in page's address sends there too.
        built_in = await client.get("/auth/signin", params={"callbackUrl": "/"})
        assert built_in.headers["location"] == f"http://testserver{login}"

        page = (await client.get(login)).text
        assert 'action="/auth/callback/credentials"' in page and 'fetch("/auth/csrf")' in page
        assert 'name="callbackUrl" value="http://testserver/"' in page

        # What the page's script and form do.
        failed = await sign_in_with_credentials(client, password="wrong", callback_url="/")
        assert failed.headers["location"] == (
            "http://testserver/login?error=CredentialsSignin&code=credentials"
        )
        assert "Wrong email or password." in (await client.get(failed.headers["location"])).text
        done = await sign_in_with_credentials(client, callback_url="/")
        assert done.headers["location"] == "http://testserver/"
        assert (await client.get("/", headers=HTML)).text == "Hello Ada"


# -- your own user model -----------------------------------------------------------------

PASSWORD = "correct horse battery staple"


async def sign_up(client: httpx2.AsyncClient, email: str = "ada@example.com") -> httpx2.Response:
    token = await csrf_token(client)
    return await client.post(
        "/auth/signup", data={"csrfToken": token, "email": email, "password": PASSWORD}
    )


async def sign_in_with_password(
    client: httpx2.AsyncClient, email: str = "ada@example.com"
) -> httpx2.Response:
    return await sign_in_with_credentials(client, email, PASSWORD, provider="password")


async def role_after_a_new_sign_in(app: Any) -> Any:
    async with client_for(app) as client:
        assert signed_in(await sign_in_with_password(client))
        return (await client.get("/auth/session")).json()["user"]["role"]


async def test_user_model_sql_shares_the_users_table(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select, update
    from sqlalchemy.ext.asyncio import AsyncSession

    monkeypatch.setenv("DATABASE_URL", postgres_url)
    monkeypatch.setenv("AUTH_URL", "http://testserver")
    sample = load_sample("user_model_sql.py")
    app = sample.app
    async with app.router.lifespan_context(app):
        engine = sample.adapter.engine
        async with client_for(app) as client:
            assert signed_in(await sign_up(client))
            assert (await client.get("/")).json()["user"] == {
                "email": "ada@example.com",
                "role": "member",
            }
            async with AsyncSession(engine) as orm, orm.begin():
                await orm.execute(update(sample.User).values(role="admin"))
            # The session in progress shows it at its next request.
            assert (await client.get("/")).json()["user"]["role"] == "admin"
        assert await role_after_a_new_sign_in(app) == "admin"

        async with AsyncSession(engine) as orm:
            user = (await orm.scalars(select(sample.User))).one()
        assert (user.email, user.role) == ("ada@example.com", "admin"), "sign-in left it alone"
        stored = await sample.adapter.get_user(user.id)
        assert stored.extra == {"role": "admin"}
        await sample.adapter.update_user({"id": user.id, "role": "owner"})
        async with AsyncSession(engine) as orm:
            changed = await orm.get(sample.User, user.id)
            assert changed is not None and changed.role == "owner"


async def test_user_model_beanie_shares_the_users_collection(
    mongodb_url: str, mongo_db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = urlsplit(mongodb_url)._replace(path=f"/{mongo_db_name}").geturl()
    monkeypatch.setenv("MONGODB_URL", url)
    monkeypatch.setenv("AUTH_URL", "http://testserver")
    sample = load_sample("user_model_beanie.py")
    app = sample.app
    try:
        async with app.router.lifespan_context(app):
            async with client_for(app) as client:
                assert signed_in(await sign_up(client))
                assert (await client.get("/")).json()["user"]["role"] == "member"

            await sample.make_admin("ada@example.com")
            assert await role_after_a_new_sign_in(app) == "admin"
            user = await sample.User.find_one(sample.User.email == "ada@example.com")
            assert user is not None and user.role == "admin"
            assert user.emailVerified is None, "a sign-up leaves the address unconfirmed"
            document = await sample.database["users"].find_one({"email": "ada@example.com"})
            assert document is not None and document["role"] == "admin"
    finally:
        await sample.database.client.close()


# -- writing an adapter ------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_next_to_the_adapter(name: str) -> ModuleType:
    """Load a sample that imports ``custom_adapter``, as it would sit next to it."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        return load_sample(name)
    finally:
        sys.path.remove(str(EXAMPLES))
        sys.modules.pop("custom_adapter", None)


#: The page's test module, run here as a reader runs it: the whole contract suite.
TestAdapterContractSample = load_next_to_the_adapter("adapter_contract.py").TestDictAdapter


async def test_adapter_app_signs_up_and_in_on_the_custom_adapter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTH_URL", "http://testserver")
    sample = load_next_to_the_adapter("adapter_app.py")
    adapter = sample.config.adapter
    assert type(adapter).__name__ == "DictAdapter"
    async with client_for(sample.app) as client:
        assert signed_in(await sign_up(client))
        assert (await client.get("/")).json()["user"] == {"email": "ada@example.com"}
    async with client_for(sample.app) as client:
        assert signed_in(await sign_in_with_password(client))
        session = (await client.get("/")).json()
        user = await adapter.get_user(session["id"])
        assert user is not None and user.email == "ada@example.com"
        # Database sessions: the cookie holds a token that names a row of the adapter's.
        assert len(await adapter.list_sessions(session["id"])) == 2
        assert (await sign_out(client)).status_code == 302
        assert len(await adapter.list_sessions(session["id"])) == 1
