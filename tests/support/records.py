"""Small builders of users, sessions and accounts for the adapter tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from asgi_session.backends import Adapter
from asgi_session.models import SessionRecord, User

#: Ids no adapter accepts: wrong length, not hex, or not an id at all.
MALFORMED_IDS = ["", "nope", "0" * 23, "0" * 25, "g" * 24, "abcdefghijkl", "../../etc"]

#: A well-formed id that no test stores.
UNKNOWN_ID = "0123456789abcdef01234567"


def later(**delta: float) -> datetime:
    """A time from now, at the millisecond precision the adapters keep."""
    moment = datetime.now(UTC) + timedelta(**delta)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def make_user(adapter: Adapter, email: str = "ada@example.com", **more: Any) -> User:
    """Ada (or whoever ``email`` names), stored through ``adapter``."""
    return await adapter.create_user({"name": "Ada", "email": email, **more})


async def make_session(
    adapter: Adapter, user: User, token: str | None = None, **more: Any
) -> SessionRecord:
    """A session of ``user`` lasting 30 days; a fresh token unless one is given."""
    return await adapter.create_session(
        {
            "session_token": token or uuid.uuid4().hex,
            "user_id": user.id,
            "expires": later(days=30),
            **more,
        }
    )


def account_data(user: User, provider_account_id: str = "gh-1", **more: Any) -> dict[str, Any]:
    """A GitHub account of ``user``, with every token field set."""
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
