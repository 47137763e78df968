"""The report: each row's figures, its ratio to the bare app, targets and verdicts.

:func:`build_report` gathers the results of a run into one JSON-ready mapping (what
``--json`` prints); :func:`print_report` prints it as a table. Besides each case's own
target (``Case.limit``), two targets compare rows with each other: the 1,000,000 stored
sessions row with the 1,000 one, and @auth/core's ``GET /auth/session`` with ours; a row
with a floor (``Case.floor``, the SQL rows) is also divided by it, with no target. The
end-to-end row (:mod:`served`) has its own target, a share of the bare app's requests
per second; the sign-ins under load (:mod:`passwords`) and the memory figures
(:mod:`memory`) have none (the former prints an informational comparison). A missed
target prints FAIL; it does not fail the run.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

from cases import BASELINE, DB_STORED_LARGE, DB_STORED_SMALL, SESSION_ROUTE
from harness import Result, Settings

SCALING_LIMIT = 1.2
"""Resolving among 1,000,000 stored sessions may take at most this many times as long as
among 1,000."""

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


def _over_floors(results: Sequence[Result]) -> list[dict[str, Any]]:
    """Each row that has a floor, divided by it: what the row adds to the bare query."""
    timed = {result.case.key: result for result in results if result.runs_us}
    found = []
    for result in results:
        floor = timed.get(result.case.floor or "")
        if result.runs_us and floor is not None:
            found.append(
                {
                    "key": result.case.key,
                    "label": result.label,
                    "floor": floor.case.key,
                    "best_us": round(result.best_us, 2),
                    "floor_best_us": round(floor.best_us, 2),
                    "added_us": round(result.best_us - floor.best_us, 2),
                    "ratio": round(result.best_us / floor.best_us, 3),
                    "median_ratio": round(result.median_us / floor.median_us, 3),
                }
            )
    return found


def build_report(
    results: Sequence[Result],
    authjs: dict[str, Any],
    settings: Settings,
    *,
    served: dict[str, Any] | None = None,
    passwords: dict[str, Any] | None = None,
    memory: dict[str, Any] | None = None,
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
        "floors": _over_floors(results),
        "authjs": authjs,
        "served": served or {"skipped": "not requested"},
        "passwords": passwords or {"skipped": "not requested"},
        "memory": memory or {"skipped": "not requested"},
    }


def _verdict(passed: bool | None) -> str:
    return "" if passed is None else ("PASS" if passed else "FAIL")


_LABEL = 52


def print_report(report: dict[str, Any]) -> None:
    """The figures as a table, one row per case."""
    load = ", ".join(f"{value:.2f}" for value in report["load_average"])
    io = ""
    if any(row.get("io") for row in report["cases"]):
        io = f" (database rows: {report['io_iterations']:,}, every request awaits its database)"
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
    for row in report["floors"]:
        print(
            f"{row['label']}: {row['ratio']:.2f}x its floor (median {row['median_ratio']:.2f}x), "
            f"{row['added_us']:+.1f} us per request"
        )
    _print_authjs(report["authjs"])
    _print_served(report["served"])
    _print_passwords(report["passwords"])
    _print_memory(report["memory"])


def _print_authjs(authjs: dict[str, Any]) -> None:
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


def _print_served(served: dict[str, Any]) -> None:
    print()
    if "skipped" in served:
        print(f"{'end to end (uvicorn and wrk)':<{_LABEL}} skipped: {served['skipped']}")
        return
    print(f"end to end: {served['server']}; {served['load']}; requests per second")
    header = f"{'app':<{_LABEL}}{'best rps':>9}{'median rps':>11}{'x bare':>8}  {'target':<9}"
    print(header)
    print("-" * len(header))
    for app in served["apps"]:
        target, verdict = "", ""
        if app["key"] == "jwt_session":
            target, verdict = f">= {served['limit']:.2f}x", _verdict(served["passed"])
        line = (
            f"{app['label']:<{_LABEL}}{app['best_rps']:>9,}{app['median_rps']:>11,}"
            f"{app['ratio']:>8.2f}  {target:<9}{verdict}"
        )
        print(line.rstrip())


def _print_passwords(passwords: dict[str, Any]) -> None:
    print()
    if "skipped" in passwords:
        print(f"{'sign-ins under load (uvicorn)':<{_LABEL}} skipped: {passwords['skipped']}")
        return
    print(
        f"sign-ins under load: {passwords['server']}, {passwords['cpus']} CPUs\n"
        f"  {passwords['load']}\n"
        f"  {passwords['hasher']}: one verification takes {passwords['verify_ms']:.1f} ms here\n"
        "GET / latency in ms; sign-ins achieved a second, and their mean ms (csrf + POST)"
    )
    header = f"{'app, load':<{_LABEL}}{'p50':>8}{'p99':>8}{'max':>8}{'sign-ins/s':>12}{'mean':>8}"
    print(header)
    print("-" * len(header))
    factor = passwords["p99_factor"]
    for app in passwords["apps"]:
        print(app["label"])
        for name, phase in (("no sign-ins", app["alone"]), ("with sign-ins", app["sign_ins"])):
            line = (
                f"{'  ' + name:<{_LABEL}}{phase['get_p50_ms']:>8.2f}{phase['get_p99_ms']:>8.2f}"
                f"{phase['get_max_ms']:>8.2f}"
            )
            if "sign_ins" in phase:
                line += f"{phase['sign_ins_per_second']:>12.1f}{phase['sign_in_mean_ms']:>8.1f}"
            print(line)
        ratio = app["p99_ratio"]
        within = "within" if ratio <= factor else "over"
        loaded = app["sign_ins"]
        server = "" if loaded["server_cpu"] is None else f"; server {loaded['server_cpu']:.0%}"
        print(
            f"    p99 with sign-ins {ratio:.2f}x without ({within} {factor:g}x; "
            "informational, no target)"
        )
        print(
            f"    with sign-ins, of one CPU: client {loaded['client_cpu']:.0%}{server}; "
            f"client sent requests {loaded['client_late_p99_ms']:.1f} ms late (p99)"
        )


def _print_memory(memory: dict[str, Any]) -> None:
    print()
    if "skipped" in memory:
        print(f"{'memory (peak RSS of one process)':<{_LABEL}} skipped: {memory['skipped']}")
        return
    print("memory: one process each, resident set after warming up and at its peak (VmHWM)")
    labels = {
        "users": "distinct signed-in users, one request each",
        "flood": "distinct 7 KB Cookie headers, one valid session",
    }
    for figures in memory["scenarios"]:
        baseline, peak = figures["baseline_kb"] / 1024, figures["peak_kb"] / 1024
        print(
            f"  {figures['requests']:,} {labels[figures['scenario']]}: {baseline:.1f} MB, "
            f"peak {peak:.1f} MB (+{peak - baseline:.1f} MB); tokens remembered: "
            f"{figures['cached_entries']:,}, {figures['cached_bytes'] / 2**20:.1f} MiB estimated"
        )
