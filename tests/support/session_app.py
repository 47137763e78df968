"""A second app instance in a process of its own, on the same MongoDB database.

``python -m tests.support.session_app <mongodb-url> <database>`` serves
:func:`tests.support.apps.build_app`'s app with database sessions (cached, the default)
on a free loopback port, and prints ``READY <url>`` once it accepts requests. Besides the
app's routes, ``GET /_instance`` answers ``{"cacheActive": bool, "commands": int}``: whether
it serves sessions from memory, and how many commands its MongoDB client has sent (a
hit sends none). SIGTERM stops it, closing the change stream first.

:class:`SessionAppProcess` starts one from a test or a benchmark and stops it by its PID.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

_REPO = Path(__file__).resolve().parents[2]
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


class SessionAppProcess:
    """The app of this module, serving ``database`` at ``mongodb_url`` from a subprocess."""

    def __init__(self, mongodb_url: str, database: str) -> None:
        self._command = [sys.executable, "-m", "tests.support.session_app", mongodb_url, database]
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        process = self._process = subprocess.Popen(
            self._command,
            cwd=_REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        # Read on a thread: a child that hangs before printing must not hang the caller.
        ready: list[str] = []
        reader = threading.Thread(
            target=lambda: ready.append(process.stdout.readline() if process.stdout else ""),
            daemon=True,
        )
        reader.start()
        reader.join(_START_TIMEOUT)
        line = ready[0] if ready else ""
        if not line.startswith("READY "):
            if process.poll() is None:
                process.kill()
            errors = process.stderr.read() if process.stderr else ""
            self.stop()
            raise RuntimeError(f"the second app instance did not start: {line!r}\n{errors}")
        self.url = line.split(" ", 1)[1].strip()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> SessionAppProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _serve(mongodb_url: str, database: str) -> None:
    import uvicorn
    from pymongo import AsyncMongoClient, monitoring
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from asgi_session.backends import DatabaseStrategy
    from asgi_session.backends.mongodb import MongoDBAdapter
    from tests.support.apps import build_app, config_of

    class Count(monitoring.CommandListener):
        commands = 0

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            # The change stream's own waits are not requests' round trips.
            if event.command_name != "getMore":
                Count.commands += 1

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    # IPPROTO_TCP spelt out: asyncio turns Nagle's algorithm off only on connections of
    # such sockets, and with it on, every response waits ~40 ms for a delayed ACK.
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listening.getsockname()[1]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongodb_url, event_listeners=[Count()]
    )
    app = build_app(adapter=MongoDBAdapter(client[database]), rate_limits=None)
    chosen = config_of(app).strategy
    assert isinstance(chosen, DatabaseStrategy)
    strategy: DatabaseStrategy = chosen

    async def instance(request: Request) -> JSONResponse:
        return JSONResponse({"cacheActive": strategy.cache_active, "commands": Count.commands})

    app.router.routes.append(Route("/_instance", instance))

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            print(f"READY {url}", flush=True)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await super().shutdown(sockets)
            await strategy.aclose()
            await client.close()

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    asyncio.run(Server(config).serve(sockets=[listening]))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {os.path.basename(sys.argv[0])} <mongodb-url> <database>")
    _serve(sys.argv[1], sys.argv[2])
