"""A throwaway standalone ``mongod``: no replica set, hence no change streams.

:class:`~tests.support.mongod.MongodServer` always starts a replica set; this one starts
the same binary without ``--replSet``, which is what many development setups run, so
tests can see what asgi-session does where changes cannot be watched.
"""

from __future__ import annotations

import subprocess
import time

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from tests.support.mongod import MongodServer

_START_TIMEOUT = 60.0


class StandaloneMongod(MongodServer):
    """A standalone ``mongod`` on 127.0.0.1 and a free port, data in a temporary directory."""

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> None:
        if self.running:
            return
        command = [
            self._binary,
            "--bind_ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dbpath",
            str(self._dbpath),
            "--logpath",
            str(self._logpath),
            "--logappend",
            "--nounixsocket",
            "--wiredTigerCacheSizeGB",
            str(self._cache_size_gb),
            "--setParameter",
            "diagnosticDataCollectionEnabled=false",
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            self._wait_until_writable()
        except BaseException:
            self.stop()
            raise

    def _wait_until_writable(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        client: MongoClient[dict[str, object]]
        with MongoClient(
            "127.0.0.1", self.port, directConnection=True, serverSelectionTimeoutMS=250
        ) as client:
            while time.monotonic() < deadline:
                self._fail_if_exited()
                try:
                    if client.admin.command("hello").get("isWritablePrimary"):
                        return
                except PyMongoError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"standalone mongod on port {self.port} did not start")
