"""Auth.js v5's own browser client, ``next-auth/react``, signing in and out of our server.

Apps that move from Next.js keep their front end, so the client must work against our
routes unchanged. The real package runs in Node against the app served over loopback
HTTP; only a cookie jar stands in for the browser (Node's ``fetch`` keeps no cookies).
It asks for a CSRF token, fails to sign in twice (a wrong password, then an
``authorize`` that rejects with its own error code), signs in, reads the session, and
signs out; each result is checked here as the client reported it. The same run goes
through the built-in ``Password`` provider too (``signIn("password", ...)``), where the
second failure is an address not yet confirmed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import MemoryAdapter
from asgi_session.errors import CredentialsSignin
from asgi_session.passwords import PasswordHasher
from asgi_session.providers import Credentials, Password
from tests.support.live_server import LiveServer
from tests.support.node import run_node_script

SECRET = "nextauth-react-test-secret-0123456789abcdef"
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"
NAME = "Ada Lovelace"
LOCKED_EMAIL = "locked@example.com"
SESSION_COOKIE = "authjs.session-token"
CSRF_COOKIE = "authjs.csrf-token"


class InvalidLogin(CredentialsSignin):
    """What an app raises to tell the client why sign-in failed, as Auth.js apps do."""

    code = "invalid_login"


@dataclass
class ClientRun:
    """The client's results, where the server was, and what ``authorize`` was asked."""

    provider: str
    url: str
    result: dict[str, Any]
    attempts: list[dict[str, str]]

    @property
    def custom_code(self) -> str:
        """The code the second failed sign-in must come back with."""
        # An address not yet confirmed answers as a wrong password does (no enumeration).
        return "invalid_login" if self.provider == "credentials" else "credentials"


def _build_app(url: str, attempts: list[dict[str, str]]) -> Starlette:
    def authorize(credentials: dict[str, str], request: Request) -> dict[str, Any] | None:
        attempts.append(dict(credentials))
        if credentials.get("email") == LOCKED_EMAIL:
            raise InvalidLogin()
        if credentials.get("email") == EMAIL and credentials.get("password") == PASSWORD:
            return {"id": "user-ada", "name": NAME, "email": EMAIL}
        return None

    config = AuthConfig(secret=SECRET, url=url, providers=[Credentials(authorize=authorize)])
    return Starlette(middleware=[Middleware(AuthMiddleware, config=config)])


def _build_password_app(url: str) -> Starlette:
    """The Password provider over a store holding Ada (confirmed) and a user who has not
    confirmed their address yet, so signing in answers its own code."""
    adapter = MemoryAdapter()
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

    async def seed() -> None:
        for email, verified in ((EMAIL, datetime.now(UTC)), (LOCKED_EMAIL, None)):
            user = await adapter.create_user(
                {"email": email, "name": NAME, "email_verified": verified}
            )
            await adapter.link_account(
                {
                    "user_id": user.id,
                    "type": "credentials",
                    "provider": "password",
                    "provider_account_id": user.id,
                    "password": hasher.hash(PASSWORD),
                }
            )

    asyncio.run(seed())

    async def send(to: str, subject: str, text: str, link: str, request: Request) -> None:
        return None

    provider = Password(send=send, hasher=hasher, require_verified_email=True)
    config = AuthConfig(
        secret=SECRET, url=url, adapter=adapter, strategy="jwt", providers=[provider]
    )
    return Starlette(middleware=[Middleware(AuthMiddleware, config=config)])


def _step(run: ClientRun, name: str) -> Any:
    """What the client returned for step ``name``; fails the test if the call threw."""
    value = run.result[name]
    if isinstance(value, dict) and "thrown" in value:
        pytest.fail(f"{name} threw {value['thrown']}\nrequests: {run.result['requests']}")
    return value


@pytest.fixture(scope="module", params=["credentials", "password"])
def client_run(request: pytest.FixtureRequest) -> Iterator[ClientRun]:
    """One run of the client script through the whole sign-in and sign-out sequence."""
    attempts: list[dict[str, str]] = []
    provider: str = request.param

    def build(url: str) -> Starlette:
        return _build_app(url, attempts) if provider == "credentials" else _build_password_app(url)

    with LiveServer(build) as server:
        result = run_node_script(
            "nextauth_react.mjs",
            {
                "provider": provider,
                "authUrl": f"{server.url}/auth",
                "email": EMAIL,
                "password": PASSWORD,
                "wrongPassword": "wrong",
                "customCodeEmail": LOCKED_EMAIL,
                "callbackUrl": "/dashboard",
            },
            timeout=60,
        )
    yield ClientRun(provider=provider, url=server.url, result=result, attempts=attempts)


def test_every_call_reaches_the_server(client_run: ClientRun) -> None:
    requests = client_run.result["requests"]
    assert requests.count(f"POST /auth/callback/{client_run.provider} 200") == 3, requests
    assert "POST /auth/signout 200" in requests, requests
    assert all(entry.endswith(" 200") for entry in requests), requests
    if client_run.provider == "credentials":
        emails = [attempt["email"] for attempt in client_run.attempts]
        assert emails == [EMAIL, LOCKED_EMAIL, EMAIL]


def test_get_csrf_token(client_run: ClientRun) -> None:
    token = _step(client_run, "csrfToken")
    assert isinstance(token, str)
    assert len(token) >= 32
    assert CSRF_COOKIE in client_run.result["cookiesSignedIn"]


def test_wrong_password_is_credentials_signin(client_run: ClientRun) -> None:
    failed = _step(client_run, "wrongPassword")
    # As with Auth.js, the failure is in the answer's URL; the request itself succeeded.
    assert failed == {
        "error": "CredentialsSignin",
        "code": "credentials",
        "status": 200,
        "ok": True,
        "url": None,
    }


def test_authorize_error_code_reaches_the_client(client_run: ClientRun) -> None:
    failed = _step(client_run, "customCode")
    assert failed == {
        "error": "CredentialsSignin",
        "code": client_run.custom_code,
        "status": 200,
        "ok": True,
        "url": None,
    }


def test_sign_in_returns_the_callback_url(client_run: ClientRun) -> None:
    signed_in = _step(client_run, "signedIn")
    assert signed_in.get("error") is None
    assert signed_in.get("code") is None
    assert (signed_in["status"], signed_in["ok"]) == (200, True)
    assert signed_in["url"] == f"{client_run.url}/dashboard"
    assert SESSION_COOKIE in client_run.result["cookiesSignedIn"]


def test_get_session_returns_the_user(client_run: ClientRun) -> None:
    session = _step(client_run, "session")
    assert session is not None, client_run.result["requests"]
    # Auth.js's default session shows the user's name, email and image, nothing more.
    assert set(session) == {"user", "expires"}
    assert session["user"] == {"name": NAME, "email": EMAIL}
    expires = datetime.fromisoformat(session["expires"])
    assert expires.tzinfo is not None
    now = datetime.now(UTC)
    assert now + timedelta(days=29) < expires <= now + timedelta(days=30, minutes=5)


def test_sign_out_ends_the_session(client_run: ClientRun) -> None:
    assert _step(client_run, "signOut") == {"url": f"{client_run.url}/"}
    assert _step(client_run, "sessionSignedOut") is None
    assert SESSION_COOKIE not in client_run.result["cookiesSignedOut"]
