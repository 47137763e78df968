"""An app with password accounts and passkeys, and browsers that use a software
authenticator against it as ``next-auth/webauthn`` does.

The app's URL has a host name (browsers refuse an IP address as a relying party id),
and the clients talk to it under that name, so the origin the authenticator reports is
the one the app expects unless a test forges another.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import httpx2
import pyotp
from starlette.applications import Starlette

from asgi_session import mfa
from asgi_session.backends import Adapter, MemoryAdapter
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.models import Authenticator
from asgi_session.providers import Passkey
from tests.support.apps import SESSION_COOKIE, config_of, csrf_token
from tests.support.authenticator import SoftwareAuthenticator
from tests.support.passwords import GOOD_PASSWORD, Outbox, confirm, password_app, sign_up

APP_URL = "http://localhost"
#: Where the sign-ins in these tests ask to go afterwards.
CALLBACK_URL = f"{APP_URL}/after"
#: Where every refused passkey sends the browser, as in Auth.js.
REFUSED_URL = f"{APP_URL}/auth/signin?error=WebAuthnVerificationError"
CHALLENGE_COOKIE = "authjs.challenge"
TWO_FACTOR_COOKIE = "authjs.two-factor"
#: A moment to start the clock at, so that cookie lifetimes are exact.
START = 1_800_000_000.0


def passkey_app(
    outbox: Outbox,
    *,
    adapter: Adapter | None = None,
    strategy: Literal["jwt", "database"] = "jwt",
    **options: Any,
) -> Starlette:
    """Password accounts and the ``Passkey`` provider at :data:`APP_URL`; ``options`` go
    to :func:`~tests.support.passwords.password_app` (``config_*`` to the AuthConfig)."""
    options.setdefault("config_url", APP_URL)
    return password_app(
        outbox,
        adapter=adapter if adapter is not None else MemoryAdapter(),
        strategy=strategy,
        providers=[Passkey()],
        **options,
    )


def browser(app: Any, ip: str = "203.0.113.7") -> httpx2.AsyncClient:
    """A client (one browser) at :data:`APP_URL` from ``ip``, following no redirects."""
    transport = httpx2.ASGITransport(app=app, client=(ip, 50_000))
    return httpx2.AsyncClient(transport=transport, base_url=APP_URL)


def phone() -> SoftwareAuthenticator:
    """A platform authenticator used from a browser at the app's origin."""
    return SoftwareAuthenticator(APP_URL)


async def new_user(
    client: httpx2.AsyncClient, outbox: Outbox, email: str = "ada@example.com"
) -> None:
    """Sign up as ``email`` and follow the confirmation link: signed in, with a fresh
    session and a proven address (a passkey is never added to an unproven account)."""
    response = await sign_up(client, email=email)
    assert response.status_code == 302, response.text
    response = await confirm(client, outbox.last(email).url)
    assert response.status_code == 302, response.text


async def password_sign_in(
    client: httpx2.AsyncClient, email: str = "ada@example.com", callback_url: str = CALLBACK_URL
) -> httpx2.Response:
    token = await csrf_token(client)
    return await client.post(
        "/auth/callback/password",
        data={
            "csrfToken": token,
            "email": email,
            "password": GOOD_PASSWORD,
            "callbackUrl": callback_url,
        },
    )


async def sign_out(client: httpx2.AsyncClient) -> None:
    token = await csrf_token(client)
    response = await client.post("/auth/signout", data={"csrfToken": token})
    assert response.status_code in (200, 302), response.text


async def options(client: httpx2.AsyncClient, action: str | None) -> httpx2.Response:
    """``GET /auth/webauthn-options/passkey``, as ``signIn("passkey")`` begins."""
    query = "" if action is None else f"?action={action}"
    return await client.get(f"/auth/webauthn-options/passkey{query}")


async def options_of(client: httpx2.AsyncClient, action: str) -> dict[str, Any]:
    """The ``options`` of a ceremony that may begin (its challenge cookie now set)."""
    response = await options(client, action)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["action"] == action
    found: dict[str, Any] = body["options"]
    return found


async def answer(
    client: httpx2.AsyncClient,
    action: str,
    data: object,
    *,
    callback_url: str = CALLBACK_URL,
    csrf: bool = True,
) -> httpx2.Response:
    """``POST /auth/callback/passkey`` as ``next-auth/webauthn`` sends it: the browser's
    answer (a dict is sent as its JSON, anything else as it is) in ``data``."""
    fields = {
        "action": action,
        "data": data if isinstance(data, str) else json.dumps(data),
        "callbackUrl": callback_url,
    }
    if csrf:
        fields["csrfToken"] = await csrf_token(client)
    return await client.post(
        "/auth/callback/passkey", data=fields, headers={"X-Auth-Return-Redirect": "1"}
    )


async def register(
    client: httpx2.AsyncClient, authenticator: SoftwareAuthenticator, **forge: Any
) -> httpx2.Response:
    """Add a passkey made by ``authenticator`` to the signed-in user; ``forge`` goes to
    :meth:`SoftwareAuthenticator.register`."""
    made = authenticator.register(await options_of(client, "register"), **forge)
    return await answer(client, "register", made)


async def sign_in_with_passkey(
    client: httpx2.AsyncClient, authenticator: SoftwareAuthenticator, **forge: Any
) -> httpx2.Response:
    """Sign in with a passkey of ``authenticator`` (the newest, unless ``credential=``);
    ``forge`` goes to :meth:`SoftwareAuthenticator.authenticate`."""
    signed = authenticator.authenticate(await options_of(client, "authenticate"), **forge)
    return await answer(client, "authenticate", signed)


def returned_url(response: httpx2.Response) -> str:
    """The URL a ``X-Auth-Return-Redirect: 1`` answer sends the browser to."""
    assert response.status_code == 200, response.text
    url: str = response.json()["url"]
    return url


def url_error(url: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get("error")
    return values[0] if values else None


def session_token(client: httpx2.AsyncClient) -> str | None:
    return client.cookies.get(SESSION_COOKIE)


def set_cookie(client: httpx2.AsyncClient, name: str, value: str) -> None:
    """Put ``value`` in the browser's cookie ``name``, where the app's own responses
    replace or clear it (http.cookiejar files a dotless host's cookies under
    ``<host>.local``)."""
    client.cookies.delete(name)
    client.cookies.set(name, value, domain=f"{urlsplit(APP_URL).hostname}.local")


async def passkeys(adapter: Adapter, email: str = "ada@example.com") -> list[Authenticator]:
    """``email``'s stored passkeys, oldest first."""
    assert isinstance(adapter, MemoryAdapter | MongoDBAdapter)
    user = await adapter.get_user_by_email(email)
    assert user is not None, f"no user {email}"
    return await adapter.list_authenticators_by_user_id(user.id)


async def _meet(meeting: asyncio.Barrier | None) -> None:
    if meeting is not None:
        await asyncio.wait_for(meeting.wait(), timeout=5)


class RacingMemoryAdapter(MemoryAdapter):
    """A :class:`MemoryAdapter` whose passkey look-ups wait for each other while
    :attr:`meeting` is set: so many sign-ins read the same stored counter before any
    stores a new one, as concurrent requests on many servers may."""

    meeting: asyncio.Barrier | None = None

    async def get_authenticator(self, credential_id: str) -> Authenticator | None:
        found = await super().get_authenticator(credential_id)
        await _meet(self.meeting)
        return found


class RacingMongoDBAdapter(MongoDBAdapter):
    """:class:`RacingMemoryAdapter`, over MongoDB."""

    meeting: asyncio.Barrier | None = None

    async def get_authenticator(self, credential_id: str) -> Authenticator | None:
        found = await super().get_authenticator(credential_id)
        await _meet(self.meeting)
        return found


async def turn_on_totp(app: Any, email: str, now: float) -> str:
    """Enrol an authenticator app for ``email`` through the app's own code (two-factor
    sign-in is on from then); its secret."""
    config = config_of(app)
    assert config.adapter is not None
    user = await config.adapter.get_user_by_email(email)
    assert user is not None
    secret = mfa.new_totp_secret()
    codes = await mfa.enable_totp(config, user.id, secret, pyotp.TOTP(secret).at(now))
    assert codes
    return secret
