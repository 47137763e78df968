"""BetterAuthStrategy against bad input, on each database Better Auth shares.

What a client sends (validly signed cookies naming no session, tokens of every odd shape)
and what another tool may have left in the database (sessions of vanished users, user ids
and expiry times of the wrong type, users with odd fields) each get a clear answer: a 200
with no session (or with the session, where the records still make one), never a 500,
never an ERROR in the log, and the real sessions in the same database stay as they were.
A database that cannot be reached is a 503 that ends no session.

The records are planted with raw writes, laid out as Better Auth lays them out: MongoDB
documents as its MongoDB adapter writes them, SQL rows in the tables its own migration
creates (tests/support/better_auth_*_schema.sql).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import socket
import string
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote

import httpx2
import pytest
import sqlalchemy as sa
from bson import ObjectId
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import Adapter
from asgi_session.backends._better_auth_cookies import sign
from asgi_session.backends.better_auth import BetterAuthStrategy
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.backends.sql import SQLAdapter
from tests.support.apps import config_of, set_cookies, show_session
from tests.support.better_auth import (
    DATABASE_KINDS,
    SECRET,
    Database,
    asyncpg_url,
    database_for,
)
from tests.support.node import SUPPORT_DIR
from tests.support.passwords import APP_URL

TOKEN_COOKIE = "better-auth.session_token"
#: Better Auth's tokens: 32 letters and digits.
_TOKEN_ALPHABET = string.ascii_letters + string.digits
_BETTER_AUTH_DDL = {
    "sqlite": "better_auth_sqlite_schema.sql",
    "postgres": "better_auth_pg_schema.sql",
}


class Missing(enum.Enum):
    """A field left out of a planted document altogether."""

    FIELD = "missing"


MISSING = Missing.FIELD


class Placeholder(enum.Enum):
    """A value a test fills in once the records it names exist."""

    GRACES_ID_IN_AN_ARRAY = "[ObjectId(grace)]"


@dataclass(frozen=True)
class Inline:
    """A value written as this SQL text, for values no Python parameter binds to the
    column's type (PostgreSQL's ``'-infinity'`` or BC dates in a ``timestamptz``)."""

    sql: str


def new_token() -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(32))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- planting records as Better Auth (or another tool) leaves them ---------------------------


class Raw(Protocol):
    """Raw writes to one database, under Better Auth's field names. ``fields`` override
    what Better Auth would write; :data:`MISSING` leaves a field out (MongoDB only)."""

    kind: str

    async def add_user(self, **fields: Any) -> str: ...

    async def add_session(self, user_id: str, **fields: Any) -> str: ...

    async def delete_user(self, user_id: str) -> None: ...

    async def has_session(self, token: str) -> bool: ...

    async def close(self) -> None: ...


def _user_fields(now: datetime) -> dict[str, Any]:
    return {
        "name": "Grace Hopper",
        "email": f"grace-{uuid.uuid4().hex[:8]}@example.com",
        "emailVerified": False,
        "image": None,
        "createdAt": now,
        "updatedAt": now,
    }


def _session_fields(now: datetime) -> dict[str, Any]:
    return {
        "expiresAt": now + timedelta(days=7),
        "token": new_token(),
        "createdAt": now,
        "updatedAt": now,
        "ipAddress": "203.0.113.9",
        "userAgent": "Mozilla/5.0",
    }


class MongoRaw:
    kind = "mongodb"

    def __init__(self, url: str, name: str) -> None:
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
        self.db: AsyncDatabase[dict[str, Any]] = self._client[name]

    async def add_user(self, **fields: Any) -> str:
        document = {"_id": ObjectId(), **_user_fields(datetime.now(UTC)), **fields}
        await self.db["user"].insert_one(_present(document))
        return str(document["_id"])

    async def add_session(self, user_id: str, **fields: Any) -> str:
        stored_id = ObjectId(user_id) if ObjectId.is_valid(user_id) else user_id
        document = {
            "_id": ObjectId(),
            **_session_fields(datetime.now(UTC)),
            "userId": stored_id,
            **fields,
        }
        await self.db["session"].insert_one(_present(document))
        token: str = document["token"]
        return token

    async def delete_user(self, user_id: str) -> None:
        await self.db["user"].delete_one({"_id": ObjectId(user_id)})

    async def has_session(self, token: str) -> bool:
        return await self.db["session"].count_documents({"token": token}) == 1

    async def close(self) -> None:
        await self._client.close()


class SQLRaw:
    """Rows written over a connection of its own: on SQLite with foreign keys off (its
    default, which any tool but ours writes with), so a session may name no user."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.engine: AsyncEngine = create_async_engine(url)

    async def create_tables(self) -> None:
        """Better Auth's tables, as its own migration creates them."""
        ddl = (SUPPORT_DIR / _BETTER_AUTH_DDL[self.kind]).read_text()
        async with self.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            if self.kind == "sqlite":
                await driver.executescript(ddl)
            else:
                await driver.execute(ddl)

    def _value(self, value: Any) -> Any:
        if self.kind != "sqlite":
            return value
        # As Better Auth's Kysely adapter writes them on SQLite: ISO text, 0 and 1.
        if isinstance(value, datetime):
            moment = value.astimezone(UTC)  # Date.toISOString(): four-digit years
            return (
                f"{moment.year:04d}"
                + moment.strftime("-%m-%dT%H:%M:%S.")
                + (f"{moment.microsecond // 1000:03d}Z")
            )
        if isinstance(value, bool):
            return int(value)
        return value

    async def _insert(self, table: str, row: Mapping[str, Any]) -> None:
        if any(value is MISSING for value in row.values()):
            raise AssertionError("a SQL row has every column: leave none out")
        columns, values, params = [], [], {}
        for index, (column, value) in enumerate(row.items()):
            columns.append(f'"{column}"')
            if isinstance(value, Inline):
                values.append(value.sql)
            else:
                values.append(f":p{index}")
                params[f"p{index}"] = self._value(value)
        statement = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join(values)})'
        async with self.engine.begin() as connection:
            await connection.execute(sa.text(statement), params)

    async def add_user(self, **fields: Any) -> str:
        user_id = new_token()  # Better Auth's ids are 32 letters and digits too
        await self._insert("user", {"id": user_id, **_user_fields(datetime.now(UTC)), **fields})
        return user_id

    async def add_session(self, user_id: str, **fields: Any) -> str:
        row = {"id": new_token(), **_session_fields(datetime.now(UTC)), "userId": user_id, **fields}
        await self._insert("session", row)
        token: str = row["token"]
        return token

    async def without_foreign_keys(self) -> None:
        """Drop the constraints tying sessions and accounts to users, as a copy of the
        tables made without them has none (SQLite's writes here check none anyway)."""
        if self.kind == "sqlite":
            return
        async with self.engine.begin() as connection:
            for table in ("session", "account"):
                names = await connection.execute(
                    sa.text(
                        "SELECT conname FROM pg_constraint "
                        "WHERE conrelid = CAST(:table AS regclass) AND contype = 'f'"
                    ),
                    {"table": f'"{table}"'},
                )
                for (name,) in names:
                    await connection.execute(
                        sa.text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
                    )

    async def delete_user(self, user_id: str) -> None:
        # The session row stays: nothing cascades without the constraint.
        await self.without_foreign_keys()
        async with self.engine.begin() as connection:
            await connection.execute(sa.text('DELETE FROM "user" WHERE id = :id'), {"id": user_id})

    async def has_session(self, token: str) -> bool:
        async with self.engine.connect() as connection:
            count: int | None = await connection.scalar(
                sa.text('SELECT count(*) FROM "session" WHERE token = :token'), {"token": token}
            )
        return count == 1

    async def close(self) -> None:
        await self.engine.dispose()


def _present(document: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if value is not MISSING}


def _sql_url(database: Database) -> str:
    if database["kind"] == "sqlite":
        return f"sqlite+aiosqlite:///{database['file']}"
    assert database["kind"] == "postgres"
    return asyncpg_url(database["url"])


# -- the app ------------------------------------------------------------------------------


def python_app(adapter: Adapter) -> Starlette:
    """A handler reading ``request.state.session``, under Better Auth's sessions."""
    config = AuthConfig(
        secret=SECRET, url=APP_URL, adapter=adapter, strategy=BetterAuthStrategy(adapter)
    )
    return Starlette(
        routes=[Route("/", show_session)],
        middleware=[Middleware(AuthMiddleware, config=config)],
    )


async def close_app(app: Starlette) -> None:
    """Stop the strategy's session cache (and its change stream, on MongoDB)."""
    strategy = config_of(app).strategy
    assert isinstance(strategy, BetterAuthStrategy)
    await strategy.aclose()


def signed_cookie(token: str) -> bytes:
    """The ``Cookie`` header for ``token``, signed with the secret and percent-encoded
    as Better Auth encodes it (``encodeURIComponent``)."""
    value = quote(sign(token, SECRET), safe="-_.!~*'()")
    return f"{TOKEN_COOKIE}={value}".encode()


@dataclass
class Scene:
    """One database: raw writes to it, our adapter on it, the app, and a real signed-in
    user (Grace) whose session every test checks is still there at its end."""

    raw: Raw
    adapter: Adapter
    app: Starlette
    caplog: pytest.LogCaptureFixture
    grace_id: str
    grace_token: str

    @property
    def kind(self) -> str:
        return self.raw.kind

    async def get(self, cookie: bytes | None) -> httpx2.Response:
        """``GET /`` with exactly this ``Cookie`` header (bytes, sent as they are); it
        must be a 200 and log no ERROR."""
        self.caplog.clear()
        headers = {} if cookie is None else {b"cookie": cookie}
        transport = httpx2.ASGITransport(app=self.app)
        async with httpx2.AsyncClient(transport=transport, base_url=APP_URL) as http:
            response = await http.get("/", headers=headers)
        assert_no_errors(self.caplog)
        assert response.status_code == 200, response.text
        return response

    async def no_session(self, cookie: bytes) -> httpx2.Response:
        """The request has no session, and is not handed a session cookie."""
        response = await self.get(cookie)
        assert response.json() is None
        written = set_cookies(response).get(TOKEN_COOKIE)
        assert written is None or "Max-Age=0" in written, written
        return response

    async def grace_still_signed_in(self) -> None:
        assert await self.raw.has_session(self.grace_token)
        body = (await self.get(signed_cookie(self.grace_token))).json()
        assert body is not None and body["id"] == self.grace_id


def assert_no_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, [f"{record.name}: {record.getMessage()}" for record in errors]


@pytest.fixture(autouse=True)
def _errors_are_captured(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    caplog.set_level(logging.ERROR, logger="asgi_session")


@pytest.fixture(params=DATABASE_KINDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    return database_for(request.param, request, tmp_path)


@pytest.fixture
async def scene(database: Database, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Scene]:
    raw: MongoRaw | SQLRaw
    adapter: MongoDBAdapter | SQLAdapter
    if database["kind"] == "mongodb":
        raw = MongoRaw(database["url"], database["db"])
        adapter = MongoDBAdapter(raw.db, schema="better-auth")
    else:
        raw = SQLRaw(database["kind"], _sql_url(database))
        await raw.create_tables()
        adapter = SQLAdapter(_sql_url(database), schema="better-auth")
    app = python_app(adapter)
    grace_id = await raw.add_user(name="Grace Hopper", email="grace@example.com")
    grace_token = await raw.add_session(grace_id)
    try:
        yield Scene(raw, adapter, app, caplog, grace_id, grace_token)
    finally:
        await close_app(app)
        if isinstance(adapter, SQLAdapter):
            await adapter.close()
        await raw.close()


# -- what a client sends ---------------------------------------------------------------------


async def test_a_signed_token_that_names_no_session_is_no_session(scene: Scene) -> None:
    response = await scene.no_session(signed_cookie(new_token()))
    # The dead cookie is cleared: the browser stops sending it.
    assert "Max-Age=0" in set_cookies(response)[TOKEN_COOKIE]
    await scene.grace_still_signed_in()


#: Tokens of odd shapes, lengths and characters, each validly signed.
ODD_TOKENS = {
    "one character": "a",
    "a dot inside": "abc.def",
    "only dots": "...",
    "spaces": "a b c",
    "128 characters": "A" * 128,
    "129 characters": "A" * 129,
    "4 KiB": "B" * 4096,
    "100 KB": "C" * 100_000,
    "NUL": "\x00",
    "NUL inside": "abcdefghijklmnop\x00qrstuvwxyz012345",
    "NULs only": "\x00" * 32,
    "accented": "zoë-ünïcödé-tökén",
    "CJK": "日本語のトークン",
    "emoji": "\U0001f511" * 32,
    "combining mark": "e\u0301" * 16,
    "right-to-left": "\u202eabc",
    "U+FFFF": "\uffff",
    "CR LF and a header": "x\r\nSet-Cookie: stolen=1",
    "control characters": "".join(chr(code) for code in range(1, 32)),
    "MongoDB operator": '{"$ne": null}',
    "MongoDB $where": "$where",
    "SQL quote": "' OR '1'='1",
    "SQL statement": 'x\'; DROP TABLE "session"; --',
    "LIKE wildcards": "%_%",
    "regular expression": ".*",
    "backslashes": "\\\\\\",
    "percent sequence": "%00%ff",
}


@pytest.mark.parametrize("token", list(ODD_TOKENS.values()), ids=list(ODD_TOKENS))
async def test_validly_signed_tokens_of_odd_shapes_are_no_session(scene: Scene, token: str) -> None:
    await scene.no_session(signed_cookie(token))
    await scene.grace_still_signed_in()


#: Cookie values sent without percent-encoding, as bytes: the raw bytes reach the app as
#: they are, read as Latin-1 (what is signed here is what the app reads).
RAW_TOKENS = {
    "UTF-8 bytes": "zoë日本".encode(),
    "a byte 0xff": b"\xff\xfe",
    "a NUL byte": b"abc\x00def",
    "invalid percent-encoding": b"%FF%FE%",
}


@pytest.mark.parametrize("raw", list(RAW_TOKENS.values()), ids=list(RAW_TOKENS))
async def test_raw_bytes_in_a_validly_signed_cookie_are_no_session(
    scene: Scene, raw: bytes
) -> None:
    token = raw.decode("latin-1")
    if "%" in token:
        token = unquote(token)  # what the cookie parser makes of it
    value = raw + b"." + quote(sign(token, SECRET).rpartition(".")[2], safe="").encode()
    await scene.no_session(TOKEN_COOKIE.encode() + b"=" + value)
    await scene.grace_still_signed_in()


NEAR_MISSES = {
    "a NUL after it": lambda token: token + "\x00",
    "a NUL and more after it": lambda token: token + "\x00anything",
    "a space after it": lambda token: token + " ",
    "a space before it": lambda token: " " + token,
    "in upper case": lambda token: token.upper(),
    "in lower case": lambda token: token.lower(),
    "one character short": lambda token: token[:-1],
    "a wildcard for its last character": lambda token: token[:-1] + "%",
    "a regular expression of it": lambda token: f"^{token[:8]}.*",
}


@pytest.mark.parametrize("change", list(NEAR_MISSES.values()), ids=list(NEAR_MISSES))
async def test_tokens_near_a_real_one_are_no_session_and_end_nothing(
    scene: Scene, change: Any
) -> None:
    near: str = change(scene.grace_token)
    assert near != scene.grace_token
    await scene.no_session(signed_cookie(near))
    await scene.grace_still_signed_in()


# -- what another tool left in the database --------------------------------------------------


async def test_a_session_whose_user_is_gone_is_no_session(scene: Scene) -> None:
    user_id = await scene.raw.add_user()
    token = await scene.raw.add_session(user_id)
    assert (await scene.get(signed_cookie(token))).json()["id"] == user_id
    await scene.raw.delete_user(user_id)
    assert await scene.raw.has_session(token)  # nothing took the session with the user
    await scene.no_session(signed_cookie(token))
    await scene.grace_still_signed_in()


async def test_a_session_naming_a_user_never_stored_is_no_session(scene: Scene) -> None:
    if isinstance(scene.raw, SQLRaw):
        await scene.raw.without_foreign_keys()
    never = str(ObjectId()) if scene.kind == "mongodb" else new_token()
    token = await scene.raw.add_session(never)
    await scene.no_session(signed_cookie(token))
    await scene.grace_still_signed_in()


#: ``userId`` values of the wrong shape, by database kind.
WRONG_USER_IDS: dict[str, dict[str, Any]] = {
    "mongodb": {
        "a string that is no ObjectId": "not-an-object-id",
        "an empty string": "",
        "a number": 42,
        "a float": 4.2,
        "null": None,
        "left out": MISSING,
        "true": True,
        "an object": {"$ne": None},
        "an empty array": [],
        "an array holding a user's id": Placeholder.GRACES_ID_IN_AN_ARRAY,
        "binary": b"\x00\x01",
    },
    "sqlite": {
        "an id no user has": "no-such-user",
        "an empty string": "",
        "24 hex digits no user has": "65a1b2c3d4e5f60718293a4b",
        "a long string": "u" * 300,
        "a number": 42,
        "a blob": b"\x00\xff",
        "non-ASCII": "ユーザー",
    },
    "postgres": {
        "an id no user has": "no-such-user",
        "an empty string": "",
        "24 hex digits no user has": "65a1b2c3d4e5f60718293a4b",
        "a long string": "u" * 300,
        "non-ASCII": "ユーザー",
    },
}


def _cases(table: Mapping[str, Mapping[str, Any]]) -> list[Any]:
    return [
        pytest.param(kind, value, id=f"{kind}-{name}")
        for kind, values in table.items()
        for name, value in values.items()
    ]


@pytest.mark.parametrize(("database", "user_id"), _cases(WRONG_USER_IDS), indirect=["database"])
async def test_a_session_whose_user_id_has_the_wrong_shape_is_no_session(
    scene: Scene, user_id: Any
) -> None:
    if isinstance(scene.raw, SQLRaw):
        await scene.raw.without_foreign_keys()
    if user_id is Placeholder.GRACES_ID_IN_AN_ARRAY:
        # $lookup matches an array by any of its elements: no reason to read it as one user.
        user_id = [ObjectId(scene.grace_id)]
    token = await scene.raw.add_session(scene.grace_id, userId=user_id)
    await scene.no_session(signed_cookie(token))
    await scene.grace_still_signed_in()


_LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_DAY = datetime(1, 1, 1, tzinfo=UTC)

#: ``expiresAt`` values that make no live session, by database kind. SQL's column is
#: ``NOT NULL``, and PostgreSQL's a ``timestamptz``: no string there.
BAD_EXPIRIES: dict[str, dict[str, Any]] = {
    "mongodb": {
        "null": None,
        "left out": MISSING,
        "a string": "not a date",
        "an empty string": "",
        "a date-shaped string": "2099-13-45T99:99:99.000Z",
        "a number": 0,
        "a boolean": True,
        "an object": {"$date": "2099-01-01"},
        "the epoch": _LONG_AGO,
        "the first day of year 1": _FIRST_DAY,
    },
    "sqlite": {
        "a string": "not a date",
        "an empty string": "",
        "a date-shaped string": "2099-13-45T99:99:99.000Z",
        "a time before year 1 in UTC": "0001-01-01T00:00:00+01:00",
        "zero": 0,
        "a huge number": 1e300,
        "a blob": b"\x00",
        "the epoch": _LONG_AGO,
        "the first day of year 1": _FIRST_DAY,
    },
    "postgres": {
        "the epoch": _LONG_AGO,
        "the first day of year 1": _FIRST_DAY,
        "before Christ": Inline("'0044-03-15 12:00:00+00 BC'::timestamptz"),
        "minus infinity": Inline("'-infinity'::timestamptz"),
    },
}


@pytest.mark.parametrize(("database", "expires"), _cases(BAD_EXPIRIES), indirect=["database"])
async def test_a_session_with_an_unusable_or_past_expiry_is_no_session(
    scene: Scene, expires: Any
) -> None:
    token = await scene.raw.add_session(scene.grace_id, expiresAt=expires)
    await scene.no_session(signed_cookie(token))
    await scene.grace_still_signed_in()


#: Users with odd fields, by database kind, and what the session shows of them: the
#: session is still theirs (a user is found, the session is live). ``None``: a time the
#: driver cannot even decode (asyncpg and years BC), where no session is a fair answer too.
ODD_USERS: dict[str, dict[str, tuple[dict[str, Any], dict[str, Any] | None]]] = {
    "mongodb": {
        "emailVerified a string": ({"emailVerified": "yes"}, {"name": "Ada"}),
        "emailVerified null": ({"emailVerified": None}, {"name": "Ada"}),
        "emailVerified left out": ({"emailVerified": MISSING}, {"name": "Ada"}),
        "name null": ({"name": None}, {}),
        "name left out": ({"name": MISSING}, {}),
        "name empty": ({"name": ""}, {}),
        "email left out": ({"email": MISSING}, {"name": "Ada"}),
        "email null": ({"email": None}, {"name": "Ada"}),
        "createdAt a string": ({"createdAt": "yesterday"}, {"name": "Ada"}),
        "updatedAt left out": ({"updatedAt": MISSING}, {"name": "Ada"}),
    },
    "sqlite": {
        "emailVerified a string": ({"emailVerified": "yes"}, {"name": "Ada"}),
        "emailVerified 2": ({"emailVerified": 2}, {"name": "Ada"}),
        "name empty": ({"name": ""}, {}),
        "createdAt a string": ({"createdAt": "yesterday"}, {"name": "Ada"}),
        "updatedAt an empty string": ({"updatedAt": ""}, {"name": "Ada"}),
    },
    "postgres": {
        "name empty": ({"name": ""}, {}),
        "createdAt before Christ": (
            {"createdAt": Inline("'0044-03-15 12:00:00+00 BC'::timestamptz")},
            None,
        ),
    },
}


def _user_cases() -> list[Any]:
    return [
        pytest.param(kind, fields, shown, id=f"{kind}-{name}")
        for kind, cases in ODD_USERS.items()
        for name, (fields, shown) in cases.items()
    ]


@pytest.mark.parametrize(("database", "fields", "shown"), _user_cases(), indirect=["database"])
async def test_a_user_with_odd_fields_keeps_their_session(
    scene: Scene, fields: dict[str, Any], shown: dict[str, Any] | None
) -> None:
    user_id = await scene.raw.add_user(**{"name": "Ada", **fields})
    token = await scene.raw.add_session(user_id)
    body = (await scene.get(signed_cookie(token))).json()
    if shown is None:
        assert body is None or body["id"] == user_id
        await scene.grace_still_signed_in()
        return
    assert body is not None and body["id"] == user_id
    user = body["user"]
    assert {key: user[key] for key in ("name",) if key in user} == shown
    if fields.get("email", "") in (None, MISSING):
        assert "email" not in user
    await scene.grace_still_signed_in()


# -- the database down ------------------------------------------------------------------------


def _unreachable_adapter(kind: str, tmp_path: Path) -> tuple[Adapter, AsyncMongoClient[Any] | None]:
    if kind == "mongodb":
        client: AsyncMongoClient[Any] = AsyncMongoClient(
            f"mongodb://127.0.0.1:{_free_port()}/?directConnection=true",
            serverSelectionTimeoutMS=500,
        )
        return MongoDBAdapter(client["app"], schema="better-auth", operation_timeout=1), client
    if kind == "sqlite":
        missing = tmp_path / "no-such-directory" / "auth.db"
        return SQLAdapter(f"sqlite+aiosqlite:///{missing}", schema="better-auth"), None
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_free_port()}/app"
    return SQLAdapter(url, schema="better-auth", operation_timeout=2), None


@pytest.mark.parametrize("kind", DATABASE_KINDS)
async def test_the_database_down_is_a_503_that_ends_no_session(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    adapter, client = _unreachable_adapter(kind, tmp_path)
    app = python_app(adapter)
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url=APP_URL
        ) as http:
            for _ in range(2):  # the first request and one after the outage is known
                caplog.clear()
                response = await http.get("/", headers={b"cookie": signed_cookie(new_token())})
                assert response.status_code == 503, response.text
                assert "session store" in response.text
                assert TOKEN_COOKIE not in set_cookies(response), "the cookie is kept"
                assert_no_errors(caplog)
            # What needs no database is answered as ever: no cookie, a forged one.
            response = await http.get("/")
            assert response.status_code == 200 and response.json() is None
            forged = f"{TOKEN_COOKIE}={new_token()}.{'A' * 43}="
            response = await http.get("/", headers={"cookie": forged})
            assert response.status_code == 200 and response.json() is None
            assert_no_errors(caplog)
    finally:
        await close_app(app)
        if isinstance(adapter, SQLAdapter):
            await adapter.close()
        if client is not None:
            # Bounded: a close that hangs must fail this test, not hold the run up.
            async with asyncio.timeout(10):
                await client.close()
