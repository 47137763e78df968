"""What the rows have in common: the signed-in user, the secret, the one-route app.

Every row serves the same ``GET /`` of a one-route Starlette app, bare or under some
middleware, and every signed-in row (in process, in the database, in @auth/core) carries
a session of the same user, so their figures differ only by what the middleware does.

The bare app's handler returns a constant; under a session middleware the handler reads
the session the way a real one does (``request.state.session``, then the user's email),
so a row pays for whatever the middleware leaves to be built on first use.
"""

from __future__ import annotations

import json
from base64 import b64encode
from collections.abc import Mapping
from typing import Any

import itsdangerous
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Scope

from asgi_session.jwt import encode
from harness import Reply, require

SECRET = "benchmark-secret-benchmark-secret-0123456789"
COOKIE = "authjs.session-token"
CLAIMS = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "picture": "https://example.com/ada.png",
    "sub": "6650c0ffee6650c0ffee6650",
}
# The password of the same user, for the rows that sign in with one (``served_app``).
PASSWORD = "correct horse battery staple"


def session_token(extra: Mapping[str, Any] | None = None) -> str:
    """A valid session token for the benchmark's user, issued now, with ``extra`` claims."""
    return encode({**CLAIMS, **(extra or {})}, secret=SECRET, salt=COOKIE)


def starlette_session_cookie() -> str:
    """The cookie Starlette's ``SessionMiddleware`` would set for ``{"user": CLAIMS}``."""
    payload = b64encode(json.dumps({"user": CLAIMS}).encode("utf-8"))
    return itsdangerous.TimestampSigner(SECRET).sign(payload).decode("ascii")


async def homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


async def session_homepage(request: Request) -> PlainTextResponse:
    session = request.state.session
    if session is not None:
        session.user.email  # noqa: B018 (what a handler reads; its cost is the point)
    return PlainTextResponse("Hello, world!")


async def cookie_session_homepage(request: Request) -> PlainTextResponse:
    # Starlette's SessionMiddleware keeps a plain dict in request.session.
    user = request.session.get("user")
    if user is not None:
        user["email"]
    return PlainTextResponse("Hello, world!")


def starlette_app(*middleware: Middleware) -> Starlette:
    """The one-route app of the bare row: its handler returns a constant."""
    return Starlette(routes=[Route("/", homepage)], middleware=list(middleware))


def session_app(*middleware: Middleware) -> Starlette:
    """The same app whose handler reads ``request.state.session.user.email``."""
    return Starlette(routes=[Route("/", session_homepage)], middleware=list(middleware))


def cookie_session_app(*middleware: Middleware) -> Starlette:
    """The same app whose handler reads ``request.session["user"]["email"]``."""
    return Starlette(routes=[Route("/", cookie_session_homepage)], middleware=list(middleware))


def check_ok(scope: Scope, reply: Reply) -> None:
    """The reply of :func:`starlette_app`'s route, with no cookie set."""
    require(reply.status == 200, f"status {reply.status}")
    require(reply.body == b"Hello, world!", f"body {reply.body!r}")
    require(not reply.header_values(b"set-cookie"), "unexpected Set-Cookie")
