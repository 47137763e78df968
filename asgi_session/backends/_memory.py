"""Users, accounts, sessions, verification tokens and passkeys kept in this process's memory.

The records behave as :class:`~asgi_session.backends.mongodb.MongoDBAdapter`'s do, so
code tried against this adapter meets no surprise in production: both check and shape
records with :mod:`asgi_session.backends._records` (ids of 24 hex digits, aware UTC
datetimes to the millisecond, Auth.js's camelCase names next to the snake_case ones);
emails, linked accounts, session tokens, verification tokens and credential ids are
unique.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asgi_session.backends import _records as records
from asgi_session.backends._adapter import (
    AccountInput,
    AuthenticatorInput,
    SessionInput,
    UserInput,
    VerificationTokenInput,
)
from asgi_session.errors import ConfigurationError, DuplicateRecordError
from asgi_session.models import Account, Authenticator, SessionRecord, User, VerificationToken

__all__ = ["MemoryAdapter"]

_ID_BYTES = 12  # 24 hex digits, the shape of a MongoDB ObjectId

#: Verification tokens a :class:`MemoryAdapter` keeps at most unless told otherwise.
#: Anyone may ask for a sign-in link, each unused one costs about 0.6 KB, and a link
#: is clicked within minutes: ten thousand (some 6 MB) outlast any real wait.
DEFAULT_MAX_VERIFICATION_TOKENS = 10_000

# Writes between two sweeps of expired records, at the least. A sweep also waits for as
# many writes as records outlived the one before, so a write costs O(1) on average.
_SWEEP_EVERY = 1_000


@dataclass(slots=True)
class _Row:
    """A stored record: its id and its fields under their Python names."""

    id: str
    data: dict[str, Any]


class MemoryAdapter:
    """An :class:`~asgi_session.backends.Adapter` (and
    :class:`~asgi_session.backends.AuthenticatorStore`) keeping everything in a dict.

    For development, examples and tests; everything is lost when the process ends;
    one process only. Several workers, or several processes behind a load balancer,
    each get their own store and cannot see each other's users or sessions.

    Safe for concurrent tasks on one event loop: every call looks and writes without
    awaiting in between, so a uniqueness check cannot be overtaken. It is not safe to
    share between threads. Each call lets other tasks run once before it starts, as a
    network round trip would, so races between requests show up in tests as they
    would against a real store.

    Expired sessions and verification tokens are swept out as records are written:
    every thousand writes or so (more once the store holds more, so that a write costs
    O(1) on average) one sweep deletes those expired by ``clock`` (``time.time`` by
    default). Until then they stay, as they may on MongoDB until its TTL monitor runs;
    :meth:`purge_expired` sweeps at once. At most ``max_verification_tokens``
    verification tokens are kept (10,000 by default, some 6 MB): when that many are
    stored, the oldest goes first, so under a flood of requests for sign-in links the
    link sent longest ago stops working. Values handed in and out are copies; changing
    a returned record does not change the store. Finding a user's sessions or accounts
    looks through all of them, which is fine at development sizes.
    """

    def __init__(
        self,
        *,
        max_verification_tokens: int = DEFAULT_MAX_VERIFICATION_TOKENS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_verification_tokens < 1:
            raise ConfigurationError(
                "MemoryAdapter(max_verification_tokens=...) must be at least 1"
            )
        self._max_tokens = max_verification_tokens
        self._clock = clock
        self._users: dict[str, dict[str, Any]] = {}
        self._emails: dict[str, str] = {}  # email -> user id, for string emails only
        self._accounts: dict[tuple[str, str], _Row] = {}
        self._sessions: dict[str, _Row] = {}  # by session token, in creation order
        # In creation order, so the oldest is dropped first when the store is full.
        self._tokens: OrderedDict[tuple[str, str], datetime] = OrderedDict()
        self._revocations: dict[str, datetime] = {}
        # By credential id, in creation order; fields under their Python names.
        self._authenticators: dict[str, dict[str, Any]] = {}
        self._writes_until_sweep = _SWEEP_EVERY

    # -- setup -------------------------------------------------------------------------

    async def ensure_indexes(self) -> None:
        """Nothing to prepare: the store keeps its own lookup tables up to date."""

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete sessions and verification tokens expired at ``now`` (default: the
        adapter's clock); returns how many went.

        The adapter sweeps by itself as records are written; this sweeps at once.
        """
        await _let_others_run()
        return self._sweep(records.utc(now) if now is not None else self._now())

    def _now(self) -> datetime:
        return records.utc(datetime.fromtimestamp(self._clock(), UTC))

    def _sweep(self, moment: datetime) -> int:
        sessions = [token for token, row in self._sessions.items() if row.data["expires"] <= moment]
        tokens = [key for key, expires in self._tokens.items() if expires <= moment]
        for token in sessions:
            del self._sessions[token]
        for key in tokens:
            del self._tokens[key]
        self._writes_until_sweep = max(_SWEEP_EVERY, len(self._sessions) + len(self._tokens))
        return len(sessions) + len(tokens)

    def _count_write(self) -> None:
        """Sweep once enough records were written since the last sweep."""
        self._writes_until_sweep -= 1
        if self._writes_until_sweep <= 0:
            self._sweep(self._now())

    # -- users -------------------------------------------------------------------------

    async def create_user(self, user: UserInput) -> User:
        """Store a new user with the fields given. An ``id`` of 24 hex digits is kept,
        else one is made.

        Raises :class:`~asgi_session.errors.DuplicateRecordError` when another user has
        the same email (or the given id).
        """
        await _let_others_run()
        chosen, fields = records.user_input(user, parse_id=records.hex_id)
        if chosen is not None and chosen in self._users:
            raise DuplicateRecordError(records.DUPLICATE_USER_ID)
        email = fields.get("email")
        if isinstance(email, str) and email in self._emails:
            raise DuplicateRecordError(records.DUPLICATE_EMAIL)
        user_id = chosen or _new_id()
        while user_id in self._users:  # users are keyed by id: never overwrite one
            user_id = _new_id()
        self._users[user_id] = fields
        if isinstance(email, str):
            self._emails[email] = user_id
        return _user(user_id, fields)

    async def get_user(self, id: str) -> User | None:
        """The user with this id, or ``None``."""
        await _let_others_run()
        return self._user_or_none(records.hex_id(id))

    async def get_user_by_email(self, email: str) -> User | None:
        """The user with exactly this email, or ``None``."""
        await _let_others_run()
        if not isinstance(email, str):
            return None
        user_id = self._emails.get(email)
        return self._user_or_none(user_id)

    async def get_user_by_account(self, *, provider: str, provider_account_id: str) -> User | None:
        """The user a provider account is linked to, or ``None``."""
        await _let_others_run()
        row = self._account_row(provider, provider_account_id)
        return self._user_or_none(row.data["user_id"] if row is not None else None)

    async def update_user(self, user: UserInput) -> User | None:
        """Set the given fields of the user named by ``id``; ``None`` when there is none.

        Raises :class:`~asgi_session.errors.DuplicateRecordError` when the new email
        belongs to another user.
        """
        await _let_others_run()
        user_id, changes = records.user_input(user, parse_id=records.hex_id)
        record = self._users.get(user_id) if user_id is not None else None
        if user_id is None or record is None:
            return None
        if "email" in changes:
            email = changes["email"]
            if isinstance(email, str) and self._emails.get(email, user_id) != user_id:
                raise DuplicateRecordError(records.DUPLICATE_EMAIL)
            previous = record.get("email")
            if isinstance(previous, str) and self._emails.get(previous) == user_id:
                del self._emails[previous]
            if isinstance(email, str):
                self._emails[email] = user_id
        record.update(changes)
        return _user(user_id, record)

    async def delete_user(self, id: str) -> User | None:
        """Delete the user with their sessions, linked accounts and authenticators;
        returns the user."""
        await _let_others_run()
        user_id = records.hex_id(id)
        record = self._users.pop(user_id, None) if user_id is not None else None
        if user_id is None or record is None:
            return None
        email = record.get("email")
        if isinstance(email, str) and self._emails.get(email) == user_id:
            del self._emails[email]
        for key in [key for key, row in self._accounts.items() if row.data["user_id"] == user_id]:
            del self._accounts[key]
        for token in [t for t, row in self._sessions.items() if row.data["user_id"] == user_id]:
            del self._sessions[token]
        for credential_id in [
            key for key, fields in self._authenticators.items() if fields["user_id"] == user_id
        ]:
            del self._authenticators[credential_id]
        return _user(user_id, record)

    # -- accounts ----------------------------------------------------------------------

    async def link_account(self, account: AccountInput) -> Account:
        """Link a provider account to a user.

        Raises :class:`~asgi_session.errors.DuplicateRecordError` when this (provider,
        provider account id) is already linked, and ``ValueError`` for invalid input
        (see :func:`~asgi_session.backends._records.account_input`).
        """
        await _let_others_run()
        fields = records.account_input(account, parse_id=records.hex_id)
        key = (fields["provider"], fields["provider_account_id"])
        if key in self._accounts:
            raise DuplicateRecordError(records.DUPLICATE_ACCOUNT)
        row = _Row(_new_id(), fields)
        self._accounts[key] = row
        return _account(row)

    async def unlink_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        """Remove a linked account; returns it, or ``None`` when it was not linked."""
        await _let_others_run()
        if self._account_row(provider, provider_account_id) is None:
            return None
        return _account(self._accounts.pop((provider, provider_account_id)))

    async def get_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        """The linked account, or ``None``."""
        await _let_others_run()
        row = self._account_row(provider, provider_account_id)
        return _account(row) if row is not None else None

    async def update_account(
        self, *, provider: str, provider_account_id: str, data: Mapping[str, Any]
    ) -> Account | None:
        """Update stored token fields (``access_token``, ``refresh_token``, ``expires_at``...).

        The fields naming the account and its user cannot change, nor ``type`` become
        ``None`` (``ValueError``). Returns the updated account, or ``None`` when it is
        not linked.
        """
        await _let_others_run()
        changes = records.account_changes(data)
        row = self._account_row(provider, provider_account_id)
        if row is None:
            return None
        row.data.update(changes)
        return _account(row)

    # -- sessions ----------------------------------------------------------------------

    async def create_session(self, session: SessionInput) -> SessionRecord:
        """Store a database session. ``created_at`` defaults to now and ``last_seen_at``
        to ``created_at``.

        Raises :class:`~asgi_session.errors.DuplicateRecordError` when the token exists
        and ``ValueError`` for invalid input (see
        :func:`~asgi_session.backends._records.session_input`).
        """
        await _let_others_run()
        fields = records.session_input(session, parse_id=records.hex_id)
        token = fields["session_token"]
        if token in self._sessions:
            raise DuplicateRecordError(records.DUPLICATE_SESSION)
        self._count_write()  # first, so a sweep never takes the record being written
        row = _Row(_new_id(), fields)
        self._sessions[token] = row
        return _session(row)

    async def get_session_and_user(self, session_token: str) -> tuple[SessionRecord, User] | None:
        """The session and its user; ``None`` when either is missing.

        Expiry is not checked: the caller decides what to do with an expired session.
        """
        await _let_others_run()
        if not isinstance(session_token, str):
            return None
        row = self._sessions.get(session_token)
        if row is None:
            return None
        user = self._user_or_none(row.data["user_id"])
        return (_session(row), user) if user is not None else None

    async def update_session(self, session: SessionInput) -> SessionRecord | None:
        """Set the given fields of the session named by ``session_token``.

        Returns the updated session, or ``None`` when there is none. The token itself
        cannot change; ``expires`` and ``user_id`` cannot become ``None``.
        """
        await _let_others_run()
        token, changes = records.session_changes(session, parse_id=records.hex_id)
        row = self._sessions.get(token) if token is not None else None
        if row is None:
            return None
        row.data.update(changes)
        return _session(row)

    async def delete_session(self, session_token: str) -> SessionRecord | None:
        """Delete a session; returns it, or ``None`` when there was none."""
        await _let_others_run()
        if not isinstance(session_token, str):
            return None
        row = self._sessions.pop(session_token, None)
        return _session(row) if row is not None else None

    async def list_sessions(self, user_id: str) -> list[SessionRecord]:
        """The user's sessions, newest first, expired ones included.

        Sessions created at the same moment are listed last-created first; sessions
        whose ``created_at`` was set to ``None`` come after all others.
        """
        await _let_others_run()
        wanted = records.hex_id(user_id)
        if wanted is None:
            return []
        rows = [
            (order, row)
            for order, row in enumerate(self._sessions.values())
            if row.data["user_id"] == wanted
        ]
        rows.sort(key=_newest_first)
        return [_session(row) for _, row in rows]

    async def delete_sessions(self, user_id: str, *, except_token: str | None = None) -> int:
        """Delete the user's sessions, except ``except_token``'s; returns how many went."""
        await _let_others_run()
        wanted = records.hex_id(user_id)
        if wanted is None:
            return 0
        kept = None if except_token is None else str(except_token)
        doomed = [
            token
            for token, row in self._sessions.items()
            if row.data["user_id"] == wanted and token != kept
        ]
        for token in doomed:
            del self._sessions[token]
        return len(doomed)

    # -- verification tokens -----------------------------------------------------------

    async def create_verification_token(
        self, verification_token: VerificationTokenInput
    ) -> VerificationToken:
        """Store a single-use token (``identifier``, hashed ``token``, ``expires``).

        Other fields are dropped. When ``max_verification_tokens`` are stored already,
        the oldest is dropped. Raises
        :class:`~asgi_session.errors.DuplicateRecordError` when the same identifier and
        token are stored already, and ``ValueError`` when a field is missing or of the
        wrong type.
        """
        await _let_others_run()
        created = records.verification_input(verification_token)
        key = (created.identifier, created.token)
        if key in self._tokens:
            raise DuplicateRecordError(records.DUPLICATE_VERIFICATION)
        self._count_write()
        while len(self._tokens) >= self._max_tokens:
            self._tokens.popitem(last=False)
        self._tokens[key] = created.expires
        return created

    async def use_verification_token(
        self, *, identifier: str, token: str
    ) -> VerificationToken | None:
        """Delete and return the token; a second use gets ``None``. Expiry is not checked."""
        await _let_others_run()
        if not isinstance(identifier, str) or not isinstance(token, str):
            return None
        expires = self._tokens.pop((identifier, token), None)
        return VerificationToken(identifier, token, expires) if expires is not None else None

    async def delete_verification_tokens(self, identifier: str) -> int:
        """Delete every token of ``identifier``; how many there were."""
        await _let_others_run()
        if not isinstance(identifier, str):
            return 0
        doomed = [key for key in self._tokens if key[0] == identifier]
        for key in doomed:
            del self._tokens[key]
        return len(doomed)

    # -- authenticators (passkeys) -----------------------------------------------------

    async def create_authenticator(self, authenticator: AuthenticatorInput) -> Authenticator:
        """Register a passkey. ``created_at`` defaults to now.

        Raises :class:`~asgi_session.errors.DuplicateRecordError` when the credential id
        is registered already, and ``ValueError`` for invalid input (see
        :func:`~asgi_session.backends._records.authenticator_input`).
        """
        await _let_others_run()
        fields = records.authenticator_input(authenticator, parse_id=records.hex_id)
        credential_id = fields["credential_id"]
        if credential_id in self._authenticators:
            raise DuplicateRecordError(records.DUPLICATE_AUTHENTICATOR)
        self._authenticators[credential_id] = fields
        return _authenticator(fields)

    async def get_authenticator(self, credential_id: str) -> Authenticator | None:
        """The authenticator with this credential id, or ``None``."""
        await _let_others_run()
        fields = self._authenticator_fields(credential_id)
        return _authenticator(fields) if fields is not None else None

    async def list_authenticators_by_user_id(self, user_id: str) -> list[Authenticator]:
        """The user's authenticators, oldest first (those registered at one moment in the
        order they were; any without ``created_at`` before all others)."""
        await _let_others_run()
        wanted = records.hex_id(user_id)
        if wanted is None:
            return []
        rows = [
            (order, fields)
            for order, fields in enumerate(self._authenticators.values())
            if fields["user_id"] == wanted
        ]
        rows.sort(key=_oldest_first)
        return [_authenticator(fields) for _, fields in rows]

    async def update_authenticator_counter(
        self, credential_id: str, counter: int, *, used_at: datetime | None = None
    ) -> Authenticator | None:
        """Store ``counter`` (and ``used_at`` as ``last_used_at``) if the stored counter
        is lower, or both are 0; returns the updated authenticator.

        ``None`` when there is no such credential or the counter does not go up: a
        cloned authenticator, or an assertion replayed. The check and the write happen
        without awaiting in between, so of concurrent calls with one counter, one wins.
        Raises ``ValueError`` for a counter or time of the wrong type.
        """
        await _let_others_run()
        counter, used_at = records.counter_input(counter, used_at)
        fields = self._authenticator_fields(credential_id)
        if fields is None:
            return None
        stored = fields["counter"]
        if not (stored < counter or stored == counter == 0):
            return None
        fields["counter"] = counter
        if used_at is not None:
            fields["last_used_at"] = used_at
        return _authenticator(fields)

    async def update_authenticator(
        self, credential_id: str, data: Mapping[str, Any]
    ) -> Authenticator | None:
        """Set the given fields (``name``, mostly); ``None`` when there is no such credential.

        The fields naming the credential, its user, its key and its counter cannot change
        (``ValueError``; see :func:`~asgi_session.backends._records.authenticator_changes`).
        """
        await _let_others_run()
        changes = records.authenticator_changes(data)
        fields = self._authenticator_fields(credential_id)
        if fields is None:
            return None
        fields.update(changes)
        return _authenticator(fields)

    async def delete_authenticator(self, credential_id: str) -> Authenticator | None:
        """Delete an authenticator; returns it, or ``None`` when there was none."""
        await _let_others_run()
        if self._authenticator_fields(credential_id) is None:
            return None
        return _authenticator(self._authenticators.pop(credential_id))

    # -- JWT revocation ----------------------------------------------------------------

    async def revoke_tokens_issued_before(self, user_id: str, when: datetime) -> None:
        """Revoke the user's tokens issued before ``when``. The cut-off only moves forward.

        Any non-empty string is a user id here: users who signed in with credentials in
        JWT mode need not be stored.
        """
        await _let_others_run()
        user_id, cutoff = records.revocation_input(user_id, when)
        current = self._revocations.get(user_id)
        if current is None or cutoff > current:
            self._revocations[user_id] = cutoff

    async def tokens_revoked_before(self, user_id: str) -> datetime | None:
        """The user's revocation cut-off, or ``None`` when nothing was revoked."""
        await _let_others_run()
        if not isinstance(user_id, str):
            return None
        return self._revocations.get(user_id)

    # -- plumbing ----------------------------------------------------------------------

    def _user_or_none(self, user_id: str | None) -> User | None:
        record = self._users.get(user_id) if user_id is not None else None
        return _user(user_id, record) if user_id is not None and record is not None else None

    def _account_row(self, provider: object, provider_account_id: object) -> _Row | None:
        if not isinstance(provider, str) or not isinstance(provider_account_id, str):
            return None
        return self._accounts.get((provider, provider_account_id))

    def _authenticator_fields(self, credential_id: object) -> dict[str, Any] | None:
        if not isinstance(credential_id, str):
            return None
        return self._authenticators.get(credential_id)


async def _let_others_run() -> None:
    """Give other tasks a turn, as a store's network round trip would."""
    await asyncio.sleep(0)


def _new_id() -> str:
    """96 random bits, written like an ObjectId; a repeat is all but impossible."""
    return secrets.token_hex(_ID_BYTES)


def _newest_first(item: tuple[int, _Row]) -> tuple[bool, float, int]:
    order, row = item
    created = row.data.get("created_at")
    if created is None:
        return (True, 0.0, -order)
    return (False, -created.timestamp(), -order)


def _oldest_first(item: tuple[int, dict[str, Any]]) -> tuple[bool, float, int]:
    # MongoDB sorts a missing createdAt before every date: so does this.
    order, fields = item
    created = fields.get("created_at")
    if created is None:
        return (False, 0.0, order)
    return (True, created.timestamp(), order)


# Records handed out are built from copies, so callers cannot change the store.


def _user(user_id: str, fields: Mapping[str, Any]) -> User:
    return records.user_record(user_id, copy.deepcopy(dict(fields)))


def _account(row: _Row) -> Account:
    return records.account_record(row.id, copy.deepcopy(row.data))


def _session(row: _Row) -> SessionRecord:
    return records.session_record(row.id, copy.deepcopy(row.data))


def _authenticator(fields: Mapping[str, Any]) -> Authenticator:
    return records.authenticator_record(copy.deepcopy(dict(fields)))
