"""How much asgi-session adds to a request, measured against a bare Starlette app.

Run ``python benchmarks/bench.py`` (``--quick`` for a short smoke run, ``--json`` for
machine-readable output). Every ASGI app is called directly with an HTTP scope copied
from a prebuilt template and no-op ``receive``/``send`` callables: no sockets and no HTTP
client, whose cost would swamp the microseconds being compared. The cases run
round-robin, one timed batch each per round, so a neighbour stealing CPU slows every case
alike; each case reports its best and median batch, and its ratio to the bare app's best
batch from the same run.

A row is a :class:`Case` in :data:`CASES`: a key, a label, an optional target ratio and an
``async`` setup returning a :class:`Target` (the app, a factory of request templates, a
check of one response, and optional extra figures and clean-up). A case needing a
database connects and seeds in ``setup`` (raising :class:`CaseSkipped` when the database
is missing), reports round trips per request through ``extra``, and is registered once
per data size, e.g. ``functools.partial(_mongodb_sessions, stored=1_000_000)``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from base64 import b64encode
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

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

_HERE = Path(__file__).resolve().parent
_NODE_SCRIPT = _HERE / "authjs_session.mjs"
_AUTHJS = _HERE.parent / "tests" / "node" / "node_modules" / "@auth" / "core"

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


@dataclass
class Target:
    """A case made ready to run.

    ``requests(n)`` returns the scope templates of ``n`` requests, built before timing
    (the same template may repeat); ``check`` raises when a reply shows the case is not
    doing what it claims (for instance a session cookie that did not resolve). ``extra``
    returns figures to report next to the timing, such as database round trips per
    request; ``close`` releases what ``setup`` acquired.
    """

    app: ASGIApp
    requests: Callable[[int], list[Scope]]
    check: Callable[[Scope, Reply], None]
    extra: Callable[[], dict[str, float]] | None = None
    close: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Case:
    """One row of the report; ``limit`` is the largest acceptable ratio to the bare app."""

    key: str
    label: str
    setup: Callable[[], Awaitable[Target]]
    limit: float | None = None


class BenchmarkError(RuntimeError):
    """A case did not behave as it should; its timing would mean nothing."""


class CaseSkipped(Exception):
    """Raised by a case's setup when something it needs (a database, a tool) is missing."""


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


async def _bare() -> Target:
    return Target(_starlette(), _repeat("/"), _check_ok)


async def _no_cookie() -> Target:
    return Target(_auth_app(), _repeat("/"), _check_anonymous)


async def _same_token() -> Target:
    requests = _repeat("/", cookie_header(_COOKIE, session_token()))
    return Target(_auth_app(), requests, _check_signed_in)


async def _fresh_tokens() -> Target:
    def requests(count: int) -> list[Scope]:
        # Every token is new (its own jti and IV), so no cache can have seen it.
        return [http_scope("/", [cookie_header(_COOKIE, session_token())]) for _ in range(count)]

    return Target(_auth_app(), requests, _check_signed_in)


async def _session_route() -> Target:
    def check(scope: Scope, reply: Reply) -> None:
        _require(reply.status == 200, f"status {reply.status}")
        body = json.loads(reply.body)
        _require(body["user"]["email"] == _CLAIMS["email"], f"body {reply.body!r}")

    requests = _repeat("/auth/session", cookie_header(_COOKIE, session_token()))
    return Target(_auth_app(), requests, check)


async def _starlette_sessions() -> Target:
    # The cookie SessionMiddleware itself would set for {"user": ...}.
    payload = b64encode(json.dumps({"user": _CLAIMS}).encode("utf-8"))
    value = itsdangerous.TimestampSigner(_SECRET).sign(payload).decode("ascii")

    def check(scope: Scope, reply: Reply) -> None:
        _check_ok(scope, reply)
        _require(scope.get("session") == {"user": _CLAIMS}, "signed cookie not read")

    app = _starlette(Middleware(SessionMiddleware, secret_key=_SECRET))
    return Target(app, _repeat("/", cookie_header("session", value)), check)


BASELINE = "bare"
SESSION_ROUTE = "session_route"

CASES: list[Case] = [
    Case(BASELINE, "bare Starlette app", _bare),
    Case("no_cookie", "AuthMiddleware, no cookie", _no_cookie, limit=1.1),
    Case("same_token", "AuthMiddleware, same valid JWT", _same_token, limit=1.5),
    Case("fresh_token", "AuthMiddleware, new JWT every request", _fresh_tokens, limit=3.0),
    Case(SESSION_ROUTE, "GET /auth/session, valid JWT", _session_route),
    Case("starlette_session", "Starlette SessionMiddleware, signed cookie", _starlette_sessions),
]
"""The rows, in print order; the first one is the baseline the others are divided by."""


# -- running the cases -----------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Requests per timed batch, batches (rounds) per case, and the same for node."""

    iterations: int
    rounds: int
    warmup: int
    node_iterations: int
    node_rounds: int
    node_warmup: int


FULL = Settings(
    iterations=20_000, rounds=7, warmup=3_000, node_iterations=1_000, node_rounds=5, node_warmup=500
)
QUICK = Settings(
    iterations=1_000, rounds=3, warmup=200, node_iterations=100, node_rounds=2, node_warmup=50
)


@dataclass
class Result:
    case: Case
    runs_us: list[float] = field(default_factory=list)
    cyclic_garbage: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def best_us(self) -> float:
        return min(self.runs_us)

    @property
    def median_us(self) -> float:
        return statistics.median(self.runs_us)


async def _prepare(case: Case, settings: Settings) -> tuple[Target | None, Result]:
    """Set a case up, check a few replies and warm it up."""
    result = Result(case)
    try:
        target = await case.setup()
    except CaseSkipped as exc:
        result.skipped = str(exc)
        return None, result
    for template in target.requests(3):
        try:
            target.check(*await call_once(target.app, template))
        except (BenchmarkError, KeyError, ValueError) as exc:
            raise BenchmarkError(f"{case.key}: {exc}") from exc
    await _time_batch(target.app, target.requests(settings.warmup))
    result.cyclic_garbage = await _cyclic_garbage_per_request(target.app, target.requests(200))
    return target, result


async def run_cases(cases: Sequence[Case], settings: Settings) -> list[Result]:
    """Check and warm up every case, then time each once per round, round-robin."""
    prepared: list[tuple[Target | None, Result]] = []
    try:
        for case in cases:
            prepared.append(await _prepare(case, settings))
        for _ in range(settings.rounds):
            for target, result in prepared:
                if target is not None:
                    requests = target.requests(settings.iterations)
                    result.runs_us.append(await _time_batch(target.app, requests))
        for target, result in prepared:
            if target is not None and target.extra is not None:
                result.extra = target.extra()
        return [result for _, result in prepared]
    finally:
        for target, _ in prepared:
            if target is not None and target.close is not None:
                await target.close()


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
        return {"key": result.case.key, "label": result.case.label, "skipped": result.skipped}
    ratio = result.best_us / baseline.best_us
    return {
        "key": result.case.key,
        "label": result.case.label,
        "best_us": round(result.best_us, 2),
        "median_us": round(result.median_us, 2),
        "runs_us": [round(run, 2) for run in result.runs_us],
        "ratio": round(ratio, 3),
        "median_ratio": round(result.median_us / baseline.median_us, 3),
        "limit": limit,
        "passed": None if limit is None else ratio <= limit,
        "cyclic_garbage_per_request": round(result.cyclic_garbage, 1),
        "extra": result.extra,
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
        "rounds": settings.rounds,
        "cases": [_row(result, baseline) for result in results],
        "authjs": authjs,
    }


def _verdict(passed: bool | None) -> str:
    return "" if passed is None else ("PASS" if passed else "FAIL")


_LABEL = 44


def print_report(report: dict[str, Any]) -> None:
    """The figures as a table, one row per case."""
    load = ", ".join(f"{value:.2f}" for value in report["load_average"])
    print(
        f"asgi-session benchmark: Python {report['python']}, Starlette {report['starlette']}, "
        f"{report['cpus']} CPUs (load {load})\n"
        f"{report['iterations']:,} requests per batch x {report['rounds']} rounds; "
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
        extra = "  ".join(f"{name}={value:g}" for name, value in row["extra"].items())
        line = (
            f"{row['label']:<{_LABEL}}{row['best_us']:>9.2f}{row['median_us']:>11.2f}"
            f"{row['ratio']:>8.2f}{row['cyclic_garbage_per_request']:>8g}  {target:<9}"
            f"{_verdict(row['passed']):<5} {extra}"
        )
        print(line.rstrip())
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
        "--only", nargs="+", metavar="KEY", help="run only these cases (and the baseline)"
    )
    options = parser.parse_args(argv)
    settings = QUICK if options.quick else FULL
    if options.rounds:
        settings = replace(settings, rounds=options.rounds)
    if options.iterations:
        settings = replace(settings, iterations=options.iterations)
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
