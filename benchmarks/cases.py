"""The rows of the benchmark: the in-process cases, and :data:`CASES`, every row in order.

The in-process cases need nothing but the package and Starlette: the bare app (the
baseline every row is divided by), :class:`~asgi_session.AuthMiddleware` without a cookie,
with the same token on every request, with a new token every request, the session JSON
route, and Starlette's own ``SessionMiddleware`` for comparison. The database rows come
from :mod:`database`, registered once per data size.
"""

from __future__ import annotations

import functools
import json
from base64 import b64encode
from collections.abc import Callable

import itsdangerous
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import Scope

from asgi_session import AuthConfig, AuthMiddleware, Session
from database import database_sessions
from fixtures import CLAIMS, COOKIE, SECRET, check_ok, session_token, starlette_app
from harness import Case, Reply, Run, Target, cookie_header, http_scope, require


def _auth_app() -> Starlette:
    return starlette_app(Middleware(AuthMiddleware, config=AuthConfig(secret=SECRET)))


def _repeat(path: str, *headers: tuple[bytes, bytes]) -> Callable[[int], list[Scope]]:
    template = http_scope(path, headers)
    return lambda count: [template] * count


def _check_anonymous(scope: Scope, reply: Reply) -> None:
    check_ok(scope, reply)
    require(scope["state"].get("session", "missing") is None, "session should be None")


def _check_signed_in(scope: Scope, reply: Reply) -> None:
    check_ok(scope, reply)
    session = scope["state"].get("session")
    require(isinstance(session, Session), f"no session resolved: {session!r}")
    require(session.user.email == CLAIMS["email"], "wrong session user")


async def _bare(run: Run) -> Target:
    return Target(starlette_app(), _repeat("/"), check_ok)


async def _no_cookie(run: Run) -> Target:
    return Target(_auth_app(), _repeat("/"), _check_anonymous)


async def _same_token(run: Run) -> Target:
    requests = _repeat("/", cookie_header(COOKIE, session_token()))
    return Target(_auth_app(), requests, _check_signed_in)


async def _fresh_tokens(run: Run) -> Target:
    def requests(count: int) -> list[Scope]:
        # Every token is new (its own jti and IV), so no cache can have seen it.
        return [http_scope("/", [cookie_header(COOKIE, session_token())]) for _ in range(count)]

    return Target(_auth_app(), requests, _check_signed_in)


async def _session_route(run: Run) -> Target:
    def check(scope: Scope, reply: Reply) -> None:
        require(reply.status == 200, f"status {reply.status}")
        body = json.loads(reply.body)
        require(body["user"]["email"] == CLAIMS["email"], f"body {reply.body!r}")

    requests = _repeat("/auth/session", cookie_header(COOKIE, session_token()))
    return Target(_auth_app(), requests, check)


async def _starlette_sessions(run: Run) -> Target:
    # The cookie SessionMiddleware itself would set for {"user": ...}.
    payload = b64encode(json.dumps({"user": CLAIMS}).encode("utf-8"))
    value = itsdangerous.TimestampSigner(SECRET).sign(payload).decode("ascii")

    def check(scope: Scope, reply: Reply) -> None:
        check_ok(scope, reply)
        require(scope.get("session") == {"user": CLAIMS}, "signed cookie not read")

    app = starlette_app(Middleware(SessionMiddleware, secret_key=SECRET))
    return Target(app, _repeat("/", cookie_header("session", value)), check)


BASELINE = "bare"
SESSION_ROUTE = "session_route"
DB_SESSION = "db_session"
DB_STORED_SMALL = "db_stored_1k"
DB_STORED_LARGE = "db_stored_1m"

CASES: list[Case] = [
    Case(BASELINE, "bare Starlette app", _bare),
    Case("no_cookie", "AuthMiddleware, no cookie", _no_cookie, limit=1.1),
    Case("same_token", "AuthMiddleware, same valid JWT", _same_token, limit=1.5),
    Case("fresh_token", "AuthMiddleware, new JWT every request", _fresh_tokens, limit=3.0),
    Case(SESSION_ROUTE, "GET /auth/session, valid JWT", _session_route),
    Case("starlette_session", "Starlette SessionMiddleware, signed cookie", _starlette_sessions),
    Case(
        DB_SESSION,
        "AuthMiddleware, database session (PyMongo async)",
        functools.partial(database_sessions, stored=1, same_token=True),
        io=True,
    ),
    Case(
        "db_session_motor",
        "AuthMiddleware, database session (Motor)",
        functools.partial(database_sessions, stored=1, driver="motor", same_token=True),
        io=True,
    ),
    Case(
        DB_STORED_SMALL,
        "database session, 1,000 stored, random tokens",
        functools.partial(database_sessions, stored=1_000),
        io=True,
    ),
    Case(
        DB_STORED_LARGE,
        "database session, 1,000,000 stored, random tokens",
        functools.partial(database_sessions, stored=1_000_000),
        io=True,
    ),
]
"""The rows, in print order; the first one is the baseline the others are divided by."""
