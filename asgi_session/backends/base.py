"""The contract between asgi-session and a store of users, accounts and sessions.

It is Auth.js's adapter contract with Python names, plus what Auth.js lacks: listing
and ending a user's sessions, and updating a linked account's tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from asgi_session.models import Account, SessionRecord, User, VerificationToken

if TYPE_CHECKING:
    from asgi_session.config import AuthConfig
    from asgi_session.context import RequestContext
    from asgi_session.session import Session

UserInput = Mapping[str, Any] | User
AccountInput = Mapping[str, Any] | Account
SessionInput = Mapping[str, Any] | SessionRecord
VerificationTokenInput = Mapping[str, Any] | VerificationToken


@runtime_checkable
class Adapter(Protocol):
    """A store of users, accounts, database sessions and verification tokens.

    Absent things are ``None``. Ids are strings. Any method may raise
    :class:`asgi_session.errors.BackendUnavailableError` when the store cannot be reached.
    """

    async def ensure_indexes(self) -> None: ...

    async def create_user(self, user: UserInput) -> User: ...

    async def get_user(self, id: str) -> User | None: ...

    async def get_user_by_email(self, email: str) -> User | None: ...

    async def get_user_by_account(
        self, *, provider: str, provider_account_id: str
    ) -> User | None: ...

    async def update_user(self, user: UserInput) -> User | None: ...

    async def delete_user(self, id: str) -> User | None: ...

    async def link_account(self, account: AccountInput) -> Account: ...

    async def unlink_account(
        self, *, provider: str, provider_account_id: str
    ) -> Account | None: ...

    async def get_account(self, *, provider: str, provider_account_id: str) -> Account | None: ...

    async def update_account(
        self, *, provider: str, provider_account_id: str, data: Mapping[str, Any]
    ) -> Account | None: ...

    async def create_session(self, session: SessionInput) -> SessionRecord: ...

    async def get_session_and_user(
        self, session_token: str
    ) -> tuple[SessionRecord, User] | None: ...

    async def update_session(self, session: SessionInput) -> SessionRecord | None: ...

    async def delete_session(self, session_token: str) -> SessionRecord | None: ...

    async def list_sessions(self, user_id: str) -> list[SessionRecord]: ...

    async def delete_sessions(self, user_id: str, *, except_token: str | None = None) -> int: ...

    async def create_verification_token(
        self, verification_token: VerificationTokenInput
    ) -> VerificationToken: ...

    async def use_verification_token(
        self, *, identifier: str, token: str
    ) -> VerificationToken | None: ...

    async def revoke_tokens_issued_before(self, user_id: str, when: datetime) -> None: ...

    async def tokens_revoked_before(self, user_id: str) -> datetime | None: ...


@runtime_checkable
class SessionBackend(Protocol):
    """A session strategy: how a cookie's token becomes a :class:`Session` and back.

    Methods write and clear the session cookie through the request context they get.
    """

    #: ``"jwt"`` or ``"database"``.
    strategy: str

    @property
    def adapter(self) -> Adapter | None:
        """Where users and accounts are stored, if anywhere."""

    def configure(self, config: AuthConfig) -> None:
        """Bind to the app's configuration; called once, when the config is built."""

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
        """A user's live sessions, newest first (database strategy only)."""

    async def end_user_session(self, user_id: str, session_id: str) -> bool:
        """End one of a user's sessions by its id; whether there was one to end."""

    async def end_user_sessions(
        self, user_id: str, *, now: float, keep: tuple[RequestContext, Session] | None = None
    ) -> None:
        """End every session of a user, except the request's own when ``keep`` names it."""

