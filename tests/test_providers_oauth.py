"""Plain OAuth 2 sign-in (GitHub and the generic provider) against a loopback fake GitHub."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import pytest

from asgi_session import AuthConfig, ConfigurationError, Events
from asgi_session.providers import GitHub, OAuth
from asgi_session.providers._oauth import TOKEN_FIELDS, env_name
from tests.support.apps import SECRET, Clock, csrf_token
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


def github(fake: FakeGitHub, **options: Any) -> GitHub:
    return GitHub(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        enterprise_url=fake.url,
        **options,
    )


def app_for(*providers: Any, **options: Any) -> Any:
    options.setdefault("secret", SECRET)
    options.setdefault("allowed_hosts", APP_HOSTS)
    return oauth_app(AuthConfig(providers=list(providers), **options))


async def sign_in_flow(
    client: httpx2.AsyncClient, browser: ProviderBrowser, provider_id: str = "github"
) -> httpx2.Response:
    started = await begin_sign_in(client, provider_id)
    assert started.status_code == 302, started.text
    return await land(client, await browser.authorize(started.headers["location"]))


async def assert_refused(
    client: httpx2.AsyncClient, response: httpx2.Response, code: str = "OAuthCallbackError"
) -> None:
    assert error_of(response) == ("/auth/signin", code)
    assert "authjs.session-token" not in cookie_headers(response)
    assert await session_of(client) is None


# -- GitHub ------------------------------------------------------------------------------


async def test_github_sign_in_with_state_and_pkce(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    async with app_client(app_for(github(fake_github))) as client:
        started = await begin_sign_in(client, "github", callback_url="/dashboard")
        location = started.headers["location"]
        assert location.startswith(f"{fake_github.url}/login/oauth/authorize?")
        params = query_of(location)
        assert params["scope"] == "read:user user:email"
        assert params["code_challenge_method"] == "S256" and params["state"]
        assert "nonce" not in params
        assert "authjs.nonce" not in cookie_headers(started)
        done = await land(client, await provider_browser.authorize(location))
        assert done.headers["location"] == f"{APP_ORIGIN}/dashboard"
        for name in ("authjs.state", "authjs.pkce.code_verifier"):
            assert "Max-Age=0" in cookie_headers(done)[name]
        session = await session_of(client)
    assert session["user"] == {
        "name": "The Octocat",
        "email": "octocat@example.com",
        "image": "https://avatars.example.com/u/583231",
    }
    assert fake_github.grants == {"authorization_code": 1}
    assert fake_github.client_auth == ["basic"]


async def test_github_private_email_comes_from_the_primary_verified_address(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    fake_github.add_user(
        "hidden",
        id=7,
        name=None,
        email=None,
        emails=[
            {"email": "Old@Example.com", "primary": False, "verified": True},
            {"email": "unverified@example.com", "primary": True, "verified": False},
            {"email": "Main@Example.com", "primary": True, "verified": True},
        ],
    )
    fake_github.sign_in_as = "hidden"
    async with app_client(app_for(github(fake_github))) as client:
        await sign_in_flow(client, provider_browser)
        user = (await session_of(client))["user"]
    # The login stands in for the missing name; emails are kept lower-case.
    assert user["name"] == "hidden"
    assert user["email"] == "main@example.com"


async def test_github_without_any_verified_email_signs_in_without_one(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    fake_github.add_user(
        "nomail", id=8, emails=[{"email": "x@example.com", "primary": True, "verified": False}]
    )
    fake_github.sign_in_as = "nomail"
    async with app_client(app_for(github(fake_github))) as client:
        await sign_in_flow(client, provider_browser)
        user = (await session_of(client))["user"]
    assert user["name"] == "nomail" and user.get("email") is None


def test_github_reads_its_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTH_GITHUB_ID", raising=False)
    monkeypatch.delenv("AUTH_GITHUB_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="AUTH_GITHUB_ID and AUTH_GITHUB_SECRET"):
        GitHub()
    monkeypatch.setenv("AUTH_GITHUB_ID", "gh-id")
    with pytest.raises(ConfigurationError, match="AUTH_GITHUB_SECRET"):
        GitHub()
    monkeypatch.setenv("AUTH_GITHUB_SECRET", "gh-secret")
    provider = GitHub()
    assert (provider.client_id, provider.client_secret) == ("gh-id", "gh-secret")
    assert provider.authorization_url == "https://github.com/login/oauth/authorize"
    assert provider.userinfo_url == "https://api.github.com/user"
    assert env_name("corp-sso", "ID") == "AUTH_CORP_SSO_ID"


async def test_providers_and_sign_in_page_list_github(fake_github: FakeGitHub) -> None:
    async with app_client(app_for(github(fake_github))) as client:
        providers = (await client.get("/auth/providers")).json()
        page = (await client.get("/auth/signin")).text
    assert providers["github"] == {
        "id": "github",
        "name": "GitHub",
        "type": "oauth",
        "signinUrl": f"{APP_ORIGIN}/auth/signin/github",
        "callbackUrl": f"{APP_ORIGIN}/auth/callback/github",
    }
    assert f'action="{APP_ORIGIN}/auth/signin/github"' in page
    assert "Sign in with GitHub" in page


async def test_sign_in_post_without_csrf_token_does_not_reach_the_provider(
    fake_github: FakeGitHub,
) -> None:
    async with app_client(app_for(github(fake_github))) as client:
        await csrf_token(client)
        response = await client.post("/auth/signin/github", data={"csrfToken": "forged"})
    assert error_of(response) == ("/auth/signin", "MissingCSRF")
    assert "authjs.state" not in cookie_headers(response)


# -- failures ----------------------------------------------------------------------------


async def test_the_user_denying_access_is_refused(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    fake_github.deny = True
    async with app_client(app_for(github(fake_github))) as client:
        await assert_refused(client, await sign_in_flow(client, provider_browser))
    assert fake_github.grants == {}


@pytest.mark.parametrize("mode", ["garbage", "error500", "drop"])
async def test_a_broken_token_endpoint_is_refused(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser, mode: str
) -> None:
    fake_github.token_mode = mode
    async with app_client(app_for(github(fake_github))) as client:
        await assert_refused(client, await sign_in_flow(client, provider_browser))
    assert fake_github.grants == {"authorization_code": 1}


async def test_a_token_endpoint_that_never_answers_times_out(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    fake_github.token_mode = "hang"
    async with app_client(app_for(github(fake_github, timeout=0.5))) as client:
        started = time.monotonic()
        await assert_refused(client, await sign_in_flow(client, provider_browser))
    assert time.monotonic() - started < 5


async def test_a_token_endpoint_that_is_down_is_refused(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    provider = OAuth(
        id="github",
        name="GitHub",
        client_id=fake_github.client_id,
        client_secret=fake_github.client_secret,
        authorization_url=f"{fake_github.url}/login/oauth/authorize",
        token_url="http://127.0.0.1:9/login/oauth/access_token",
        userinfo_url=f"{fake_github.url}/api/v3/user",
    )
    async with app_client(app_for(provider)) as client:
        await assert_refused(client, await sign_in_flow(client, provider_browser))


async def test_an_error_answered_with_status_200_is_refused(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    # GitHub reports a bad client secret as {"error": ...} with status 200.
    provider = GitHub(
        client_id=fake_github.client_id, client_secret="wrong", enterprise_url=fake_github.url
    )
    async with app_client(app_for(provider)) as client:
        await assert_refused(client, await sign_in_flow(client, provider_browser))


async def test_a_missing_pkce_cookie_stops_before_the_token_request(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    async with app_client(app_for(github(fake_github))) as client:
        started = await begin_sign_in(client, "github")
        landing = await provider_browser.authorize(started.headers["location"])
        client.cookies.delete("authjs.pkce.code_verifier")
        await assert_refused(client, await land(client, landing))
    assert fake_github.grants == {}


async def test_a_pkce_verifier_from_another_sign_in_is_refused_by_the_provider(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    app = app_for(github(fake_github, checks=["pkce"]))
    async with app_client(app) as client, app_client(app) as other:
        started = await begin_sign_in(client, "github")
        await begin_sign_in(other, "github")
        landing = await provider_browser.authorize(started.headers["location"])
        # Another browser's verifier does not match this code's challenge.
        verifier = other.cookies["authjs.pkce.code_verifier"]
        client.cookies.delete("authjs.pkce.code_verifier")
        client.cookies.set("authjs.pkce.code_verifier", verifier, domain="app.test")
        await assert_refused(client, await land(client, landing))
    assert fake_github.grants == {"authorization_code": 1}


async def test_an_expired_sign_in_is_refused(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    clock = Clock()
    async with app_client(app_for(github(fake_github), clock=clock)) as client:
        started = await begin_sign_in(client, "github")
        landing = await provider_browser.authorize(started.headers["location"])
        clock.advance(16 * 60)
        await assert_refused(client, await land(client, landing))
    assert fake_github.grants == {}


async def test_a_userinfo_endpoint_that_refuses_the_token_is_refused(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    provider = OAuth(
        id="github",
        name="GitHub",
        client_id=fake_github.client_id,
        client_secret=fake_github.client_secret,
        authorization_url=f"{fake_github.url}/login/oauth/authorize",
        token_url=f"{fake_github.url}/login/oauth/access_token",
        userinfo_url=f"{fake_github.url}/api/v3/nowhere",
    )
    async with app_client(app_for(provider)) as client:
        await assert_refused(client, await sign_in_flow(client, provider_browser))


# -- the generic provider ------------------------------------------------------------------


def generic(fake: FakeGitHub, **options: Any) -> OAuth:
    options.setdefault(
        "profile",
        lambda profile, tokens: {
            "id": f"gh-{profile['id']}",
            "name": profile["login"].upper(),
            "email": profile["email"],
            "image": None,
        },
    )
    return OAuth(
        id="github",
        name="Acme",
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        authorization_url=f"{fake.url}/login/oauth/authorize",
        token_url=f"{fake.url}/login/oauth/access_token",
        userinfo_url=f"{fake.url}/api/v3/user",
        scope="read:user",
        **options,
    )


async def test_generic_provider_maps_the_profile_and_posts_its_secret(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    seen: list[dict[str, Any]] = []

    async def remember(user: Any, account: Any) -> None:
        seen.append({"user": user, "account": account})

    provider = generic(fake_github, token_endpoint_auth_method="client_secret_post")
    async with app_client(app_for(provider, events=Events(sign_in=remember))) as client:
        started = await begin_sign_in(client, "github")
        assert query_of(started.headers["location"])["scope"] == "read:user"
        await land(client, await provider_browser.authorize(started.headers["location"]))
        user = (await session_of(client))["user"]
    assert user == {"name": "OCTOCAT", "email": "octocat@example.com"}
    assert fake_github.client_auth == ["post"]
    [event] = seen
    assert event["account"]["providerAccountId"] == "gh-583231"
    assert event["account"]["type"] == "oauth"
    assert set(event["account"]) - {"provider", "type", "providerAccountId"} <= set(TOKEN_FIELDS)


@pytest.mark.parametrize(
    "profile",
    [
        lambda profile, tokens: {"name": "no id"},
        lambda profile, tokens: ["not", "a", "mapping"],
        lambda profile, tokens: 1 / 0,
    ],
    ids=["no-id", "not-a-mapping", "raises"],
)
async def test_an_unusable_profile_mapping_is_refused(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser, profile: Any
) -> None:
    async with app_client(app_for(generic(fake_github, profile=profile))) as client:
        await assert_refused(client, await sign_in_flow(client, provider_browser))


def test_generic_provider_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="unknown checks"):
        OAuth(id="x", name="X", client_id="a", client_secret="b", checks=["stat"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="'state' or 'pkce'"):
        OAuth(id="x", name="X", client_id="a", client_secret="b", checks=[])
    with pytest.raises(ConfigurationError, match="token_endpoint_auth_method"):
        OAuth(id="x", name="X", client_id="a", token_endpoint_auth_method="private_key_jwt")
    with pytest.raises(ConfigurationError, match="timeout"):
        OAuth(id="x", name="X", client_id="a", client_secret="b", timeout=0)
    # A public client needs no secret.
    public = OAuth(id="x", name="X", client_id="a", token_endpoint_auth_method="none")
    assert public.client_secret == ""


async def test_a_provider_without_endpoints_fails_the_sign_in_post() -> None:
    provider = OAuth(id="acme", name="Acme", client_id="a", client_secret="b")
    async with app_client(app_for(provider)) as client:
        started = await begin_sign_in(client, "acme")
    assert error_of(started) == ("/auth/signin", "OAuthSignin")


async def test_the_sign_in_request_may_add_authorization_parameters(
    fake_github: FakeGitHub,
) -> None:
    async with app_client(app_for(github(fake_github))) as client:
        token = await csrf_token(client)
        started = await client.post(
            "/auth/signin/github?login=octocat&allow_signup=false"
            "&redirect_uri=https://evil.example/cb&state=chosen&response_mode=form_post",
            data={"csrfToken": token},
        )
    params = query_of(started.headers["location"])
    assert params["login"] == "octocat" and params["allow_signup"] == "false"
    assert params["redirect_uri"] == f"{APP_ORIGIN}/auth/callback/github"
    assert params["state"] != "chosen" and "response_mode" not in params


@pytest.mark.parametrize(
    "body",
    [
        b'{"state": "\\ud800", "code": "x"}',  # a lone surrogate once decoded
        b'{"state": ["a"], "code": {"$ne": 1}}',
        b"[" * 50_000,
    ],
)
async def test_garbage_form_post_callbacks_are_refused_not_500(
    fake_github: FakeGitHub, body: bytes
) -> None:
    async with app_client(app_for(github(fake_github))) as client:
        await begin_sign_in(client, "github")
        response = await client.post(
            "/auth/callback/github", content=body, headers={"content-type": "application/json"}
        )
        if b"\\ud800" in body:
            # Text no client means is refused whole, before any provider sees it.
            assert response.status_code == 400
            assert await session_of(client) is None
        else:
            await assert_refused(client, response)
