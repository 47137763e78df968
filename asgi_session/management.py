"""Listing and ending a user's sessions: "where am I signed in" and "sign out everywhere".

Auth.js has neither. With the database strategy every session is a row, so one can be
listed and ended, effective on its very next request. With the JWT strategy and an
adapter, ending a user's sessions records a revocation cut-off (see
:class:`~asgi_session.backends.JWTStrategy`); JWTs cannot be listed.

In a handler::

    sessions = await list_sessions(request)           # the signed-in user's
    await end_session(request, sessions[1].id)
    await end_other_sessions(request)                  # "sign out everywhere else"

Anywhere else (an admin task, a password reset)::

    await end_all_sessions(config, user_id)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import HTTPConnection

from asgi_session._config import AuthConfig
from asgi_session._context import RequestContext, request_context
from asgi_session._session import Session, isoformat
from asgi_session.models import SessionRecord

__all__ = [
    "SessionInfo",
    "end_all_sessions",
    "end_other_sessions",
    "end_session",
    "list_sessions",
]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One of a user's sessions, safe to show: its id, never its token."""

    id: str
    created_at: datetime | None
    last_seen_at: datetime | None
    expires: datetime
    user_agent: str | None
    current: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form, with Auth.js-style camelCase names and ISO dates."""
        return {
            "id": self.id,
            "createdAt": None if self.created_at is None else isoformat(self.created_at),
            "lastSeenAt": None if self.last_seen_at is None else isoformat(self.last_seen_at),
            "expires": isoformat(self.expires),
            "userAgent": self.user_agent,
            "current": self.current,
        }


def _signed_in(connection: HTTPConnection) -> tuple[RequestContext, Session]:
    ctx = request_context(connection.scope)
    session = connection.scope.get("state", {}).get("session")
    if ctx is None or not isinstance(session, Session):
        raise LookupError("no one is signed in on this request")
    if session.user.id is None:
        raise LookupError("the session has no user id")
    return ctx, session


def session_infos(records: list[SessionRecord], current: Session | None) -> list[SessionInfo]:
    """Describe stored sessions, marking the one ``current`` stands for."""
    current_token = None
    if current is not None and current.record is not None:
        current_token = current.record.session_token
    return [
        SessionInfo(
            id=record.id or "",
            created_at=record.created_at,
            last_seen_at=record.last_seen_at,
            expires=record.expires,
            user_agent=record.user_agent,
            current=record.session_token == current_token,
        )
        for record in records
    ]


async def list_sessions(connection: HTTPConnection) -> list[SessionInfo]:
    """The signed-in user's live sessions, newest first (database strategy).

    Raises :class:`~asgi_session.errors.UnsupportedOperationError` with JWTs.
    """
    ctx, session = _signed_in(connection)
    assert session.user.id is not None
    records = await ctx.config.strategy.list_user_sessions(session.user.id, now=ctx.now)
    return session_infos(records, session)


async def end_session(connection: HTTPConnection, session_id: str) -> bool:
    """End one of the signed-in user's sessions by id; whether it existed.

    Ending this very session also clears its cookie on the response.
    """
    ctx, session = _signed_in(connection)
    return await ctx.end_session(session, session_id)


async def end_other_sessions(connection: HTTPConnection) -> None:
    """Sign the user out everywhere but this browser.

    With JWTs this browser's token is issued anew (the old one is cut off with the
    rest), and the handler's ``request.state.session`` shows the new one.
    """
    ctx, session = _signed_in(connection)
    await ctx.end_other_sessions(session)


async def end_all_sessions(config: AuthConfig, user_id: str) -> None:
    """Sign a user out everywhere (from any code: an admin action, a password reset)."""
    await config.strategy.end_user_sessions(user_id, now=config.clock())
