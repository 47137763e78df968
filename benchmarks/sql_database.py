"""The SQL database rows: sessions kept in SQLite and PostgreSQL, and their floors.

Each database has two rows, timed in the same run: the one-route app under
:class:`~asgi_session.AuthMiddleware` with
:class:`~asgi_session.backends.sql.SQLAdapter` (``strategy="database"``, uncached, as
the MongoDB rows), the same session cookie on every request; and its floor, the cheapest
way to do the same lookup by hand: a pure ASGI middleware running one ``SELECT ... JOIN``
of the session and its user on the adapter's own engine (the same driver and pool), the
row put in ``request.state`` for the same handler. A row divided by its floor is what
asgi-session adds to the query.

SQLite is a file in a temporary directory of the row's own, deleted afterwards.
PostgreSQL is the server ``DATABASE_URL`` names, or else a throwaway one started on
first use with the test suite's launcher (``tests/support/postgres.py``: Debian's
PostgreSQL, a cluster of its own on a free loopback port) and stopped, its data deleted,
when the run ends (:class:`PostgreSQL`, one per run through ``run.shared(PostgreSQL)``);
each row gets a database of its own, dropped afterwards. Without the ``sql`` extra, or
without a server, the rows are skipped (:class:`~harness.CaseSkipped`).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from asgi_session import AuthConfig, AuthMiddleware, Session
from database import Server, _uncached
from fixtures import CLAIMS, COOKIE, SECRET, check_ok, session_app
from harness import (
    COMMON_HEADERS,
    CaseSkipped,
    Extra,
    Reply,
    Run,
    Target,
    cookie_header,
    http_scope,
    require,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from asgi_session.backends.sql import SQLAdapter

# Run as a script, Python puts benchmarks/ on the path, not the repository: the
# PostgreSQL rows borrow the test suite's launcher from tests/support.
_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
_NEEDS = "pip install 'asgi-session[sql]'"
# How long the seeded session lasts: AuthConfig's default max_age, so within its
# update_age resolving it writes nothing.
_MAX_AGE = timedelta(days=30)

# The floor's query, on the tables of SQLAdapter's default preset ("drizzle"): the
# session and its user, the session unexpired.
_BY_HAND = (
    'SELECT u.id, u.name, u.email, u.image FROM "session" AS s '
    'JOIN "user" AS u ON u.id = s."userId" '
    'WHERE s."sessionToken" = :token AND s.expires > :now'
)


# -- the server ------------------------------------------------------------------------


def _missing_driver(driver: str) -> str | None:
    """Why the rows of a database cannot run here, or ``None``."""
    for module in ("sqlalchemy", driver):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed ({_NEEDS})"
    return None


class PostgreSQL(Server):
    """The PostgreSQL server of a run: ``DATABASE_URL``, or one started on first use
    (its cluster deleted at the end)."""

    async def _connect(self) -> str:
        missing = _missing_driver("asyncpg")
        if missing is not None:
            raise CaseSkipped(missing)
        from tests.support.postgres import (
            PostgresServer,
            asyncpg_url,
            remove_stale_clusters,
        )

        external = os.environ.get("DATABASE_URL")
        if external:
            return asyncpg_url(external)
        try:
            remove_stale_clusters()
            server = PostgresServer()
        except RuntimeError as exc:
            raise CaseSkipped(f"cannot start PostgreSQL: {_first_line(exc)}") from exc
        # Known before it starts, so that close() stops it even when interrupted. Starting
        # blocks the loop a few seconds (initdb), while no case is being timed.
        self._server = server
        try:
            server.start()
        except (RuntimeError, OSError) as exc:
            self.close()
            raise CaseSkipped(f"cannot start PostgreSQL: {_first_line(exc)}") from exc
        return server.url


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# -- a database of the row's own -------------------------------------------------------


@dataclass
class _Database:
    """An empty database for one row: its URL, and how to delete it."""

    url: str
    delete: Callable[[], Awaitable[None]]


async def _sqlite_database(run: Run) -> _Database:
    missing = _missing_driver("aiosqlite")
    if missing is not None:
        raise CaseSkipped(missing)
    directory = tempfile.mkdtemp(prefix="asgi-session-bench-")

    async def delete() -> None:
        shutil.rmtree(directory, ignore_errors=True)

    return _Database(f"sqlite+aiosqlite:///{directory}/auth.db", delete)


async def _postgresql_database(run: Run) -> _Database:
    server_url = await run.shared(PostgreSQL).url()
    from sqlalchemy.exc import SQLAlchemyError

    from tests.support.postgres import ScratchDatabases

    databases = ScratchDatabases(server_url)
    try:
        url = await databases.create()
    except (SQLAlchemyError, OSError) as exc:
        await databases.aclose()
        where = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "the server"
        raise CaseSkipped(f"cannot create a database on {where}: {_first_line(exc)}") from exc

    async def delete() -> None:
        try:
            await databases.drop(url)
        finally:
            await databases.aclose()

    return _Database(url, delete)


_DATABASES: dict[str, Callable[[Run], Awaitable[_Database]]] = {
    SQLITE: _sqlite_database,
    POSTGRESQL: _postgresql_database,
}


# -- statements counted ----------------------------------------------------------------


@dataclass
class _Statements:
    """Statements the engine sent, counted by a ``before_cursor_execute`` listener."""

    reads: int = 0
    writes: int = 0
    other: int = 0

    def count(self, statement: str) -> None:
        verb = statement.lstrip()[:6].upper()
        if verb == "SELECT":
            self.reads += 1
        elif verb in ("INSERT", "UPDATE", "DELETE"):
            self.writes += 1
        else:
            self.other += 1

    def listen(self, engine: AsyncEngine) -> None:
        from sqlalchemy import event

        def before_cursor_execute(*args: Any) -> None:
            self.count(args[2])  # (connection, cursor, statement, parameters, ...)

        event.listen(engine.sync_engine, "before_cursor_execute", before_cursor_execute)


# -- the rows --------------------------------------------------------------------------


async def _seeded_adapter(database: _Database) -> tuple[SQLAdapter, str]:
    """An adapter on ``database``, its tables created as an app's start-up creates them,
    holding the benchmark's user and one session of theirs (stored as a sign-in stores
    it, through the adapter): the adapter and the session's token."""
    from asgi_session.backends.sql import SQLAdapter

    adapter = SQLAdapter(database.url)
    try:
        await adapter.create_tables()
        user = await adapter.create_user(
            {"name": CLAIMS["name"], "email": CLAIMS["email"], "image": CLAIMS["picture"]}
        )
        now = datetime.now(UTC)
        token = secrets.token_urlsafe(32)
        await adapter.create_session(
            {
                "session_token": token,
                "user_id": user.id,
                "expires": now + _MAX_AGE,
                "created_at": now,
                "last_seen_at": now,
                "user_agent": dict(COMMON_HEADERS)[b"user-agent"].decode("latin-1"),
            }
        )
    except BaseException:
        await adapter.close()
        raise
    return adapter, token


def _same_cookie(token: str) -> Callable[[int], list[Scope]]:
    template = http_scope("/", [cookie_header(COOKIE, token)])
    return lambda count: [template] * count


def _statements_per_request(
    statements: _Statements, served: Callable[[], int]
) -> Callable[[], Extra]:
    def extra() -> Extra:
        requests = served()
        reads, writes = statements.reads / requests, statements.writes / requests
        line = f"statements per request: {reads:.2f} (SELECT), writes: {writes:g}"
        if statements.other:
            line += f", other statements: {statements.other / requests:g}"
        return Extra({"reads_per_request": reads, "writes_per_request": writes}, [line])

    return extra


@dataclass
class _Opened:
    adapter: SQLAdapter
    token: str
    statements: _Statements
    close: Callable[[], Awaitable[None]]


async def _open(run: Run, kind: str) -> _Opened:
    database = await _DATABASES[kind](run)
    try:
        adapter, token = await _seeded_adapter(database)
    except BaseException:
        await database.delete()
        raise

    async def close() -> None:
        try:
            await adapter.close()
        finally:
            await database.delete()

    # Counted from here: every request the row sends, and nothing the seeding sent.
    statements = _Statements()
    statements.listen(adapter.engine)
    return _Opened(adapter, token, statements, close)


def _counting(
    requests: Callable[[int], list[Scope]],
) -> tuple[Callable[[int], list[Scope]], Callable[[], int]]:
    """``requests``, and how many requests it has made (checks and warm-up included, as
    the statements counted are)."""
    served = 0

    def counted(count: int) -> list[Scope]:
        nonlocal served
        served += count
        return requests(count)

    def total() -> int:
        return served

    return counted, total


async def sql_sessions(run: Run, *, kind: str) -> Target:
    """Requests carrying a database session cookie, resolved by ``SQLAdapter``."""
    opened = await _open(run, kind)
    config = AuthConfig(secret=SECRET, adapter=opened.adapter, strategy=_uncached())

    def check(scope: Scope, reply: Reply) -> None:
        check_ok(scope, reply)
        session = scope["state"].get("session")
        require(isinstance(session, Session), f"no session resolved: {session!r}")
        require(session.user.email == CLAIMS["email"], "wrong session user")

    requests, served = _counting(_same_cookie(opened.token))
    app = session_app(Middleware(AuthMiddleware, config=config))
    return Target(
        app, requests, check, _statements_per_request(opened.statements, served), opened.close
    )


class _ByHand:
    """The session a lookup by hand gives the handler: the user's row, as it came."""

    __slots__ = ("user",)

    def __init__(self, user: Any) -> None:
        self.user = user


class _LookupByHand:
    """The cheapest database session there is: the cookie's token, one ``SELECT ...
    JOIN`` of the session and its user on ``engine``, the row in ``request.state``.

    No cookie parsing beyond splitting the header, no session object, no expiry
    extended, nothing written: a floor, not a session middleware.
    """

    def __init__(self, app: ASGIApp, engine: AsyncEngine) -> None:
        from sqlalchemy import text

        self.app = app
        self.engine = engine
        self.query = text(_BY_HAND)
        # How the preset's columns keep a time: milliseconds on SQLite, a UTC timestamp
        # without a time zone on PostgreSQL.
        if engine.dialect.name == "sqlite":
            self.now: Callable[[], object] = lambda: int(time.time() * 1000)
        else:
            self.now = lambda: datetime.now(UTC).replace(tzinfo=None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            session = None
            token = _cookie(scope["headers"])
            if token is not None:
                async with self.engine.connect() as connection:
                    found = await connection.execute(
                        self.query, {"token": token, "now": self.now()}
                    )
                    row = found.first()
                if row is not None:
                    session = _ByHand(row)
            scope["state"]["session"] = session
        await self.app(scope, receive, send)


def _cookie(headers: list[tuple[bytes, bytes]]) -> str | None:
    for key, value in headers:
        if key == b"cookie":
            for pair in value.decode("latin-1").split(";"):
                name, _, token = pair.strip().partition("=")
                if name == COOKIE:
                    return token
    return None


async def sql_floor(run: Run, *, kind: str) -> Target:
    """The same requests, the session looked up by hand on the same engine."""
    opened = await _open(run, kind)

    def check(scope: Scope, reply: Reply) -> None:
        check_ok(scope, reply)
        session = scope["state"].get("session")
        require(isinstance(session, _ByHand), f"no session looked up: {session!r}")
        require(session.user.email == CLAIMS["email"], "wrong session user")

    requests, served = _counting(_same_cookie(opened.token))
    app = session_app(Middleware(_LookupByHand, engine=opened.adapter.engine))
    return Target(
        app, requests, check, _statements_per_request(opened.statements, served), opened.close
    )
