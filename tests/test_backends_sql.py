"""The SQL adapter on real databases, SQLite and PostgreSQL, in each preset's tables.

The adapter contract itself is tried in tests/test_backends_adapter.py (default preset);
here: what is particular to SQL. Rows are read back with plain SQL, so what another
tool (Prisma, Drizzle, Auth.js's pg adapter) would see is what is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from asgi_session._ratelimit import Window
from asgi_session.backends._sql_schema import PRESETS, build_metadata
from asgi_session.backends.sql import SQLAdapter
from asgi_session.errors import BackendUnavailableError, ConfigurationError, DuplicateRecordError
from asgi_session.models import User
from tests.support.records import MALFORMED_IDS, account_data, later, make_session, make_user

PRESET_NAMES = sorted(PRESETS)
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
    assert (str(account["userId"]), account["providerAccountId"]) == (user.id, "gh-1")
    [session] = await rows(sql, names["sessions"])
    assert session["sessionToken"] == "tok" and str(session["userId"]) == user.id
    assert "userAgent" not in session, "no column for it: kept aside"
    assert (await sql.get_session_and_user("tok") or (None,))[0] is not None


async def test_text_ids_written_by_prisma_and_drizzle_are_found(
    sql: SQLAdapter, preset: str
) -> None:
    if PRESETS[preset].integer_ids:
        pytest.skip("the database numbers users in this preset")
    await sql.create_tables()
    users = tables_of(preset)["users"]
    columns = '"id", "email"' + (', "createdAt", "updatedAt"' if preset == "prisma" else "")
    stamp = ", CURRENT_TIMESTAMP, CURRENT_TIMESTAMP" if preset == "prisma" else ""
    for id in ("clh3am8hi0000wbq0g9gkdm4a", "3f2c9a0e-8d4b-4c1e-9f5a-2b7d6e8c1a90"):
        await execute(
            sql, f"INSERT INTO \"{users}\" ({columns}) VALUES ('{id}', '{id}@example.com'{stamp})"
        )
        found = await sql.get_user(id)
        assert found is not None and found.email == f"{id}@example.com"
        session = await make_session(sql, found)
        assert session.user_id == id


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
    assert [row["sessionToken"] for row in await rows(sql, names["sessions"])] == ["theirs"]
    assert {row["user_id"] for row in await rows(sql, "asgi_session_extra")} <= {other.id}


async def test_a_failure_inside_delete_user_leaves_everything(sql: SQLAdapter, preset: str) -> None:
    user = await make_user(sql)
    await make_session(sql, user, "mine")
    await sql.create_tables()
    sessions = tables_of(preset)["sessions"]
    # The sessions table is gone: the transaction fails after the user's row was deleted.
    await execute(sql, f'DROP TABLE "{sessions}"')

    with pytest.raises(sa.exc.DBAPIError):
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
