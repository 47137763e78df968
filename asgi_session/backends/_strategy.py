"""The contract of a session strategy: how a cookie's token becomes a session and back.

Two strategies ship: :class:`~asgi_session.backends.JWTStrategy` (the session is the
cookie) and :class:`~asgi_session.backends.DatabaseStrategy` (the cookie names a stored
row). Strategies resolve and issue sessions; they never store users themselves, that is
the adapter's job.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

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

    @property
    def name(self) -> str:
        """``"jwt"`` or ``"database"``: what ``AuthConfig(strategy=...)`` calls it."""

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


class BaseStrategy:
    """What every strategy shipped here shares: a name, one config, its adapter.

    Subclasses set :attr:`name` and extend :meth:`configure`.
    """

    name: ClassVar[str]

    def __init__(self, adapter: Adapter | None = None) -> None:
        if adapter is not None:
            warnings.warn(
                f"{type(self).__name__}(adapter=...) is deprecated; pass the adapter to "
                "AuthConfig(adapter=...)",
                DeprecationWarning,
                stacklevel=3,
            )
        #: The store of users, accounts and sessions: ``AuthConfig.adapter``, set by
        #: :meth:`configure`.
        self.adapter: Adapter | None = adapter
        self._config: AuthConfig | None = None

    def configure(self, config: AuthConfig) -> None:
        if self._config is not None and self._config is not config:
            raise RuntimeError(
                f"a {type(self).__name__} serves one AuthConfig; create one per config"
            )
        self._config = config
        self.adapter = config.adapter

    @property
    def config(self) -> AuthConfig:
        if self._config is None:
            raise RuntimeError(
                f"{type(self).__name__} is not configured; pass it to AuthConfig(strategy=...)"
            )
        return self._config

    # -- the cookie, for callers that must know whose it is ---------------------------

    def carries_session(self, ctx: RequestContext) -> bool:
        """Whether the request carries this strategy's session cookie (or bearer token)."""
        return ctx.session_token() is not None

    def clear_session_cookie(self, ctx: RequestContext) -> None:
        """Clear this strategy's session cookies in the response."""
        ctx.clear_session_cookie()

    # -- what AuthConfig.strategy was in earlier releases: a name -------------------------

    @property
    def strategy(self) -> str:
        """Deprecated: the strategy's :attr:`name`."""
        warnings.warn(
            "the strategy attribute is deprecated; use .name", DeprecationWarning, stacklevel=2
        )
        return self.name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            # AuthConfig.strategy was "jwt" or "database"; comparisons keep working.
            warnings.warn(
                f"comparing AuthConfig.strategy with {other!r} is deprecated; compare "
                "AuthConfig.strategy.name",
                DeprecationWarning,
                stacklevel=2,
            )
            return self.name == other
        return self is other

    def __hash__(self) -> int:
        return id(self)
