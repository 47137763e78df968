"""The contract between asgi-session and a store of users, accounts and sessions.

It is Auth.js's adapter contract with Python names, plus what Auth.js lacks: listing
and ending a user's sessions, and updating a linked account's tokens.

:class:`TokenSweeper` is one more method, asked for only by password accounts (only the
newest reset link may work): adapters written before it still satisfy :class:`Adapter`.
:class:`AuthenticatorStore` is likewise asked for only by passkeys.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from asgi_session.models import Account, Authenticator, SessionRecord, User, VerificationToken

UserInput = Mapping[str, Any] | User
AccountInput = Mapping[str, Any] | Account
SessionInput = Mapping[str, Any] | SessionRecord
VerificationTokenInput = Mapping[str, Any] | VerificationToken
AuthenticatorInput = Mapping[str, Any] | Authenticator


@runtime_checkable
class TokenSweeper(Protocol):
    """An adapter that can drop every pending verification token of an identifier."""

    async def delete_verification_tokens(self, identifier: str) -> int: ...


@runtime_checkable
class AuthenticatorStore(Protocol):
    """An adapter that keeps WebAuthn credentials (passkeys), as Auth.js's Authenticator.

    Apart from :class:`Adapter` because only passkeys need it: adapters written before it
    still satisfy :class:`Adapter`, and work with every other provider.

    ``update_authenticator_counter`` is a compare-and-set in one atomic step: it stores
    ``counter`` (and ``used_at`` as ``last_used_at``, when given) only if the stored
    counter is lower, or both are 0 (authenticators that keep no counter always send 0).
    Otherwise, or when there is no such credential, it returns ``None``: a counter that
    does not go up comes from a cloned authenticator or a replayed assertion, and two
    concurrent uses of one assertion must not both get through. ``delete_user`` deletes
    the user's authenticators too.
    """

    async def create_authenticator(self, authenticator: AuthenticatorInput) -> Authenticator: ...

    async def get_authenticator(self, credential_id: str) -> Authenticator | None: ...

    async def list_authenticators_by_user_id(self, user_id: str) -> list[Authenticator]: ...

    async def update_authenticator_counter(
        self, credential_id: str, counter: int, *, used_at: datetime | None = None
    ) -> Authenticator | None: ...

    async def update_authenticator(
        self, credential_id: str, data: Mapping[str, Any]
    ) -> Authenticator | None: ...

    async def delete_authenticator(self, credential_id: str) -> Authenticator | None: ...


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
