"""A Next.js app on an Auth.js SQL adapter and a Python app sharing one database share
users, accounts, sessions, verification tokens and passkeys.

Both directions run through the real adapters from npm (tests/support/authjs_sql.mjs):
``@auth/pg-adapter`` on the ``"authjs-pg"`` preset, ``@auth/drizzle-adapter`` with its
default tables on the ``"drizzle"`` preset, on PostgreSQL and on SQLite. The tables are
made by Python (``create_tables``), or as the Node side's documentation makes them
(pg-adapter's schema.sql; Drizzle's, written out as the DDL drizzle-kit would run), which
Python then accepts.

Prisma's migration engine is a download this suite cannot count on, so the ``"prisma"``
preset is tried against the SQL ``prisma migrate`` makes of the schema in Auth.js's
Prisma documentation (tests/support/prisma_pg_schema.sql), without Prisma's client.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from asgi_session.backends._sql_schema import PRESETS
from asgi_session.backends.sql import SQLAdapter
from asgi_session.errors import ConfigurationError
from asgi_session.models import Authenticator
from tests.support.node import SUPPORT_DIR, run_node_script

# Not UTC, and not a whole number of hours from it: a time read or written as local time
# instead of UTC shows.
NODE_TIME_ZONE = "Asia/Kolkata"
# Times with milliseconds, which every side keeps.
VERIFIED = datetime(2031, 5, 6, 7, 8, 9, 123_000, tzinfo=UTC)
EXPIRES = datetime(2032, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
LATER = datetime(2032, 2, 3, 4, 5, 6, 789_000, tzinfo=UTC)
PASSKEY: dict[str, Any] = {
    "credentialID": "AAECAwQFBgcICQoLDA0ODw",
    "providerAccountId": "AAECAwQFBgcICQoLDA0ODw",
    "credentialPublicKey": "pQECAyYgASFYIGZha2Uta2V5",
    "counter": 3,
    "credentialDeviceType": "multiDevice",
    "credentialBackedUp": True,
    "transports": "internal,hybrid",
}


@dataclass(frozen=True)
class Peer:
    """One Node adapter and the preset that shares its tables."""

    mode: str  # authjs_sql.mjs's
    preset: str
    database: str  # "postgres" or "sqlite"
    ddl: str  # the tables as the Node side's documentation makes them
    passkeys: bool  # whether the Node adapter stores authenticators


PEERS = {
    "pg-adapter": Peer("pg", "authjs-pg", "postgres", "authjs_pg_schema.sql", passkeys=False),
    "drizzle-pg": Peer("drizzle-pg", "drizzle", "postgres", "drizzle_pg_schema.sql", passkeys=True),
    "drizzle-sqlite": Peer(
        "drizzle-sqlite", "drizzle", "sqlite", "drizzle_sqlite_schema.sql", passkeys=True
    ),
}


class Shared:
    """A database, the Python adapter on it, and the Node adapter on it."""

    def __init__(self, peer: Peer, url: str) -> None:
        self.peer = peer
        self.adapter = SQLAdapter(url, schema=peer.preset)
        parsed = make_url(url)
        if peer.database == "sqlite":
            self.node_url = str(parsed.database)
        else:
            self.node_url = parsed.set(drivername="postgresql").render_as_string(
                hide_password=False
            )

    async def node(self, *ops: dict[str, Any], sql: str | None = None) -> list[Any]:
        """Run ``ops`` on the Node adapter; the value of each, failing on any error."""
        request = {
            "mode": self.peer.mode,
            "url": self.node_url,
            "timeZone": NODE_TIME_ZONE,
            "sql": sql,
            "ops": list(ops),
        }
        results = await asyncio.to_thread(run_node_script, "authjs_sql.mjs", request)
        errors = [result["error"] for result in results if not result["ok"]]
        assert errors == [], errors
        return [result["value"] for result in results]

    async def node_tables(self) -> None:
        """Create the tables as the Node side's documentation does, then ours (only ours)."""
        await self.node(sql=(SUPPORT_DIR / self.peer.ddl).read_text())
        assert await table_names(self.adapter) < set(self.adapter.metadata.tables)
        with pytest.raises(ConfigurationError, match="asgi_session_"):
            await self.adapter.check_tables()
        await self.adapter.create_tables()
        await self.adapter.check_tables()
        assert await table_names(self.adapter) == set(self.adapter.metadata.tables)


def op(name: str, *args: Any) -> dict[str, Any]:
    return {"op": name, "args": list(args)}


def date(value: datetime) -> dict[str, str]:
    return {"$date": value.isoformat(timespec="milliseconds")}


def result(index: int, key: str) -> dict[str, list[Any]]:
    """An argument: field ``key`` of what op ``index`` of the same batch returned."""
    return {"$result": [index, key]}


def moment(value: dict[str, str] | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value["$date"])


async def table_names(adapter: SQLAdapter) -> set[str]:
    async with adapter.engine.connect() as connection:
        names: list[str] = await connection.run_sync(
            lambda sync: sa.inspect(sync).get_table_names()
        )
    return set(names)


@pytest.fixture(params=list(PEERS))
def peer(request: pytest.FixtureRequest) -> Peer:
    return PEERS[request.param]


@pytest.fixture
def database_url(request: pytest.FixtureRequest, peer: Peer, tmp_path: pathlib.Path) -> str:
    """A fresh, empty database of the peer's kind (synchronous, so that it may ask for
    the asynchronous PostgreSQL fixture)."""
    if peer.database == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=["tables-by-python", "tables-by-node"])
async def shared(
    request: pytest.FixtureRequest, peer: Peer, database_url: str
) -> AsyncIterator[Shared]:
    shared = Shared(peer, database_url)
    try:
        if request.param == "tables-by-python":
            await shared.adapter.create_tables()
        else:
            await shared.node_tables()
        yield shared
    finally:
        await shared.adapter.close()


# -- Python writes, Node reads -----------------------------------------------------------


async def test_what_python_writes_node_reads(shared: Shared) -> None:
    python = shared.adapter
    user = await python.create_user(
        {"name": "Ada", "email": "ada@example.com", "email_verified": VERIFIED, "image": "a.png"}
    )
    account = await python.link_account(
        {
            "user_id": user.id,
            "type": "oidc",
            "provider": "github",
            "provider_account_id": "gh-1",
            "access_token": "at-1",
            "refresh_token": "rt-1",
            "expires_at": 1_900_000_000,
            "token_type": "bearer",
            "scope": "read:user",
            "id_token": "id-1",
            "session_state": "state-1",
        }
    )
    await python.create_session(
        {"session_token": "py-token", "user_id": user.id, "expires": EXPIRES}
    )
    await python.update_session({"session_token": "py-token", "expires": LATER})
    await python.create_session(
        {"session_token": "py-gone", "user_id": user.id, "expires": EXPIRES}
    )
    await python.delete_session("py-gone")
    await python.create_verification_token(
        {"identifier": "ada@example.com", "token": "py-hashed", "expires": EXPIRES}
    )
    ops = [
        op("getUser", user.id),
        op("getUserByEmail", "ada@example.com"),
        op("getUserByAccount", {"provider": "github", "providerAccountId": "gh-1"}),
        op("getSessionAndUser", "py-token"),
        op("getSessionAndUser", "py-gone"),
        op("useVerificationToken", {"identifier": "ada@example.com", "token": "py-hashed"}),
        op("useVerificationToken", {"identifier": "ada@example.com", "token": "py-hashed"}),
        # A session Node makes for the user Python made.
        op(
            "createSession",
            {"sessionToken": "node-token", "userId": user.id, "expires": date(EXPIRES)},
        ),
    ]
    if shared.peer.passkeys:
        await python.create_authenticator(
            {
                "credential_id": PASSKEY["credentialID"],
                "user_id": user.id,
                "provider_account_id": PASSKEY["providerAccountId"],
                "credential_public_key": PASSKEY["credentialPublicKey"],
                "counter": PASSKEY["counter"],
                "credential_device_type": PASSKEY["credentialDeviceType"],
                "credential_backed_up": PASSKEY["credentialBackedUp"],
                "transports": PASSKEY["transports"],
                "name": "Laptop",
            }
        )
        ops += [
            op("getAuthenticator", PASSKEY["credentialID"]),
            op("listAuthenticatorsByUserId", user.id),
            op("updateAuthenticatorCounter", PASSKEY["credentialID"], 4),
        ]
    values = await shared.node(*ops)

    by_id, by_email, by_account, session_and_user, gone, used, used_again, _ = values[:8]
    expected_user = {
        "id": user.id,
        "name": "Ada",
        "email": "ada@example.com",
        "emailVerified": VERIFIED,
        "image": "a.png",
    }
    for found in (by_id, by_email, by_account, session_and_user["user"]):
        extra_columns = set(found) - set(expected_user)
        assert extra_columns <= {"createdAt", "updatedAt"}
        assert {
            **{key: found[key] for key in expected_user},
            "id": str(found["id"]),
            "emailVerified": moment(found["emailVerified"]),
        } == expected_user
    session = session_and_user["session"]
    assert session["sessionToken"] == "py-token"
    assert str(session["userId"]) == user.id
    assert moment(session["expires"]) == LATER
    assert gone is None
    assert {**used, "expires": moment(used["expires"])} == {
        "identifier": "ada@example.com",
        "token": "py-hashed",
        "expires": EXPIRES,
    }
    assert used_again is None
    assert (
        await python.use_verification_token(identifier="ada@example.com", token="py-hashed") is None
    ), "used once, by Node"
    assert account.user_id == user.id
    found = await python.get_session_and_user("node-token")
    assert found is not None
    assert (found[0].user_id, found[0].expires, found[1]) == (user.id, EXPIRES, user)

    if shared.peer.passkeys:
        stored, listed, updated = values[8:]
        expected = {**PASSKEY, "userId": user.id}
        assert stored == expected
        assert listed == [expected]
        assert updated == {**expected, "counter": 4}
        after = await python.get_authenticator(PASSKEY["credentialID"])
        assert after is not None
        assert (after.counter, after.name) == (4, "Laptop")


# -- Node writes, Python reads -----------------------------------------------------------


async def test_what_node_writes_python_reads(shared: Shared) -> None:
    python = shared.adapter
    ops = [
        op(
            "createUser",
            {
                "name": "Bob",
                "email": "bob@example.com",
                "emailVerified": date(VERIFIED),
                "image": None,
            },
        ),
        op(
            "linkAccount",
            {
                "userId": result(0, "id"),
                "type": "oauth",
                "provider": "github",
                "providerAccountId": "gh-2",
                "access_token": "at-2",
                "refresh_token": "rt-2",
                "expires_at": 1_900_000_001,
                "token_type": "bearer",
                "scope": "read:user",
                "id_token": None,
                "session_state": None,
            },
        ),
        op(
            "createSession",
            {"sessionToken": "node-token", "userId": result(0, "id"), "expires": date(EXPIRES)},
        ),
        op("updateSession", {"sessionToken": "node-token", "expires": date(LATER)}),
        op(
            "createSession",
            {"sessionToken": "node-gone", "userId": result(0, "id"), "expires": date(EXPIRES)},
        ),
        op("deleteSession", "node-gone"),
        op(
            "createVerificationToken",
            {"identifier": "bob@example.com", "token": "node-hashed", "expires": date(EXPIRES)},
        ),
    ]
    if shared.peer.passkeys:
        ops.append(op("createAuthenticator", {**PASSKEY, "userId": result(0, "id")}))
    values = await shared.node(*ops)
    user_id = str(values[0]["id"])

    user = await python.get_user(user_id)
    assert user is not None
    assert (user.name, user.email, user.email_verified, user.image) == (
        "Bob",
        "bob@example.com",
        VERIFIED,
        None,
    )
    assert await python.get_user_by_email("bob@example.com") == user
    assert await python.get_user_by_account(provider="github", provider_account_id="gh-2") == user
    account = await python.get_account(provider="github", provider_account_id="gh-2")
    assert account is not None
    assert (
        account.user_id,
        account.type,
        account.access_token,
        account.refresh_token,
        account.expires_at,
        account.token_type,
        account.scope,
        account.id_token,
    ) == (user_id, "oauth", "at-2", "rt-2", 1_900_000_001, "bearer", "read:user", None)

    found = await python.get_session_and_user("node-token")
    assert found is not None
    session, session_user = found
    assert (session.session_token, session.user_id, session.expires) == (
        "node-token",
        user_id,
        LATER,
    )
    assert session_user == user
    assert await python.get_session_and_user("node-gone") is None
    assert [listed.session_token for listed in await python.list_sessions(user_id)] == [
        "node-token"
    ]

    used = await python.use_verification_token(identifier="bob@example.com", token="node-hashed")
    assert used is not None
    assert (used.identifier, used.token, used.expires) == (
        "bob@example.com",
        "node-hashed",
        EXPIRES,
    )
    assert (
        await python.use_verification_token(identifier="bob@example.com", token="node-hashed")
        is None
    )
    follow_up = [
        op("useVerificationToken", {"identifier": "bob@example.com", "token": "node-hashed"})
    ]

    if shared.peer.passkeys:
        expected = Authenticator(
            credential_id=PASSKEY["credentialID"],
            user_id=user_id,
            provider_account_id=PASSKEY["providerAccountId"],
            credential_public_key=PASSKEY["credentialPublicKey"],
            counter=PASSKEY["counter"],
            credential_device_type=PASSKEY["credentialDeviceType"],
            credential_backed_up=True,
            transports=PASSKEY["transports"],
        )
        assert await python.get_authenticator(PASSKEY["credentialID"]) == expected
        assert await python.list_authenticators_by_user_id(user_id) == [expected]
        updated = await python.update_authenticator_counter(PASSKEY["credentialID"], 9)
        assert updated is not None and updated.counter == 9
        follow_up.append(op("getAuthenticator", PASSKEY["credentialID"]))
    used_by_node, *seen_by_node = await shared.node(*follow_up)
    assert used_by_node is None, "used once, by Python"
    assert [found["counter"] for found in seen_by_node] == ([9] if shared.peer.passkeys else [])


# -- Prisma ------------------------------------------------------------------------------


async def _columns(adapter: SQLAdapter) -> dict[str, dict[str, tuple[str, bool]]]:
    """Table -> column -> (type, nullable) of the preset's tables, as PostgreSQL has them."""
    tables = {spec.name for spec in PRESETS[adapter.schema].tables.values()}

    def inspect(sync: sa.Connection) -> dict[str, dict[str, tuple[str, bool]]]:
        inspector = sa.inspect(sync)
        return {
            table: {
                column["name"]: (str(column["type"]), bool(column["nullable"]))
                for column in inspector.get_columns(table)
            }
            for table in tables
        }

    async with adapter.engine.connect() as connection:
        return await connection.run_sync(inspect)


async def _prisma_tables(adapter: SQLAdapter) -> None:
    """The tables of tests/support/prisma_pg_schema.sql (several statements in one)."""
    ddl = (SUPPORT_DIR / "prisma_pg_schema.sql").read_text()
    async with adapter.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        await raw.driver_connection.execute(ddl)  # type: ignore[union-attr]


async def test_the_prisma_preset_is_the_tables_prisma_migrate_makes(postgres_url: str) -> None:
    adapter = SQLAdapter(postgres_url, schema="prisma")
    try:
        await _prisma_tables(adapter)
        by_prisma = await _columns(adapter)
        await adapter.create_tables()
        await adapter.check_tables()
        async with adapter.engine.begin() as connection:
            for table in by_prisma:
                await connection.execute(sa.text(f'DROP TABLE "{table}" CASCADE'))
        await adapter.create_tables()
        by_python = await _columns(adapter)
    finally:
        await adapter.close()
    # The one departure (see _sql_schema): a WebAuthn counter is 32 bits unsigned.
    assert by_prisma["Authenticator"].pop("counter") == ("INTEGER", False)
    assert by_python["Authenticator"].pop("counter") == ("BIGINT", False)
    assert by_python == by_prisma


async def test_the_prisma_preset_round_trips_in_prismas_tables(postgres_url: str) -> None:
    adapter = SQLAdapter(postgres_url, schema="prisma")
    try:
        await _prisma_tables(adapter)
        await adapter.create_tables()
        user = await adapter.create_user(
            {"name": "Ada", "email": "ada@example.com", "email_verified": VERIFIED}
        )
        assert await adapter.get_user(user.id) == user
        assert user.email_verified == VERIFIED
        account = await adapter.link_account(
            {
                "user_id": user.id,
                "type": "oauth",
                "provider": "github",
                "provider_account_id": "gh-1",
                "expires_at": 1_900_000_000,
            }
        )
        assert await adapter.get_account(provider="github", provider_account_id="gh-1") == account
        assert (
            await adapter.get_user_by_account(provider="github", provider_account_id="gh-1") == user
        )
        session = await adapter.create_session(
            {"session_token": "tok", "user_id": user.id, "expires": EXPIRES}
        )
        assert await adapter.get_session_and_user("tok") == (session, user)
        await adapter.create_verification_token(
            {"identifier": "ada@example.com", "token": "hashed", "expires": EXPIRES}
        )
        used = await adapter.use_verification_token(identifier="ada@example.com", token="hashed")
        assert used is not None and used.expires == EXPIRES
        passkey = await adapter.create_authenticator(
            {
                "credential_id": PASSKEY["credentialID"],
                "user_id": user.id,
                "provider_account_id": PASSKEY["providerAccountId"],
                "credential_public_key": PASSKEY["credentialPublicKey"],
                "counter": 0,
                "credential_device_type": "singleDevice",
                "credential_backed_up": False,
            }
        )
        assert await adapter.list_authenticators_by_user_id(user.id) == [passkey]
        # What Prisma's client needs in every row: the times it keeps itself.
        async with adapter.engine.connect() as connection:
            for table in ("User", "Account", "Session"):
                stamps = (
                    await connection.execute(
                        sa.text(f'SELECT "createdAt", "updatedAt" FROM "{table}"')
                    )
                ).one()
                assert None not in stamps
        assert await adapter.delete_user(user.id) == user
        assert await adapter.get_session_and_user("tok") is None
    finally:
        await adapter.close()
