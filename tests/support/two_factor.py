"""Two-factor sign-in under test: an app with passwords and second factors on, a clock
the test moves, and what a user does with an authenticator app (pyotp computes its codes
from the secret the enrolment page shows)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import httpx2
import pyotp
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import Adapter, MemoryAdapter, SessionStrategy
from tests.support.apps import Clock, config_of, csrf_token, show_session
from tests.support.passwords import Outbox, Store, confirm, password_app, sign_up

#: The start of a 30-second TOTP step (and of a minute): codes change at known moments.
ALIGNED = 1_800_000_000.0
#: Seconds in a TOTP step.
STEP = 30
TWO_FACTOR_COOKIE = "authjs.two-factor"
ENROLMENT_COOKIE = "authjs.totp-enrolment"
MFA_URL = "http://testserver/auth/mfa"

_SECRET = re.compile(r"<code data-totp-secret>([^<]+)</code>")
_RECOVERY_CODE = re.compile(r"<li><code>([^<]+)</code></li>")
_TOTP_STATE = re.compile(r"<p data-factor=totp>([^<]*)</p>")


def two_factor_config(
    clock: Clock,
    *,
    outbox: Outbox | None = None,
    adapter: Adapter | None = None,
    strategy: Literal["jwt", "database"] | SessionStrategy = "jwt",
    providers: Sequence[Any] = (),
    **options: Any,
) -> AuthConfig:
    """The config of :func:`tests.support.passwords.password_app` with second factors on
    (``AuthConfig`` options named ``config_*``, as there) and ``clock``."""
    options.setdefault("config_two_factor", True)
    app = password_app(
        outbox if outbox is not None else Outbox(),
        adapter=adapter if adapter is not None else MemoryAdapter(),
        strategy=strategy,
        providers=providers,
        config_clock=clock,
        **options,
    )
    return config_of(app)


def app_of(config: AuthConfig, routes: Sequence[BaseRoute] = ()) -> Starlette:
    """An app behind ``config``: ``/`` shows the session, ``routes`` add to it."""
    return Starlette(
        routes=[Route("/", show_session), *routes],
        middleware=[Middleware(AuthMiddleware, config=config)],
    )


def two_factor_app(clock: Clock, *, routes: Sequence[BaseRoute] = (), **options: Any) -> Starlette:
    """:func:`two_factor_config`'s app, with ``routes`` beside ``/``."""
    return app_of(two_factor_config(clock, **options), routes)


def code_at(secret: str, when: float) -> str:
    """The code an authenticator app holding ``secret`` shows at ``when``."""
    return pyotp.TOTP(secret).at(when)


def secret_on(page: httpx2.Response) -> str:
    """The base32 secret the enrolment page shows (in groups of four)."""
    found = _SECRET.search(page.text)
    assert found, f"no TOTP secret on the page: {page.text[:500]}"
    return found.group(1).replace(" ", "")


def recovery_codes_on(page: httpx2.Response) -> list[str]:
    """The recovery codes a page lists."""
    assert "<ol data-recovery-codes>" in page.text, page.text[:500]
    return _RECOVERY_CODE.findall(page.text)


async def enrol(client: httpx2.AsyncClient, clock: Clock) -> tuple[str, list[str]]:
    """Turn TOTP on for the signed-in (fresh) user, as they would: read the secret off
    the enrolment page, confirm it with the code of this moment. The secret and the
    recovery codes shown."""
    page = await client.get("/auth/mfa/totp")
    assert page.status_code == 200, (page.status_code, page.headers.get("location"))
    secret = secret_on(page)
    confirmed = await client.post(
        "/auth/mfa/totp",
        data={"csrfToken": await csrf_token(client), "code": code_at(secret, clock.now)},
    )
    assert confirmed.status_code == 200, (confirmed.status_code, confirmed.headers)
    return secret, recovery_codes_on(confirmed)


async def confirmed_user(
    client: httpx2.AsyncClient, outbox: Outbox, email: str = "ada@example.com"
) -> None:
    """Sign ``email`` up and prove the address with the link mailed to it (an account
    nobody has confirmed takes no second factor), signed in."""
    response = await sign_up(client, email)
    assert response.status_code == 302, response.text
    confirmed = await confirm(client, outbox.last(email).url)
    assert confirmed.status_code == 302, confirmed.text


async def enrolled_user(
    client: httpx2.AsyncClient, clock: Clock, outbox: Outbox, email: str = "ada@example.com"
) -> tuple[str, list[str]]:
    """Sign ``email`` up (confirmed), enrol TOTP, sign out; then the clock moves to the
    next step, so the next code is one the enrolment did not use. The secret and the
    recovery codes."""
    await confirmed_user(client, outbox, email)
    enrolled = await enrol(client, clock)
    await sign_out(client)
    clock.advance(STEP)
    return enrolled


async def sign_out(client: httpx2.AsyncClient) -> None:
    response = await client.post("/auth/signout", data={"csrfToken": await csrf_token(client)})
    assert response.status_code == 302, response.text


async def answer(client: httpx2.AsyncClient, code: str, **headers: str) -> httpx2.Response:
    """Send ``code`` to the challenge after a first factor, as its page does."""
    return await client.post(
        "/auth/mfa",
        data={"csrfToken": await csrf_token(client), "code": code},
        headers=headers,
    )


def challenge_of(client: httpx2.AsyncClient) -> str:
    """The sealed challenge the client holds."""
    value = client.cookies.get(TWO_FACTOR_COOKIE)
    assert value, "no challenge cookie"
    return value


def hold_challenge(client: httpx2.AsyncClient, value: str) -> None:
    """Put a challenge cookie (back) into the client's jar, in place of any it holds, as
    the app would have set it (a cookie of another domain would be sent beside it)."""
    client.cookies.delete(TWO_FACTOR_COOKIE)
    host = client.base_url.host
    # The standard library's cookie jar keeps a dotless host's cookies under host.local.
    client.cookies.set(TWO_FACTOR_COOKIE, value, domain=host if "." in host else f"{host}.local")


async def totp_state(client: httpx2.AsyncClient) -> str:
    """What the security page says of the authenticator app ("On. N recovery codes
    left." or "Off.")."""
    page = await client.get("/auth/account/security")
    assert page.status_code == 200, page.headers.get("location")
    found = _TOTP_STATE.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


async def stored_text(store: Store) -> str:
    """Everything the store holds, as text: to look for what must never be stored."""
    if store.db is not None:
        parts = []
        for name in await store.db.list_collection_names():
            parts.append(repr(await store.db[name].find().to_list(None)))
        return "\n".join(parts)
    adapter = store.adapter
    assert isinstance(adapter, MemoryAdapter)
    return repr((adapter._users, adapter._accounts, adapter._tokens, adapter._sessions))
