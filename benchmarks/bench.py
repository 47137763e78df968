"""How much asgi-session adds to a request, measured against a bare Starlette app.

Run ``python benchmarks/bench.py`` from the repository root (``--quick`` for a short smoke
run, ``--json`` for machine-readable output, ``--help`` for the rest). This module is the
command line only; ``benchmarks/README.md`` says which module holds what.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from authjs import run_authjs
from cases import BASELINE, CASES, GROUPS, SESSION_ROUTE
from harness import BenchmarkError, Settings, run_cases
from memory import run_memory
from passwords import run_password_load
from report import build_report, print_report
from served import run_served

# The end-to-end rows and the memory figures are not cases: ``--only`` names them apart.
SERVED = "served"
PASSWORDS = "passwords"
MEMORY = "memory"

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
    served_seconds=1,
    served_rounds=1,
    served_warmup=1,
    memory_users=10_000,
    password_seconds=2,
    password_rounds=1,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 1 when a case misbehaves (targets missed do not fail the run)."""
    parser = argparse.ArgumentParser(description="How much asgi-session adds to a request.")
    parser.add_argument("--quick", action="store_true", help="a short run, as a smoke test")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-node", action="store_true", help="skip the @auth/core row")
    parser.add_argument(
        "--no-served", action="store_true", help="skip the end-to-end row (uvicorn and wrk)"
    )
    parser.add_argument(
        "--no-passwords",
        action="store_true",
        help="skip the sign-ins under load row (uvicorn, password sign-ins)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory figures")
    parser.add_argument("--rounds", type=int, help="timed batches per case")
    parser.add_argument("--iterations", type=int, help="requests per timed batch")
    parser.add_argument(
        "--io-iterations", type=int, help="requests per timed batch of the database rows"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="KEY",
        help=f"run only these cases (and the baseline, and the floor of a row that has "
        f"one); {', '.join(repr(name) for name in GROUPS)} names the SQL rows, "
        f"{SERVED!r}, {PASSWORDS!r} and {MEMORY!r} the end-to-end row, the sign-ins under "
        "load and the memory figures",
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
    served_wanted = not options.no_served
    passwords_wanted = not options.no_passwords
    memory_wanted = not options.no_memory
    if options.only:
        names = {case.key for case in CASES} | set(GROUPS) | {SERVED, PASSWORDS, MEMORY}
        unknown = set(options.only) - names
        if unknown:
            parser.error(f"unknown case(s) {', '.join(sorted(unknown))}")
        wanted = {BASELINE, *options.only}
        wanted.update(key for name in options.only for key in GROUPS.get(name, ()))
        # A row divided by its floor needs the floor timed in the same run.
        wanted.update(case.floor for case in CASES if case.key in wanted and case.floor)
        cases = [case for case in CASES if case.key in wanted]
        served_wanted = served_wanted and SERVED in options.only
        passwords_wanted = passwords_wanted and PASSWORDS in options.only
        memory_wanted = memory_wanted and MEMORY in options.only
    not_requested: dict[str, Any] = {"skipped": "not requested"}
    try:
        results = asyncio.run(run_cases(cases, settings))
        if options.no_node or all(case.key != SESSION_ROUTE for case in cases):
            authjs = not_requested
        else:
            authjs = run_authjs(settings)
        served = run_served(settings) if served_wanted else not_requested
        passwords = run_password_load(settings) if passwords_wanted else not_requested
        memory = run_memory(settings.memory_users) if memory_wanted else not_requested
    except BenchmarkError as exc:
        print(f"benchmark error: {exc}", file=sys.stderr)
        return 1
    report = build_report(
        results, authjs, settings, served=served, passwords=passwords, memory=memory
    )
    if options.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
