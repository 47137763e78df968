"""The PostgreSQL the SQL tests run against: reachable, one database per test, DATABASE_URL."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import postgres
from tests.support.postgres import ScratchDatabases, asyncpg_url, postgres_server_url

# Databases the isolation tests were given, to check that each is gone after its test.
_seen_databases: list[str] = []


async def test_connects_through_sqlalchemy_and_asyncpg(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://")
    engine = create_async_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            database = (await connection.execute(text("SELECT current_database()"))).scalar_one()
            await connection.execute(text("CREATE TABLE probe (id integer PRIMARY KEY)"))
            await connection.execute(text("INSERT INTO probe VALUES (1)"))
            count = (await connection.execute(text("SELECT count(*) FROM probe"))).scalar_one()
    finally:
        await engine.dispose()
    assert database == make_url(postgres_url).database
    assert count == 1


@pytest.mark.parametrize("run", [1, 2])
async def test_each_test_gets_its_own_empty_database(
    run: int, postgres_url: str, postgres_server: str
) -> None:
    """Both runs create the same table: in a shared database the second would fail."""
    name = make_url(postgres_url).database
    assert name is not None
    engine = create_async_engine(postgres_server)
    try:
        async with engine.connect() as connection:
            existing = await connection.execute(
                text("SELECT datname FROM pg_database WHERE datname = ANY(:names)"),
                {"names": _seen_databases},
            )
            assert existing.scalars().all() == [], "an earlier test's database was not dropped"
    finally:
        await engine.dispose()
    _seen_databases.append(name)

    engine = create_async_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            tables = await connection.execute(
                text(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                )
            )
            assert tables.all() == []
            await connection.execute(text("CREATE TABLE shared_name (run integer)"))
            await connection.execute(text("INSERT INTO shared_name VALUES (:run)"), {"run": run})
    finally:
        await engine.dispose()


async def test_database_url_names_the_server_to_use(
    postgres_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With DATABASE_URL set nothing is started, and the per-test databases go there."""

    def no_server(*args: object, **kwargs: object) -> None:
        raise AssertionError("a server was started although DATABASE_URL is set")

    monkeypatch.setattr(postgres, "PostgresServer", no_server)
    # As DATABASE_URL is usually written: no driver, the short scheme.
    external = make_url(postgres_server).set(drivername="postgres").render_as_string(False)
    assert external.startswith("postgres://")

    with postgres_server_url({"DATABASE_URL": external}) as url:
        assert url == postgres_server
        databases = ScratchDatabases(url)
        try:
            database_url = await databases.create()
            engine = create_async_engine(database_url)
            try:
                async with engine.connect() as connection:
                    port = (await connection.execute(text("SHOW port"))).scalar_one()
            finally:
                await engine.dispose()
            await databases.drop(database_url)
        finally:
            await databases.aclose()
    assert int(port) == make_url(postgres_server).port


def test_database_url_spellings() -> None:
    expected = "postgresql+asyncpg://app:secret@db:5433/app"
    for url in (
        "postgres://app:secret@db:5433/app",
        "postgresql://app:secret@db:5433/app",
        "postgresql+psycopg://app:secret@db:5433/app",
        expected,
    ):
        assert asyncpg_url(url) == expected
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        asyncpg_url("mysql://app@db/app")


def test_missing_postgresql_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "_PG_ROOT", tmp_path)
    (tmp_path / "15" / "bin").mkdir(parents=True)  # a version without binaries
    with pytest.raises(postgres.PostgresNotInstalledError, match=r"apt-get install -y postgresql"):
        postgres.postgres_bin_dir()


def test_clusters_of_killed_runs_are_removed(tmp_path: Path) -> None:
    """A cluster is removed once its server is gone and it is an hour old, never before."""
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    for name, pid, age in [
        ("stale", dead_pid.pid, 7200),
        ("stopped-recently", dead_pid.pid, 60),
        ("running", os.getpid(), 7200),
        ("initdb-never-finished", None, 7200),
    ]:
        root = tmp_path / f"asgi-session-postgres-{name}"
        (root / "data").mkdir(parents=True)
        if pid is not None:
            (root / "data" / "postmaster.pid").write_text(f"{pid}\n/data\n")
        (root / "postgres.log").write_text("")
        for path in (root, root / "postgres.log"):
            os.utime(path, (time.time() - age, time.time() - age))

    postgres.remove_stale_clusters(str(tmp_path))

    left = sorted(path.name.removeprefix("asgi-session-postgres-") for path in tmp_path.iterdir())
    assert left == ["running", "stopped-recently"]
