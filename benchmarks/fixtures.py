"""What the rows have in common: the signed-in user, the secret, the one-route app.

Every row serves the same ``GET /`` of a one-route Starlette app, bare or under some
middleware, and every signed-in row (in process, in the database, in @auth/core) carries
a session of the same user, so their figures differ only by what the middleware does.
"""

from __future__ import annotations

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


def session_token() -> str:
    """A valid session token for the benchmark's user, issued now."""
    return encode(CLAIMS, secret=SECRET, salt=COOKIE)


async def _homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


def starlette_app(*middleware: Middleware) -> Starlette:
    """The one-route app every row serves, under ``middleware``."""
    return Starlette(routes=[Route("/", _homepage)], middleware=list(middleware))


def check_ok(scope: Scope, reply: Reply) -> None:
    """The reply of :func:`starlette_app`'s route, with no cookie set."""
    require(reply.status == 200, f"status {reply.status}")
    require(reply.body == b"Hello, world!", f"body {reply.body!r}")
    require(not reply.header_values(b"set-cookie"), "unexpected Set-Cookie")
