"""The memory figures: how far one process grows when very many browsers sign in to it.

:func:`run_memory` runs this module as a script, once per scenario, in a process of its
own (so nothing the other rows built counts, and they are not disturbed), and reports
its resident set: after the app is built and warmed up, and at its peak (``VmHWM`` in
``/proc/self/status``), with what the JWT strategy's cache of resolved tokens holds at
the end. The scenarios:

- ``users``: that many distinct signed-in users, each sending its own session cookie
  (a token made for it, with its own ``sub`` and email) once;
- ``flood``: as many distinct 7 KB Cookie headers, each the same valid session cookie
  followed by junk, what anyone holding one session can send.

Each request's token and header are made just before it and dropped after it, so what
stays is what the process keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.middleware import Middleware

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.jwt import encode
from fixtures import CLAIMS, COOKIE, SECRET, session_app, session_token
from harness import BenchmarkError, call_once, cookie_header, http_scope

_FLOOD_HEADER = 7 * 1024
SCENARIOS = ("users", "flood")


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


async def _measure(scenario: str, count: int) -> dict[str, Any]:
    config = AuthConfig(secret=SECRET)
    app = session_app(Middleware(AuthMiddleware, config=config))
    token = session_token()

    def header(index: int) -> tuple[bytes, bytes]:
        if scenario == "flood":
            junk = os.urandom(_FLOOD_HEADER // 2).hex()[: _FLOOD_HEADER - len(token) - 40]
            value = f"{COOKIE}={token}; j={index:x}{junk}"
            return (b"cookie", value.encode("latin-1"))
        claims = {**CLAIMS, "sub": f"{index:024x}", "email": f"user{index}@example.com"}
        return cookie_header(COOKIE, encode(claims, secret=SECRET, salt=COOKIE))

    for index in range(100):  # imports, first-use caches, the allocator's first arenas
        await call_once(app, http_scope("/", [header(-1 - index)]))
    baseline = _status_kb("VmRSS")
    for index in range(count):
        scope, reply = await call_once(app, http_scope("/", [header(index)]))
        if reply.status != 200 or scope["state"].get("session") is None:
            raise RuntimeError(f"request {index} resolved no session")
    memos = getattr(config.strategy, "_memos", {})
    return {
        "scenario": scenario,
        "requests": count,
        "baseline_kb": baseline,
        "peak_kb": _status_kb("VmHWM"),
        "cached_entries": sum(len(memo) for memo in memos.values()),
        "cached_bytes": sum(getattr(memo, "bytes", 0) for memo in memos.values()),
    }


def run_memory(count: int) -> dict[str, Any]:
    """Each scenario's figures, measured in a process of its own."""
    if not Path("/proc/self/status").exists():
        return {"skipped": "needs /proc/self/status (Linux)"}
    figures = []
    for scenario in SCENARIOS:
        completed = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), scenario, str(count)],
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        if completed.returncode != 0:
            raise BenchmarkError(f"memory.py {scenario} failed:\n{completed.stderr}")
        figures.append(json.loads(completed.stdout))
    return {"scenarios": figures}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Peak RSS of one process under many cookies.")
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("count", type=int)
    options = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_measure(options.scenario, options.count))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
