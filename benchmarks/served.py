"""The end-to-end row: each app served by uvicorn and driven by wrk over loopback.

The in-process rows leave out the server: parsing HTTP, building the scope, writing the
response. This row serves the bare app, the app under ``AuthMiddleware`` with a JWT
session (the same cookie on every request, as a browser sends it) and the app under
Starlette's ``SessionMiddleware`` (from :mod:`served_app`), each with uvicorn in a
process of its own (one worker, ``--http httptools --loop asyncio``, no access log), and
counts the requests per second ``wrk`` gets from each. The servers run side by side and
wrk drives one at a time, the apps taking turns over a few rounds (each round starting
with another), so a busy neighbour slows them alike; the report divides each app's best
round by the bare app's.

It needs ``wrk`` (``apt-get install wrk`` on Debian and Ubuntu) and the ``bench`` extra
(uvicorn, httptools); without them the row says it was skipped.
"""

from __future__ import annotations

import http.client
import importlib.util
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fixtures import CLAIMS, COOKIE, session_token, starlette_session_cookie
from harness import BenchmarkError, Settings, require

_HERE = Path(__file__).resolve().parent

SERVED_LIMIT = 0.85
"""The app with a JWT session must serve at least this share of the bare app's requests."""

_REQUESTS_PER_SECOND = re.compile(r"Requests/sec:\s+([0-9.]+)")
_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class ServedApp:
    """An app of :mod:`served_app` as a row serves it: the cookie sent, the check's answer."""

    key: str
    label: str
    cookie: str | None
    whoami: str | None  # what /whoami must answer with the cookie, None: no such route
    served: str = ""  # the app's name in served_app, when not its key

    @property
    def attribute(self) -> str:
        return self.served or self.key


def _apps() -> list[ServedApp]:
    jwt_cookie = f"{COOKIE}={session_token()}"
    return [
        ServedApp("bare", "bare Starlette app", None, None),
        # The server's share of a session: uvicorn reading the same 1.3 KB Cookie header
        # for an app that ignores it. What the JWT row loses beyond this one is ours.
        ServedApp(
            "bare_cookie",
            "bare Starlette app, sent the JWT row's Cookie header",
            jwt_cookie,
            None,
            served="bare",
        ),
        ServedApp("jwt_session", "AuthMiddleware, same valid JWT", jwt_cookie, CLAIMS["email"]),
        ServedApp(
            "starlette_session",
            "Starlette SessionMiddleware, signed cookie",
            f"session={starlette_session_cookie()}",
            CLAIMS["email"],
        ),
    ]


def server_missing() -> str | None:
    """Why no app can be served (uvicorn or httptools is not installed), or ``None``."""
    missing = [name for name in ("uvicorn", "httptools") if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return f"{' and '.join(missing)} not installed (pip install 'asgi-session[bench]')"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(port: int, path: str, cookie: str | None) -> tuple[int, bytes, list[str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        return response.status, response.read(), response.headers.get_all("set-cookie") or []
    finally:
        connection.close()


class Server:
    """One uvicorn process serving one app; stopped by its own PID."""

    def __init__(self, app: ServedApp) -> None:
        self.app = app
        self.port = _free_port()
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            f"served_app:{app.attribute}",
            "--app-dir",
            str(_HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--http",
            "httptools",
            "--loop",
            "asyncio",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(
            command,
            # Here, not the repository: the package is imported as the other rows import it.
            cwd=_HERE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                error = self.process.stderr.read() if self.process.stderr else ""
                raise BenchmarkError(f"uvicorn serving {self.app.key} exited:\n{error}")
            try:
                _get(self.port, "/", None)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchmarkError(f"uvicorn serving {self.app.key} did not start") from None
                time.sleep(0.1)

    def check(self) -> None:
        """The reply wrk will count, and (through /whoami) that the cookie resolves."""
        status, body, _ = _get(self.port, "/", self.app.cookie)
        require(status == 200 and body == b"Hello, world!", f"{self.app.key}: {status} {body!r}")
        if self.app.whoami is not None:
            status, body, _ = _get(self.port, "/whoami", self.app.cookie)
            require(
                status == 200 and body.decode() == self.app.whoami,
                f"{self.app.key}: the cookie did not resolve ({status} {body!r})",
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()


def _wrk(wrk: str, server: Server, seconds: int, connections: int) -> float:
    # wrk takes whole seconds.
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s"]
    if server.app.cookie is not None:
        command += ["-H", f"Cookie: {server.app.cookie}"]
    command.append(f"http://127.0.0.1:{server.port}/")
    completed = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    if completed.returncode != 0:
        output = completed.stderr or completed.stdout
        raise BenchmarkError(f"wrk failed on {server.app.key}:\n{output}")
    output = completed.stdout
    require("Non-2xx" not in output, f"{server.app.key}: wrk saw error replies:\n{output}")
    found = _REQUESTS_PER_SECOND.search(output)
    require(found is not None, f"wrk printed no Requests/sec:\n{output}")
    assert found is not None
    return float(found.group(1))


def run_served(settings: Settings) -> dict[str, Any]:
    """Requests per second of each served app, or why the row was skipped."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    missing = server_missing()
    if missing is not None:
        return {"skipped": missing}
    servers: list[Server] = []
    try:
        for app in _apps():
            servers.append(Server(app))
        for server in servers:
            server.wait_ready()
            server.check()
            _wrk(wrk, server, settings.served_warmup, settings.served_connections)
        runs: dict[str, list[float]] = {server.app.key: [] for server in servers}
        for round_ in range(settings.served_rounds):
            # Each round starts with another app: none always runs first, or after the same one.
            start = round_ % len(servers)
            for server in servers[start:] + servers[:start]:
                runs[server.app.key].append(
                    _wrk(wrk, server, settings.served_seconds, settings.served_connections)
                )
    finally:
        for server in servers:
            server.stop()
    bare = max(runs["bare"])
    bare_median = statistics.median(runs["bare"])
    apps = []
    for server in servers:
        rounds = runs[server.app.key]
        apps.append(
            {
                "key": server.app.key,
                "label": server.app.label,
                "best_rps": round(max(rounds)),
                "median_rps": round(statistics.median(rounds)),
                "rps_runs": [round(value) for value in rounds],
                "ratio": round(max(rounds) / bare, 3),
                "median_ratio": round(statistics.median(rounds) / bare_median, 3),
            }
        )
    ratio = max(runs["jwt_session"]) / bare
    return {
        "server": "uvicorn, 1 worker, --http httptools --loop asyncio, no access log",
        "load": (
            f"wrk -t1 -c{settings.served_connections} -d{settings.served_seconds}s, "
            f"{settings.served_rounds} round{'' if settings.served_rounds == 1 else 's'}"
        ),
        "apps": apps,
        "ratio": round(ratio, 3),
        "limit": SERVED_LIMIT,
        "passed": ratio >= SERVED_LIMIT,
    }
