"""Users, accounts, sessions, verification tokens and passkeys kept in MongoDB.

Two document layouts, so that a JavaScript app and a Python app can share one database;
``MongoDBAdapter(db, schema=...)`` picks one.

``schema="authjs"`` (the default): documents laid out exactly as Auth.js's MongoDB
adapter lays them out (``emailVerified``, ``userId`` as an ObjectId,
``providerAccountId``, ``sessionToken``...). Sessions carry three extra fields,
``createdAt``, ``lastSeenAt`` and ``userAgent``, which Auth.js passes through.

``schema="better-auth"``: documents laid out exactly as Better Auth's MongoDB adapter
(better-auth 1.7) lays them out with its default options. Its collections are singular,
``user``, ``account``, ``session`` and ``verification`` (``collections=`` renames them,
e.g. to match its ``usePlural``); ``_id`` is an ObjectId and so is every ``userId``;
times are dates; ``createdAt`` and ``updatedAt`` are on every document, kept by the
adapter (``updatedAt`` moves on every write). Records map onto it so:

- user: ``name`` (a string: ``None`` is stored as ``""`` and read back as ``None``),
  ``email``, ``image``, ``emailVerified`` a boolean: ``email_verified`` is a time here,
  which goes beside it as ``emailVerifiedAt`` so that it reads back; a user Better Auth
  verified has no such field, and reads as verified when it was last written
  (``updatedAt``).
- account: ``userId``, ``providerId`` (Better Auth's ``"credential"`` is the Password
  provider's ``"password"``, both ways), ``accountId``, ``accessToken``,
  ``refreshToken``, ``idToken``, ``scope`` (comma-joined, as Better Auth splits it; read
  back space-separated, as OAuth 2 spells it); ``expires_at`` (seconds since the epoch) is
  the date ``accessTokenExpiresAt``, and the extra ``refresh_token_expires_at``, in
  seconds too, the date ``refreshTokenExpiresAt``. A password account's hash is the
  extra field ``password``, Better Auth's own. An account Better Auth made has no
  ``type``: it reads as ``"credentials"`` for a password, else ``"oauth"``.
- session: ``token``, ``userId``, ``expiresAt``, ``createdAt``; ``last_seen_at`` is
  ``updatedAt`` (which Better Auth also moves when it extends a session: the change feed
  sees that as an extension); ``userAgent``; the extra ``ip_address`` is ``ipAddress``.
- verification: ``identifier``, ``value`` (the token) and ``expiresAt``.

Where the layout departs from what Better Auth does itself, and why:

- Fields Better Auth has no place for (an account's ``type``, ``token_type``,
  ``session_state``, any extra) are stored on the document under their own names, as in
  Auth.js's layout. Better Auth reads only the fields of its schema and updates with
  ``$set``, so it neither sees nor drops them (declare them as its ``additionalFields``
  to read them there). An extra named like a field the layout stores (``expiresAt``,
  ``updatedAt``...) would overwrite it, and is refused (``ValueError``).
- Every user has an email: Better Auth requires one, and its unique index on ``email``
  (no partial filter) would let only one user be without. A user without one is refused
  (``ValueError``) rather than stored for the first and refused for the next. Better
  Auth finds users by their email in lower case.
- Indexes: the adapter makes Better Auth's own (same names, same options, so whichever
  app starts first, the other's are already there) and three of its own: unique
  ``account.(providerId, accountId)`` and ``verification.(identifier, value)``, which
  turn concurrent duplicates into :class:`~asgi_session.errors.DuplicateRecordError`
  (Better Auth looks before it writes, and writes a verification value again only after
  consuming it), and TTL on both ``expiresAt``, removing what Better Auth treats as gone.
- Passkeys stay in the ``authenticators`` collection, in Auth.js's shape: Better Auth's
  passkey plugin ships apart from it, with a collection and fields of its own, and
  never reads these.
- Better Auth's options that change the documents (``generateId``, field renames,
  secondary storage) are not followed: ids must be its default ObjectIds.

Revocations (``revocations``) and rate limit counters (``rate_limits``) are this
package's own in both layouts. Passkeys are Auth.js's Authenticator records
(``credentialID``, ``userId`` as an ObjectId, ``credentialPublicKey``, ``counter``...),
with ``name``, ``createdAt`` and ``lastUsedAt`` besides.

Works with PyMongo's ``AsyncDatabase`` and with Motor's ``AsyncIOMotorDatabase``.

On a replica set or a sharded cluster, :meth:`MongoDBAdapter.session_changes` watches
the sessions and users collections with one change stream (a database-level stream,
``$match``-ed on the server to their updates, replacements and deletions, and to drops),
which is how :class:`~asgi_session.backends.DatabaseStrategy` caches sessions and still
sees a session end, wherever it was ended, within milliseconds. A standalone server has
no change streams: the strategy then reads every session, as without a cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import pymongo
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    InvalidOperation,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)

from asgi_session._deprecated import renamed
from asgi_session.backends import _records as records
from asgi_session.backends._adapter import (
    AccountInput,
    AuthenticatorInput,
    SessionInput,
    UserInput,
    VerificationTokenInput,
)
from asgi_session.backends._records import split_scopes
from asgi_session.backends._session_cache import (
    CLOSED,
    EVERYTHING,
    SESSION,
    USER,
    Change,
    ChangeFeed,
)
from asgi_session.errors import BackendUnavailableError, ConfigurationError, DuplicateRecordError
from asgi_session.models import (
    ACCOUNT_FIELDS,
    AUTHENTICATOR_FIELDS,
    SESSION_FIELDS,
    USER_FIELDS,
    VERIFICATION_FIELDS,
    Account,
    Authenticator,
    SessionRecord,
    User,
    VerificationToken,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from asgi_session._ratelimit import Window

__all__ = ["DEFAULT_COLLECTIONS", "MongoDBAdapter", "MongoDBRateLimitStore"]

_logger = logging.getLogger("asgi_session")

_T = TypeVar("_T")

DEFAULT_COLLECTIONS: Mapping[str, str] = MappingProxyType(
    {
        "users": "users",
        "accounts": "accounts",
        "sessions": "sessions",
        "verification_tokens": "verification_tokens",
        "revocations": "revocations",
        "authenticators": "authenticators",
    }
)

# Key under which get_session_and_user's $lookup puts the user; cannot clash with a
# stored field because it is removed before the session is read.
_JOINED_USER = "__asgi_session_user"

# Server error codes when an index cannot be built as asked.
_INDEX_CONFLICT_CODES = frozenset({85, 86})  # IndexOptionsConflict, IndexKeySpecsConflict
_DUPLICATE_KEY_CODE = 11000

# Server error codes refusing a change stream for good, and what they mean.
_NO_CHANGE_STREAMS = {
    40573: "the MongoDB server is not a replica set or sharded cluster (no change streams)",
    13: "the database user may not watch changes (the changeStream privilege is missing)",
    40324: "the MongoDB server does not know change streams",
}
# ChangeStreamFatalError, ChangeStreamHistoryLost: the resume point is gone from the oplog.
_RESUME_POINT_LOST = frozenset({280, 286})
# How long a change stream's getMore waits for a change before answering "none".
_CHANGES_HEARTBEAT = 1.0


# -- layouts -----------------------------------------------------------------------------
# Where each kind of record lives and how its fields are stored. Every method of the
# adapter reads and writes through one, so the two layouts share all of their logic.


class _Removed:
    """A stored field to remove (``$unset``), or to leave out of a new document."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<removed>"


_REMOVED = _Removed()

#: How one value is stored and how it is read back: (to stored, from stored).
_Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]
#: A reference to a user: an ObjectId in the store, in both layouts (Better Auth's
#: MongoDB adapter turns every field referencing an id into one, as Auth.js's does).
_USER_ID: _Codec = (ObjectId, str)
# The times Better Auth keeps on its documents, which the adapter maintains there.
_STAMPS = frozenset({"createdAt", "updatedAt"})


@dataclasses.dataclass(frozen=True, slots=True)
class _Shape:
    """How one kind of record is stored in a layout.

    ``names`` maps Python names to stored ones (a field it does not name, an extra, is
    stored under its own); ``values`` converts the values stored otherwise than Python
    holds them; ``defaults`` are the Python values of fields the layout stores on every
    document, for a record created without them; ``required`` are fields it cannot store
    as ``None`` and ``strings`` fields it needs as strings; ``stamped`` makes the adapter
    keep ``createdAt`` (set on insert) and ``updatedAt`` (set on every write);
    ``reserved`` names other stored fields the layout owns. ``on_write`` and ``on_read``
    convert what spans several fields.
    """

    what: str  # how messages name the record: "a user"...
    names: Mapping[str, str]
    values: Mapping[str, _Codec] = dataclasses.field(default_factory=dict)
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    required: tuple[str, ...] = ()
    strings: tuple[str, ...] = ()
    stamped: bool = False
    reserved: frozenset[str] = frozenset()
    on_write: Callable[[Mapping[str, Any], dict[str, Any]], None] | None = None
    on_read: Callable[[dict[str, Any], Mapping[str, Any]], None] | None = None
    owned: frozenset[str] = dataclasses.field(init=False)  # stored names no extra may take
    hidden: frozenset[str] = dataclasses.field(init=False)  # stored fields no record shows

    def __post_init__(self) -> None:
        kept = self.reserved | (_STAMPS if self.stamped else frozenset())
        stored = frozenset(self.names.values())
        object.__setattr__(self, "owned", stored | kept)
        object.__setattr__(self, "hidden", kept - stored)

    def stored(self, name: str) -> str:
        """The stored name of the field Python calls ``name``."""
        return self.names.get(name, name)

    def value(self, name: str, value: Any) -> Any:
        """``value``, of the field Python calls ``name``, as it is stored (and queried)."""
        codec = self.values.get(name)
        return codec[0](value) if codec is not None else value

    def document(self, fields: Mapping[str, Any], *, new: bool) -> dict[str, Any]:
        """Python-named fields as stored: a new document (``new``), or what an update
        sets (see :func:`_update`). Raises ``ValueError`` for what the layout cannot store.
        """
        fields = {**self.defaults, **fields} if new else dict(fields)
        for name in self.required:
            if (new or name in fields) and fields.get(name) is None:
                raise ValueError(
                    f"{self.what} needs {name}" if new else f"{self.what}'s {name} cannot be None"
                )
        for name in self.strings:
            if fields.get(name) is not None and not isinstance(fields[name], str):
                raise ValueError(f"{self.what}'s {name} must be a string")
        document: dict[str, Any] = {}
        for name, value in fields.items():
            if name not in self.names and name in self.owned:
                # An extra stored under a name the layout uses would overwrite that field,
                # or be read back as it.
                raise ValueError(f"{self.what}'s {name} is a field this layout keeps itself")
            document[self.stored(name)] = self.value(name, value)
        if self.on_write is not None:
            self.on_write(fields, document)
        if self.stamped:
            now = records.utc(datetime.now(UTC))
            if new:
                document["createdAt"] = now
            document["updatedAt"] = now
        return document

    def fields(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """A stored document's fields under Python names, without ``_id``."""
        fields = records.from_stored(document, self.names)
        fields.pop("_id", None)
        for name, (_, read) in self.values.items():
            if name in fields:
                fields[name] = read(fields[name])
        if self.on_read is not None:
            self.on_read(fields, document)
        for name in self.hidden:
            fields.pop(name, None)
        return fields


@dataclasses.dataclass(frozen=True, slots=True)
class _Layout:
    """A document layout: the default collection names, the shape of each kind of
    record, and the indexes (given the collection names in use)."""

    name: str
    collections: Mapping[str, str]
    users: _Shape
    accounts: _Shape
    sessions: _Shape
    verification_tokens: _Shape
    authenticators: _Shape
    indexes: Callable[[Mapping[str, str]], dict[str, list[IndexModel]]]

    def user(self, document: Mapping[str, Any]) -> User:
        return records.user_record(str(document["_id"]), self.users.fields(document))

    def account(self, document: Mapping[str, Any]) -> Account:
        return records.account_record(str(document["_id"]), self.accounts.fields(document))

    def session(self, document: Mapping[str, Any]) -> SessionRecord:
        return records.session_record(str(document["_id"]), self.sessions.fields(document))

    def verification(self, document: Mapping[str, Any]) -> VerificationToken:
        return records.verification_record(self.verification_tokens.fields(document))

    def authenticator(self, document: Mapping[str, Any]) -> Authenticator:
        return records.authenticator_record(self.authenticators.fields(document))

    def account_key(self, provider: object, provider_account_id: object) -> dict[str, Any] | None:
        """The filter finding one linked account; ``None`` when the key is not two
        strings (which then match nothing instead of acting as a query operator), or
        names a provider the layout cannot store."""
        if not isinstance(provider, str) or not isinstance(provider_account_id, str):
            return None
        shape = self.accounts
        try:
            stored = shape.value("provider", provider)
        except ValueError:
            return None
        return {
            shape.stored("provider"): stored,
            shape.stored("provider_account_id"): provider_account_id,
        }


def _insertable(document: Mapping[str, Any]) -> dict[str, Any]:
    """A new document: the fields to remove are simply not written."""
    return {name: value for name, value in document.items() if value is not _REMOVED}


def _update(document: Mapping[str, Any]) -> dict[str, Any]:
    """The update writing ``document``'s fields: ``$set``, and ``$unset`` for removals."""
    update: dict[str, Any] = {}
    kept = _insertable(document)
    if kept:
        update["$set"] = kept
    removed = {name: "" for name, value in document.items() if value is _REMOVED}
    if removed:
        update["$unset"] = removed
    return update


# Auth.js's layout: its MongoDB adapter's collections and field names, and ours beside.

_AUTHENTICATORS = _Shape("an authenticator", AUTHENTICATOR_FIELDS, values={"user_id": _USER_ID})


def _authjs_indexes(names: Mapping[str, str]) -> dict[str, list[IndexModel]]:
    return {
        "users": [
            IndexModel(
                [("email", ASCENDING)],
                unique=True,
                # Auth.js lets users have no email; those many users share no value.
                partialFilterExpression={"email": {"$type": "string"}},
            )
        ],
        "accounts": [
            IndexModel([("provider", ASCENDING), ("providerAccountId", ASCENDING)], unique=True),
            IndexModel([("userId", ASCENDING)]),
        ],
        "sessions": [
            IndexModel([("sessionToken", ASCENDING)], unique=True),
            IndexModel([("userId", ASCENDING)]),
            IndexModel([("expires", ASCENDING)], expireAfterSeconds=0),
        ],
        "verification_tokens": [
            IndexModel([("identifier", ASCENDING), ("token", ASCENDING)], unique=True),
            IndexModel([("expires", ASCENDING)], expireAfterSeconds=0),
        ],
        "authenticators": _authenticator_indexes(),
    }


def _authenticator_indexes() -> list[IndexModel]:
    return [
        IndexModel([("credentialID", ASCENDING)], unique=True),
        IndexModel([("userId", ASCENDING)]),
    ]


_AUTHJS = _Layout(
    name="authjs",
    collections=DEFAULT_COLLECTIONS,
    users=_Shape("a user", USER_FIELDS),
    accounts=_Shape("an account", ACCOUNT_FIELDS, values={"user_id": _USER_ID}),
    sessions=_Shape("a session", SESSION_FIELDS, values={"user_id": _USER_ID}),
    verification_tokens=_Shape("a verification token", VERIFICATION_FIELDS),
    authenticators=_AUTHENTICATORS,
    indexes=_authjs_indexes,
)


# Better Auth's layout: its MongoDB adapter's (with its default options: singular
# collection names, ObjectId ids).

_BETTER_AUTH_COLLECTIONS: Mapping[str, str] = MappingProxyType(
    {
        "users": "user",
        "accounts": "account",
        "sessions": "session",
        "verification_tokens": "verification",
        "revocations": "revocations",
        "authenticators": "authenticators",
    }
)
# Better Auth keeps whether an email is verified, not when: the time goes beside it.
_VERIFIED_AT = "emailVerifiedAt"
# Better Auth's provider id of password accounts, and ours (ids, not secrets).
_CREDENTIAL = "credential"
_PASSWORD = "password"  # noqa: S105


def _write_verified(fields: Mapping[str, Any], document: dict[str, Any]) -> None:
    if "email_verified" in fields:
        verified = fields["email_verified"]
        document["emailVerified"] = verified is not None
        document[_VERIFIED_AT] = verified if verified is not None else _REMOVED


def _read_verified(fields: dict[str, Any], document: Mapping[str, Any]) -> None:
    flag = document.get("emailVerified")
    if isinstance(flag, datetime):
        return  # a time, as Auth.js keeps it: already the field's value
    exact = document.get(_VERIFIED_AT)
    if flag is not True:
        fields["email_verified"] = None
    elif isinstance(exact, datetime):
        fields["email_verified"] = exact
    else:
        # Verified by Better Auth, which keeps no time: when the user was last written
        # is the nearest the document tells.
        fields["email_verified"] = _written_at(document)


def _written_at(document: Mapping[str, Any]) -> datetime:
    for name in ("updatedAt", "createdAt"):
        value = document.get(name)
        if isinstance(value, datetime):
            return value
    oid = document.get("_id")
    if isinstance(oid, ObjectId):
        return oid.generation_time
    return datetime.fromtimestamp(0, UTC)


def _empty_name(value: Any) -> Any:
    # Better Auth's users all have a name, a string: none is the empty one.
    return "" if value is None else value


def _no_name(value: Any) -> Any:
    return None if value == "" else value


def _provider_to_stored(value: Any) -> Any:
    if value == _CREDENTIAL:
        # It would read back as "password": the two names would be one provider.
        raise ValueError(
            "an account's provider 'credential' is what Better Auth calls password "
            "accounts: link them as 'password'"
        )
    return _CREDENTIAL if value == _PASSWORD else value


def _provider_from_stored(value: Any) -> Any:
    return _PASSWORD if value == _CREDENTIAL else value


def _scopes_to_stored(value: Any) -> Any:
    # Better Auth joins granted scopes with commas and splits them on commas when it
    # reads them; ours are the token response's, space-separated as OAuth 2 spells them.
    return ",".join(split_scopes(value)) if isinstance(value, str) else value


def _scopes_from_stored(value: Any) -> Any:
    return " ".join(split_scopes(value)) if isinstance(value, str) else value


def _seconds(what: str) -> _Codec:
    """Seconds since the epoch (Auth.js's token expiry) as a date (Better Auth's)."""

    def to_stored(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{what} must be a number of seconds")
        try:
            return records.utc(datetime.fromtimestamp(value, UTC))
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"{what} must be a number of seconds") from exc

    def from_stored(value: Any) -> Any:
        if not isinstance(value, datetime):
            return value
        seconds = value.timestamp()
        return int(seconds) if seconds.is_integer() else seconds

    return to_stored, from_stored


def _read_account_type(fields: dict[str, Any], document: Mapping[str, Any]) -> None:
    # Better Auth keeps no type: its own accounts are passwords or OAuth logins.
    if fields.get("type") is None:
        fields["type"] = "credentials" if fields.get("provider") == _PASSWORD else "oauth"


def _index_name(collection: str, field: str, *, unique: bool) -> str:
    """The name Better Auth's MongoDB adapter gives its index on one field, so that an
    index either side made first is the other's too (getDatabaseIndexName)."""
    kind = "uidx" if unique else "idx"
    name = f"{collection}_{field}_{kind}"
    limit = 63  # bytes: the longest index name Better Auth makes, for every database
    if len(name.encode()) <= limit:
        return name
    digest = 2166136261  # FNV-1a over UTF-16 code units, as JavaScript strings hold them
    units = name.encode("utf-16-le")
    for index in range(0, len(units), 2):
        digest = ((digest ^ int.from_bytes(units[index : index + 2], "little")) * 16777619) % 2**32
    suffix = f"_{digest:08x}_{kind}"
    head = name[: -len(kind) - 1].encode()[: limit - len(suffix.encode())]
    return head.decode(errors="ignore") + suffix


def _better_auth_indexes(names: Mapping[str, str]) -> dict[str, list[IndexModel]]:
    user, account = names["users"], names["accounts"]
    session, verification = names["sessions"], names["verification_tokens"]
    return {
        # Better Auth's own (what its adapter creates on start), named as it names them.
        # Its users all have an email: no partial filter, so its index and this are one.
        "users": [
            IndexModel(
                [("email", ASCENDING)], name=_index_name(user, "email", unique=True), unique=True
            )
        ],
        "accounts": [
            IndexModel([("userId", ASCENDING)], name=_index_name(account, "userId", unique=False)),
            # Ours: Better Auth checks for the account before linking one, we let the
            # index refuse the second of two links made at once.
            IndexModel([("providerId", ASCENDING), ("accountId", ASCENDING)], unique=True),
        ],
        "sessions": [
            IndexModel(
                [("token", ASCENDING)], name=_index_name(session, "token", unique=True), unique=True
            ),
            IndexModel([("userId", ASCENDING)], name=_index_name(session, "userId", unique=False)),
            # Ours: Better Auth ignores expired sessions and deletes them itself.
            IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0),
        ],
        "verification_tokens": [
            IndexModel(
                [("identifier", ASCENDING)],
                name=_index_name(verification, "identifier", unique=False),
            ),
            # Ours: a token is stored once. Better Auth's values are random, or written
            # again only after the one before is consumed.
            IndexModel([("identifier", ASCENDING), ("value", ASCENDING)], unique=True),
            IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0),
        ],
        "authenticators": _authenticator_indexes(),
    }


_BETTER_AUTH = _Layout(
    name="better-auth",
    collections=_BETTER_AUTH_COLLECTIONS,
    users=_Shape(
        "a user",
        USER_FIELDS,
        values={"name": (_empty_name, _no_name)},
        defaults={"name": None, "email_verified": None},
        # Every user of Better Auth's has an email, and its unique index lets only one
        # user be without.
        required=("email",),
        strings=("email",),
        stamped=True,
        reserved=frozenset({_VERIFIED_AT}),
        on_write=_write_verified,
        on_read=_read_verified,
    ),
    accounts=_Shape(
        "an account",
        {
            "user_id": "userId",
            "type": "type",
            "provider": "providerId",
            "provider_account_id": "accountId",
            "access_token": "accessToken",
            "refresh_token": "refreshToken",
            "expires_at": "accessTokenExpiresAt",
            "token_type": "token_type",
            "scope": "scope",
            "id_token": "idToken",
            "session_state": "session_state",
            "refresh_token_expires_at": "refreshTokenExpiresAt",
        },
        values={
            "user_id": _USER_ID,
            "provider": (_provider_to_stored, _provider_from_stored),
            "expires_at": _seconds("an account's expires_at"),
            "refresh_token_expires_at": _seconds("an account's refresh_token_expires_at"),
            "scope": (_scopes_to_stored, _scopes_from_stored),
        },
        stamped=True,
        on_read=_read_account_type,
    ),
    sessions=_Shape(
        "a session",
        {
            "session_token": "token",
            "user_id": "userId",
            "expires": "expiresAt",
            "created_at": "createdAt",
            "last_seen_at": "updatedAt",
            "user_agent": "userAgent",
            "ip_address": "ipAddress",
        },
        values={"user_id": _USER_ID},
        # Better Auth needs both times on every session.
        required=("created_at", "last_seen_at"),
    ),
    verification_tokens=_Shape(
        "a verification token",
        {"identifier": "identifier", "token": "value", "expires": "expiresAt"},
        stamped=True,
    ),
    authenticators=_AUTHENTICATORS,
    indexes=_better_auth_indexes,
)

_LAYOUTS: Mapping[str, _Layout] = MappingProxyType(
    {layout.name: layout for layout in (_AUTHJS, _BETTER_AUTH)}
)


class MongoDBAdapter:
    """An :class:`~asgi_session.backends.Adapter` (and
    :class:`~asgi_session.backends.AuthenticatorStore`) over a MongoDB database.

    ``database`` is ``AsyncMongoClient(...)["app"]`` (PyMongo) or
    ``AsyncIOMotorClient(...)["app"]`` (Motor). ``schema`` is the document layout:
    ``"authjs"`` (Auth.js's MongoDB adapter's, the default) or ``"better-auth"`` (Better
    Auth's); see the module's documentation. ``collections`` renames any of ``users``,
    ``accounts``, ``sessions``, ``verification_tokens``, ``revocations`` and
    ``authenticators`` (with Better Auth's ``usePlural``: ``users``, ``accounts``,
    ``sessions`` and ``verifications``).

    Every call either finishes or raises
    :class:`~asgi_session.errors.BackendUnavailableError` within ``operation_timeout``
    seconds, whatever the client's own server-selection timeout. Indexes are created on
    first use (see :meth:`ensure_indexes`).

    Revocations of JSON Web Tokens live in their own collection, one document per user
    keyed by the user id *string*: users who signed in with credentials in JWT mode may
    have ids that are not ObjectIds, and user documents shared with Auth.js or Better
    Auth stay untouched.
    """

    def __init__(
        self,
        database: Any,
        *,
        schema: str = "authjs",
        collections: Mapping[str, str] | None = None,
        operation_timeout: float = 5.0,
    ) -> None:
        # Looked up on the type: clients answer any attribute with a database.
        if not callable(getattr(type(database), "get_collection", None)):
            raise ConfigurationError(
                "MongoDBAdapter needs a database, e.g. AsyncMongoClient(url)['app'], "
                f"not {type(database).__name__}"
            )
        layout = _LAYOUTS.get(schema) if isinstance(schema, str) else None
        if layout is None:
            known = ", ".join(repr(name) for name in _LAYOUTS)
            raise ConfigurationError(f"MongoDBAdapter(schema={schema!r}) must be one of {known}")
        if not operation_timeout > 0:
            raise ConfigurationError("operation_timeout must be a positive number of seconds")
        names = dict(layout.collections)
        for key, value in (collections or {}).items():
            if key not in layout.collections:
                known = ", ".join(layout.collections)
                raise ConfigurationError(f"unknown collection {key!r}; expected one of {known}")
            names[key] = value
        self._layout = layout
        self._names: Mapping[str, str] = names
        self._indexes = layout.indexes(names)
        # Index name -> its first field: what older servers name in a duplicate key error.
        self._index_fields = {
            str(model.document["name"]): str(next(iter(model.document["key"])))
            for models in self._indexes.values()
            for model in models
        }
        # Aware UTC datetimes out, plain dicts whatever the client was configured with.
        codec_options = database.codec_options.with_options(
            tz_aware=True, tzinfo=UTC, document_class=dict
        )
        self._db = database.with_options(codec_options=codec_options)
        self._users = self._db.get_collection(names["users"])
        self._accounts = self._db.get_collection(names["accounts"])
        self._sessions = self._db.get_collection(names["sessions"])
        self._tokens = self._db.get_collection(names["verification_tokens"])
        self._revocations = self._db.get_collection(names["revocations"])
        self._authenticators = self._db.get_collection(names["authenticators"])
        self._timeout = float(operation_timeout)
        self._indexes_ready = False
        self._index_lock = asyncio.Lock()
        self._unreachable = False
        self._rate_limit_stores: dict[str, MongoDBRateLimitStore] = {}

    @property
    def schema(self) -> str:
        """The name of the document layout in use: ``"authjs"`` or ``"better-auth"``."""
        return self._layout.name

    # -- setup -------------------------------------------------------------------------

    async def ensure_indexes(self) -> None:
        """Create the indexes the adapter relies on; safe to call any number of times.

        Auth.js's layout: unique ``sessions.sessionToken``,
        ``accounts.(provider, providerAccountId)``, ``users.email`` (only where it is a
        string), ``verification_tokens.(identifier, token)``; lookups on ``userId``.
        Better Auth's: the indexes its own adapter makes, under its names
        (``user_email_uidx``, ``session_token_uidx``, ``session_userId_idx``,
        ``account_userId_idx``, ``verification_identifier_idx``), and unique
        ``account.(providerId, accountId)`` and ``verification.(identifier, value)``.
        Both: unique ``authenticators.credentialID`` and lookups on its ``userId``;
        expiry (TTL) of sessions and verification tokens, and of ``rate_limits.expires``
        (the counters of :meth:`rate_limit_store`, which also makes its index on first
        use).

        Raises :class:`~asgi_session.errors.ConfigurationError` when existing data or an
        existing index with other options prevents it (Auth.js creates no indexes, so a
        database it filled may hold duplicate emails).
        """
        async with self._index_lock:
            await self._guarded(self._create_indexes)
            self._indexes_ready = True
        self.rate_limit_store()  # the default one has its index made even before it is used
        for store in list(self._rate_limit_stores.values()):
            await store.ensure_indexes()

    def rate_limit_store(self, collection: str = "rate_limits") -> MongoDBRateLimitStore:
        """Rate limit counters in this database, in ``collection``: what
        ``AuthConfig(adapter=...)`` counts in by default, so every app instance sharing
        the database shares the limits. The same store each time, so that
        :meth:`ensure_indexes` prepares the one in use."""
        if not isinstance(collection, str) or not collection:
            raise ConfigurationError("rate_limit_store(collection=...) must be a collection name")
        store = self._rate_limit_stores.get(collection)
        if store is None:
            store = self._rate_limit_stores[collection] = MongoDBRateLimitStore(self, collection)
        return store

    async def _create_indexes(self) -> None:
        try:
            await asyncio.gather(
                *(
                    self._db.get_collection(self._names[key]).create_indexes(models)
                    for key, models in self._indexes.items()
                )
            )
        except OperationFailure as exc:
            if exc.code == _DUPLICATE_KEY_CODE:
                raise ConfigurationError(
                    "cannot create a unique index: the database already holds duplicates "
                    f"({exc.details.get('errmsg') if exc.details else exc}); remove them first"
                ) from exc
            if exc.code in _INDEX_CONFLICT_CODES:
                raise ConfigurationError(
                    "an index with the same keys but other options exists "
                    f"({exc.details.get('errmsg') if exc.details else exc}); drop it and retry"
                ) from exc
            raise

    # -- users -------------------------------------------------------------------------

    async def create_user(self, user: UserInput) -> User:
        """Store a new user with the fields given. An ``id`` that is a valid ObjectId is
        kept, else one is made.

        In Auth.js's layout, as Auth.js does: a field left out is absent from the
        document, one given as ``None`` is stored as null. In Better Auth's, the fields it
        requires are always there, and a user needs an email (``ValueError``).

        Raises :class:`DuplicateRecordError` when another user has the same email (or
        the given id).
        """
        chosen, fields = records.user_input(user, parse_id=_id_text)
        document = {
            "_id": ObjectId(chosen) if chosen else ObjectId(),
            **_insertable(self._layout.users.document(fields, new=True)),
        }
        await self._run(
            lambda: self._users.insert_one(document),
            duplicate={"_id": records.DUPLICATE_USER_ID, "email": records.DUPLICATE_EMAIL},
        )
        return self._layout.user(document)

    async def get_user(self, id: str) -> User | None:
        """The user with this id, or ``None``."""
        oid = _object_id(id)
        if oid is None:
            return None
        document = await self._run(lambda: self._users.find_one({"_id": oid}))
        return self._layout.user(document) if document else None

    async def get_user_by_email(self, email: str) -> User | None:
        """The user with exactly this email, or ``None``."""
        if not isinstance(email, str):
            return None
        query = {self._layout.users.stored("email"): email}
        document = await self._run(lambda: self._users.find_one(query))
        return self._layout.user(document) if document else None

    async def get_user_by_account(self, *, provider: str, provider_account_id: str) -> User | None:
        """The user a provider account is linked to, in one round trip."""
        query = self._layout.account_key(provider, provider_account_id)
        if query is None:
            return None
        pipeline: list[dict[str, Any]] = [
            {"$match": query},
            {"$limit": 1},
            {"$lookup": self._user_lookup(self._layout.accounts)},
        ]
        found = await self._run(lambda: _aggregate(self._accounts, pipeline))
        if not found or not found[0][_JOINED_USER]:
            return None
        return self._layout.user(found[0][_JOINED_USER][0])

    async def update_user(self, user: UserInput) -> User | None:
        """Set the given fields of the user named by ``id``; ``None`` when there is none.

        Raises :class:`DuplicateRecordError` when the new email belongs to another user.
        """
        user_id, changes = records.user_input(user, parse_id=_id_text)
        if user_id is None:
            return None
        oid = ObjectId(user_id)
        if not changes:
            return await self.get_user(user_id)
        update = _update(self._layout.users.document(changes, new=False))
        document = await self._run(
            lambda: self._users.find_one_and_update(
                {"_id": oid}, update, return_document=ReturnDocument.AFTER
            ),
            duplicate={"email": records.DUPLICATE_EMAIL},
        )
        return self._layout.user(document) if document else None

    async def delete_user(self, id: str) -> User | None:
        """Delete the user with their sessions, linked accounts and authenticators;
        returns the user."""
        oid = _object_id(id)
        if oid is None:
            return None
        layout = self._layout

        async def delete() -> dict[str, Any] | None:
            # The user goes first: a session, account or authenticator left behind by a
            # failure afterwards no longer resolves to anyone.
            document: dict[str, Any] | None = await self._users.find_one_and_delete({"_id": oid})
            await asyncio.gather(
                self._accounts.delete_many({layout.accounts.stored("user_id"): oid}),
                self._sessions.delete_many({layout.sessions.stored("user_id"): oid}),
                self._authenticators.delete_many({layout.authenticators.stored("user_id"): oid}),
            )
            return document

        document = await self._run(delete)
        return layout.user(document) if document else None

    # -- accounts ----------------------------------------------------------------------

    async def link_account(self, account: AccountInput) -> Account:
        """Link a provider account to a user.

        Raises :class:`DuplicateRecordError` when this (provider, provider account id) is
        already linked, and ``ValueError`` for invalid input (see
        :func:`~asgi_session.backends._records.account_input`).
        """
        fields = records.account_input(account, parse_id=_id_text)
        shape = self._layout.accounts
        document = {"_id": ObjectId(), **_insertable(shape.document(fields, new=True))}
        await self._run(
            lambda: self._accounts.insert_one(document),
            duplicate={shape.stored("provider"): records.DUPLICATE_ACCOUNT},
        )
        return self._layout.account(document)

    async def unlink_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        """Remove a linked account; returns it, or ``None`` when it was not linked."""
        query = self._layout.account_key(provider, provider_account_id)
        if query is None:
            return None
        document = await self._run(lambda: self._accounts.find_one_and_delete(query))
        return self._layout.account(document) if document else None

    async def get_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        """The linked account, or ``None``."""
        query = self._layout.account_key(provider, provider_account_id)
        if query is None:
            return None
        document = await self._run(lambda: self._accounts.find_one(query))
        return self._layout.account(document) if document else None

    async def update_account(
        self, *, provider: str, provider_account_id: str, data: Mapping[str, Any]
    ) -> Account | None:
        """Update stored token fields (``access_token``, ``refresh_token``, ``expires_at``...).

        The fields naming the account and its user cannot change, nor ``type`` become
        ``None`` (``ValueError``). Returns the updated account, or ``None`` when it is
        not linked.
        """
        changes = records.account_changes(data)
        query = self._layout.account_key(provider, provider_account_id)
        if query is None:
            return None
        if not changes:
            return await self.get_account(
                provider=provider, provider_account_id=provider_account_id
            )
        update = _update(self._layout.accounts.document(changes, new=False))
        document = await self._run(
            lambda: self._accounts.find_one_and_update(
                query, update, return_document=ReturnDocument.AFTER
            )
        )
        return self._layout.account(document) if document else None

    # -- sessions ----------------------------------------------------------------------

    async def create_session(self, session: SessionInput) -> SessionRecord:
        """Store a database session. ``created_at`` defaults to now and ``last_seen_at``
        to ``created_at``.

        Raises :class:`DuplicateRecordError` when the token exists and ``ValueError`` for
        invalid input (see :func:`~asgi_session.backends._records.session_input`).
        """
        fields = records.session_input(session, parse_id=_id_text)
        shape = self._layout.sessions
        document = {"_id": ObjectId(), **_insertable(shape.document(fields, new=True))}
        await self._run(
            lambda: self._sessions.insert_one(document),
            duplicate={shape.stored("session_token"): records.DUPLICATE_SESSION},
        )
        return self._layout.session(document)

    async def get_session_and_user(self, session_token: str) -> tuple[SessionRecord, User] | None:
        """The session and its user, in one round trip; ``None`` when either is missing.

        Expiry is not checked: the caller decides what to do with an expired session.
        """
        if not isinstance(session_token, str):
            return None
        shape = self._layout.sessions
        pipeline: list[dict[str, Any]] = [
            {"$match": {shape.stored("session_token"): session_token}},
            {"$limit": 1},
            {"$lookup": self._user_lookup(shape)},
        ]
        found = await self._run(lambda: _aggregate(self._sessions, pipeline))
        if not found:
            return None
        users = found[0].pop(_JOINED_USER)
        if not users or isinstance(found[0].get(shape.stored("user_id")), list):
            # $lookup matches an array by any of its elements: a session naming a list
            # of users (another tool's, or a planted one) names none of them.
            return None
        return self._layout.session(found[0]), self._layout.user(users[0])

    async def get_session(self, session_token: str) -> SessionRecord | None:
        """The session alone, without its user (one indexed ``find``), or ``None``.

        What a cache that holds the user already needs: a cheaper read than the join of
        :meth:`get_session_and_user`. Expiry is not checked.
        """
        if not isinstance(session_token, str):
            return None
        query = {self._layout.sessions.stored("session_token"): session_token}
        # The read a cache's miss waits for: on PyMongo's own asyncio driver, an asyncio
        # timeout cancels the operation itself, and sparing pymongo.timeout saves some
        # 8 % of an indexed read. Motor's worker thread needs the driver's deadline.
        document = await self._run(
            lambda: self._sessions.find_one(query),
            driver_deadline=not self._native_asyncio,
        )
        return self._layout.session(document) if document else None

    @functools.cached_property
    def _native_asyncio(self) -> bool:
        """Whether the database is PyMongo's asyncio one (not Motor's threads)."""
        return inspect.iscoroutinefunction(self._sessions.find_one)

    def session_changes(self, *, heartbeat: float = _CHANGES_HEARTBEAT) -> ChangeFeed:
        """A feed of the changes to this database's sessions and users, not opened yet.

        One change stream on the database, filtered on the server to what can change a
        resolved session: updates, replacements and deletions in the sessions and users
        collections, and their drops and renames (which empty a cache), whoever made
        them. Each wait for changes lasts at most ``heartbeat`` seconds. A feed reopened
        after a failure resumes after the last change it reported; when the server no
        longer has that point in its oplog, it starts from now.

        Used by :class:`~asgi_session.backends.DatabaseStrategy`; its ``open()`` says
        why when the server cannot stream changes (a standalone ``mongod``).
        """
        if not heartbeat > 0:
            raise ConfigurationError("heartbeat must be a positive number of seconds")
        return _SessionChanges(self, float(heartbeat))

    async def update_session(self, session: SessionInput) -> SessionRecord | None:
        """Set the given fields of the session named by ``session_token``.

        Returns the updated session, or ``None`` when there is none. The token itself
        cannot change; ``expires`` and ``user_id`` cannot become ``None``.
        """
        token, changes = records.session_changes(session, parse_id=_id_text)
        if token is None:
            return None
        shape = self._layout.sessions
        query = {shape.stored("session_token"): token}
        if not changes:
            document = await self._run(lambda: self._sessions.find_one(query))
        else:
            update = _update(shape.document(changes, new=False))
            document = await self._run(
                lambda: self._sessions.find_one_and_update(
                    query, update, return_document=ReturnDocument.AFTER
                )
            )
        return self._layout.session(document) if document else None

    async def delete_session(self, session_token: str) -> SessionRecord | None:
        """Delete a session; returns it, or ``None`` when there was none."""
        if not isinstance(session_token, str):
            return None
        query = {self._layout.sessions.stored("session_token"): session_token}
        document = await self._run(lambda: self._sessions.find_one_and_delete(query))
        return self._layout.session(document) if document else None

    async def list_sessions(self, user_id: str) -> list[SessionRecord]:
        """The user's sessions, newest first.

        Expired sessions the TTL monitor has not removed yet (it runs about once a
        minute) are included; callers compare ``expires`` with their clock.
        """
        oid = _object_id(user_id)
        if oid is None:
            return []
        shape = self._layout.sessions
        # Sessions written by Auth.js have no createdAt; their ObjectId orders them.
        cursor = self._sessions.find({shape.stored("user_id"): oid}).sort(
            [(shape.stored("created_at"), DESCENDING), ("_id", DESCENDING)]
        )
        documents = await self._run(lambda: cursor.to_list(None))
        return [self._layout.session(document) for document in documents]

    async def delete_sessions(self, user_id: str, *, except_token: str | None = None) -> int:
        """Delete the user's sessions, except ``except_token``'s; returns how many went."""
        oid = _object_id(user_id)
        if oid is None:
            return 0
        shape = self._layout.sessions
        query: dict[str, Any] = {shape.stored("user_id"): oid}
        if except_token is not None:
            query[shape.stored("session_token")] = {"$ne": str(except_token)}
        result = await self._run(lambda: self._sessions.delete_many(query))
        deleted: int = result.deleted_count
        return deleted

    # -- verification tokens -----------------------------------------------------------

    async def create_verification_token(
        self, verification_token: VerificationTokenInput
    ) -> VerificationToken:
        """Store a single-use token (``identifier``, hashed ``token``, ``expires``).

        Other fields are dropped. Raises :class:`DuplicateRecordError` when the same
        identifier and token are stored already, and ``ValueError`` when a field is
        missing or of the wrong type.
        """
        created = records.verification_input(verification_token)
        shape = self._layout.verification_tokens
        document = {
            "_id": ObjectId(),
            **_insertable(shape.document(dataclasses.asdict(created), new=True)),
        }
        await self._run(
            lambda: self._tokens.insert_one(document),
            duplicate={shape.stored("identifier"): records.DUPLICATE_VERIFICATION},
        )
        return created

    async def use_verification_token(
        self, *, identifier: str, token: str
    ) -> VerificationToken | None:
        """Delete and return the token; a second use gets ``None``. Expiry is not checked."""
        if not isinstance(identifier, str) or not isinstance(token, str):
            return None
        shape = self._layout.verification_tokens
        query = {shape.stored("identifier"): identifier, shape.stored("token"): token}
        document = await self._run(lambda: self._tokens.find_one_and_delete(query))
        return self._layout.verification(document) if document else None

    async def delete_verification_tokens(self, identifier: str) -> int:
        """Delete every token of ``identifier`` (an index leads with it); how many there
        were."""
        if not isinstance(identifier, str):
            return 0
        query = {self._layout.verification_tokens.stored("identifier"): identifier}
        result = await self._run(lambda: self._tokens.delete_many(query))
        deleted: int = result.deleted_count
        return deleted

    # -- authenticators (passkeys) -----------------------------------------------------

    async def create_authenticator(self, authenticator: AuthenticatorInput) -> Authenticator:
        """Register a passkey. ``created_at`` defaults to now.

        Raises :class:`DuplicateRecordError` when the credential id is registered already,
        and ``ValueError`` for invalid input (see
        :func:`~asgi_session.backends._records.authenticator_input`).
        """
        fields = records.authenticator_input(authenticator, parse_id=_id_text)
        shape = self._layout.authenticators
        document = {"_id": ObjectId(), **_insertable(shape.document(fields, new=True))}
        await self._run(
            lambda: self._authenticators.insert_one(document),
            duplicate={shape.stored("credential_id"): records.DUPLICATE_AUTHENTICATOR},
        )
        return self._layout.authenticator(document)

    async def get_authenticator(self, credential_id: str) -> Authenticator | None:
        """The authenticator with this credential id, or ``None``."""
        if not isinstance(credential_id, str):
            return None
        query = {self._layout.authenticators.stored("credential_id"): credential_id}
        document = await self._run(lambda: self._authenticators.find_one(query))
        return self._layout.authenticator(document) if document else None

    async def list_authenticators_by_user_id(self, user_id: str) -> list[Authenticator]:
        """The user's authenticators, oldest first (any without ``createdAt`` first)."""
        oid = _object_id(user_id)
        if oid is None:
            return []
        shape = self._layout.authenticators
        cursor = self._authenticators.find({shape.stored("user_id"): oid}).sort(
            [(shape.stored("created_at"), ASCENDING), ("_id", ASCENDING)]
        )
        documents = await self._run(lambda: cursor.to_list(None))
        return [self._layout.authenticator(document) for document in documents]

    async def update_authenticator_counter(
        self, credential_id: str, counter: int, *, used_at: datetime | None = None
    ) -> Authenticator | None:
        """Store ``counter`` (and ``used_at`` as ``lastUsedAt``) if the stored counter is
        lower, or both are 0; returns the updated authenticator.

        ``None`` when there is no such credential or the counter does not go up: a
        cloned authenticator, or an assertion replayed. One ``find_one_and_update``
        whose filter holds the condition, so of concurrent calls with one counter, one
        wins, on any number of app instances. Raises ``ValueError`` for a counter or
        time of the wrong type.
        """
        counter, used_at = records.counter_input(counter, used_at)
        if not isinstance(credential_id, str):
            return None
        changes: dict[str, Any] = {"counter": counter}
        if used_at is not None:
            changes["last_used_at"] = used_at
        shape = self._layout.authenticators
        # Lower, or both 0: for a counter of 0 that is "at most 0".
        query = {
            shape.stored("credential_id"): credential_id,
            shape.stored("counter"): {"$lt": counter} if counter else {"$lte": 0},
        }
        update = _update(shape.document(changes, new=False))
        document = await self._run(
            lambda: self._authenticators.find_one_and_update(
                query, update, return_document=ReturnDocument.AFTER
            )
        )
        return self._layout.authenticator(document) if document else None

    async def update_authenticator(
        self, credential_id: str, data: Mapping[str, Any]
    ) -> Authenticator | None:
        """Set the given fields (``name``, mostly); ``None`` when there is no such credential.

        The fields naming the credential, its user, its key and its counter cannot change
        (``ValueError``; see :func:`~asgi_session.backends._records.authenticator_changes`).
        """
        changes = records.authenticator_changes(data)
        if not isinstance(credential_id, str):
            return None
        if not changes:
            return await self.get_authenticator(credential_id)
        shape = self._layout.authenticators
        update = _update(shape.document(changes, new=False))
        document = await self._run(
            lambda: self._authenticators.find_one_and_update(
                {shape.stored("credential_id"): credential_id},
                update,
                return_document=ReturnDocument.AFTER,
            )
        )
        return self._layout.authenticator(document) if document else None

    async def delete_authenticator(self, credential_id: str) -> Authenticator | None:
        """Delete an authenticator; returns it, or ``None`` when there was none."""
        if not isinstance(credential_id, str):
            return None
        query = {self._layout.authenticators.stored("credential_id"): credential_id}
        document = await self._run(lambda: self._authenticators.find_one_and_delete(query))
        return self._layout.authenticator(document) if document else None

    # -- JWT revocation ----------------------------------------------------------------

    async def revoke_tokens_issued_before(self, user_id: str, when: datetime) -> None:
        """Revoke the user's tokens issued before ``when``. The cut-off only moves forward.

        Any non-empty string is a user id here: users who signed in with credentials in
        JWT mode need not be stored.
        """
        user_id, cutoff = records.revocation_input(user_id, when)
        await self._run(
            lambda: self._revocations.update_one(
                {"_id": user_id}, {"$max": {"revokedBefore": cutoff}}, upsert=True
            )
        )

    async def tokens_revoked_before(self, user_id: str) -> datetime | None:
        """The user's revocation cut-off, or ``None`` when nothing was revoked."""
        if not isinstance(user_id, str):
            return None
        document = await self._run(lambda: self._revocations.find_one({"_id": user_id}))
        if not document:
            return None
        cutoff = document.get("revokedBefore")
        return cutoff if isinstance(cutoff, datetime) else None

    # -- plumbing ----------------------------------------------------------------------

    def _user_lookup(self, shape: _Shape) -> dict[str, str]:
        """The ``$lookup`` joining the user a ``shape`` document names."""
        return {
            "from": self._names["users"],
            "localField": shape.stored("user_id"),
            "foreignField": "_id",
            "as": _JOINED_USER,
        }

    async def _run(
        self,
        operation: Callable[[], Awaitable[_T]],
        *,
        duplicate: Mapping[str, str] | None = None,
        driver_deadline: bool = True,
    ) -> _T:
        """Run one store operation, creating the indexes first if that has not happened.

        ``duplicate`` gives the message of the :class:`DuplicateRecordError` raised when
        a unique index refuses the write, by the index's first field. ``driver_deadline``
        is :meth:`_guarded`'s.
        """
        if not self._indexes_ready:
            async with self._index_lock:
                if not self._indexes_ready:
                    await self._guarded(self._create_indexes)
                    self._indexes_ready = True
        try:
            return await self._guarded(operation, driver_deadline=driver_deadline)
        except DuplicateKeyError as exc:
            if duplicate is None:
                raise
            key = _duplicate_key(exc) or ""
            key = self._index_fields.get(key, key)
            # An index this adapter did not make (an app's own) has no message here.
            message = duplicate.get(key, "a record with the same unique key exists")
            raise DuplicateRecordError(message) from exc

    async def _guarded(
        self, operation: Callable[[], Awaitable[_T]], *, driver_deadline: bool = True
    ) -> _T:
        """Bound an operation by ``operation_timeout`` and turn outages into one error type.

        ``pymongo.timeout`` makes the driver give up in time (Motor copies it into its
        worker thread); ``asyncio.timeout`` is the backstop for anything that does not
        honour it, and alone bounds (by cancelling) what runs in this event loop:
        ``driver_deadline=False`` leaves the driver's out.
        """
        try:
            async with asyncio.timeout(self._timeout):
                if driver_deadline:
                    with pymongo.timeout(self._timeout):
                        result = await operation()
                else:
                    result = await operation()
        except TimeoutError as exc:
            raise self._outage(exc) from exc
        except PyMongoError as exc:
            if _is_outage(exc):
                raise self._outage(exc) from exc
            self._reachable()
            raise
        self._reachable()
        return result

    def _outage(self, cause: BaseException) -> BackendUnavailableError:
        if not self._unreachable:
            self._unreachable = True
            _logger.warning("MongoDB is unreachable: %s", _describe(cause))
        return BackendUnavailableError(f"MongoDB is unreachable ({type(cause).__name__})")

    def _reachable(self) -> None:
        if self._unreachable:
            self._unreachable = False
            _logger.info("MongoDB is reachable again")


class MongoDBRateLimitStore:
    """Rate limit counters in a MongoDB collection, shared by every app instance on it.

    One document per limit, window and (hashed) subject, ``{_id, count, expires}``,
    counted by an atomic ``$inc`` upsert, so concurrent instances never lose a count; a
    TTL index on ``expires`` removes each window once it has ended. Made by
    :meth:`MongoDBAdapter.rate_limit_store`: it shares the adapter's database, its
    ``operation_timeout`` and its outage handling
    (:class:`~asgi_session.errors.BackendUnavailableError`).
    """

    def __init__(self, adapter: MongoDBAdapter, collection: str) -> None:
        self._adapter = adapter
        self._collection = adapter._db.get_collection(collection)
        self._indexes_ready = False
        self._index_lock = asyncio.Lock()

    async def ensure_indexes(self) -> None:
        """Create the TTL index on ``expires``; safe to call any number of times."""
        async with self._index_lock:
            await self._adapter._guarded(self._create_indexes)
            self._indexes_ready = True

    async def _create_indexes(self) -> None:
        try:
            await self._collection.create_indexes(
                [IndexModel([("expires", ASCENDING)], expireAfterSeconds=0)]
            )
        except OperationFailure as exc:
            if exc.code in _INDEX_CONFLICT_CODES:
                raise ConfigurationError(
                    f"{self._collection.name}.expires has an index with other options "
                    f"({exc.details.get('errmsg') if exc.details else exc}); drop it and retry"
                ) from exc
            raise

    async def hit(self, windows: Sequence[Window], now: float) -> list[int]:
        """Count in every window at once: concurrent upserts, one round trip's wait."""
        if not self._indexes_ready:
            async with self._index_lock:
                if not self._indexes_ready:
                    await self._adapter._guarded(self._create_indexes)
                    self._indexes_ready = True
        return await self._adapter._guarded(
            lambda: asyncio.gather(*(self._hit(window) for window in windows))
        )

    async def _hit(self, window: Window) -> int:
        expires = datetime.fromtimestamp(window.expires, UTC)

        def upsert() -> Awaitable[dict[str, Any]]:
            return self._collection.find_one_and_update(  # type: ignore[no-any-return]
                {"_id": window.key},
                {"$inc": {"count": 1}, "$setOnInsert": {"expires": expires}},
                upsert=True,
                projection={"count": True},
                return_document=ReturnDocument.AFTER,
            )

        try:
            document = await upsert()
        except DuplicateKeyError:
            # Two instances' first hits of a window raced to insert it (servers retry
            # that themselves since 4.2): the second one is now an update.
            document = await upsert()
        return int(document["count"])

    async def release(self, windows: Sequence[Window], now: float) -> None:
        """Take one count back from every window, in one write."""
        keys = [window.key for window in windows]
        await self._adapter._guarded(
            lambda: self._collection.update_many(
                {"_id": {"$in": keys}, "count": {"$gt": 0}}, {"$inc": {"count": -1}}
            )
        )

    async def peek(self, windows: Sequence[Window], now: float) -> list[int]:
        """The counts of the windows, counting nothing (one query): for inspection."""
        keys = [window.key for window in windows]
        documents = await self._adapter._guarded(
            lambda: self._collection.find({"_id": {"$in": keys}}, {"count": True}).to_list(None)
        )
        counts = {document["_id"]: int(document["count"]) for document in documents}
        return [counts.get(key, 0) for key in keys]


class _SessionChanges:
    """A change stream on an adapter's database, reporting :class:`Change` values.

    Works with both drivers: PyMongo's ``watch()`` is a coroutine that opens the stream,
    Motor's returns the stream at once and opens it on first use (``async with`` opens it
    at once, which the stream's starting point depends on).
    """

    def __init__(self, adapter: MongoDBAdapter, heartbeat: float) -> None:
        self._adapter = adapter
        self._heartbeat = heartbeat
        self._names = adapter._names
        self._sessions = adapter._layout.sessions
        self._stream: Any = None
        self._token: Mapping[str, Any] | None = None
        watched = [self._names["sessions"], self._names["users"]]
        self._pipeline: list[dict[str, Any]] = [
            {
                "$match": {
                    "$or": [
                        {
                            "ns.coll": {"$in": watched},
                            "operationType": {
                                "$in": ["update", "replace", "delete", "drop", "rename"]
                            },
                        },
                        {"operationType": "rename", "to.coll": {"$in": watched}},
                        {"operationType": {"$in": ["dropDatabase", "invalidate"]}},
                    ]
                }
            },
            # What a change names, not what it wrote (updatedFields tells a session's
            # expiry being pushed back from any other change).
            {
                "$project": {
                    "operationType": 1,
                    "ns": 1,
                    "documentKey": 1,
                    "updateDescription": 1,
                }
            },
        ]

    @property
    def heartbeat(self) -> float:
        return self._heartbeat

    async def open(self) -> str | None:
        await self.close()
        try:
            self._stream = await self._adapter._guarded(self._watch)
        except OperationFailure as exc:
            if exc.code not in _RESUME_POINT_LOST or self._token is None:
                reason = _NO_CHANGE_STREAMS.get(exc.code or 0)
                if reason is None:
                    raise
                return f"{reason} (code {exc.code}): {_describe(exc)}"
            # Too old to resume from: start from now (the cache starts empty anyway).
            self._token = None
            self._stream = await self._adapter._guarded(self._watch)
        return None

    async def _watch(self) -> Any:
        options: dict[str, Any] = {"max_await_time_ms": int(self._heartbeat * 1000)}
        if self._token is not None:
            # startAfter, unlike resumeAfter, also starts after an invalidate event.
            options["start_after"] = self._token
        stream = self._adapter._db.watch(self._pipeline, **options)
        if inspect.isawaitable(stream):
            return await stream
        await stream.__aenter__()
        return stream

    async def next(self) -> Change | None:
        stream = self._stream
        if stream is None:
            return Change(CLOSED)
        try:
            # Bounds the wait in Motor's worker thread too, which no asyncio timeout reaches.
            with pymongo.timeout(self._heartbeat * 1.8):
                document = await stream.try_next()
        except InvalidOperation:
            # The app closed its client: it is shutting down, nothing is wrong.
            return Change(CLOSED)
        token = stream.resume_token
        if token is not None:
            self._token = token
        if document is None:
            return None if stream.alive else Change(CLOSED)
        return self._change(document)

    def _change(self, document: Mapping[str, Any]) -> Change | None:
        operation = document.get("operationType")
        if operation == "invalidate":
            return Change(CLOSED)
        if operation in ("drop", "rename", "dropDatabase"):
            return Change(EVERYTHING)
        collection = (document.get("ns") or {}).get("coll")
        key = (document.get("documentKey") or {}).get("_id")
        if key is None:
            return Change(EVERYTHING)
        if collection == self._names["users"]:
            return Change(USER, str(key))
        if collection != self._names["sessions"]:
            return None
        touched = _touched(document, self._sessions) if operation == "update" else None
        return Change(SESSION, str(key), touched)

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        # Closing kills the cursor on the server: bounded, since the server may be gone.
        with contextlib.suppress(PyMongoError, TimeoutError):
            async with asyncio.timeout(self._heartbeat * 2):
                with pymongo.timeout(self._heartbeat):
                    closing = stream.close()
                    if inspect.isawaitable(closing):
                        await closing


def _touched(document: Mapping[str, Any], sessions: _Shape) -> dict[str, Any] | None:
    """``{"expires": ..., "last_seen_at": ...}`` for an update that set only those (an
    expiry pushed back, by this adapter or by Better Auth's, which sets ``expiresAt`` and
    ``updatedAt``), else ``None``; ``sessions`` says where the layout stores them."""
    expires, seen = sessions.stored("expires"), sessions.stored("last_seen_at")
    description = document.get("updateDescription")
    if not isinstance(description, Mapping):
        return None
    updated = description.get("updatedFields")
    if (
        not isinstance(updated, Mapping)
        or not updated
        or description.get("removedFields")
        or description.get("truncatedArrays")
        or not set(updated) <= {expires, seen}
    ):
        return None
    return {"expires" if name == expires else "last_seen_at": updated[name] for name in updated}


async def _aggregate(collection: Any, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run a pipeline on either driver.

    PyMongo's async ``aggregate()`` is a coroutine giving a cursor; Motor's returns the
    cursor directly.
    """
    cursor = collection.aggregate(pipeline)
    if inspect.isawaitable(cursor):
        cursor = await cursor
    documents: list[dict[str, Any]] = await cursor.to_list(None)
    return documents


def _is_outage(exc: PyMongoError) -> bool:
    if isinstance(exc, ConnectionFailure | ExecutionTimeout | WTimeoutError):
        return True
    # Errors raised because a pymongo.timeout() budget ran out say so.
    return bool(getattr(exc, "timeout", False))


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _id_text(value: object) -> str | None:
    """A user id as Python sees it: an ObjectId, or one written as 24 hex digits."""
    return str(value) if isinstance(value, ObjectId) else records.hex_id(value)


def _object_id(value: object) -> ObjectId | None:
    """The ObjectId ``value`` names, or ``None`` when it names none."""
    text = _id_text(value)
    return ObjectId(text) if text is not None else None


def _duplicate_key(exc: DuplicateKeyError) -> str | None:
    """The first field of the unique index a write collided with."""
    details = exc.details or {}
    pattern = details.get("keyPattern")
    if isinstance(pattern, Mapping) and pattern:
        return str(next(iter(pattern)))
    # Older servers give only the message, naming the index ("... index: email_1 dup
    # key ..."): an index named by default, "<field>_1[_<field>_1]", gives its first
    # field; one named otherwise (Better Auth's) gives its name.
    message = str(details.get("errmsg", exc))
    index = message.partition(" index: ")[2].split(" ", 1)[0]
    return "_id" if index == "_id_" else index.partition("_1")[0] or None


def __getattr__(name: str) -> Any:
    return renamed(__name__, name)
