"""Auth.js's sign-in and account linking rules, over a real MongoDB and a loopback GitHub."""

from __future__ import annotations

from typing import Any, Literal

import httpx2
import pytest
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from asgi_session import AuthConfig, Callbacks, Events, Pages
from asgi_session.backends import MemoryAdapter
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.providers import Credentials, Email, GitHub, Password
from tests.support.apps import SECRET, Clock, authorize, csrf_token, sign_in
from tests.support.fake_github import FakeGitHub
from tests.support.oauth import (
    APP_HOSTS,
    APP_ORIGIN,
    ProviderBrowser,
    app_client,
    begin_sign_in,
    cookie_headers,
    error_of,
    land,
    oauth_app,
    query_of,
    session_of,
)
from tests.support.passwords import FAST_HASHER, Outbox, confirm, local_path, sign_up
from tests.support.passwords import sign_in as password_sign_in

Database = AsyncDatabase[dict[str, Any]]
OCTOCAT = "583231"


@pytest.fixture
def store(mongo_db: Database) -> MongoDBAdapter:
    """Users and accounts in the test's MongoDB database (the driver is not under test)."""
    return MongoDBAdapter(mongo_db)


class Recorder:
    """Events and jwt callback calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def events(self) -> Events:
        def record(name: str) -> Any:
            def handler(**arguments: Any) -> None:
                self.calls.append((name, arguments))

            return handler

        return Events(
            sign_in=record("sign_in"),
            create_user=record("create_user"),
            update_user=record("update_user"),
            link_account=record("link_account"),
        )

    def jwt(self, token: dict[str, Any], trigger: str | None, **rest: Any) -> dict[str, Any]:
        if trigger is not None:
            self.calls.append(("jwt", {"token": dict(token), "trigger": trigger, **rest}))
        return token

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def last(self, name: str) -> dict[str, Any]:
        return [arguments for called, arguments in self.calls if called == name][-1]


def make_app(
    fake: FakeGitHub,
    store: MongoDBAdapter,
    *,
    strategy: Literal["jwt", "database"] = "database",
    recorder: Recorder | None = None,
    dangerous: bool = False,
    **options: Any,
) -> Any:
    provider = GitHub(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        enterprise_url=fake.url,
        allow_dangerous_email_account_linking=dangerous,
    )
    if recorder is not None:
        options["events"] = recorder.events()
        options.setdefault("callbacks", Callbacks(jwt=recorder.jwt))
    config = AuthConfig(
        secret=SECRET,
        providers=[provider, Credentials(authorize=authorize)],
        adapter=store,
        strategy=strategy,
        allowed_hosts=APP_HOSTS,
        **options,
    )
    return oauth_app(config)


async def github_sign_in(
    client: httpx2.AsyncClient, browser: ProviderBrowser, *, callback_url: str = "/dashboard"
) -> httpx2.Response:
    started = await begin_sign_in(client, "github", callback_url=callback_url)
    return await land(client, await browser.authorize(started.headers["location"]))


async def count(database: Database, collection: str) -> int:
    return await database[collection].count_documents({})


# -- new and known accounts ----------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["database", "jwt"])
async def test_a_new_account_creates_a_user_and_links_the_account(
    fake_github: FakeGitHub,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: Database,
    strategy: Literal["jwt", "database"],
) -> None:
    recorder = Recorder()
    app = make_app(fake_github, store, strategy=strategy, recorder=recorder)
    async with app_client(app) as client:
        done = await github_sign_in(client, provider_browser)
        assert done.headers["location"] == f"{APP_ORIGIN}/dashboard"
        session = await session_of(client)

    [user] = await mongo_db["users"].find().to_list()
    assert user["name"] == "The Octocat" and user["email"] == "octocat@example.com"
    assert user["image"] == "https://avatars.example.com/u/583231"
    assert user["emailVerified"] is None
    [account] = await mongo_db["accounts"].find().to_list()
    assert account["userId"] == user["_id"]
    assert (account["provider"], account["type"], account["providerAccountId"]) == (
        "github",
        "oauth",
        "583231",
    )
    assert account["access_token"].startswith("gho_")
    assert account["token_type"] == "bearer" and account["scope"] == "read:user,user:email"
    assert session["id"] == str(user["_id"])
    assert session["user"]["email"] == "octocat@example.com"

    expected = ["create_user", "link_account", "sign_in"]
    if strategy == "jwt":
        expected.insert(2, "jwt")
        jwt_call = recorder.last("jwt")
        assert jwt_call["trigger"] == "signUp" and jwt_call["is_new_user"] is True
        assert jwt_call["token"]["sub"] == str(user["_id"])
        assert jwt_call["account"]["access_token"] == account["access_token"]
    assert recorder.names() == expected
    assert recorder.last("sign_in")["is_new_user"] is True
    assert recorder.last("create_user")["user"]["id"] == str(user["_id"])
    linked = recorder.last("link_account")
    assert linked["account"]["userId"] == str(user["_id"])
    assert linked["profile"]["login"] == "octocat"


@pytest.mark.parametrize("strategy", ["database", "jwt"])
async def test_a_known_account_signs_its_user_in_and_refreshes_stored_tokens(
    fake_github: FakeGitHub,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: Database,
    strategy: Literal["jwt", "database"],
) -> None:
    fake_github.expires_in = 28800
    recorder = Recorder()
    app = make_app(fake_github, store, strategy=strategy, recorder=recorder)
    async with app_client(app) as first:
        await github_sign_in(first, provider_browser)
        first_id = (await session_of(first))["id"]
    before = await mongo_db["accounts"].find_one()
    assert before is not None
    recorder.calls.clear()

    async with app_client(app) as second:
        done = await github_sign_in(second, provider_browser)
        assert done.headers["location"] == f"{APP_ORIGIN}/dashboard"
        assert (await session_of(second))["id"] == first_id

    assert await count(mongo_db, "users") == 1
    after = await mongo_db["accounts"].find_one()
    assert after is not None and after["_id"] == before["_id"]
    # Unlike Auth.js, the stored tokens are the latest ones.
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]
    assert after["expires_at"] >= before["expires_at"]
    assert "create_user" not in recorder.names() and "link_account" not in recorder.names()
    assert recorder.last("sign_in")["is_new_user"] is False
    if strategy == "jwt":
        assert recorder.last("jwt")["trigger"] == "signIn"


async def test_the_sign_in_callback_sees_the_stored_user_of_a_known_account(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser, store: MongoDBAdapter
) -> None:
    seen: list[dict[str, Any]] = []

    def check(user: dict[str, Any], account: dict[str, Any], profile: dict[str, Any]) -> bool:
        seen.append(user)
        return True

    app = make_app(fake_github, store, callbacks=Callbacks(sign_in=check))
    async with app_client(app) as client:
        await github_sign_in(client, provider_browser)
        stored_id = (await session_of(client))["id"]
    async with app_client(app) as client:
        await github_sign_in(client, provider_browser)
    first, second = seen
    assert first["id"] != stored_id  # a new account: the user as the provider describes it
    assert first["email"] == "octocat@example.com"
    assert second["id"] == stored_id


# -- linking ------------------------------------------------------------------------------


async def test_a_signed_in_user_links_a_new_account(
    fake_github: FakeGitHub,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: Database,
) -> None:
    recorder = Recorder()
    app = make_app(fake_github, store, recorder=recorder)
    async with app_client(app) as client:
        assert (await sign_in(client)).status_code == 302  # credentials: ann@example.com
        ann_id = (await session_of(client))["id"]
        recorder.calls.clear()
        done = await github_sign_in(client, provider_browser)
        assert done.headers["location"] == f"{APP_ORIGIN}/dashboard"
        assert (await session_of(client))["id"] == ann_id
    [account] = await mongo_db["accounts"].find({"provider": "github"}).to_list()
    assert account["userId"] == ObjectId(ann_id)
    assert await count(mongo_db, "users") == 1
    # The old session was replaced by a new one for the same user.
    assert await count(mongo_db, "sessions") == 1
    assert recorder.names() == ["link_account", "sign_in"]


async def test_an_email_owned_by_another_user_is_not_linked(
    fake_github: FakeGitHub,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: Database,
) -> None:
    await store.create_user({"name": "Someone", "email": "octocat@example.com"})
    async with app_client(make_app(fake_github, store)) as client:
        done = await github_sign_in(client, provider_browser)
        assert error_of(done) == ("/auth/signin", "OAuthAccountNotLinked")
        assert "authjs.session-token" not in cookie_headers(done)
        assert await session_of(client) is None
    assert await count(mongo_db, "users") == 1
    assert await count(mongo_db, "accounts") == 0
    assert await count(mongo_db, "sessions") == 0


async def test_dangerous_email_linking_joins_the_user_with_that_email(
    fake_github: FakeGitHub,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: Database,
) -> None:
    owner = await store.create_user({"name": "Someone", "email": "octocat@example.com"})
    recorder = Recorder()
    app = make_app(fake_github, store, recorder=recorder, dangerous=True)
    async with app_client(app) as client:
        done = await github_sign_in(client, provider_browser)
        assert done.headers["location"] == f"{APP_ORIGIN}/dashboard"
        assert (await session_of(client))["id"] == owner.id
    [account] = await mongo_db["accounts"].find().to_list()
    assert account["userId"] == ObjectId(owner.id)
    assert await count(mongo_db, "users") == 1
    assert recorder.names() == ["link_account", "sign_in"]


async def test_an_account_of_another_user_is_not_linked_to_the_signed_in_one(
    fake_github: FakeGitHub,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: Database,
) -> None:
    app = make_app(fake_github, store)
    async with app_client(app) as owner:
        await github_sign_in(owner, provider_browser)
    async with app_client(app) as client:
        await sign_in(client)
        ann = await session_of(client)
        done = await github_sign_in(client, provider_browser)
        assert error_of(done) == ("/auth/signin", "OAuthAccountNotLinked")
        # Still signed in as before.
        assert await session_of(client) == ann
    [account] = await mongo_db["accounts"].find({"provider": "github"}).to_list()
    assert account["userId"] != ObjectId(ann["id"])


# -- the sign_in callback ------------------------------------------------------------------


def _deny(**arguments: Any) -> bool:
    return False


def _fail(**arguments: Any) -> bool:
    raise RuntimeError("the app's check broke")


@pytest.mark.parametrize("sign_in_callback", [_deny, _fail], ids=["returns-false", "raises"])
async def test_the_sign_in_callback_can_deny(
    fake_github: FakeGitHub,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: Database,
    sign_in_callback: Any,
) -> None:
    app = make_app(fake_github, store, callbacks=Callbacks(sign_in=sign_in_callback))
    async with app_client(app) as client:
        done = await github_sign_in(client, provider_browser)
        assert error_of(done) == ("/auth/signin", "AccessDenied")
        assert await session_of(client) is None
    for collection in ("users", "accounts", "sessions"):
        assert await count(mongo_db, collection) == 0


@pytest.mark.parametrize(
    ("returned", "expected"),
    [("/not-allowed", f"{APP_ORIGIN}/not-allowed"), ("https://evil.example/", APP_ORIGIN)],
)
async def test_a_url_from_the_sign_in_callback_redirects_without_signing_in(
    fake_github: FakeGitHub,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: Database,
    returned: str,
    expected: str,
) -> None:
    app = make_app(fake_github, store, callbacks=Callbacks(sign_in=lambda: returned))
    async with app_client(app) as client:
        done = await github_sign_in(client, provider_browser)
        assert done.headers["location"] == expected
        assert await session_of(client) is None
    assert await count(mongo_db, "users") == 0


async def test_new_users_go_to_the_new_user_page_first(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser, store: MongoDBAdapter
) -> None:
    app = make_app(fake_github, store, pages=Pages(new_user="/welcome"))
    async with app_client(app) as client:
        first = await github_sign_in(client, provider_browser, callback_url="/dashboard")
        location = first.headers["location"]
        assert location.startswith(f"{APP_ORIGIN}/welcome?")
        assert query_of(location) == {"callbackUrl": f"{APP_ORIGIN}/dashboard"}
    async with app_client(app) as client:
        again = await github_sign_in(client, provider_browser, callback_url="/dashboard")
        assert again.headers["location"] == f"{APP_ORIGIN}/dashboard"


class StaleLookups(MongoDBAdapter):
    """An adapter whose lookups ran just before another sign-in stored its records."""

    async def get_user_by_account(self, *, provider: str, provider_account_id: str) -> Any:
        return None

    async def get_user_by_email(self, email: str) -> Any:
        return None


async def test_losing_a_race_to_link_the_same_account_leaves_nothing_behind(
    fake_github: FakeGitHub,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: Database,
) -> None:
    winner = await store.create_user({"name": "Winner", "email": "winner@example.com"})
    await store.link_account(
        {
            "user_id": winner.id,
            "type": "oauth",
            "provider": "github",
            "provider_account_id": OCTOCAT,
        }
    )
    recorder = Recorder()
    app = make_app(fake_github, StaleLookups(mongo_db), recorder=recorder)
    async with app_client(app) as client:
        done = await github_sign_in(client, provider_browser)
        assert error_of(done) == ("/auth/signin", "OAuthAccountNotLinked")
        assert await session_of(client) is None
    assert [user["_id"] for user in await mongo_db["users"].find().to_list()] == [
        ObjectId(winner.id)
    ]
    assert recorder.names() == []


async def test_losing_a_race_to_create_the_same_user_is_refused(
    fake_github: FakeGitHub,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: Database,
) -> None:
    await store.create_user({"name": "Someone", "email": "octocat@example.com"})
    app = make_app(fake_github, StaleLookups(mongo_db))
    async with app_client(app) as client:
        done = await github_sign_in(client, provider_browser)
        assert error_of(done) == ("/auth/signin", "OAuthAccountNotLinked")
    assert await count(mongo_db, "users") == 1
    assert await count(mongo_db, "accounts") == 0


# -- linking while signed in needs a recent sign-in ------------------------------------------


async def test_a_stale_session_cannot_link_a_new_account(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    clock = Clock()
    outbox = Outbox()
    adapter = MemoryAdapter()
    config = AuthConfig(
        secret=SECRET,
        url=APP_ORIGIN,
        adapter=adapter,
        clock=clock,
        providers=[
            Password(send=outbox.send, hasher=FAST_HASHER),
            GitHub(
                client_id=fake_github.client_id,
                client_secret=fake_github.client_secret,
                enterprise_url=fake_github.url,
            ),
        ],
    )

    async def link_github(client: httpx2.AsyncClient) -> httpx2.Response:
        started = await begin_sign_in(client, "github")
        return await land(client, await provider_browser.authorize(started.headers["location"]))

    async with app_client(oauth_app(config)) as client:
        await sign_up(client, "ada@example.com")
        await confirm(client, outbox.last("ada@example.com").url)
        clock.advance(config.fresh_age + 1)
        # A stolen cookie, an hour old, adding the thief's own GitHub account.
        refused = await link_github(client)
        linked_while_stale = [key for key in adapter._accounts if key[0] == "github"]
        # The owner, having just signed in, may.
        await password_sign_in(client, "ada@example.com")
        linked = await link_github(client)
        github = [key for key in adapter._accounts if key[0] == "github"]
        owner = await adapter.get_user_by_account(
            provider="github", provider_account_id=github[0][1]
        )

    assert "error=ReauthenticationRequired" in refused.headers["location"]
    assert linked_while_stale == []
    assert linked.headers["location"].endswith("/dashboard")
    assert owner is not None and owner.email == "ada@example.com"


async def test_without_anything_a_fresh_session_guards_linking_is_as_before(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    """An app with no password, passkey or second factor has nothing a fresh session
    unlocks: an old session links accounts as Auth.js's do (whose sessions carry no
    sign-in time at all)."""
    clock = Clock()
    links: list[str] = []

    def send_link(identifier: str, url: str, request: Any) -> None:
        links.append(url)

    adapter = MemoryAdapter()
    config = AuthConfig(
        secret=SECRET,
        url=APP_ORIGIN,
        adapter=adapter,
        clock=clock,
        providers=[
            Email(send=send_link),
            GitHub(
                client_id=fake_github.client_id,
                client_secret=fake_github.client_secret,
                enterprise_url=fake_github.url,
            ),
        ],
    )
    async with app_client(oauth_app(config)) as client:
        await client.post(
            "/auth/signin/email",
            data={"csrfToken": await csrf_token(client), "email": "ada@example.com"},
        )
        await client.get(local_path(links[-1]))
        clock.advance(3600)
        started = await begin_sign_in(client, "github")
        linked = await land(client, await provider_browser.authorize(started.headers["location"]))
        github = [key for key in adapter._accounts if key[0] == "github"]

    assert linked.headers["location"].endswith("/dashboard")
    assert len(github) == 1
