"""Users, accounts, sessions and verification tokens kept in this process's memory.

The records behave as :class:`~asgi_session.backends.mongodb.MongoDBBackend`'s do, so
code tried against this backend meets no surprise in production: ids are 24 hex
digits, datetimes come back as aware UTC with millisecond precision, Auth.js's
camelCase field names are accepted next to the snake_case ones, and emails, linked
accounts, session tokens and verification tokens are unique.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asgi_session.backends.base import (
    AccountInput,
    SessionInput,
    UserInput,
    VerificationTokenInput,
)
from asgi_session.errors import DuplicateRecordError
from asgi_session.models import (
    ACCOUNT_FIELDS,
    SESSION_FIELDS,
    USER_FIELDS,
    VERIFICATION_FIELDS,
    Account,
    SessionRecord,
    User,
    VerificationToken,
    as_mapping,
)

__all__ = ["MemoryBackend"]

_VERIFICATION_FIELDS = tuple(VERIFICATION_FIELDS)

_USER_TIMES = ("email_verified",)
_SESSION_TIMES = ("expires", "created_at", "last_seen_at")
_SESSION_REQUIRED = ("session_token", "user_id", "expires")
_ACCOUNT_REQUIRED = ("user_id", "type", "provider", "provider_account_id")

# Fields that identify a linked account; update_account must not move an account.
_ACCOUNT_IDENTITY = frozenset(
    {"id", "_id", "user_id", "userId", "provider", "provider_account_id", "providerAccountId"}
)

_ID_BYTES = 12  # 24 hex digits, the shape of a MongoDB ObjectId
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@dataclass(slots=True)
class _Row:
    """A stored record: its id and its fields under their Python names."""

    id: str
    data: dict[str, Any]


class MemoryBackend:
    """An :class:`~asgi_session.backends.base.Adapter` keeping everything in a dict.

    For development, examples and tests; everything is lost when the process ends;
    one process only. Several workers, or several processes behind a load balancer,
    each get their own store and cannot see each other's users or sessions.

    Safe for concurrent tasks on one event loop: every call looks and writes without
    awaiting in between, so a uniqueness check cannot be overtaken. It is not safe to
    share between threads. Each call lets other tasks run once before it starts, as a
    network round trip would, so races between requests show up in tests as they
    would against a real store.

    Nothing expires by itself: expired sessions and verification tokens stay until
    something deletes them (the session strategy deletes an expired session when it
    sees one) or :meth:`purge_expired` is called. Values handed in and out are copies;
    changing a returned record does not change the store. Finding a user's sessions or
    accounts looks through all of them, which is fine at development sizes.
    """

    def __init__(self) -> None:
        self._users: dict[str, dict[str, Any]] = {}
        self._emails: dict[str, str] = {}  # email -> user id, for string emails only
        self._accounts: dict[tuple[str, str], _Row] = {}
        self._sessions: dict[str, _Row] = {}  # by session token, in creation order
        self._tokens: dict[tuple[str, str], datetime] = {}
        self._revocations: dict[str, datetime] = {}

    # -- setup -------------------------------------------------------------------------

    async def ensure_indexes(self) -> None:
        """Nothing to prepare: the store keeps its own lookup tables up to date."""

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete sessions and verification tokens expired at ``now`` (default: the
        current time); returns how many went.

        Never called by the backend itself: an app with a long-running development
        server may call it from time to time to bound memory use.
        """
        await _let_others_run()
        moment = _utc(now if now is not None else datetime.now(UTC))
        sessions = [token for token, row in self._sessions.items() if row.data["expires"] <= moment]
        tokens = [key for key, expires in self._tokens.items() if expires <= moment]
        for token in sessions:
            del self._sessions[token]
        for key in tokens:
            del self._tokens[key]
        return len(sessions) + len(tokens)

    # -- users -------------------------------------------------------------------------

    async def create_user(self, user: UserInput) -> User:
        """Store a new user. An ``id`` of 24 hex digits is kept, else one is made.

        Raises :class:`~asgi_session.errors.DuplicateRecordError` when another user has
        the same email (or the given id).
        """
        await _let_others_run()
        data = as_mapping(user)
        fields = _fields(data, USER_FIELDS)
        _check_times(fields, _USER_TIMES, "user")
        chosen = _valid_id(data.get("id"))
        if chosen is not None and chosen in self._users:
            raise DuplicateRecordError("a user with this id already exists")
        email = fields.get("email")
        if isinstance(email, str) and email in self._emails:
            raise DuplicateRecordError("a user with this email already exists")
        user_id = chosen or _new_id()
        while user_id in self._users:  # users are keyed by id: never overwrite one
            user_id = _new_id()
        record: dict[str, Any] = dict.fromkeys(USER_FIELDS)
        record.update(fields)
        self._users[user_id] = record
        if isinstance(email, str):
            self._emails[email] = user_id
        return _user(user_id, record)

    async def get_user(self, id: str) -> User | None:
        """The user with this id, or ``None``."""
        await _let_others_run()
        return self._user_or_none(_valid_id(id))

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
        data = as_mapping(user)
        changes = _fields(data, USER_FIELDS)
        _check_times(changes, _USER_TIMES, "user")
        user_id = _valid_id(data.get("id"))
        record = self._users.get(user_id) if user_id is not None else None
        if user_id is None or record is None:
            return None
        if "email" in changes:
            email = changes["email"]
            if isinstance(email, str) and self._emails.get(email, user_id) != user_id:
                raise DuplicateRecordError("a user with this email already exists")
            previous = record.get("email")
            if isinstance(previous, str) and self._emails.get(previous) == user_id:
                del self._emails[previous]
            if isinstance(email, str):
                self._emails[email] = user_id
        record.update(changes)
        return _user(user_id, record)

    async def delete_user(self, id: str) -> User | None:
        """Delete the user with their sessions and linked accounts; returns the user."""
        await _let_others_run()
        user_id = _valid_id(id)
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
        return _user(user_id, record)

    # -- accounts ----------------------------------------------------------------------

    async def link_account(self, account: AccountInput) -> Account:
        """Link a provider account to a user.

        Raises :class:`~asgi_session.errors.DuplicateRecordError` when this (provider,
        provider account id) is already linked, and ``ValueError`` when a required
        field is missing, ``user_id`` is not a valid id, or ``provider`` and
        ``provider_account_id`` are not strings.
        """
        await _let_others_run()
        fields = _fields(as_mapping(account), ACCOUNT_FIELDS)
        _require(fields, "an account", _ACCOUNT_REQUIRED)
        fields["user_id"] = _user_id(fields["user_id"])
        provider, provider_account_id = fields["provider"], fields["provider_account_id"]
        if not isinstance(provider, str) or not isinstance(provider_account_id, str):
            raise ValueError("an account's provider and provider_account_id must be strings")
        key = (provider, provider_account_id)
        if key in self._accounts:
            raise DuplicateRecordError("this provider account is already linked to a user")
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
        if not isinstance(provider, str) or not isinstance(provider_account_id, str):
            return None
        forbidden = sorted(_ACCOUNT_IDENTITY.intersection(data))
        if forbidden:
            raise ValueError(f"update_account cannot change {', '.join(forbidden)}")
        changes = _fields(data, ACCOUNT_FIELDS)
        if changes.get("type", "") is None:
            raise ValueError("an account's type cannot be None")
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
        and ``ValueError`` when a required field is missing or ``user_id`` is not a
        valid id.
        """
        await _let_others_run()
        fields = _fields(as_mapping(session), SESSION_FIELDS)
        _require(fields, "a session", _SESSION_REQUIRED)
        _check_session(fields)
        token = fields["session_token"]
        if token in self._sessions:
            raise DuplicateRecordError("a session with this token already exists")
        if fields.get("created_at") is None:
            fields["created_at"] = _utc(datetime.now(UTC))
        if fields.get("last_seen_at") is None:
            fields["last_seen_at"] = fields["created_at"]
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
        data = as_mapping(session)
        token = data.get("session_token", data.get("sessionToken"))
        if not isinstance(token, str):
            return None
        changes = _fields(data, SESSION_FIELDS)
        changes.pop("session_token", None)
        _check_session(changes)
        row = self._sessions.get(token)
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
        wanted = _valid_id(user_id)
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
        wanted = _valid_id(user_id)
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

        Other fields are dropped. Raises
        :class:`~asgi_session.errors.DuplicateRecordError` when the same identifier and
        token are stored already, and ``ValueError`` when a field is missing or of the
        wrong type.
        """
        await _let_others_run()
        data = as_mapping(verification_token)
        _require(data, "a verification token", _VERIFICATION_FIELDS)
        identifier, token, expires = (data[key] for key in _VERIFICATION_FIELDS)
        if not isinstance(identifier, str) or not isinstance(token, str):
            raise ValueError("a verification token's identifier and token must be strings")
        if not isinstance(expires, datetime):
            raise ValueError("a verification token's expires must be a datetime")
        if (identifier, token) in self._tokens:
            raise DuplicateRecordError("this verification token already exists")
        self._tokens[identifier, token] = _utc(expires)
        return VerificationToken(identifier, token, self._tokens[identifier, token])

    async def use_verification_token(
        self, *, identifier: str, token: str
    ) -> VerificationToken | None:
        """Delete and return the token; a second use gets ``None``. Expiry is not checked."""
        await _let_others_run()
        if not isinstance(identifier, str) or not isinstance(token, str):
            return None
        expires = self._tokens.pop((identifier, token), None)
        return VerificationToken(identifier, token, expires) if expires is not None else None

    # -- JWT revocation ----------------------------------------------------------------

    async def revoke_tokens_issued_before(self, user_id: str, when: datetime) -> None:
        """Revoke the user's tokens issued before ``when``. The cut-off only moves forward.

        Any non-empty string is a user id here: users who signed in with credentials in
        JWT mode need not be stored.
        """
        await _let_others_run()
        if not isinstance(user_id, str) or not user_id:
            raise ValueError("user_id must be a non-empty string")
        if not isinstance(when, datetime):
            raise ValueError("when must be a datetime")
        cutoff = _utc(when)
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


async def _let_others_run() -> None:
    """Give other tasks a turn, as a store's network round trip would."""
    await asyncio.sleep(0)


def _new_id() -> str:
    """96 random bits, written like an ObjectId; a repeat is all but impossible."""
    return secrets.token_hex(_ID_BYTES)


def _valid_id(value: object) -> str | None:
    """The id written as 24 hex digits, lower-cased, or ``None`` for anything else."""
    if isinstance(value, str) and len(value) == 2 * _ID_BYTES and _HEX_DIGITS.issuperset(value):
        return value.lower()
    return None


def _user_id(value: object) -> str:
    user_id = _valid_id(value)
    if user_id is None:
        raise ValueError(f"user_id {value!r} is not a valid id")
    return user_id


def _utc(value: datetime) -> datetime:
    """Aware UTC with millisecond precision, as MongoDB gives datetimes back.

    Naive datetimes are taken as UTC.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _stored(value: Any) -> Any:
    """A private copy of an input value, shaped as a document store would keep it."""
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, Mapping):
        return {key: _stored(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_stored(item) for item in value]
    return copy.deepcopy(value)


def _fields(data: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Input data under Python names, copied. Ids are left out; callers set them."""
    aliases = {authjs: python for python, authjs in names.items()}
    return {
        aliases.get(key, key): _stored(value)
        for key, value in data.items()
        if key not in ("id", "_id")
    }


def _require(data: Mapping[str, Any], what: str, keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if data.get(key) is None]
    if missing:
        raise ValueError(f"{what} needs {', '.join(missing)}")


def _check_times(data: Mapping[str, Any], keys: tuple[str, ...], what: str) -> None:
    for key in keys:
        if data.get(key) is not None and not isinstance(data[key], datetime):
            raise ValueError(f"a {what}'s {key} must be a datetime")


def _check_session(fields: dict[str, Any]) -> None:
    """Validate session fields in place: a real user id, datetimes, a string token."""
    for key in ("user_id", "expires"):
        if key in fields and fields[key] is None:
            raise ValueError(f"a session's {key} cannot be None")
    if "user_id" in fields:
        fields["user_id"] = _user_id(fields["user_id"])
    if "session_token" in fields and not isinstance(fields["session_token"], str):
        raise ValueError("a session's session_token must be a string")
    _check_times(fields, _SESSION_TIMES, "session")


def _newest_first(item: tuple[int, _Row]) -> tuple[bool, float, int]:
    order, row = item
    created = row.data.get("created_at")
    if created is None:
        return (True, 0.0, -order)
    return (False, -created.timestamp(), -order)


def _split(
    data: Mapping[str, Any], names: Collection[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Known fields and extra ones, copied so callers cannot change the store."""
    copied = copy.deepcopy(dict(data))
    known = {key: value for key, value in copied.items() if key in names}
    extra = {key: value for key, value in copied.items() if key not in names}
    return known, extra


def _user(user_id: str, record: Mapping[str, Any]) -> User:
    known, extra = _split(record, USER_FIELDS)
    return User(id=user_id, extra=extra, **known)


def _account(row: _Row) -> Account:
    known, extra = _split(row.data, ACCOUNT_FIELDS)
    expires_at = known.get("expires_at")
    # Refreshed tokens may give a whole number as a float; the field holds whole seconds.
    if isinstance(expires_at, float) and expires_at.is_integer():
        known["expires_at"] = int(expires_at)
    return Account(id=row.id, extra=extra, **known)


def _session(row: _Row) -> SessionRecord:
    known, extra = _split(row.data, SESSION_FIELDS)
    return SessionRecord(id=row.id, extra=extra, **known)
