"""MongoDBAdapter against a real mongod, through PyMongo's async client and Motor.

These are what is particular to MongoDB: the documents it stores (Auth.js's shapes),
indexes, TTL expiry, outages, round trips and interoperability with Auth.js. The
contract every adapter keeps is tested in test_backends_adapter.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any
from unittest.mock import ANY

import pytest
from bson import ObjectId
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from asgi_session.backends.mongodb import MongoDBAdapter, _duplicate_key
from asgi_session.errors import BackendUnavailableError, ConfigurationError, DuplicateRecordError
from asgi_session.models import Account, Authenticator, SessionRecord, User, VerificationToken
from tests.support.mongod import MongodServer
from tests.support.node import run_node_script
from tests.support.records import account_data, later, make_session, make_user

RawDb = AsyncDatabase[dict[str, Any]]


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


@pytest.fixture
async def watched(
    client_kind: str, mongodb_url: str, mongo_db_name: str
) -> AsyncIterator[tuple[MongoDBAdapter, _CommandLog]]:
    """A backend on its own client whose commands are recorded."""
    log = _CommandLog()
    client = _make_client(client_kind, mongodb_url, event_listeners=[log])
    try:
        yield MongoDBAdapter(client[mongo_db_name]), log
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


async def _index_summary(db: RawDb) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for collection in ("users", "accounts", "sessions", "verification_tokens", "authenticators"):
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
    adapter: MongoDBAdapter, mongo_db: RawDb, mongo_client: AsyncMongoClient[dict[str, Any]]
) -> None:
    # The fixture's mongod runs the monitor every second; make sure a MONGODB_URL
    # server does too.
    await mongo_client.admin.command({"setParameter": 1, "ttlMonitorSleepSecs": 1})
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
        sessions = await mongo_db["sessions"].distinct("sessionToken")
        tokens = await mongo_db["verification_tokens"].distinct("token")
        if sessions == ["valid"] and tokens == ["new"]:
            break
        await asyncio.sleep(0.2)

    assert await mongo_db["sessions"].distinct("sessionToken") == ["valid"]
    assert await mongo_db["verification_tokens"].distinct("token") == ["new"]


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
    adapter: MongoDBAdapter, mongo_db: RawDb, mongo_client: AsyncMongoClient[dict[str, Any]]
) -> None:
    from asgi_session.backends._session_cache import CLOSED, EVERYTHING, SESSION, USER, Change

    user = await make_user(adapter)
    session = await make_session(adapter, user)
    other = await make_session(adapter, user)
    feed = adapter.session_changes(heartbeat=0.2)
    assert await feed.open() is None
    try:
        assert await feed.next() is None, "a quiet wait says so"
        # Inserts change nothing kept, and other collections are not watched.
        await make_session(adapter, user)
        await mongo_db["accounts"].insert_one({"userId": ObjectId(user.id)})
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
        await mongo_db["users"].replace_one({"_id": ObjectId(user.id)}, {"name": "Ada"})
        assert await _next_change(feed) == Change(USER, user.id)
        await mongo_db["sessions"].drop()
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


async def test_session_changes_resume_where_they_stopped(adapter: MongoDBAdapter) -> None:
    from asgi_session.backends._session_cache import SESSION, Change

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
