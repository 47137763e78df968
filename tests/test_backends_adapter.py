"""The Adapter contract, kept alike by every adapter: in memory and on MongoDB."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Protocol, runtime_checkable

import pytest

from asgi_session.backends import Adapter, AuthenticatorStore, TokenSweeper
from asgi_session.errors import DuplicateRecordError
from asgi_session.models import Account, Authenticator, SessionRecord, User, VerificationToken
from tests.support.records import (
    MALFORMED_IDS,
    UNKNOWN_ID,
    account_data,
    later,
    make_session,
    make_user,
)

HEX_ID = re.compile(r"[0-9a-f]{24}")

# What DuplicateRecordError says, word for word, whichever adapter raises it.
TAKEN_ID = "^a user with this id already exists$"
TAKEN_EMAIL = "^a user with this email already exists$"
TAKEN_ACCOUNT = "^this provider account is already linked to a user$"
TAKEN_SESSION_TOKEN = "^a session with this token already exists$"
TAKEN_VERIFICATION_TOKEN = "^this verification token already exists$"

#: Values that are not datetimes, though each names a moment one way or another.
NOT_DATETIMES = ["2030-01-01T00:00:00Z", 1_900_000_000, date(2030, 1, 1)]


async def test_backend_satisfies_the_adapter_protocol(contract_adapter: Adapter) -> None:
    assert isinstance(contract_adapter, Adapter)
    await contract_adapter.ensure_indexes()


# -- users -------------------------------------------------------------------------------


async def test_create_user_keeps_every_field(contract_adapter: Adapter) -> None:
    verified = later(minutes=-5)

    user = await contract_adapter.create_user(
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
    assert HEX_ID.fullmatch(user.id)
    assert await contract_adapter.get_user(user.id) == user


async def test_create_user_absent_fields_are_none(contract_adapter: Adapter) -> None:
    # Only the fields given are stored; the others read as None, as do those given as
    # None (test_backends_mongodb.py checks what the stored documents hold).
    verified = later()

    user = await contract_adapter.create_user(
        {"email": "bob@example.com", "email_verified": verified}
    )
    explicit = await contract_adapter.create_user(
        {"email": "cy@example.com", "name": None, "image": None}
    )

    assert user == User(id=user.id, email="bob@example.com", email_verified=verified)
    assert explicit == User(id=explicit.id, email="cy@example.com")
    assert await contract_adapter.get_user(user.id) == user
    assert await contract_adapter.get_user(explicit.id) == explicit


async def test_create_user_keeps_a_24_hex_digit_id_and_replaces_others(
    contract_adapter: Adapter,
) -> None:
    chosen = "65a1b2c3d4e5f60718293a4b"
    kept = await contract_adapter.create_user({"id": chosen, "email": "a@example.com"})
    replaced = await contract_adapter.create_user({"id": "user-1", "email": "b@example.com"})
    from_uuid = await contract_adapter.create_user(
        {"id": str(uuid.uuid4()), "email": "u@example.com"}
    )

    assert kept.id == chosen
    assert replaced.id != "user-1" and HEX_ID.fullmatch(replaced.id)
    assert HEX_ID.fullmatch(from_uuid.id)
    assert await contract_adapter.get_user(chosen.upper()) == kept, "hex digits in either case"


async def test_create_user_with_a_taken_id_raises(contract_adapter: Adapter) -> None:
    chosen = "65a1b2c3d4e5f60718293a4b"
    first = await contract_adapter.create_user({"id": chosen, "email": "a@example.com"})

    with pytest.raises(DuplicateRecordError, match=TAKEN_ID):
        await contract_adapter.create_user({"id": chosen.upper(), "email": "c@example.com"})
    assert await contract_adapter.get_user(chosen) == first, "nothing changed"
    assert await contract_adapter.get_user_by_email("c@example.com") is None


async def test_create_user_accepts_the_record_type(contract_adapter: Adapter) -> None:
    user = await contract_adapter.create_user(
        User(id="", name="Cy", email="cy@example.com", extra={"locale": "fr"})
    )

    assert await contract_adapter.get_user(user.id) == user
    assert user.extra == {"locale": "fr"}


async def test_authjs_user_field_names_are_accepted(contract_adapter: Adapter) -> None:
    verified = later()

    user = await contract_adapter.create_user({"email": "e@example.com", "emailVerified": verified})

    assert user.email_verified == verified and user.extra == {}


@pytest.mark.parametrize("verified", NOT_DATETIMES)
async def test_email_verified_must_be_a_datetime(
    contract_adapter: Adapter, verified: object
) -> None:
    user = await make_user(contract_adapter)

    with pytest.raises(ValueError, match="a user's email_verified must be a datetime"):
        await contract_adapter.create_user({"email": "e@example.com", "emailVerified": verified})
    with pytest.raises(ValueError, match="a user's email_verified must be a datetime"):
        await contract_adapter.update_user({"id": user.id, "email_verified": verified})
    assert await contract_adapter.get_user_by_email("e@example.com") is None
    assert await contract_adapter.get_user(user.id) == user, "nothing changed"


async def test_returned_datetimes_are_aware_utc_to_the_millisecond(
    contract_adapter: Adapter,
) -> None:
    paris = timezone(timedelta(hours=2))
    verified = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=paris)
    created = await contract_adapter.create_user(
        {"email": "d@example.com", "email_verified": verified}
    )
    naive = await contract_adapter.create_user(
        {"email": "n@example.com", "email_verified": datetime(2024, 5, 1, 10, 30, 15)}
    )
    read = await contract_adapter.get_user(created.id)

    assert read is not None and read.email_verified is not None
    for value in (created.email_verified, read.email_verified):
        assert value is not None
        assert value.utcoffset() == timedelta(0)
        assert value == datetime(2024, 5, 1, 10, 30, 15, 123000, tzinfo=UTC)
    assert naive.email_verified == datetime(2024, 5, 1, 10, 30, 15, tzinfo=UTC)


async def test_datetimes_inside_extra_fields_come_back_as_they_read_back(
    contract_adapter: Adapter,
) -> None:
    moment = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    kept = datetime(2024, 5, 1, 10, 30, 15, 123000, tzinfo=UTC)

    user = await contract_adapter.create_user(
        {"email": "d@example.com", "logins": (moment,), "prefs": {"since": moment}}
    )

    assert user.extra == {"logins": [kept], "prefs": {"since": kept}}
    assert user.extra["prefs"]["since"].utcoffset() == timedelta(0)
    assert await contract_adapter.get_user(user.id) == user


async def test_a_field_given_under_both_names_must_agree(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    session = {"session_token": "t", "user_id": user.id, "expires": later(days=1)}

    with pytest.raises(ValueError, match="a session's session_token is given twice"):
        await contract_adapter.create_session({**session, "sessionToken": "u"})
    assert await contract_adapter.get_session_and_user("t") is None
    assert await contract_adapter.get_session_and_user("u") is None
    same = await contract_adapter.create_session({**session, "sessionToken": "t"})
    assert same.session_token == "t"


async def test_get_user_and_get_user_by_email(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)

    assert await contract_adapter.get_user(user.id) == user
    assert await contract_adapter.get_user_by_email("ada@example.com") == user
    assert await contract_adapter.get_user(UNKNOWN_ID) is None
    assert await contract_adapter.get_user_by_email("nobody@example.com") is None
    assert await contract_adapter.get_user_by_email("ADA@example.com") is None, "exact match only"


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
async def test_malformed_ids_are_none(contract_adapter: Adapter, bad_id: str) -> None:
    await make_user(contract_adapter)

    assert await contract_adapter.get_user(bad_id) is None
    assert await contract_adapter.update_user({"id": bad_id, "name": "x"}) is None
    assert await contract_adapter.delete_user(bad_id) is None
    assert await contract_adapter.list_sessions(bad_id) == []
    assert await contract_adapter.delete_sessions(bad_id) == 0


async def test_values_that_are_not_strings_match_nothing(contract_adapter: Adapter) -> None:
    # A query operator in place of a string must not match every stored record.
    user = await make_user(contract_adapter)
    await make_session(contract_adapter, user)
    await contract_adapter.link_account(account_data(user))
    weird: Any = {"$ne": ""}

    assert await contract_adapter.get_user(weird) is None
    assert await contract_adapter.get_user_by_email(weird) is None
    assert await contract_adapter.get_session_and_user(weird) is None
    assert (
        await contract_adapter.get_user_by_account(provider=weird, provider_account_id=weird)
        is None
    )
    assert await contract_adapter.get_account(provider=weird, provider_account_id=weird) is None
    assert await contract_adapter.unlink_account(provider=weird, provider_account_id=weird) is None
    assert await contract_adapter.delete_session(weird) is None
    assert await contract_adapter.use_verification_token(identifier=weird, token=weird) is None
    assert await contract_adapter.tokens_revoked_before(weird) is None


async def test_update_user_sets_only_given_fields(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter, image="https://example.com/a.png")
    verified = later()

    updated = await contract_adapter.update_user(
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
    assert await contract_adapter.get_user(user.id) == updated
    assert await contract_adapter.update_user({"id": user.id}) == updated
    assert await contract_adapter.update_user({"id": UNKNOWN_ID, "name": "x"}) is None


async def test_update_user_to_a_taken_email_raises(contract_adapter: Adapter) -> None:
    first = await make_user(contract_adapter, "one@example.com")
    second = await make_user(contract_adapter, "two@example.com")

    with pytest.raises(DuplicateRecordError, match=TAKEN_EMAIL):
        await contract_adapter.update_user({"id": second.id, "email": "one@example.com"})
    assert await contract_adapter.get_user(second.id) == second, "nothing changed"
    assert await contract_adapter.update_user({"id": first.id, "email": "one@example.com"}) == first


async def test_changing_an_email_frees_the_old_one(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter, "old@example.com")

    moved = await contract_adapter.update_user({"id": user.id, "email": "new@example.com"})

    assert await contract_adapter.get_user_by_email("new@example.com") == moved
    assert await contract_adapter.get_user_by_email("old@example.com") is None
    other = await make_user(contract_adapter, "old@example.com")
    assert await contract_adapter.get_user_by_email("old@example.com") == other
    await contract_adapter.update_user({"id": user.id, "email": None})
    assert await contract_adapter.get_user_by_email("new@example.com") is None


async def test_create_user_with_a_taken_email_raises(contract_adapter: Adapter) -> None:
    await make_user(contract_adapter)

    with pytest.raises(DuplicateRecordError, match=TAKEN_EMAIL):
        await make_user(contract_adapter)


async def test_many_users_may_have_no_email(contract_adapter: Adapter) -> None:
    one = await contract_adapter.create_user({"name": "one"})
    two = await contract_adapter.create_user({"name": "two", "email": None})

    assert one.id != two.id
    assert await contract_adapter.get_user(one.id) == one
    assert await contract_adapter.get_user(two.id) == two


async def test_concurrent_create_user_with_one_email_makes_one_user(
    contract_adapter: Adapter,
) -> None:
    # The adapter is fresh: on MongoDB the unique index is created by these very calls.
    results = await asyncio.gather(
        *(make_user(contract_adapter, "race@example.com", name=f"n{i}") for i in range(20)),
        return_exceptions=True,
    )

    created = [result for result in results if isinstance(result, User)]
    refused = [result for result in results if isinstance(result, DuplicateRecordError)]
    assert len(created) == 1
    assert len(refused) == 19
    assert await contract_adapter.get_user_by_email("race@example.com") == created[0]


async def test_delete_user_removes_their_sessions_and_accounts(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    other = await make_user(contract_adapter, "other@example.com")
    await make_session(contract_adapter, user, "mine")
    await make_session(contract_adapter, other, "theirs")
    await contract_adapter.link_account(account_data(user, "gh-mine"))
    await contract_adapter.link_account(account_data(other, "gh-theirs"))

    deleted = await contract_adapter.delete_user(user.id)

    assert deleted == user
    assert await contract_adapter.get_user(user.id) is None
    assert await contract_adapter.get_user_by_email("ada@example.com") is None
    assert await contract_adapter.get_session_and_user("mine") is None
    assert (
        await contract_adapter.get_account(provider="github", provider_account_id="gh-mine") is None
    )
    assert await contract_adapter.list_sessions(user.id) == []
    assert await contract_adapter.get_session_and_user("theirs") is not None
    assert await contract_adapter.get_account(provider="github", provider_account_id="gh-theirs")
    assert await contract_adapter.delete_user(user.id) is None
    assert await make_user(contract_adapter) != user, "the email can be used again"


# -- accounts ----------------------------------------------------------------------------


async def test_link_account_keeps_every_field(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)

    account = await contract_adapter.link_account(
        account_data(user, id_token="idt", session_state="st", refresh_token_expires_in=3600)
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
    assert account.id is not None and HEX_ID.fullmatch(account.id)
    assert (
        await contract_adapter.get_account(provider="github", provider_account_id="gh-1") == account
    )


async def test_link_account_accepts_the_record_type_and_authjs_names(
    contract_adapter: Adapter,
) -> None:
    user = await make_user(contract_adapter)
    record = Account(user_id=user.id, type="oidc", provider="okta", provider_account_id="x")

    account = await contract_adapter.link_account(record)
    camel = await contract_adapter.link_account(
        {"userId": user.id, "type": "oauth", "provider": "gitlab", "providerAccountId": "y"}
    )

    assert account.id is not None
    assert await contract_adapter.get_account(provider="okta", provider_account_id="x") == account
    assert (camel.user_id, camel.provider_account_id, camel.extra) == (user.id, "y", {})


async def test_linking_the_same_provider_account_twice_raises(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    other = await make_user(contract_adapter, "other@example.com")
    await contract_adapter.link_account(account_data(user))

    with pytest.raises(DuplicateRecordError, match=TAKEN_ACCOUNT):
        await contract_adapter.link_account(account_data(user))
    with pytest.raises(DuplicateRecordError, match=TAKEN_ACCOUNT):
        await contract_adapter.link_account(account_data(other))
    assert (
        await contract_adapter.get_user_by_account(provider="github", provider_account_id="gh-1")
        == user
    )


async def test_link_account_needs_a_valid_user_id_and_key_fields(
    contract_adapter: Adapter,
) -> None:
    with pytest.raises(ValueError, match="not a valid id"):
        await contract_adapter.link_account({**account_data(User(id="u")), "user_id": "not-an-id"})
    with pytest.raises(ValueError, match="an account needs provider_account_id"):
        await contract_adapter.link_account(
            {"user_id": UNKNOWN_ID, "type": "oauth", "provider": "x"}
        )
    with pytest.raises(ValueError, match="an account needs type"):
        await contract_adapter.link_account({**account_data(User(id=UNKNOWN_ID)), "type": None})


@pytest.mark.parametrize("value", [7, ["gh-1"], b"gh-1"])
@pytest.mark.parametrize("key", ["provider", "provider_account_id", "providerAccountId"])
async def test_link_account_needs_key_fields_that_are_strings(
    contract_adapter: Adapter, key: str, value: object
) -> None:
    user = await make_user(contract_adapter)
    name = "provider" if key == "provider" else "provider_account_id"
    account = {k: v for k, v in account_data(user).items() if k != name}

    with pytest.raises(ValueError, match=f"an account's {name} must be a string"):
        await contract_adapter.link_account({**account, key: value})


async def test_get_user_by_account(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    await contract_adapter.link_account(account_data(user))

    by_account = contract_adapter.get_user_by_account
    assert await by_account(provider="github", provider_account_id="gh-1") == user
    assert await by_account(provider="github", provider_account_id="gh-2") is None
    assert await by_account(provider="gitlab", provider_account_id="gh-1") is None


async def test_an_account_of_a_user_never_stored_has_no_user(contract_adapter: Adapter) -> None:
    await contract_adapter.link_account(account_data(User(id=UNKNOWN_ID)))

    assert (
        await contract_adapter.get_account(provider="github", provider_account_id="gh-1")
        is not None
    )
    assert (
        await contract_adapter.get_user_by_account(provider="github", provider_account_id="gh-1")
        is None
    )


async def test_get_and_unlink_account(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    linked = await contract_adapter.link_account(account_data(user))
    key = {"provider": "github", "provider_account_id": "gh-1"}

    assert await contract_adapter.get_account(**key) == linked
    assert await contract_adapter.unlink_account(**key) == linked
    assert await contract_adapter.get_account(**key) is None
    assert await contract_adapter.unlink_account(**key) is None
    assert await contract_adapter.link_account(account_data(user)) != linked, (
        "it can be linked again"
    )


async def test_update_account_changes_stored_tokens(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    linked = await contract_adapter.link_account(account_data(user))

    updated = await contract_adapter.update_account(
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
    assert (
        await contract_adapter.get_account(provider="github", provider_account_id="gh-1") == updated
    )
    missing = await contract_adapter.update_account(
        provider="github", provider_account_id="gh-9", data={"access_token": "x"}
    )
    assert missing is None
    unchanged = await contract_adapter.update_account(
        provider="github", provider_account_id="gh-1", data={}
    )
    assert unchanged == updated


@pytest.mark.parametrize(
    "key", ["user_id", "userId", "provider", "provider_account_id", "providerAccountId", "id"]
)
async def test_update_account_cannot_move_the_account(contract_adapter: Adapter, key: str) -> None:
    user = await make_user(contract_adapter)
    linked = await contract_adapter.link_account(account_data(user))

    with pytest.raises(ValueError, match=key):
        await contract_adapter.update_account(
            provider="github", provider_account_id="gh-1", data={key: UNKNOWN_ID}
        )
    assert (
        await contract_adapter.get_account(provider="github", provider_account_id="gh-1") == linked
    )


async def test_update_account_cannot_unset_the_type(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    linked = await contract_adapter.link_account(account_data(user))

    with pytest.raises(ValueError, match="an account's type cannot be None"):
        await contract_adapter.update_account(
            provider="github", provider_account_id="gh-1", data={"type": None}
        )
    assert (
        await contract_adapter.get_account(provider="github", provider_account_id="gh-1") == linked
    )


# -- sessions ----------------------------------------------------------------------------


async def test_create_session_keeps_every_field(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    expires = later(days=30)
    created_at = later(seconds=-1)

    session = await contract_adapter.create_session(
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
    assert session.id is not None and HEX_ID.fullmatch(session.id)


async def test_create_session_defaults_created_at_to_now(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    before = datetime.now(UTC) - timedelta(milliseconds=1)

    session = await make_session(contract_adapter, user)

    assert session.created_at is not None
    assert before <= session.created_at <= datetime.now(UTC)
    assert session.last_seen_at == session.created_at


async def test_create_session_with_a_taken_token_raises(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    other = await make_user(contract_adapter, "other@example.com")
    first = await make_session(contract_adapter, user, "same")

    with pytest.raises(DuplicateRecordError, match=TAKEN_SESSION_TOKEN):
        await make_session(contract_adapter, user, "same")
    with pytest.raises(DuplicateRecordError, match=TAKEN_SESSION_TOKEN):
        await make_session(contract_adapter, other, "same")
    assert await contract_adapter.get_session_and_user("same") == (first, user)


async def test_create_session_needs_a_valid_user_id_and_expiry(contract_adapter: Adapter) -> None:
    with pytest.raises(ValueError, match="not a valid id"):
        await contract_adapter.create_session(
            {"session_token": "t", "user_id": "abc", "expires": later(days=1)}
        )
    with pytest.raises(ValueError, match="a session needs expires"):
        await contract_adapter.create_session({"session_token": "t", "user_id": UNKNOWN_ID})
    assert await contract_adapter.list_sessions(UNKNOWN_ID) == []


@pytest.mark.parametrize("key", ["session_token", "sessionToken", "user_id", "userId", "expires"])
async def test_create_session_refuses_none_for_what_a_session_needs(
    contract_adapter: Adapter, key: str
) -> None:
    user = await make_user(contract_adapter)
    name = {"sessionToken": "session_token", "userId": "user_id"}.get(key, key)
    session = {"session_token": "t", "user_id": user.id, "expires": later(days=1)}
    del session[name]

    with pytest.raises(ValueError, match=f"^a session needs {name}$"):
        await contract_adapter.create_session({**session, key: None})
    assert await contract_adapter.list_sessions(user.id) == []


@pytest.mark.parametrize("value", NOT_DATETIMES)
@pytest.mark.parametrize("key", ["expires", "created_at", "last_seen_at", "lastSeenAt"])
async def test_create_session_needs_datetimes(
    contract_adapter: Adapter, key: str, value: object
) -> None:
    user = await make_user(contract_adapter)
    name = "last_seen_at" if key == "lastSeenAt" else key
    session = {"session_token": "t", "user_id": user.id, "expires": later(days=1)}

    with pytest.raises(ValueError, match=f"^a session's {name} must be a datetime$"):
        await contract_adapter.create_session({**session, key: value})
    assert await contract_adapter.list_sessions(user.id) == []


@pytest.mark.parametrize("token", [7, b"t", ["t"]])
async def test_create_session_needs_a_string_token(
    contract_adapter: Adapter, token: object
) -> None:
    user = await make_user(contract_adapter)

    with pytest.raises(ValueError, match=r"^a session's session_token must be a string$"):
        await contract_adapter.create_session(
            {"session_token": token, "user_id": user.id, "expires": later(days=1)}
        )
    assert await contract_adapter.list_sessions(user.id) == []


async def test_authjs_session_field_names_are_accepted(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    expires = later(days=1)

    session = await contract_adapter.create_session(
        {"sessionToken": "camel", "userId": user.id, "expires": expires, "userAgent": "UA"}
    )

    assert (session.session_token, session.user_id, session.expires) == ("camel", user.id, expires)
    assert session.user_agent == "UA" and session.extra == {}
    updated = await contract_adapter.update_session(
        {"sessionToken": "camel", "lastSeenAt": expires}
    )
    assert updated is not None and updated.last_seen_at == expires


async def test_get_session_and_user(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    session = await make_session(contract_adapter, user, "tok", device="laptop")

    assert await contract_adapter.get_session_and_user("tok") == (session, user)
    assert session.extra == {"device": "laptop"}
    assert await contract_adapter.get_session_and_user("other") is None


async def test_a_session_of_a_user_never_stored_has_no_user(contract_adapter: Adapter) -> None:
    await contract_adapter.create_session(
        {"session_token": "t", "user_id": UNKNOWN_ID, "expires": later()}
    )

    assert await contract_adapter.get_session_and_user("t") is None


async def test_update_session(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    session = await make_session(contract_adapter, user, "tok")
    expires, seen = later(days=31), later(seconds=5)

    updated = await contract_adapter.update_session(
        {"session_token": "tok", "expires": expires, "last_seen_at": seen, "data": {"a": 1}}
    )

    assert updated is not None
    assert (updated.expires, updated.last_seen_at) == (expires, seen)
    assert updated.created_at == session.created_at and updated.id == session.id
    assert updated.extra == {"data": {"a": 1}}
    found = await contract_adapter.get_session_and_user("tok")
    assert found is not None and found[0] == updated
    assert (
        await contract_adapter.update_session({"session_token": "nope", "expires": expires}) is None
    )
    assert await contract_adapter.update_session({"expires": expires}) is None


@pytest.mark.parametrize("key", ["expires", "user_id", "userId"])
async def test_update_session_cannot_unset_the_user_or_the_expiry(
    contract_adapter: Adapter, key: str
) -> None:
    user = await make_user(contract_adapter)
    session = await make_session(contract_adapter, user, "tok")
    name = "user_id" if key == "userId" else key

    with pytest.raises(ValueError, match=f"^a session's {name} cannot be None$"):
        await contract_adapter.update_session({"session_token": "tok", key: None})
    assert await contract_adapter.get_session_and_user("tok") == (session, user), "unchanged"


@pytest.mark.parametrize("value", NOT_DATETIMES)
@pytest.mark.parametrize("key", ["expires", "last_seen_at", "lastSeenAt"])
async def test_update_session_needs_datetimes(
    contract_adapter: Adapter, key: str, value: object
) -> None:
    user = await make_user(contract_adapter)
    session = await make_session(contract_adapter, user, "tok")
    name = "last_seen_at" if key == "lastSeenAt" else key

    with pytest.raises(ValueError, match=f"^a session's {name} must be a datetime$"):
        await contract_adapter.update_session({"session_token": "tok", key: value})
    assert await contract_adapter.get_session_and_user("tok") == (session, user), "unchanged"


async def test_update_session_needs_a_valid_user_id(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    session = await make_session(contract_adapter, user, "tok")

    with pytest.raises(ValueError, match="not a valid id"):
        await contract_adapter.update_session({"session_token": "tok", "user_id": "abc"})
    assert await contract_adapter.get_session_and_user("tok") == (session, user), "unchanged"


async def test_delete_session(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    session = await make_session(contract_adapter, user, "tok")

    assert await contract_adapter.delete_session("tok") == session
    assert await contract_adapter.get_session_and_user("tok") is None
    assert await contract_adapter.delete_session("tok") is None


async def test_list_sessions_newest_first(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    other = await make_user(contract_adapter, "other@example.com")
    start = later(hours=-3)
    for hours, token in ((1, "middle"), (2, "newest"), (0, "oldest")):
        await make_session(contract_adapter, user, token, created_at=start + timedelta(hours=hours))
    await make_session(contract_adapter, other, "not-mine")

    listed = await contract_adapter.list_sessions(user.id)

    assert [session.session_token for session in listed] == ["newest", "middle", "oldest"]
    assert await contract_adapter.list_sessions(UNKNOWN_ID) == []


async def test_sessions_created_at_one_moment_list_the_last_created_first(
    contract_adapter: Adapter,
) -> None:
    user = await make_user(contract_adapter)
    moment = later()
    for token in ("first", "second", "third"):
        await make_session(contract_adapter, user, token, created_at=moment)

    listed = await contract_adapter.list_sessions(user.id)

    assert [session.session_token for session in listed] == ["third", "second", "first"]


async def test_delete_sessions_except_one(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    other = await make_user(contract_adapter, "other@example.com")
    for token in ("a", "b", "keep"):
        await make_session(contract_adapter, user, token)
    await make_session(contract_adapter, other, "theirs")

    assert await contract_adapter.delete_sessions(user.id, except_token="keep") == 2
    assert [s.session_token for s in await contract_adapter.list_sessions(user.id)] == ["keep"]
    assert await contract_adapter.delete_sessions(user.id) == 1
    assert await contract_adapter.list_sessions(user.id) == []
    assert await contract_adapter.get_session_and_user("theirs") is not None


# -- verification tokens -----------------------------------------------------------------


async def test_verification_token_is_single_use(contract_adapter: Adapter) -> None:
    expires = later(hours=24)
    created = await contract_adapter.create_verification_token(
        VerificationToken(identifier="ada@example.com", token="hashed", expires=expires)
    )
    use = contract_adapter.use_verification_token

    assert created == VerificationToken("ada@example.com", "hashed", expires)
    assert await use(identifier="ada@example.com", token="wrong") is None
    assert await use(identifier="bob@example.com", token="hashed") is None
    assert await use(identifier="ada@example.com", token="hashed") == created
    assert await use(identifier="ada@example.com", token="hashed") is None


async def test_a_duplicate_verification_token_raises(contract_adapter: Adapter) -> None:
    token = {"identifier": "a@example.com", "token": "t", "expires": later(hours=1)}
    await contract_adapter.create_verification_token(token)

    with pytest.raises(DuplicateRecordError, match=TAKEN_VERIFICATION_TOKEN):
        await contract_adapter.create_verification_token(token)
    other = await contract_adapter.create_verification_token(
        {**token, "identifier": "b@example.com"}
    )
    assert other.identifier == "b@example.com"


async def test_verification_token_extra_fields_are_dropped(contract_adapter: Adapter) -> None:
    expires = later(hours=1)

    created = await contract_adapter.create_verification_token(
        {"identifier": "a@example.com", "token": "t", "expires": expires, "note": "x"}
    )

    assert created == VerificationToken("a@example.com", "t", expires)
    with pytest.raises(ValueError, match="a verification token needs expires"):
        await contract_adapter.create_verification_token(
            {"identifier": "a@example.com", "token": "u"}
        )


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"identifier": 7}, "a verification token's identifier must be a string"),
        ({"token": ["t"]}, "a verification token's token must be a string"),
        *(
            ({"expires": value}, "a verification token's expires must be a datetime")
            for value in NOT_DATETIMES
        ),
    ],
)
async def test_verification_token_fields_must_have_their_types(
    contract_adapter: Adapter, more: dict[str, Any], message: str
) -> None:
    token = {"identifier": "a@example.com", "token": "t", "expires": later(hours=1), **more}

    with pytest.raises(ValueError, match=f"^{message}$"):
        await contract_adapter.create_verification_token(token)
    assert (
        await contract_adapter.use_verification_token(identifier="a@example.com", token="t") is None
    )


async def test_concurrent_uses_of_one_token_succeed_once(contract_adapter: Adapter) -> None:
    await contract_adapter.create_verification_token(
        {"identifier": "a@example.com", "token": "t", "expires": later(hours=1)}
    )

    results = await asyncio.gather(
        *(
            contract_adapter.use_verification_token(identifier="a@example.com", token="t")
            for _ in range(10)
        )
    )

    assert sum(result is not None for result in results) == 1


async def test_delete_verification_tokens_drops_one_identifiers_tokens(
    contract_adapter: Adapter,
) -> None:
    for identifier, token in [("reset:a", "1"), ("reset:a", "2"), ("reset:b", "3")]:
        await contract_adapter.create_verification_token(
            {"identifier": identifier, "token": token, "expires": later(hours=1)}
        )
    use = contract_adapter.use_verification_token
    assert isinstance(contract_adapter, TokenSweeper)

    assert await contract_adapter.delete_verification_tokens("reset:a") == 2
    assert await contract_adapter.delete_verification_tokens("reset:a") == 0
    assert await contract_adapter.delete_verification_tokens(7) == 0  # type: ignore[arg-type]
    assert await use(identifier="reset:a", token="1") is None
    assert await use(identifier="reset:a", token="2") is None
    assert await use(identifier="reset:b", token="3") is not None


# -- JWT revocation ----------------------------------------------------------------------


async def test_revocation_cutoff_only_moves_forward(contract_adapter: Adapter) -> None:
    user = await make_user(contract_adapter)
    first, second = later(seconds=-60), later()

    assert await contract_adapter.tokens_revoked_before(user.id) is None
    await contract_adapter.revoke_tokens_issued_before(user.id, second)
    await contract_adapter.revoke_tokens_issued_before(user.id, first)

    assert await contract_adapter.tokens_revoked_before(user.id) == second
    assert await contract_adapter.tokens_revoked_before(UNKNOWN_ID) is None
    third = later(seconds=60)
    await contract_adapter.revoke_tokens_issued_before(user.id, third)
    assert await contract_adapter.tokens_revoked_before(user.id) == third


async def test_revocation_works_for_ids_that_are_not_hex(contract_adapter: Adapter) -> None:
    when = later()

    await contract_adapter.revoke_tokens_issued_before("credentials-user-7", when)

    assert await contract_adapter.tokens_revoked_before("credentials-user-7") == when
    with pytest.raises(ValueError, match="user_id"):
        await contract_adapter.revoke_tokens_issued_before("", when)


@pytest.mark.parametrize("when", NOT_DATETIMES)
async def test_a_revocation_cutoff_must_be_a_datetime(contract_adapter: Adapter, when: Any) -> None:
    with pytest.raises(ValueError, match=r"^when must be a datetime$"):
        await contract_adapter.revoke_tokens_issued_before("u", when)
    assert await contract_adapter.tokens_revoked_before("u") is None


# -- authenticators (passkeys) -----------------------------------------------------------
# Standard base64 with padding, as Auth.js spells credential ids and public keys.
CREDENTIAL_ID = "AAECAwQFBgcICQoLDA0ODw=="
OTHER_CREDENTIAL_ID = "EBESExQVFhcYGRobHB0eHw=="
PUBLIC_KEY = "pQECAyYgASFYIGZha2Uta2V5LWZvci10ZXN0cy1vbmx5LWZha2Uta2V5Ilgg"

TAKEN_CREDENTIAL = "^an authenticator with this credential id is already registered$"
REQUIRED_AUTHENTICATOR_FIELDS = [
    "credential_id",
    "user_id",
    "provider_account_id",
    "credential_public_key",
    "counter",
    "credential_device_type",
    "credential_backed_up",
]
#: Auth.js's name of each field it stores under another name than ours.
AUTHJS_AUTHENTICATOR_NAMES = {
    "credential_id": "credentialID",
    "user_id": "userId",
    "provider_account_id": "providerAccountId",
    "credential_public_key": "credentialPublicKey",
    "credential_device_type": "credentialDeviceType",
    "credential_backed_up": "credentialBackedUp",
    "created_at": "createdAt",
    "last_used_at": "lastUsedAt",
}


@runtime_checkable
class PasskeyAdapter(Adapter, AuthenticatorStore, Protocol):
    """What passkeys ask of an adapter: the contract and the authenticator methods."""


@pytest.fixture
def passkeys(contract_adapter: Adapter) -> PasskeyAdapter:
    """The contract's adapter, which keeps authenticators too."""
    assert isinstance(contract_adapter, PasskeyAdapter)
    return contract_adapter


def passkey_data(user: User, credential_id: str = CREDENTIAL_ID, **more: Any) -> dict[str, Any]:
    """A synced passkey of ``user`` that keeps no counter, under Python names."""
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


async def make_passkey(
    adapter: PasskeyAdapter, user: User, credential_id: str = CREDENTIAL_ID, **more: Any
) -> Authenticator:
    return await adapter.create_authenticator(passkey_data(user, credential_id, **more))


async def test_backend_satisfies_the_authenticator_store_protocol(
    contract_adapter: Adapter,
) -> None:
    assert isinstance(contract_adapter, AuthenticatorStore)


async def test_create_authenticator_keeps_every_field(passkeys: PasskeyAdapter) -> None:
    user = await make_user(passkeys)
    created_at = later(minutes=-5)

    authenticator = await make_passkey(
        passkeys, user, counter=3, name="Laptop", created_at=created_at, aaguid="adce0002"
    )

    assert authenticator == Authenticator(
        credential_id=CREDENTIAL_ID,
        user_id=user.id,
        provider_account_id=CREDENTIAL_ID,
        credential_public_key=PUBLIC_KEY,
        counter=3,
        credential_device_type="multiDevice",
        credential_backed_up=True,
        transports="internal,hybrid",
        name="Laptop",
        created_at=created_at,
        last_used_at=None,
        extra={"aaguid": "adce0002"},
    )
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == authenticator
    assert await passkeys.get_authenticator(OTHER_CREDENTIAL_ID) is None
    assert await passkeys.get_authenticator(CREDENTIAL_ID.lower()) is None, "exact match only"


async def test_create_authenticator_defaults_created_at_to_now(passkeys: PasskeyAdapter) -> None:
    user = await make_user(passkeys)
    before = datetime.now(UTC) - timedelta(milliseconds=1)

    authenticator = await make_passkey(passkeys, user, transports=None)

    assert authenticator.created_at is not None
    assert before <= authenticator.created_at <= datetime.now(UTC)
    assert (authenticator.transports, authenticator.name, authenticator.last_used_at) == (
        None,
        None,
        None,
    )
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == authenticator


async def test_create_authenticator_accepts_the_record_type_and_authjs_names(
    passkeys: PasskeyAdapter,
) -> None:
    user = await make_user(passkeys)
    record = Authenticator(
        credential_id=CREDENTIAL_ID,
        user_id=user.id,
        provider_account_id=CREDENTIAL_ID,
        credential_public_key=PUBLIC_KEY,
        counter=0,
        credential_device_type="singleDevice",
        credential_backed_up=False,
        extra={"aaguid": "x"},
    )

    from_record = await passkeys.create_authenticator(record)
    camel = await passkeys.create_authenticator(
        {
            "credentialID": OTHER_CREDENTIAL_ID,
            "userId": user.id.upper(),
            "providerAccountId": OTHER_CREDENTIAL_ID,
            "credentialPublicKey": PUBLIC_KEY,
            "counter": 9,
            "credentialDeviceType": "multiDevice",
            "credentialBackedUp": True,
            "transports": "usb",
        }
    )

    assert from_record.extra == {"aaguid": "x"} and from_record.created_at is not None
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == from_record
    assert (camel.credential_id, camel.user_id, camel.counter) == (OTHER_CREDENTIAL_ID, user.id, 9)
    assert (camel.credential_public_key, camel.credential_backed_up) == (PUBLIC_KEY, True)
    assert camel.extra == {}
    assert await passkeys.get_authenticator(OTHER_CREDENTIAL_ID) == camel


async def test_registering_a_credential_twice_raises(passkeys: PasskeyAdapter) -> None:
    user = await make_user(passkeys)
    other = await make_user(passkeys, "other@example.com")
    first = await make_passkey(passkeys, user)

    with pytest.raises(DuplicateRecordError, match=TAKEN_CREDENTIAL):
        await make_passkey(passkeys, user, counter=5)
    with pytest.raises(DuplicateRecordError, match=TAKEN_CREDENTIAL):
        await make_passkey(passkeys, other)
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == first, "nothing changed"
    assert await passkeys.list_authenticators_by_user_id(other.id) == []


async def test_concurrent_registrations_of_one_credential_store_one(
    passkeys: PasskeyAdapter,
) -> None:
    # The adapter is fresh: on MongoDB the unique index is created by these very calls.
    user = await make_user(passkeys)

    results = await asyncio.gather(
        *(make_passkey(passkeys, user, name=f"n{i}") for i in range(10)), return_exceptions=True
    )

    created = [result for result in results if isinstance(result, Authenticator)]
    refused = [result for result in results if isinstance(result, DuplicateRecordError)]
    assert (len(created), len(refused)) == (1, 9)
    assert await passkeys.list_authenticators_by_user_id(user.id) == created


@pytest.mark.parametrize(
    "key",
    [*REQUIRED_AUTHENTICATOR_FIELDS, "credentialID", "userId", "credentialBackedUp"],
)
async def test_create_authenticator_refuses_none_for_what_it_needs(
    passkeys: PasskeyAdapter, key: str
) -> None:
    user = await make_user(passkeys)
    aliases = {stored: python for python, stored in AUTHJS_AUTHENTICATOR_NAMES.items()}
    name = aliases.get(key, key)
    data = passkey_data(user)
    del data[name]

    with pytest.raises(ValueError, match=f"^an authenticator needs {name}$"):
        await passkeys.create_authenticator(data)
    with pytest.raises(ValueError, match=f"^an authenticator needs {name}$"):
        await passkeys.create_authenticator({**data, key: None})
    assert await passkeys.list_authenticators_by_user_id(user.id) == []


@pytest.mark.parametrize("counter", [-1, 1.0, 2.5, "1", True, 2**32])
async def test_an_authenticator_counter_is_a_32_bit_whole_number(
    passkeys: PasskeyAdapter, counter: object
) -> None:
    user = await make_user(passkeys)

    with pytest.raises(
        ValueError,
        match=r"^an authenticator's counter must be a whole number from 0 to 4294967295$",
    ):
        await make_passkey(passkeys, user, counter=counter)
    assert await passkeys.get_authenticator(CREDENTIAL_ID) is None
    largest = await make_passkey(passkeys, user, counter=2**32 - 1)
    assert largest.counter == 2**32 - 1


@pytest.mark.parametrize("backed_up", [1, 0, "true", "false"])
async def test_credential_backed_up_is_a_bool(passkeys: PasskeyAdapter, backed_up: object) -> None:
    user = await make_user(passkeys)

    with pytest.raises(
        ValueError, match=r"^an authenticator's credential_backed_up must be True or False$"
    ):
        await make_passkey(passkeys, user, credential_backed_up=backed_up)
    assert await passkeys.get_authenticator(CREDENTIAL_ID) is None


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"credential_id": 7}, "an authenticator's credential_id must be a string"),
        (
            {"credential_public_key": b"key"},
            "an authenticator's credential_public_key must be a string",
        ),
        (
            {"credential_device_type": 1},
            "an authenticator's credential_device_type must be a string",
        ),
        ({"transports": ["internal"]}, "an authenticator's transports must be a string"),
        ({"name": 7}, "an authenticator's name must be a string"),
        *(
            ({"created_at": value}, "an authenticator's created_at must be a datetime")
            for value in NOT_DATETIMES
        ),
        ({"lastUsedAt": "yesterday"}, "an authenticator's last_used_at must be a datetime"),
    ],
)
async def test_authenticator_fields_must_have_their_types(
    passkeys: PasskeyAdapter, more: dict[str, Any], message: str
) -> None:
    user = await make_user(passkeys)

    with pytest.raises(ValueError, match=f"^{message}$"):
        await passkeys.create_authenticator({**passkey_data(user), **more})
    assert await passkeys.list_authenticators_by_user_id(user.id) == []


async def test_create_authenticator_needs_a_valid_user_id(passkeys: PasskeyAdapter) -> None:
    with pytest.raises(ValueError, match="user_id 'user-1' is not a valid id"):
        await passkeys.create_authenticator({**passkey_data(User(id="user-1"))})
    assert await passkeys.get_authenticator(CREDENTIAL_ID) is None


async def test_authenticator_records_come_back_as_they_read_back(
    passkeys: PasskeyAdapter,
) -> None:
    user = await make_user(passkeys)
    paris = timezone(timedelta(hours=2))
    moment = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=paris)
    kept = datetime(2024, 5, 1, 10, 30, 15, 123000, tzinfo=UTC)

    created = await make_passkey(
        passkeys, user, created_at=moment, seen={"first": (moment,)}, flags=["uv"]
    )
    used = await passkeys.update_authenticator_counter(CREDENTIAL_ID, 1, used_at=moment)

    assert created.created_at == kept and created.created_at.utcoffset() == timedelta(0)
    assert created.extra == {"seen": {"first": [kept]}, "flags": ["uv"]}
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == used
    assert used is not None and used.last_used_at == kept
    assert await passkeys.list_authenticators_by_user_id(user.id) == [used]


async def test_list_authenticators_oldest_first(passkeys: PasskeyAdapter) -> None:
    user = await make_user(passkeys)
    other = await make_user(passkeys, "other@example.com")
    start = later(hours=-3)
    for hours, name in ((1, "middle"), (2, "newest"), (0, "oldest")):
        await make_passkey(
            passkeys, user, f"{name}==", name=name, created_at=start + timedelta(hours=hours)
        )
    moment = later()
    for name in ("first", "second"):
        await make_passkey(passkeys, user, f"{name}==", name=name, created_at=moment)
    await make_passkey(passkeys, other, "theirs==")

    listed = await passkeys.list_authenticators_by_user_id(user.id)

    assert [a.name for a in listed] == ["oldest", "middle", "newest", "first", "second"]
    assert [a.credential_id for a in await passkeys.list_authenticators_by_user_id(other.id)] == [
        "theirs=="
    ]
    assert await passkeys.list_authenticators_by_user_id(UNKNOWN_ID) == []


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
async def test_malformed_user_ids_list_no_authenticators(
    passkeys: PasskeyAdapter, bad_id: str
) -> None:
    await make_passkey(passkeys, await make_user(passkeys))

    assert await passkeys.list_authenticators_by_user_id(bad_id) == []


@pytest.mark.parametrize(
    ("stored", "sent", "accepted"),
    [
        (5, 6, True),
        (5, 1_000, True),
        (0, 1, True),
        (0, 0, True),  # authenticators that keep no counter always send 0
        (5, 5, False),  # a replayed assertion
        (5, 4, False),  # a cloned authenticator
        (5, 0, False),
        (2**32 - 2, 2**32 - 1, True),
    ],
)
async def test_update_authenticator_counter_only_goes_up(
    passkeys: PasskeyAdapter, stored: int, sent: int, accepted: bool
) -> None:
    user = await make_user(passkeys)
    registered = await make_passkey(passkeys, user, counter=stored)

    updated = await passkeys.update_authenticator_counter(CREDENTIAL_ID, sent)

    if accepted:
        assert updated is not None
        assert updated == dataclasses.replace(registered, counter=sent)
        assert await passkeys.get_authenticator(CREDENTIAL_ID) == updated
    else:
        assert updated is None
        assert await passkeys.get_authenticator(CREDENTIAL_ID) == registered, "unchanged"


async def test_update_authenticator_counter_of_an_unknown_credential_is_none(
    passkeys: PasskeyAdapter,
) -> None:
    await make_passkey(passkeys, await make_user(passkeys))

    assert await passkeys.update_authenticator_counter(OTHER_CREDENTIAL_ID, 1) is None
    assert await passkeys.get_authenticator(OTHER_CREDENTIAL_ID) is None


async def test_update_authenticator_counter_records_when_it_was_used(
    passkeys: PasskeyAdapter,
) -> None:
    user = await make_user(passkeys)
    await make_passkey(passkeys, user)
    first, second = later(minutes=-1), later()

    used = await passkeys.update_authenticator_counter(CREDENTIAL_ID, 0, used_at=first)
    refused = await passkeys.update_authenticator_counter(CREDENTIAL_ID, 0, used_at=second)
    naive = await passkeys.update_authenticator_counter(
        CREDENTIAL_ID, 0, used_at=second.replace(tzinfo=None)
    )
    unrecorded = await passkeys.update_authenticator_counter(CREDENTIAL_ID, 0)

    assert used is not None and used.last_used_at == first
    assert refused is not None and refused.last_used_at == second, "both zero: accepted"
    assert naive is not None and naive.last_used_at == second, "naive is UTC"
    assert unrecorded is not None and unrecorded.last_used_at == second, "left as it was"
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == unrecorded


async def test_a_refused_counter_records_no_use(passkeys: PasskeyAdapter) -> None:
    user = await make_user(passkeys)
    await make_passkey(passkeys, user, counter=5)
    used = await passkeys.update_authenticator_counter(CREDENTIAL_ID, 6, used_at=later(minutes=-1))

    assert await passkeys.update_authenticator_counter(CREDENTIAL_ID, 6, used_at=later()) is None
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == used


@pytest.mark.parametrize(
    ("counter", "used_at", "message"),
    [
        (-1, None, "^counter must be a whole number from 0 to 4294967295$"),
        (2**32, None, "^counter must be a whole number from 0 to 4294967295$"),
        (1.0, None, "^counter must be a whole number from 0 to 4294967295$"),
        (True, None, "^counter must be a whole number from 0 to 4294967295$"),
        ("7", None, "^counter must be a whole number from 0 to 4294967295$"),
        *((1, value, "^used_at must be a datetime or None$") for value in NOT_DATETIMES),
    ],
)
async def test_update_authenticator_counter_refuses_wrong_types(
    passkeys: PasskeyAdapter, counter: Any, used_at: Any, message: str
) -> None:
    registered = await make_passkey(passkeys, await make_user(passkeys))

    with pytest.raises(ValueError, match=message):
        await passkeys.update_authenticator_counter(CREDENTIAL_ID, counter, used_at=used_at)
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == registered


async def test_concurrent_uses_of_one_counter_let_exactly_one_through(
    passkeys: PasskeyAdapter,
) -> None:
    user = await make_user(passkeys)
    await make_passkey(passkeys, user, counter=3)

    results = await asyncio.gather(
        *(passkeys.update_authenticator_counter(CREDENTIAL_ID, 4) for _ in range(20))
    )

    through = [result for result in results if result is not None]
    assert len(through) == 1 and through[0].counter == 4
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == through[0]


async def test_update_authenticator_renames_it(passkeys: PasskeyAdapter) -> None:
    user = await make_user(passkeys)
    registered = await make_passkey(passkeys, user, name="Phone")

    renamed = await passkeys.update_authenticator(CREDENTIAL_ID, {"name": "Work phone"})

    assert renamed == dataclasses.replace(registered, name="Work phone")
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == renamed
    assert await passkeys.update_authenticator(CREDENTIAL_ID, {}) == renamed
    cleared = await passkeys.update_authenticator(
        CREDENTIAL_ID, {"name": None, "credentialBackedUp": False, "aaguid": "x"}
    )
    assert cleared == dataclasses.replace(
        registered, name=None, credential_backed_up=False, extra={"aaguid": "x"}
    )
    assert await passkeys.update_authenticator(OTHER_CREDENTIAL_ID, {"name": "x"}) is None
    assert await passkeys.get_authenticator(OTHER_CREDENTIAL_ID) is None


@pytest.mark.parametrize(
    "key",
    [
        "credential_id",
        "credentialID",
        "user_id",
        "userId",
        "provider_account_id",
        "providerAccountId",
        "credential_public_key",
        "credentialPublicKey",
        "counter",
        "id",
        "_id",
    ],
)
async def test_update_authenticator_cannot_change_the_credential_or_its_counter(
    passkeys: PasskeyAdapter, key: str
) -> None:
    registered = await make_passkey(passkeys, await make_user(passkeys))

    with pytest.raises(ValueError, match=f"^update_authenticator cannot change {key}; "):
        await passkeys.update_authenticator(CREDENTIAL_ID, {key: 9, "name": "x"})
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == registered, "unchanged"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": 7}, "^an authenticator's name must be a string$"),
        (
            {"credential_backed_up": None},
            "^an authenticator's credential_backed_up cannot be None$",
        ),
        ({"credentialBackedUp": "yes"}, "^an authenticator's credential_backed_up must be True"),
        ({"credential_device_type": None}, "^an authenticator's credential_device_type cannot be"),
        ({"last_used_at": "today"}, "^an authenticator's last_used_at must be a datetime$"),
    ],
)
async def test_update_authenticator_checks_what_it_sets(
    passkeys: PasskeyAdapter, changes: dict[str, Any], message: str
) -> None:
    registered = await make_passkey(passkeys, await make_user(passkeys))

    with pytest.raises(ValueError, match=message):
        await passkeys.update_authenticator(CREDENTIAL_ID, changes)
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == registered, "unchanged"


async def test_delete_authenticator(passkeys: PasskeyAdapter) -> None:
    user = await make_user(passkeys)
    registered = await make_passkey(passkeys, user)
    kept = await make_passkey(passkeys, user, OTHER_CREDENTIAL_ID)

    assert await passkeys.delete_authenticator(CREDENTIAL_ID) == registered
    assert await passkeys.get_authenticator(CREDENTIAL_ID) is None
    assert await passkeys.delete_authenticator(CREDENTIAL_ID) is None
    assert await passkeys.update_authenticator_counter(CREDENTIAL_ID, 1) is None
    assert await passkeys.list_authenticators_by_user_id(user.id) == [kept]
    again = await make_passkey(passkeys, user)
    assert again.credential_id == CREDENTIAL_ID, "it can be registered again"


async def test_delete_user_removes_their_authenticators(passkeys: PasskeyAdapter) -> None:
    user = await make_user(passkeys)
    other = await make_user(passkeys, "other@example.com")
    await make_passkey(passkeys, user)
    await make_passkey(passkeys, user, "second==")
    theirs = await make_passkey(passkeys, other, OTHER_CREDENTIAL_ID)

    assert await passkeys.delete_user(user.id) == user

    assert await passkeys.get_authenticator(CREDENTIAL_ID) is None
    assert await passkeys.get_authenticator("second==") is None
    assert await passkeys.list_authenticators_by_user_id(user.id) == []
    assert await passkeys.get_authenticator(OTHER_CREDENTIAL_ID) == theirs
    assert await make_passkey(passkeys, other), "the credential id can be used again"


async def test_credential_ids_that_are_not_strings_match_nothing(
    passkeys: PasskeyAdapter,
) -> None:
    # A query operator in place of a string must not match every stored authenticator.
    registered = await make_passkey(passkeys, await make_user(passkeys))
    weird: Any = {"$ne": ""}

    assert await passkeys.get_authenticator(weird) is None
    assert await passkeys.update_authenticator_counter(weird, 9) is None
    assert await passkeys.update_authenticator(weird, {"name": "x"}) is None
    assert await passkeys.delete_authenticator(weird) is None
    assert await passkeys.list_authenticators_by_user_id(weird) == []
    assert await passkeys.get_authenticator(CREDENTIAL_ID) == registered
