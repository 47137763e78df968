"""Calling ASGI apps and timing them: what every row of the benchmark runs on.

Every ASGI app is called directly with an HTTP scope copied from a prebuilt template and
no-op ``receive``/``send`` callables: no sockets and no HTTP client, whose cost would swamp
the microseconds being compared. :func:`run_cases` runs the cases round-robin, one timed
batch each per round, so a neighbour stealing CPU slows every case alike; each case's
:class:`Result` keeps every batch, from which the report takes the best and the median and
divides them by the bare app's from the same run.

A row is a :class:`Case`: a key, a label, an optional target ratio and an ``async`` setup
taking the :class:`Run` and returning a :class:`Target` (the app, a factory of request
templates, a check of one response, and optional extra figures and clean-up). A case whose
requests await real I/O is timed in smaller batches (``Case.io``). What several cases use,
such as a database server, is made once per run by :meth:`Run.shared` and closed with it.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

from starlette.types import ASGIApp, Message, Scope

# What a browser sends besides the cookie; every case gets the same, baseline included.
COMMON_HEADERS: list[tuple[bytes, bytes]] = [
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
        "headers": [*COMMON_HEADERS, *headers],
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


# -- cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Requests per timed batch, batches (rounds) per case, and the same for node.

    ``io_iterations`` and ``io_warmup`` replace ``iterations`` and ``warmup`` for cases
    whose every request awaits a database; ``max_stored`` caps how many sessions such a
    case stores (``None``: as many as the case asks for). The end-to-end row runs wrk
    for ``served_seconds`` per app and round (after ``served_warmup`` seconds once) with
    ``served_connections`` connections; the memory figures sign in ``memory_users``.
    The sign-ins row sends ``password_get_rate`` signed-in GETs a second, alone and
    with ``password_sign_in_rate`` password sign-ins a second, for ``password_seconds``
    each, in ``password_rounds`` rounds (after ``password_warmup`` seconds of both).
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
    served_seconds: int = 5
    served_rounds: int = 4
    served_warmup: int = 2
    served_connections: int = 32
    memory_users: int = 100_000
    password_seconds: int = 10
    password_rounds: int = 5
    password_warmup: int = 1
    password_get_rate: int = 200
    password_sign_in_rate: int = 20


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


def require(condition: bool, message: str) -> None:
    """Raise :class:`BenchmarkError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise BenchmarkError(message)


class Shared(Protocol):
    """Something several cases of a run use, made by :meth:`Run.shared`."""

    def close(self) -> None:
        """Release it; called once, when the run ends."""


_S = TypeVar("_S", bound=Shared)


@dataclass
class Run:
    """What the cases of one run share: its settings, and what :meth:`shared` made."""

    settings: Settings
    _shared: dict[Callable[[], Shared], Shared] = field(
        default_factory=dict, init=False, repr=False
    )

    def shared(self, make: Callable[[], _S]) -> _S:
        """The run's one ``make()``, made on first use: ``run.shared(MongoDB)``."""
        if make not in self._shared:
            self._shared[make] = make()
        return cast(_S, self._shared[make])

    def close(self) -> None:
        """Close what the run made."""
        for resource in self._shared.values():
            resource.close()


@dataclass(frozen=True)
class Case:
    """One row of the report; ``limit`` is the largest acceptable ratio to the bare app.

    ``io`` marks a case whose every request awaits real I/O (a database): it is timed in
    batches of ``Settings.io_iterations`` requests. ``floor`` names the case doing the
    least work that gets the same answer (the same query by hand): the report divides
    this row by it, and running this row runs it too.
    """

    key: str
    label: str
    setup: Callable[[Run], Awaitable[Target]]
    limit: float | None = None
    io: bool = False
    floor: str | None = None


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
