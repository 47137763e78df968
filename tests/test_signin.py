"""The one sign-in flow: whatever provider vouched, sign-ins end the same way."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from asgi_session import Callbacks, CredentialsSignin, Pages, SignInError
from asgi_session.backends import MemoryAdapter
from asgi_session.providers import Credentials, Identity, Provider, ProviderRequest
from tests.support.apps import (
    SESSION_COOKIE,
    Clock,
    authorize,
    build_app,
    client_for,
    set_cookies,
    sign_in,
)


class InvalidLogin(CredentialsSignin):
    code = "invalid_login"


async def _coded(credentials: dict[str, str], request: Any) -> dict[str, Any] | None:
    if credentials["email"] == "locked@example.com":
        raise CredentialsSignin(code="account_locked")
    if credentials["email"] == "nobody@example.com":
        raise InvalidLogin()
    return await authorize(credentials, request)


def _query(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


# -- credentials: Auth.js v5's error codes ------------------------------------------------


@pytest.mark.parametrize(
    ("email", "code"),
    [
        ("ann@example.com", "credentials"),  # wrong password: authorize returns None
        ("nobody@example.com", "invalid_login"),  # a subclass with its own code
        ("locked@example.com", "account_locked"),  # a code given when raising
    ],
)
async def test_authorize_codes_reach_the_sign_in_page(
    clock: Clock, email: str, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_app(clock=clock, providers=[Credentials(authorize=_coded)])
    async with client_for(app) as client:
        with caplog.at_level(logging.WARNING, logger="asgi_session"):
            response = await sign_in(client, email=email, password="wrong")
    assert response.status_code == 302
    assert _query(response.headers["location"]) == {
        "error": ["CredentialsSignin"],
        "code": [code],
    }
    assert SESSION_COOKIE not in set_cookies(response)
    # Wrong credentials are the user's doing (or an attacker's): nothing to log.
    assert caplog.records == []


async def test_authorize_codes_reach_json_clients(clock: Clock) -> None:
    app = build_app(clock=clock, providers=[Credentials(authorize=_coded)])
    async with client_for(app) as client:
        csrf = (await client.get("/auth/csrf")).json()["csrfToken"]
        response = await client.post(
            "/auth/callback/credentials",
            data={"csrfToken": csrf, "email": "nobody@example.com", "password": "x"},
            headers={"X-Auth-Return-Redirect": "1"},
        )
    assert response.status_code == 200
    url = response.json()["url"]
    assert url.startswith("http://testserver/auth/signin?")
    assert _query(url) == {"error": ["CredentialsSignin"], "code": ["invalid_login"]}


async def test_custom_sign_in_page_gets_the_code_too(clock: Clock) -> None:
    app = build_app(
        clock=clock, providers=[Credentials(authorize=_coded)], pages=Pages(sign_in="/login")
    )
    async with client_for(app) as client:
        response = await sign_in(client, email="locked@example.com", password="x")
        assert response.headers["location"] == (
            "http://testserver/login?error=CredentialsSignin&code=account_locked"
        )
        # The built-in route forwards both to the app's page.
        forwarded = await client.get(
            "/auth/signin", params={"error": "CredentialsSignin", "code": "account_locked"}
        )
        assert _query(forwarded.headers["location"])["code"] == ["account_locked"]


async def test_authorize_may_refuse_like_any_provider(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    def suspended(credentials: dict[str, str], request: Any) -> None:
        raise SignInError("AccessDenied", "the account is suspended")

    app = build_app(clock=clock, providers=[Credentials(authorize=suspended)])
    async with client_for(app) as client:
        with caplog.at_level(logging.WARNING, logger="asgi_session"):
            response = await sign_in(client)
    assert _query(response.headers["location"]) == {"error": ["AccessDenied"]}
    assert caplog.records == []


# -- every provider's new users land on the same URL shape -------------------------------


async def test_new_credentials_users_go_to_the_new_user_page_with_the_callback_url(
    clock: Clock,
) -> None:
    app = build_app(clock=clock, adapter=MemoryAdapter(), pages=Pages(new_user="/welcome"))
    async with client_for(app) as client:
        first = await sign_in(client, callbackUrl="/dashboard")
        assert first.headers["location"] == (
            "http://testserver/welcome?callbackUrl=http%3A%2F%2Ftestserver%2Fdashboard"
        )
    async with client_for(app) as client:
        again = await sign_in(client, callbackUrl="/dashboard")
        assert again.headers["location"] == "http://testserver/dashboard"


# -- the sign_in callback sees the same thing from every provider -------------------------


async def test_sign_in_callback_sees_the_identity_as_auth_js_shows_it(clock: Clock) -> None:
    seen: list[dict[str, Any]] = []

    def sign_in_callback(**arguments: Any) -> bool:
        seen.append(arguments)
        return True

    app = build_app(clock=clock, callbacks=Callbacks(sign_in=sign_in_callback))
    async with client_for(app) as client:
        await sign_in(client)
    [call] = seen
    assert call["user"] == {"id": "user-1", "name": "Ann", "email": "ann@example.com"}
    assert call["account"] == {
        "provider": "credentials",
        "type": "credentials",
        "providerAccountId": "user-1",
    }
    assert call["credentials"] == {"email": "ann@example.com", "password": "pw-ann"}
    assert call["profile"] is None and call["email"] is None


def test_an_identity_hands_callbacks_auth_js_account_names() -> None:
    identity = Identity(
        provider="github",
        type="oauth",
        account_id="583231",
        user={"name": "The Octocat"},
        tokens={"access_token": "at", "expires_at": 1},
    )
    assert identity.account() == {
        "provider": "github",
        "type": "oauth",
        "providerAccountId": "583231",
        "access_token": "at",
        "expires_at": 1,
    }


# -- a provider of one's own plugs into the same flow ------------------------------------


class Badge(Provider):
    """Vouches for whoever shows a badge the app issued: a provider outside the package."""

    type = "oauth"

    def __init__(self) -> None:
        super().__init__(id="badge", name="Badge")

    async def begin_sign_in(self, request: ProviderRequest) -> str:
        badge = request.field("badge") or ""
        return request.context.auth_url(f"callback/{self.id}") + f"?badge={badge}"

    async def authenticate(self, request: ProviderRequest) -> Identity:
        badge = request.query.get("badge", "")
        if not badge.startswith("staff-"):
            raise SignInError("AccessDenied", "no badge")
        return Identity(
            provider=self.id,
            type=self.type,
            account_id=badge,
            user={"name": badge.title(), "email": f"{badge}@example.com"},
        )


async def test_a_provider_of_ones_own_signs_in_through_the_flow(clock: Clock) -> None:
    adapter = MemoryAdapter()
    app = build_app(
        clock=clock, adapter=adapter, providers=[Badge()], pages=Pages(new_user="/welcome")
    )
    async with client_for(app) as client:
        csrf = (await client.get("/auth/csrf")).json()["csrfToken"]
        started = await client.post(
            "/auth/signin/badge", data={"csrfToken": csrf, "badge": "staff-7"}
        )
        assert started.headers["location"] == "http://testserver/auth/callback/badge?badge=staff-7"
        finished = await client.get(started.headers["location"])
        assert finished.headers["location"].startswith("http://testserver/welcome?callbackUrl=")
        assert (await client.get("/")).json()["user"]["email"] == "staff-7@example.com"
        refused = await client.get("/auth/callback/badge?badge=visitor")
        assert _query(refused.headers["location"]) == {"error": ["AccessDenied"]}
    user = await adapter.get_user_by_account(provider="badge", provider_account_id="staff-7")
    assert user is not None and user.name == "Staff-7"
