"""The SQL adapter on real databases, SQLite and PostgreSQL, in each preset's tables.

The adapter contract itself is tried in tests/test_backends_adapter.py (default preset)
and here in the "better-auth" preset's tables; here besides: what is particular to SQL.
Rows are read back with plain SQL, so what another tool (Prisma, Drizzle, Auth.js's pg
adapter, Better Auth) would see is what is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import re
import socket
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from asgi_session._ratelimit import Window
from asgi_session.backends import Adapter
from asgi_session.backends._sql_schema import PRESETS, Kind, build_metadata
from asgi_session.backends.sql import SQLAdapter
from asgi_session.errors import BackendUnavailableError, ConfigurationError, DuplicateRecordError
from asgi_session.models import User
from tests import test_backends_adapter
from tests.support.node import SUPPORT_DIR
from tests.support.records import MALFORMED_IDS, account_data, later, make_session, make_user

PRESET_NAMES = sorted(PRESETS)
#: The presets whose user ids are text (the others number users in the database).
TEXT_ID_PRESETS = [name for name in PRESET_NAMES if not PRESETS[name].integer_ids]
OUR_TABLES = {"asgi_session_extra", "asgi_session_revocations", "asgi_session_rate_limits"}
PASSKEY = {
    "credential_id": "AAECAwQFBgcICQoLDA0ODw==",
    "provider_account_id": "AAECAwQFBgcICQoLDA0ODw==",
    "credential_public_key": "pQECAyYgASFYIGZha2Uta2V5",
    "counter": 0,
    "credential_device_type": "multiDevice",
    "credential_backed_up": True,
}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """A fresh, empty database: a SQLite file, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=PRESET_NAMES)
def preset(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def sql(database_url: str, preset: str) -> AsyncIterator[SQLAdapter]:
    adapter = SQLAdapter(database_url, schema=preset)
    try:
        yield adapter
    finally:
        await adapter.close()


def tables_of(preset: str) -> dict[str, str]:
    """Kind -> table name in the preset."""
    return {kind: spec.name for kind, spec in PRESETS[preset].tables.items()}


def column_of(preset: str, kind: Kind, field: str) -> str:
    """The column holding a record field (a Python name) in the preset."""
    return PRESETS[preset].tables[kind].fields[field]


def insert_user(preset: str, id: str, email: str) -> str:
    """SQL inserting a user with this id and email, and what the table requires besides."""
    values = {"id": f"'{id}'", "email": f"'{email}'"}
    for column in PRESETS[preset].tables["users"].columns:
        if not column.nullable and column.name not in values:
            values[column.name] = {"time": "CURRENT_TIMESTAMP", "bool": "false"}.get(
                column.type, "''"
            )
    names, listed = ", ".join(f'"{name}"' for name in values), ", ".join(values.values())
    return f'INSERT INTO "{tables_of(preset)["users"]}" ({names}) VALUES ({listed})'


async def table_names(adapter: SQLAdapter) -> set[str]:
    async with adapter.engine.connect() as connection:
        names: list[str] = await connection.run_sync(
            lambda sync: sa.inspect(sync).get_table_names()
        )
    return set(names)


async def rows(adapter: SQLAdapter, table: str) -> list[dict[str, Any]]:
    async with adapter.engine.connect() as connection:
        result = await connection.execute(sa.text(f'SELECT * FROM "{table}"'))
        return [dict(row._mapping) for row in result]


async def execute(adapter: SQLAdapter, statement: str) -> None:
    async with adapter.engine.begin() as connection:
        await connection.execute(sa.text(statement))


# -- tables ------------------------------------------------------------------------------


async def test_tables_may_have_names_of_the_apps_own(database_url: str, preset: str) -> None:
    renamed = {"users": "app_users", "sessions": "app_sessions"}
    adapter = SQLAdapter(database_url, schema=preset, tables=renamed)
    try:
        await adapter.create_tables()
        user = await make_user(adapter)
        await make_session(adapter, user, token="tok")
        found = await adapter.get_session_and_user("tok")
        names = await table_names(adapter)
        [stored] = await rows(adapter, "app_users")
        [session] = await rows(adapter, "app_sessions")
    finally:
        await adapter.close()

    assert found is not None and found[1].id == user.id
    assert {"app_users", "app_sessions"} <= names
    assert not {tables_of(preset)["users"], tables_of(preset)["sessions"]} & names
    assert stored["email"] == "ada@example.com"
    assert session[column_of(preset, "sessions", "session_token")] == "tok"


def test_a_table_name_for_no_table_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="names no table 'user'"):
        SQLAdapter("sqlite+aiosqlite://", tables={"user": "people"})
    with pytest.raises(ConfigurationError, match="needs a table name"):
        SQLAdapter("sqlite+aiosqlite://", tables={"users": " "})


async def test_tables_in_another_postgresql_schema(postgres_url: str) -> None:
    """Drizzle's ``pgSchema("auth")``: an engine whose connections look there first."""
    setup = create_async_engine(postgres_url)
    async with setup.begin() as connection:
        await connection.execute(sa.text("CREATE SCHEMA auth"))
    await setup.dispose()
    engine = create_async_engine(
        postgres_url, connect_args={"server_settings": {"search_path": "auth"}}
    )
    adapter = SQLAdapter(engine)
    try:
        await adapter.create_tables()
        user = await make_user(adapter)
        async with engine.connect() as connection:
            schemas = await connection.run_sync(
                lambda sync: sa.inspect(sync).get_table_names(schema="auth")
            )
            public = await connection.run_sync(
                lambda sync: sa.inspect(sync).get_table_names(schema="public")
            )
        found = await adapter.get_user(user.id)
    finally:
        await engine.dispose()

    assert "user" in schemas and "user" not in public
    assert found == user


async def test_create_tables_creates_only_what_is_missing_and_is_idempotent(
    sql: SQLAdapter, preset: str
) -> None:
    expected = set(tables_of(preset).values()) | OUR_TABLES
    await sql.create_tables()
    assert await table_names(sql) == expected
    user = await make_user(sql)

    await sql.create_tables()
    sessions = tables_of(preset)["sessions"]
    await execute(sql, f'DROP TABLE "{sessions}"')
    await sql.create_tables()

    assert await table_names(sql) == expected
    assert await sql.get_user(user.id) == user, "existing tables are left as they are"
    assert await rows(sql, sessions) == []


async def test_rows_use_exactly_the_preset_tables_and_columns(sql: SQLAdapter, preset: str) -> None:
    names = tables_of(preset)
    user = await make_user(sql)
    await sql.link_account(account_data(user))
    await make_session(sql, user, "tok", user_agent="Firefox")
    await sql.create_verification_token(
        {"identifier": "ada@example.com", "token": "hashed", "expires": later(hours=1)}
    )
    await sql.create_authenticator({**PASSKEY, "user_id": user.id, "name": "Laptop"})

    for kind, spec in PRESETS[preset].tables.items():
        stored = await rows(sql, names[kind])
        assert len(stored) == 1, kind
        assert set(stored[0]) == {column.name for column in spec.columns}, kind
    [stored_user] = await rows(sql, names["users"])
    assert (str(stored_user["id"]), stored_user["email"]) == (user.id, "ada@example.com")
    [account] = await rows(sql, names["accounts"])
    assert str(account[column_of(preset, "accounts", "user_id")]) == user.id
    assert account[column_of(preset, "accounts", "provider_account_id")] == "gh-1"
    [session] = await rows(sql, names["sessions"])
    assert session[column_of(preset, "sessions", "session_token")] == "tok"
    assert str(session[column_of(preset, "sessions", "user_id")]) == user.id
    if "user_agent" in PRESETS[preset].tables["sessions"].fields:
        assert session[column_of(preset, "sessions", "user_agent")] == "Firefox"
    else:
        assert "userAgent" not in session, "no column for it: kept aside"
    assert (await sql.get_session_and_user("tok") or (None,))[0] is not None


@pytest.mark.parametrize("preset", TEXT_ID_PRESETS)
async def test_text_ids_written_by_prisma_and_drizzle_are_found(
    sql: SQLAdapter, preset: str
) -> None:
    await sql.create_tables()
    for id in ("clh3am8hi0000wbq0g9gkdm4a", "3f2c9a0e-8d4b-4c1e-9f5a-2b7d6e8c1a90"):
        await execute(sql, insert_user(preset, id, f"{id}@example.com"))
        found = await sql.get_user(id)
        assert found is not None and found.email == f"{id}@example.com"
        session = await make_session(sql, found)
        assert session.user_id == id


@pytest.mark.parametrize("preset", TEXT_ID_PRESETS)
async def test_text_ids_an_app_made_itself_are_found(sql: SQLAdapter, preset: str) -> None:
    await sql.create_tables()
    id = "usr_V1StGXR8Z5jdHi6B"
    await execute(sql, insert_user(preset, id, "n@example.com"))

    found = await sql.get_user(id)
    assert found is not None and found.id == id
    session = await make_session(sql, found, "tok")
    assert session.user_id == id
    assert await sql.get_session_and_user("tok") == (session, found)
    assert await sql.list_sessions(id) == [session]
    account = await sql.link_account(account_data(found))
    assert account.user_id == id
    assert await sql.delete_sessions(id) == 1
    assert await sql.get_user(id.lower()) is None, "taken as it is"
    assert await sql.get_user("x" * 256) is None
    deleted = await sql.delete_user(id)
    assert deleted is not None and deleted.id == id
    with pytest.raises(ValueError, match=r"^user_id 'usr_V1StGXR8Z5jdHi6B' is not a valid id$"):
        await make_session(sql, found, "again")


@pytest.mark.parametrize("bad_id", ["00001", "01", "+1", " 1", "1 "])
async def test_serial_ids_are_canonical_numbers(database_url: str, bad_id: str) -> None:
    adapter = SQLAdapter(database_url, schema="authjs-pg")
    try:
        user = await make_user(adapter)
        await make_session(adapter, user)
        assert user.id == "1"
        assert await adapter.get_user(bad_id) is None
        assert await adapter.list_sessions(bad_id) == []
        assert await adapter.delete_sessions(bad_id) == 0
        assert await adapter.delete_user(bad_id) is None
        assert await adapter.get_user("1") == user
    finally:
        await adapter.close()


@pytest.mark.parametrize(
    "bad_id",
    [*MALFORMED_IDS, "' OR 1=1 --", "1.5", "-1", "0", "9" * 30, "65a1b2c3d4e5f60718293a4b"],
)
async def test_ids_not_valid_for_the_column_are_none(sql: SQLAdapter, bad_id: str) -> None:
    # On "authjs-pg" ids are integers (a hex id is none); elsewhere text.
    user = await make_user(sql)
    await make_session(sql, user)

    assert await sql.get_user(bad_id) is None
    assert await sql.update_user({"id": bad_id, "name": "x"}) is None
    assert await sql.delete_user(bad_id) is None
    assert await sql.list_sessions(bad_id) == []
    assert await sql.delete_sessions(bad_id) == 0
    assert await sql.list_authenticators_by_user_id(bad_id) == []
    assert await sql.get_user(user.id) == user
    if bad_id in ("", "nope", "../../etc", "' OR 1=1 --"):
        with pytest.raises(ValueError, match="not a valid id"):
            await make_session(sql, User(id=bad_id))


async def test_authjs_pg_ids_are_the_serial_numbers(database_url: str) -> None:
    adapter = SQLAdapter(database_url, schema="authjs-pg")
    try:
        first = await make_user(adapter, "one@example.com")
        second = await make_user(adapter, "two@example.com", id="65a1b2c3d4e5f60718293a4b")
        assert (first.id, second.id) == ("1", "2")
        assert await adapter.get_user("2") == second
    finally:
        await adapter.close()


# -- round trips, transactions, concurrency ------------------------------------------------


async def test_get_session_and_user_is_one_round_trip(sql: SQLAdapter) -> None:
    user = await make_user(sql, plan="pro")
    session = await make_session(sql, user, "tok", device="laptop")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(sql.engine.sync_engine, "before_cursor_execute", count)
    try:
        found = await sql.get_session_and_user("tok")
    finally:
        sa.event.remove(sql.engine.sync_engine, "before_cursor_execute", count)

    assert found == (session, user)
    assert user.extra == {"plan": "pro"} and session.extra == {"device": "laptop"}
    assert len(statements) == 1, statements


async def test_concurrent_uses_of_one_verification_token_succeed_once(sql: SQLAdapter) -> None:
    await sql.create_verification_token(
        {"identifier": "a@example.com", "token": "t", "expires": later(hours=1)}
    )

    results = await asyncio.gather(
        *(sql.use_verification_token(identifier="a@example.com", token="t") for _ in range(20))
    )

    assert sum(result is not None for result in results) == 1


async def test_delete_user_is_one_transaction(sql: SQLAdapter, preset: str) -> None:
    user = await make_user(sql, plan="pro")
    other = await make_user(sql, "other@example.com")
    await sql.link_account(account_data(user, refresh_token_expires_in=3600))
    await make_session(sql, user, "mine")
    await make_session(sql, other, "theirs")
    await sql.create_authenticator({**PASSKEY, "user_id": user.id, "name": "Laptop"})
    transactions: list[object] = []

    def begin(connection: object) -> None:
        transactions.append(connection)

    sa.event.listen(sql.engine.sync_engine, "begin", begin)
    try:
        deleted = await sql.delete_user(user.id)
    finally:
        sa.event.remove(sql.engine.sync_engine, "begin", begin)

    assert deleted is not None and deleted.extra == {"plan": "pro"}
    assert len(transactions) == 1
    names = tables_of(preset)
    assert [str(row["id"]) for row in await rows(sql, names["users"])] == [other.id]
    for kind in ("accounts", "authenticators"):
        assert await rows(sql, names[kind]) == [], kind
    token = column_of(preset, "sessions", "session_token")
    assert [row[token] for row in await rows(sql, names["sessions"])] == ["theirs"]
    assert {row["user_id"] for row in await rows(sql, "asgi_session_extra")} <= {other.id}


async def test_a_failure_inside_delete_user_leaves_everything(sql: SQLAdapter, preset: str) -> None:
    user = await make_user(sql)
    await make_session(sql, user, "mine")
    await sql.create_tables()
    sessions = tables_of(preset)["sessions"]
    # The sessions table is gone: the transaction fails after the user's row was deleted.
    await execute(sql, f'DROP TABLE "{sessions}"')

    with pytest.raises((sa.exc.DBAPIError, BackendUnavailableError)):
        await sql.delete_user(user.id)

    assert await sql.get_user(user.id) == user, "rolled back"


async def test_duplicates_raise_duplicate_record_error(sql: SQLAdapter) -> None:
    user = await make_user(sql)
    await sql.link_account(account_data(user))
    await make_session(sql, user, "tok")
    token = {"identifier": "a@example.com", "token": "t", "expires": later(hours=1)}
    await sql.create_verification_token(token)
    await sql.create_authenticator({**PASSKEY, "user_id": user.id})

    with pytest.raises(DuplicateRecordError, match="email"):
        await make_user(sql)
    with pytest.raises(DuplicateRecordError, match="already linked"):
        await sql.link_account(account_data(user))
    with pytest.raises(DuplicateRecordError, match="session"):
        await make_session(sql, user, "tok")
    with pytest.raises(DuplicateRecordError, match="verification"):
        await sql.create_verification_token(token)
    with pytest.raises(DuplicateRecordError, match="credential"):
        await sql.create_authenticator({**PASSKEY, "user_id": user.id})


# -- outages -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_nothing_listening_is_backend_unavailable() -> None:
    adapter = SQLAdapter(
        f"postgresql+asyncpg://postgres@127.0.0.1:{_free_port()}/app", operation_timeout=2
    )
    try:
        with pytest.raises(BackendUnavailableError, match="unreachable"):
            await adapter.get_user("65a1b2c3d4e5f60718293a4b")
        with pytest.raises(BackendUnavailableError):
            await adapter.rate_limit_store().hit([Window("k", 2e9)], 1e9)
    finally:
        await adapter.close()


async def test_a_sqlite_file_that_cannot_be_opened_is_unavailable_until_it_can(
    tmp_path: pathlib.Path,
) -> None:
    folder = tmp_path / "not-yet"
    adapter = SQLAdapter(f"sqlite+aiosqlite:///{folder / 'auth.db'}")
    try:
        with pytest.raises(BackendUnavailableError):
            await make_user(adapter)
        folder.mkdir()
        user = await make_user(adapter)
        assert await adapter.get_user(user.id) == user
    finally:
        await adapter.close()


async def test_sqlite_waits_for_a_locked_file_as_long_as_operation_timeout(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "auth.db"
    adapter = SQLAdapter(f"sqlite+aiosqlite:///{path}", operation_timeout=8)
    try:
        user = await make_user(adapter)
        async with adapter.engine.connect() as connection:
            busy = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        assert busy == 8000
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process writing, for 5.5 seconds
        loop = asyncio.get_running_loop()
        loop.call_later(5.5, other.execute, "COMMIT")
        renamed = await adapter.update_user({"id": user.id, "name": "Ada L."})
        assert renamed is not None and renamed.name == "Ada L."
        other.close()
    finally:
        await adapter.close()


async def test_a_sqlite_file_broken_or_replaced_after_start_up_is_unavailable(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "auth.db"
    adapter = SQLAdapter(f"sqlite+aiosqlite:///{path}")
    try:
        user = await make_user(adapter)
        await adapter.engine.dispose()
        sqlite3.connect(tmp_path / "empty.db").close()
        (tmp_path / "empty.db").replace(path)  # another (empty) database in its place
        with pytest.raises(BackendUnavailableError):
            await adapter.get_user(user.id)
        await adapter.engine.dispose()
        path.write_bytes(b"not a database, " * 512)
        with pytest.raises(BackendUnavailableError):
            await adapter.get_user(user.id)
        with pytest.raises(BackendUnavailableError):
            await make_user(adapter, "other@example.com")
    finally:
        await adapter.close()


async def test_two_adapters_on_one_sqlite_file_lose_no_update(tmp_path: pathlib.Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    first, second = SQLAdapter(url), SQLAdapter(url)  # as two processes would
    try:
        user = await make_user(first)
        await second.create_tables()

        async def count(adapter: SQLAdapter, field: str) -> None:
            for number in range(1, 26):
                await adapter.update_user({"id": user.id, field: number})

        await asyncio.gather(count(first, "a"), count(second, "b"))

        found = await first.get_user(user.id)
        assert found is not None and found.extra == {"a": 25, "b": 25}
    finally:
        await first.close()
        await second.close()


class _Proxy:
    """A TCP relay to PostgreSQL that can be cut and restored: the database going away
    (every connection broken, nothing listening) and coming back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.port = _free_port()
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def test_postgres_going_away_and_coming_back(postgres_url: str) -> None:
    url = make_url(postgres_url)
    proxy = _Proxy(url.port or 5432)
    await proxy.start()
    adapter = SQLAdapter(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        operation_timeout=3,
    )
    try:
        user = await make_user(adapter)
        await proxy.cut()
        with pytest.raises(BackendUnavailableError):
            await adapter.get_user(user.id)
        with pytest.raises(BackendUnavailableError):
            await adapter.get_user(user.id)
        await proxy.start()
        assert await adapter.get_user(user.id) == user, "recovered without a restart"
    finally:
        await adapter.close()
        await proxy.cut()


# -- existing tables -----------------------------------------------------------------------


async def test_a_column_of_the_wrong_type_is_a_configuration_error(
    sql: SQLAdapter, preset: str
) -> None:
    users = tables_of(preset)["users"]
    id_type = "INTEGER" if PRESETS[preset].integer_ids else "TEXT"
    await execute(
        sql,
        f'CREATE TABLE "{users}" (id {id_type} PRIMARY KEY, name TEXT, email BOOLEAN, image TEXT)',
    )

    with pytest.raises(ConfigurationError) as raised:
        await sql.create_tables()

    message = str(raised.value)
    assert f"{users!r}" in message and "'email'" in message and f"{preset!r}" in message


async def test_a_missing_column_is_a_configuration_error(sql: SQLAdapter, preset: str) -> None:
    sessions = tables_of(preset)["sessions"]
    await execute(sql, f'CREATE TABLE "{sessions}" ("sessionToken" TEXT PRIMARY KEY)')

    with pytest.raises(ConfigurationError, match=f"{sessions!r} has no column '(id|userId)'"):
        await sql.get_session_and_user("t")


async def test_the_apps_own_column_comes_back_in_extra(database_url: str, preset: str) -> None:
    setup = SQLAdapter(database_url, schema=preset)
    users = tables_of(preset)["users"]
    try:
        await setup.create_tables()
        await execute(setup, f'ALTER TABLE "{users}" ADD COLUMN plan TEXT')
    finally:
        await setup.close()
    adapter = SQLAdapter(database_url, schema=preset)
    try:
        user = await make_user(adapter, plan="pro", locale="fr")
        assert user.extra == {"plan": "pro", "locale": "fr"}
        [stored] = await rows(adapter, users)
        assert stored["plan"] == "pro", "in the app's column, not aside"

        renamed = await adapter.update_user({"id": user.id, "name": "Ada L."})
        assert renamed is not None and renamed.extra == {"plan": "pro", "locale": "fr"}
        [stored] = await rows(adapter, users)
        assert (stored["plan"], stored["name"]) == ("pro", "Ada L.")
        moved = await adapter.update_user({"id": user.id, "plan": "free"})
        assert moved is not None and moved.extra["plan"] == "free"
        assert await adapter.get_user(user.id) == moved
    finally:
        await adapter.close()


@pytest.mark.parametrize(
    ("database_url", "declared"),
    # SQLite has one kind of time column.
    [("sqlite", "TIMESTAMP"), ("postgres", "TIMESTAMP"), ("postgres", "TIMESTAMP WITH TIME ZONE")],
    indirect=["database_url"],
)
async def test_the_apps_own_time_columns_are_aware_utc_to_the_millisecond(
    database_url: str, preset: str, declared: str
) -> None:
    setup = SQLAdapter(database_url, schema=preset)
    users = tables_of(preset)["users"]
    try:
        await setup.create_tables()
        await execute(setup, f'ALTER TABLE "{users}" ADD COLUMN "lastLogin" {declared}')
    finally:
        await setup.close()
    adapter = SQLAdapter(database_url, schema=preset)
    try:
        user = await make_user(adapter)
        when = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
        updated = await adapter.update_user({"id": user.id, "lastLogin": when})
        expected = datetime(2030, 5, 6, 5, 8, 9, 123000, tzinfo=UTC)
        assert updated is not None and updated.extra["lastLogin"] == expected
        found = await adapter.get_user(user.id)
        assert found is not None and found.extra["lastLogin"] == expected
        assert found.extra["lastLogin"].tzinfo is UTC
    finally:
        await adapter.close()


def test_metadata_holds_every_table(preset: str) -> None:
    metadata, _ = build_metadata(PRESETS[preset])
    adapter = SQLAdapter("sqlite+aiosqlite:///:memory:", schema=preset)
    assert set(adapter.metadata.tables) == set(metadata.tables)
    assert set(metadata.tables) == set(tables_of(preset).values()) | OUR_TABLES


def test_unknown_presets_and_databases_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="'drizzle'"):
        SQLAdapter("sqlite+aiosqlite:///:memory:", schema="sequelize")
    with pytest.raises(ConfigurationError, match="PostgreSQL and SQLite"):
        SQLAdapter("mysql://app@db/app")


# -- rate limits ---------------------------------------------------------------------------


async def test_rate_limit_counts_are_atomic_under_concurrency(sql: SQLAdapter) -> None:
    store = sql.rate_limit_store()
    windows = [Window("a/60:0:x", 2e9), Window("b/60:0:x", 2e9)]

    counts = await asyncio.gather(*(store.hit(windows, 1e9) for _ in range(30)))

    assert sorted(count[0] for count in counts) == list(range(1, 31))
    assert sorted(count[1] for count in counts) == list(range(1, 31))
    await store.release(windows[:1], 1e9)
    assert await store.peek([*windows, Window("c", 2e9)], 1e9) == [29, 30, 0]
    assert sql.rate_limit_store() is store


async def test_ended_rate_limit_windows_are_deleted(sql: SQLAdapter) -> None:
    store = sql.rate_limit_store()
    await store.hit([Window("old", 100.0)], 50.0)

    assert await store.hit([Window("new", 1e9 + 60)], 1e9) == [1]

    assert [row["key"] for row in await rows(sql, "asgi_session_rate_limits")] == ["new"]


# -- values no column can hold -------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
async def test_lookups_with_strings_no_column_holds_find_nothing(sql: SQLAdapter, bad: str) -> None:
    user = await make_user(sql)
    await make_session(sql, user, "tok")

    assert await sql.get_session_and_user(bad) is None
    assert await sql.get_session(bad) is None
    assert await sql.get_user(bad) is None
    assert await sql.get_user_by_email(bad) is None
    assert await sql.get_user_by_account(provider=bad, provider_account_id=bad) is None
    assert await sql.get_account(provider="github", provider_account_id=bad) is None
    assert await sql.use_verification_token(identifier=bad, token=bad) is None
    assert await sql.delete_verification_tokens(bad) == 0
    assert await sql.tokens_revoked_before(bad) is None
    assert await sql.get_authenticator(bad) is None
    assert await sql.delete_authenticator(bad) is None
    assert await sql.delete_session(bad) is None
    assert await sql.list_sessions(bad) == []
    assert await sql.delete_sessions(bad) == 0
    assert await sql.update_user({"id": bad, "name": "x"}) is None
    assert await sql.get_session_and_user("tok") is not None


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
async def test_writes_of_strings_no_column_holds_are_value_errors(
    sql: SQLAdapter, bad: str
) -> None:
    user = await make_user(sql)

    with pytest.raises(ValueError):
        await sql.update_user({"id": user.id, "name": bad})
    with pytest.raises(ValueError):
        await sql.create_verification_token(
            {"identifier": bad, "token": "t", "expires": later(hours=1)}
        )
    with pytest.raises(ValueError):
        await sql.revoke_tokens_issued_before(bad, later())
    with pytest.raises(ValueError):
        await make_session(sql, user, bad)
    with pytest.raises(ValueError):
        await sql.link_account(account_data(user, provider_account_id=bad))
    assert await sql.get_user(user.id) == user


async def test_integers_out_of_range_are_value_errors(database_url: str, preset: str) -> None:
    setup = SQLAdapter(database_url, schema=preset)
    users = tables_of(preset)["users"]
    try:
        await setup.create_tables()
        await execute(setup, f'ALTER TABLE "{users}" ADD COLUMN logins INTEGER')
    finally:
        await setup.close()
    adapter = SQLAdapter(database_url, schema=preset)
    try:
        user = await make_user(adapter)
        with pytest.raises(ValueError):
            await adapter.link_account(account_data(user, expires_at=2**64))
        if "postgresql" in database_url:
            with pytest.raises(ValueError):
                await adapter.update_user({"id": user.id, "logins": 2**40})
            with pytest.raises(ValueError):
                await adapter.update_user({"id": user.id, "logins": "abc"})
        assert await adapter.get_user(user.id) == user
    finally:
        await adapter.close()


# -- extra fields as JSON --------------------------------------------------------------------


async def test_extra_values_shaped_like_tags_come_back_as_stored(sql: SQLAdapter) -> None:
    stored: dict[str, Any] = {
        "a": {"$date": "x"},
        "b": {"$bytes": "!!"},
        "c": {"$date": "2020-01-01T00:00:00.000+00:00"},
        "d": {"$$date": 1},
        "e": [{"$other": True}],
    }
    user = await make_user(sql, "ada@example.com", **stored)
    assert user.extra == stored
    found = await sql.get_user(user.id)
    assert found is not None and found.extra == stored
    when = datetime(2020, 1, 1, tzinfo=UTC)
    updated = await sql.update_user({"id": user.id, "when": when, "raw": b"\x00\xff"})
    assert updated is not None
    found = await sql.get_user(user.id)
    assert found is not None and found.extra == {**stored, "when": when, "raw": b"\x00\xff"}


async def test_tags_other_tools_wrote_are_read_leniently(sql: SQLAdapter, preset: str) -> None:
    user = await make_user(sql, plan="pro")
    data = (
        '{"plan":"pro","n":{"$date":"2020-01-01T00:00:00"},"x":{"$date":"x"},"b":{"$bytes":"!!"}}'
    )
    await execute(sql, f"UPDATE asgi_session_extra SET data = '{data}' WHERE kind = 'user'")

    found = await sql.get_user(user.id)

    assert found is not None
    assert found.extra["n"] == datetime(2020, 1, 1, tzinfo=UTC), "naive is UTC"
    assert found.extra["x"] == {"$date": "x"} and found.extra["b"] == {"$bytes": "!!"}


# -- Better Auth's tables ------------------------------------------------------------------
# The "better-auth" preset against the SQL better-auth 1.7.25's own migration creates
# (tests/support/better_auth_*_schema.sql, generated by the package), on both databases.

BETTER_AUTH_SQL = {
    "sqlite": "better_auth_sqlite_schema.sql",
    "postgresql": "better_auth_pg_schema.sql",
}
BETTER_AUTH_TABLES = ("session", "account", "verification", "user")  # the referencing first
#: A time as Better Auth's Kysely adapter writes it on SQLite: Date.toISOString().
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
VERIFIED = datetime(2031, 5, 6, 7, 8, 9, 123_000, tzinfo=UTC)
EXPIRES = datetime(2032, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


class TestBetterAuthContract(test_backends_adapter.TestAdapterContract):
    """The adapter contract, and what the package's adapters keep besides, in the
    tables of the "better-auth" preset, on SQLite and PostgreSQL. Better Auth's
    ``user.email`` is ``NOT NULL``: no user goes without one."""

    users_need_an_email = True

    @pytest.fixture
    async def adapter(self, database_url: str) -> AsyncIterator[Adapter]:
        adapter = SQLAdapter(database_url, schema="better-auth")
        try:
            yield adapter
        finally:
            await adapter.close()


@pytest.fixture
async def better_auth(database_url: str) -> AsyncIterator[SQLAdapter]:
    """The "better-auth" preset over the tables Better Auth's migration made."""
    adapter = SQLAdapter(database_url, schema="better-auth")
    try:
        await better_auth_tables(adapter)
        yield adapter
    finally:
        await adapter.close()


async def better_auth_tables(adapter: SQLAdapter) -> None:
    """Run the SQL of Better Auth's migration (several statements in one)."""
    ddl = (SUPPORT_DIR / BETTER_AUTH_SQL[adapter.engine.dialect.name]).read_text()
    async with adapter.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        if adapter.engine.dialect.name == "sqlite":
            await driver.executescript(ddl)
        else:
            await driver.execute(ddl)


async def shape(adapter: SQLAdapter) -> dict[str, dict[str, Any]]:
    """Columns (type, nullable), primary key, indexes and unique keys of Better Auth's
    tables, as the database has them."""

    def inspect(sync: sa.Connection) -> dict[str, dict[str, Any]]:
        inspector = sa.inspect(sync)
        found: dict[str, dict[str, Any]] = {}
        for table in BETTER_AUTH_TABLES:
            # SQLite's indexes for UNIQUE columns too (those it makes itself).
            indexes = inspector.get_indexes(table, include_auto_indexes=True)
            keys = {tuple(index["column_names"]) for index in indexes if index["unique"]}
            keys |= {tuple(key["column_names"]) for key in inspector.get_unique_constraints(table)}
            found[table] = {
                "columns": {
                    column["name"]: (str(column["type"]).lower(), column["nullable"])
                    for column in inspector.get_columns(table)
                },
                "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
                "indexes": {
                    str(index["name"]): index["column_names"]
                    for index in indexes
                    if not index["unique"]
                },
                "unique": keys,
            }
        return found

    async with adapter.engine.connect() as connection:
        return await connection.run_sync(inspect)


async def test_the_better_auth_preset_is_the_tables_better_auth_makes(database_url: str) -> None:
    adapter = SQLAdapter(database_url, schema="better-auth")
    try:
        await better_auth_tables(adapter)
        by_better_auth = await shape(adapter)
        for table in BETTER_AUTH_TABLES:
            await execute(adapter, f'DROP TABLE "{table}"')
        await adapter.create_tables()
        by_python = await shape(adapter)
    finally:
        await adapter.close()

    # The departure (see _sql_schema): account ids are unique per provider.
    by_python["account"]["unique"].remove(("providerId", "accountId"))
    assert by_python == by_better_auth
    assert by_better_auth["session"]["indexes"] == {"session_userId_idx": ["userId"]}
    assert ("email",) in by_better_auth["user"]["unique"]


async def test_better_auths_tables_are_taken_as_they_are(better_auth: SQLAdapter) -> None:
    with pytest.raises(ConfigurationError, match="asgi_session_"):
        await better_auth.check_tables()
    await better_auth.create_tables()
    await better_auth.check_tables()

    assert await table_names(better_auth) == set(better_auth.metadata.tables)
    assert {("providerId", "accountId")} <= (await shape(better_auth))["account"]["unique"]


async def test_rows_are_written_as_better_auth_writes_them(
    better_auth: SQLAdapter, database_url: str
) -> None:
    sqlite = database_url.startswith("sqlite")
    user = await better_auth.create_user({"email": "ada@example.com", "email_verified": VERIFIED})
    bob = await better_auth.create_user({"name": "Bob", "email": "bob@example.com"})
    password = await better_auth.link_account(
        {
            "user_id": user.id,
            "type": "credentials",
            "provider": "password",
            "provider_account_id": user.id,
            "password": "scrypt-hash",
        }
    )
    github = await better_auth.link_account(
        account_data(user, expires_at=1_900_000_000, refresh_token_expires_at=1_900_086_400)
    )
    session = await better_auth.create_session(
        {
            "session_token": "tok",
            "user_id": user.id,
            "expires": EXPIRES,
            "created_at": VERIFIED,
            "user_agent": "Firefox",
            "ip_address": "203.0.113.7",
        }
    )
    await better_auth.create_verification_token(
        {"identifier": "ada@example.com", "token": "hashed", "expires": EXPIRES}
    )

    def time(value: datetime) -> object:
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if sqlite else value

    users = {row["email"]: row for row in await rows(better_auth, "user")}
    assert (users["ada@example.com"]["name"], users["bob@example.com"]["name"]) == ("", "Bob")
    assert users["ada@example.com"]["emailVerified"] == (1 if sqlite else True)
    assert users["bob@example.com"]["emailVerified"] == (0 if sqlite else False)
    accounts = {row["providerId"]: row for row in await rows(better_auth, "account")}
    assert set(accounts) == {"credential", "github"}
    credential = accounts["credential"]
    assert (credential["accountId"], credential["password"]) == (user.id, "scrypt-hash")
    assert accounts["github"]["accessTokenExpiresAt"] == time(
        datetime(2030, 3, 17, 17, 46, 40, tzinfo=UTC)
    )
    assert accounts["github"]["refreshTokenExpiresAt"] == time(
        datetime(2030, 3, 18, 17, 46, 40, tzinfo=UTC)
    )
    [stored] = await rows(better_auth, "session")
    assert (stored["token"], stored["userAgent"], stored["ipAddress"]) == (
        "tok",
        "Firefox",
        "203.0.113.7",
    )
    assert (stored["expiresAt"], stored["createdAt"], stored["updatedAt"]) == (
        time(EXPIRES),
        time(VERIFIED),
        time(VERIFIED),
    )
    [verification] = await rows(better_auth, "verification")
    assert (verification["identifier"], verification["value"]) == ("ada@example.com", "hashed")
    assert verification["expiresAt"] == time(EXPIRES)
    every = [*users.values(), *accounts.values(), stored, verification]
    assert all(row["id"] and row["createdAt"] and row["updatedAt"] for row in every)
    if sqlite:
        assert all(ISO_TIME.fullmatch(row["createdAt"]) for row in every)

    # Read back as written; what Better Auth has no column for, kept aside.
    assert await better_auth.get_user(user.id) == user
    assert user.name is None and user.email_verified == VERIFIED
    assert bob.email_verified is None
    assert (
        await better_auth.get_account(provider="password", provider_account_id=user.id) == password
    )
    assert password.extra == {"password": "scrypt-hash"}
    found = await better_auth.get_account(provider="github", provider_account_id="gh-1")
    assert found == github and found.expires_at == 1_900_000_000
    assert found.token_type == "bearer"
    assert found.extra == {"refresh_token_expires_at": 1_900_086_400}
    assert await better_auth.get_session_and_user("tok") == (session, user)
    assert session.extra == {"ip_address": "203.0.113.7"} and session.last_seen_at == VERIFIED


async def test_what_better_auth_writes_is_read(better_auth: SQLAdapter, database_url: str) -> None:
    sqlite = database_url.startswith("sqlite")
    true, false = ("1", "0") if sqlite else ("true", "false")
    made, updated = "'2031-05-06T07:08:09.123Z'", "'2031-05-07T08:09:10.456Z'"
    uid = "K3pXq9ZrT2mWv8LbN4cYd7HsF1gJe6Aa"  # Better Auth's ids: 32 letters and digits
    statements = [
        'INSERT INTO "user" (id, name, email, "emailVerified", image, "createdAt", "updatedAt") '
        f"VALUES ('{uid}', '', 'ada@example.com', {true}, NULL, {made}, {updated}), "
        f"('other', 'Cy', 'cy@example.com', {false}, 'https://example.com/cy.png', {made}, {made})",
        'INSERT INTO account (id, "accountId", "providerId", "userId", password, "createdAt", '
        f"\"updatedAt\") VALUES ('a1', '{uid}', 'credential', '{uid}', 'salt:key', {made}, {made})",
        'INSERT INTO account (id, "accountId", "providerId", "userId", "accessToken", '
        '"accessTokenExpiresAt", scope, "createdAt", "updatedAt") VALUES '
        f"('a2', '583231', 'github', '{uid}', 'gho_x', '2030-03-17T17:46:40.999Z', 'read:user', "
        f"{made}, {made})",
        'INSERT INTO session (id, "expiresAt", token, "createdAt", "updatedAt", "ipAddress", '
        f"\"userAgent\", \"userId\") VALUES ('s1', '2032-01-02T03:04:05.678Z', 'ba-token', {made}, "
        f"{updated}, '198.51.100.4', 'Safari', '{uid}')",
        'INSERT INTO verification (id, identifier, value, "expiresAt", "createdAt", "updatedAt") '
        f"VALUES ('v1', 'reset-password:abc', '{uid}', '2032-01-02T03:04:05.678Z', {made}, {made})",
    ]
    for statement in statements:
        await execute(better_auth, statement)
    at = datetime(2031, 5, 7, 8, 9, 10, 456_000, tzinfo=UTC)

    user = await better_auth.get_user(uid)
    assert user == User(id=uid, email="ada@example.com", email_verified=at), (
        "verified: when last written"
    )
    other = await better_auth.get_user_by_email("cy@example.com")
    assert other == User(
        id="other", name="Cy", email="cy@example.com", image="https://example.com/cy.png"
    )
    assert (
        await better_auth.get_user_by_account(provider="password", provider_account_id=uid) == user
    )
    password = await better_auth.get_account(provider="password", provider_account_id=uid)
    assert password is not None and password.id == "a1"
    assert (password.type, password.user_id, password.extra) == (
        "credentials",
        uid,
        {"password": "salt:key"},
    )
    github = await better_auth.get_account(provider="github", provider_account_id="583231")
    assert github is not None
    assert (github.type, github.access_token, github.scope) == ("oauth", "gho_x", "read:user")
    assert github.expires_at == 1_900_000_000, "whole seconds"
    found = await better_auth.get_session_and_user("ba-token")
    assert found is not None and found[1] == user
    assert found[0].id == "s1" and found[0].expires == EXPIRES
    assert (found[0].created_at, found[0].last_seen_at) == (VERIFIED, at)
    assert (found[0].user_agent, found[0].extra) == ("Safari", {"ip_address": "198.51.100.4"})
    assert [session.session_token for session in await better_auth.list_sessions(uid)] == [
        "ba-token"
    ]
    used = await better_auth.use_verification_token(identifier="reset-password:abc", token=uid)
    assert used is not None and used.expires == EXPIRES
    renamed = await better_auth.update_user({"id": uid, "name": "Ada"})
    assert renamed is not None and renamed.name == "Ada" and renamed.email_verified is not None
    assert await better_auth.delete_user(uid) == renamed
    assert await better_auth.get_session_and_user("ba-token") is None
    assert await rows(better_auth, "account") == []


async def test_twins_are_refused_in_better_auths_tables(better_auth: SQLAdapter) -> None:
    user = await make_user(better_auth)
    await better_auth.link_account(account_data(user))
    token = {"identifier": "a@example.com", "token": "t", "expires": later(hours=1)}
    await better_auth.create_verification_token(token)

    with pytest.raises(DuplicateRecordError, match="already linked"):
        await better_auth.link_account(account_data(user))
    with pytest.raises(DuplicateRecordError, match="verification token"):
        await better_auth.create_verification_token(token)
    assert len(await rows(better_auth, "account")) == 1
    assert len(await rows(better_auth, "verification")) == 1


async def test_twin_accounts_in_better_auths_tables_are_a_configuration_error(
    better_auth: SQLAdapter,
) -> None:
    await execute(
        better_auth,
        'INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt") '
        "VALUES ('u', '', 'u@example.com', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    )
    for id in ("a1", "a2"):
        await execute(
            better_auth,
            'INSERT INTO account (id, "accountId", "providerId", "userId", "createdAt", '
            f"\"updatedAt\") VALUES ('{id}', 'gh-1', 'github', 'u', CURRENT_TIMESTAMP, "
            "CURRENT_TIMESTAMP)",
        )

    with pytest.raises(ConfigurationError, match="'account' has rows with the same 'providerId'"):
        await better_auth.create_tables()
