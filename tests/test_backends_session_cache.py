"""Database sessions kept in memory, and revoked the moment MongoDB says so.

The cache on its own first (bounds, the generation rule, invalidations, when it serves),
then against a real replica set: hits without round trips, changes made directly in the
database, a second app instance in another process, a stream killed mid-run, Auth.js's
own MongoDB adapter, and a standalone server that has no change streams.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx2
import pytest
from bson import ObjectId
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient, monitoring
from starlette.applications import Starlette
from starlette.types import Message

from asgi_session import Callbacks
from asgi_session._session import isoformat
from asgi_session.backends import DatabaseStrategy, MemoryAdapter
from asgi_session.backends._session_cache import (
    EVERYTHING,
    SESSION,
    USER,
    CachingStore,
    Change,
    SessionCache,
)
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.models import SessionRecord, User
from tests.support.apps import Clock, build_app, client_for, config_of, csrf_token, sign_in
from tests.support.mongod import MongodServer
from tests.support.node import run_node_script
from tests.support.session_app import SessionAppProcess

SESSION_COOKIE = "authjs.session-token"
CSRF_COOKIE = "authjs.csrf-token"
DAY = 24 * 60 * 60
#: How long a change made elsewhere may take to show; they take milliseconds.
BOUND = 1.0

# -- the cache on its own ---------------------------------------------------------------


def _cache(clock: Clock, **options: Any) -> SessionCache:
    # No event loop runs in these tests: the cache never starts a feed of its own, and
    # the tests play the feed's part through opened(), heard(), apply()...
    return SessionCache(cast(CachingStore, MemoryAdapter()), monotonic=clock, **options)


def _record(number: int, user: str = "u1", **extra: Any) -> SessionRecord:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    return SessionRecord(
        session_token=f"token-{number:040d}",
        user_id=user,
        expires=now + timedelta(days=30),
        last_seen_at=now,
        id=f"{number:024x}",
        extra=dict(extra),
    )


def _user(user_id: str = "u1", name: str = "Ann") -> User:
    return User(id=user_id, name=name, email=f"{user_id}@example.com")


def _live(clock: Clock, **options: Any) -> SessionCache:
    cache = _cache(clock, **options)
    cache.opened()
    return cache


def _keep(cache: SessionCache, record: SessionRecord, user: User | None = None) -> None:
    ticket = cache.ticket()
    assert cache.put_user(user or _user(record.user_id), ticket)
    assert cache.put_session(record, ticket)


def test_a_kept_session_is_found_and_never_shared() -> None:
    cache = _live(Clock(0))
    _keep(cache, _record(1, theme={"dark": True}))
    found = cache.cached(_record(1).session_token)
    assert found is not None
    record, user = found
    assert (record.id, user.name) == (_record(1).id, "Ann")
    record.extra["theme"]["dark"] = False  # a handler changing what it was given
    again = cache.cached(_record(1).session_token)
    assert again is not None and again[0].extra == {"theme": {"dark": True}}
    assert cache.cached("token-unknown") is None


def test_entries_are_bounded_least_recently_used_first() -> None:
    cache = _live(Clock(0), max_entries=3)
    for number in (1, 2, 3):
        _keep(cache, _record(number))
    assert cache.hit(_record(1).session_token) is not None  # 2 is now the oldest
    _keep(cache, _record(4))
    assert len(cache) == 3
    assert cache.hit(_record(2).session_token) is None
    assert all(cache.hit(_record(n).session_token) for n in (1, 3, 4))


def test_bytes_are_bounded() -> None:
    cache = _live(Clock(0), max_bytes=64 * 1024)
    for number in range(200):
        _keep(cache, _record(number, user=f"u{number}", notes="x" * 2000))
        assert cache.bytes <= 64 * 1024
    kept = [number for number in range(200) if cache.hit(_record(number).session_token)]
    assert 5 < len(kept) < 40, "each entry counts its data: about 3 KB"
    assert kept == list(range(200 - len(kept), 200)), "the newest stay"
    small = _live(Clock(0), max_bytes=64 * 1024)
    for number in range(200):
        _keep(small, _record(number, user="u1"))
    assert len(small) > len(kept) * 2, "small entries, more of them"


def test_a_read_that_may_have_missed_a_change_is_not_kept() -> None:
    cache = _live(Clock(0))
    # A change to this very session while it was being read: not kept.
    ticket = cache.ticket()
    cache.apply(Change(SESSION, _record(1).id or ""))
    assert not cache.put_session(_record(1), ticket)
    # A change to another session is no reason to refuse it.
    assert cache.put_session(_record(2), ticket)
    # Its user changed meanwhile: neither the user nor the user's sessions are kept.
    ticket = cache.ticket()
    cache.apply(Change(USER, "u1"))
    assert not cache.put_user(_user("u1"), ticket)
    assert not cache.put_session(_record(3), ticket)
    assert cache.put_user(_user("u2"), ticket)
    # Ended here, by token (its id unknown to the caller).
    ticket = cache.ticket()
    cache.forget_session(_record(4).session_token)
    assert not cache.put_session(_record(4), ticket)
    # Emptied: nothing read before comes back.
    ticket = cache.ticket()
    cache.reset()
    assert not cache.put_session(_record(5), ticket)
    assert not cache.put_user(_user("u9"), ticket)


def test_a_read_that_outlasts_the_change_log_is_not_kept() -> None:
    cache = _live(Clock(0))
    ticket = cache.ticket()
    for number in range(10_000):
        cache.apply(Change(SESSION, f"other-{number}"))
    assert not cache.put_session(_record(1), ticket), "the changes it raced are forgotten"


def test_changes_drop_sessions_by_id_users_by_id_and_everything() -> None:
    cache = _live(Clock(0))
    for number, user in ((1, "u1"), (2, "u1"), (3, "u2")):
        _keep(cache, _record(number, user=user), _user(user))
    cache.apply(Change(SESSION, _record(1).id or ""))
    assert cache.hit(_record(1).session_token) is None
    assert cache.hit(_record(2).session_token) is not None
    # A user's change keeps their sessions but not the user: read again on next use.
    cache.apply(Change(USER, "u1"))
    assert cache.hit(_record(2).session_token) is None
    assert cache.users == 1
    _keep(cache, _record(2), _user("u1", name="Ann B."))
    kept = cache.cached(_record(2).session_token)
    assert kept is not None and kept[1].name == "Ann B."
    cache.apply(Change(EVERYTHING))
    assert len(cache) == 0 and cache.users == 0
    assert cache.hit(_record(3).session_token) is None


def test_an_expiry_pushed_back_to_what_is_kept_keeps_the_entry() -> None:
    cache = _live(Clock(0))
    record = _record(1)
    _keep(cache, record)
    # The change that this instance's own extension causes: what is kept already.
    ticket = cache.ticket()
    same = {"expires": record.expires, "last_seen_at": record.last_seen_at}
    cache.apply(Change(SESSION, record.id or "", same))
    assert cache.hit(record.session_token) is not None
    assert cache.put_session(record, ticket), "the write it raced set what it read"
    # Another instance's extension, to another moment: dropped.
    later = {"expires": record.expires + timedelta(seconds=5)}
    cache.apply(Change(SESSION, record.id or "", later))
    assert cache.hit(record.session_token) is None


def test_ending_a_users_sessions_here_keeps_the_one_asked_for() -> None:
    cache = _live(Clock(0))
    for number in (1, 2, 3):
        _keep(cache, _record(number))
    cache.forget_user_sessions("u1", except_token=_record(2).session_token)
    assert [bool(cache.hit(_record(n).session_token)) for n in (1, 2, 3)] == [
        False,
        True,
        False,
    ]
    cache.forget_session(session_id=_record(2).id)
    assert cache.hit(_record(2).session_token) is None


def test_served_only_while_the_feed_is_open_and_heard_from(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock(100.0)
    cache = _cache(clock)
    assert not cache.ready()
    assert not cache.put_user(_user(), cache.ticket()), "nothing is kept before it opens"
    cache.opened()
    _keep(cache, _record(1))
    clock.advance(1.9)
    assert cache.hit(_record(1).session_token) is not None
    cache.heard()
    clock.advance(1.9)
    assert cache.ready()
    with caplog.at_level(logging.INFO, logger="asgi_session"):
        clock.advance(0.2)  # silent for over twice the heartbeat: it may have fallen behind
        assert not cache.ready()
        assert len(cache) == 0, "emptied, not just set aside"
        assert not cache.ready()
        cache.heard()  # it answers again: caught up
        assert cache.ready()
        _keep(cache, _record(2))
        ticket = cache.ticket()
        cache.failed(ConnectionError("connection reset"))
        assert not cache.ready()
        assert len(cache) == 0 and cache.users == 0, "a broken stream may have missed anything"
        assert not cache.put_session(_record(3), ticket)
        cache.failed(ConnectionError("connection refused"))
        cache.unsupported("not a replica set")
        cache.unsupported("not a replica set")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings
    assert "silent" in warnings[0] and "connection reset" in warnings[1]
    assert "not cached: not a replica set" in warnings[2]


# -- against a real replica set -------------------------------------------------------


class _Commands(monitoring.CommandListener):
    """Commands a client sends, but the change stream's waits and connection chatter."""

    IGNORED = frozenset({"getMore", "hello", "isMaster", "ismaster", "ping", "endSessions"})

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in self.IGNORED:
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass
class _Instance:
    app: Starlette
    strategy: DatabaseStrategy
    adapter: MongoDBAdapter
    commands: _Commands


@asynccontextmanager
async def _instance(
    url: str, database: str, *, driver: str = "pymongo", w: int | None = None, **options: Any
) -> AsyncIterator[_Instance]:
    """An app on a client of its own whose commands are counted; its stream closed after."""
    commands = _Commands()
    client: Any
    extra: dict[str, Any] = {} if w is None else {"w": w}
    if driver == "motor":
        client = AsyncIOMotorClient(url, event_listeners=[commands], **extra)
    else:
        client = AsyncMongoClient(url, event_listeners=[commands], **extra)
    adapter = MongoDBAdapter(client[database], operation_timeout=options.pop("timeout", 5))
    options.setdefault("rate_limits", None)
    app = build_app(adapter=adapter, **options)
    strategy = config_of(app).strategy
    assert isinstance(strategy, DatabaseStrategy)
    try:
        yield _Instance(app, strategy, adapter, commands)
    finally:
        await strategy.aclose()
        closed = client.close()
        if isinstance(closed, Awaitable):
            await closed


async def _until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Seconds until ``check()`` holds, polling (yielding to the loop between polls)."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            pytest.fail(f"{what} within {within:g} s")
        await asyncio.sleep(0.002)
    return time.monotonic() - started


async def _active(instance: _Instance, http: httpx2.AsyncClient) -> None:
    async def active() -> bool:
        await http.get("/")
        return instance.strategy.cache_active

    await _until(active, 10, "the session cache became active")


async def _session_of(http: httpx2.AsyncClient) -> Any:
    response = await http.get("/")
    assert response.status_code == 200, response.text
    return response.json()


async def _hits(
    instance: _Instance, http: httpx2.AsyncClient, count: int = 3, *, warm: bool = True
) -> Any:
    """The session ``http``'s cookie stands for, after checking that it is kept (after
    one request that keeps it, unless ``warm`` is false)."""
    if warm:
        await http.get("/")
    instance.commands.names.clear()
    bodies = [await _session_of(http) for _ in range(count)]
    assert instance.commands.names == [], "served from memory, no round trip"
    assert all(body == bodies[0] for body in bodies)
    return bodies[0]


def _token(http: httpx2.AsyncClient) -> str:
    return str(http.cookies[SESSION_COOKIE])


@pytest.mark.parametrize("driver", ["pymongo", "motor"])
async def test_a_kept_session_costs_no_round_trip(
    mongodb_url: str, mongo_db_name: str, driver: str
) -> None:
    async with (
        _instance(mongodb_url, mongo_db_name, driver=driver) as ann,
        client_for(ann.app) as http,
    ):
        await sign_in(http)
        uncached = await _session_of(http)
        await _active(ann, http)
        assert await _hits(ann, http, count=5) == uncached
        assert uncached["user"] == {"name": "Ann", "email": "ann@example.com"}


async def test_cache_false_reads_the_database_every_time(
    mongodb_url: str, mongo_db_name: str
) -> None:
    strategy = DatabaseStrategy(cache=False)
    async with (
        _instance(mongodb_url, mongo_db_name, strategy=strategy) as ann,
        client_for(ann.app) as http,
    ):
        await sign_in(http)
        ann.commands.names.clear()
        for _ in range(4):
            assert (await _session_of(http)) is not None
        await asyncio.sleep(0.05)
        assert ann.commands.names == ["aggregate"] * 4, "no change stream either"
        assert not strategy.cache_active


async def test_a_session_deleted_in_the_database_stops_resolving(
    mongodb_url: str, mongo_db_name: str, mongo_db: Any
) -> None:
    async with _instance(mongodb_url, mongo_db_name) as ann, client_for(ann.app) as http:
        await sign_in(http)
        await _active(ann, http)
        await _hits(ann, http)
        # What an admin script does, on another client.
        await mongo_db.sessions.delete_one({"sessionToken": _token(http)})

        async def ended() -> bool:
            return await _session_of(http) is None

        assert await _until(ended, BOUND, "the deleted session stopped resolving") < BOUND
        for _ in range(20):
            assert await _session_of(http) is None


async def test_a_user_changed_in_the_database_shows_up(
    mongodb_url: str, mongo_db_name: str, mongo_db: Any
) -> None:
    async with _instance(mongodb_url, mongo_db_name) as ann, client_for(ann.app) as http:
        await sign_in(http)
        await _active(ann, http)
        user_id = (await _hits(ann, http))["id"]
        await mongo_db.users.update_one(
            {"_id": ObjectId(user_id)}, {"$set": {"name": "Ann Lovelace"}}
        )

        async def renamed() -> bool:
            return bool((await _session_of(http))["user"]["name"] == "Ann Lovelace")

        await _until(renamed, BOUND, "the new name showed")
        assert (await _hits(ann, http))["user"]["name"] == "Ann Lovelace", "kept again"


async def test_an_expiry_changed_in_the_database_shows(
    mongodb_url: str, mongo_db_name: str, mongo_db: Any, clock: Clock
) -> None:
    async with (
        _instance(mongodb_url, mongo_db_name, clock=clock) as ann,
        client_for(ann.app) as http,
    ):
        await sign_in(http)
        await _active(ann, http)
        await _hits(ann, http)
        # Shortened, but not so much that the next request would push it back.
        sooner = datetime.fromtimestamp(clock.now + 29 * DAY + 3600, UTC)
        await mongo_db.sessions.update_one(
            {"sessionToken": _token(http)}, {"$set": {"expires": sooner}}
        )

        async def shortened() -> bool:
            return bool((await _session_of(http))["expires"] == isoformat(sooner))

        await _until(shortened, BOUND, "the new expiry showed")
        await _hits(ann, http)


async def test_expiry_and_update_age_stay_exact_on_hits(
    mongodb_url: str, mongo_db_name: str, mongo_db: Any, clock: Clock
) -> None:
    async with (
        _instance(mongodb_url, mongo_db_name, clock=clock) as ann,
        client_for(ann.app) as http,
    ):
        await sign_in(http)
        await _active(ann, http)
        await _hits(ann, http)
        clock.advance(DAY - 1)
        await _hits(ann, http)  # within update_age: nothing written
        clock.advance(2)
        ann.commands.names.clear()
        response = await http.get("/")
        assert ann.commands.names == ["findAndModify"], "one write, no read"
        assert SESSION_COOKIE in response.headers.get("set-cookie", "")
        # The write's own change arrives and sets what is kept already: still kept.
        await asyncio.sleep(0.2)
        await _hits(ann, http, count=5, warm=False)
        [stored] = await mongo_db.sessions.find().to_list(None)
        expires = stored["expires"].replace(tzinfo=UTC).timestamp()
        assert abs(expires - (clock.now + 30 * DAY)) < 1
        clock.advance(30 * DAY)
        assert await _session_of(http) is None
        assert await mongo_db.sessions.count_documents({}) == 0


async def test_the_session_callback_still_runs_on_every_hit(
    mongodb_url: str, mongo_db_name: str
) -> None:
    calls: list[int] = []

    def session(session: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        return {**session, "calls": len(calls), "userId": user["id"]}

    options: dict[str, Any] = {"callbacks": Callbacks(session=session)}
    async with (
        _instance(mongodb_url, mongo_db_name, **options) as ann,
        client_for(ann.app) as http,
    ):
        await sign_in(http)
        await _active(ann, http)
        await http.get("/")
        ann.commands.names.clear()
        first, second = await _session_of(http), await _session_of(http)
        assert ann.commands.names == []
        assert second["calls"] == first["calls"] + 1
        assert first["userId"] == first["id"]


async def test_this_instance_never_serves_what_it_revoked_even_before_the_change_arrives(
    mongodb_url: str, mongo_db_name: str
) -> None:
    # With w=1 the server reports a change only once it is journaled, up to 100 ms
    # later: only what this instance does itself can tell it sooner.
    def session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        return {**session, "theme": token.get("theme")}

    options: dict[str, Any] = {"callbacks": Callbacks(session=session)}
    async with _instance(mongodb_url, mongo_db_name, w=1, **options) as ann:
        app = ann.app
        async with (
            client_for(app) as laptop,
            client_for(app) as phone,
            client_for(app) as tablet,
            client_for(app) as desktop,
        ):
            for browser in (laptop, phone, tablet, desktop):
                await sign_in(browser)
            await _active(ann, laptop)
            for browser in (laptop, phone, tablet, desktop):
                await _hits(ann, browser)
            csrf = await csrf_token(laptop)

            # session.update(): the next request shows the merged data.
            response = await laptop.post("/update", json={"theme": "dark"})
            assert response.status_code == 200
            assert (await _session_of(laptop))["theme"] == "dark"

            # One session ended by id, from another one.
            [phone_id] = [
                entry["id"]
                for entry in (await phone.get("/auth/sessions")).json()
                if entry["current"]
            ]
            await laptop.post("/auth/sessions/revoke", data={"csrfToken": csrf, "id": phone_id})
            assert await _session_of(phone) is None

            # Sign-out (which clears the cookie: the old one is sent again).
            desktop_token = _token(desktop)
            desktop_csrf = await csrf_token(desktop)
            await desktop.post("/auth/signout", data={"csrfToken": desktop_csrf})
            assert await _session_via(desktop)(desktop_token) is None

            # Every session but this one.
            await laptop.post("/auth/sessions/revoke-others", data={"csrfToken": csrf})
            assert await _session_of(tablet) is None
            assert await _session_of(laptop) is not None


async def test_two_instances_in_two_processes_see_each_others_revocations(
    mongodb_url: str, mongo_db_name: str
) -> None:
    per_side = 10
    async with _instance(mongodb_url, mongo_db_name) as here:
        user = await here.adapter.create_user({"name": "Ann", "email": "ann@example.com"})
        now = datetime.now(UTC)
        tokens = []
        for _ in range(2 * per_side):
            record = await here.adapter.create_session(
                {
                    "session_token": uuid.uuid4().hex + uuid.uuid4().hex,
                    "user_id": user.id,
                    "expires": now + timedelta(days=30),
                }
            )
            tokens.append(record.session_token)
        other = SessionAppProcess(mongodb_url, mongo_db_name)
        await asyncio.to_thread(other.start)
        try:
            async with (
                httpx2.AsyncClient(base_url=other.url) as there,
                client_for(here.app) as local,
            ):
                await _active(here, local)

                async def there_active() -> bool:
                    await there.get("/")
                    return bool((await there.get("/_instance")).json()["cacheActive"])

                await _until(there_active, 10, "the other instance's cache became active")
                latencies = await _revoke_across(
                    tokens[:per_side], revoke=_sign_out_via(local), observe=_session_via(there)
                )
                commands = (await there.get("/_instance")).json()["commands"]
                latencies += await _revoke_across(
                    tokens[per_side:], revoke=_sign_out_via(there), observe=_session_via(local)
                )
                assert (await there.get("/_instance")).json()["commands"] > commands
        finally:
            await asyncio.to_thread(other.stop)
        # Figures over a few hundred: benchmarks/session_cache.py.
        assert max(latencies) < BOUND, latencies
        assert sorted(latencies)[len(latencies) // 2] < 0.1, latencies


def _session_via(http: httpx2.AsyncClient) -> Callable[[str], Awaitable[Any]]:
    async def session(token: str) -> Any:
        http.cookies.clear()
        response = await http.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})
        assert response.status_code == 200
        return response.json()

    return session


def _sign_out_via(http: httpx2.AsyncClient) -> Callable[[str], Awaitable[None]]:
    """Sign-out as a browser holding ``token`` does it (cookies sent by hand: one client
    plays many browsers)."""

    async def sign_out(token: str) -> None:
        http.cookies.clear()
        answer = await http.get("/auth/csrf")
        csrf_cookie = f"{CSRF_COOKIE}={answer.cookies[CSRF_COOKIE]}"
        http.cookies.clear()
        response = await http.post(
            "/auth/signout",
            data={"csrfToken": answer.json()["csrfToken"]},
            headers={"cookie": f"{SESSION_COOKIE}={token}; {csrf_cookie}"},
        )
        assert response.status_code == 302, response.text
        http.cookies.clear()

    return sign_out


async def _revoke_across(
    tokens: list[str],
    *,
    revoke: Callable[[str], Awaitable[None]],
    observe: Callable[[str], Awaitable[Any]],
) -> list[float]:
    """Seconds from each revocation on one instance until the other refuses the session."""
    for token in tokens:  # the observer keeps every one of them
        assert await observe(token) is not None
    latencies = []
    for token in tokens:
        assert await observe(token) is not None
        await revoke(token)

        async def ended(token: str = token) -> bool:
            return await observe(token) is None

        latencies.append(await _until(ended, BOUND, "a revocation was seen elsewhere"))
    return latencies


async def test_a_stream_killed_mid_run_serves_nothing_stale(
    mongod_server: MongodServer, caplog: pytest.LogCaptureFixture
) -> None:
    database = f"asgi_session_test_{uuid.uuid4().hex[:12]}"
    admin: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongod_server.url)
    try:
        async with (
            _instance(mongod_server.url, database, timeout=2) as ann,
            client_for(ann.app) as first,
            client_for(ann.app) as second,
        ):
            await sign_in(first)
            await sign_in(second)
            await _active(ann, first)
            await _hits(ann, first)
            await _hits(ann, second)
            with caplog.at_level(logging.WARNING, logger="asgi_session"):
                mongod_server.stop()
                try:
                    # Nothing can end a session while the server is down; once the cache
                    # notices, it serves nothing, and every request waits for the store.
                    async def unavailable() -> bool:
                        return (await first.get("/")).status_code == 503

                    await _until(unavailable, 10, "the outage was noticed")
                    assert (await second.get("/")).status_code == 503
                finally:
                    mongod_server.start()
                # Before the stream has resumed, an admin ends the first session.
                await admin[database].sessions.delete_one({"sessionToken": _token(first)})
                answers = []
                deadline = time.monotonic() + 20
                while not ann.strategy.cache_active and time.monotonic() < deadline:
                    response = await first.get("/")
                    answers.append(response.status_code)
                    if response.status_code == 200:
                        assert response.json() is None, "the ended session never came back"
                    await second.get("/")
                    await asyncio.sleep(0.02)
                assert ann.strategy.cache_active, f"caching resumed ({answers})"
            # (Once per outage; apps of other tests still running on this server may say
            # so too, so the count is the unit tests'.)
            assert any("session cache emptied" in r.getMessage() for r in caplog.records)
            assert await _session_of(first) is None
            await _hits(ann, second)
            await admin[database].sessions.delete_one({"sessionToken": _token(second)})

            async def ended() -> bool:
                return await _session_of(second) is None

            await _until(ended, BOUND, "a deletion after the restart was seen")
    finally:
        await admin.drop_database(database)
        await admin.close()


async def test_a_sign_out_through_authjs_is_seen_by_python(
    mongodb_url: str, mongo_db_name: str
) -> None:
    async with (
        _instance(mongodb_url, mongo_db_name) as ann,
        client_for(ann.app) as laptop,
        client_for(ann.app) as phone,
    ):
        await sign_in(laptop)
        await sign_in(phone)
        await _active(ann, laptop)
        user_id = (await _hits(ann, laptop))["id"]
        await _hits(ann, phone)
        # A Next.js app on the same database signs the laptop out and renames Ann.
        results = await asyncio.to_thread(
            run_node_script,
            "authjs_mongodb.mjs",
            {
                "url": mongodb_url,
                "database": mongo_db_name,
                "ops": [
                    {"op": "deleteSession", "args": [_token(laptop)]},
                    {"op": "updateUser", "args": [{"id": user_id, "name": "Ann (Next.js)"}]},
                ],
            },
        )
        assert all(result["ok"] for result in results), results

        async def signed_out() -> bool:
            return await _session_of(laptop) is None

        async def renamed() -> bool:
            return bool((await _session_of(phone))["user"]["name"] == "Ann (Next.js)")

        await _until(signed_out, BOUND, "Auth.js's sign-out was seen")
        await _until(renamed, BOUND, "Auth.js's rename was seen")
        assert (await _hits(ann, phone))["user"]["name"] == "Ann (Next.js)"


async def test_without_change_streams_every_request_reads_the_database(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = MongodServer(replica_set=False)
    await asyncio.to_thread(server.start)
    try:
        with caplog.at_level(logging.WARNING, logger="asgi_session"):
            async with _instance(server.url, "standalone") as ann:
                # The reason, from the server itself.
                reason = await ann.adapter.session_changes().open()
                assert reason is not None and "code 40573" in reason, reason
                async with client_for(ann.app) as http:
                    await sign_in(http)
                    ann.commands.names.clear()
                    for _ in range(3):
                        assert await _session_of(http) is not None
                        await asyncio.sleep(0.05)
                    assert not ann.strategy.cache_active
                    assert ann.commands.names.count("aggregate") >= 3
                    assert "find" not in ann.commands.names
        said = [r.getMessage() for r in caplog.records if "not cached" in r.getMessage()]
        assert len(said) == 1, said
        assert "not a replica set" in said[0]
    finally:
        await asyncio.to_thread(server.close)


async def test_the_app_shutting_down_closes_the_change_stream(mongodb_url: str) -> None:
    async with _instance(mongodb_url, f"asgi_session_test_{uuid.uuid4().hex[:8]}") as ann:
        async with client_for(ann.app) as http:
            await sign_in(http)
            await _active(ann, http)
        sent: list[str] = []
        lifespan = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive() -> Message:
            return next(lifespan)

        async def send(message: Message) -> None:
            sent.append(message["type"])

        await ann.app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert not ann.strategy.cache_active
