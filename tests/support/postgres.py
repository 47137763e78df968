"""A real, throwaway PostgreSQL server for the test suite.

The server is Debian's (``apt-get install postgresql``: binaries under
``/usr/lib/postgresql/<version>/bin``, the newest version is used). Each run gets a
cluster of its own: ``initdb`` in a fresh temporary directory, ``postgres`` on
127.0.0.1 and a free port, trust authentication for the ``postgres`` superuser.
Nothing is shared with a system cluster or with an earlier run, so a server left
behind by a crashed run cannot be reused by mistake, hold the port, or make this
run wait for it. The cluster lives in ``/dev/shm`` when there is room: creating the
database each test gets is ten times faster in memory than on a disk. The server is
told to quit when the run dies, even by SIGKILL, and clusters of killed runs are
removed by the next run.

``initdb`` and ``postgres`` refuse to run as root, and CI runs as root: there both
run as an unprivileged account (``nobody``) that owns the temporary directory.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SUPERUSER = "postgres"
INSTALL_HINT = (
    "install it with `apt-get install -y postgresql` (or `sh scripts/install-postgresql.sh`), "
    "or set DATABASE_URL to a postgresql:// URL of an existing server"
)
# Accounts that may own the cluster when the tests run as root, in order of preference.
_UNPRIVILEGED_USERS = ("nobody", "postgres")
_PG_ROOT = Path("/usr/lib/postgresql")
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0
_POLL_INTERVAL = 0.05
_PR_SET_PDEATHSIG = 1
_SHM_NEEDED = 512 * 1024 * 1024
_DIR_PREFIX = "asgi-session-postgres-"
_STALE_AFTER = 3600.0
# Settings for a disposable cluster: durability buys nothing when the data is deleted
# after the run, and costs most of the time of CREATE DATABASE and of every commit.
_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    # No replicas: WAL only for crash safety nobody needs. The cluster may live in
    # memory (see _scratch_dir), so WAL is kept small rather than left to pile up.
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "min_wal_size": "32MB",
    "max_wal_size": "128MB",
    "autovacuum": "off",
    "jit": "off",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


class _PortTaken(Exception):
    """The free port found was taken by another process before postgres bound it."""


class PostgresNotInstalledError(RuntimeError):
    """No PostgreSQL server binaries were found."""


def postgres_bin_dir() -> Path:
    """Directory of the newest Debian PostgreSQL's binaries (``initdb``, ``postgres``)."""
    candidates: list[tuple[int, Path]] = []
    if _PG_ROOT.is_dir():
        for entry in _PG_ROOT.iterdir():
            if not re.fullmatch(r"\d+", entry.name):
                continue
            bin_dir = entry / "bin"
            if all(os.access(bin_dir / name, os.X_OK) for name in ("initdb", "postgres")):
                candidates.append((int(entry.name), bin_dir))
    if not candidates:
        raise PostgresNotInstalledError(
            f"PostgreSQL is needed for the SQL tests and no {_PG_ROOT}/<version>/bin/initdb "
            f"was found: {INSTALL_HINT}."
        )
    return max(candidates)[1]


def asyncpg_url(url: str) -> str:
    """``url`` (``postgres://``, ``postgresql://`` or with a driver) for SQLAlchemy's asyncpg."""
    parsed = make_url(re.sub(r"^postgres(?=://|\+)", "postgresql", url))
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string()}")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    """``url`` naming another database on the same server."""
    parsed: URL = make_url(url).set(database=database)
    return parsed.render_as_string(hide_password=False)


def _scratch_dir() -> str | None:
    """Where the cluster goes: ``/dev/shm`` when it is a usable tmpfs, else the temp dir.

    On a disk, even with fsync off, each CREATE DATABASE (a copy of ``template0``)
    takes 100-150 ms; in memory it takes about 10 ms, and every test creates one.
    """
    shm = "/dev/shm"
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    if not os.access(shm, os.W_OK | os.X_OK) or stats.f_bavail * stats.f_frsize < _SHM_NEEDED:
        return None
    return shm


def remove_stale_clusters(base_dir: str | None = None) -> None:
    """Delete the clusters runs killed before their teardown left behind.

    In ``/dev/shm`` they would hold memory until the next reboot. A cluster is stale
    when its server is gone and it has not been touched for an hour: a run going on
    at the same time keeps its own.
    """
    base = Path(base_dir or _scratch_dir() or tempfile.gettempdir())
    for root in base.glob(f"{_DIR_PREFIX}*"):
        try:
            pid_file = root / "data" / "postmaster.pid"
            if pid_file.exists():
                pid = int(pid_file.read_text().split("\n", 1)[0])
                try:
                    os.kill(pid, 0)
                    continue
                except ProcessLookupError:
                    pass
            touched = max(path.stat().st_mtime for path in (root, *root.glob("*.log")))
            if time.time() - touched > _STALE_AFTER:
                shutil.rmtree(root, ignore_errors=True)
        except (OSError, ValueError):
            continue


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _unprivileged_account() -> pwd.struct_passwd:
    for name in _UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError(
        "PostgreSQL refuses to run as root and none of the accounts "
        f"{', '.join(_UNPRIVILEGED_USERS)} exists to run it: create one "
        "(useradd --system nobody) or run the tests as an ordinary user"
    )


def _die_with_parent() -> None:
    """In the child: receive SIGQUIT (immediate shutdown) when the test run dies.

    A run killed with SIGKILL runs no teardown; without this its server would linger.
    Runs after the switch to the unprivileged user, which would otherwise clear it.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)


class PostgresServer:
    """One ``postgres`` process over a cluster of its own, startable and stoppable.

    ``start()`` creates the cluster on first use and returns once the server accepts
    connections; ``stop()`` ends the process but keeps the data, and ``start()`` again
    brings the same server back on the same port (for outage tests). ``close()`` stops
    it and deletes the cluster.
    """

    def __init__(self, *, bin_dir: Path | None = None, base_dir: str | None = None) -> None:
        self._bin_dir = bin_dir or postgres_bin_dir()
        self._root = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX, dir=base_dir or _scratch_dir()))
        self._datadir = self._root / "data"
        self._socketdir = self._root / "socket"
        self._logpath = self._root / "postgres.log"
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._initialized = False
        # Once started, the port is the server's identity: a restart keeps it.
        self._restartable = False
        self._port_attempts = 1
        self._log_offset = 0
        # As root, everything runs as an unprivileged account owning the directory.
        # ``subprocess`` switches user itself (no need for ``runuser`` or ``setpriv``),
        # which lets the parent-death signal be set after the switch.
        self._uid: int | None = None
        self._gid: int | None = None
        self._extra_groups: list[int] | None = None
        self._socketdir.mkdir()
        if os.geteuid() == 0:
            account = _unprivileged_account()
            self._uid, self._gid, self._extra_groups = account.pw_uid, account.pw_gid, []
            for path in (self._root, self._socketdir):
                os.chown(path, account.pw_uid, account.pw_gid)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database, as the superuser, through asyncpg."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the running server process."""
        return self._process.pid if self._process is not None and self.running else None

    def start(self) -> None:
        """Start the process (again) and wait until it accepts connections."""
        if self.running:
            return
        if not self._initialized:
            self._initdb()
        command = [
            str(self._bin_dir / "postgres"),
            "-D",
            str(self._datadir),
            "-p",
            str(self.port),
            "-k",
            str(self._socketdir),
            *(arg for key, value in _SERVER_SETTINGS.items() for arg in ("-c", f"{key}={value}")),
        ]
        # The server logs to stderr: a file, never a pipe nobody drains (it would block).
        with open(self._logpath, "ab") as log:
            self._log_offset = log.tell()
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self._root,
                preexec_fn=_die_with_parent,
                user=self._uid,
                group=self._gid,
                extra_groups=self._extra_groups,
            )
        try:
            self._wait_until_ready()
        except _PortTaken:
            self.stop()
            if self._port_attempts >= 3:
                raise RuntimeError(f"postgres found no free port:\n{self._log_tail()}") from None
            # Another process took the free port between the probe and the bind.
            self._port_attempts += 1
            self.port = _free_port()
            self.start()
        except BaseException:
            self.stop()
            raise
        self._restartable = True

    def stop(self) -> None:
        """Stop the process by its PID and wait for it; the data stays.

        SIGINT is PostgreSQL's fast shutdown: it disconnects clients a test left open,
        where SIGTERM would wait for them.
        """
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        """Stop the server and delete its cluster."""
        self.stop()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _initdb(self) -> None:
        command = [
            str(self._bin_dir / "initdb"),
            "-D",
            str(self._datadir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            # The cluster is thrown away after the run: no need to wait for the disk.
            "--no-sync",
        ]
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=self._root,
            check=False,
            user=self._uid,
            group=self._gid,
            extra_groups=self._extra_groups,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace").strip()
            raise RuntimeError(f"initdb failed with code {result.returncode}: {output}")
        # Trust, but only over TCP from 127.0.0.1 and the cluster's own private socket.
        (self._datadir / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        self._initialized = True

    def _wait_until_ready(self) -> None:
        """Poll with ``pg_isready`` over TCP, the way clients will connect."""
        deadline = time.monotonic() + _START_TIMEOUT
        pg_isready = str(self._bin_dir / "pg_isready")
        probe = [pg_isready, "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER]
        probe += ["-d", "postgres", "-t", "1"]
        while time.monotonic() < deadline:
            self._fail_if_exited()
            ready = subprocess.run(
                probe, stdin=subprocess.DEVNULL, capture_output=True, check=False
            )
            if ready.returncode == 0:
                return
            time.sleep(_POLL_INTERVAL)
        raise RuntimeError(
            f"postgres on port {self.port} did not accept connections within "
            f"{_START_TIMEOUT:g} s; log: {self._logpath}\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        if not self._logpath.exists():
            return ""
        with open(self._logpath, "rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")[-2000:]

    def _fail_if_exited(self) -> None:
        process = self._process
        if process is None or process.poll() is None:
            return
        if "could not bind" in self._log_tail() and not self._restartable:
            raise _PortTaken
        raise RuntimeError(
            f"postgres exited with code {process.returncode} (port {self.port}):\n"
            f"{self._log_tail()}"
        )


@contextmanager
def postgres_server_url(environ: Mapping[str, str] | None = None) -> Iterator[str]:
    """The SQLAlchemy URL of the server for the run, started here unless DATABASE_URL is set.

    DATABASE_URL names an existing server (``postgresql://user@host/db``); nothing is
    started then, and its user needs the CREATEDB privilege for the per-test databases.
    Otherwise a cluster of the run's own is started, and deleted when the block ends.
    """
    external = (os.environ if environ is None else environ).get("DATABASE_URL")
    if external:
        yield asyncpg_url(external)
        return
    remove_stale_clusters()
    with PostgresServer() as server:
        yield server.url


class ScratchDatabases:
    """Creates an empty database for each test on one server, and drops it afterwards.

    A database rather than a schema per test: tests then cannot see each other's
    tables in any schema (``public`` included, and the named schemas the SQL presets
    use), and the URL alone says where to connect. In a cluster kept in memory it costs
    about 15 ms per test, created and dropped.
    """

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        # CREATE and DROP DATABASE cannot run inside a transaction.
        self._admin: AsyncEngine = create_async_engine(
            server_url, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0
        )
        self._version: int | None = None

    async def create(self) -> str:
        """A new, empty database: its URL, with the server URL's user."""
        name = f"asgi_session_test_{uuid.uuid4().hex[:12]}"
        async with self._admin.connect() as connection:
            version = await self._server_version(connection)
            # template0 holds nothing a test did not create; FILE_COPY (PostgreSQL 15+)
            # copies its files instead of writing them all to the WAL, which is faster.
            strategy = " STRATEGY FILE_COPY" if version >= 150000 else ""
            await connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0{strategy}'))
        return with_database(self.server_url, name)

    async def drop(self, url: str) -> None:
        """Drop the database ``url`` names, closing connections a test left open."""
        name = make_url(url).database
        async with self._admin.connect() as connection:
            version = await self._server_version(connection)
            force = " WITH (FORCE)" if version >= 130000 else ""
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"{force}'))

    async def aclose(self) -> None:
        """Close the administration connection."""
        await self._admin.dispose()

    async def _server_version(self, connection: AsyncConnection) -> int:
        if self._version is None:
            result = await connection.execute(text("SHOW server_version_num"))
            self._version = int(result.scalar_one())
        return self._version
