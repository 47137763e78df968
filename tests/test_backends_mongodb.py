"""MongoDBAdapter against a real mongod, through PyMongo's async client and Motor.

These are what is particular to MongoDB: the documents it stores (Auth.js's shapes, and
Better Auth's with ``schema="better-auth"``), indexes, TTL expiry, outages, round trips
and interoperability with Auth.js and Better Auth. The contract every adapter keeps is
tested in test_backends_adapter.py, in Auth.js's layout; here it runs again in Better
Auth's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import ANY

import pytest
from bson import ObjectId
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from asgi_session.backends import Adapter
from asgi_session.backends.mongodb import (
    DEFAULT_COLLECTIONS,
    MongoDBAdapter,
    _duplicate_key,
    _index_name,
)
from asgi_session.errors import BackendUnavailableError, ConfigurationError, DuplicateRecordError
from asgi_session.models import Account, Authenticator, SessionRecord, User, VerificationToken
from tests import test_backends_adapter
from tests.support.mongod import MongodServer
from tests.support.node import NODE_PROJECT_DIR, node_binary, run_node_script
from tests.support.records import account_data, later, make_session, make_user

RawDb = AsyncDatabase[dict[str, Any]]

#: The collections of each layout, by the keys ``collections=`` renames them with.
COLLECTIONS: dict[str, dict[str, str]] = {
    "authjs": dict(DEFAULT_COLLECTIONS),
    "better-auth": {
        "users": "user",
        "accounts": "account",
        "sessions": "session",
        "verification_tokens": "verification",
        "revocations": "revocations",
        "authenticators": "authenticators",
    },
}


def _aware(value: datetime) -> datetime:
    """A raw PyMongo read gives naive UTC datetimes."""
    assert value.tzinfo is None
    return value.replace(tzinfo=UTC)


class _CommandLog(monitoring.CommandListener):
    """Names of the commands a client sends, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture(params=["pymongo", "motor"])
def client_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def _make_client(kind: str, url: str, **options: Any) -> Any:
    if kind == "pymongo":
        return AsyncMongoClient(url, **options)
    return AsyncIOMotorClient(url, **options)


async def _close(client: Any) -> None:
    result = client.close()
    if isinstance(result, Awaitable):
        await result


@pytest.fixture(params=["authjs", "better-auth"])
def schema(request: pytest.FixtureRequest) -> str:
    """The document layout, for the tests of what both layouts do alike."""
    name: str = request.param
    return name


@pytest.fixture
def either(client_kind: str, schema: str, mongo_db: RawDb, motor_db: Any) -> MongoDBAdapter:
    """A backend in either layout, through either client."""
    return MongoDBAdapter(mongo_db if client_kind == "pymongo" else motor_db, schema=schema)


@pytest.fixture
def better_auth(client_kind: str, mongo_db: RawDb, motor_db: Any) -> MongoDBAdapter:
    """A backend in Better Auth's layout, through either client."""
    database = mongo_db if client_kind == "pymongo" else motor_db
    return MongoDBAdapter(database, schema="better-auth")


@pytest.fixture
async def watched(
    client_kind: str, schema: str, mongodb_url: str, mongo_db_name: str
) -> AsyncIterator[tuple[MongoDBAdapter, _CommandLog]]:
    """A backend, in either layout, on its own client whose commands are recorded."""
    log = _CommandLog()
    client = _make_client(client_kind, mongodb_url, event_listeners=[log])
    try:
        yield MongoDBAdapter(client[mongo_db_name], schema=schema), log
    finally:
        await _close(client)


# -- configuration -----------------------------------------------------------------------


def test_a_client_instead_of_a_database_is_refused(
    mongo_client: AsyncMongoClient[dict[str, Any]],
    motor_client: AsyncIOMotorClient[dict[str, Any]],
) -> None:
    for client in (mongo_client, motor_client):
        with pytest.raises(ConfigurationError, match="needs a database"):
            MongoDBAdapter(client)


def test_unknown_collection_key_is_refused(mongo_db: RawDb) -> None:
    with pytest.raises(ConfigurationError, match="unknown collection 'people'"):
        MongoDBAdapter(mongo_db, collections={"people": "folks"})


async def test_collections_can_be_renamed(mongo_db: RawDb) -> None:
    adapter = MongoDBAdapter(
        mongo_db,
        collections={
            "users": "people",
            "sessions": "logins",
            "revocations": "revoked",
            "authenticators": "passkeys",
        },
    )
    user = await make_user(adapter)
    await make_session(adapter, user, "tok")
    await adapter.revoke_tokens_issued_before(user.id, later())
    await adapter.create_authenticator(_passkey(user))

    assert await mongo_db["people"].count_documents({}) == 1
    assert await mongo_db["logins"].count_documents({"sessionToken": "tok"}) == 1
    assert await mongo_db["revoked"].count_documents({}) == 1
    assert await mongo_db["passkeys"].count_documents({"credentialID": CREDENTIAL_ID}) == 1
    assert await mongo_db["users"].count_documents({}) == 0
    assert await mongo_db["authenticators"].count_documents({}) == 0
    found = await adapter.get_session_and_user("tok")
    assert found is not None and found[1].id == user.id


# -- users -------------------------------------------------------------------------------


async def test_create_user_stores_the_authjs_document(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    verified = later(minutes=-5)
    user = await adapter.create_user(
        {
            "name": "Ada",
            "email": "ada@example.com",
            "image": "https://example.com/ada.png",
            "email_verified": verified,
            "role": "admin",
        }
    )

    raw = await mongo_db["users"].find_one({})
    assert raw is not None
    assert set(raw) == {"_id", "name", "email", "image", "emailVerified", "role"}
    assert isinstance(raw["_id"], ObjectId) and str(raw["_id"]) == user.id
    assert _aware(raw["emailVerified"]) == verified
    assert raw["role"] == "admin"


async def test_create_user_stores_only_the_fields_given(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    verified = later()

    user = await adapter.create_user({"email": "bob@example.com", "email_verified": verified})
    explicit = await adapter.create_user({"email": "cy@example.com", "name": None})

    raw = await mongo_db["users"].find_one({"_id": ObjectId(user.id)})
    assert raw == {"_id": ObjectId(user.id), "email": "bob@example.com", "emailVerified": ANY}
    assert _aware(raw["emailVerified"]) == verified
    assert await mongo_db["users"].find_one({"_id": ObjectId(explicit.id)}) == {
        "_id": ObjectId(explicit.id),
        "email": "cy@example.com",
        "name": None,
    }, "a field given as None is stored as null, as Auth.js stores what it is handed"


async def test_a_user_document_without_optional_fields_reads_them_as_none(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    oid = ObjectId()
    await mongo_db["users"].insert_one({"_id": oid, "email": "bare@example.com"})

    assert await adapter.get_user(str(oid)) == User(
        id=str(oid), name=None, email="bare@example.com", image=None, email_verified=None
    )


async def test_a_taken_user_id_stores_nothing(adapter: MongoDBAdapter, mongo_db: RawDb) -> None:
    chosen = "65a1b2c3d4e5f60718293a4b"
    await adapter.create_user({"id": chosen, "email": "a@example.com"})

    with pytest.raises(DuplicateRecordError, match=r"^a user with this id already exists$"):
        await adapter.create_user({"id": chosen, "email": "c@example.com"})
    assert await mongo_db["users"].count_documents({}) == 1


def _duplicate_key_error(details: dict[str, Any]) -> DuplicateKeyError:
    return DuplicateKeyError(str(details.get("errmsg", "")), 11000, details)


@pytest.mark.parametrize(
    ("details", "key"),
    [
        ({"keyPattern": {"_id": 1}, "errmsg": "E11000 ... index: email_1 ..."}, "_id"),
        ({"keyPattern": {"provider": 1, "providerAccountId": 1}}, "provider"),
        # Servers that give no keyPattern name the index in the message.
        ({"errmsg": "E11000 duplicate key error collection: db.users index: _id_ dup key"}, "_id"),
        ({"errmsg": "E11000 duplicate key error collection: db.u index: email_1 dup key"}, "email"),
        (
            {"errmsg": "E11000 ... index: identifier_1_token_1 dup key: { identifier: 1 }"},
            "identifier",
        ),
        ({"errmsg": "E11000 something else"}, None),
        # Better Auth's names: the adapter looks them up in the indexes it made.
        ({"errmsg": "E11000 ... index: user_email_uidx dup key"}, "user_email_uidx"),
    ],
)
def test_a_duplicate_key_error_names_the_index_field(
    details: dict[str, Any], key: str | None
) -> None:
    assert _duplicate_key(_duplicate_key_error(details)) == key


async def test_users_without_an_email_are_all_stored(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    await adapter.create_user({"name": "one"})
    await adapter.create_user({"name": "two", "email": None})

    assert await mongo_db["users"].count_documents({}) == 2


async def test_concurrent_create_user_with_one_email_stores_one_document(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    # The adapter is fresh: the unique index is created by these very calls.
    results = await asyncio.gather(
        *(make_user(adapter, "race@example.com", name=f"n{i}") for i in range(20)),
        return_exceptions=True,
    )

    assert sum(isinstance(result, DuplicateRecordError) for result in results) == 19
    assert await mongo_db["users"].count_documents({"email": "race@example.com"}) == 1


async def test_delete_user_removes_their_session_and_account_documents(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(adapter)
    other = await make_user(adapter, "other@example.com")
    await make_session(adapter, user, "mine")
    await make_session(adapter, other, "theirs")
    await adapter.link_account(account_data(user, "gh-mine"))
    await adapter.link_account(account_data(other, "gh-theirs"))
    await adapter.create_authenticator(_passkey(user))
    await adapter.create_authenticator(_passkey(other, "theirs=="))

    assert await adapter.delete_user(user.id) == user

    assert await mongo_db["sessions"].count_documents({}) == 1
    assert await mongo_db["accounts"].count_documents({}) == 1
    assert await mongo_db["authenticators"].distinct("credentialID") == ["theirs=="]


# -- accounts ----------------------------------------------------------------------------


async def test_link_account_stores_the_authjs_document(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(adapter)

    account = await adapter.link_account(
        account_data(user, id_token="idt", session_state="st", refresh_token_expires_in=3600)
    )

    raw = await mongo_db["accounts"].find_one({})
    assert raw is not None
    assert set(raw) == {
        "_id",
        "userId",
        "type",
        "provider",
        "providerAccountId",
        "access_token",
        "refresh_token",
        "expires_at",
        "token_type",
        "scope",
        "id_token",
        "session_state",
        "refresh_token_expires_in",
    }
    assert raw["userId"] == ObjectId(user.id)
    assert str(raw["_id"]) == account.id


async def test_an_account_whose_user_document_is_gone_has_no_user(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(adapter)
    await adapter.link_account(account_data(user))
    assert await adapter.get_user_by_account(provider="github", provider_account_id="gh-1") == user

    await mongo_db["users"].delete_one({"_id": ObjectId(user.id)})

    assert await adapter.get_user_by_account(provider="github", provider_account_id="gh-1") is None


async def test_update_account_changes_the_stored_document(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(adapter)
    await adapter.link_account(account_data(user))

    # What update_account answers is the contract's; here, what it leaves in the store.
    await adapter.update_account(
        provider="github", provider_account_id="gh-1", data={"access_token": "at-2"}
    )

    raw = await mongo_db["accounts"].find_one({})
    assert raw is not None
    assert (raw["access_token"], raw["refresh_token"]) == ("at-2", "rt-1")


async def test_whole_number_doubles_read_as_int_expires_at(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(adapter)
    await adapter.link_account(account_data(user))
    await mongo_db["accounts"].update_one({}, {"$set": {"expires_at": 1_900_000_000.0}})

    account = await adapter.get_account(provider="github", provider_account_id="gh-1")

    assert account is not None and account.expires_at == 1_900_000_000
    assert isinstance(account.expires_at, int)


# -- sessions ----------------------------------------------------------------------------


async def test_create_session_stores_the_authjs_document_and_ours(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(adapter)
    expires = later(days=30)
    created_at = later(seconds=-1)

    await adapter.create_session(
        {
            "session_token": "tok-1",
            "user_id": user.id,
            "expires": expires,
            "created_at": created_at,
            "user_agent": "Firefox",
        }
    )

    raw = await mongo_db["sessions"].find_one({})
    assert raw is not None
    assert set(raw) == {
        "_id",
        "sessionToken",
        "userId",
        "expires",
        "createdAt",
        "lastSeenAt",
        "userAgent",
    }
    assert raw["userId"] == ObjectId(user.id)
    assert _aware(raw["expires"]) == expires
    assert _aware(raw["createdAt"]) == created_at


async def test_authjs_session_field_names_store_the_same_document(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(adapter)

    await adapter.create_session(
        {"sessionToken": "camel", "userId": user.id, "expires": later(days=1)}
    )

    raw = await mongo_db["sessions"].find_one({"sessionToken": "camel"})
    assert raw is not None and raw["userId"] == ObjectId(user.id)


async def test_get_session_and_user_neither_checks_nor_deletes_expired(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(adapter)
    # Long past, yet the TTL monitor has not run: this test owns the decision.
    await mongo_db["sessions"].insert_one(
        {"sessionToken": "old", "userId": ObjectId(user.id), "expires": datetime(2020, 1, 1)}
    )

    found = await adapter.get_session_and_user("old")

    assert found is not None
    assert found[0].expires == datetime(2020, 1, 1, tzinfo=UTC)
    assert found[0].created_at is None and found[0].extra == {}


async def test_get_session_and_user_without_its_user_is_none(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(adapter)
    await make_session(adapter, user, "tok")
    await mongo_db["users"].delete_one({"_id": ObjectId(user.id)})

    assert await adapter.get_session_and_user("tok") is None


async def test_get_session_and_user_is_one_round_trip(
    watched: tuple[MongoDBAdapter, _CommandLog],
) -> None:
    adapter, log = watched
    user = await make_user(adapter)
    await make_session(adapter, user, "tok")
    log.names.clear()

    assert await adapter.get_session_and_user("tok") is not None

    assert log.names == ["aggregate"]


# -- verification tokens -----------------------------------------------------------------


async def test_verification_token_stores_the_authjs_document(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    expires = later(hours=24)
    await adapter.create_verification_token(
        VerificationToken(identifier="ada@example.com", token="hashed", expires=expires)
    )

    raw = await mongo_db["verification_tokens"].find_one({})
    assert raw is not None
    assert set(raw) == {"_id", "identifier", "token", "expires"}
    assert _aware(raw["expires"]) == expires


# -- authenticators (passkeys) -----------------------------------------------------------

CREDENTIAL_ID = "AAECAwQFBgcICQoLDA0ODw=="
PUBLIC_KEY = "pQECAyYgASFYIGZha2Uta2V5LWZvci10ZXN0cy1vbmx5LWZha2Uta2V5Ilgg"


def _passkey(user: User, credential_id: str = CREDENTIAL_ID, **more: Any) -> dict[str, Any]:
    return {
        "credential_id": credential_id,
        "user_id": user.id,
        "provider_account_id": credential_id,
        "credential_public_key": PUBLIC_KEY,
        "counter": 0,
        "credential_device_type": "multiDevice",
        "credential_backed_up": True,
        "transports": "internal,hybrid",
        **more,
    }


async def test_create_authenticator_stores_the_authjs_document(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(adapter)
    created_at = later(minutes=-1)

    await adapter.create_authenticator(
        _passkey(user, counter=2, name="Laptop", created_at=created_at, aaguid="x")
    )
    used_at = later()
    await adapter.update_authenticator_counter(CREDENTIAL_ID, 3, used_at=used_at)

    raw = await mongo_db["authenticators"].find_one({})
    assert raw == {
        "_id": ANY,
        "credentialID": CREDENTIAL_ID,
        "userId": ObjectId(user.id),
        "providerAccountId": CREDENTIAL_ID,
        "credentialPublicKey": PUBLIC_KEY,
        "counter": 3,
        "credentialDeviceType": "multiDevice",
        "credentialBackedUp": True,
        "transports": "internal,hybrid",
        "name": "Laptop",
        "createdAt": ANY,
        "lastUsedAt": ANY,
        "aaguid": "x",
    }
    assert isinstance(raw["_id"], ObjectId)
    assert (_aware(raw["createdAt"]), _aware(raw["lastUsedAt"])) == (created_at, used_at)


async def test_an_authenticator_written_by_authjs_reads_and_counts(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    # As Auth.js writes one: no createdAt, the counter a JavaScript number (a double).
    user = await make_user(adapter)
    await adapter.create_authenticator(_passkey(user, "ours=="))
    await mongo_db["authenticators"].insert_one(
        {
            "credentialID": CREDENTIAL_ID,
            "userId": ObjectId(user.id),
            "providerAccountId": CREDENTIAL_ID,
            "credentialPublicKey": PUBLIC_KEY,
            "counter": 7.0,
            "credentialDeviceType": "singleDevice",
            "credentialBackedUp": False,
            "transports": None,
        }
    )

    read = await adapter.get_authenticator(CREDENTIAL_ID)

    assert read == Authenticator(
        credential_id=CREDENTIAL_ID,
        user_id=user.id,
        provider_account_id=CREDENTIAL_ID,
        credential_public_key=PUBLIC_KEY,
        counter=7,
        credential_device_type="singleDevice",
        credential_backed_up=False,
    )
    assert isinstance(read.counter, int)
    listed = await adapter.list_authenticators_by_user_id(user.id)
    assert [a.credential_id for a in listed] == [CREDENTIAL_ID, "ours=="], "no createdAt: first"
    assert await adapter.update_authenticator_counter(CREDENTIAL_ID, 7) is None
    counted = await adapter.update_authenticator_counter(CREDENTIAL_ID, 8)
    assert counted is not None and counted.counter == 8


async def test_update_authenticator_counter_is_one_conditional_write(
    watched: tuple[MongoDBAdapter, _CommandLog],
) -> None:
    adapter, log = watched
    user = await make_user(adapter)
    await adapter.create_authenticator(_passkey(user, counter=1))
    log.names.clear()

    assert await adapter.update_authenticator_counter(CREDENTIAL_ID, 2) is not None
    assert await adapter.update_authenticator_counter(CREDENTIAL_ID, 2) is None

    assert log.names == ["findAndModify", "findAndModify"]


# -- JWT revocation ----------------------------------------------------------------------


async def test_revoking_for_an_id_that_is_not_an_object_id_stores_no_user(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    await adapter.revoke_tokens_issued_before("credentials-user-7", later())

    assert await mongo_db["users"].count_documents({}) == 0


# -- indexes -----------------------------------------------------------------------------


async def _index_summary(
    db: RawDb, names: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for key in ("users", "accounts", "sessions", "verification_tokens", "authenticators"):
        collection = (names or COLLECTIONS["authjs"])[key]
        for name, info in (await db[collection].index_information()).items():
            if name == "_id_":
                continue
            summary[f"{collection}.{name}"] = {
                key: info[key]
                for key in ("key", "unique", "expireAfterSeconds", "partialFilterExpression")
                if key in info
            }
    return summary


EXPECTED_INDEXES = {
    "users.email_1": {
        "key": [("email", 1)],
        "unique": True,
        "partialFilterExpression": {"email": {"$type": "string"}},
    },
    "accounts.provider_1_providerAccountId_1": {
        "key": [("provider", 1), ("providerAccountId", 1)],
        "unique": True,
    },
    "accounts.userId_1": {"key": [("userId", 1)]},
    "sessions.sessionToken_1": {"key": [("sessionToken", 1)], "unique": True},
    "sessions.userId_1": {"key": [("userId", 1)]},
    "sessions.expires_1": {"key": [("expires", 1)], "expireAfterSeconds": 0},
    "verification_tokens.identifier_1_token_1": {
        "key": [("identifier", 1), ("token", 1)],
        "unique": True,
    },
    "verification_tokens.expires_1": {"key": [("expires", 1)], "expireAfterSeconds": 0},
    "authenticators.credentialID_1": {"key": [("credentialID", 1)], "unique": True},
    "authenticators.userId_1": {"key": [("userId", 1)]},
}


async def test_ensure_indexes_creates_them_and_is_idempotent(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    await adapter.ensure_indexes()
    await adapter.ensure_indexes()

    assert await _index_summary(mongo_db) == EXPECTED_INDEXES


async def test_indexes_are_created_on_first_use(adapter: MongoDBAdapter, mongo_db: RawDb) -> None:
    assert await adapter.get_user(str(ObjectId())) is None

    assert await _index_summary(mongo_db) == EXPECTED_INDEXES


async def test_concurrent_first_calls_create_indexes_once(
    watched: tuple[MongoDBAdapter, _CommandLog],
) -> None:
    adapter, log = watched

    await asyncio.gather(*(adapter.get_user(str(ObjectId())) for _ in range(10)))
    await adapter.get_user_by_email("x@example.com")

    # One createIndexes per collection that has indexes, sent once.
    assert log.names.count("createIndexes") == 5


async def test_duplicate_emails_left_by_authjs_stop_index_creation(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    await mongo_db["users"].insert_many(
        [{"email": "dup@example.com"}, {"email": "dup@example.com"}]
    )

    with pytest.raises(ConfigurationError, match="duplicates"):
        await adapter.ensure_indexes()


# -- TTL expiry --------------------------------------------------------------------------


async def test_ttl_monitor_removes_expired_sessions_and_tokens(
    either: MongoDBAdapter,
    schema: str,
    mongo_db: RawDb,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> None:
    # The fixture's mongod runs the monitor every second; make sure a MONGODB_URL
    # server does too.
    await mongo_client.admin.command({"setParameter": 1, "ttlMonitorSleepSecs": 1})
    adapter, names = either, COLLECTIONS[schema]
    sessions, tokens = mongo_db[names["sessions"]], mongo_db[names["verification_tokens"]]
    # Where each layout keeps a session's token and a verification token's.
    session_token, token = (
        ("token", "value") if schema == "better-auth" else ("sessionToken", "token")
    )
    user = await make_user(adapter)
    past = later(minutes=-1)
    await make_session(adapter, user, "expired", expires=past)
    await make_session(adapter, user, "valid")
    await adapter.create_verification_token({"identifier": "i", "token": "old", "expires": past})
    await adapter.create_verification_token(
        {"identifier": "i", "token": "new", "expires": later(hours=1)}
    )

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = (await sessions.distinct(session_token), await tokens.distinct(token))
        if left == (["valid"], ["new"]):
            break
        await asyncio.sleep(0.2)

    assert await sessions.distinct(session_token) == ["valid"]
    assert await tokens.distinct(token) == ["new"]


# -- outages -----------------------------------------------------------------------------


async def test_outage_raises_promptly_then_the_same_client_recovers(
    client_kind: str,
    mongod_server: MongodServer,
    mongo_db_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Default client options: a 30 s server-selection timeout the backend must not wait out.
    client = _make_client(client_kind, mongod_server.url)
    try:
        warmed = MongoDBAdapter(client[mongo_db_name], operation_timeout=2)
        fresh = MongoDBAdapter(client[mongo_db_name], operation_timeout=2)
        user = await make_user(warmed)
        caplog.set_level(logging.INFO, logger="asgi_session")
        try:
            mongod_server.stop()
            for call in (
                lambda: warmed.get_user(user.id),
                lambda: warmed.get_session_and_user("tok"),
                lambda: fresh.get_user(user.id),  # its indexes are not created yet
            ):
                started = time.monotonic()
                with pytest.raises(BackendUnavailableError, match="unreachable"):
                    await call()
                assert time.monotonic() - started < 3.5
        finally:
            mongod_server.start()

        assert await warmed.get_user(user.id) == user
        assert await fresh.get_user(user.id) == user
    finally:
        await _close(client)
    records = [r for r in caplog.records if r.name == "asgi_session"]
    warnings = [r for r in records if r.levelno == logging.WARNING]
    recoveries = [r for r in records if r.levelno == logging.INFO and "again" in r.getMessage()]
    # One warning per backend for the whole outage, not one per failed call.
    assert len(warnings) == 2
    assert all("unreachable" in r.getMessage() for r in warnings)
    assert len(recoveries) == 2


async def test_concurrent_calls_during_an_outage_all_fail_promptly(
    client_kind: str, mongod_server: MongodServer, mongo_db_name: str
) -> None:
    client = _make_client(client_kind, mongod_server.url)
    try:
        adapter = MongoDBAdapter(client[mongo_db_name], operation_timeout=1)
        await adapter.ensure_indexes()
        try:
            mongod_server.stop()
            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(adapter.get_user_by_email(f"{i}@example.com") for i in range(5)),
                return_exceptions=True,
            )
            elapsed = time.monotonic() - started
        finally:
            mongod_server.start()
    finally:
        await _close(client)

    assert all(isinstance(outcome, BackendUnavailableError) for outcome in outcomes), outcomes
    assert elapsed < 2.5


# -- interoperability with Auth.js's MongoDB adapter --------------------------------------


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$date": value.astimezone(UTC).isoformat().replace("+00:00", "Z")}
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(item) for item in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$date"}:
            return datetime.fromisoformat(value["$date"].replace("Z", "+00:00"))
        if set(value) == {"$oid"}:
            return ObjectId(value["$oid"])
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


async def _authjs(url: str, database: str, *ops: tuple[str, list[Any]]) -> list[Any]:
    """Run Auth.js adapter calls in one node process; returns their values in order."""
    request = {
        "url": url,
        "database": database,
        "ops": [{"op": op, "args": _to_json(args)} for op, args in ops],
    }
    results = await asyncio.to_thread(run_node_script, "authjs_mongodb.mjs", request)
    failures = [(op, r["error"]) for (op, _), r in zip(ops, results, strict=True) if not r["ok"]]
    assert not failures, failures
    return [_from_json(result["value"]) for result in results]


async def test_authjs_reads_what_python_wrote(
    adapter: MongoDBAdapter, mongodb_url: str, mongo_db_name: str
) -> None:
    verified, expires = later(minutes=-1), later(days=30)
    user = await adapter.create_user(
        {"name": "Ada", "email": "ada@example.com", "email_verified": verified, "role": "admin"}
    )
    await adapter.link_account(account_data(user))
    session = await adapter.create_session(
        {"session_token": "py-tok", "user_id": user.id, "expires": expires, "user_agent": "UA"}
    )
    await adapter.create_verification_token(
        {"identifier": "ada@example.com", "token": "hashed", "expires": expires}
    )

    by_id, by_email, by_account, session_and_user, token, token_again = await _authjs(
        mongodb_url,
        mongo_db_name,
        ("getUser", [user.id]),
        ("getUserByEmail", ["ada@example.com"]),
        ("getUserByAccount", [{"provider": "github", "providerAccountId": "gh-1"}]),
        ("getSessionAndUser", ["py-tok"]),
        ("useVerificationToken", [{"identifier": "ada@example.com", "token": "hashed"}]),
        ("useVerificationToken", [{"identifier": "ada@example.com", "token": "hashed"}]),
    )

    # No "image": it was not given, so it is not stored, as with Auth.js's own users.
    expected_user = {
        "id": user.id,
        "name": "Ada",
        "email": "ada@example.com",
        "emailVerified": verified,
        "role": "admin",
    }
    assert by_id == by_email == by_account == expected_user
    assert session_and_user == {
        "user": expected_user,
        "session": {
            "id": session.id,
            "sessionToken": "py-tok",
            "userId": user.id,
            "expires": expires,
            "createdAt": session.created_at,
            "lastSeenAt": session.last_seen_at,
            "userAgent": "UA",
        },
    }
    assert token == {"identifier": "ada@example.com", "token": "hashed", "expires": expires}
    assert token_again is None
    assert (
        await adapter.use_verification_token(identifier="ada@example.com", token="hashed") is None
    )


async def test_a_user_is_stored_as_authjs_stores_it(
    adapter: MongoDBAdapter, mongo_db: RawDb, mongodb_url: str, mongo_db_name: str
) -> None:
    verified = later(minutes=-1)
    ours = await adapter.create_user({"email": "py@example.com", "email_verified": verified})
    (theirs,) = await _authjs(
        mongodb_url,
        mongo_db_name,
        (
            "createUser",
            [{"id": str(uuid.uuid4()), "email": "js@example.com", "emailVerified": verified}],
        ),
    )

    raw_ours = await mongo_db["users"].find_one({"_id": ObjectId(ours.id)})
    raw_theirs = await mongo_db["users"].find_one({"_id": ObjectId(theirs["id"])})
    assert raw_ours is not None and raw_theirs is not None
    assert set(raw_ours) == set(raw_theirs) == {"_id", "email", "emailVerified"}
    assert raw_ours["emailVerified"] == raw_theirs["emailVerified"]


async def test_python_reads_what_authjs_wrote(
    adapter: MongoDBAdapter, mongodb_url: str, mongo_db_name: str
) -> None:
    verified, expires = later(minutes=-1), later(days=30)
    # Auth.js hands createUser a profile whose id is a UUID; the adapter makes an ObjectId.
    created, account, session, token = await _authjs(
        mongodb_url,
        mongo_db_name,
        (
            "createUser",
            [
                {
                    "id": str(uuid.uuid4()),
                    "name": "Grace",
                    "email": "grace@example.com",
                    "image": "https://example.com/g.png",
                    "emailVerified": verified,
                }
            ],
        ),
        (
            "linkAccount",
            [
                {
                    "userId": {"$result": [0, "id"]},
                    "type": "oidc",
                    "provider": "okta",
                    "providerAccountId": "okta-42",
                    "access_token": "at",
                    "id_token": "idt",
                    "expires_at": 1_900_000_000,
                    "token_type": "bearer",
                    "scope": "openid email",
                }
            ],
        ),
        (
            "createSession",
            [{"sessionToken": "js-tok", "userId": {"$result": [0, "id"]}, "expires": expires}],
        ),
        (
            "createVerificationToken",
            [{"identifier": "grace@example.com", "token": "h", "expires": expires}],
        ),
    )
    user_id = created["id"]

    user = User(
        id=user_id,
        name="Grace",
        email="grace@example.com",
        image="https://example.com/g.png",
        email_verified=verified,
    )
    assert await adapter.get_user(user_id) == user
    assert await adapter.get_user_by_email("grace@example.com") == user
    assert await adapter.get_user_by_account(provider="okta", provider_account_id="okta-42") == user
    assert await adapter.get_account(provider="okta", provider_account_id="okta-42") == Account(
        id=str(account["_id"]),
        user_id=user_id,
        type="oidc",
        provider="okta",
        provider_account_id="okta-42",
        access_token="at",
        id_token="idt",
        expires_at=1_900_000_000,
        token_type="bearer",
        scope="openid email",
    )
    found = await adapter.get_session_and_user("js-tok")
    assert found is not None
    assert found == (
        SessionRecord(id=session["id"], session_token="js-tok", user_id=user_id, expires=expires),
        user,
    )
    assert [s.session_token for s in await adapter.list_sessions(user_id)] == ["js-tok"]
    assert token == {"identifier": "grace@example.com", "token": "h", "expires": expires}
    assert await adapter.use_verification_token(
        identifier="grace@example.com", token="h"
    ) == VerificationToken("grace@example.com", "h", expires)
    assert await adapter.delete_user(user_id) == user
    assert await adapter.get_session_and_user("js-tok") is None


# -- the session cache's part: sessions alone, and their changes ---------------------------


async def test_get_session_reads_the_session_alone(
    watched: tuple[MongoDBAdapter, _CommandLog],
) -> None:
    adapter, log = watched
    user = await make_user(adapter)
    session = await make_session(adapter, user, user_agent="Firefox")
    log.names.clear()
    assert await adapter.get_session(session.session_token) == session
    assert log.names == ["find"]
    assert await adapter.get_session("no-such-token") is None
    assert await adapter.get_session({"$ne": ""}) is None  # type: ignore[arg-type]


async def _next_change(feed: Any) -> Any:
    """The feed's next change, past its quiet waits."""
    for _ in range(20):
        change = await feed.next()
        if change is not None:
            return change
    pytest.fail("no change reported")


async def test_session_changes_name_what_changed(
    either: MongoDBAdapter,
    schema: str,
    mongo_db: RawDb,
    mongo_client: AsyncMongoClient[dict[str, Any]],
) -> None:
    from asgi_session.backends._session_cache import CLOSED, EVERYTHING, SESSION, USER, Change

    adapter, names = either, COLLECTIONS[schema]
    user = await make_user(adapter)
    session = await make_session(adapter, user)
    other = await make_session(adapter, user)
    feed = adapter.session_changes(heartbeat=0.2)
    assert await feed.open() is None
    try:
        assert await feed.next() is None, "a quiet wait says so"
        # Inserts change nothing kept, and other collections are not watched.
        await make_session(adapter, user)
        await mongo_db[names["accounts"]].insert_one({"userId": ObjectId(user.id)})
        expires = later(days=31)
        await adapter.update_session({"session_token": session.session_token, "expires": expires})
        # An extension: what it set comes along, so a cache holding it keeps its entry.
        assert await _next_change(feed) == Change(SESSION, session.id or "", {"expires": expires})
        await adapter.update_session({"session_token": session.session_token, "data": {"a": 1}})
        assert await _next_change(feed) == Change(SESSION, session.id or "")
        await adapter.delete_session(other.session_token)
        assert await _next_change(feed) == Change(SESSION, other.id or "")
        await adapter.update_user({"id": user.id, "name": "Ada L."})
        assert await _next_change(feed) == Change(USER, user.id)
        await mongo_db[names["users"]].replace_one({"_id": ObjectId(user.id)}, {"name": "Ada"})
        assert await _next_change(feed) == Change(USER, user.id)
        await mongo_db[names["sessions"]].drop()
        assert await _next_change(feed) == Change(EVERYTHING)
        await mongo_client.drop_database(mongo_db.name)
        # Each collection's drop, the database's, then the end of the stream.
        changes = [await _next_change(feed)]
        while changes[-1] != Change(CLOSED) and len(changes) < 10:
            changes.append(await _next_change(feed))
        assert changes[-1] == Change(CLOSED), changes
        assert set(changes[:-1]) == {Change(EVERYTHING)}
    finally:
        await feed.close()


async def test_session_changes_resume_where_they_stopped(either: MongoDBAdapter) -> None:
    from asgi_session.backends._session_cache import SESSION, Change

    adapter = either
    user = await make_user(adapter)
    first, second = await make_session(adapter, user), await make_session(adapter, user)
    feed = adapter.session_changes(heartbeat=0.2)
    assert await feed.open() is None
    try:
        await adapter.delete_session(first.session_token)
        assert await _next_change(feed) == Change(SESSION, first.id or "")
        await feed.close()
        # Made while nobody watched: reported once the feed is open again.
        await adapter.delete_session(second.session_token)
        assert await feed.open() is None
        assert await _next_change(feed) == Change(SESSION, second.id or "")
    finally:
        await feed.close()


async def test_session_changes_start_afresh_when_the_resume_point_is_gone(
    adapter: MongoDBAdapter, mongo_db: RawDb
) -> None:
    from asgi_session.backends._session_cache import SESSION, Change

    user = await make_user(adapter)
    session = await make_session(adapter, user)
    # A point the server's oplog has no entry for (ChangeStreamFatalError, code 280;
    # history rolled away is code 286): where a long outage leaves a feed.
    stream = await mongo_db.watch(max_await_time_ms=100)
    await adapter.delete_session((await make_session(adapter, user)).session_token)
    change = await stream.try_next()
    await stream.close()
    assert change is not None
    data = change["_id"]["_data"]
    feed = adapter.session_changes(heartbeat=0.2)
    feed._token = {"_data": data[:2] + "00000001" + "00000001" + data[18:]}  # type: ignore[attr-defined]
    assert await feed.open() is None
    try:
        await adapter.delete_session(session.session_token)
        assert await _next_change(feed) == Change(SESSION, session.id or "")
    finally:
        await feed.close()


async def test_session_changes_need_a_positive_heartbeat(adapter: MongoDBAdapter) -> None:
    with pytest.raises(ConfigurationError, match="heartbeat"):
        adapter.session_changes(heartbeat=0)


# -- Better Auth's layout ------------------------------------------------------------------
# Documents exactly as better-auth 1.7's MongoDB adapter (@better-auth/mongo-adapter)
# writes them with its default options: singular collections, ObjectId ids and user
# references, dates, a boolean emailVerified, createdAt and updatedAt on every document.


class TestBetterAuthLayoutContract(test_backends_adapter.TestAdapterContract):
    """The adapter contract (and what the package's adapters keep besides), in Better
    Auth's layout, through PyMongo and Motor.

    Better Auth's users all have an email: its unique index on ``email`` has no partial
    filter, so a second user without one could not be stored beside Better Auth.
    """

    users_need_an_email = True

    @pytest.fixture
    def adapter(self, better_auth: MongoDBAdapter) -> Adapter:
        return better_auth


def test_an_unknown_schema_is_refused_naming_the_known_ones(mongo_db: RawDb) -> None:
    for schema in ("prisma", "Better-Auth", None):
        with pytest.raises(
            ConfigurationError,
            match=r"^MongoDBAdapter\(schema=.+\) must be one of 'authjs', 'better-auth'$",
        ):
            MongoDBAdapter(mongo_db, schema=schema)  # type: ignore[arg-type]


def test_the_layout_is_named(mongo_db: RawDb) -> None:
    assert MongoDBAdapter(mongo_db).schema == "authjs"
    assert MongoDBAdapter(mongo_db, schema="authjs").schema == "authjs"
    assert MongoDBAdapter(mongo_db, schema="better-auth").schema == "better-auth"


async def test_better_auth_collections_are_its_own_and_ours_keep_their_names(
    better_auth: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(better_auth)
    await make_session(better_auth, user)
    await better_auth.link_account(account_data(user))
    await better_auth.create_verification_token(
        {"identifier": "ada@example.com", "token": "t", "expires": later(hours=1)}
    )
    await better_auth.revoke_tokens_issued_before(user.id, later())
    await better_auth.create_authenticator(_passkey(user))

    assert sorted(await mongo_db.list_collection_names()) == [
        "account",
        "authenticators",
        "revocations",
        "session",
        "user",
        "verification",
    ]


def _is_utc_now(value: Any, before: datetime) -> bool:
    """Whether a raw (naive UTC) ``value`` is a time from ``before`` to now."""
    return isinstance(value, datetime) and before <= _aware(value) <= datetime.now(UTC)


def _just_before() -> datetime:
    """Now, at the millisecond precision the store keeps, less one millisecond."""
    return later(seconds=-0.001)


async def test_better_auth_user_document(better_auth: MongoDBAdapter, mongo_db: RawDb) -> None:
    verified, before = later(minutes=-5), _just_before()

    user = await better_auth.create_user(
        {
            "name": "Ada",
            "email": "ada@example.com",
            "image": "https://example.com/ada.png",
            "email_verified": verified,
            "role": "admin",
        }
    )

    raw = await mongo_db["user"].find_one({})
    assert raw == {
        "_id": ObjectId(user.id),
        "name": "Ada",
        "email": "ada@example.com",
        "image": "https://example.com/ada.png",
        "emailVerified": True,
        "emailVerifiedAt": ANY,
        "createdAt": ANY,
        "updatedAt": ANY,
        "role": "admin",
    }
    assert type(raw["_id"]) is ObjectId and raw["emailVerified"] is True
    assert _aware(raw["emailVerifiedAt"]) == verified
    assert _is_utc_now(raw["createdAt"], before) and raw["updatedAt"] == raw["createdAt"]
    assert user.email_verified == verified and user.extra == {"role": "admin"}


async def test_a_better_auth_user_has_every_field_better_auth_requires(
    better_auth: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await better_auth.create_user({"email": "bob@example.com", "image": None})

    raw = await mongo_db["user"].find_one({})
    assert raw == {
        "_id": ObjectId(user.id),
        "name": "",
        "email": "bob@example.com",
        "image": None,
        "emailVerified": False,
        "createdAt": ANY,
        "updatedAt": ANY,
    }, "a name, a string, and emailVerified, a boolean, always: Better Auth requires them"
    assert user == User(id=user.id, email="bob@example.com")


async def test_a_better_auth_user_update_moves_updated_at_and_forgets_the_verified_time(
    better_auth: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await better_auth.create_user(
        {"name": "Ada", "email": "ada@example.com", "email_verified": later(minutes=-1)}
    )
    created = await mongo_db["user"].find_one({})
    assert created is not None
    await asyncio.sleep(0.005)

    updated = await better_auth.update_user({"id": user.id, "name": None, "email_verified": None})

    raw = await mongo_db["user"].find_one({})
    assert raw == {
        "_id": ObjectId(user.id),
        "name": "",
        "email": "ada@example.com",
        "emailVerified": False,
        "createdAt": created["createdAt"],
        "updatedAt": ANY,
    }
    assert raw["updatedAt"] > created["updatedAt"]
    assert updated == User(id=user.id, email="ada@example.com")


async def test_better_auth_account_document(better_auth: MongoDBAdapter, mongo_db: RawDb) -> None:
    user = await make_user(better_auth)
    before = _just_before()

    account = await better_auth.link_account(
        account_data(
            user, id_token="idt", session_state="st", refresh_token_expires_at=1_900_003_600
        )
    )

    raw = await mongo_db["account"].find_one({})
    assert raw == {
        "_id": ObjectId(account.id),
        "userId": ObjectId(user.id),
        "providerId": "github",
        "accountId": "gh-1",
        "accessToken": "at-1",
        "refreshToken": "rt-1",
        # 1_900_000_000 seconds since the epoch, and an hour later.
        "accessTokenExpiresAt": datetime(2030, 3, 17, 17, 46, 40),
        "refreshTokenExpiresAt": datetime(2030, 3, 17, 18, 46, 40),
        "scope": "read:user",
        "idToken": "idt",
        # What Better Auth has no field for keeps Auth.js's name.
        "type": "oauth",
        "token_type": "bearer",
        "session_state": "st",
        "createdAt": ANY,
        "updatedAt": ANY,
    }
    assert type(raw["userId"]) is ObjectId
    assert _is_utc_now(raw["createdAt"], before) and raw["updatedAt"] == raw["createdAt"]
    assert account.expires_at == 1_900_000_000 and isinstance(account.expires_at, int)
    assert account.extra == {"refresh_token_expires_at": 1_900_003_600}


async def test_an_account_update_moves_updated_at(
    better_auth: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(better_auth)
    await better_auth.link_account(account_data(user))
    linked = await mongo_db["account"].find_one({})
    assert linked is not None
    await asyncio.sleep(0.005)

    updated = await better_auth.update_account(
        provider="github",
        provider_account_id="gh-1",
        data={"access_token": "at-2", "expires_at": 1_900_000_000.5},
    )

    raw = await mongo_db["account"].find_one({})
    assert raw is not None
    assert (raw["accessToken"], raw["accessTokenExpiresAt"]) == (
        "at-2",
        datetime(2030, 3, 17, 17, 46, 40, 500000),
    )
    assert raw["createdAt"] == linked["createdAt"] and raw["updatedAt"] > linked["updatedAt"]
    assert updated is not None and updated.expires_at == 1_900_000_000.5


# A hash as Better Auth's scrypt writes it (salt:key, hex), for an account to hold.
BETTER_AUTH_HASH = (
    "c8b51e4389830b01aa5917ea80ca04cc:02344b49036725f83ef2592fe6f0d7de27725931145d1fe0226579d2e"
    "10a82a1281d1fc030fbd346a15a38aebee3f23a27659243c56b46174652b03b64ef910a"
)


async def test_a_password_account_is_better_auths_credential_account(
    better_auth: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(better_auth)

    # As the Password provider links one: the user's id as the account id.
    account = await better_auth.link_account(
        {
            "user_id": user.id,
            "type": "credentials",
            "provider": "password",
            "provider_account_id": user.id,
            "password": BETTER_AUTH_HASH,
        }
    )

    raw = await mongo_db["account"].find_one({})
    assert raw == {
        "_id": ObjectId(account.id),
        "userId": ObjectId(user.id),
        "providerId": "credential",
        "accountId": user.id,
        "password": BETTER_AUTH_HASH,
        "type": "credentials",
        "createdAt": ANY,
        "updatedAt": ANY,
    }
    assert type(raw["accountId"]) is str, "Better Auth's accountId is a string, not a reference"
    assert (account.provider, account.extra) == ("password", {"password": BETTER_AUTH_HASH})
    by_account = better_auth.get_user_by_account
    assert await by_account(provider="password", provider_account_id=user.id) == user
    # Better Auth's name is one of the two, not a provider of its own.
    assert await by_account(provider="credential", provider_account_id=user.id) is None
    assert await better_auth.get_account(provider="credential", provider_account_id=user.id) is None
    with pytest.raises(
        ValueError, match="'credential' is what Better Auth calls password accounts"
    ):
        await better_auth.link_account(
            {**account_data(user, "x"), "provider": "credential", "type": "credentials"}
        )


async def test_better_auth_session_document(better_auth: MongoDBAdapter, mongo_db: RawDb) -> None:
    user = await make_user(better_auth)
    expires, created_at = later(days=7), later(seconds=-1)

    session = await better_auth.create_session(
        {
            "session_token": "tok-1",
            "user_id": user.id,
            "expires": expires,
            "created_at": created_at,
            "user_agent": "Firefox",
            "ip_address": "203.0.113.7",
        }
    )

    raw = await mongo_db["session"].find_one({})
    assert raw == {
        "_id": ObjectId(session.id),
        "token": "tok-1",
        "userId": ObjectId(user.id),
        "expiresAt": ANY,
        "createdAt": ANY,
        "updatedAt": ANY,
        "userAgent": "Firefox",
        "ipAddress": "203.0.113.7",
    }
    assert type(raw["userId"]) is ObjectId
    assert _aware(raw["expiresAt"]) == expires
    assert _aware(raw["createdAt"]) == _aware(raw["updatedAt"]) == created_at
    assert session.extra == {"ip_address": "203.0.113.7"}
    seen = later()
    updated = await better_auth.update_session({"session_token": "tok-1", "last_seen_at": seen})
    raw = await mongo_db["session"].find_one({})
    assert raw is not None and _aware(raw["updatedAt"]) == seen, "last seen: updatedAt"
    assert updated is not None and updated.last_seen_at == seen


async def test_better_auth_verification_document(
    better_auth: MongoDBAdapter, mongo_db: RawDb
) -> None:
    expires, before = later(hours=1), _just_before()

    await better_auth.create_verification_token(
        {"identifier": "ada@example.com", "token": "hashed", "expires": expires}
    )

    raw = await mongo_db["verification"].find_one({})
    assert raw == {
        "_id": ANY,
        "identifier": "ada@example.com",
        "value": "hashed",
        "expiresAt": ANY,
        "createdAt": ANY,
        "updatedAt": ANY,
    }
    assert type(raw["_id"]) is ObjectId and _aware(raw["expiresAt"]) == expires
    assert _is_utc_now(raw["createdAt"], before) and raw["updatedAt"] == raw["createdAt"]


async def test_documents_as_better_auth_writes_them_are_read(
    better_auth: MongoDBAdapter, mongo_db: RawDb
) -> None:
    # As better-auth wrote them on sign-up with a password, then on verifying the email
    # (emailVerified true, no time kept), linking GitHub and asking for a password reset.
    uid, sid, other = ObjectId(), ObjectId(), ObjectId()
    # Times to the millisecond, as BSON keeps them; the expiry ahead, or the server's
    # TTL monitor could delete the documents before they are read.
    created = datetime.now(UTC).replace(microsecond=430000) - timedelta(days=1)
    verified = created + timedelta(minutes=3)
    expires = created + timedelta(days=7, milliseconds=7)
    await mongo_db["user"].insert_many(
        [
            {
                "_id": uid,
                "name": "Ada",
                "email": "ada@example.com",
                "emailVerified": True,
                "createdAt": created,
                "updatedAt": verified,
            },
            {
                "_id": other,
                "name": "Bob",
                "email": "bob@example.com",
                "emailVerified": False,
                "image": None,
                "createdAt": created,
                "updatedAt": created,
            },
        ]
    )
    await mongo_db["account"].insert_many(
        [
            {
                "_id": ObjectId(),
                "accountId": str(uid),
                "providerId": "credential",
                "userId": uid,
                "password": BETTER_AUTH_HASH,
                "createdAt": created,
                "updatedAt": created,
            },
            {
                "_id": ObjectId(),
                "accountId": "583231",
                "providerId": "github",
                "userId": uid,
                "accessToken": "gho_1",
                "accessTokenExpiresAt": datetime(2030, 3, 17, 17, 46, 40, tzinfo=UTC),
                "scope": "read:user,user:email",
                "createdAt": created,
                "updatedAt": created,
            },
        ]
    )
    await mongo_db["session"].insert_one(
        {
            "_id": sid,
            "expiresAt": expires,
            "token": "825ncvDSYSbUE0ACsDkWjVeafrvbCEvz",
            "createdAt": created,
            "updatedAt": created,
            "ipAddress": "",
            "userAgent": "UA",
            "userId": uid,
        }
    )
    await mongo_db["verification"].insert_one(
        {
            "_id": ObjectId(),
            "identifier": "reset-password:abc",
            "value": str(uid),
            "expiresAt": expires,
            "createdAt": created,
            "updatedAt": created,
        }
    )

    # Verified by Better Auth, which keeps no time: when it last wrote the user.
    ada = User(id=str(uid), name="Ada", email="ada@example.com", email_verified=verified)
    assert await better_auth.get_user(str(uid)) == ada
    assert await better_auth.get_user_by_email("ada@example.com") == ada
    assert await better_auth.get_user(str(other)) == User(
        id=str(other), name="Bob", email="bob@example.com"
    )
    by_account = better_auth.get_user_by_account
    assert await by_account(provider="password", provider_account_id=str(uid)) == ada
    assert await by_account(provider="github", provider_account_id="583231") == ada
    password = await better_auth.get_account(provider="password", provider_account_id=str(uid))
    assert password is not None and password == Account(
        id=password.id,
        user_id=str(uid),
        type="credentials",
        provider="password",
        provider_account_id=str(uid),
        extra={"password": BETTER_AUTH_HASH},
    )
    github = await better_auth.get_account(provider="github", provider_account_id="583231")
    assert github is not None and github == Account(
        id=github.id,
        user_id=str(uid),
        type="oauth",
        provider="github",
        provider_account_id="583231",
        access_token="gho_1",
        expires_at=1_900_000_000,
        # Better Auth's comma-joined scopes, read as OAuth 2 spells them.
        scope="read:user user:email",
    )
    session = SessionRecord(
        id=str(sid),
        session_token="825ncvDSYSbUE0ACsDkWjVeafrvbCEvz",
        user_id=str(uid),
        expires=expires,
        created_at=created,
        last_seen_at=created,
        user_agent="UA",
        extra={"ip_address": ""},
    )
    assert await better_auth.get_session_and_user(session.session_token) == (session, ada)
    assert await better_auth.list_sessions(str(uid)) == [session]
    assert await better_auth.use_verification_token(
        identifier="reset-password:abc", token=str(uid)
    ) == VerificationToken("reset-password:abc", str(uid), expires)
    assert await better_auth.delete_user(str(uid)) == ada
    assert await mongo_db["account"].count_documents({}) == 0
    assert await mongo_db["session"].count_documents({}) == 0


async def test_what_better_auths_layout_cannot_store_is_refused(
    better_auth: MongoDBAdapter, mongo_db: RawDb
) -> None:
    user = await make_user(better_auth)
    session = {"session_token": "t", "user_id": user.id, "expires": later(days=1)}

    # Extras under a name the layout stores another field under would overwrite it.
    with pytest.raises(ValueError, match=r"^a session's expiresAt is a field this layout keeps"):
        await better_auth.create_session({**session, "expiresAt": later()})
    with pytest.raises(ValueError, match=r"^a user's updatedAt is a field this layout keeps"):
        await better_auth.update_user({"id": user.id, "updatedAt": later()})
    with pytest.raises(ValueError, match=r"^a user's emailVerifiedAt is a field this layout keeps"):
        await better_auth.create_user({"email": "e@example.com", "emailVerifiedAt": later()})
    with pytest.raises(ValueError, match=r"^an account's accountId is a field this layout keeps"):
        await better_auth.link_account(account_data(user, accountId="x"))
    # A date is what Better Auth keeps: seconds are all that can become one.
    for expires_at in ("soon", True, 10.0**20):
        with pytest.raises(ValueError, match=r"^an account's expires_at must be a number of"):
            await better_auth.link_account(account_data(user, expires_at=expires_at))
    with pytest.raises(ValueError, match=r"^a user's email must be a string$"):
        await better_auth.create_user({"email": 7})
    with pytest.raises(ValueError, match=r"^a session's last_seen_at cannot be None$"):
        await better_auth.update_session({"session_token": "x", "last_seen_at": None})

    assert await mongo_db["user"].count_documents({}) == 1
    assert await mongo_db["session"].count_documents({}) == 0
    assert await mongo_db["account"].count_documents({}) == 0


EXPECTED_BETTER_AUTH_INDEXES = {
    # Better Auth's, as its adapter makes them when it starts: same names, same options.
    "user.user_email_uidx": {"key": [("email", 1)], "unique": True},
    "account.account_userId_idx": {"key": [("userId", 1)]},
    "session.session_token_uidx": {"key": [("token", 1)], "unique": True},
    "session.session_userId_idx": {"key": [("userId", 1)]},
    "verification.verification_identifier_idx": {"key": [("identifier", 1)]},
    # Ours besides.
    "account.providerId_1_accountId_1": {
        "key": [("providerId", 1), ("accountId", 1)],
        "unique": True,
    },
    "session.expiresAt_1": {"key": [("expiresAt", 1)], "expireAfterSeconds": 0},
    "verification.identifier_1_value_1": {
        "key": [("identifier", 1), ("value", 1)],
        "unique": True,
    },
    "verification.expiresAt_1": {"key": [("expiresAt", 1)], "expireAfterSeconds": 0},
    "authenticators.credentialID_1": {"key": [("credentialID", 1)], "unique": True},
    "authenticators.userId_1": {"key": [("userId", 1)]},
}


async def test_better_auth_indexes(better_auth: MongoDBAdapter, mongo_db: RawDb) -> None:
    await better_auth.ensure_indexes()
    await better_auth.ensure_indexes()

    summary = await _index_summary(mongo_db, COLLECTIONS["better-auth"])
    assert summary == EXPECTED_BETTER_AUTH_INDEXES


async def test_better_auth_index_names_follow_the_collections(mongo_db: RawDb) -> None:
    # Better Auth's usePlural: its index names are made from the collection names.
    plural = {
        "users": "users",
        "accounts": "accounts",
        "sessions": "sessions",
        "verification_tokens": "verifications",
    }
    adapter = MongoDBAdapter(mongo_db, schema="better-auth", collections=plural)
    await adapter.ensure_indexes()

    summary = await _index_summary(mongo_db, {**COLLECTIONS["better-auth"], **plural})
    assert {name for name in summary if "idx" in name} == {
        "users.users_email_uidx",
        "accounts.accounts_userId_idx",
        "sessions.sessions_token_uidx",
        "sessions.sessions_userId_idx",
        "verifications.verifications_identifier_idx",
    }


@pytest.mark.parametrize(
    ("collection", "field", "unique", "name"),
    [
        ("user", "email", True, "user_email_uidx"),
        ("session", "userId", False, "session_userId_idx"),
        (
            "an_application_of_ours_whose_users_live_in_here",
            "email",
            True,
            "an_application_of_ours_whose_users_live_in_here_email_uidx",
        ),
        # Over 63 bytes: cut (never inside a character) and told apart by a hash, as
        # Better Auth's getDatabaseFieldIndexName gives them.
        (
            "sessions_of_an_application_named_at_great_length_für_tests",
            "userId",
            False,
            "sessions_of_an_application_named_at_great_length_f_21191406_idx",
        ),
    ],
)
def test_index_names_are_better_auths(collection: str, field: str, unique: bool, name: str) -> None:
    assert _index_name(collection, field, unique=unique) == name


async def test_a_better_auth_index_name_in_a_duplicate_key_message_names_its_field(
    better_auth: MongoDBAdapter,
) -> None:
    # What a server that gives no keyPattern says: the index's name.
    error = _duplicate_key_error({"errmsg": "E11000 ... index: user_email_uidx dup key"})

    async def collide() -> None:
        raise error

    with pytest.raises(DuplicateRecordError, match=r"^a user with this email already exists$"):
        await better_auth._run(
            collide, duplicate={"email": "a user with this email already exists"}
        )


async def test_better_auths_session_refresh_is_an_extension_to_the_change_feed(
    better_auth: MongoDBAdapter, mongo_db: RawDb
) -> None:
    from asgi_session.backends._session_cache import SESSION, Change

    user = await make_user(better_auth)
    session = await make_session(better_auth, user)
    feed = better_auth.session_changes(heartbeat=0.2)
    assert await feed.open() is None
    try:
        # What Better Auth's updateSession writes when it pushes the expiry back.
        expires, now = later(days=7), later()
        await mongo_db["session"].update_one(
            {"_id": ObjectId(session.id)}, {"$set": {"expiresAt": expires, "updatedAt": now}}
        )
        assert await _next_change(feed) == Change(
            SESSION, session.id or "", {"expires": expires, "last_seen_at": now}
        )
        await mongo_db["session"].update_one(
            {"_id": ObjectId(session.id)}, {"$set": {"ipAddress": "203.0.113.7"}}
        )
        assert await _next_change(feed) == Change(SESSION, session.id or "")
    finally:
        await feed.close()


# -- interoperability with Better Auth itself ----------------------------------------------
# better-auth (and its MongoDB adapter) in Node, on the test's database: what each side
# writes, the other reads. The script is short enough to live here, run from tests/node,
# where the packages are.

_BETTER_AUTH_PEER = r"""
import { MongoClient } from "mongodb";
import { betterAuth } from "better-auth";
import { mongodbAdapter } from "better-auth/adapters/mongodb";

const request = JSON.parse(process.argv[1]);
// Better Auth logs through the console: kept, to tell whether its indexes were made.
const logged = [];
for (const level of ["log", "info", "warn", "error"]) {
  console[level] = (...args) => logged.push(args.map(String).join(" "));
}
const client = new MongoClient(request.url);
await client.connect();
try {
  const auth = betterAuth({
    database: mongodbAdapter(client.db(request.database)),
    secret: "a-test-secret-of-enough-length-for-better-auth-0123456789",
    baseURL: "http://localhost:3000",
    emailAndPassword: { enabled: true },
  });
  const ctx = await auth.$context;
  const internal = ctx.internalAdapter;
  const python = request.python;
  const read = {
    byEmail: await internal.findUserByEmail(python.email, { includeAccounts: true }),
    session: await internal.findSession(python.token),
    credential: await internal.findCredentialAccount(python.userId),
    verification: await internal.findVerificationValue(python.identifier),
  };
  // A session Python made, its expiry pushed back as Better Auth does on use.
  await internal.updateSession(python.token, { expiresAt: new Date(request.extendTo) });
  const signedUp = await auth.api.signUpEmail({
    body: { email: "grace@example.com", password: "correct horse battery staple", name: "Grace" },
    headers: new Headers({ "user-agent": "Node" }),
  });
  const grace = signedUp.user.id;
  await internal.updateUser(grace, { emailVerified: true });
  await internal.linkAccount({
    userId: grace,
    providerId: "github",
    accountId: "gh-grace",
    accessToken: "gho_2",
    accessTokenExpiresAt: new Date(1900000000000),
    scope: "read:user",
  });
  await internal.createVerificationValue({
    identifier: "reset-password:grace",
    value: grace,
    expiresAt: new Date(request.extendTo),
  });
  // Its own indexes are made in the background: give them time to report trouble.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const wrote = { userId: grace, token: signedUp.token };
  process.stdout.write(JSON.stringify({ read, wrote, logged }));
} finally {
  await client.close();
}
"""


def _run_better_auth(request: dict[str, Any]) -> Any:
    completed = subprocess.run(
        [node_binary(), "--input-type=module", "-e", _BETTER_AUTH_PEER, json.dumps(request)],
        capture_output=True,
        text=True,
        cwd=NODE_PROJECT_DIR,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def _js_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_better_auth_and_python_read_what_the_other_wrote(
    better_auth: MongoDBAdapter, mongodb_url: str, mongo_db_name: str
) -> None:
    from asgi_session.backends._session_cache import SESSION

    await better_auth.ensure_indexes()  # made first, Better Auth's own then are no-ops
    verified = later(minutes=-1)
    user = await better_auth.create_user(
        {"name": "Ada", "email": "ada@example.com", "email_verified": verified, "role": "admin"}
    )
    await better_auth.link_account(account_data(user))
    await better_auth.link_account(
        {
            "user_id": user.id,
            "type": "credentials",
            "provider": "password",
            "provider_account_id": user.id,
            "password": BETTER_AUTH_HASH,
        }
    )
    session = await make_session(
        better_auth, user, "py-tok", user_agent="Firefox", ip_address="203.0.113.7"
    )
    await better_auth.create_verification_token(
        {"identifier": "reset-password:ada", "token": user.id, "expires": later(hours=1)}
    )
    extend_to = later(days=60)
    feed = better_auth.session_changes(heartbeat=0.2)
    assert await feed.open() is None
    try:
        answer = await asyncio.to_thread(
            _run_better_auth,
            {
                "url": mongodb_url,
                "database": mongo_db_name,
                "extendTo": extend_to.isoformat(),
                "python": {
                    "email": "ada@example.com",
                    "userId": user.id,
                    "token": "py-tok",
                    "identifier": "reset-password:ada",
                },
            },
        )
        # Better Auth's refresh of the session: an extension, which a cache keeps.
        change = await _next_change(feed)
    finally:
        await feed.close()

    assert not [line for line in answer["logged"] if "index" in line.lower()], answer["logged"]
    read = answer["read"]
    ada = read["byEmail"]["user"]
    assert (ada["id"], ada["name"], ada["email"], ada["emailVerified"]) == (
        user.id,
        "Ada",
        "ada@example.com",
        True,
    )
    assert sorted((a["providerId"], a["accountId"]) for a in read["byEmail"]["accounts"]) == [
        ("credential", user.id),
        ("github", "gh-1"),
    ]
    assert read["session"]["user"]["id"] == user.id
    found = read["session"]["session"]
    assert (found["id"], found["token"], found["userId"]) == (session.id, "py-tok", user.id)
    assert (found["userAgent"], found["ipAddress"]) == ("Firefox", "203.0.113.7")
    assert _js_time(found["expiresAt"]) == session.expires
    assert read["credential"]["password"] == BETTER_AUTH_HASH
    assert read["verification"]["value"] == user.id
    # Better Auth sets expiresAt, and updatedAt (last seen) to its own clock's now.
    assert (change.kind, change.id) == (SESSION, session.id)
    assert change.touched is not None and set(change.touched) == {"expires", "last_seen_at"}
    assert change.touched["expires"] == extend_to
    refreshed = await better_auth.get_session("py-tok")
    assert refreshed is not None and refreshed.expires == extend_to

    wrote = answer["wrote"]
    grace = await better_auth.get_user_by_email("grace@example.com")
    assert grace is not None and (grace.id, grace.name) == (wrote["userId"], "Grace")
    assert grace.email_verified is not None, "verified by Better Auth"
    password = await better_auth.get_account(provider="password", provider_account_id=grace.id)
    assert password is not None and password.type == "credentials"
    assert str(password.extra["password"]).count(":") == 1, "Better Auth's scrypt salt:key"
    github = await better_auth.get_account(provider="github", provider_account_id="gh-grace")
    assert github is not None and (github.user_id, github.expires_at) == (grace.id, 1_900_000_000)
    signed_in = await better_auth.get_session_and_user(wrote["token"])
    assert signed_in is not None and signed_in[1] == grace
    assert signed_in[0].user_agent == "Node"
    reset = await better_auth.use_verification_token(
        identifier="reset-password:grace", token=grace.id
    )
    assert reset is not None


async def test_indexes_better_auth_made_first_are_the_adapters_too(
    better_auth: MongoDBAdapter, mongo_db: RawDb, mongodb_url: str, mongo_db_name: str
) -> None:
    # Better Auth starts first on an empty database, making its indexes (and a user).
    nobody = {"email": "nobody@example.com", "userId": str(ObjectId()), "token": "none"}
    answer = await asyncio.to_thread(
        _run_better_auth,
        {
            "url": mongodb_url,
            "database": mongo_db_name,
            "extendTo": later(days=1).isoformat(),
            "python": {**nobody, "identifier": "none"},
        },
    )
    assert answer["read"]["byEmail"] is None and answer["logged"] == []

    await better_auth.ensure_indexes()

    summary = await _index_summary(mongo_db, COLLECTIONS["better-auth"])
    assert summary == EXPECTED_BETTER_AUTH_INDEXES
