"""The record layer every adapter shares: input checks, names, times, ids, records.

What adapters do with it is tested through the contract in test_backends_adapter.py;
these tests pin the layer itself, including what no adapter shows directly: the
fields it hands an adapter to store, and ids that are not ObjectIds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from asgi_session.backends import _records as records
from asgi_session.models import (
    ACCOUNT_FIELDS,
    AUTHENTICATOR_FIELDS,
    SESSION_FIELDS,
    USER_FIELDS,
    Account,
    Authenticator,
    SessionRecord,
    User,
    VerificationToken,
)

HEX = "65a1b2c3d4e5f60718293a4b"
SOON = datetime(2030, 1, 1, tzinfo=UTC)


def _numbers(value: object) -> str | None:
    """Ids of a store that numbers its rows, as a SQL adapter might."""
    return str(value) if isinstance(value, int | str) and str(value).isdigit() else None


def _session(**more: Any) -> dict[str, Any]:
    return {"session_token": "tok", "user_id": HEX, "expires": SOON, **more}


def _account(**more: Any) -> dict[str, Any]:
    return {
        "user_id": HEX,
        "type": "oauth",
        "provider": "github",
        "provider_account_id": "gh-1",
        **more,
    }


# -- ids and times -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (HEX, HEX),
        (HEX.upper(), HEX),
        ("0" * 23, None),
        ("0" * 25, None),
        ("g" * 24, None),
        (" " + HEX[1:], None),
        (int("1" * 24, 16), None),
        (None, None),
    ],
)
def test_hex_id_accepts_24_hex_digits_only(value: object, expected: str | None) -> None:
    assert records.hex_id(value) == expected


def test_utc_is_aware_utc_to_the_millisecond() -> None:
    paris = timezone(timedelta(hours=2))

    assert records.utc(datetime(2024, 5, 1, 12, 30, 15, 123999, tzinfo=paris)) == datetime(
        2024, 5, 1, 10, 30, 15, 123000, tzinfo=UTC
    )
    naive = records.utc(datetime(2024, 5, 1, 10, 30, 15))
    assert naive.tzinfo is UTC and naive == datetime(2024, 5, 1, 10, 30, 15, tzinfo=UTC)


# -- users -------------------------------------------------------------------------------


def test_user_input_gives_only_the_fields_given_under_python_names() -> None:
    verified = datetime(2024, 5, 1, 10, 30, 15, 123456)

    user_id, fields = records.user_input(
        {"id": HEX.upper(), "email": "a@example.com", "emailVerified": verified, "image": None},
        parse_id=records.hex_id,
    )

    assert user_id == HEX
    assert fields == {
        "email": "a@example.com",
        "email_verified": datetime(2024, 5, 1, 10, 30, 15, 123000, tzinfo=UTC),
        "image": None,
    }


def test_user_input_takes_records_and_leaves_out_ids_it_cannot_parse() -> None:
    user_id, fields = records.user_input(
        User(id="user-1", name="Ada", extra={"role": "admin"}), parse_id=records.hex_id
    )

    assert user_id is None
    assert fields == {
        "name": "Ada",
        "email": None,
        "image": None,
        "email_verified": None,
        "role": "admin",
    }


def test_user_input_uses_the_adapters_ids() -> None:
    assert records.user_input({"id": 42}, parse_id=_numbers)[0] == "42"
    assert records.user_input({"id": HEX}, parse_id=_numbers)[0] is None


def test_user_input_refuses_a_verification_time_that_is_not_a_datetime() -> None:
    with pytest.raises(ValueError, match="a user's email_verified must be a datetime"):
        records.user_input({"email_verified": "2024-05-01"}, parse_id=records.hex_id)


def test_inputs_are_copies_with_nested_times_in_utc() -> None:
    nested = {"tags": ("a", "b"), "seen": [datetime(2024, 1, 1, 0, 0, 0, 999999)]}

    _, fields = records.user_input({"prefs": nested}, parse_id=records.hex_id)
    nested["tags"] = ("changed",)

    assert fields["prefs"] == {
        "tags": ["a", "b"],
        "seen": [datetime(2024, 1, 1, 0, 0, 0, 999000, tzinfo=UTC)],
    }


def test_both_names_of_a_field_must_agree() -> None:
    with pytest.raises(ValueError, match="a session's user_id is given twice"):
        records.session_input(_session(userId="0" * 24), parse_id=records.hex_id)

    fields = records.session_input(_session(userId=HEX), parse_id=records.hex_id)
    assert fields["user_id"] == HEX


# -- accounts ----------------------------------------------------------------------------


def test_account_input_parses_the_user_id_and_accepts_authjs_names() -> None:
    fields = records.account_input(
        {"userId": HEX.upper(), "type": "oauth", "provider": "x", "providerAccountId": "1"},
        parse_id=records.hex_id,
    )

    assert fields == {"user_id": HEX, "type": "oauth", "provider": "x", "provider_account_id": "1"}
    assert records.account_input(_account(user_id=7), parse_id=_numbers)["user_id"] == "7"


@pytest.mark.parametrize("missing", ["user_id", "type", "provider", "provider_account_id"])
def test_account_input_needs_its_key_fields(missing: str) -> None:
    with pytest.raises(ValueError, match=f"an account needs {missing}"):
        records.account_input(_account(**{missing: None}), parse_id=records.hex_id)


@pytest.mark.parametrize("key", ["provider", "provider_account_id", "providerAccountId"])
def test_account_input_needs_string_keys(key: str) -> None:
    name = "provider" if key == "provider" else "provider_account_id"

    data = {field: value for field, value in _account().items() if field != name}

    with pytest.raises(ValueError, match=f"an account's {name} must be a string"):
        records.account_input({**data, key: 7}, parse_id=records.hex_id)


def test_account_input_refuses_a_user_id_that_is_not_an_id() -> None:
    with pytest.raises(ValueError, match="user_id 'u-1' is not a valid id"):
        records.account_input(_account(user_id="u-1"), parse_id=records.hex_id)


def test_account_changes_cannot_move_the_account_or_unset_its_type() -> None:
    with pytest.raises(ValueError, match="cannot change _id, providerAccountId, user_id"):
        records.account_changes({"user_id": HEX, "providerAccountId": "2", "_id": 1})
    with pytest.raises(ValueError, match="an account's type cannot be None"):
        records.account_changes({"type": None})

    assert records.account_changes({"access_token": "at", "expires_at": 5.0}) == {
        "access_token": "at",
        "expires_at": 5.0,
    }


def test_account_record_reads_whole_number_floats_as_int_expires_at() -> None:
    fields = records.from_stored({**_account(), "expires_at": 1_900_000_000.0}, ACCOUNT_FIELDS)

    whole = records.account_record("a1", fields)
    fraction = records.account_record("a1", {**fields, "expires_at": 1.5})

    assert whole.expires_at == 1_900_000_000 and isinstance(whole.expires_at, int)
    assert fraction.expires_at == 1.5


# -- sessions ----------------------------------------------------------------------------


def test_session_input_defaults_its_times() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)

    fields = records.session_input(_session(created_at=None), parse_id=records.hex_id)

    assert before <= fields["created_at"] <= datetime.now(UTC)
    assert fields["last_seen_at"] == fields["created_at"]
    seen = datetime(2029, 1, 1, tzinfo=UTC)
    given = records.session_input(
        _session(created_at=SOON, lastSeenAt=seen), parse_id=records.hex_id
    )
    assert (given["created_at"], given["last_seen_at"]) == (SOON, seen)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("expires", None, "a session needs expires"),
        ("user_id", None, "a session needs user_id"),
        ("session_token", None, "a session needs session_token"),
        ("expires", "tomorrow", "a session's expires must be a datetime"),
        ("created_at", 1_700_000_000, "a session's created_at must be a datetime"),
        ("session_token", 7, "a session's session_token must be a string"),
        ("user_id", "abc", "user_id 'abc' is not a valid id"),
    ],
)
def test_session_input_refuses(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        records.session_input(_session(**{field: value}), parse_id=records.hex_id)


def test_session_changes_name_the_session_apart_from_what_changes() -> None:
    token, changes = records.session_changes(
        {"sessionToken": "tok", "id": "s1", "userId": HEX, "data": {"a": 1}},
        parse_id=records.hex_id,
    )

    assert token == "tok"
    assert changes == {"user_id": HEX, "data": {"a": 1}}
    assert records.session_changes({"session_token": 7}, parse_id=records.hex_id) == (None, {})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"expires": None}, "a session's expires cannot be None"),
        ({"userId": None}, "a session's user_id cannot be None"),
        ({"expires": "never"}, "a session's expires must be a datetime"),
        ({"user_id": "abc"}, "user_id 'abc' is not a valid id"),
    ],
)
def test_session_changes_refuse(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        records.session_changes({"session_token": "tok", **changes}, parse_id=records.hex_id)


def test_session_record_keeps_unknown_fields_apart() -> None:
    stored = {"sessionToken": "tok", "userId": HEX, "expires": SOON, "device": "laptop"}

    record = records.session_record("s1", records.from_stored(stored, SESSION_FIELDS))

    assert record == SessionRecord(
        id="s1", session_token="tok", user_id=HEX, expires=SOON, extra={"device": "laptop"}
    )


# -- authenticators ----------------------------------------------------------------------


def _authenticator(**more: Any) -> dict[str, Any]:
    return {
        "credential_id": "Y3JlZA==",
        "user_id": HEX,
        "provider_account_id": "Y3JlZA==",
        "credential_public_key": "a2V5",
        "counter": 0,
        "credential_device_type": "singleDevice",
        "credential_backed_up": False,
        **more,
    }


def test_authenticator_fields_are_authjs_names() -> None:
    # What Auth.js's Authenticator stores, and the fields of ours it passes through.
    assert dict(AUTHENTICATOR_FIELDS) == {
        "credential_id": "credentialID",
        "user_id": "userId",
        "provider_account_id": "providerAccountId",
        "credential_public_key": "credentialPublicKey",
        "counter": "counter",
        "credential_device_type": "credentialDeviceType",
        "credential_backed_up": "credentialBackedUp",
        "transports": "transports",
        "name": "name",
        "created_at": "createdAt",
        "last_used_at": "lastUsedAt",
    }


def test_authenticator_input_takes_authjs_names_and_defaults_created_at() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)

    fields = records.authenticator_input(
        {
            "credentialID": "Y3JlZA==",
            "userId": HEX.upper(),
            "providerAccountId": "Y3JlZA==",
            "credentialPublicKey": "a2V5",
            "counter": 4,
            "credentialDeviceType": "multiDevice",
            "credentialBackedUp": True,
            "lastUsedAt": datetime(2024, 5, 1, 10, 30, 15, 123456),
        },
        parse_id=records.hex_id,
    )

    created_at = fields.pop("created_at")
    assert before <= created_at <= datetime.now(UTC)
    assert fields == {
        "credential_id": "Y3JlZA==",
        "user_id": HEX,
        "provider_account_id": "Y3JlZA==",
        "credential_public_key": "a2V5",
        "counter": 4,
        "credential_device_type": "multiDevice",
        "credential_backed_up": True,
        "last_used_at": datetime(2024, 5, 1, 10, 30, 15, 123000, tzinfo=UTC),
    }
    given = records.authenticator_input(
        _authenticator(user_id=7, created_at=SOON), parse_id=_numbers
    )
    assert (given["user_id"], given["created_at"]) == ("7", SOON)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("credential_id", None, "an authenticator needs credential_id"),
        ("counter", None, "an authenticator needs counter"),
        ("credential_backed_up", None, "an authenticator needs credential_backed_up"),
        ("counter", -1, "an authenticator's counter must be a whole number from 0 to 4294967295"),
        ("counter", 2**32, "an authenticator's counter must be a whole number from 0 to"),
        ("counter", False, "an authenticator's counter must be a whole number"),
        ("counter", 3.0, "an authenticator's counter must be a whole number"),
        ("credential_backed_up", 1, "an authenticator's credential_backed_up must be True or"),
        ("transports", ("usb",), "an authenticator's transports must be a string"),
        ("created_at", "2030-01-01", "an authenticator's created_at must be a datetime"),
        ("user_id", "u-1", "user_id 'u-1' is not a valid id"),
    ],
)
def test_authenticator_input_refuses(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        records.authenticator_input(_authenticator(**{field: value}), parse_id=records.hex_id)


def test_authenticator_changes_cannot_touch_the_credential_or_its_counter() -> None:
    with pytest.raises(
        ValueError,
        match="cannot change _id, counter, credentialPublicKey, user_id; "
        "use update_authenticator_counter to move the counter forward",
    ):
        records.authenticator_changes(
            {"user_id": HEX, "credentialPublicKey": "k", "counter": 1, "_id": 1, "name": "x"}
        )
    with pytest.raises(ValueError, match="an authenticator's credential_device_type cannot be"):
        records.authenticator_changes({"credentialDeviceType": None})

    assert records.authenticator_changes({"name": "Laptop", "credentialBackedUp": True}) == {
        "name": "Laptop",
        "credential_backed_up": True,
    }


def test_counter_input_checks_the_counter_and_the_time() -> None:
    assert records.counter_input(0, None) == (0, None)
    assert records.counter_input(2**32 - 1, datetime(2030, 1, 1)) == (2**32 - 1, SOON)
    with pytest.raises(ValueError, match=r"^counter must be a whole number from 0 to 4294967295$"):
        records.counter_input(True, None)
    with pytest.raises(ValueError, match=r"^used_at must be a datetime or None$"):
        records.counter_input(1, 1_900_000_000)


def test_authenticator_record_reads_whole_number_floats_as_int_counters() -> None:
    stored = {**records.to_stored(_authenticator(), AUTHENTICATOR_FIELDS), "counter": 12.0}

    record = records.authenticator_record({**records.from_stored(stored, AUTHENTICATOR_FIELDS)})

    assert record == Authenticator(
        credential_id="Y3JlZA==",
        user_id=HEX,
        provider_account_id="Y3JlZA==",
        credential_public_key="a2V5",
        counter=12,
        credential_device_type="singleDevice",
        credential_backed_up=False,
    )
    assert isinstance(record.counter, int)
    assert records.authenticator_record({**_authenticator(), "aaguid": "x"}).extra == {
        "aaguid": "x"
    }


# -- verification tokens and revocations -------------------------------------------------


def test_verification_input_keeps_its_three_fields() -> None:
    created = records.verification_input(
        {"identifier": "a@example.com", "token": "t", "expires": datetime(2030, 1, 1), "x": 1}
    )

    assert created == VerificationToken("a@example.com", "t", SOON)
    assert created.expires.tzinfo is UTC


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"expires": None}, "a verification token needs expires"),
        ({"identifier": 7}, "a verification token's identifier must be a string"),
        ({"token": b"t"}, "a verification token's token must be a string"),
        ({"expires": "2030-01-01"}, "a verification token's expires must be a datetime"),
    ],
)
def test_verification_input_refuses(more: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        records.verification_input({"identifier": "i", "token": "t", "expires": SOON, **more})


def test_revocation_input_takes_any_user_id_string_and_a_datetime() -> None:
    assert records.revocation_input("credentials-user-7", datetime(2030, 1, 1)) == (
        "credentials-user-7",
        SOON,
    )
    with pytest.raises(ValueError, match="user_id must be a non-empty string"):
        records.revocation_input("", SOON)
    with pytest.raises(ValueError, match="when must be a datetime"):
        records.revocation_input("u", "2030-01-01")


# -- stored names and records ------------------------------------------------------------


def test_stored_names_go_both_ways() -> None:
    fields = {"email_verified": SOON, "email": "a@example.com", "role": "admin"}

    stored = records.to_stored(fields, USER_FIELDS)

    assert stored == {"emailVerified": SOON, "email": "a@example.com", "role": "admin"}
    assert records.from_stored(stored, USER_FIELDS) == fields


def test_a_known_stored_field_wins_over_an_extra_one_of_its_python_name() -> None:
    stored = {"emailVerified": SOON, "email_verified": "written by someone else"}

    assert records.from_stored(stored, USER_FIELDS) == {"email_verified": SOON}


def test_user_record_reads_absent_fields_as_none() -> None:
    assert records.user_record(HEX, {"email": "a@example.com"}) == User(
        id=HEX, name=None, email="a@example.com", image=None, email_verified=None, extra={}
    )


def test_account_record_keeps_unknown_fields_apart() -> None:
    record = records.account_record("a1", {**_account(), "refresh_token_expires_in": 60})

    assert record == Account(
        id="a1",
        user_id=HEX,
        type="oauth",
        provider="github",
        provider_account_id="gh-1",
        extra={"refresh_token_expires_in": 60},
    )


def test_verification_record_ignores_other_stored_fields() -> None:
    stored = {"identifier": "i", "token": "t", "expires": SOON, "note": "x"}

    assert records.verification_record(stored) == VerificationToken("i", "t", SOON)
