"""The database guides' samples (docs/samples/mongodb_*, sql_*), run as a reader runs them.

Each sample is loaded with its environment set (``MONGODB_URL`` naming the test's own
database, ``DATABASE_URL`` a fresh PostgreSQL database or SQLite file), started through
its ASGI lifespan, and signed into through the real routes; then the records are looked
for where the pages say they land. The schema files the SQL guide shows are executed
for real and used by the preset the page pairs them with; the Drizzle schema runs in
Node with the real drizzle-orm and @auth/drizzle-adapter; the Prisma schema, which
cannot run here, is compared model by model and column by column with the SQL
``prisma migrate`` makes of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import pytest
from bson import ObjectId
from starlette.types import Message

from tests.support.docs import SAMPLES, load_sample
from tests.support.passwords import GOOD_PASSWORD, sign_in, sign_up, signed_in

APP_URL = "http://testserver"
SECRET = "docs-secret-that-is-long-enough-0123456789"
SESSION_COOKIE = "authjs.session-token"


# -- running a sample ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run ``app``'s ASGI lifespan: start-up before the block, shut-down after it."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()

    async def receive() -> Message:
        return await inbox.get()

    async def send(message: Message) -> None:
        await outbox.put(message)

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    started = await asyncio.wait_for(outbox.get(), 30)
    if started["type"] != "lifespan.startup.complete":
        await task
        raise AssertionError(f"start-up failed: {started}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await asyncio.wait_for(outbox.get(), 30)
        await asyncio.wait_for(task, 30)
        assert stopped["type"] == "lifespan.shutdown.complete", stopped


@contextlib.asynccontextmanager
async def running(module: ModuleType) -> AsyncIterator[httpx2.AsyncClient]:
    """A browser on a started sample app (its lifespan run around the block)."""
    async with lifespan(module.app):
        transport = httpx2.ASGITransport(app=module.app, client=("203.0.113.7", 50_000))
        async with httpx2.AsyncClient(transport=transport, base_url=APP_URL) as browser:
            yield browser


async def sign_up_and_in(browser: httpx2.AsyncClient, email: str = "ada@example.com") -> str:
    """Create a password account (which signs this browser in); its session's user id."""
    response = await sign_up(browser, email=email)
    assert response.status_code == 302, response.text
    assert signed_in(response), response.headers
    home = (await browser.get("/")).json()
    assert home["signedIn"] is True and home["user"]["email"] == email, home
    return str(home["id"])


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    monkeypatch.setenv("AUTH_URL", APP_URL)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def with_database(url: str, name: str) -> str:
    """A MongoDB connection string naming ``name`` as its default database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


# -- MongoDB -----------------------------------------------------------------------------


@pytest.fixture
def mongo_env(monkeypatch: pytest.MonkeyPatch, mongodb_url: str, mongo_db_name: str) -> None:
    set_env(monkeypatch, MONGODB_URL=with_database(mongodb_url, mongo_db_name))


async def test_mongodb_app_stores_users_accounts_and_sessions_as_authjs_does(
    mongo_env: None, mongo_db: Any
) -> None:
    module = load_sample("mongodb_app.py")
    async with running(module) as browser:
        # Start-up made the indexes the page lists.
        indexes = {
            name: await mongo_db[name].index_information()
            for name in ("users", "accounts", "sessions", "verification_tokens")
        }
        assert indexes["users"]["email_1"]["unique"] is True
        assert indexes["accounts"]["provider_1_providerAccountId_1"]["unique"] is True
        assert indexes["sessions"]["sessionToken_1"]["unique"] is True
        assert indexes["sessions"]["expires_1"]["expireAfterSeconds"] == 0
        assert indexes["verification_tokens"]["expires_1"]["expireAfterSeconds"] == 0
        assert "userId_1" in indexes["sessions"] and "userId_1" in indexes["accounts"]

        user_id = await sign_up_and_in(browser)
        user = await mongo_db.users.find_one({"_id": ObjectId(user_id)})
        assert user is not None and user["email"] == "ada@example.com"
        account = await mongo_db.accounts.find_one({"userId": ObjectId(user_id)})
        assert account is not None
        assert (account["type"], account["provider"], account["providerAccountId"]) == (
            "credentials",
            "password",
            user_id,
        )
        assert account["password"].startswith("$argon2id$")
        token = browser.cookies[SESSION_COOKIE]
        session = await mongo_db.sessions.find_one({"sessionToken": token})
        assert session is not None and session["userId"] == ObjectId(user_id)
        assert {"expires", "createdAt", "lastSeenAt", "userAgent"} <= set(session)

        # Sign-out deletes the row; the cookie then names nothing.
        csrf = (await browser.get("/auth/csrf")).json()["csrfToken"]
        await browser.post("/auth/signout", data={"csrfToken": csrf})
        assert await mongo_db.sessions.count_documents({}) == 0
        assert (await browser.get("/")).json()["signedIn"] is False
        # Signing in again makes a new row with a new token.
        assert signed_in(await sign_in(browser, password=GOOD_PASSWORD))
        assert browser.cookies[SESSION_COOKIE] != token
        assert await mongo_db.sessions.count_documents({}) == 1


async def test_mongodb_motor_stores_the_same_documents(mongo_env: None, mongo_db: Any) -> None:
    module = load_sample("mongodb_motor.py")
    async with running(module) as browser:
        user_id = await sign_up_and_in(browser)
        session = await mongo_db.sessions.find_one(
            {"sessionToken": browser.cookies[SESSION_COOKIE]}
        )
        assert session is not None and session["userId"] == ObjectId(user_id)
        assert await mongo_db.users.count_documents({"email": "ada@example.com"}) == 1
    module.client.close()


async def until(check: Any, within: float, what: str) -> None:
    """Poll ``check()`` (a coroutine function) until it is true, failing after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"{what} within {within:g} s")
        await asyncio.sleep(0.005)


async def test_mongodb_options_rename_a_collection_and_cache_sessions(
    mongo_env: None, mongo_db: Any
) -> None:
    module = load_sample("mongodb_options.py")
    async with running(module) as browser:
        user_id = await sign_up_and_in(browser)
        assert await mongo_db.people.count_documents({"_id": ObjectId(user_id)}) == 1
        assert await mongo_db.users.count_documents({}) == 0

        strategy = module.strategy

        async def cached() -> bool:
            await browser.get("/")
            return bool(strategy.cache_active)

        # The test's mongod is a one-node replica set: the change stream opens.
        await until(cached, 10, "the session cache became active")
        # Another client (an admin script, another instance) deletes the session row:
        # this instance stops resolving it as soon as the change arrives.
        await mongo_db.sessions.delete_one({"sessionToken": browser.cookies[SESSION_COOKIE]})

        async def ended() -> bool:
            return (await browser.get("/")).json()["signedIn"] is False

        await until(ended, 2, "the deleted session stopped resolving")
    await module.client.close()


async def test_mongodb_jwt_keeps_users_in_the_database_and_sessions_in_the_cookie(
    mongo_env: None, mongo_db: Any
) -> None:
    from asgi_session.management import end_all_sessions

    module = load_sample("mongodb_jwt.py")
    async with running(module) as browser:
        user_id = await sign_up_and_in(browser)
        assert await mongo_db.users.count_documents({"_id": ObjectId(user_id)}) == 1
        assert await mongo_db.sessions.count_documents({}) == 0
        assert browser.cookies[SESSION_COOKIE].count(".") == 4, "a JWE"
        # Ending every session stores a cut-off in the database; an instance that has
        # not read this user's cut-off yet (here: a second one) refuses the token at once.
        other = load_sample("mongodb_jwt.py")
        await end_all_sessions(module.config, user_id)
        assert await mongo_db.revocations.count_documents({}) == 1
        transport = httpx2.ASGITransport(app=other.app)
        async with httpx2.AsyncClient(
            transport=transport, base_url=APP_URL, cookies=browser.cookies
        ) as elsewhere:
            assert (await elsewhere.get("/")).json()["signedIn"] is False
        await other.client.close()
    await module.client.close()


# -- SQL ---------------------------------------------------------------------------------

SUPPORT = Path(__file__).resolve().parent / "support"
NODE_MODULES = Path(__file__).resolve().parent / "node" / "node_modules"


async def run_sql(url: str, ddl: str) -> None:
    """Run a file of SQL statements as they are, on PostgreSQL (asyncpg) or SQLite."""
    if url.startswith("sqlite"):
        import sqlite3

        path = url.split(":///", 1)[1]
        with contextlib.closing(sqlite3.connect(path)) as connection:
            connection.executescript(ddl)
        return
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(ddl)
    finally:
        await connection.close()


async def fetch(url: str, query: str) -> list[dict[str, Any]]:
    """Rows of one query, straight from the database (not through the adapter)."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(sa.text(query))
            return [dict(row._mapping) for row in result]
    finally:
        await engine.dispose()


async def tables_of(url: str) -> set[str]:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            names: list[str] = await connection.run_sync(
                lambda sync: sa.inspect(sync).get_table_names()
            )
            return set(names)
    finally:
        await engine.dispose()


OUR_TABLES = {"asgi_session_extra", "asgi_session_revocations", "asgi_session_rate_limits"}
DRIZZLE_TABLES = {"user", "account", "session", "verificationToken", "authenticator"}


@pytest.fixture(params=["sqlite", "postgres"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_sql_app_creates_drizzles_tables_and_stores_sessions_in_them(
    monkeypatch: pytest.MonkeyPatch, sql_url: str
) -> None:
    set_env(monkeypatch, DATABASE_URL=sql_url)
    module = load_sample("sql_app.py")
    assert await tables_of(sql_url) == set(), "nothing happens at import"
    async with running(module) as browser:
        assert await tables_of(sql_url) == DRIZZLE_TABLES | OUR_TABLES
        user_id = await sign_up_and_in(browser)
        assert re.fullmatch(r"[0-9a-f]{24}", user_id)
        token = browser.cookies[SESSION_COOKIE]
        (session,) = await fetch(sql_url, 'SELECT "userId" FROM session')
        assert session["userId"] == user_id
        (account,) = await fetch(sql_url, 'SELECT provider, "providerAccountId" FROM account')
        assert account == {"provider": "password", "providerAccountId": user_id}
        # The hash has no column of Drizzle's: it is kept in the extras table, as JSON.
        extras = await fetch(sql_url, "SELECT kind, data FROM asgi_session_extra")
        assert any(row["kind"] == "account" and "$argon2id$" in row["data"] for row in extras)
        assert any(row["kind"] == "session" and "last_seen_at" in row["data"] for row in extras)

        csrf = (await browser.get("/auth/csrf")).json()["csrfToken"]
        await browser.post("/auth/signout", data={"csrfToken": csrf})
        assert await fetch(sql_url, "SELECT * FROM session") == []
        assert token not in browser.cookies.values()


async def test_sql_migrations_metadata_makes_tables_the_adapter_accepts(
    monkeypatch: pytest.MonkeyPatch, sql_url: str
) -> None:
    set_env(monkeypatch, DATABASE_URL=sql_url)
    module = load_sample("sql_migrations.py")
    assert set(module.target_metadata.tables) == DRIZZLE_TABLES | OUR_TABLES
    await run_sql(sql_url, module.ddl())
    await module.adapter.check_tables()  # nothing missing, nothing to create
    await module.adapter.close()
    app = load_sample("sql_app.py")
    async with running(app) as browser:
        await sign_up_and_in(browser)


# -- Prisma: the schema the page shows is the SQL the preset is tested on ------------------

PRISMA_TYPES = {
    "String": "TEXT",
    "DateTime": "TIMESTAMP(3)",
    "Int": "INTEGER",
    "Boolean": "BOOLEAN",
}


def prisma_models(text: str) -> dict[str, dict[str, Any]]:
    """Each model of a Prisma schema: its scalar columns as ``prisma migrate`` makes them
    on PostgreSQL, its primary key, unique columns and relations."""
    models: dict[str, dict[str, Any]] = {}
    for name, body in re.findall(r"^model (\w+) \{\n(.*?)^\}", text, flags=re.M | re.S):
        model: dict[str, Any] = {"columns": {}, "key": None, "unique": set(), "cascade": set()}
        for line in body.splitlines():
            line = line.split("//")[0].strip()
            if not line:
                continue
            if line.startswith("@@id("):
                model["key"] = tuple(re.findall(r"\w+", line[len("@@id(") :]))
                continue
            field, type_, *attributes = line.split(None, 2)
            rest = attributes[0] if attributes else ""
            scalar = type_.rstrip("?")
            if scalar not in PRISMA_TYPES:
                if "@relation" in rest:
                    assert "onDelete: Cascade" in rest, line
                    model["cascade"].add(re.search(r"fields: \[(\w+)\]", rest).group(1))  # type: ignore[union-attr]
                continue  # a relation: no column
            default = "CURRENT_TIMESTAMP" if "@default(now())" in rest else None
            model["columns"][field] = (PRISMA_TYPES[scalar], not type_.endswith("?"), default)
            if "@id" in rest.split():
                model["key"] = (field,)
            if "@unique" in rest:
                model["unique"].add(field)
        models[name] = model
    return models


def migration_tables(sql: str) -> dict[str, dict[str, Any]]:
    """The same facts, read from the SQL of a ``prisma migrate`` migration."""
    tables: dict[str, dict[str, Any]] = {}
    for name, body in re.findall(r'CREATE TABLE "(\w+)" \((.*?)\n\);', sql, flags=re.S):
        table: dict[str, Any] = {"columns": {}, "key": None, "unique": set(), "cascade": set()}
        for line in body.strip().splitlines():
            line = line.strip().rstrip(",")
            key = re.fullmatch(r'CONSTRAINT "\w+" PRIMARY KEY \((.*)\)', line)
            if key:
                table["key"] = tuple(re.findall(r'"(\w+)"', key.group(1)))
            elif line:
                column = re.fullmatch(
                    r'"(\w+)" ([A-Z]+(?:\(\d\))?)( NOT NULL)?(?: DEFAULT (\w+))?', line
                )
                assert column, line
                table["columns"][column.group(1)] = (
                    column.group(2),
                    bool(column.group(3)),
                    column.group(4),
                )
        tables[name] = table
    for name, column in re.findall(r'CREATE UNIQUE INDEX "\w+" ON "(\w+)"\("(\w+)"\);', sql):
        tables[name]["unique"].add(column)
    for name, column in re.findall(
        r'ALTER TABLE "(\w+)" ADD CONSTRAINT "\w+" FOREIGN KEY \("(\w+)"\) '
        r'REFERENCES "User"\("id"\) ON DELETE CASCADE',
        sql,
    ):
        tables[name]["cascade"].add(column)
    return tables


def test_the_prisma_schema_shown_is_the_one_the_prisma_preset_is_tested_on() -> None:
    models = prisma_models((SAMPLES / "sql_prisma_schema.prisma").read_text())
    tables = migration_tables((SUPPORT / "prisma_pg_schema.sql").read_text())
    assert list(models) == ["User", "Account", "Session", "VerificationToken", "Authenticator"]
    assert set(models) == set(tables)
    for name, model in models.items():
        table = tables[name]
        assert list(model["columns"]) == list(table["columns"]), name
        for column, spec in model["columns"].items():
            assert spec == table["columns"][column], (name, column)
        assert model["key"] == table["key"], name
        assert model["unique"] == table["unique"], name
        assert model["cascade"] == table["cascade"], name


async def test_sql_prisma_runs_on_the_tables_prisma_migrate_makes(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    await run_sql(postgres_url, (SUPPORT / "prisma_pg_schema.sql").read_text())
    set_env(monkeypatch, DATABASE_URL=postgres_url)
    module = load_sample("sql_prisma.py")
    async with running(module) as browser:
        assert (
            await tables_of(postgres_url)
            == {
                "User",
                "Account",
                "Session",
                "VerificationToken",
                "Authenticator",
            }
            | OUR_TABLES
        )
        user_id = await sign_up_and_in(browser)
        (user,) = await fetch(postgres_url, 'SELECT * FROM "User"')
        assert (user["id"], user["email"]) == (user_id, "ada@example.com")
        assert user["createdAt"] is not None and user["updatedAt"] is not None
        (session,) = await fetch(postgres_url, 'SELECT * FROM "Session"')
        assert session["sessionToken"] == browser.cookies[SESSION_COOKIE]
        assert session["updatedAt"] is not None, "filled here, as Prisma's client does"


async def test_a_preset_refuses_tables_made_for_another(postgres_url: str) -> None:
    from asgi_session.backends.sql import SQLAdapter
    from asgi_session.errors import ConfigurationError

    # Drizzle's "user", "account", "session" under the preset of Better Auth's tables,
    # which share their names but not their columns.
    await run_sql(postgres_url, (SUPPORT / "drizzle_pg_schema.sql").read_text())
    adapter = SQLAdapter(postgres_url, schema="better-auth")
    try:
        with pytest.raises(ConfigurationError) as refused:
            await adapter.create_tables()
    finally:
        await adapter.close()
    message = str(refused.value)
    assert "table 'user'" in message and "'better-auth' preset" in message, message
    assert "column" in message, message
    columns = await fetch(
        postgres_url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'user'",
    )
    assert {row["column_name"] for row in columns} == {
        "id",
        "name",
        "email",
        "emailVerified",
        "image",
    }, "the table was left as it was"


# -- @auth/pg-adapter --------------------------------------------------------------------


async def test_sql_authjs_pg_runs_on_the_pg_adapters_schema(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    await run_sql(postgres_url, (SUPPORT / "authjs_pg_schema.sql").read_text())
    before = await fetch(
        postgres_url,
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY table_name, column_name",
    )
    set_env(monkeypatch, DATABASE_URL=postgres_url)
    module = load_sample("sql_authjs_pg.py")
    async with running(module) as browser:
        assert (
            await tables_of(postgres_url)
            == {
                "users",
                "accounts",
                "sessions",
                "verification_token",
                "asgi_session_authenticators",
            }
            | OUR_TABLES
        )
        after = await fetch(
            postgres_url,
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name NOT LIKE 'asgi_session_%' "
            "ORDER BY table_name, column_name",
        )
        assert after == before, "existing tables are never altered"
        user_id = await sign_up_and_in(browser)
        assert user_id == "1", "the database numbers users (SERIAL)"
        (session,) = await fetch(postgres_url, 'SELECT "userId", "sessionToken" FROM sessions')
        assert session == {"userId": 1, "sessionToken": browser.cookies[SESSION_COOKIE]}


# -- an engine of your own -------------------------------------------------------------


async def test_sql_engine_puts_renamed_tables_in_another_schema(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    await run_sql(postgres_url, "CREATE SCHEMA auth")
    set_env(monkeypatch, DATABASE_URL=postgres_url)
    module = load_sample("sql_engine.py")
    async with running(module) as browser:
        user_id = await sign_up_and_in(browser)
        (user,) = await fetch(postgres_url, "SELECT id, email FROM auth.app_users")
        assert user == {"id": user_id, "email": "ada@example.com"}
        (session,) = await fetch(postgres_url, 'SELECT "sessionToken" FROM auth.app_sessions')
        assert session["sessionToken"] == browser.cookies[SESSION_COOKIE]
        assert await tables_of(postgres_url) == set(), "nothing in the public schema"


# -- Drizzle: the TypeScript schema, run by Node ---------------------------------------

DRIZZLE_DRIVER = """
import { readFileSync } from "node:fs";
import pg from "pg";
import { drizzle } from "drizzle-orm/node-postgres";
import { getTableConfig } from "drizzle-orm/pg-core";
import * as schema from %(sample)s;

async function main() {
  const request = JSON.parse(readFileSync(0, "utf8"));
  const pool = new pg.Pool({ connectionString: request.url, max: 2 });
  try {
    const tables = {};
    for (const table of [schema.users, schema.accounts, schema.sessions,
                         schema.verificationTokens, schema.authenticators]) {
      const config = getTableConfig(table);
      tables[config.name] = Object.fromEntries(
        config.columns.map((column) => [column.name, [column.getSQLType(), column.notNull]]),
      );
    }
    const adapter = schema.authAdapter(drizzle(pool));
    const found = await adapter.getSessionAndUser(request.token);
    const created = await adapter.createSession({
      sessionToken: request.newToken,
      userId: found.user.id,
      expires: new Date(Date.now() + 24 * 60 * 60 * 1000),
    });
    const user = await adapter.createUser({ name: "Grace", email: "grace@example.com" });
    process.stdout.write(JSON.stringify({
      tables,
      found: { email: found.user.email, userId: found.session.userId },
      created: created.sessionToken,
      user: user.id,
    }));
  } finally {
    await pool.end();
  }
}
main().catch((error) => { console.error(error); process.exit(1); });
"""


#: Optional packages of the MongoDB driver, which it loads only when asked to.
OPTIONAL_PACKAGES = (
    "pg-native",
    "kerberos",
    "@mongodb-js/zstd",
    "@aws-sdk/credential-providers",
    "gcp-metadata",
    "snappy",
    "socks",
    "aws4",
    "mongodb-client-encryption",
)


def node_bundle(tmp_path: Path, driver: str, sample: str) -> Path:
    """``driver`` (importing the page's TypeScript ``sample``) bundled by esbuild, its
    types stripped, with the packages of tests/node, into one script Node runs."""
    from tests.support.node import node_binary

    node_binary()
    entry = tmp_path / "driver.mjs"
    entry.write_text(driver.replace("%(sample)s", json_string(str(SAMPLES / sample))))
    out = tmp_path / "driver.cjs"
    completed = subprocess.run(
        [
            str(NODE_MODULES / ".bin" / "esbuild"),
            str(entry),
            "--bundle",
            "--platform=node",
            "--format=cjs",
            "--log-level=error",
            *(f"--external:{name}" for name in OPTIONAL_PACKAGES),
            f"--outfile={out}",
        ],
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return out


async def run_bundle(bundle: Path, request: dict[str, Any], **env: str) -> Any:
    """Run a bundle with ``request`` as JSON on stdin; its JSON answer."""
    import json

    from tests.support.node import node_binary

    completed = await asyncio.to_thread(
        subprocess.run,
        [node_binary(), str(bundle)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, **env},
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def json_string(value: str) -> str:
    import json

    return json.dumps(value)


async def test_the_drizzle_schema_shown_shares_its_tables_with_sql_app(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str, tmp_path: Path
) -> None:
    bundle = node_bundle(tmp_path, DRIZZLE_DRIVER, "sql_drizzle_schema.ts")
    # The tables as drizzle-kit makes them from that schema.
    await run_sql(postgres_url, (SUPPORT / "drizzle_pg_schema.sql").read_text())
    columns = await fetch(
        postgres_url,
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'public'",
    )
    set_env(monkeypatch, DATABASE_URL=postgres_url)
    module = load_sample("sql_app.py")
    async with running(module) as browser:
        assert await tables_of(postgres_url) == DRIZZLE_TABLES | OUR_TABLES
        user_id = await sign_up_and_in(browser)
        request = {
            "url": postgres_url.replace("postgresql+asyncpg://", "postgresql://"),
            "token": browser.cookies[SESSION_COOKIE],
            "newToken": "made-by-the-nextjs-app",
        }
        answer = await run_bundle(bundle, request)

        # Column for column, the schema is the tables the preset checked at start-up.
        types = {"timestamp": "timestamp without time zone"}
        declared = {
            (table, column, types.get(sql_type, sql_type), "NO" if not_null else "YES")
            for table, table_columns in answer["tables"].items()
            for column, (sql_type, not_null) in table_columns.items()
        }
        stored = {
            (row["table_name"], row["column_name"], row["data_type"], row["is_nullable"])
            for row in columns
        }
        assert declared == stored

        # The Next.js side reads the session Python made, and Python the one it made.
        assert answer["found"] == {"email": "ada@example.com", "userId": user_id}
        browser.cookies.set(SESSION_COOKIE, answer["created"])
        home = (await browser.get("/")).json()
        assert (home["signedIn"], home["id"]) == (True, user_id)
        found = await module.adapter.get_user(answer["user"])
        assert found is not None and found.email == "grace@example.com"


async def test_the_unique_indexes_older_pg_adapter_tables_need(postgres_url: str) -> None:
    from asgi_session.backends.sql import SQLAdapter

    older = (SUPPORT / "authjs_pg_schema.sql").read_text().replace(" UNIQUE NOT NULL", " NOT NULL")
    assert older.count("UNIQUE") == 1, "only accounts' (provider, providerAccountId) is left"
    await run_sql(postgres_url, older)
    await run_sql(postgres_url, (SAMPLES / "sql_authjs_pg_unique.sql").read_text())
    unique = await fetch(
        postgres_url,
        "SELECT tablename, indexdef FROM pg_indexes WHERE indexdef LIKE 'CREATE UNIQUE%'",
    )
    definitions = " ".join(row["indexdef"] for row in unique)
    assert "ON public.users USING btree (email)" in definitions
    assert 'ON public.sessions USING btree ("sessionToken")' in definitions
    adapter = SQLAdapter(postgres_url, schema="authjs-pg")
    try:
        await adapter.create_tables()
        await adapter.create_user({"email": "ada@example.com"})
        from asgi_session.errors import DuplicateRecordError

        with pytest.raises(DuplicateRecordError):
            await adapter.create_user({"email": "ada@example.com"})
    finally:
        await adapter.close()


# -- MongoDB shared with @auth/mongodb-adapter ------------------------------------------

MONGODB_DRIVER = """
import { readFileSync } from "node:fs";
import { adapter, client } from %(sample)s;

async function main() {
  const request = JSON.parse(readFileSync(0, "utf8"));
  try {
    const found = await adapter.getSessionAndUser(request.token);
    const created = await adapter.createSession({
      sessionToken: request.newToken,
      userId: found.user.id,
      expires: new Date(Date.now() + 24 * 60 * 60 * 1000),
    });
    await adapter.deleteSession(request.token);
    process.stdout.write(JSON.stringify({
      email: found.user.email,
      userId: found.session.userId,
      created: created.sessionToken,
    }));
  } finally {
    await client.close();
  }
}
main().catch((error) => { console.error(error); process.exit(1); });
"""


async def test_a_nextjs_app_on_authjs_mongodb_adapter_shares_the_sessions(
    mongo_env: None, tmp_path: Path
) -> None:
    bundle = node_bundle(tmp_path, MONGODB_DRIVER, "mongodb_authjs_adapter.ts")
    module = load_sample("mongodb_app.py")
    async with running(module) as browser:
        user_id = await sign_up_and_in(browser)
        token = browser.cookies[SESSION_COOKIE]

        async def cached() -> bool:
            await browser.get("/")
            return bool(module.config.strategy.cache_active)

        await until(cached, 10, "the session cache became active")
        # The Node side reads the session Python made, makes one of its own for the same
        # user, and signs the first one out.
        answer = await run_bundle(
            bundle,
            {"token": token, "newToken": "made-by-the-nextjs-app"},
            MONGODB_URL=os.environ["MONGODB_URL"],
        )
        assert answer == {
            "email": "ada@example.com",
            "userId": user_id,
            "created": "made-by-the-nextjs-app",
        }

        async def ended() -> bool:
            return (await browser.get("/")).json()["signedIn"] is False

        await until(ended, 2, "the sign-out made by Node reached the Python side")
        browser.cookies.set(SESSION_COOKIE, answer["created"])
        home = (await browser.get("/")).json()
        assert (home["signedIn"], home["id"]) == (True, user_id)
