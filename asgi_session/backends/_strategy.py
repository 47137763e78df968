"""The contract of a session strategy: how a cookie's token becomes a session and back.

Two strategies ship: :class:`~asgi_session.backends.JWTStrategy` (the session is the
cookie) and :class:`~asgi_session.backends.DatabaseStrategy` (the cookie names a stored
row). Strategies resolve and issue sessions; they never store users themselves, that is
the adapter's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from asgi_session._config import AuthConfig
    from asgi_session._context import RequestContext
    from asgi_session._session import Session
    from asgi_session.backends._adapter import Adapter
    from asgi_session.models import SessionRecord


@runtime_checkable
class SessionStrategy(Protocol):
    """A session strategy: how a cookie's token becomes a :class:`Session` and back.

    Methods write and clear the session cookie through the request context they get.
    """

    #: ``"jwt"`` or ``"database"``.
    name: str

    @property
    def adapter(self) -> Adapter | None:
        """Where users and accounts are stored, if anywhere (``AuthConfig.adapter``)."""

    def configure(self, config: AuthConfig) -> None:
        """Bind to the app's configuration and its adapter; called once, by ``AuthConfig``."""

    async def load(self, ctx: RequestContext) -> Session | None:
        """The session the request's cookie stands for, or ``None``.

        Reads the token with ``ctx.session_token_or_clear()``; clears the cookie when
        the token stands for no session.
        """

    async def create(
        self,
        ctx: RequestContext,
        *,
        user: Mapping[str, Any],
        account: Mapping[str, Any] | None = None,
        profile: Mapping[str, Any] | None = None,
        is_new_user: bool = False,
    ) -> Session:
        """Start a new session for ``user`` (always a new token) and set its cookie."""

    async def update(
        self, ctx: RequestContext, session: Session, data: Mapping[str, Any], *, trusted: bool
    ) -> Session | None:
        """Change a session; ``trusted`` is true for the app's own code, false for clients."""

    async def destroy(
        self, ctx: RequestContext, session: Session | None, *, clear_cookie: bool = True
    ) -> None:
        """End the request's session and (unless told not to) clear its cookie."""

    async def list_user_sessions(self, user_id: str, *, now: float) -> list[SessionRecord]:
        """A user's live sessions, newest first.

        Raises :class:`~asgi_session.errors.UnsupportedOperationError` where sessions are
        not stored (JWTs).
        """

    async def end_user_session(self, user_id: str, session_id: str) -> bool:
        """End one of a user's sessions by its id; whether there was one to end.

        Raises :class:`~asgi_session.errors.UnsupportedOperationError` where sessions
        have no id (JWTs).
        """

    async def end_user_sessions(
        self, user_id: str, *, now: float, keep: tuple[RequestContext, Session] | None = None
    ) -> Session | None:
        """End every session of a user, except the request's own when ``keep`` names it.

        Returns what the kept session is now, if the strategy had to issue it anew (a JWT
        dated after the cut-off); ``None`` when it is unchanged or nothing was kept.
        """
