"""An ASGI app served over real HTTP on the loopback interface, for clients in other processes.

:class:`LiveServer` runs uvicorn from a thread of the test process, so the app can be
built from the test's own functions (an ``authorize`` that records what it was asked).
The listening socket is bound before the app is built: the app knows its own URL, as
``AuthConfig(url=...)`` needs, and no other process can take the port in between.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest
import uvicorn
from starlette.types import ASGIApp

_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 10.0


class LiveServer:
    """``build(url)``'s app served by uvicorn at ``url`` (``http://127.0.0.1:<port>``).

    ``host`` names the server in ``url`` (the socket is on 127.0.0.1 either way):
    ``"localhost"`` for what needs a host name rather than an IP address, as passkeys do.
    """

    def __init__(self, build: Callable[[str], ASGIApp], *, host: str = "127.0.0.1") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://{host}:{self._socket.getsockname()[1]}"
        self.app = build(self.url)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"uvicorn did not start serving {self.url}", pytrace=False)
            time.sleep(0.02)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                # Connections a client left open would otherwise hold shutdown up.
                self._server.force_exit = True
                self._thread.join(_STOP_TIMEOUT)
        self._socket.close()

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
