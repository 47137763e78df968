"""The apps the end-to-end rows serve with uvicorn (``served_app:bare`` and the others).

Each is the in-process rows' one-route app with the same handler (see :mod:`fixtures`),
plus a ``/whoami`` route the row asks once, before timing, to check that the cookie it
sends is resolved; wrk only ever requests ``/``, the first route.

``password_app`` signs its one user in with an email and a password (``Password``, the
default ``PasswordHasher``: argon2id in worker threads), for :mod:`passwords`;
``password_app_on_loop`` is the same app hashing on the event loop instead, a
counterfactual that shows what the worker threads are for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import MemoryAdapter
from fixtures import (
    CLAIMS,
    PASSWORD,
    SECRET,
    cookie_session_homepage,
    homepage,
    session_homepage,
)


async def _whoami(request: Request) -> PlainTextResponse:
    session = request.state.session
    return PlainTextResponse("" if session is None else str(session.user.email))


async def _cookie_whoami(request: Request) -> PlainTextResponse:
    user = request.session.get("user") or {}
    return PlainTextResponse(str(user.get("email", "")))


bare = Starlette(routes=[Route("/", homepage)])
jwt_session = Starlette(
    routes=[Route("/", session_homepage), Route("/whoami", _whoami)],
    middleware=[Middleware(AuthMiddleware, config=AuthConfig(secret=SECRET))],
)
starlette_session = Starlette(
    routes=[Route("/", cookie_session_homepage), Route("/whoami", _cookie_whoami)],
    middleware=[Middleware(SessionMiddleware, secret_key=SECRET)],
)


async def _no_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    """``Password(send=...)``: signing in with the right password mails nothing."""


try:
    from asgi_session.passwords import PasswordHasher, Verified
    from asgi_session.providers import Password
except ImportError:  # no passwords extra: only the password apps need it (passwords.py skips)
    pass
else:

    class _OnLoopHasher(PasswordHasher):
        """The counterfactual: the default hasher, its ``async`` methods hashing on the
        event loop, as an app calling the hashing library from a handler would."""

        async def hash_async(self, password: str) -> str:
            return self.hash(password)

        async def verify_async(self, password: str, stored: str | None) -> Verified:
            return self.verify(password, stored)

        async def verify_nothing(self, password: str) -> None:
            self._verify_nothing(password)

    def _password_app(hasher: PasswordHasher) -> Starlette:
        adapter = MemoryAdapter()

        @asynccontextmanager
        async def seed(app: Starlette) -> AsyncIterator[None]:
            # The user, and an account holding the hash of the password made with the
            # hasher's own (by default, the real) parameters: at start-up, before the
            # first request. Not with asyncio.run at import: older uvicorn versions
            # (the bench extra allows 0.30) import the app inside their running loop.
            user = await adapter.create_user(
                {"email": CLAIMS["email"], "name": CLAIMS["name"], "email_verified": None}
            )
            await adapter.link_account(
                {
                    "user_id": user.id,
                    "type": "credentials",
                    "provider": "password",
                    "provider_account_id": user.id,
                    "password": await hasher.hash_async(PASSWORD),
                }
            )
            yield

        config = AuthConfig(
            secret=SECRET,
            # The port is the row's pick: the links the provider would mail name the
            # host the request came to.
            trust_host=True,
            adapter=adapter,
            strategy="jwt",
            providers=[Password(send=_no_email, hasher=hasher)],
            # Every sign-in here is the same user from the same address, as real
            # traffic is not. The limits count an attempt only until it succeeds, so
            # they would refuse one only with more than 5 in flight at once (a server
            # stalled for a quarter of a second), failing the row instead of timing the
            # stall. With them on, the figures are the same (see the README).
            rate_limits=None,
        )
        return Starlette(
            routes=[Route("/", session_homepage), Route("/whoami", _whoami)],
            middleware=[Middleware(AuthMiddleware, config=config)],
            lifespan=seed,
        )

    password_app = _password_app(PasswordHasher())
    password_app_on_loop = _password_app(_OnLoopHasher())
