"""An adapter of your own: users, accounts, sessions and sign-in tokens in plain dicts.

A sketch of what an adapter for another store (Redis, DynamoDB...) has to do, small
enough to read at once: each dict stands for a table or a key space. It keeps the
contract of :class:`asgi_session.backends.Adapter`, and
:class:`~asgi_session.backends.TokenSweeper` (which password accounts ask for); it
keeps no passkeys (:class:`~asgi_session.backends.AuthenticatorStore`), so those tests
of :class:`asgi_session.testing.AdapterContract` are skipped. Check it with::

    from asgi_session.testing import AdapterContract

    class TestDictAdapter(AdapterContract):
        @pytest.fixture
        def adapter(self):
            return DictAdapter()

What the contract asks besides storing and finding:

- Input is a mapping or a record, under Python names or Auth.js's (``userId`` next to
  ``user_id``); what is wrong with it is a ``ValueError``, and nothing is stored.
- Fields the record types have no attribute for are kept, and come back in ``extra``.
- Datetimes come back aware, in UTC, to the millisecond (what MongoDB and Auth.js keep),
  so a record handed back equals the same record read again; naive ones are UTC.
- A value that is not a string, where a string is looked up, finds nothing: a query
  operator such as ``{"$ne": ""}`` must never match every record of a real database.
- Unique keys (emails, linked accounts, session tokens, verification tokens) raise
  :class:`~asgi_session.errors.DuplicateRecordError`, even when two requests race:
  here no call awaits between its check and its write.

For the real thing, read ``asgi_session/backends/_memory.py`` (the same, with passkeys
and expiry) and ``asgi_session/backends/mongodb.py``.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from asgi_session.errors import DuplicateRecordError
from asgi_session.models import Account, SessionRecord, User, VerificationToken

__all__ = ["DictAdapter"]

_Record = TypeVar("_Record", User, Account, SessionRecord)

#: Auth.js's names of the fields it spells otherwise: what its adapters store.
_AUTHJS_NAMES = {
    "emailVerified": "email_verified",
    "userId": "user_id",
    "providerAccountId": "provider_account_id",
    "sessionToken": "session_token",
    "createdAt": "created_at",
    "lastSeenAt": "last_seen_at",
    "userAgent": "user_agent",
}
_TIMES = frozenset({"email_verified", "expires", "created_at", "last_seen_at"})
_STRINGS = frozenset({"provider", "provider_account_id", "session_token", "identifier", "token"})
_REQUIRED = {
    "an account": ("user_id", "type", "provider", "provider_account_id"),
    "a session": ("session_token", "user_id", "expires"),
    "a verification token": ("identifier", "token", "expires"),
}
#: What names an account: changing it would move the account to another user or provider.
_ACCOUNT_KEY = frozenset({"id", "user_id", "provider", "provider_account_id"})


class DictAdapter:
    """An adapter keeping everything in this process's dicts (one process, no expiry)."""

    def __init__(self) -> None:
        self._users: dict[str, dict[str, Any]] = {}
        self._accounts: dict[tuple[str, str], dict[str, Any]] = {}
        self._sessions: dict[str, dict[str, Any]] = {}  # by token, in creation order
        self._tokens: dict[tuple[str, str], datetime] = {}
        self._revocations: dict[str, datetime] = {}

    async def ensure_indexes(self) -> None:
        """Nothing to set up; a database adapter would create its unique indexes here."""

    # -- users ---------------------------------------------------------------------------

    async def create_user(self, user: Mapping[str, Any] | User) -> User:
        fields = _fields(user, "a user")
        fields.pop("id", None)  # the adapter makes ids
        self._check_email_free(fields.get("email"))
        user_id = uuid.uuid4().hex
        self._users[user_id] = fields
        return _record(User, id=user_id, fields=fields)

    async def get_user(self, id: str) -> User | None:
        fields = self._users.get(id) if isinstance(id, str) else None
        return None if fields is None else _record(User, id=id, fields=fields)

    async def get_user_by_email(self, email: str) -> User | None:
        if not isinstance(email, str):
            return None
        found = next((key for key, user in self._users.items() if user.get("email") == email), "")
        return await self.get_user(found)

    async def get_user_by_account(self, *, provider: str, provider_account_id: str) -> User | None:
        account = await self.get_account(provider=provider, provider_account_id=provider_account_id)
        return None if account is None else await self.get_user(account.user_id)

    async def update_user(self, user: Mapping[str, Any] | User) -> User | None:
        changes = _fields(user, "a user")
        user_id = changes.pop("id", None)
        stored = self._users.get(user_id) if isinstance(user_id, str) else None
        if stored is None:
            return None
        if changes.get("email") not in (None, stored.get("email")):
            self._check_email_free(changes["email"])
        stored.update(changes)  # only the fields given
        return await self.get_user(user_id)

    async def delete_user(self, id: str) -> User | None:
        user = await self.get_user(id)
        if user is None:
            return None
        del self._users[id]
        for key in [key for key, row in self._accounts.items() if row["user_id"] == id]:
            del self._accounts[key]
        for token in [token for token, row in self._sessions.items() if row["user_id"] == id]:
            del self._sessions[token]
        return user

    def _check_email_free(self, email: object) -> None:
        if email is not None and any(user.get("email") == email for user in self._users.values()):
            raise DuplicateRecordError("a user with this email already exists")

    # -- accounts ------------------------------------------------------------------------

    async def link_account(self, account: Mapping[str, Any] | Account) -> Account:
        fields = _fields(account, "an account")
        _require(fields, "an account")
        key = (fields["provider"], fields["provider_account_id"])
        if key in self._accounts:
            raise DuplicateRecordError("this provider account is already linked to a user")
        fields["id"] = uuid.uuid4().hex
        self._accounts[key] = fields
        return _record(Account, fields=fields)

    async def get_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        if not isinstance(provider, str) or not isinstance(provider_account_id, str):
            return None
        fields = self._accounts.get((provider, provider_account_id))
        return None if fields is None else _record(Account, fields=fields)

    async def unlink_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        account = await self.get_account(provider=provider, provider_account_id=provider_account_id)
        if account is not None:
            del self._accounts[(provider, provider_account_id)]
        return account

    async def update_account(
        self, *, provider: str, provider_account_id: str, data: Mapping[str, Any]
    ) -> Account | None:
        changes = _fields(data, "an account")
        moved = sorted(_ACCOUNT_KEY & changes.keys())
        if moved:
            raise ValueError(f"update_account cannot change {', '.join(moved)}")
        if "type" in changes and changes["type"] is None:
            raise ValueError("an account's type cannot be None")
        if await self.get_account(provider=provider, provider_account_id=provider_account_id):
            self._accounts[(provider, provider_account_id)].update(changes)
        return await self.get_account(provider=provider, provider_account_id=provider_account_id)

    # -- sessions ------------------------------------------------------------------------

    async def create_session(self, session: Mapping[str, Any] | SessionRecord) -> SessionRecord:
        fields = _fields(session, "a session")
        _require(fields, "a session")
        if fields["session_token"] in self._sessions:
            raise DuplicateRecordError("a session with this token already exists")
        if fields.get("created_at") is None:
            fields["created_at"] = _utc(datetime.now(UTC))
        fields.setdefault("last_seen_at", fields["created_at"])
        fields["id"] = uuid.uuid4().hex
        self._sessions[fields["session_token"]] = fields
        return _record(SessionRecord, fields=fields)

    async def get_session_and_user(self, session_token: str) -> tuple[SessionRecord, User] | None:
        fields = self._sessions.get(session_token) if isinstance(session_token, str) else None
        user = None if fields is None else await self.get_user(fields["user_id"])
        if fields is None or user is None:
            return None
        return _record(SessionRecord, fields=fields), user

    async def update_session(
        self, session: Mapping[str, Any] | SessionRecord
    ) -> SessionRecord | None:
        changes = _fields(session, "a session")
        for name in ("user_id", "expires"):
            if name in changes and changes[name] is None:
                raise ValueError(f"a session's {name} cannot be None")
        token = changes.pop("session_token", None)
        stored = self._sessions.get(token) if isinstance(token, str) else None
        if stored is None:
            return None
        stored.update(changes)
        return _record(SessionRecord, fields=stored)

    async def delete_session(self, session_token: str) -> SessionRecord | None:
        if not isinstance(session_token, str) or session_token not in self._sessions:
            return None
        return _record(SessionRecord, fields=self._sessions.pop(session_token))

    async def list_sessions(self, user_id: str) -> list[SessionRecord]:
        # Newest first; of sessions begun at one moment, the one created last first.
        mine = [row for row in reversed(self._sessions.values()) if row["user_id"] == user_id]
        mine.sort(key=lambda row: row["created_at"], reverse=True)
        return [_record(SessionRecord, fields=row) for row in mine]

    async def delete_sessions(self, user_id: str, *, except_token: str | None = None) -> int:
        ending = [
            token
            for token, row in self._sessions.items()
            if row["user_id"] == user_id and token != except_token
        ]
        for token in ending:
            del self._sessions[token]
        return len(ending)

    # -- verification tokens -------------------------------------------------------------

    async def create_verification_token(
        self, verification_token: Mapping[str, Any] | VerificationToken
    ) -> VerificationToken:
        fields = _fields(verification_token, "a verification token")
        _require(fields, "a verification token")
        key = (fields["identifier"], fields["token"])
        if key in self._tokens:
            raise DuplicateRecordError("this verification token already exists")
        self._tokens[key] = fields["expires"]  # other fields are dropped, as Auth.js does
        return VerificationToken(*key, fields["expires"])

    async def use_verification_token(
        self, *, identifier: str, token: str
    ) -> VerificationToken | None:
        # Found and deleted in one step, so a token works once however many use it at once.
        if not isinstance(identifier, str) or not isinstance(token, str):
            return None
        expires = self._tokens.pop((identifier, token), None)
        return None if expires is None else VerificationToken(identifier, token, expires)

    async def delete_verification_tokens(self, identifier: str) -> int:
        """Drop every pending token of ``identifier``: only the newest reset link works."""
        mine = [key for key in self._tokens if key[0] == identifier]
        for key in mine:
            del self._tokens[key]
        return len(mine)

    # -- JWT revocation ------------------------------------------------------------------

    async def revoke_tokens_issued_before(self, user_id: str, when: datetime) -> None:
        if not isinstance(user_id, str) or not user_id:
            raise ValueError("user_id must be a string that is not empty")
        if not isinstance(when, datetime):
            raise ValueError("when must be a datetime")
        when = _utc(when)
        self._revocations[user_id] = max(when, self._revocations.get(user_id, when))

    async def tokens_revoked_before(self, user_id: str) -> datetime | None:
        return self._revocations.get(user_id) if isinstance(user_id, str) else None


# -- records -----------------------------------------------------------------------------


def _fields(data: Mapping[str, Any] | Any, what: str) -> dict[str, Any]:
    """``data`` (a mapping or a record) as checked, copied fields under Python names."""
    if isinstance(data, Mapping):
        given = dict(data)
    else:
        given = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
        given.update(given.pop("extra", None) or {})
        if not given.get("id"):
            given.pop("id", None)
    fields: dict[str, Any] = {}
    for key, value in given.items():
        name = _AUTHJS_NAMES.get(key, key)
        if name in fields and fields[name] != value:
            raise ValueError(f"{what}'s {name} is given twice")
        if name in _TIMES and value is not None and not isinstance(value, datetime):
            raise ValueError(f"{what}'s {name} must be a datetime")
        if name in _STRINGS and value is not None and not isinstance(value, str):
            raise ValueError(f"{what}'s {name} must be a string")
        if name == "expires_at" and isinstance(value, float) and value.is_integer():
            value = int(value)
        fields[name] = _copy(value)
    return fields


def _require(fields: Mapping[str, Any], what: str) -> None:
    for name in _REQUIRED[what]:
        if fields.get(name) is None:
            raise ValueError(f"{what} needs {name}")


def _record(kind: type[_Record], fields: Mapping[str, Any], **more: Any) -> _Record:
    """A record of ``kind`` from stored fields: those it has no attribute for in ``extra``."""
    names = {f.name for f in dataclasses.fields(kind)} - {"extra"}
    values = {**_copy(dict(fields)), **more}
    known = {name: value for name, value in values.items() if name in names}
    extra = {name: value for name, value in values.items() if name not in names}
    return kind(**known, extra=extra)


def _copy(value: Any) -> Any:
    """A copy of ``value``, every datetime in it aware UTC to the millisecond."""
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item) for item in value]
    return copy.deepcopy(value)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)
