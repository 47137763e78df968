from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from asgi_session._session import Session, SessionUser, copy_json, isoformat


def test_isoformat_matches_javascript() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert isoformat(moment) == "2026-01-02T03:04:05.678Z"


def test_user_fields_read_as_attributes_and_keys() -> None:
    user = SessionUser({"name": "Ann", "email": "a@example.com", "role": "admin"}, id="u1")
    assert user.id == "u1"
    assert user["id"] == "u1"
    assert user.name == user["name"] == "Ann"
    assert user.role == user["role"] == "admin"
    assert user.image is None
    with pytest.raises(AttributeError):
        _ = user.missing
    with pytest.raises(KeyError):
        _ = user["missing"]


def test_session_json_form() -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    session = Session(
        {"user": {"name": "Ann", "email": None, "image": None}, "role": "admin"},
        expires=expires,
        user_id="u1",
    )
    assert session.to_dict() == {
        "user": {"name": "Ann", "email": None, "image": None},
        "role": "admin",
        "expires": "2030-01-01T00:00:00.000Z",
    }
    assert session["role"] == "admin"
    assert session.user.id == "u1"
    assert session.expires == expires


async def test_update_needs_a_request() -> None:
    session = Session({"user": {}}, expires=datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(RuntimeError):
        await session.update({"a": 1})


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC), "2026-01-02T03:04:05.999Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC), "0999-12-31T23:59:59.000Z"),
        (
            datetime(2026, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            "2025-12-31T23:30:00.000Z",
        ),
    ],
)
def test_isoformat_truncates_to_milliseconds_in_utc(moment: datetime, expected: str) -> None:
    assert isoformat(moment) == expected


def test_copy_json_copies_lists_and_objects_all_the_way_down() -> None:
    original = {"a": [1, {"b": [2]}], "c": {"d": "e"}, "f": "g"}
    copied = copy_json(original)
    assert copied == original
    copied["a"][1]["b"].append(3)
    copied["c"]["d"] = "changed"
    assert original == {"a": [1, {"b": [2]}], "c": {"d": "e"}, "f": "g"}


def test_user_fields_holding_lists_or_objects_read_as_copies() -> None:
    user = SessionUser(
        {"name": ["Ann", "B."], "roles": ["admin"], "prefs": {"theme": "dark"}}, id="u1"
    )
    user.roles.append("x")
    user["roles"].append("y")
    user.prefs["theme"] = "light"
    user["name"].append("C.")
    assert user.roles == ["admin"]
    assert user.prefs == {"theme": "dark"}
    assert user["name"] == ["Ann", "B."]
    assert user.name == user["name"]
    assert dict(user) == {"name": ["Ann", "B."], "roles": ["admin"], "prefs": {"theme": "dark"}}


def test_session_keeps_its_own_copy_of_what_it_was_given() -> None:
    data: dict[str, Any] = {"user": {"name": "Ann", "roles": ["admin"]}, "role": "admin"}
    session = Session(data, expires=datetime(2030, 1, 1, tzinfo=UTC), user_id="u1")
    data["user"]["roles"].append("x")
    data["user"]["name"] = "Bob"
    data["role"] = "changed"
    assert session.user.name == "Ann"
    assert session.user.roles == ["admin"]
    assert session["role"] == "admin"
    assert "expires" not in data, "the caller's data is left as it was"
