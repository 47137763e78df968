"""The rows of the benchmark: the in-process cases, and :data:`CASES`, every row in order.

The in-process cases need nothing but the package and Starlette: the bare app (the
baseline every row is divided by), the floor (a session put in ``request.state`` for
nothing), :class:`~asgi_session.AuthMiddleware` without a cookie, with the same token on
every request (with and without a ``session`` callback), with a new token every request,
the session JSON route, and Starlette's own ``SessionMiddleware`` for comparison. Every
row but the bare one serves a handler that reads the session. The MongoDB rows come
from :mod:`database`, registered once per data size; the SQLite and PostgreSQL rows,
each with its floor (the same lookup by hand), from :mod:`sql_database`; the rows of
``BetterAuthStrategy`` (its cookie cache hit, and its database path with a floor each)
from :mod:`better_auth`. The end-to-end row (:mod:`served`) and the memory figures
(:mod:`memory`) are not cases: they run in processes of their own.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from asgi_session import AuthConfig, AuthMiddleware, Callbacks, Session
from better_auth import (
    better_auth_mongodb_floor,
    better_auth_mongodb_sessions,
    better_auth_sql_floor,
    better_auth_sql_sessions,
    cookie_cache_hits,
)
from database import database_sessions
from fixtures import (
    CLAIMS,
    COOKIE,
    SECRET,
    check_ok,
    cookie_session_app,
    session_app,
    session_token,
    starlette_app,
    starlette_session_cookie,
)
from harness import Case, Reply, Run, Target, call_once, cookie_header, http_scope, require
from sql_database import POSTGRESQL, SQLITE, sql_floor, sql_sessions


def _auth_app(callbacks: Callbacks | None = None) -> Starlette:
    config = AuthConfig(secret=SECRET, callbacks=callbacks)
    return session_app(Middleware(AuthMiddleware, config=config))


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


class _PrebuiltSession:
    """The least any session middleware does: put a session in ``request.state``.

    The session was resolved once, before timing; the handler reads it as in the other
    rows. What this row costs over the bare app is Starlette's (``request.state`` is
    built on first use, and its attributes are looked up through ``__getattr__``) plus
    one more layer of middleware: no session middleware can cost less.
    """

    def __init__(self, app: ASGIApp, session: Session) -> None:
        self.app = app
        self.session = session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"]["session"] = self.session
        await self.app(scope, receive, send)


async def _floor(run: Run) -> Target:
    cookie = cookie_header(COOKIE, session_token())
    resolved, _ = await call_once(_auth_app(), http_scope("/", [cookie]))
    app = session_app(Middleware(_PrebuiltSession, session=resolved["state"]["session"]))
    return Target(app, _repeat("/", cookie), _check_signed_in)


async def _no_cookie(run: Run) -> Target:
    return Target(_auth_app(), _repeat("/"), _check_anonymous)


async def _same_token(run: Run) -> Target:
    requests = _repeat("/", cookie_header(COOKIE, session_token()))
    return Target(_auth_app(), requests, _check_signed_in)


_ROLE = "editor"


def _id_and_role(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    # The most common session callback there is: expose the user's id and role.
    session["user"]["id"] = token["sub"]
    session["user"]["role"] = token["role"]
    return session


async def _same_token_callback(run: Run) -> Target:
    def check(scope: Scope, reply: Reply) -> None:
        _check_signed_in(scope, reply)
        user = scope["state"]["session"].user
        require(user.id == CLAIMS["sub"] and user.role == _ROLE, "session callback not run")

    token = session_token({"role": _ROLE})
    requests = _repeat("/", cookie_header(COOKIE, token))
    return Target(_auth_app(Callbacks(session=_id_and_role)), requests, check)


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
    value = starlette_session_cookie()

    def check(scope: Scope, reply: Reply) -> None:
        check_ok(scope, reply)
        require(scope.get("session") == {"user": CLAIMS}, "signed cookie not read")

    app = cookie_session_app(Middleware(SessionMiddleware, secret_key=SECRET))
    return Target(app, _repeat("/", cookie_header("session", value)), check)


BASELINE = "bare"
FLOOR = "floor"
SAME_TOKEN = "same_token"
FRESH_TOKEN = "fresh_token"
SESSION_ROUTE = "session_route"
DB_SESSION = "db_session"
DB_STORED_SMALL = "db_stored_1k"
DB_STORED_LARGE = "db_stored_1m"
SQLITE_SESSION = "sqlite_session"
SQLITE_FLOOR = "sqlite_floor"
POSTGRES_SESSION = "postgres_session"
POSTGRES_FLOOR = "postgres_floor"
BETTER_AUTH_CACHE_COMPACT = "better_auth_cache_compact"
BETTER_AUTH_CACHE_JWE = "better_auth_cache_jwe"
BETTER_AUTH_SQLITE_SESSION = "better_auth_sqlite_session"
BETTER_AUTH_SQLITE_FLOOR = "better_auth_sqlite_floor"
BETTER_AUTH_MONGODB_SESSION = "better_auth_mongodb_session"
BETTER_AUTH_MONGODB_FLOOR = "better_auth_mongodb_floor"

CASES: list[Case] = [
    Case(BASELINE, "bare Starlette app", _bare),
    Case(FLOOR, "floor: a session put in request.state, no work", _floor),
    Case("no_cookie", "AuthMiddleware, no cookie", _no_cookie, limit=1.1),
    Case(SAME_TOKEN, "AuthMiddleware, same valid JWT", _same_token, limit=1.3),
    Case(
        "same_token_callback",
        "AuthMiddleware, same JWT, session callback",
        _same_token_callback,
        limit=1.5,
    ),
    Case(FRESH_TOKEN, "AuthMiddleware, new JWT every request", _fresh_tokens, limit=2.5),
    Case(SESSION_ROUTE, "GET /auth/session, valid JWT", _session_route),
    Case("starlette_session", "Starlette SessionMiddleware, signed cookie", _starlette_sessions),
    Case(
        BETTER_AUTH_CACHE_COMPACT,
        "Better Auth, cookie cache hit (compact)",
        functools.partial(cookie_cache_hits, encoding="compact"),
    ),
    Case(
        BETTER_AUTH_CACHE_JWE,
        "Better Auth, cookie cache hit (jwe)",
        functools.partial(cookie_cache_hits, encoding="jwe"),
    ),
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
    Case(
        SQLITE_FLOOR,
        "floor: one SELECT ... JOIN by hand (SQLite)",
        functools.partial(sql_floor, kind=SQLITE),
        io=True,
    ),
    Case(
        SQLITE_SESSION,
        "AuthMiddleware, database session (SQLite)",
        functools.partial(sql_sessions, kind=SQLITE),
        io=True,
        floor=SQLITE_FLOOR,
    ),
    Case(
        POSTGRES_FLOOR,
        "floor: one SELECT ... JOIN by hand (PostgreSQL)",
        functools.partial(sql_floor, kind=POSTGRESQL),
        io=True,
    ),
    Case(
        POSTGRES_SESSION,
        "AuthMiddleware, database session (PostgreSQL)",
        functools.partial(sql_sessions, kind=POSTGRESQL),
        io=True,
        floor=POSTGRES_FLOOR,
    ),
    Case(
        BETTER_AUTH_SQLITE_FLOOR,
        "floor: HMAC + SELECT ... JOIN by hand (SQLite)",
        functools.partial(better_auth_sql_floor, kind=SQLITE),
        io=True,
    ),
    Case(
        BETTER_AUTH_SQLITE_SESSION,
        "Better Auth, database session (SQLite)",
        functools.partial(better_auth_sql_sessions, kind=SQLITE),
        io=True,
        floor=BETTER_AUTH_SQLITE_FLOOR,
    ),
    Case(
        BETTER_AUTH_MONGODB_FLOOR,
        "floor: HMAC + aggregate by hand (MongoDB)",
        better_auth_mongodb_floor,
        io=True,
    ),
    Case(
        BETTER_AUTH_MONGODB_SESSION,
        "Better Auth, database session (MongoDB)",
        better_auth_mongodb_sessions,
        io=True,
        floor=BETTER_AUTH_MONGODB_FLOOR,
    ),
]
"""The rows, in print order; the first one is the baseline the others are divided by."""

GROUPS: dict[str, list[str]] = {
    "sql": [SQLITE_FLOOR, SQLITE_SESSION, POSTGRES_FLOOR, POSTGRES_SESSION],
    # The cookie cache rows are read next to the JWT rows (the same token, remembered;
    # a new one, decrypted every request), which run with them.
    "better_auth": [
        SAME_TOKEN,
        FRESH_TOKEN,
        BETTER_AUTH_CACHE_COMPACT,
        BETTER_AUTH_CACHE_JWE,
        BETTER_AUTH_SQLITE_FLOOR,
        BETTER_AUTH_SQLITE_SESSION,
        BETTER_AUTH_MONGODB_FLOOR,
        BETTER_AUTH_MONGODB_SESSION,
    ],
    "better_auth_cache": [
        SAME_TOKEN,
        FRESH_TOKEN,
        BETTER_AUTH_CACHE_COMPACT,
        BETTER_AUTH_CACHE_JWE,
    ],
}
"""Names ``--only`` takes for several rows at once."""
