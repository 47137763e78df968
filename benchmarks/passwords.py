"""Sign-ins under load: what a burst of password sign-ins costs everyone else.

A password sign-in verifies an argon2id hash: with the default parameters, tens of
milliseconds of CPU (the report says how many here) and 19 MiB of memory, by design.
This row serves :mod:`served_app`'s ``password_app`` (one user with a password;
``Password`` with the default ``PasswordHasher``, which hashes in worker threads) with
uvicorn as the end-to-end row does, and times, one by one, signed-in ``GET /`` requests
sent at a steady rate (200 a second by default): first alone, then while password
sign-ins (20 a second, each a ``GET /auth/csrf`` and a ``POST /auth/callback/password``
on a connection of its own, as a new visitor's) start on a schedule of their own. It
does the same with ``password_app_on_loop``, a counterfactual whose hasher runs on the
event loop: every request then waits while a hash is computed, which is what the worker
threads are for. Both servers run side by side and are driven one at a time, in a few
rounds (each round starting with the other app); a phase's figures pool its rounds.

Requests start on schedule whether or not earlier ones have been answered (a request
due while every connection is busy opens another), so a stalled server shows as the
latency of every request it kept waiting, not as fewer requests. The client is one
asyncio task per request over a few lines of HTTP/1.1 on asyncio streams, in this
process: the report gives its share of a CPU and how late it sent requests, to show it
kept up. Each sign-in must end in a 302 to the callback URL that sets a session cookie.

Needs uvicorn and httptools (the ``bench`` extra) and the ``passwords`` extra; without
them the row says it was skipped.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import math
import os
import statistics
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from fixtures import CLAIMS, COOKIE, PASSWORD
from harness import BenchmarkError, Settings, require
from served import ServedApp, Server, server_missing

_T = TypeVar("_T")

P99_FACTOR = 2.0
"""Informational: the GETs' p99 while signing people in, at most this many times their
p99 without (no verdict; the project sets no target for this figure)."""

_ON_LOOP = "password_on_loop"
_APPS = [
    ServedApp(
        "password",
        "hashing in worker threads (PasswordHasher)",
        None,
        None,
        served="password_app",
    ),
    ServedApp(
        _ON_LOOP,
        "counterfactual: hashing on the event loop",
        None,
        None,
        served="password_app_on_loop",
    ),
]
_CSRF_COOKIE = "authjs.csrf-token"
_BODY = b"Hello, world!"
# Connections the GETs start with; more are opened when all are busy.
_POOL = 8
_START_DELAY = 0.05  # seconds between scheduling a phase and its first request


# -- a small HTTP/1.1 client -----------------------------------------------------------


@dataclass
class _Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def cookies(self) -> dict[str, str]:
        """The ``name=value`` of each ``Set-Cookie``, by name."""
        found = {}
        for key, value in self.headers:
            if key == "set-cookie":
                pair = value.split(";", 1)[0]
                found[pair.split("=", 1)[0]] = pair
        return found


def _request(
    port: int, method: str, path: str, cookie: str | None = None, form: dict[str, str] | None = None
) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Benchmark/1.0",
        "Accept: */*",
    ]
    if cookie is not None:
        lines.append(f"Cookie: {cookie}")
    body = b""
    if form is not None:
        body = urlencode(form).encode("ascii")
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    return "\r\n".join([*lines, "", ""]).encode("latin-1") + body


class _Connection:
    """One keep-alive connection: write a request, read the reply its Content-Length gives."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        # asyncio sets TCP_NODELAY on its TCP connections.
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, request: bytes) -> _Reply:
        self.writer.write(request)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head[:-4].split("\r\n")
        headers = []
        for line in lines:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        reply = _Reply(int(status_line.split(" ", 2)[1]), headers, b"")
        length = reply.header("content-length")
        if length is None:
            raise BenchmarkError(f"a reply without Content-Length: {head!r}")
        reply.body = await self.reader.readexactly(int(length))
        return reply

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def _sign_in(port: int) -> tuple[str, float]:
    """Sign in as a new visitor would: the session cookie, and how long it took (s)."""
    start = time.perf_counter()
    connection = await _Connection.open(port)
    try:
        reply = await connection.send(_request(port, "GET", "/auth/csrf"))
        require(reply.status == 200, f"GET /auth/csrf: {reply.status} {reply.body!r}")
        token = json.loads(reply.body)["csrfToken"]
        csrf_cookie = reply.cookies().get(_CSRF_COOKIE)
        require(csrf_cookie is not None, "GET /auth/csrf set no CSRF cookie")
        form = {
            "csrfToken": token,
            "email": CLAIMS["email"],
            "password": PASSWORD,
            "callbackUrl": "/",
        }
        reply = await connection.send(
            _request(port, "POST", "/auth/callback/password", csrf_cookie, form)
        )
        elapsed = time.perf_counter() - start
    finally:
        await connection.close()
    location = reply.header("location")
    require(
        reply.status == 302 and location == f"http://127.0.0.1:{port}/",
        f"sign-in refused: {reply.status} to {location}",
    )
    session = reply.cookies().get(COOKIE)
    require(session is not None and len(session) > len(COOKIE) + 1, "sign-in set no session")
    assert session is not None
    return session, elapsed


# -- the load --------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user and system, all threads) of process ``pid``; Linux only."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime, the 14th and 15th fields (the 1st and 2nd are before the ")").
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class _Phase:
    """What one phase measured, in seconds."""

    gets: list[float] = field(default_factory=list)
    late: list[float] = field(default_factory=list)  # how far behind schedule requests left
    sign_ins: list[float] = field(default_factory=list)
    wall: float = 0.0
    sign_in_span: float = 0.0  # from the first sign-in's start to the last one's reply
    client_cpu: float = 0.0
    server_cpu: float | None = None
    connections: int = 0


def _ms(value: float) -> float:
    return round(value * 1000, 2)


def _percentile(values: Sequence[float], share: float) -> float:
    """Nearest rank: the smallest value at least ``share`` of ``values`` do not exceed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


async def _on_schedule(
    start: float, count: int, rate: int, job: Callable[[float], Coroutine[Any, Any, _T]]
) -> list[_T]:
    """``job(due)`` started ``rate`` times a second from ``start``, each at its time."""
    tasks: list[asyncio.Task[_T]] = []
    for index in range(count):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(job(due)))
    return await asyncio.gather(*tasks)


async def _phase(
    server: Server, cookie: str, seconds: float, get_rate: int, sign_in_rate: int
) -> _Phase:
    """``seconds`` of signed-in GETs, ``get_rate`` a second, with ``sign_in_rate`` sign-ins
    a second (0: none) started alongside."""
    port = server.port
    get_request = _request(port, "GET", "/", cookie)
    # Taken in turn, so that none stays idle long enough for the server to close it.
    idle = deque([await _Connection.open(port) for _ in range(_POOL)])
    opened = [*idle]
    phase = _Phase()

    async def get(due: float) -> None:
        began = time.perf_counter()
        if idle:
            connection = idle.popleft()
        else:
            connection = await _Connection.open(port)
            opened.append(connection)
        reply = await connection.send(get_request)
        phase.gets.append(time.perf_counter() - began)
        phase.late.append(began - due)
        idle.append(connection)
        if reply.status != 200 or reply.body != _BODY or reply.header("set-cookie"):
            raise BenchmarkError(f"GET /: {reply.status} {reply.headers} {reply.body!r}")

    async def sign_in(due: float) -> None:
        phase.late.append(time.perf_counter() - due)
        _, elapsed = await _sign_in(port)
        phase.sign_ins.append(elapsed)
        phase.sign_in_span = time.perf_counter() - start

    # The client's own heap is not scanned while timing: the collector pauses it less.
    gc.collect()
    gc.freeze()
    server_cpu = _cpu_seconds(server.process.pid)
    client_cpu = time.process_time()
    start = time.perf_counter() + _START_DELAY
    try:
        async with asyncio.timeout(seconds * 10 + 60):
            streams = [_on_schedule(start, round(seconds * get_rate), get_rate, get)]
            if sign_in_rate:
                streams.append(
                    _on_schedule(start, round(seconds * sign_in_rate), sign_in_rate, sign_in)
                )
            await asyncio.gather(*streams)
    finally:
        gc.unfreeze()
    phase.wall = time.perf_counter() - start
    phase.client_cpu = time.process_time() - client_cpu
    after = _cpu_seconds(server.process.pid)
    if server_cpu is not None and after is not None:
        phase.server_cpu = after - server_cpu
    phase.connections = len(opened)
    for connection in opened:
        await connection.close()
    return phase


def _figures(phases: Sequence[_Phase]) -> dict[str, Any]:
    """One phase's figures over its rounds: the requests of every round together."""
    gets = [value for phase in phases for value in phase.gets]
    late = [value for phase in phases for value in phase.late]
    wall = sum(phase.wall for phase in phases)
    server_cpu = [phase.server_cpu for phase in phases]
    figures: dict[str, Any] = {
        "gets": len(gets),
        "get_p50_ms": _ms(_percentile(gets, 0.50)),
        "get_p99_ms": _ms(_percentile(gets, 0.99)),
        "get_max_ms": _ms(max(gets)),
        "get_p99_ms_rounds": [_ms(_percentile(phase.gets, 0.99)) for phase in phases],
        "connections": max(phase.connections for phase in phases),
        "client_late_p99_ms": _ms(_percentile(late, 0.99)),
        # Shares of one CPU, over the phase.
        "client_cpu": round(sum(phase.client_cpu for phase in phases) / wall, 3),
        "server_cpu": (
            None
            if None in server_cpu
            else round(sum(cpu for cpu in server_cpu if cpu is not None) / wall, 3)
        ),
    }
    sign_ins = [value for phase in phases for value in phase.sign_ins]
    if sign_ins:
        span = sum(phase.sign_in_span for phase in phases)
        figures |= {
            "sign_ins": len(sign_ins),
            "sign_ins_per_second": round(len(sign_ins) / span, 2),
            "sign_in_mean_ms": _ms(statistics.fmean(sign_ins)),
            "sign_in_p99_ms": _ms(_percentile(sign_ins, 0.99)),
        }
    return figures


async def _signed_in(server: Server) -> str:
    """A session cookie for ``server``'s user, checked to resolve (``/whoami``)."""
    cookie, _ = await _sign_in(server.port)
    connection = await _Connection.open(server.port)
    try:
        reply = await connection.send(_request(server.port, "GET", "/whoami", cookie))
    finally:
        await connection.close()
    require(
        reply.status == 200 and reply.body.decode() == CLAIMS["email"],
        f"{server.app.key}: the session cookie did not resolve ({reply.status} {reply.body!r})",
    )
    return cookie


async def _measure(servers: Sequence[Server], settings: Settings) -> dict[str, dict[str, Any]]:
    """Check and warm up each app, then time the GETs alone and with sign-ins, the apps
    taking turns over the rounds (each round starting with another)."""
    get_rate, sign_in_rate = settings.password_get_rate, settings.password_sign_in_rate
    cookies = {}
    for server in servers:
        cookies[server.app.key] = cookie = await _signed_in(server)
        await _phase(server, cookie, settings.password_warmup, get_rate, sign_in_rate)
    seconds = settings.password_seconds / settings.password_rounds
    alone: dict[str, list[_Phase]] = {server.app.key: [] for server in servers}
    loaded: dict[str, list[_Phase]] = {server.app.key: [] for server in servers}
    for round_ in range(settings.password_rounds):
        start = round_ % len(servers)
        for server in [*servers[start:], *servers[:start]]:
            key, cookie = server.app.key, cookies[server.app.key]
            alone[key].append(await _phase(server, cookie, seconds, get_rate, 0))
            loaded[key].append(await _phase(server, cookie, seconds, get_rate, sign_in_rate))
    return {
        server.app.key: {
            "alone": _figures(alone[server.app.key]),
            "sign_ins": _figures(loaded[server.app.key]),
        }
        for server in servers
    }


def _hasher_figures() -> tuple[str, float]:
    """The default hasher's parameters, as its hashes name them, and how long one
    verification takes here (best of 5, ms)."""
    from asgi_session.passwords import PasswordHasher

    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        hasher.verify(PASSWORD, stored)
        times.append(time.perf_counter() - start)
    # $argon2id$v=19$m=19456,t=2,p=1$salt$digest
    _, algorithm, _, parameters, *_ = stored.split("$")
    named = dict(parameter.split("=") for parameter in parameters.split(","))
    described = f"{algorithm} m={named['m']} KiB, t={named['t']}, p={named['p']}"
    return described, _ms(min(times))


def run_password_load(settings: Settings) -> dict[str, Any]:
    """GET latency without and with sign-ins, per app, or why the row was skipped."""
    missing = server_missing()
    if missing is not None:
        return {"skipped": missing}
    if importlib.util.find_spec("pwdlib") is None:
        return {"skipped": "pwdlib not installed (pip install 'asgi-session[passwords]')"}
    parameters, verify_ms = _hasher_figures()
    servers: list[Server] = []
    try:
        for app in _APPS:
            servers.append(Server(app))
        for server in servers:
            server.wait_ready()
        measured = asyncio.run(_measure(servers, settings))
    finally:
        for server in servers:
            server.stop()
    apps = []
    for app in _APPS:
        alone, loaded = measured[app.key]["alone"], measured[app.key]["sign_ins"]
        apps.append(
            {
                "key": app.key,
                "label": app.label,
                "counterfactual": app.key == _ON_LOOP,
                "alone": alone,
                "sign_ins": loaded,
                "p99_ratio": round(loaded["get_p99_ms"] / alone["get_p99_ms"], 2),
            }
        )
    rounds = settings.password_rounds
    return {
        "server": "uvicorn, 1 worker, --http httptools --loop asyncio, no access log",
        "load": (
            f"{settings.password_get_rate} signed-in GET / a second, "
            f"{settings.password_seconds} s alone then {settings.password_seconds} s with "
            f"{settings.password_sign_in_rate} password sign-ins a second, "
            f"in {rounds} round{'' if rounds == 1 else 's'}"
        ),
        "hasher": f"{parameters} (PasswordHasher's defaults)",
        "verify_ms": verify_ms,
        "cpus": os.cpu_count(),
        "apps": apps,
        "p99_factor": P99_FACTOR,
    }
