"""MemoryBackend: the adapter contract, kept in a dict, and database sessions through it."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from asgi_session import AuthConfig
from asgi_session.backends.base import Adapter
from asgi_session.backends.database import DatabaseBackend
from asgi_session.backends.memory import MemoryBackend
from asgi_session.errors import DuplicateRecordError
from asgi_session.models import Account, SessionRecord, User, VerificationToken
from tests.support.apps import SECRET, Clock, build_app, client_for, csrf_token, sign_in

MALFORMED_IDS = ["", "nope", "0" * 23, "0" * 25, "g" * 24, "abcdefghijkl", "../../etc"]
SESSION_COOKIE = "authjs.session-token"
UNKNOWN_ID = "0123456789abcdef01234567"


def _later(**delta: float) -> datetime:
    """A time from now, at the millisecond precision the backend keeps."""
    moment = datetime.now(UTC) + timedelta(**delta)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@pytest.fixture
def memory() -> MemoryBackend:
    return MemoryBackend()


async def _user(memory: MemoryBackend, email: str = "ada@example.com", **more: Any) -> User:
    return await memory.create_user({"name": "Ada", "email": email, **more})


async def _session(
    memory: MemoryBackend, user: User, token: str = "tok", **more: Any
) -> SessionRecord:
    return await memory.create_session(
        {"session_token": token, "user_id": user.id, "expires": _later(days=30), **more}
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


# -- contract ----------------------------------------------------------------------------


async def test_backend_satisfies_the_adapter_protocol(memory: MemoryBackend) -> None:
    assert isinstance(memory, Adapter)
    await memory.ensure_indexes()


async def test_each_call_lets_other_tasks_run(memory: MemoryBackend) -> None:
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    task = asyncio.create_task(other())
    await memory.get_user(UNKNOWN_ID)

    assert ran == ["other"], "the call yielded to the event loop, as a round trip would"
    await task


# -- users -------------------------------------------------------------------------------


async def test_create_user_keeps_every_field(memory: MemoryBackend) -> None:
    verified = _later(minutes=-5)

    user = await memory.create_user(
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
    assert re.fullmatch(r"[0-9a-f]{24}", user.id)
    assert await memory.get_user(user.id) == user


async def test_create_user_absent_fields_are_none(memory: MemoryBackend) -> None:
    user = await memory.create_user({"email": "bob@example.com"})

    assert (user.name, user.image, user.email_verified, user.extra) == (None, None, None, {})


async def test_create_user_keeps_a_24_hex_digit_id_and_replaces_others(
    memory: MemoryBackend,
) -> None:
    chosen = "65a1b2c3d4e5f60718293a4b"
    kept = await memory.create_user({"id": chosen, "email": "a@example.com"})
    replaced = await memory.create_user({"id": "user-1", "email": "b@example.com"})

    assert kept.id == chosen
    assert replaced.id != "user-1" and re.fullmatch(r"[0-9a-f]{24}", replaced.id)
    assert await memory.get_user(chosen.upper()) == kept, "hex digits in either case"
    with pytest.raises(DuplicateRecordError, match="id"):
        await memory.create_user({"id": chosen, "email": "c@example.com"})


async def test_create_user_accepts_the_record_type(memory: MemoryBackend) -> None:
    user = await memory.create_user(
        User(id="", name="Cy", email="cy@example.com", extra={"locale": "fr"})
    )

    assert await memory.get_user(user.id) == user
    assert user.extra == {"locale": "fr"}


async def test_authjs_user_field_names_are_accepted(memory: MemoryBackend) -> None:
    verified = _later()

    user = await memory.create_user({"email": "e@example.com", "emailVerified": verified})

    assert user.email_verified == verified and user.extra == {}


async def test_returned_datetimes_are_aware_utc_to_the_millisecond(memory: MemoryBackend) -> None:
    paris = timezone(timedelta(hours=2))
    verified = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=paris)
    created = await memory.create_user({"email": "d@example.com", "email_verified": verified})
    naive = await memory.create_user(
        {"email": "n@example.com", "email_verified": datetime(2024, 5, 1, 10, 30, 15)}
    )
    read = await memory.get_user(created.id)

    assert read is not None
    for value in (created.email_verified, read.email_verified):
        assert value is not None
        assert value.utcoffset() == timedelta(0)
        assert value == datetime(2024, 5, 1, 10, 30, 15, 123000, tzinfo=UTC)
    assert naive.email_verified == datetime(2024, 5, 1, 10, 30, 15, tzinfo=UTC)


async def test_get_user_and_get_user_by_email(memory: MemoryBackend) -> None:
    user = await _user(memory)

    assert await memory.get_user(user.id) == user
    assert await memory.get_user_by_email("ada@example.com") == user
    assert await memory.get_user(UNKNOWN_ID) is None
    assert await memory.get_user_by_email("nobody@example.com") is None
    assert await memory.get_user_by_email("ADA@example.com") is None, "exact match only"


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
async def test_malformed_ids_are_none(memory: MemoryBackend, bad_id: str) -> None:
    await _user(memory)

    assert await memory.get_user(bad_id) is None
    assert await memory.update_user({"id": bad_id, "name": "x"}) is None
    assert await memory.delete_user(bad_id) is None
    assert await memory.list_sessions(bad_id) == []
    assert await memory.delete_sessions(bad_id) == 0


async def test_values_that_are_not_strings_match_nothing(memory: MemoryBackend) -> None:
    user = await _user(memory)
    await _session(memory, user)
    await memory.link_account(_account_data(user))
    weird: Any = {"$ne": ""}

    assert await memory.get_user(weird) is None
    assert await memory.get_user_by_email(weird) is None
    assert await memory.get_session_and_user(weird) is None
    assert await memory.get_user_by_account(provider=weird, provider_account_id=weird) is None
    assert await memory.get_account(provider=weird, provider_account_id=weird) is None
    assert await memory.unlink_account(provider=weird, provider_account_id=weird) is None
    assert await memory.delete_session(weird) is None
    assert await memory.use_verification_token(identifier=weird, token=weird) is None
    assert await memory.tokens_revoked_before(weird) is None


async def test_update_user_sets_only_given_fields(memory: MemoryBackend) -> None:
    user = await _user(memory, image="https://example.com/a.png")
    verified = _later()

    updated = await memory.update_user(
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
    assert await memory.get_user(user.id) == updated
    assert await memory.update_user({"id": user.id}) == updated
    assert await memory.update_user({"id": UNKNOWN_ID, "name": "x"}) is None


async def test_update_user_to_a_taken_email_raises(memory: MemoryBackend) -> None:
    first = await _user(memory, "one@example.com")
    second = await _user(memory, "two@example.com")

    with pytest.raises(DuplicateRecordError, match="email"):
        await memory.update_user({"id": second.id, "email": "one@example.com"})
    assert await memory.get_user(second.id) == second, "nothing changed"
    assert await memory.update_user({"id": first.id, "email": "one@example.com"}) == first


async def test_changing_an_email_frees_the_old_one(memory: MemoryBackend) -> None:
    user = await _user(memory, "old@example.com")

    moved = await memory.update_user({"id": user.id, "email": "new@example.com"})

    assert await memory.get_user_by_email("new@example.com") == moved
    assert await memory.get_user_by_email("old@example.com") is None
    other = await _user(memory, "old@example.com")
    assert await memory.get_user_by_email("old@example.com") == other
    await memory.update_user({"id": user.id, "email": None})
    assert await memory.get_user_by_email("new@example.com") is None


async def test_create_user_with_a_taken_email_raises(memory: MemoryBackend) -> None:
    await _user(memory)

    with pytest.raises(DuplicateRecordError, match="email"):
        await _user(memory)


async def test_many_users_may_have_no_email(memory: MemoryBackend) -> None:
    one = await memory.create_user({"name": "one"})
    two = await memory.create_user({"name": "two", "email": None})

    assert one.id != two.id
    assert await memory.get_user(one.id) == one and await memory.get_user(two.id) == two


async def test_concurrent_create_user_with_one_email_makes_one_user(
    memory: MemoryBackend,
) -> None:
    results = await asyncio.gather(
        *(_user(memory, "race@example.com", name=f"n{i}") for i in range(20)),
        return_exceptions=True,
    )

    created = [result for result in results if isinstance(result, User)]
    refused = [result for result in results if isinstance(result, DuplicateRecordError)]
    assert len(created) == 1
    assert len(refused) == 19
    assert await memory.get_user_by_email("race@example.com") == created[0]


async def test_delete_user_removes_their_sessions_and_accounts(memory: MemoryBackend) -> None:
    user = await _user(memory)
    other = await _user(memory, "other@example.com")
    await _session(memory, user, "mine")
    await _session(memory, other, "theirs")
    await memory.link_account(_account_data(user, "gh-mine"))
    await memory.link_account(_account_data(other, "gh-theirs"))

    deleted = await memory.delete_user(user.id)

    assert deleted == user
    assert await memory.get_user(user.id) is None
    assert await memory.get_user_by_email("ada@example.com") is None
    assert await memory.get_session_and_user("mine") is None
    assert await memory.get_account(provider="github", provider_account_id="gh-mine") is None
    assert await memory.list_sessions(user.id) == []
    assert await memory.get_session_and_user("theirs") is not None
    assert await memory.get_account(provider="github", provider_account_id="gh-theirs")
    assert await memory.delete_user(user.id) is None
    assert await _user(memory) != user, "the email can be used again"


# -- accounts ----------------------------------------------------------------------------


async def test_link_account_keeps_every_field(memory: MemoryBackend) -> None:
    user = await _user(memory)

    account = await memory.link_account(
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
    assert account.id is not None and re.fullmatch(r"[0-9a-f]{24}", account.id)
    assert await memory.get_account(provider="github", provider_account_id="gh-1") == account


async def test_link_account_accepts_the_record_type_and_authjs_names(
    memory: MemoryBackend,
) -> None:
    user = await _user(memory)
    record = Account(user_id=user.id, type="oidc", provider="okta", provider_account_id="x")

    account = await memory.link_account(record)
    camel = await memory.link_account(
        {"userId": user.id, "type": "oauth", "provider": "gitlab", "providerAccountId": "y"}
    )

    assert await memory.get_account(provider="okta", provider_account_id="x") == account
    assert (camel.user_id, camel.provider_account_id, camel.extra) == (user.id, "y", {})


async def test_linking_the_same_provider_account_twice_raises(memory: MemoryBackend) -> None:
    user = await _user(memory)
    other = await _user(memory, "other@example.com")
    await memory.link_account(_account_data(user))

    with pytest.raises(DuplicateRecordError, match="already linked"):
        await memory.link_account(_account_data(other))
    assert await memory.get_user_by_account(provider="github", provider_account_id="gh-1") == user


async def test_link_account_needs_a_valid_user_id_and_every_key_field(
    memory: MemoryBackend,
) -> None:
    with pytest.raises(ValueError, match="not a valid id"):
        await memory.link_account({**_account_data(User(id="u")), "user_id": "not-an-id"})
    with pytest.raises(ValueError, match="provider_account_id"):
        await memory.link_account({"user_id": UNKNOWN_ID, "type": "oauth", "provider": "x"})
    with pytest.raises(ValueError, match="strings"):
        await memory.link_account({**_account_data(User(id=UNKNOWN_ID)), "provider": 7})


async def test_get_user_by_account(memory: MemoryBackend) -> None:
    user = await _user(memory)
    await memory.link_account(_account_data(user))

    assert await memory.get_user_by_account(provider="github", provider_account_id="gh-1") == user
    assert await memory.get_user_by_account(provider="github", provider_account_id="gh-2") is None
    assert await memory.get_user_by_account(provider="gitlab", provider_account_id="gh-1") is None


async def test_an_account_of_a_user_never_stored_has_no_user(memory: MemoryBackend) -> None:
    await memory.link_account(_account_data(User(id=UNKNOWN_ID)))

    assert await memory.get_account(provider="github", provider_account_id="gh-1") is not None
    assert await memory.get_user_by_account(provider="github", provider_account_id="gh-1") is None


async def test_get_and_unlink_account(memory: MemoryBackend) -> None:
    user = await _user(memory)
    linked = await memory.link_account(_account_data(user))

    assert await memory.get_account(provider="github", provider_account_id="gh-1") == linked
    assert await memory.unlink_account(provider="github", provider_account_id="gh-1") == linked
    assert await memory.get_account(provider="github", provider_account_id="gh-1") is None
    assert await memory.unlink_account(provider="github", provider_account_id="gh-1") is None
    assert await memory.link_account(_account_data(user)) != linked, "it can be linked again"


async def test_update_account_changes_stored_tokens(memory: MemoryBackend) -> None:
    user = await _user(memory)
    linked = await memory.link_account(_account_data(user))

    updated = await memory.update_account(
        provider="github",
        provider_account_id="gh-1",
        data={"access_token": "at-2", "refresh_token": "rt-2", "expires_at": 1_900_003_600.0},
    )

    assert updated is not None
    assert (updated.access_token, updated.refresh_token, updated.expires_at) == (
        "at-2",
        "rt-2",
        1_900_003_600,
    )
    assert isinstance(updated.expires_at, int)
    assert updated.scope == "read:user" and updated.user_id == user.id
    assert updated.id == linked.id
    assert await memory.get_account(provider="github", provider_account_id="gh-1") == updated
    missing = await memory.update_account(
        provider="github", provider_account_id="gh-9", data={"access_token": "x"}
    )
    assert missing is None
    unchanged = await memory.update_account(provider="github", provider_account_id="gh-1", data={})
    assert unchanged == updated


@pytest.mark.parametrize(
    "key", ["user_id", "userId", "provider", "provider_account_id", "providerAccountId", "id"]
)
async def test_update_account_cannot_move_the_account(memory: MemoryBackend, key: str) -> None:
    user = await _user(memory)
    linked = await memory.link_account(_account_data(user))

    with pytest.raises(ValueError, match=key):
        await memory.update_account(
            provider="github", provider_account_id="gh-1", data={key: UNKNOWN_ID}
        )
    assert await memory.get_account(provider="github", provider_account_id="gh-1") == linked


# -- sessions ----------------------------------------------------------------------------


async def test_create_session_keeps_every_field(memory: MemoryBackend) -> None:
    user = await _user(memory)
    expires = _later(days=30)
    created_at = _later(seconds=-1)

    session = await memory.create_session(
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
    assert session.id is not None and re.fullmatch(r"[0-9a-f]{24}", session.id)


async def test_create_session_defaults_created_at_to_now(memory: MemoryBackend) -> None:
    user = await _user(memory)
    before = datetime.now(UTC) - timedelta(milliseconds=1)

    session = await _session(memory, user)

    assert session.created_at is not None
    assert before <= session.created_at <= datetime.now(UTC)
    assert session.last_seen_at == session.created_at


async def test_create_session_with_a_taken_token_raises(memory: MemoryBackend) -> None:
    user = await _user(memory)
    other = await _user(memory, "other@example.com")
    first = await _session(memory, user, "same")

    with pytest.raises(DuplicateRecordError, match="token"):
        await _session(memory, other, "same")
    found = await memory.get_session_and_user("same")
    assert found == (first, user)


async def test_create_session_needs_a_valid_user_id_and_fields(memory: MemoryBackend) -> None:
    with pytest.raises(ValueError, match="not a valid id"):
        await memory.create_session({"session_token": "t", "user_id": "abc", "expires": _later()})
    with pytest.raises(ValueError, match="expires"):
        await memory.create_session({"session_token": "t", "user_id": UNKNOWN_ID})
    with pytest.raises(ValueError, match="datetime"):
        await memory.create_session(
            {"session_token": "t", "user_id": UNKNOWN_ID, "expires": "tomorrow"}
        )


async def test_authjs_session_field_names_are_accepted(memory: MemoryBackend) -> None:
    user = await _user(memory)
    expires = _later(days=1)

    session = await memory.create_session(
        {"sessionToken": "camel", "userId": user.id, "expires": expires, "userAgent": "UA"}
    )

    assert (session.session_token, session.user_id, session.expires) == ("camel", user.id, expires)
    assert session.user_agent == "UA" and session.extra == {}
    updated = await memory.update_session({"sessionToken": "camel", "lastSeenAt": expires})
    assert updated is not None and updated.last_seen_at == expires


async def test_get_session_and_user(memory: MemoryBackend) -> None:
    user = await _user(memory)
    session = await _session(memory, user, "tok", device="laptop")

    assert await memory.get_session_and_user("tok") == (session, user)
    assert session.extra == {"device": "laptop"}
    assert await memory.get_session_and_user("other") is None


async def test_get_session_and_user_neither_checks_nor_deletes_expired(
    memory: MemoryBackend,
) -> None:
    user = await _user(memory)
    old = await _session(memory, user, "old", expires=datetime(2020, 1, 1))

    found = await memory.get_session_and_user("old")

    assert found is not None
    assert found[0] == old
    assert found[0].expires == datetime(2020, 1, 1, tzinfo=UTC)
    assert [s.session_token for s in await memory.list_sessions(user.id)] == ["old"]


async def test_a_session_of_a_user_never_stored_has_no_user(memory: MemoryBackend) -> None:
    await memory.create_session({"session_token": "t", "user_id": UNKNOWN_ID, "expires": _later()})

    assert await memory.get_session_and_user("t") is None


async def test_update_session(memory: MemoryBackend) -> None:
    user = await _user(memory)
    session = await _session(memory, user, "tok")
    expires, seen = _later(days=31), _later(seconds=5)

    updated = await memory.update_session(
        {"session_token": "tok", "expires": expires, "last_seen_at": seen, "data": {"a": 1}}
    )

    assert updated is not None
    assert (updated.expires, updated.last_seen_at) == (expires, seen)
    assert updated.created_at == session.created_at and updated.id == session.id
    assert updated.extra == {"data": {"a": 1}}
    found = await memory.get_session_and_user("tok")
    assert found is not None and found[0] == updated
    assert await memory.update_session({"session_token": "nope", "expires": expires}) is None
    assert await memory.update_session({"expires": expires}) is None
    with pytest.raises(ValueError, match="expires"):
        await memory.update_session({"session_token": "tok", "expires": None})


async def test_delete_session(memory: MemoryBackend) -> None:
    user = await _user(memory)
    session = await _session(memory, user, "tok")

    assert await memory.delete_session("tok") == session
    assert await memory.get_session_and_user("tok") is None
    assert await memory.delete_session("tok") is None


async def test_list_sessions_newest_first(memory: MemoryBackend) -> None:
    user = await _user(memory)
    other = await _user(memory, "other@example.com")
    start = _later(hours=-3)
    for hours, token in ((1, "middle"), (2, "newest"), (0, "oldest")):
        await _session(memory, user, token, created_at=start + timedelta(hours=hours))
    await _session(memory, other, "not-mine")

    listed = await memory.list_sessions(user.id)

    assert [session.session_token for session in listed] == ["newest", "middle", "oldest"]
    assert await memory.list_sessions(UNKNOWN_ID) == []


async def test_sessions_created_at_one_moment_list_the_last_created_first(
    memory: MemoryBackend,
) -> None:
    user = await _user(memory)
    moment = _later()
    for token in ("first", "second", "third"):
        await _session(memory, user, token, created_at=moment)

    listed = await memory.list_sessions(user.id)

    assert [session.session_token for session in listed] == ["third", "second", "first"]


async def test_delete_sessions_except_one(memory: MemoryBackend) -> None:
    user = await _user(memory)
    other = await _user(memory, "other@example.com")
    for token in ("a", "b", "keep"):
        await _session(memory, user, token)
    await _session(memory, other, "theirs")

    assert await memory.delete_sessions(user.id, except_token="keep") == 2
    assert [s.session_token for s in await memory.list_sessions(user.id)] == ["keep"]
    assert await memory.delete_sessions(user.id) == 1
    assert await memory.list_sessions(user.id) == []
    assert await memory.get_session_and_user("theirs") is not None


# -- copies ------------------------------------------------------------------------------


async def test_changing_returned_records_does_not_change_the_store(
    memory: MemoryBackend,
) -> None:
    user = await _user(memory, tags=["a"])
    session = await _session(memory, user, "tok", data={"claims": {"role": "user"}})
    account = await memory.link_account(_account_data(user, scopes=["read"]))

    user.name = "Mallory"
    user.extra["tags"].append("b")
    session.extra["data"]["claims"]["role"] = "admin"
    account.extra["scopes"].append("write")
    account.access_token = "stolen"

    assert await memory.get_user(user.id) == User(
        id=user.id, name="Ada", email="ada@example.com", extra={"tags": ["a"]}
    )
    found = await memory.get_session_and_user("tok")
    assert found is not None and found[0].extra == {"data": {"claims": {"role": "user"}}}
    stored = await memory.get_account(provider="github", provider_account_id="gh-1")
    assert stored is not None
    assert (stored.access_token, stored.extra) == ("at-1", {"scopes": ["read"]})


async def test_changing_an_input_after_storing_it_does_not_change_the_store(
    memory: MemoryBackend,
) -> None:
    data: dict[str, Any] = {"email": "ada@example.com", "prefs": {"theme": "dark"}}
    user = await memory.create_user(data)
    claims: dict[str, Any] = {"role": "user"}
    await _session(memory, user, "tok", data=claims)

    data["prefs"]["theme"] = "light"
    claims["role"] = "admin"

    stored = await memory.get_user(user.id)
    assert stored is not None and stored.extra == {"prefs": {"theme": "dark"}}
    found = await memory.get_session_and_user("tok")
    assert found is not None and found[0].extra == {"data": {"role": "user"}}


# -- verification tokens -----------------------------------------------------------------


async def test_verification_token_is_single_use(memory: MemoryBackend) -> None:
    expires = _later(hours=24)
    created = await memory.create_verification_token(
        VerificationToken(identifier="ada@example.com", token="hashed", expires=expires)
    )

    assert created == VerificationToken("ada@example.com", "hashed", expires)
    assert await memory.use_verification_token(identifier="ada@example.com", token="wrong") is None
    assert await memory.use_verification_token(identifier="bob@example.com", token="hashed") is None
    used = await memory.use_verification_token(identifier="ada@example.com", token="hashed")
    assert used == created
    assert await memory.use_verification_token(identifier="ada@example.com", token="hashed") is None


async def test_a_duplicate_verification_token_raises(memory: MemoryBackend) -> None:
    token = {"identifier": "a@example.com", "token": "t", "expires": _later(hours=1)}
    await memory.create_verification_token(token)

    with pytest.raises(DuplicateRecordError, match="verification token"):
        await memory.create_verification_token(token)
    other = await memory.create_verification_token({**token, "identifier": "b@example.com"})
    assert other.identifier == "b@example.com"


async def test_verification_token_extra_fields_are_dropped(memory: MemoryBackend) -> None:
    expires = _later(hours=1)

    created = await memory.create_verification_token(
        {"identifier": "a@example.com", "token": "t", "expires": expires, "note": "x"}
    )

    assert created == VerificationToken("a@example.com", "t", expires)
    with pytest.raises(ValueError, match="expires"):
        await memory.create_verification_token({"identifier": "a@example.com", "token": "u"})


async def test_expired_verification_token_is_still_returned(memory: MemoryBackend) -> None:
    past = _later(hours=-1)
    await memory.create_verification_token({"identifier": "i", "token": "t", "expires": past})

    used = await memory.use_verification_token(identifier="i", token="t")

    assert used == VerificationToken("i", "t", past), "the caller checks expiry"


async def test_concurrent_uses_of_one_token_succeed_once(memory: MemoryBackend) -> None:
    await memory.create_verification_token(
        {"identifier": "a@example.com", "token": "t", "expires": _later(hours=1)}
    )

    results = await asyncio.gather(
        *(memory.use_verification_token(identifier="a@example.com", token="t") for _ in range(10))
    )

    assert sum(result is not None for result in results) == 1


# -- expiry ------------------------------------------------------------------------------


async def test_purge_expired_removes_only_expired_sessions_and_tokens(
    memory: MemoryBackend,
) -> None:
    user = await _user(memory)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    await _session(memory, user, "expired", expires=now - timedelta(seconds=1))
    await _session(memory, user, "at-the-moment", expires=now)
    await _session(memory, user, "valid", expires=now + timedelta(seconds=1))
    await memory.create_verification_token({"identifier": "i", "token": "old", "expires": now})
    await memory.create_verification_token(
        {"identifier": "i", "token": "new", "expires": now + timedelta(hours=1)}
    )

    assert await memory.purge_expired(now) == 3

    assert [s.session_token for s in await memory.list_sessions(user.id)] == ["valid"]
    assert await memory.use_verification_token(identifier="i", token="old") is None
    assert await memory.use_verification_token(identifier="i", token="new") is not None
    assert await memory.get_user(user.id) == user


async def test_purge_expired_defaults_to_the_current_time(memory: MemoryBackend) -> None:
    user = await _user(memory)
    await _session(memory, user, "expired", expires=_later(seconds=-1))
    await _session(memory, user, "valid", expires=_later(hours=1))

    assert await memory.purge_expired() == 1
    assert [s.session_token for s in await memory.list_sessions(user.id)] == ["valid"]


# -- JWT revocation ----------------------------------------------------------------------


async def test_revocation_cutoff_only_moves_forward(memory: MemoryBackend) -> None:
    user = await _user(memory)
    first, second = _later(seconds=-60), _later()

    assert await memory.tokens_revoked_before(user.id) is None
    await memory.revoke_tokens_issued_before(user.id, second)
    await memory.revoke_tokens_issued_before(user.id, first)

    assert await memory.tokens_revoked_before(user.id) == second
    assert await memory.tokens_revoked_before(UNKNOWN_ID) is None
    later = _later(seconds=60)
    await memory.revoke_tokens_issued_before(user.id, later)
    assert await memory.tokens_revoked_before(user.id) == later


async def test_revocation_works_for_ids_that_are_not_hex(memory: MemoryBackend) -> None:
    when = _later()

    await memory.revoke_tokens_issued_before("credentials-user-7", when)

    assert await memory.tokens_revoked_before("credentials-user-7") == when
    with pytest.raises(ValueError, match="user_id"):
        await memory.revoke_tokens_issued_before("", when)


# -- database sessions through the middleware --------------------------------------------


def test_a_memory_backend_means_database_sessions() -> None:
    config = AuthConfig(secret=SECRET, backend=MemoryBackend())

    assert config.strategy == "database"
    assert isinstance(config.backend, DatabaseBackend)
    assert isinstance(config.backend.adapter, MemoryBackend)


async def test_sign_in_see_the_session_sign_out(clock: Clock) -> None:
    memory = MemoryBackend()
    app = build_app(backend=memory, clock=clock)
    async with client_for(app) as client:
        assert (await client.get("/")).json() is None

        response = await sign_in(client)
        assert response.status_code == 302
        token = client.cookies[SESSION_COOKIE]
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token), "an opaque token, not a JWT"

        user = await memory.get_user_by_email("ann@example.com")
        assert user is not None
        found = await memory.get_session_and_user(token)
        assert found is not None and found[1] == user
        assert found[0].expires == datetime.fromtimestamp(clock.now + 30 * 24 * 3600, UTC)
        body = (await client.get("/")).json()
        assert body["id"] == user.id
        assert body["user"] == {"name": "Ann", "email": "ann@example.com"}
        listed = (await client.get("/auth/sessions")).json()
        assert [entry["id"] for entry in listed] == [found[0].id]

        await client.post("/auth/signout", data={"csrfToken": await csrf_token(client)})

        assert await memory.get_session_and_user(token) is None
        assert await memory.list_sessions(user.id) == []
        assert (await client.get("/")).json() is None
        assert (await client.get("/auth/session")).json() is None


async def test_signing_in_again_ends_the_previous_session_and_reuses_the_user(
    clock: Clock,
) -> None:
    memory = MemoryBackend()
    async with client_for(build_app(backend=memory, clock=clock)) as client:
        await sign_in(client)
        first = client.cookies[SESSION_COOKIE]
        await sign_in(client)
        second = client.cookies[SESSION_COOKIE]

    user = await memory.get_user_by_email("ann@example.com")
    assert user is not None and first != second
    assert [s.session_token for s in await memory.list_sessions(user.id)] == [second]


async def test_a_session_update_is_kept_in_memory(clock: Clock) -> None:
    memory = MemoryBackend()
    async with client_for(build_app(backend=memory, clock=clock)) as client:
        await sign_in(client)
        assert (await client.post("/update", json={"theme": "dark"})).status_code == 200
        token = client.cookies[SESSION_COOKIE]

    found = await memory.get_session_and_user(token)
    assert found is not None and found[0].extra["data"] == {"theme": "dark"}


async def test_an_expired_session_is_no_session_and_is_removed(clock: Clock) -> None:
    memory = MemoryBackend()
    async with client_for(build_app(backend=memory, clock=clock)) as client:
        await sign_in(client)
        token = client.cookies[SESSION_COOKIE]
        clock.advance(30 * 24 * 3600 + 1)

        assert (await client.get("/")).json() is None

    assert await memory.get_session_and_user(token) is None
