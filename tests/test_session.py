from datetime import UTC, datetime

import pytest

from asgi_session._session import Session, SessionUser, isoformat


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
