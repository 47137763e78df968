"""The database strategy: the cookie holds an opaque random token, the session a stored row.

Works over any :class:`~asgi_session.backends.Adapter`. Resolving a session is one
adapter call; its expiry is pushed back, in the store and in the cookie, at most once per
``update_age``, so a busy user costs one write a day rather than one per request.

Over an adapter that reports changes (:class:`~asgi_session.backends.MongoDBAdapter` on a
replica set), resolved sessions and users are kept in memory and dropped the moment a
change to them is reported, wherever it was made (see
:mod:`asgi_session.backends._session_cache`): a cached session costs no round trip, and
is still revoked everywhere at once. This module only says *when* the cache learns of
changes made here (at once, not when their echo arrives); what is kept, and when it is
served, is the cache's business.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from asgi_session._session import Session, SessionUser, isoformat, lazy_session, own_user
from asgi_session.backends._adapter import Adapter
from asgi_session.backends._session_cache import (
    DEFAULT_CACHE_BYTES,
    DEFAULT_CACHE_SIZE,
    CachingStore,
    Kept,
    SessionCache,
    copy_record,
    copy_user,
)
from asgi_session.backends._strategy import BaseStrategy
from asgi_session.models import SessionRecord, User

if TYPE_CHECKING:
    from asgi_session._config import AuthConfig
    from asgi_session._context import RequestContext

logger = logging.getLogger("asgi_session")

#: 32 random bytes, URL-safe base64: 256 bits a guesser must match.
_TOKEN_BYTES = 32
#: Longer cookie values cannot be ours; refuse them without a database call.
_MAX_TOKEN_LENGTH = 128


def new_session_token() -> str:
    """A fresh, unguessable session token."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def _default_user(user: User) -> dict[str, Any]:
    fields = {"name": user.name, "email": user.email, "image": user.image}
    return {key: value for key, value in fields.items() if value is not None}


class _Parts:
    """A kept session's JSON, expiry and user, built once for the requests that hit it.

    Shared read-only, as the JWT strategy shares a remembered token's: every read of a
    session copies what it hands out.
    """

    __slots__ = ("_parts", "_user", "claims", "due", "expires", "record", "user_record")

    def __init__(self, record: SessionRecord, user: User, extend_before: timedelta) -> None:
        self.record = record
        self.user_record = user
        self.expires = record.expires
        #: From this moment on, a request pushes the expiry back (and writes).
        self.due = record.expires - extend_before
        # A deep copy, once: the kept record's data is the cache's, not the handler's.
        stored = copy_record(record).extra.get("data")
        self.claims: Mapping[str, Any] = MappingProxyType(
            dict(stored) if isinstance(stored, Mapping) else {}
        )
        self._user: SessionUser | None = None
        self._parts: tuple[dict[str, Any], datetime, SessionUser] | None = None

    def user(self) -> SessionUser:
        user = self._user
        if user is None:
            user = self._user = own_user(_default_user(self.user_record), self.user_record.id)
        return user

    def parts(self) -> tuple[dict[str, Any], datetime, SessionUser]:
        parts = self._parts
        if parts is None:
            data = {"user": _default_user(self.user_record), "expires": isoformat(self.expires)}
            parts = self._parts = (data, self.expires, self.user())
        return parts


class DatabaseStrategy(BaseStrategy):
    """Sessions stored through an adapter (``strategy="database"``).

    ``cache`` (on by default) keeps resolved sessions and their users in this process
    when the adapter can report changes to them: :class:`~asgi_session.backends.MongoDBAdapter`
    on a replica set or sharded cluster, through a change stream. A cached session
    resolves without a round trip; one ended or changed anywhere (by this instance, at
    once; by another, an admin script or a Next.js app on the same database, within
    milliseconds) stops resolving, or shows its new data. Expiry is still checked on
    every request and ``update_age`` still pushes it back with one write per period; the
    ``session`` callback still runs on every request. At most ``cache_size`` sessions
    (and as many users) and about ``cache_bytes`` bytes are kept, least recently used
    first out.

    The cache is served only while the change stream is open and caught up. When it is
    not available (a standalone server: logged once), breaks or falls silent, the cache
    is emptied and every request reads the database until the stream has resumed, from
    where it stopped. ``cache=False`` reads the database on every request.

    The stream is opened on the first request, in the app's event loop; an app that
    shuts down should ``await strategy.aclose()`` (e.g. in its lifespan) to close it.
    """

    name = "database"

    def __init__(
        self,
        adapter: Adapter | None = None,
        *,
        cache: bool = True,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        super().__init__(adapter)
        if not isinstance(cache_size, int) or cache_size < 1:
            raise ValueError("cache_size must be a positive number of sessions")
        if not isinstance(cache_bytes, int) or cache_bytes < 1:
            raise ValueError("cache_bytes must be a positive number of bytes")
        self._cache_wanted = bool(cache)
        self._cache_size = cache_size
        self._cache_bytes = cache_bytes
        self._cache: SessionCache | None = None
        self._extend_before = timedelta(0)
        self._shaped = False
        #: Seconds a session lasts without activity, and how often it is pushed back:
        #: ``AuthConfig.max_age`` and ``update_age``, unless a subclass has its own.
        self.max_age = 0
        self.update_age = 0

    def configure(self, config: AuthConfig) -> None:
        super().configure(config)
        self.max_age, self.update_age = self._lifetimes(config)
        self._extend_before = timedelta(seconds=self.max_age - self.update_age)
        # The `session` callback may shape each request's session differently: with one,
        # only the record and the user come from the cache.
        self._shaped = config.callbacks.has("session")
        adapter = self.adapter
        if self._cache_wanted and self._cache is None and isinstance(adapter, CachingStore):
            self._cache = SessionCache(
                adapter, max_entries=self._cache_size, max_bytes=self._cache_bytes
            )

    def _lifetimes(self, config: AuthConfig) -> tuple[int, int]:
        return config.max_age, config.update_age

    # -- the cookie: what a subclass that writes another one changes ----------------------

    def _read_token(self, ctx: RequestContext) -> str | None:
        """The session token the request carries, or ``None`` (clearing a cookie that
        holds nothing usable)."""
        token = ctx.session_token_or_clear()
        if token is not None and len(token) > _MAX_TOKEN_LENGTH:
            ctx.clear_session_cookie()
            return None
        return token

    def _peek_token(self, ctx: RequestContext) -> str | None:
        """The session token the request carries, clearing nothing."""
        token = ctx.session_token()
        return token if token and len(token) <= _MAX_TOKEN_LENGTH else None

    def _write_cookie(self, ctx: RequestContext, record: SessionRecord, user: User) -> None:
        """Set the cookie naming ``record`` (new, or with its expiry pushed back)."""
        ctx.set_session_cookie(record.session_token, record.expires)

    def _extends(self, ctx: RequestContext) -> bool:
        """Whether this request's session may have its expiry pushed back."""
        return True

    def _shared_parts(self, record: SessionRecord, user: User) -> object:
        """What :meth:`_shared_session` builds sessions from, for a record and user kept
        read-only by a subclass (as the cache keeps them), built once."""
        return _Parts(record, user, self._extend_before)

    def _shared_session(self, ctx: RequestContext, parts: object) -> Session | None:
        """A session of :meth:`_shared_parts`, sharing what they built; ``None`` when the
        ``session`` callback shapes each request's session (build it with ``_session``)."""
        if self._shaped:
            return None
        assert isinstance(parts, _Parts)
        session = lazy_session(parts, parts.claims, ctx)
        session.record = copy_record(parts.record)
        return session

    def _resolved(
        self, ctx: RequestContext, record: SessionRecord, user: User, *, written: bool
    ) -> None:
        """A request's session was found (``written``: its cookie was just set anew)."""

    def _new_record_fields(self, ctx: RequestContext) -> dict[str, Any]:
        """Fields a new session record gets besides its token, user and times."""
        return {"user_agent": ctx.user_agent}

    @property
    def cache_active(self) -> bool:
        """Whether sessions are being served from memory now (the change stream is live)."""
        return self._cache is not None and self._cache.ready()

    async def aclose(self) -> None:
        """Close the change stream and drop the cache; later requests read the database."""
        if self._cache is not None:
            await self._cache.aclose()

    @property
    def _store(self) -> Adapter:
        adapter = self.adapter
        if adapter is None:
            raise RuntimeError("DatabaseStrategy has no adapter; pass AuthConfig(adapter=...)")
        return adapter

    def _now(self, ctx: RequestContext) -> datetime:
        return datetime.fromtimestamp(ctx.now, UTC)

    async def load(self, ctx: RequestContext) -> Session | None:
        token = self._read_token(ctx)
        if token is None:
            return None
        cache = self._cache
        found: Kept | tuple[SessionRecord, User] | None
        if cache is not None:
            # The path most signed-in requests take: a hit, no I/O, the session built once.
            found = cache.hit(token) or await cache.fetch(token)
            if isinstance(found, Kept):
                session = self._kept_session(ctx, found)
                if session is not None:
                    return session
                assert found.user is not None
                found = copy_record(found.record), copy_user(found.user)
        else:
            found = await self._store.get_session_and_user(token)
        now = self._now(ctx)
        if found is None:
            self.clear_session_cookie(ctx)
            return None
        record, user = found
        if record.expires <= now:
            # A kept session expires exactly when a stored one does.
            await self._store.delete_session(token)
            if cache is not None:
                cache.forget_session(token, session_id=record.id)
            self.clear_session_cookie(ctx)
            return None
        due = record.expires - self._extend_before
        if due <= now and self._extends(ctx):
            expires = now + timedelta(seconds=self.max_age)
            ticket = cache.ticket() if cache is not None else None
            updated = await self._store.update_session(
                {"session_token": token, "expires": expires, "last_seen_at": now}
            )
            if updated is None:  # ended by another request meanwhile
                if cache is not None:
                    cache.forget_session(token, session_id=record.id)
                self.clear_session_cookie(ctx)
                return None
            if cache is not None and ticket is not None:
                # The change this write causes sets what is kept now: it keeps the entry.
                cache.put_session(updated, ticket)
            record = updated
            self._write_cookie(ctx, record, user)
            written = True
        else:
            written = False
        self._resolved(ctx, record, user, written=written)
        return await self._session(ctx, record, user)

    def _kept_session(self, ctx: RequestContext, kept: Kept) -> Session | None:
        """The session a kept entry stands for, unless it has expired, is due for an
        extension or goes through the ``session`` callback (:meth:`load` does those)."""
        if self._shaped:
            return None
        parts = kept.derived
        if parts is None:
            assert kept.user is not None
            parts = kept.derived = _Parts(kept.record, kept.user, self._extend_before)
        now = self._now(ctx)
        if parts.expires <= now or parts.due <= now:
            return None
        session = self._shared_session(ctx, parts)
        self._resolved(ctx, kept.record, parts.user_record, written=False)
        return session

    async def _session(
        self,
        ctx: RequestContext,
        record: SessionRecord,
        user: User,
        *,
        trigger: str | None = None,
        new_session: Mapping[str, Any] | None = None,
    ) -> Session:
        fields = {"name": user.name, "email": user.email, "image": user.image}
        data: dict[str, Any] = {
            "user": {key: value for key, value in fields.items() if value is not None},
            "expires": isoformat(record.expires),
        }
        stored = record.extra.get("data")
        claims = dict(stored) if isinstance(stored, Mapping) else {}
        callbacks = self.config.callbacks
        if callbacks.has("session"):
            data = await callbacks.call(
                "session",
                data,
                session=data,
                user=user.to_dict(),
                token=claims,
                trigger=trigger,
                new_session=new_session,
            )
        return Session(
            data,
            expires=record.expires,
            user_id=user.id,
            claims=claims,
            record=record,
            updater=ctx,
        )

    async def create(
        self,
        ctx: RequestContext,
        *,
        user: Mapping[str, Any],
        account: Mapping[str, Any] | None = None,
        profile: Mapping[str, Any] | None = None,
        is_new_user: bool = False,
    ) -> Session:
        user_id = user.get("id")
        if user_id is None:
            raise ValueError("a database session needs a stored user with an id")
        cache = self._cache
        ticket = cache.ticket() if cache is not None and cache.ready() else None
        stored_user = await self._store.get_user(str(user_id))
        if stored_user is None:
            raise ValueError(f"user {user_id!r} is not in the database")
        now = self._now(ctx)
        record = await self._store.create_session(
            {
                "session_token": new_session_token(),
                "user_id": stored_user.id,
                "expires": now + timedelta(seconds=self.max_age),
                "created_at": now,
                "last_seen_at": now,
                **self._new_record_fields(ctx),
            }
        )
        if cache is not None and ticket is not None:
            # The browser's next request is a hit: the session is new, its user just read.
            cache.put_user(stored_user, ticket)
            cache.put_session(record, ticket)
        self._write_cookie(ctx, record, stored_user)
        return await self._session(ctx, record, stored_user)

    async def update(
        self, ctx: RequestContext, session: Session, data: Mapping[str, Any], *, trusted: bool
    ) -> Session | None:
        if session.record is None:
            raise TypeError("not a database session")
        cache = self._cache
        token = session.record.session_token
        # Read from the store, never the cache: merges start from what is stored now.
        found = await self._store.get_session_and_user(token)
        if found is None:
            if cache is not None:
                cache.forget_session(token, session_id=session.record.id)
            self.clear_session_cookie(ctx)
            return None
        record, user = found
        if trusted:
            # Merge into what is stored now, not what this request read: a concurrent
            # update's fields survive.
            current = record.extra.get("data")
            stored = dict(current) if isinstance(current, Mapping) else {}
            stored.update(data)
            updated = await self._store.update_session(
                {"session_token": record.session_token, "data": stored}
            )
            if cache is not None:
                # Not kept anew: the change this write causes would drop it again.
                cache.forget_session(token, session_id=record.id)
            if updated is None:
                self.clear_session_cookie(ctx)
                return None
            record = updated
        return await self._session(ctx, record, user, trigger="update", new_session=data)

    async def destroy(
        self, ctx: RequestContext, session: Session | None, *, clear_cookie: bool = True
    ) -> None:
        token = self._peek_token(ctx)
        if token:
            ended = await self._store.delete_session(token)
            if self._cache is not None:
                # This instance never serves its own revoked session, even before the
                # deletion's change arrives.
                self._cache.forget_session(token, session_id=ended.id if ended else None)
        if clear_cookie:
            self.clear_session_cookie(ctx)

    # -- a user's sessions -----------------------------------------------------

    async def list_user_sessions(self, user_id: str, *, now: float) -> list[SessionRecord]:
        moment = datetime.fromtimestamp(now, UTC)
        records = await self._store.list_sessions(user_id)
        return [record for record in records if record.expires > moment]

    async def end_user_session(self, user_id: str, session_id: str) -> bool:
        for record in await self._store.list_sessions(user_id):
            if record.id == session_id:
                ended = await self._store.delete_session(record.session_token)
                if self._cache is not None:
                    self._cache.forget_session(record.session_token, session_id=record.id)
                return ended is not None
        return False

    async def end_user_sessions(
        self, user_id: str, *, now: float, keep: tuple[RequestContext, Session] | None = None
    ) -> Session | None:
        keep_token = None
        if keep is not None:
            keep_token = keep[1].record.session_token if keep[1].record is not None else None
        await self._store.delete_sessions(user_id, except_token=keep_token)
        if self._cache is not None:
            self._cache.forget_user_sessions(user_id, except_token=keep_token)
        return None
