"""Users, accounts, sessions, verification tokens and passkeys kept in MongoDB.

Documents are laid out exactly as Auth.js's MongoDB adapter lays them out
(``emailVerified``, ``userId`` as an ObjectId, ``providerAccountId``, ``sessionToken``...),
so a Next.js app and a Python app can share one database. Sessions carry three extra
fields, ``createdAt``, ``lastSeenAt`` and ``userAgent``, which Auth.js passes through.
Passkeys are Auth.js's Authenticator records (``credentialID``, ``userId`` as an
ObjectId, ``credentialPublicKey``, ``counter``...), with ``name``, ``createdAt`` and
``lastUsedAt`` besides.

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


class MongoDBAdapter:
    """An :class:`~asgi_session.backends.Adapter` (and
    :class:`~asgi_session.backends.AuthenticatorStore`) over a MongoDB database.

    ``database`` is ``AsyncMongoClient(...)["app"]`` (PyMongo) or
    ``AsyncIOMotorClient(...)["app"]`` (Motor). ``collections`` renames any of
    ``users``, ``accounts``, ``sessions``, ``verification_tokens``, ``revocations`` and
    ``authenticators``.

    Every call either finishes or raises
    :class:`~asgi_session.errors.BackendUnavailableError` within ``operation_timeout``
    seconds, whatever the client's own server-selection timeout. Indexes are created on
    first use (see :meth:`ensure_indexes`).

    Revocations of JSON Web Tokens live in their own collection, one document per user
    keyed by the user id *string*: users who signed in with credentials in JWT mode may
    have ids that are not ObjectIds, and user documents shared with Auth.js stay untouched.
    """

    def __init__(
        self,
        database: Any,
        *,
        collections: Mapping[str, str] | None = None,
        operation_timeout: float = 5.0,
    ) -> None:
        # Looked up on the type: clients answer any attribute with a database.
        if not callable(getattr(type(database), "get_collection", None)):
            raise ConfigurationError(
                "MongoDBAdapter needs a database, e.g. AsyncMongoClient(url)['app'], "
                f"not {type(database).__name__}"
            )
        if not operation_timeout > 0:
            raise ConfigurationError("operation_timeout must be a positive number of seconds")
        names = dict(DEFAULT_COLLECTIONS)
        for key, value in (collections or {}).items():
            if key not in DEFAULT_COLLECTIONS:
                known = ", ".join(DEFAULT_COLLECTIONS)
                raise ConfigurationError(f"unknown collection {key!r}; expected one of {known}")
            names[key] = value
        self._names: Mapping[str, str] = names
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

    # -- setup -------------------------------------------------------------------------

    async def ensure_indexes(self) -> None:
        """Create the indexes the adapter relies on; safe to call any number of times.

        Unique: ``sessions.sessionToken``, ``accounts.(provider, providerAccountId)``,
        ``users.email`` (only where it is a string),
        ``verification_tokens.(identifier, token)`` and ``authenticators.credentialID``.
        Lookups: ``sessions.userId``, ``accounts.userId``, ``authenticators.userId``.
        Expiry (TTL): ``sessions.expires``, ``verification_tokens.expires`` and
        ``rate_limits.expires`` (the counters of :meth:`rate_limit_store`, which also
        makes its index on first use).

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
                self._users.create_indexes(
                    [
                        IndexModel(
                            [("email", ASCENDING)],
                            unique=True,
                            partialFilterExpression={"email": {"$type": "string"}},
                        )
                    ]
                ),
                self._accounts.create_indexes(
                    [
                        IndexModel(
                            [("provider", ASCENDING), ("providerAccountId", ASCENDING)],
                            unique=True,
                        ),
                        IndexModel([("userId", ASCENDING)]),
                    ]
                ),
                self._sessions.create_indexes(
                    [
                        IndexModel([("sessionToken", ASCENDING)], unique=True),
                        IndexModel([("userId", ASCENDING)]),
                        IndexModel([("expires", ASCENDING)], expireAfterSeconds=0),
                    ]
                ),
                self._tokens.create_indexes(
                    [
                        IndexModel([("identifier", ASCENDING), ("token", ASCENDING)], unique=True),
                        IndexModel([("expires", ASCENDING)], expireAfterSeconds=0),
                    ]
                ),
                self._authenticators.create_indexes(
                    [
                        IndexModel([("credentialID", ASCENDING)], unique=True),
                        IndexModel([("userId", ASCENDING)]),
                    ]
                ),
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
        """Store a new user with the fields given, as Auth.js does: a field left out is
        absent from the document, one given as ``None`` is stored as null. An ``id``
        that is a valid ObjectId is kept, else one is made.

        Raises :class:`DuplicateRecordError` when another user has the same email (or
        the given id).
        """
        chosen, fields = records.user_input(user, parse_id=_id_text)
        document = {
            "_id": ObjectId(chosen) if chosen else ObjectId(),
            **_document(fields, USER_FIELDS),
        }
        await self._run(
            lambda: self._users.insert_one(document),
            duplicate={"_id": records.DUPLICATE_USER_ID, "email": records.DUPLICATE_EMAIL},
        )
        return _user(document)

    async def get_user(self, id: str) -> User | None:
        """The user with this id, or ``None``."""
        oid = _object_id(id)
        if oid is None:
            return None
        document = await self._run(lambda: self._users.find_one({"_id": oid}))
        return _user(document) if document else None

    async def get_user_by_email(self, email: str) -> User | None:
        """The user with exactly this email, or ``None``."""
        if not isinstance(email, str):
            return None
        document = await self._run(lambda: self._users.find_one({"email": email}))
        return _user(document) if document else None

    async def get_user_by_account(self, *, provider: str, provider_account_id: str) -> User | None:
        """The user a provider account is linked to, in one round trip."""
        if not isinstance(provider, str) or not isinstance(provider_account_id, str):
            return None
        pipeline: list[dict[str, Any]] = [
            {"$match": {"provider": provider, "providerAccountId": provider_account_id}},
            {"$limit": 1},
            {"$lookup": self._user_lookup()},
        ]
        found = await self._run(lambda: _aggregate(self._accounts, pipeline))
        if not found or not found[0][_JOINED_USER]:
            return None
        return _user(found[0][_JOINED_USER][0])

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
        document = await self._run(
            lambda: self._users.find_one_and_update(
                {"_id": oid},
                {"$set": _document(changes, USER_FIELDS)},
                return_document=ReturnDocument.AFTER,
            ),
            duplicate={"email": records.DUPLICATE_EMAIL},
        )
        return _user(document) if document else None

    async def delete_user(self, id: str) -> User | None:
        """Delete the user with their sessions, linked accounts and authenticators;
        returns the user."""
        oid = _object_id(id)
        if oid is None:
            return None

        async def delete() -> dict[str, Any] | None:
            # The user goes first: a session, account or authenticator left behind by a
            # failure afterwards no longer resolves to anyone.
            document: dict[str, Any] | None = await self._users.find_one_and_delete({"_id": oid})
            await asyncio.gather(
                self._accounts.delete_many({"userId": oid}),
                self._sessions.delete_many({"userId": oid}),
                self._authenticators.delete_many({"userId": oid}),
            )
            return document

        document = await self._run(delete)
        return _user(document) if document else None

    # -- accounts ----------------------------------------------------------------------

    async def link_account(self, account: AccountInput) -> Account:
        """Link a provider account to a user.

        Raises :class:`DuplicateRecordError` when this (provider, provider account id) is
        already linked, and ``ValueError`` for invalid input (see
        :func:`~asgi_session.backends._records.account_input`).
        """
        fields = records.account_input(account, parse_id=_id_text)
        document = {"_id": ObjectId(), **_document(fields, ACCOUNT_FIELDS)}
        await self._run(
            lambda: self._accounts.insert_one(document),
            duplicate={"provider": records.DUPLICATE_ACCOUNT},
        )
        return _account(document)

    async def unlink_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        """Remove a linked account; returns it, or ``None`` when it was not linked."""
        query = _account_query(provider, provider_account_id)
        if query is None:
            return None
        document = await self._run(lambda: self._accounts.find_one_and_delete(query))
        return _account(document) if document else None

    async def get_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        """The linked account, or ``None``."""
        query = _account_query(provider, provider_account_id)
        if query is None:
            return None
        document = await self._run(lambda: self._accounts.find_one(query))
        return _account(document) if document else None

    async def update_account(
        self, *, provider: str, provider_account_id: str, data: Mapping[str, Any]
    ) -> Account | None:
        """Update stored token fields (``access_token``, ``refresh_token``, ``expires_at``...).

        The fields naming the account and its user cannot change, nor ``type`` become
        ``None`` (``ValueError``). Returns the updated account, or ``None`` when it is
        not linked.
        """
        changes = records.account_changes(data)
        query = _account_query(provider, provider_account_id)
        if query is None:
            return None
        if not changes:
            return await self.get_account(
                provider=provider, provider_account_id=provider_account_id
            )
        document = await self._run(
            lambda: self._accounts.find_one_and_update(
                query,
                {"$set": _document(changes, ACCOUNT_FIELDS)},
                return_document=ReturnDocument.AFTER,
            )
        )
        return _account(document) if document else None

    # -- sessions ----------------------------------------------------------------------

    async def create_session(self, session: SessionInput) -> SessionRecord:
        """Store a database session. ``created_at`` defaults to now and ``last_seen_at``
        to ``created_at``.

        Raises :class:`DuplicateRecordError` when the token exists and ``ValueError`` for
        invalid input (see :func:`~asgi_session.backends._records.session_input`).
        """
        fields = records.session_input(session, parse_id=_id_text)
        document = {"_id": ObjectId(), **_document(fields, SESSION_FIELDS)}
        await self._run(
            lambda: self._sessions.insert_one(document),
            duplicate={"sessionToken": records.DUPLICATE_SESSION},
        )
        return _session(document)

    async def get_session_and_user(self, session_token: str) -> tuple[SessionRecord, User] | None:
        """The session and its user, in one round trip; ``None`` when either is missing.

        Expiry is not checked: the caller decides what to do with an expired session.
        """
        if not isinstance(session_token, str):
            return None
        pipeline: list[dict[str, Any]] = [
            {"$match": {"sessionToken": session_token}},
            {"$limit": 1},
            {"$lookup": self._user_lookup()},
        ]
        found = await self._run(lambda: _aggregate(self._sessions, pipeline))
        if not found:
            return None
        users = found[0].pop(_JOINED_USER)
        if not users:
            return None
        return _session(found[0]), _user(users[0])

    async def get_session(self, session_token: str) -> SessionRecord | None:
        """The session alone, without its user (one indexed ``find``), or ``None``.

        What a cache that holds the user already needs: a cheaper read than the join of
        :meth:`get_session_and_user`. Expiry is not checked.
        """
        if not isinstance(session_token, str):
            return None
        # The read a cache's miss waits for: on PyMongo's own asyncio driver, an asyncio
        # timeout cancels the operation itself, and sparing pymongo.timeout saves some
        # 8 % of an indexed read. Motor's worker thread needs the driver's deadline.
        document = await self._run(
            lambda: self._sessions.find_one({"sessionToken": session_token}),
            driver_deadline=not self._native_asyncio,
        )
        return _session(document) if document else None

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
        if not changes:
            document = await self._run(lambda: self._sessions.find_one({"sessionToken": token}))
        else:
            document = await self._run(
                lambda: self._sessions.find_one_and_update(
                    {"sessionToken": token},
                    {"$set": _document(changes, SESSION_FIELDS)},
                    return_document=ReturnDocument.AFTER,
                )
            )
        return _session(document) if document else None

    async def delete_session(self, session_token: str) -> SessionRecord | None:
        """Delete a session; returns it, or ``None`` when there was none."""
        if not isinstance(session_token, str):
            return None
        document = await self._run(
            lambda: self._sessions.find_one_and_delete({"sessionToken": session_token})
        )
        return _session(document) if document else None

    async def list_sessions(self, user_id: str) -> list[SessionRecord]:
        """The user's sessions, newest first.

        Expired sessions the TTL monitor has not removed yet (it runs about once a
        minute) are included; callers compare ``expires`` with their clock.
        """
        oid = _object_id(user_id)
        if oid is None:
            return []
        # Sessions written by Auth.js have no createdAt; their ObjectId orders them.
        cursor = self._sessions.find({"userId": oid}).sort(
            [("createdAt", DESCENDING), ("_id", DESCENDING)]
        )
        documents = await self._run(lambda: cursor.to_list(None))
        return [_session(document) for document in documents]

    async def delete_sessions(self, user_id: str, *, except_token: str | None = None) -> int:
        """Delete the user's sessions, except ``except_token``'s; returns how many went."""
        oid = _object_id(user_id)
        if oid is None:
            return 0
        query: dict[str, Any] = {"userId": oid}
        if except_token is not None:
            query["sessionToken"] = {"$ne": str(except_token)}
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
        document = {
            "_id": ObjectId(),
            **records.to_stored(dataclasses.asdict(created), VERIFICATION_FIELDS),
        }
        await self._run(
            lambda: self._tokens.insert_one(document),
            duplicate={"identifier": records.DUPLICATE_VERIFICATION},
        )
        return created

    async def use_verification_token(
        self, *, identifier: str, token: str
    ) -> VerificationToken | None:
        """Delete and return the token; a second use gets ``None``. Expiry is not checked."""
        if not isinstance(identifier, str) or not isinstance(token, str):
            return None
        query = {"identifier": identifier, "token": token}
        document = await self._run(lambda: self._tokens.find_one_and_delete(query))
        return records.verification_record(document) if document else None

    async def delete_verification_tokens(self, identifier: str) -> int:
        """Delete every token of ``identifier`` (the unique index leads with it); how
        many there were."""
        if not isinstance(identifier, str):
            return 0
        result = await self._run(lambda: self._tokens.delete_many({"identifier": identifier}))
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
        document = {"_id": ObjectId(), **_document(fields, AUTHENTICATOR_FIELDS)}
        await self._run(
            lambda: self._authenticators.insert_one(document),
            duplicate={"credentialID": records.DUPLICATE_AUTHENTICATOR},
        )
        return _authenticator(document)

    async def get_authenticator(self, credential_id: str) -> Authenticator | None:
        """The authenticator with this credential id, or ``None``."""
        if not isinstance(credential_id, str):
            return None
        document = await self._run(
            lambda: self._authenticators.find_one({"credentialID": credential_id})
        )
        return _authenticator(document) if document else None

    async def list_authenticators_by_user_id(self, user_id: str) -> list[Authenticator]:
        """The user's authenticators, oldest first (any without ``createdAt`` first)."""
        oid = _object_id(user_id)
        if oid is None:
            return []
        cursor = self._authenticators.find({"userId": oid}).sort(
            [("createdAt", ASCENDING), ("_id", ASCENDING)]
        )
        documents = await self._run(lambda: cursor.to_list(None))
        return [_authenticator(document) for document in documents]

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
        # Lower, or both 0: for a counter of 0 that is "at most 0".
        query = {
            "credentialID": credential_id,
            "counter": {"$lt": counter} if counter else {"$lte": 0},
        }
        document = await self._run(
            lambda: self._authenticators.find_one_and_update(
                query,
                {"$set": _document(changes, AUTHENTICATOR_FIELDS)},
                return_document=ReturnDocument.AFTER,
            )
        )
        return _authenticator(document) if document else None

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
        document = await self._run(
            lambda: self._authenticators.find_one_and_update(
                {"credentialID": credential_id},
                {"$set": _document(changes, AUTHENTICATOR_FIELDS)},
                return_document=ReturnDocument.AFTER,
            )
        )
        return _authenticator(document) if document else None

    async def delete_authenticator(self, credential_id: str) -> Authenticator | None:
        """Delete an authenticator; returns it, or ``None`` when there was none."""
        if not isinstance(credential_id, str):
            return None
        document = await self._run(
            lambda: self._authenticators.find_one_and_delete({"credentialID": credential_id})
        )
        return _authenticator(document) if document else None

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

    def _user_lookup(self) -> dict[str, str]:
        return {
            "from": self._names["users"],
            "localField": "userId",
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
            key = _duplicate_key(exc)
            # An index this adapter did not make (an app's own) has no message here.
            message = duplicate.get(key or "", "a record with the same unique key exists")
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
        return Change(SESSION, str(key), _touched(document) if operation == "update" else None)

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


def _touched(document: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"expires": ..., "last_seen_at": ...}`` for an update that set only those (an
    expiry pushed back), else ``None``."""
    description = document.get("updateDescription")
    if not isinstance(description, Mapping):
        return None
    updated = description.get("updatedFields")
    if (
        not isinstance(updated, Mapping)
        or not updated
        or description.get("removedFields")
        or description.get("truncatedArrays")
        or not set(updated) <= {"expires", "lastSeenAt"}
    ):
        return None
    return {"expires" if name == "expires" else "last_seen_at": updated[name] for name in updated}


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


def _account_query(provider: object, provider_account_id: object) -> dict[str, str] | None:
    """The filter finding one linked account; ``None`` when the key is not two strings,
    which then matches nothing instead of acting as a query operator."""
    if not isinstance(provider, str) or not isinstance(provider_account_id, str):
        return None
    return {"provider": provider, "providerAccountId": provider_account_id}


def _duplicate_key(exc: DuplicateKeyError) -> str | None:
    """The first field of the unique index a write collided with."""
    details = exc.details or {}
    pattern = details.get("keyPattern")
    if isinstance(pattern, Mapping) and pattern:
        return str(next(iter(pattern)))
    # Older servers give only the message, naming the index ("... index: email_1 dup
    # key ..."); the indexes made here are ascending, named "<field>_1[_<field>_1]".
    message = str(details.get("errmsg", exc))
    index = message.partition(" index: ")[2].split(" ", 1)[0]
    return "_id" if index == "_id_" else index.partition("_1")[0] or None


def _document(fields: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Python-named fields as Auth.js stores them: its names, ``userId`` an ObjectId."""
    document = records.to_stored(fields, names)
    if "userId" in document:
        document["userId"] = ObjectId(document["userId"])
    return document


def _fields(document: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """A stored document's fields under Python names, ``user_id`` a string; no ``_id``."""
    fields = records.from_stored(document, names)
    fields.pop("_id", None)
    if "user_id" in fields:
        fields["user_id"] = str(fields["user_id"])
    return fields


def _user(document: Mapping[str, Any]) -> User:
    return records.user_record(str(document["_id"]), _fields(document, USER_FIELDS))


def _account(document: Mapping[str, Any]) -> Account:
    return records.account_record(str(document["_id"]), _fields(document, ACCOUNT_FIELDS))


def _session(document: Mapping[str, Any]) -> SessionRecord:
    return records.session_record(str(document["_id"]), _fields(document, SESSION_FIELDS))


def _authenticator(document: Mapping[str, Any]) -> Authenticator:
    return records.authenticator_record(_fields(document, AUTHENTICATOR_FIELDS))


def __getattr__(name: str) -> Any:
    return renamed(__name__, name)
