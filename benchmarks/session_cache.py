"""Database sessions kept in memory: what a hit, a miss and a revocation cost.

    python benchmarks/session_cache.py            # under a minute (1,000,000 sessions stored)
    python benchmarks/session_cache.py --quick    # about 15 s: 20,000 stored, fewer rounds
    python benchmarks/session_cache.py --json     # the same figures as JSON

Rows, all in one process against one throwaway ``mongod`` (``MONGODB_URL`` names another
server), every app the one-route app of ``bench.py`` under ``AuthMiddleware`` with
``MongoDBAdapter`` (PyMongo unless said otherwise):

- bare Starlette app: the baseline; a cached hit should cost at most 2x it;
- cached hit: the same session cookie on every request, served from memory (the
  commands its client sends while timed are counted: none);
- uncached: ``DatabaseStrategy(cache=False)``, one aggregate (``$lookup``) per request;
- miss, user kept: the session is not in memory but its user is (sessions evicted by a
  small ``cache_size``): one ``find`` on the sessions; should cost at most 1.3x a raw
  ``find_one`` on the same server, timed in the same run;
- miss, nothing kept: neither is in memory: the store's join, as uncached;
- hits, and uncached reads, among 1,000 and among 1,000,000 stored sessions (1,000
  random tokens each): each within 1.2x of its 1,000 figure;
- revocation across two processes: the same database served by a second app instance
  in a subprocess (``tests/support/session_app.py``, over HTTP); a session signed out
  through this process (or deleted by a raw ``delete_one``, as an admin script would)
  is polled on the other until it no longer resolves: p50 and p99 over a few hundred.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import httpx2  # noqa: E402
from pymongo import AsyncMongoClient, monitoring  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.types import ASGIApp, Message, Scope  # noqa: E402

from asgi_session import AuthConfig, AuthMiddleware  # noqa: E402
from asgi_session.backends import DatabaseStrategy  # noqa: E402
from asgi_session.backends.mongodb import MongoDBAdapter  # noqa: E402
from database import MongoDB, _seed  # noqa: E402
from fixtures import COOKIE, SECRET, session_app, starlette_app  # noqa: E402
from harness import cookie_header, http_scope  # noqa: E402
from tests.support.session_app import SessionAppProcess  # noqa: E402


class _Count(monitoring.CommandListener):
    """Commands a client sends, but the change stream's own waits."""

    def __init__(self) -> None:
        self.reads = self.writes = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "aggregate"):
            self.reads += 1
        elif event.command_name in ("insert", "update", "delete", "findAndModify"):
            self.writes += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Message) -> None:
    return None


async def _per_request(
    app: ASGIApp, templates: Sequence[Scope], rounds: int
) -> tuple[float, float]:
    """Best and median microseconds per request over ``rounds`` passes of ``templates``."""
    for template in templates[: min(len(templates), 200)]:  # warm up
        await app({**template, "state": {}}, _receive, _discard)
    samples = []
    for _ in range(rounds):
        # A hit never waits for I/O, so a batch of them never lets the change stream's
        # task run; a server's requests wait on their sockets. Without this, a long row
        # would (rightly) find the stream silent and empty the cache.
        await asyncio.sleep(0)
        gc.collect()
        start = time.perf_counter_ns()
        for template in templates:
            await app({**template, "state": {}}, _receive, _discard)
        samples.append((time.perf_counter_ns() - start) / len(templates) / 1000)
    return min(samples), statistics.median(samples)


async def _per_call(call: Callable[[int], Awaitable[Any]], count: int, rounds: int) -> float:
    """Best microseconds per call of ``call(i)``."""
    for index in range(min(count, 100)):
        await call(index)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for index in range(count):
            await call(index)
        best = min(best, (time.perf_counter_ns() - start) / count / 1000)
    return best


def _scopes(tokens: Sequence[str]) -> list[Scope]:
    return [http_scope("/", [cookie_header(COOKIE, token)]) for token in tokens]


async def _wait_active(strategy: DatabaseStrategy, app: ASGIApp, template: Scope) -> None:
    for _ in range(400):
        await app({**template, "state": {}}, _receive, _discard)
        if strategy.cache_active:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("the session cache did not become active (no change streams?)")


class _Store:
    """A database of its own on a counted PyMongo client, with users and sessions."""

    def __init__(self, url: str) -> None:
        self.count = _Count()
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url, event_listeners=[self.count]
        )
        self.name = f"asgi_session_cache_bench_{secrets.token_hex(4)}"
        self.database = self.client[self.name]

    async def sessions(self, users: int, per_user: int) -> list[str]:
        """``per_user`` fresh sessions for each of ``users`` new users; their tokens."""
        adapter = MongoDBAdapter(self.database)
        now = datetime.now(UTC)
        tokens = []
        for index in range(users):
            email = f"{secrets.token_hex(6)}@example.com"
            user = await adapter.create_user({"name": f"User {index}", "email": email})
            for _ in range(per_user):
                record = await adapter.create_session(
                    {
                        "session_token": secrets.token_urlsafe(32),
                        "user_id": user.id,
                        "expires": now + timedelta(days=30),
                        "created_at": now,
                        "last_seen_at": now,
                    }
                )
                tokens.append(record.session_token)
        return tokens

    async def close(self) -> None:
        await self.client.drop_database(self.name)
        await self.client.close()


def _app(store: _Store, **strategy: Any) -> tuple[ASGIApp, DatabaseStrategy]:
    adapter = MongoDBAdapter(store.database)
    chosen = DatabaseStrategy(**strategy)
    config = AuthConfig(secret=SECRET, adapter=adapter, strategy=chosen, rate_limits=None)
    return session_app(Middleware(AuthMiddleware, config=config)), chosen


async def in_process(url: str, *, rounds: int, stored: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    batch = 2000
    bare = starlette_app()
    figures["bare_us"], _ = await _per_request(bare, [http_scope("/")] * batch, rounds)

    store = _Store(url)
    closers: list[DatabaseStrategy] = []
    try:
        tokens = await store.sessions(users=4, per_user=32)  # 128 sessions of 4 users
        same = _scopes(tokens[:1])
        # Cached hit, PyMongo and Motor.
        app, strategy = _app(store)
        closers.append(strategy)
        await _wait_active(strategy, app, same[0])
        await app({**same[0], "state": {}}, _receive, _discard)  # kept from now on
        store.count.reads = store.count.writes = 0
        best, median = await _per_request(app, same * batch, rounds)
        figures["hit_us"], figures["hit_median_us"] = best, median
        figures["hit_reads"], figures["hit_writes"] = store.count.reads, store.count.writes

        from motor.motor_asyncio import AsyncIOMotorClient

        motor: AsyncIOMotorClient[dict[str, Any]] = AsyncIOMotorClient(url)
        try:
            config = AuthConfig(secret=SECRET, adapter=MongoDBAdapter(motor[store.name]))
            motor_strategy = config.strategy
            assert isinstance(motor_strategy, DatabaseStrategy)
            closers.append(motor_strategy)
            motor_app = session_app(Middleware(AuthMiddleware, config=config))
            await _wait_active(motor_strategy, motor_app, same[0])
            figures["hit_motor_us"], _ = await _per_request(motor_app, same * batch, rounds)
            await motor_strategy.aclose()
        finally:
            motor.close()

        # Uncached: today's path, one aggregate per request.
        uncached, _ = _app(store, cache=False)
        figures["uncached_us"], _ = await _per_request(uncached, same * 200, rounds)

        # Misses: a cache of 64 cycled through 128 sessions (of 4 users: kept; of 128
        # users: not), so every request misses.
        small, small_strategy = _app(store, cache_size=64)
        closers.append(small_strategy)
        await _wait_active(small_strategy, small, same[0])
        cycle = _scopes(tokens)
        for template in cycle * 2:  # every token seen once: each has a hint from now on
            await small({**template, "state": {}}, _receive, _discard)
        store.count.reads = 0
        figures["miss_user_kept_us"], _ = await _per_request(small, cycle * 2, rounds)
        timed = len(cycle) * 2 * rounds + min(len(cycle) * 2, 200)
        figures["miss_user_kept_reads_per_request"] = store.count.reads / timed

        lonely = await store.sessions(users=128, per_user=1)
        cold, cold_strategy = _app(store, cache_size=64)
        closers.append(cold_strategy)
        await _wait_active(cold_strategy, cold, _scopes(lonely[:1])[0])
        figures["miss_nothing_kept_us"], _ = await _per_request(cold, _scopes(lonely) * 2, rounds)

        # The same server without asgi-session: the reads a miss makes, raw.
        raw = AsyncMongoClient(url)
        try:
            sessions = raw[store.name]["sessions"]
            figures["raw_find_one_us"] = await _per_call(
                lambda i: sessions.find_one({"sessionToken": tokens[i % len(tokens)]}),
                400,
                rounds,
            )
        finally:
            await raw.close()

        # update_age: one write when due, then hits again (the write's change keeps them).
        clock = _Clock(time.time())
        adapter = MongoDBAdapter(store.database)
        config = AuthConfig(secret=SECRET, adapter=adapter, clock=clock, rate_limits=None)
        aged = session_app(Middleware(AuthMiddleware, config=config))
        aged_strategy = config.strategy
        assert isinstance(aged_strategy, DatabaseStrategy)
        closers.append(aged_strategy)
        await _wait_active(aged_strategy, aged, same[0])
        for _ in range(3):
            await aged({**same[0], "state": {}}, _receive, _discard)
        clock.now += config.update_age + 1
        store.count.reads = store.count.writes = 0
        await aged({**same[0], "state": {}}, _receive, _discard)
        figures["due_request_writes"] = store.count.writes
        await asyncio.sleep(0.2)  # the write's change arrives
        store.count.reads = store.count.writes = 0
        for _ in range(100):
            await aged({**same[0], "state": {}}, _receive, _discard)
        figures["after_due_reads"], figures["after_due_writes"] = (
            store.count.reads,
            store.count.writes,
        )
    finally:
        for strategy in closers:
            await strategy.aclose()
        await store.close()

    figures.update(await _stored(url, rounds=rounds, stored=stored))
    return figures


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _stored(url: str, *, rounds: int, stored: int) -> dict[str, Any]:
    """Hits and misses among 1,000 and ``stored`` sessions, random tokens."""
    figures: dict[str, Any] = {}
    for label, count in (("1k", 1_000), ("large", stored)):
        store = _Store(url)
        try:
            config = AuthConfig(secret=SECRET, adapter=MongoDBAdapter(store.database))
            started = time.perf_counter()
            tokens = await _seed(store.database, users=1_000, sessions=count, config=config)
            figures[f"seed_{label}_s"] = round(time.perf_counter() - started, 1)
            picks = [tokens[i] for i in _spread(len(tokens), 1_000)]
            hit_app, hits = _app(store)
            try:
                await _wait_active(hits, hit_app, _scopes(picks[:1])[0])
                figures[f"hit_{label}_us"], _ = await _per_request(
                    hit_app, _scopes(picks) * 2, rounds
                )
            finally:
                await hits.aclose()
            uncached, _ = _app(store, cache=False)
            figures[f"uncached_{label}_us"], _ = await _per_request(
                uncached, _scopes(picks[:400]), rounds
            )
        finally:
            await store.close()
    figures["stored"] = stored
    return figures


def _spread(size: int, count: int) -> list[int]:
    rng = secrets.SystemRandom()
    return rng.sample(range(size), min(size, count))


# -- revocation across processes -------------------------------------------------------


async def revocations(url: str, count: int) -> dict[str, Any]:
    store = _Store(url)
    try:
        tokens = await store.sessions(users=1, per_user=2 * count)
        app, strategy = _app(store)
        await _wait_active(strategy, app, _scopes(tokens[:1])[0])
        with SessionAppProcess(url, store.name) as other:
            async with (
                httpx2.AsyncClient(base_url=other.url) as remote,
                httpx2.AsyncClient(
                    transport=httpx2.ASGITransport(app=app), base_url="http://testserver"
                ) as local,
            ):
                await _until_remote_active(remote)
                signed_out = await _revoke_all(
                    tokens[:count], remote, lambda token: _sign_out(local, token)
                )
                sessions = store.database["sessions"]
                deleted = await _revoke_all(
                    tokens[count:],
                    remote,
                    lambda token: sessions.delete_one({"sessionToken": token}),
                )
        await strategy.aclose()
    finally:
        await store.close()
    return {
        "revocations": count,
        "signout_p50_ms": _percentile(signed_out, 50),
        "signout_p99_ms": _percentile(signed_out, 99),
        "signout_max_ms": max(signed_out),
        "delete_p50_ms": _percentile(deleted, 50),
        "delete_p99_ms": _percentile(deleted, 99),
        "delete_max_ms": max(deleted),
    }


async def _until_remote_active(remote: httpx2.AsyncClient) -> None:
    for _ in range(500):
        await remote.get("/", headers={"cookie": f"{COOKIE}=warming-up"})
        if (await remote.get("/_instance")).json()["cacheActive"]:
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("the second instance's cache did not become active")


async def _session_of(remote: httpx2.AsyncClient, token: str) -> Any:
    return (await remote.get("/", headers={"cookie": f"{COOKIE}={token}"})).json()


async def _sign_out(local: httpx2.AsyncClient, token: str) -> None:
    local.cookies.clear()
    local.cookies.set(COOKIE, token, domain="testserver.local")
    csrf = (await local.get("/auth/csrf")).json()["csrfToken"]
    response = await local.post("/auth/signout", data={"csrfToken": csrf})
    if response.status_code != 302:
        raise RuntimeError(f"sign-out answered {response.status_code}")


async def _revoke_all(
    tokens: Sequence[str],
    remote: httpx2.AsyncClient,
    revoke: Callable[[str], Awaitable[Any]],
) -> list[float]:
    """Milliseconds from each revocation's end until the other instance refuses it."""
    for token in tokens:  # the other instance keeps every one of them
        await _session_of(remote, token)
    before = (await remote.get("/_instance")).json()["commands"]
    for token in tokens:
        if await _session_of(remote, token) is None:
            raise RuntimeError("a session did not resolve on the other instance")
    if (await remote.get("/_instance")).json()["commands"] != before:
        raise RuntimeError("the other instance read the database for sessions it keeps")
    latencies = []
    for token in tokens:
        await revoke(token)
        done = time.perf_counter()
        while await _session_of(remote, token) is not None:
            if time.perf_counter() - done > 5:
                raise RuntimeError("a revoked session still resolves after 5 s")
        latencies.append((time.perf_counter() - done) * 1000)
    return latencies


def _percentile(values: Sequence[float], percent: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[index], 2)


# -- report ----------------------------------------------------------------------------


def _report(figures: dict[str, Any]) -> str:
    bare, find_one = figures["bare_us"], figures["raw_find_one_us"]
    lines = [
        f"{'row':<52} {'us':>9} {'ratio':>12}",
        f"{'bare Starlette app':<52} {bare:>9.1f} {'1.00x bare':>12}",
    ]

    def row(label: str, key: str, base: float, unit: str) -> None:
        value = figures[key]
        lines.append(f"{label:<52} {value:>9.1f} {value / base:>6.2f}x {unit:<5}")

    row("cached hit (PyMongo)", "hit_us", bare, "bare")
    row("cached hit (Motor)", "hit_motor_us", bare, "bare")
    row("uncached, cache=False ($lookup each request)", "uncached_us", bare, "bare")
    lines.append(f"{'raw find_one on the sessions, same server':<52} {find_one:>9.1f}")
    row("miss, user kept (one find)", "miss_user_kept_us", find_one, "find")
    row("miss, nothing kept (the join)", "miss_nothing_kept_us", find_one, "find")
    row("uncached, cache=False", "uncached_us", find_one, "find")
    stored = figures["stored"]
    for kind in ("hit", "uncached"):
        small, large = figures[f"{kind}_1k_us"], figures[f"{kind}_large_us"]
        lines.append(
            f"{kind}, random tokens: 1,000 stored {small:.1f} us, {stored:,} stored "
            f"{large:.1f} us: {large / small:.2f}x"
        )
    lines.append(
        f"hit reads/writes while timed: {figures['hit_reads']}/{figures['hit_writes']}; "
        f"a miss with its user kept reads {figures['miss_user_kept_reads_per_request']:.2f} "
        "times"
    )
    lines.append(
        f"update_age: the due request wrote {figures['due_request_writes']} time(s); the "
        f"next 100 read {figures['after_due_reads']} and wrote {figures['after_due_writes']}"
    )
    if "signout_p50_ms" in figures:
        lines.append(
            f"revocation seen by another process ({figures['revocations']} each): sign-out "
            f"p50 {figures['signout_p50_ms']} ms, p99 {figures['signout_p99_ms']} ms, max "
            f"{figures['signout_max_ms']:.2f} ms; raw delete_one p50 "
            f"{figures['delete_p50_ms']} ms, p99 {figures['delete_p99_ms']} ms, max "
            f"{figures['delete_max_ms']:.2f} ms (polled over HTTP)"
        )
    return "\n".join(lines)


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 stored, fewer rounds")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--revocations", type=int, default=None, help="per kind (300)")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 7
    stored = 20_000 if args.quick else 1_000_000
    count = args.revocations or (50 if args.quick else 300)
    server = MongoDB()
    try:
        url = await server.url()
        figures = await in_process(url, rounds=rounds, stored=stored)
        figures.update(await revocations(url, count))
    finally:
        server.close()
    print(json.dumps(figures, indent=2) if args.json else _report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
