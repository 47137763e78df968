"""MongoDBBackend against a real mongod, through PyMongo's async client and Motor."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from bson import ObjectId
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from asgi_session.backends.base import Adapter
from asgi_session.backends.mongodb import DuplicateRecordError, MongoDBBackend
from asgi_session.errors import BackendUnavailableError, ConfigurationError
from asgi_session.models import Account, SessionRecord, User, VerificationToken
from tests.support.mongod import MongodServer
from tests.support.node import run_node_script

RawDb = AsyncDatabase[dict[str, Any]]

MALFORMED_IDS = ["", "nope", "0" * 23, "0" * 25, "g" * 24, "abcdefghijkl", "../../etc"]


def _later(**delta: float) -> datetime:
    """A time from now, at the millisecond precision MongoDB keeps."""
    moment = datetime.now(UTC) + timedelta(**delta)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _aware(value: datetime) -> datetime:
    """A raw PyMongo read gives naive UTC datetimes."""
    assert value.tzinfo is None
    return value.replace(tzinfo=UTC)


async def _user(adapter: MongoDBBackend, email: str = "ada@example.com", **more: Any) -> User:
    return await adapter.create_user({"name": "Ada", "email": email, **more})


async def _session(
    adapter: MongoDBBackend, user: User, token: str | None = None, **more: Any
) -> SessionRecord:
    return await adapter.create_session(
        {
            "session_token": token or uuid.uuid4().hex,
            "user_id": user.id,
            "expires": _later(days=30),
            **more,
        }
    )


def _account_data(user: User, provider_account_id: str = "gh-1", **more: Any) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "type": "oauth",
        "provider": "github",
        "provider_account_id": provider_account_id,
        "access_token": "at-1",
        "refresh_token": "rt-1",
        "expires_at": 1_900_000_000,
        "token_type": "bearer",
        "scope": "read:user",
        **more,
    }


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
) -> AsyncIterator[tuple[MongoDBBackend, _CommandLog]]:
    """A backend on its own client whose commands are recorded."""
    log = _CommandLog()
    client = _make_client(client_kind, mongodb_url, event_listeners=[log])
    try:
        yield MongoDBBackend(client[mongo_db_name]), log
    finally:
        await _close(client)


# -- contract ----------------------------------------------------------------------------


def test_backend_satisfies_the_adapter_protocol(adapter: MongoDBBackend) -> None:
    assert isinstance(adapter, Adapter)


def test_a_client_instead_of_a_database_is_refused(
    mongo_client: AsyncMongoClient[dict[str, Any]],
    motor_client: AsyncIOMotorClient[dict[str, Any]],
) -> None:
    for client in (mongo_client, motor_client):
        with pytest.raises(ConfigurationError, match="needs a database"):
            MongoDBBackend(client)


def test_unknown_collection_key_is_refused(mongo_db: RawDb) -> None:
    with pytest.raises(ConfigurationError, match="unknown collection 'people'"):
        MongoDBBackend(mongo_db, collections={"people": "folks"})


async def test_collections_can_be_renamed(mongo_db: RawDb) -> None:
    adapter = MongoDBBackend(
        mongo_db, collections={"users": "people", "sessions": "logins", "revocations": "revoked"}
    )
    user = await _user(adapter)
    await _session(adapter, user, "tok")
    await adapter.revoke_tokens_issued_before(user.id, _later())

    assert await mongo_db["people"].count_documents({}) == 1
    assert await mongo_db["logins"].count_documents({"sessionToken": "tok"}) == 1
    assert await mongo_db["revoked"].count_documents({}) == 1
    assert await mongo_db["users"].count_documents({}) == 0
    found = await adapter.get_session_and_user("tok")
    assert found is not None and found[1].id == user.id


# -- users -------------------------------------------------------------------------------


async def test_create_user_stores_the_authjs_document(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    verified = _later(minutes=-5)
    user = await adapter.create_user(
        {
            "name": "Ada",
            "email": "ada@example.com",
            "image": "https://example.com/ada.png",
            "email_verified": verified,
            "role": "admin",
        }
    )

    assert user == User(
        id=user.id,
        name="Ada",
        email="ada@example.com",
        image="https://example.com/ada.png",
        email_verified=verified,
        extra={"role": "admin"},
    )
    raw = await mongo_db["users"].find_one({})
    assert raw is not None
    assert set(raw) == {"_id", "name", "email", "image", "emailVerified", "role"}
    assert isinstance(raw["_id"], ObjectId) and str(raw["_id"]) == user.id
    assert _aware(raw["emailVerified"]) == verified
    assert raw["role"] == "admin"


async def test_create_user_absent_fields_are_none_and_stored_as_null(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    user = await adapter.create_user({"email": "bob@example.com"})

    assert (user.name, user.image, user.email_verified, user.extra) == (None, None, None, {})
    raw = await mongo_db["users"].find_one({"_id": ObjectId(user.id)})
    assert raw is not None
    assert raw["emailVerified"] is None and raw["name"] is None


async def test_create_user_keeps_a_valid_object_id_and_replaces_others(
    adapter: MongoDBBackend,
) -> None:
    chosen = str(ObjectId())
    kept = await adapter.create_user({"id": chosen, "email": "a@example.com"})
    replaced = await adapter.create_user({"id": str(uuid.uuid4()), "email": "b@example.com"})

    assert kept.id == chosen
    assert ObjectId.is_valid(replaced.id) and len(replaced.id) == 24


async def test_create_user_accepts_the_record_type(adapter: MongoDBBackend) -> None:
    user = await adapter.create_user(
        User(id="", name="Cy", email="cy@example.com", extra={"locale": "fr"})
    )

    assert await adapter.get_user(user.id) == user
    assert user.extra == {"locale": "fr"}


async def test_returned_datetimes_are_aware_utc(adapter: MongoDBBackend) -> None:
    paris = timezone(timedelta(hours=2))
    verified = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=paris)
    created = await adapter.create_user({"email": "d@example.com", "email_verified": verified})
    read = await adapter.get_user(created.id)

    assert read is not None and read.email_verified is not None
    for value in (created.email_verified, read.email_verified):
        assert value is not None
        assert value.utcoffset() == timedelta(0)
        assert value == datetime(2024, 5, 1, 10, 30, 15, 123000, tzinfo=UTC)


async def test_get_user_and_get_user_by_email(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)

    assert await adapter.get_user(user.id) == user
    assert await adapter.get_user_by_email("ada@example.com") == user
    assert await adapter.get_user(str(ObjectId())) is None
    assert await adapter.get_user_by_email("nobody@example.com") is None


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
async def test_malformed_ids_are_none(adapter: MongoDBBackend, bad_id: str) -> None:
    await _user(adapter)

    assert await adapter.get_user(bad_id) is None
    assert await adapter.update_user({"id": bad_id, "name": "x"}) is None
    assert await adapter.delete_user(bad_id) is None
    assert await adapter.list_sessions(bad_id) == []
    assert await adapter.delete_sessions(bad_id) == 0


async def test_query_operators_in_place_of_strings_match_nothing(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)
    await _session(adapter, user)
    await adapter.link_account(_account_data(user))
    operator: Any = {"$ne": ""}

    assert await adapter.get_user_by_email(operator) is None
    assert await adapter.get_session_and_user(operator) is None
    assert (
        await adapter.get_user_by_account(provider=operator, provider_account_id=operator) is None
    )
    assert await adapter.delete_session(operator) is None
    assert await adapter.use_verification_token(identifier=operator, token=operator) is None


async def test_update_user_sets_only_given_fields(adapter: MongoDBBackend) -> None:
    user = await _user(adapter, image="https://example.com/a.png")
    verified = _later()

    updated = await adapter.update_user(
        {"id": user.id, "name": "Ada L.", "email_verified": verified, "plan": "pro"}
    )

    assert updated == User(
        id=user.id,
        name="Ada L.",
        email="ada@example.com",
        image="https://example.com/a.png",
        email_verified=verified,
        extra={"plan": "pro"},
    )
    assert await adapter.get_user(user.id) == updated
    assert await adapter.update_user({"id": str(ObjectId()), "name": "x"}) is None


async def test_update_user_to_a_taken_email_raises(adapter: MongoDBBackend) -> None:
    await _user(adapter, "one@example.com")
    second = await _user(adapter, "two@example.com")

    with pytest.raises(DuplicateRecordError, match="email"):
        await adapter.update_user({"id": second.id, "email": "one@example.com"})


async def test_create_user_with_a_taken_email_raises(adapter: MongoDBBackend) -> None:
    await _user(adapter)

    with pytest.raises(DuplicateRecordError, match="email"):
        await _user(adapter)


async def test_many_users_may_have_no_email(adapter: MongoDBBackend, mongo_db: RawDb) -> None:
    await adapter.create_user({"name": "one"})
    await adapter.create_user({"name": "two", "email": None})

    assert await mongo_db["users"].count_documents({}) == 2


async def test_concurrent_create_user_with_one_email_makes_one_user(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    # The adapter is fresh: the unique index is created by these very calls.
    results = await asyncio.gather(
        *(_user(adapter, "race@example.com", name=f"n{i}") for i in range(20)),
        return_exceptions=True,
    )

    created = [result for result in results if isinstance(result, User)]
    refused = [result for result in results if isinstance(result, DuplicateRecordError)]
    assert len(created) == 1
    assert len(refused) == 19
    assert await mongo_db["users"].count_documents({"email": "race@example.com"}) == 1


async def test_delete_user_removes_their_sessions_and_accounts(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    user = await _user(adapter)
    other = await _user(adapter, "other@example.com")
    await _session(adapter, user, "mine")
    await _session(adapter, other, "theirs")
    await adapter.link_account(_account_data(user, "gh-mine"))
    await adapter.link_account(_account_data(other, "gh-theirs"))

    deleted = await adapter.delete_user(user.id)

    assert deleted == user
    assert await adapter.get_user(user.id) is None
    assert await adapter.get_session_and_user("mine") is None
    assert await adapter.get_account(provider="github", provider_account_id="gh-mine") is None
    assert await mongo_db["sessions"].count_documents({}) == 1
    assert await mongo_db["accounts"].count_documents({}) == 1
    assert await adapter.get_session_and_user("theirs") is not None
    assert await adapter.delete_user(user.id) is None


# -- accounts ----------------------------------------------------------------------------


async def test_link_account_stores_the_authjs_document(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    user = await _user(adapter)

    account = await adapter.link_account(
        _account_data(user, id_token="idt", session_state="st", refresh_token_expires_in=3600)
    )

    assert account == Account(
        id=account.id,
        user_id=user.id,
        type="oauth",
        provider="github",
        provider_account_id="gh-1",
        access_token="at-1",
        refresh_token="rt-1",
        expires_at=1_900_000_000,
        token_type="bearer",
        scope="read:user",
        id_token="idt",
        session_state="st",
        extra={"refresh_token_expires_in": 3600},
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


async def test_link_account_accepts_the_record_type(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)
    record = Account(user_id=user.id, type="oidc", provider="okta", provider_account_id="x")

    account = await adapter.link_account(record)

    assert account.id is not None
    assert await adapter.get_account(provider="okta", provider_account_id="x") == account


async def test_linking_the_same_provider_account_twice_raises(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)
    await adapter.link_account(_account_data(user))

    with pytest.raises(DuplicateRecordError, match="already linked"):
        await adapter.link_account(_account_data(user))


async def test_link_account_needs_a_valid_user_id(adapter: MongoDBBackend) -> None:
    with pytest.raises(ValueError, match="not a valid id"):
        await adapter.link_account({**_account_data(User(id="u")), "user_id": "not-an-id"})
    with pytest.raises(ValueError, match="provider_account_id"):
        await adapter.link_account({"user_id": str(ObjectId()), "type": "oauth", "provider": "x"})


async def test_get_user_by_account(adapter: MongoDBBackend, mongo_db: RawDb) -> None:
    user = await _user(adapter)
    await adapter.link_account(_account_data(user))

    assert await adapter.get_user_by_account(provider="github", provider_account_id="gh-1") == user
    assert await adapter.get_user_by_account(provider="github", provider_account_id="gh-2") is None
    assert await adapter.get_user_by_account(provider="gitlab", provider_account_id="gh-1") is None

    await mongo_db["users"].delete_one({"_id": ObjectId(user.id)})
    assert await adapter.get_user_by_account(provider="github", provider_account_id="gh-1") is None


async def test_get_and_unlink_account(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)
    linked = await adapter.link_account(_account_data(user))

    assert await adapter.get_account(provider="github", provider_account_id="gh-1") == linked
    assert await adapter.unlink_account(provider="github", provider_account_id="gh-1") == linked
    assert await adapter.get_account(provider="github", provider_account_id="gh-1") is None
    assert await adapter.unlink_account(provider="github", provider_account_id="gh-1") is None


async def test_update_account_changes_stored_tokens(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    user = await _user(adapter)
    await adapter.link_account(_account_data(user))

    updated = await adapter.update_account(
        provider="github",
        provider_account_id="gh-1",
        data={"access_token": "at-2", "refresh_token": "rt-2", "expires_at": 1_900_003_600},
    )

    assert updated is not None
    assert (updated.access_token, updated.refresh_token, updated.expires_at) == (
        "at-2",
        "rt-2",
        1_900_003_600,
    )
    assert updated.scope == "read:user" and updated.user_id == user.id
    raw = await mongo_db["accounts"].find_one({})
    assert raw is not None and raw["access_token"] == "at-2"
    assert await adapter.get_account(provider="github", provider_account_id="gh-1") == updated
    missing = await adapter.update_account(
        provider="github", provider_account_id="gh-9", data={"access_token": "x"}
    )
    assert missing is None


@pytest.mark.parametrize("key", ["user_id", "provider", "provider_account_id", "id"])
async def test_update_account_cannot_move_the_account(adapter: MongoDBBackend, key: str) -> None:
    user = await _user(adapter)
    await adapter.link_account(_account_data(user))

    with pytest.raises(ValueError, match=key):
        await adapter.update_account(
            provider="github", provider_account_id="gh-1", data={key: str(ObjectId())}
        )


async def test_whole_number_doubles_read_as_int_expires_at(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    user = await _user(adapter)
    await adapter.link_account(_account_data(user))
    await mongo_db["accounts"].update_one({}, {"$set": {"expires_at": 1_900_000_000.0}})

    account = await adapter.get_account(provider="github", provider_account_id="gh-1")

    assert account is not None and account.expires_at == 1_900_000_000
    assert isinstance(account.expires_at, int)


# -- sessions ----------------------------------------------------------------------------


async def test_create_session_stores_the_authjs_document_and_ours(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    user = await _user(adapter)
    expires = _later(days=30)
    created_at = _later(seconds=-1)

    session = await adapter.create_session(
        {
            "session_token": "tok-1",
            "user_id": user.id,
            "expires": expires,
            "created_at": created_at,
            "user_agent": "Firefox",
        }
    )

    assert session == SessionRecord(
        id=session.id,
        session_token="tok-1",
        user_id=user.id,
        expires=expires,
        created_at=created_at,
        last_seen_at=created_at,
        user_agent="Firefox",
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


async def test_create_session_defaults_created_at_to_now(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)
    before = datetime.now(UTC) - timedelta(milliseconds=1)

    session = await _session(adapter, user)

    assert session.created_at is not None
    assert before <= session.created_at <= datetime.now(UTC)
    assert session.last_seen_at == session.created_at


async def test_create_session_with_a_taken_token_raises(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)
    await _session(adapter, user, "same")

    with pytest.raises(DuplicateRecordError, match="token"):
        await _session(adapter, user, "same")


async def test_get_session_and_user(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)
    session = await _session(adapter, user, "tok", device="laptop")

    assert await adapter.get_session_and_user("tok") == (session, user)
    assert session.extra == {"device": "laptop"}
    assert await adapter.get_session_and_user("other") is None


async def test_get_session_and_user_neither_checks_nor_deletes_expired(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    user = await _user(adapter)
    # Long past, yet the TTL monitor has not run: this test owns the decision.
    await mongo_db["sessions"].insert_one(
        {"sessionToken": "old", "userId": ObjectId(user.id), "expires": datetime(2020, 1, 1)}
    )

    found = await adapter.get_session_and_user("old")

    assert found is not None
    assert found[0].expires == datetime(2020, 1, 1, tzinfo=UTC)
    assert found[0].created_at is None and found[0].extra == {}


async def test_get_session_and_user_without_its_user_is_none(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    user = await _user(adapter)
    await _session(adapter, user, "tok")
    await mongo_db["users"].delete_one({"_id": ObjectId(user.id)})

    assert await adapter.get_session_and_user("tok") is None


async def test_get_session_and_user_is_one_round_trip(
    watched: tuple[MongoDBBackend, _CommandLog],
) -> None:
    adapter, log = watched
    user = await _user(adapter)
    await _session(adapter, user, "tok")
    log.names.clear()

    assert await adapter.get_session_and_user("tok") is not None

    assert log.names == ["aggregate"]


async def test_update_session(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)
    session = await _session(adapter, user, "tok")
    expires, seen = _later(days=31), _later(seconds=5)

    updated = await adapter.update_session(
        {"session_token": "tok", "expires": expires, "last_seen_at": seen}
    )

    assert updated is not None
    assert (updated.expires, updated.last_seen_at) == (expires, seen)
    assert updated.created_at == session.created_at and updated.id == session.id
    found = await adapter.get_session_and_user("tok")
    assert found is not None and found[0] == updated
    assert await adapter.update_session({"session_token": "nope", "expires": expires}) is None


async def test_delete_session(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)
    session = await _session(adapter, user, "tok")

    assert await adapter.delete_session("tok") == session
    assert await adapter.get_session_and_user("tok") is None
    assert await adapter.delete_session("tok") is None


async def test_list_sessions_newest_first(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)
    other = await _user(adapter, "other@example.com")
    start = _later(hours=-3)
    for hours, token in ((1, "middle"), (2, "newest"), (0, "oldest")):
        await _session(adapter, user, token, created_at=start + timedelta(hours=hours))
    await _session(adapter, other, "not-mine")

    listed = await adapter.list_sessions(user.id)

    assert [session.session_token for session in listed] == ["newest", "middle", "oldest"]
    assert await adapter.list_sessions(str(ObjectId())) == []


async def test_delete_sessions_except_one(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)
    other = await _user(adapter, "other@example.com")
    for token in ("a", "b", "keep"):
        await _session(adapter, user, token)
    await _session(adapter, other, "theirs")

    assert await adapter.delete_sessions(user.id, except_token="keep") == 2
    assert [s.session_token for s in await adapter.list_sessions(user.id)] == ["keep"]
    assert await adapter.delete_sessions(user.id) == 1
    assert await adapter.list_sessions(user.id) == []
    assert await adapter.get_session_and_user("theirs") is not None


async def test_authjs_field_names_are_accepted_as_input(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    user = await _user(adapter)
    expires = _later(days=1)

    session = await adapter.create_session(
        {"sessionToken": "camel", "userId": user.id, "expires": expires}
    )

    assert (session.session_token, session.user_id, session.expires) == ("camel", user.id, expires)
    raw = await mongo_db["sessions"].find_one({"sessionToken": "camel"})
    assert raw is not None and raw["userId"] == ObjectId(user.id)


async def test_create_session_needs_a_valid_user_id(adapter: MongoDBBackend) -> None:
    with pytest.raises(ValueError, match="not a valid id"):
        await adapter.create_session(
            {"session_token": "t", "user_id": "abc", "expires": _later(days=1)}
        )


# -- verification tokens -----------------------------------------------------------------


async def test_verification_token_is_single_use(adapter: MongoDBBackend, mongo_db: RawDb) -> None:
    expires = _later(hours=24)
    created = await adapter.create_verification_token(
        VerificationToken(identifier="ada@example.com", token="hashed", expires=expires)
    )

    raw = await mongo_db["verification_tokens"].find_one({})
    assert raw is not None
    assert set(raw) == {"_id", "identifier", "token", "expires"}
    assert _aware(raw["expires"]) == expires
    assert created == VerificationToken("ada@example.com", "hashed", expires)
    assert await adapter.use_verification_token(identifier="ada@example.com", token="wrong") is None
    used = await adapter.use_verification_token(identifier="ada@example.com", token="hashed")
    assert used == created
    assert (
        await adapter.use_verification_token(identifier="ada@example.com", token="hashed") is None
    )


async def test_concurrent_uses_of_one_token_succeed_once(adapter: MongoDBBackend) -> None:
    await adapter.create_verification_token(
        {"identifier": "a@example.com", "token": "t", "expires": _later(hours=1)}
    )

    results = await asyncio.gather(
        *(adapter.use_verification_token(identifier="a@example.com", token="t") for _ in range(10))
    )

    assert sum(result is not None for result in results) == 1


# -- JWT revocation ----------------------------------------------------------------------


async def test_revocation_cutoff_only_moves_forward(adapter: MongoDBBackend) -> None:
    user = await _user(adapter)
    first, second = _later(seconds=-60), _later()

    assert await adapter.tokens_revoked_before(user.id) is None
    await adapter.revoke_tokens_issued_before(user.id, second)
    await adapter.revoke_tokens_issued_before(user.id, first)

    assert await adapter.tokens_revoked_before(user.id) == second
    assert await adapter.tokens_revoked_before(str(ObjectId())) is None


async def test_revocation_works_for_ids_that_are_not_object_ids(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    when = _later()

    await adapter.revoke_tokens_issued_before("credentials-user-7", when)

    assert await adapter.tokens_revoked_before("credentials-user-7") == when
    assert await mongo_db["users"].count_documents({}) == 0


# -- indexes -----------------------------------------------------------------------------


async def _index_summary(db: RawDb) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for collection in ("users", "accounts", "sessions", "verification_tokens"):
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
}


async def test_ensure_indexes_creates_them_and_is_idempotent(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    await adapter.ensure_indexes()
    await adapter.ensure_indexes()

    assert await _index_summary(mongo_db) == EXPECTED_INDEXES


async def test_indexes_are_created_on_first_use(adapter: MongoDBBackend, mongo_db: RawDb) -> None:
    assert await adapter.get_user(str(ObjectId())) is None

    assert await _index_summary(mongo_db) == EXPECTED_INDEXES


async def test_concurrent_first_calls_create_indexes_once(
    watched: tuple[MongoDBBackend, _CommandLog],
) -> None:
    adapter, log = watched

    await asyncio.gather(*(adapter.get_user(str(ObjectId())) for _ in range(10)))
    await adapter.get_user_by_email("x@example.com")

    # One createIndexes per collection that has indexes, sent once.
    assert log.names.count("createIndexes") == 4


async def test_duplicate_emails_left_by_authjs_stop_index_creation(
    adapter: MongoDBBackend, mongo_db: RawDb
) -> None:
    await mongo_db["users"].insert_many(
        [{"email": "dup@example.com"}, {"email": "dup@example.com"}]
    )

    with pytest.raises(ConfigurationError, match="duplicates"):
        await adapter.ensure_indexes()


# -- TTL expiry --------------------------------------------------------------------------


async def test_ttl_monitor_removes_expired_sessions_and_tokens(
    adapter: MongoDBBackend, mongo_db: RawDb, mongo_client: AsyncMongoClient[dict[str, Any]]
) -> None:
    # The fixture's mongod runs the monitor every second; make sure a MONGODB_URL
    # server does too.
    await mongo_client.admin.command({"setParameter": 1, "ttlMonitorSleepSecs": 1})
    user = await _user(adapter)
    past = _later(minutes=-1)
    await _session(adapter, user, "expired", expires=past)
    await _session(adapter, user, "valid")
    await adapter.create_verification_token({"identifier": "i", "token": "old", "expires": past})
    await adapter.create_verification_token(
        {"identifier": "i", "token": "new", "expires": _later(hours=1)}
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
        warmed = MongoDBBackend(client[mongo_db_name], operation_timeout=2)
        fresh = MongoDBBackend(client[mongo_db_name], operation_timeout=2)
        user = await _user(warmed)
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
        adapter = MongoDBBackend(client[mongo_db_name], operation_timeout=1)
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
    adapter: MongoDBBackend, mongodb_url: str, mongo_db_name: str
) -> None:
    verified, expires = _later(minutes=-1), _later(days=30)
    user = await adapter.create_user(
        {"name": "Ada", "email": "ada@example.com", "email_verified": verified, "role": "admin"}
    )
    await adapter.link_account(_account_data(user))
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

    expected_user = {
        "id": user.id,
        "name": "Ada",
        "email": "ada@example.com",
        "image": None,
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


async def test_python_reads_what_authjs_wrote(
    adapter: MongoDBBackend, mongodb_url: str, mongo_db_name: str
) -> None:
    verified, expires = _later(minutes=-1), _later(days=30)
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
