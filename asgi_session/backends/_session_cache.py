"""Resolved database sessions kept in memory, and revoked the moment the store says so.

:class:`SessionCache` sits between :class:`~asgi_session.backends.DatabaseStrategy` and
an adapter that can report changes to its sessions and users (:class:`CachingStore`;
:class:`~asgi_session.backends.MongoDBAdapter` does, through a change stream). A cached
session resolves without a round trip; a session changed or ended anywhere, by any app
instance, an admin script or a Next.js app on the same database, stops resolving here
as soon as the change arrives (a few milliseconds).

What is kept
    Session records by token, users by id, separately: a user with several sessions is
    kept once, and a session whose user is kept costs one ``get_session`` to resolve (not
    the store's join). Both are bounded together, in entries and in estimated bytes; the
    least recently used make way. Tokens that were cached once are remembered with their
    user's id (a *hint*, never served), so that resolving one again after an
    invalidation knows its user is at hand. Absent tokens are never cached: every
    unknown token is one read, as without the cache.

When it is served
    Only while the change feed is known to be open and caught up: opened, and heard from
    (a change, or an empty wait) within the last two heartbeats. When the feed fails,
    closes, or falls silent, everything kept is dropped, every request reads the store,
    and the feed is reopened in the background (from where it stopped when the store can,
    from now otherwise), after a backoff, on the next request that asks for it. Nothing
    runs between requests but the feed itself, so a stopped app leaves no task behind;
    :meth:`aclose` stops it for good.

Never stale
    A read that started before an invalidation it may have missed is not inserted: every
    change, local or from the feed, is logged with a sequence number, and every reset
    starts a new epoch. A read takes a :class:`Ticket` first; its result is kept only if
    the epoch is the same and no change logged since names its session, token or user.

What it does not change
    Expiry is still checked against the request's clock on every hit, ``update_age``
    extension still writes once per period (and keeps the entry, since the change it
    causes sets what the entry holds already), and the ``session`` callback still runs
    on every request: only the record and the user are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

from asgi_session._session import copy_json
from asgi_session.backends._adapter import Adapter
from asgi_session.models import SessionRecord, User

logger = logging.getLogger("asgi_session")

#: What a :class:`Change` is about.
SESSION = "session"  # one session, by its id
USER = "user"  # one user, by id
EVERYTHING = "everything"  # a collection or the database went: nothing kept is known
CLOSED = "closed"  # the feed ended (its database was dropped); reopen it when needed

#: Defaults of :class:`~asgi_session.backends.DatabaseStrategy`.
DEFAULT_CACHE_SIZE = 20_000
DEFAULT_CACHE_BYTES = 32 * 1024 * 1024

# Changes remembered for the ticket check; a read that outlasts this many is not kept.
_LOG_LENGTH = 4096
# Reopening a failed feed waits 0.1 s, then twice as long each time, up to this.
_MAX_BACKOFF = 5.0
_FIRST_BACKOFF = 0.1
# A store that cannot report changes (a standalone MongoDB) is asked again this seldom.
_UNSUPPORTED_RETRY = 60.0
# A hint: a token, a user id, their slots in the hint table. Hints outnumber entries
# (they are a fifth of the size), so a session evicted a while ago still finds its user.
_HINT_BYTES = 200
_HINTS_PER_ENTRY = 4
# Entries besides their text: the record or user, its slot in the tables and indexes.
# Estimated from sys.getsizeof of the objects involved on CPython 3.11, rounded up.
_SESSION_BYTES = 900
_USER_BYTES = 700


class Change(NamedTuple):
    """One change the feed reports: what it is about, and for a session update that
    only moved ``expires``/``last_seen_at``, the values they now hold."""

    kind: str
    id: str = ""
    touched: Mapping[str, Any] | None = None


class ChangeFeed(Protocol):
    """Changes to a store's sessions and users, one at a time, in the order they happened.

    :meth:`next` waits at most ``heartbeat`` seconds for a change and returns ``None``
    when there was none: each return tells the cache the feed is still there.
    """

    @property
    def heartbeat(self) -> float:
        """The longest :meth:`next` waits before saying there was nothing."""

    async def open(self) -> str | None:
        """Start watching (resuming where the last stream stopped, if the store can);
        ``None`` once open, else why this store cannot report changes at all."""

    async def next(self) -> Change | None:
        """The next change, or ``None`` after a quiet ``heartbeat``; raises when the
        stream broke."""

    async def close(self) -> None:
        """Stop watching; :meth:`open` may be called again."""


@runtime_checkable
class CachingStore(Adapter, Protocol):
    """An adapter whose sessions can be cached: it reports their changes.

    Optional: :class:`~asgi_session.backends.DatabaseStrategy` caches sessions only when
    its adapter has these two methods besides the :class:`Adapter` contract.
    """

    def session_changes(self) -> ChangeFeed:
        """A feed of changes to the sessions and users, not opened yet."""

    async def get_session(self, session_token: str) -> SessionRecord | None:
        """The session alone, without its user (one indexed read)."""


class Ticket(NamedTuple):
    """Where the change log stood when a read began."""

    epoch: int
    seq: int


class Kept:
    """A kept session: its record and user, shared by every request that hits it.

    Never change them. ``derived`` is the strategy's, for what it builds from the two
    once (the session's JSON...); it is cleared whenever the user changes, and a changed
    session is a new entry.
    """

    __slots__ = ("derived", "record", "size", "user")

    def __init__(self, record: SessionRecord, size: int) -> None:
        self.record = record
        self.size = size
        self.user: User | None = None
        self.derived: Any = None


class _User:
    __slots__ = ("size", "user")

    def __init__(self, user: User, size: int) -> None:
        self.user = user
        self.size = size


class SessionCache:
    """Sessions and users of ``store``, kept while its change feed is live.

    Bounded by ``max_entries`` sessions (and as many users) and about ``max_bytes``
    bytes in all. ``monotonic`` is the clock of the feed's liveness (tests move it).
    """

    def __init__(
        self,
        store: CachingStore,
        *,
        max_entries: int = DEFAULT_CACHE_SIZE,
        max_bytes: int = DEFAULT_CACHE_BYTES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError("the session cache needs room for at least one entry")
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError("the session cache needs a positive byte budget")
        self._store = store
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._monotonic = monotonic
        self._sessions: OrderedDict[str, Kept] = OrderedDict()
        self._users: OrderedDict[str, _User] = OrderedDict()
        self._hints: OrderedDict[str, str] = OrderedDict()  # token -> user id
        self._by_id: dict[str, str] = {}  # session id -> token
        self._by_user: dict[str, set[str]] = {}  # user id -> tokens
        self._session_bytes = 0
        self._user_bytes = 0
        # The change log: (seq, kind, key, touched); kind "s" session id, "t" token,
        # "u" user id. A reset starts a new epoch and empties it.
        self._log: deque[tuple[int, str, str, Mapping[str, Any] | None]] = deque(maxlen=_LOG_LENGTH)
        self._seq = 0
        self._epoch = 0
        # The feed: open (the watcher says so), live (open and heard from lately).
        self._feed: ChangeFeed | None = None
        self._task: asyncio.Task[None] | None = None
        self._open = False
        self._live = False
        self._fresh_until = 0.0
        self._silence = 2.0
        self._retry_at = 0.0
        self._failures = 0
        self._warned = False
        self._unsupported_logged = False
        self._closed = False
        #: Counters, for tests and benchmarks: sessions served from memory, reads made.
        self.hits = 0
        self.misses = 0

    # -- state -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def bytes(self) -> int:
        """Estimated bytes kept: sessions, users and hints."""
        return self._session_bytes + self._user_bytes + _HINT_BYTES * len(self._hints)

    @property
    def users(self) -> int:
        """How many users are kept."""
        return len(self._users)

    def ready(self) -> bool:
        """Whether sessions may be served from memory now.

        Starts the feed when it is not running (in the running event loop: apps may
        build their config before there is one), and empties the cache when the feed
        has fallen silent.
        """
        if self._live:
            if self._monotonic() < self._fresh_until:
                return True
            self._fell_behind()
            return False
        self._start()
        return False

    # -- reading -----------------------------------------------------------------------

    def hit(self, token: str) -> Kept | None:
        """The kept session of ``token``, with its user, when both are kept and the
        cache may serve them (:meth:`ready`); else ``None``. Shared: never change it."""
        if not self.ready():
            return None
        entry = self._sessions.get(token)
        if entry is None:
            return None
        user_id = entry.record.user_id
        user_entry = self._users.get(user_id)
        if user_entry is None:
            return None
        if entry.user is not user_entry.user:
            entry.user = user_entry.user
            entry.derived = None
        self._sessions.move_to_end(token)
        self._users.move_to_end(user_id)
        self.hits += 1
        return entry

    def cached(self, token: str) -> tuple[SessionRecord, User] | None:
        """Copies (callers may change them) of :meth:`hit`'s record and user, or ``None``."""
        entry = self.hit(token)
        if entry is None or entry.user is None:
            return None
        return copy_record(entry.record), copy_user(entry.user)

    async def fetch(self, token: str) -> Kept | tuple[SessionRecord, User] | None:
        """Read ``token``'s session and user for a request whose :meth:`hit` missed.

        What the store read, or ``None`` when the session or its user is missing; or,
        when the cache could keep what was read, the :class:`Kept` entry (shared: never
        change it). One round trip: ``get_user`` when the session is kept but not its
        user, ``get_session`` when the user of a token seen before is kept, the store's
        join otherwise (and always while the cache is not :meth:`ready`).
        """
        store = self._store
        if not self.ready():
            return await store.get_session_and_user(token)
        self.misses += 1
        ticket = self.ticket()
        entry = self._sessions.get(token)
        if entry is not None:
            user = await store.get_user(entry.record.user_id)
            if self._sessions.get(token) is not entry:
                # Changed while the user was read: read both as they are now.
                return await store.get_session_and_user(token)
            if user is None:
                return None
            self.put_user(user, ticket)
            return self.hit(token) or (copy_record(entry.record), user)
        hint = self._hints.get(token)
        if hint is not None and hint in self._users:
            record = await store.get_session(token)
            if record is None:
                return None
            if record.user_id not in self._users:
                # The user went meanwhile, or the session moved to another one.
                user = await store.get_user(record.user_id)
                if user is None:
                    return None
                self.put_user(user, ticket)
            if self.put_session(record, ticket):
                kept = self.hit(token)
                if kept is not None:
                    return kept
            user_entry = self._users.get(record.user_id)
            if user_entry is None:
                return await store.get_session_and_user(token)
            return record, copy_user(user_entry.user)
        found = await store.get_session_and_user(token)
        if found is not None:
            self.put_user(found[1], ticket)
            self.put_session(found[0], ticket)
        return found

    async def get_session_and_user(self, token: str) -> tuple[SessionRecord, User] | None:
        """What ``store.get_session_and_user(token)`` returns, from memory when it can
        (copies, which callers may change)."""
        found = self.cached(token)
        if found is None:
            fetched = await self.fetch(token)
            if not isinstance(fetched, Kept):
                return fetched
            entry = fetched
            assert entry.user is not None
            found = copy_record(entry.record), copy_user(entry.user)
        return found

    # -- keeping -----------------------------------------------------------------------

    def ticket(self) -> Ticket:
        """Take before reading what :meth:`put_session` or :meth:`put_user` will keep."""
        return Ticket(self._epoch, self._seq)

    def put_session(self, record: SessionRecord, ticket: Ticket) -> bool:
        """Keep a copy of ``record`` (replacing what is kept for its token) unless
        something may have changed it since ``ticket`` was taken; whether it was kept.

        A record without an id is never kept: a deletion reported by id could not find it.
        """
        if record.id is None:
            return False
        if not self._may_keep(ticket, record.id, record.session_token, record.user_id, record):
            return False
        token = record.session_token
        self._drop_session(token, hint=False)
        old = self._by_id.get(record.id)
        if old is not None:
            self._drop_session(old, hint=False)
        self._by_id[record.id] = token
        size = _SESSION_BYTES + 2 * len(token) + _estimate(record.extra)
        size += len(record.user_agent or "") + len(record.user_id) + len(record.id)
        self._sessions[token] = Kept(copy_record(record), size)
        self._by_user.setdefault(record.user_id, set()).add(token)
        self._hints.pop(token, None)
        self._session_bytes += size
        self._evict()
        return True

    def put_user(self, user: User, ticket: Ticket) -> bool:
        """Keep a copy of ``user`` unless it may have changed since ``ticket`` was taken."""
        if not self._may_keep(ticket, None, None, user.id, None):
            return False
        self._drop_user(user.id)
        size = _USER_BYTES + 2 * len(user.id) + _estimate(user.extra)
        size += len(user.name or "") + len(user.email or "") + len(user.image or "")
        self._users[user.id] = _User(copy_user(user), size)
        self._user_bytes += size
        self._evict()
        return True

    def _may_keep(
        self,
        ticket: Ticket,
        session_id: str | None,
        token: str | None,
        user_id: str,
        record: SessionRecord | None,
    ) -> bool:
        if not self._live or ticket.epoch != self._epoch:
            return False
        if ticket.seq == self._seq:
            return True
        log = self._log
        if not log or log[0][0] > ticket.seq + 1:
            return False  # changes since the ticket were logged and forgotten
        for seq, kind, key, touched in reversed(log):
            if seq <= ticket.seq:
                break
            if kind == "u" and key == user_id:
                return False
            if kind == "t" and key == token:
                return False
            if kind == "s" and key == session_id and not _holds(record, touched):
                return False
        return True

    def _evict(self) -> None:
        while len(self._sessions) > self._max_entries:
            self._drop_session(next(iter(self._sessions)), hint=True)
        while len(self._users) > self._max_entries:
            self._drop_user(next(iter(self._users)))
        while len(self._hints) > self._max_entries * _HINTS_PER_ENTRY:
            self._hints.popitem(last=False)
        while self.bytes > self._max_bytes:
            if self._hints:
                self._hints.popitem(last=False)
            elif self._sessions and self._session_bytes >= self._user_bytes:
                self._drop_session(next(iter(self._sessions)), hint=False)
            elif self._users:
                self._drop_user(next(iter(self._users)))
            else:
                break

    def _drop_session(self, token: str, *, hint: bool) -> None:
        entry = self._sessions.pop(token, None)
        if entry is None:
            return
        record = entry.record
        self._session_bytes -= entry.size
        if record.id is not None and self._by_id.get(record.id) == token:
            del self._by_id[record.id]
        tokens = self._by_user.get(record.user_id)
        if tokens is not None:
            tokens.discard(token)
            if not tokens:
                del self._by_user[record.user_id]
        if hint:
            self._hints[token] = record.user_id
            self._hints.move_to_end(token)

    def _drop_user(self, user_id: str) -> None:
        entry = self._users.pop(user_id, None)
        if entry is not None:
            self._user_bytes -= entry.size

    # -- forgetting --------------------------------------------------------------------

    def _logged(self, kind: str, key: str, touched: Mapping[str, Any] | None = None) -> None:
        self._seq += 1
        self._log.append((self._seq, kind, key, touched))

    def forget_session(self, token: str | None = None, *, session_id: str | None = None) -> None:
        """A session changed or ended here: drop it at once, before its change arrives."""
        if token is not None:
            self._logged("t", token)
            self._drop_session(token, hint=True)
        if session_id is not None:
            self._logged("s", session_id)
            found = self._by_id.get(session_id)
            if found is not None:
                self._drop_session(found, hint=True)

    def forget_user_sessions(self, user_id: str, *, except_token: str | None = None) -> None:
        """The user's sessions ended here (but ``except_token``'s)."""
        self._logged("u", user_id)
        for token in list(self._by_user.get(user_id, ())):
            if token != except_token:
                self._drop_session(token, hint=True)

    def forget_user(self, user_id: str) -> None:
        """The user changed: their sessions stay, the user is read again."""
        self._logged("u", user_id)
        self._drop_user(user_id)

    def reset(self) -> None:
        """Drop everything kept, and refuse what reads begun before now bring back."""
        for token, entry in self._sessions.items():
            self._hints[token] = entry.record.user_id
        self._sessions.clear()
        self._users.clear()
        self._by_id.clear()
        self._by_user.clear()
        self._session_bytes = self._user_bytes = 0
        while len(self._hints) > self._max_entries * _HINTS_PER_ENTRY:
            self._hints.popitem(last=False)
        self._epoch += 1
        self._log.clear()

    def apply(self, change: Change) -> None:
        """Apply a change the feed reported."""
        kind = change.kind
        if kind == SESSION:
            self._logged("s", change.id, change.touched)
            token = self._by_id.get(change.id)
            entry = None if token is None else self._sessions.get(token)
            if token is not None and entry is not None and not _holds(entry.record, change.touched):
                self._drop_session(token, hint=True)
        elif kind == USER:
            self.forget_user(change.id)
        else:
            self.reset()

    # -- the feed ----------------------------------------------------------------------

    def _start(self) -> None:
        """Start the feed's watcher, unless it runs in this loop already or must wait."""
        if self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = self._task
        if task is not None and task.get_loop() is loop and not task.done():
            return
        if self._open:
            # Its watcher is gone (it ran in an event loop that has ended): what it
            # kept up to date no longer is.
            self._stopped()
        if self._monotonic() < self._retry_at:
            return
        feed = self._feed
        if feed is None:
            # One feed for the cache's life: it keeps where its last stream stopped.
            feed = self._feed = self._store.session_changes()
        self._silence = 2 * feed.heartbeat
        self._task = loop.create_task(_watch(weakref.ref(self), feed))

    def opened(self) -> None:
        """The feed is open: serve from memory, starting from nothing."""
        self.reset()
        self._open = self._live = True
        self._fresh_until = self._monotonic() + self._silence
        if self._warned:
            logger.info("session cache: watching changes again, serving sessions from memory")
        self._warned = False

    def heard(self) -> None:
        """The feed answered (a change, or a quiet wait): it is caught up."""
        self._fresh_until = self._monotonic() + self._silence
        self._failures = 0
        if self._open and not self._live:
            self._live = True
            self._warned = False
            logger.info("session cache: the change stream caught up, serving from memory")

    def _fell_behind(self) -> None:
        self.reset()
        self._live = False
        self._warn(
            f"the change stream has been silent for over {self._silence:g} s",
        )

    def failed(self, cause: BaseException) -> None:
        """The feed broke: nothing kept can be trusted until it is reopened."""
        self._stopped()
        self._failures += 1
        self._retry_at = self._monotonic() + min(
            _FIRST_BACKOFF * 2 ** (self._failures - 1), _MAX_BACKOFF
        )
        text = str(cause).splitlines()[0][:300] if str(cause) else ""
        self._warn(f"the change stream failed ({type(cause).__name__}{': ' if text else ''}{text})")

    def closed(self) -> None:
        """The feed ended (its database was dropped); reopen it when it is next needed."""
        self._stopped()
        self._retry_at = 0.0

    def unsupported(self, reason: str) -> None:
        """The store cannot report changes: serve nothing from memory, ask again later."""
        self._stopped()
        self._retry_at = self._monotonic() + _UNSUPPORTED_RETRY
        if not self._unsupported_logged:
            self._unsupported_logged = True
            logger.warning(
                "database sessions are not cached: %s; every request reads the session "
                "from the database (DatabaseStrategy(cache=False) does so without this "
                "warning)",
                reason,
            )

    def _stopped(self) -> None:
        self.reset()
        self._open = self._live = False

    def _warn(self, what: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "session cache emptied: %s; reading every session from the database "
                "until the stream has resumed",
                what,
            )

    async def aclose(self) -> None:
        """Stop the feed and empty the cache for good: every request reads the store."""
        self._closed = True
        self._stopped()
        task, self._task = self._task, None
        # A watcher started in another event loop (one that has ended) is left alone:
        # that loop can no longer run it, nor its cancellation.
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _watch(ref: weakref.ref[SessionCache], feed: ChangeFeed) -> None:
    """Apply the feed's changes to the cache ``ref`` names, while it is alive.

    Holds the cache only between two waits: an app dropped without :meth:`aclose`
    takes its feed with it at the next heartbeat.
    """
    try:
        cache = ref()
        if cache is None:
            return
        silence = cache._silence
        del cache
        async with asyncio.timeout(silence + 5.0):
            reason = await feed.open()
        cache = ref()
        if cache is None:
            return
        if reason is not None:
            cache.unsupported(reason)
            return
        cache.opened()
        del cache
        while True:
            # A wait far beyond the heartbeat is a stream that hangs (a server gone
            # without closing the connection, or resuming for a long while).
            async with asyncio.timeout(silence):
                change = await feed.next()
            cache = ref()
            if cache is None:
                return
            if change is not None:
                if change.kind == CLOSED:
                    cache.closed()
                    return
                cache.apply(change)
            cache.heard()
            del cache
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        cache = ref()
        if cache is not None:
            cache.failed(exc)
    finally:
        with contextlib.suppress(Exception):
            await feed.close()


def _holds(record: SessionRecord | None, touched: Mapping[str, Any] | None) -> bool:
    """Whether ``record`` holds what an update that only moved ``touched`` wrote."""
    if record is None or touched is None:
        return False
    return all(getattr(record, name, None) == value for name, value in touched.items())


def copy_record(record: SessionRecord) -> SessionRecord:
    """A copy of a kept record for a caller to keep (and change, if it must)."""
    return replace(record, extra=copy_json(record.extra) if record.extra else {})


def copy_user(user: User) -> User:
    """A copy of a kept user for a caller to keep."""
    return replace(user, extra=copy_json(user.extra) if user.extra else {})


def _estimate(value: Any, depth: int = 0) -> int:
    """Rough bytes of stored data (an extra field's value), for the byte budget."""
    if isinstance(value, str):
        return 50 + len(value)
    if isinstance(value, bytes):
        return 33 + len(value)
    if depth > 16:
        return 64
    if isinstance(value, Mapping):
        return 64 + sum(
            40 + _estimate(key, depth + 1) + _estimate(item, depth + 1)
            for key, item in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return 56 + sum(8 + _estimate(item, depth + 1) for item in value)
    if isinstance(value, datetime):
        return 48
    return 32
