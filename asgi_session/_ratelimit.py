"""Rate limits on the doors attackers knock on: failed sign-ins, email links, OAuth starts,
session updates and revocations.

How a request is counted: fixed windows. Each limit cuts time into windows of
``period`` seconds, aligned on the epoch; a window is one counter that expires with it,
which suits a TTL-indexed store. The price of fixed windows: up to ``2 * limit``
requests may pass within one ``period`` that straddles two windows.

Requests that count whatever their outcome (email links, OAuth starts, session updates
and revocations) are counted first, by one atomic increment per counter, and refused
when a count is past its ``limit``: each concurrent request gets its own number, so a
burst lets exactly ``limit`` through.

Failed sign-ins are counted the same way, before the credentials are checked (one
round trip for the address and the identifier together), and the count is taken back
when the attempt succeeds: a success never counts, yet guesses sent all at once cannot
outrun their counter, as they could if failures were only recorded after the fact. An
attempt past a limit is refused, right password or not. The price: more than ``limit``
simultaneous sign-ins for one identifier are refused even when they are right.

Counters live in a :class:`RateLimitStore`: :class:`MemoryRateLimitStore` (this
process only, bounded), or the adapter's (``MongoDBAdapter.rate_limit_store()``, shared
by every app instance on the database). A store that cannot be reached raises
:class:`~asgi_session.errors.BackendUnavailableError`, answered 503 as for every other
store: a limit that cannot be counted is not waived.

Keys name the limit, its period, the window and a hash of whom it counts: no store ever
holds an address, an email or a session token in clear.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
from collections import OrderedDict
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

from asgi_session.errors import BackendUnavailableError, ConfigurationError

if TYPE_CHECKING:
    from starlette.types import Scope

    from asgi_session._session import Session

logger = logging.getLogger("asgi_session")

T = TypeVar("T")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` requests per ``period`` seconds."""

    limit: int
    period: int

    def __post_init__(self) -> None:
        for name, value, what in (
            ("limit", self.limit, "a positive whole number of requests"),
            ("period", self.period, "a positive whole number of seconds"),
        ):
            if type(value) is not int or value < 1:
                raise ConfigurationError(f"RateLimit.{name} must be {what}, not {value!r}")


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Every built-in limit; ``None`` removes one, ``AuthConfig(rate_limits=None)`` all.

    The defaults follow django-allauth's: a person mistyping a password never meets
    them, a script guessing one does.
    """

    #: Failed credentials (and password) sign-ins from one client IP.
    failed_sign_in_per_ip: RateLimit | None = RateLimit(10, 60)
    #: Failed sign-ins for one identifier (the submitted email or username, normalised).
    failed_sign_in_per_identifier: RateLimit | None = RateLimit(5, 300)
    #: Sign-in links mailed to one address.
    email_per_address: RateLimit | None = RateLimit(3, 60)
    #: Sign-in links asked for from one client IP.
    email_per_ip: RateLimit | None = RateLimit(20, 60)
    #: OAuth / OpenID sign-ins started from one client IP.
    oauth_per_ip: RateLimit | None = RateLimit(30, 60)
    #: Accounts asked for (``POST /auth/signup``) from one client IP.
    sign_up_per_ip: RateLimit | None = RateLimit(20, 60)
    #: Sign-ups with one address (each mails it: a link, or "you have an account").
    sign_up_per_address: RateLimit | None = RateLimit(3, 60)
    #: Password-reset links asked for, and reset forms posted, from one client IP.
    password_reset_per_ip: RateLimit | None = RateLimit(20, 60)
    #: Password-reset links mailed to one address.
    password_reset_per_address: RateLimit | None = RateLimit(5, 60)
    #: Password changes asked for by one signed-in user.
    password_change_per_user: RateLimit | None = RateLimit(5, 60)
    #: Second-factor codes tried from one client IP.
    two_factor_per_ip: RateLimit | None = RateLimit(20, 60)
    #: Wrong second-factor codes for one user, across challenges (a guesser who signs in
    #: again and again with a stolen password gets a few codes per challenge only).
    two_factor_per_user: RateLimit | None = RateLimit(10, 900)
    #: ``POST /auth/session`` updates of one session.
    session_update_per_session: RateLimit | None = RateLimit(60, 60)
    #: Revocations (``/auth/sessions/revoke*``) asked for by one session.
    session_revoke_per_session: RateLimit | None = RateLimit(10, 60)

    def __post_init__(self) -> None:
        # Checked at start-up: a wrong value would otherwise fail every sign-in.
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None and not isinstance(value, RateLimit):
                raise ConfigurationError(
                    f"RateLimits({field.name}={value!r}) must be a RateLimit(limit, period) "
                    "or None (no limit)"
                )


# -- the store contract -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """One limit's current window for one subject: a counter that ends with it."""

    #: The limit, its period, the window's start and a hash of the subject.
    key: str
    #: When the window ends (seconds since the epoch): the counter may go then.
    expires: float


@runtime_checkable
class RateLimitStore(Protocol):
    """Where rate limit counters live (``AuthConfig(rate_limit_store=...)``).

    A store only counts: which windows a request falls in, and what the counts mean,
    is decided here once for every store. Methods raise
    :class:`~asgi_session.errors.BackendUnavailableError` when the store cannot be
    reached.
    """

    async def hit(self, windows: Sequence[Window], now: float) -> list[int]:
        """Count one request in each window, atomically per window: the counts, this
        request included, in the order given.

        A window not seen before starts at zero. The windows of one request are counted
        together (one round trip's wait); ``now`` lets a store forget the windows that
        have ended.
        """

    async def release(self, windows: Sequence[Window], now: float) -> None:
        """Take one count back from each window (a counted attempt that succeeded):
        one round trip for all of them. A window that has ended may be left alone."""


#: How many of the least recently counted entries eviction looks through for a counter
#: of one before it settles for the oldest.
_EVICTION_SCAN = 256


class _Counter:
    __slots__ = ("count", "expires")

    def __init__(self, expires: float) -> None:
        self.count = 0
        self.expires = expires


class MemoryRateLimitStore:
    """Counters in this process's memory: the default when the adapter keeps none.

    Windows are forgotten as they end. At most ``max_entries`` counters are kept, so a
    flood of distinct addresses cannot grow the process without bound (a counter takes
    about 350 bytes, the default cap about 35 MB). When more arrive, counters that have
    counted a single request go first, least recently counted first: the flood's own,
    not those of someone guessing again and again. (A guesser could still have a
    counter of one pushed out by ``max_entries`` fresh keys: one guess per flood. The
    adapter's store has no cap.)

    Each process counts its own requests: with several workers or instances, a limit
    holds per process (use an adapter's store to share counts).
    """

    def __init__(self, *, max_entries: int = 100_000) -> None:
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(
                f"MemoryRateLimitStore(max_entries={max_entries!r}) must be a positive number"
            )
        self.max_entries = max_entries
        # Least recently counted first.
        self._counters: OrderedDict[str, _Counter] = OrderedDict()
        # Keys by the end of their window. Windows are aligned, so there are only a
        # few distinct ends at any time: forgetting ended windows costs what they hold.
        self._ending: dict[float, set[str]] = {}
        self._next_end = math.inf

    def __len__(self) -> int:
        return len(self._counters)

    async def hit(self, windows: Sequence[Window], now: float) -> list[int]:
        if now >= self._next_end:
            self._forget_ended(now)
        return [self._hit(window) for window in windows]

    async def release(self, windows: Sequence[Window], now: float) -> None:
        for window in windows:
            counter = self._counters.get(window.key)
            if counter is not None and counter.count > 0:
                counter.count -= 1

    async def peek(self, windows: Sequence[Window], now: float) -> list[int]:
        """The counts of the windows (zero for one not seen), counting nothing."""
        if now >= self._next_end:
            self._forget_ended(now)
        counts = []
        for window in windows:
            counter = self._counters.get(window.key)
            if counter is None:
                counts.append(0)
            else:
                # Read counters are in use: keep them from being the next to go.
                self._counters.move_to_end(window.key)
                counts.append(counter.count)
        return counts

    def _hit(self, window: Window) -> int:
        counters = self._counters
        counter = counters.get(window.key)
        if counter is None:
            while len(counters) >= self.max_entries:
                self._evict()
            counter = counters[window.key] = _Counter(window.expires)
            self._ending.setdefault(window.expires, set()).add(window.key)
            self._next_end = min(self._next_end, window.expires)
        else:
            counters.move_to_end(window.key)
        counter.count += 1
        return counter.count

    def _evict(self) -> None:
        """Make room: the least recently counted counter that has counted one request,
        else the least recently counted. A flood of fresh keys (rotated addresses) makes
        counters of one; pushing out one that is counting a guesser's attempts would
        take a flood between every two of their guesses."""
        counters = self._counters
        victim = None
        for scanned, (key, counter) in enumerate(counters.items()):
            if counter.count <= 1 and not key.startswith(ONCE_PREFIX):
                # (A claim of one use is not a flood's leftover: losing it would let the
                # thing it claimed, a TOTP code, a passkey challenge, be used again.)
                victim = key
                break
            if scanned >= _EVICTION_SCAN:
                break
        if victim is None:
            victim = next(iter(counters))
        self._unlist(victim, counters.pop(victim).expires)

    def _unlist(self, key: str, expires: float) -> None:
        keys = self._ending.get(expires)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._ending[expires]

    def _forget_ended(self, now: float) -> None:
        for expires in [end for end in self._ending if end <= now]:
            for key in self._ending.pop(expires):
                self._counters.pop(key, None)
        self._next_end = min(self._ending, default=math.inf)


def choose_store(store: object, adapter: object) -> RateLimitStore:
    """The store counters go to: ``store`` if given, else the adapter's if it keeps
    them (so limits hold across app instances), else this process's memory."""
    if store is not None:
        if not isinstance(store, RateLimitStore):
            raise ConfigurationError(
                f"rate_limit_store={store!r} is not a rate limit store: it needs async "
                "hit(windows, now) and release(windows, now) methods, e.g. "
                "MongoDBAdapter(db).rate_limit_store()"
            )
        return store
    make = getattr(adapter, "rate_limit_store", None)
    if callable(make):
        made = make()
        if isinstance(made, RateLimitStore):
            return made
    return MemoryRateLimitStore()


# -- counting -----------------------------------------------------------------------------

#: One limit on one subject: the limit's name (its ``RateLimits`` field), the limit
#: (``None``: removed) and whom it counts (``None``: nobody to count).
Check = tuple[str, RateLimit | None, str | None]


@dataclass(frozen=True, slots=True)
class Counted:
    """A request, counted: its windows, and whether a limit refuses it."""

    windows: tuple[Window, ...]
    #: Whole seconds until every window it is over has ended; ``None`` when it passes.
    retry_after: int | None


#: A request no limit applies to.
NOT_COUNTED = Counted((), None)


def window_of(name: str, limit: RateLimit, subject: str, now: float) -> Window:
    """The window of ``limit`` that ``now`` falls in, for ``subject``."""
    start = int(now // limit.period) * limit.period
    # A form or JSON body may carry lone surrogates; they hash like any other text.
    digest = hashlib.blake2b(subject.encode("utf-8", "surrogatepass"), digest_size=16)
    return Window(f"{name}/{limit.period}:{start}:{digest.hexdigest()}", start + limit.period)


async def count(store: RateLimitStore, checks: Iterable[Check], now: float) -> Counted:
    """Count a request against every check that applies: refused past a limit."""
    applied = [
        (limit, window_of(name, limit, subject, now))
        for name, limit, subject in checks
        if limit is not None and subject is not None
    ]
    if not applied:
        return NOT_COUNTED
    windows = tuple(window for _, window in applied)
    counts = await _guarded(store, store.hit(windows, now))
    if len(counts) != len(windows):
        raise _failed(store, TypeError(f"{len(counts)} counts for {len(windows)} windows"))
    ends = [
        window.expires
        for (limit, window), counted in zip(applied, counts, strict=True)
        if counted > limit.limit
    ]
    retry_after = max(1, math.ceil(max(ends) - now)) if ends else None
    return Counted(windows, retry_after)


#: The key prefix of :func:`count_once`'s claims.
ONCE_PREFIX = "once:"


async def count_once(store: RateLimitStore, key: str, expires: float, now: float) -> int:
    """Count one use of ``key`` until ``expires``: how many there have been, this one
    included (1: the first). Atomic in every store, so of requests racing to use one
    thing once (a TOTP code's time step, a challenge's attempts) exactly one sees 1."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16)
    # Kept to the end of the minute it must last to: claims then share a few ends, which
    # the memory store forgets in a batch, rather than one end each.
    window = Window(f"{ONCE_PREFIX}{digest.hexdigest()}", math.ceil(expires / 60) * 60)
    counts = await _guarded(store, store.hit((window,), now))
    if len(counts) != 1:
        raise _failed(store, TypeError(f"{len(counts)} counts for 1 window"))
    return counts[0]


async def release(store: RateLimitStore, counted: Counted, now: float) -> None:
    """Take back what :func:`count` counted: the attempt turned out not to count."""
    if counted.windows:
        await _guarded(store, store.release(counted.windows, now))


async def _guarded(store: RateLimitStore, operation: Awaitable[T]) -> T:
    try:
        return await operation
    except BackendUnavailableError:
        raise
    except Exception as exc:
        raise _failed(store, exc) from exc


def _failed(store: RateLimitStore, exc: Exception) -> BackendUnavailableError:
    # A store's bug must not turn sign-ins into 500s, nor let them through uncounted.
    logger.error("the rate limit store %s failed", type(store).__name__, exc_info=exc)
    return BackendUnavailableError(f"the rate limit store failed ({type(exc).__name__})")


# -- whom a limit counts ------------------------------------------------------------------

#: The subject of requests that name no client at all (an ASGI server without ``client``).
UNKNOWN_CLIENT = "client:unknown"


def proxy_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """``AuthConfig(trusted_proxies=...)`` parsed once: addresses and networks."""
    if isinstance(entries, str | bytes):
        raise ConfigurationError(
            f"trusted_proxies={entries!r} must be a list of addresses or networks, e.g. "
            f"[{entries!r}]"
        )
    networks: list[Network] = []
    for entry in entries:
        try:
            if not isinstance(entry, str):
                raise ValueError(entry)
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigurationError(
                f"trusted_proxies entry {entry!r} is not an IP address or network, such "
                "as '10.0.0.1', '10.0.0.0/8' or '2001:db8::/32'"
            ) from None
    return tuple(networks)


def client_address(scope: Scope, *, trust_host: bool, trusted_proxies: Sequence[Network]) -> str:
    """Whom the per-IP limits count for a request: its client's address, as a key.

    The ASGI ``client`` is the client, unless it is a proxy of the app's: with
    ``trusted_proxies``, a peer among them has its ``X-Forwarded-For`` read from the
    right, and the first address that is not another trusted proxy is the client (each
    proxy appends the address it saw, so the entries further left are the client's
    own word). Without ``trusted_proxies``, ``trust_host`` says whatever sent the
    request is the app's one proxy, so the right-most entry, the one it added, is the
    client: most proxies append to a header the client sent rather than replace it, and
    anything further left is the client's own word. Behind several proxies,
    ``trusted_proxies`` is the setting. An entry that is not an address counts as the
    peer. IPv6 clients are grouped by /64, the block one subscriber gets.
    """
    client = scope.get("client")
    host = client[0] if client else None
    peer = _address(host) if isinstance(host, str) else None
    if trusted_proxies:
        forwarded_trusted = peer is not None and _among(peer, trusted_proxies)
    else:
        forwarded_trusted = trust_host
    if forwarded_trusted:
        entries = _forwarded_for(scope)
        if entries:
            chosen = _forwarded_client(entries, trusted_proxies)
            if chosen is not None:
                return _group(chosen)
    if peer is not None:
        return _group(peer)
    if isinstance(host, str) and host:
        return f"peer:{host[:100]}"  # a Unix socket's path, a test client's name
    return UNKNOWN_CLIENT


def _forwarded_for(scope: Scope) -> list[str]:
    values = [
        value.decode("latin-1")
        for key, value in scope.get("headers", ())
        if key == b"x-forwarded-for"
    ]
    return [entry.strip() for entry in ",".join(values).split(",") if entry.strip()]


def _forwarded_client(entries: Sequence[str], trusted_proxies: Sequence[Network]) -> Address | None:
    if not trusted_proxies:
        return _address(entries[-1])
    for entry in reversed(entries):
        address = _address(entry)
        if address is None:
            return None  # a trusted proxy reported nonsense: fall back on the peer
        if not _among(address, trusted_proxies):
            return address
    # Every hop is one of ours: the request started inside.
    return _address(entries[0])


def _address(text: str) -> Address | None:
    """An address as proxies write it: bare, ``v4:port``, ``[v6]`` or ``[v6]:port``."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
    return address


def _among(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def _group(address: Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        # One subscriber gets a whole /64 and picks addresses in it at will.
        return f"ip:{ipaddress.IPv6Network((int(address) >> 64 << 64, 64))}"
    return f"ip:{address}"


def session_subject(session: Session) -> str:
    """Whom the per-session limits count: a stored session by its id; a JWT session by
    its user, since every update re-issues the token with a new ``jti`` (a client
    following its cookies would otherwise be a new session each time)."""
    record = session.record
    if record is not None and record.id:
        return f"session:{record.id}"
    claims: Any = session.claims or {}
    for claim, kind in (("sub", "user"), ("jti", "token")):
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return f"{kind}:{value}"
    return "session:unknown"


# -- the doors ----------------------------------------------------------------------------


class Limiter:
    """An app's limits on each door, counted in its store: what each kind of request
    counts is decided here, so the routes only answer.

    Every method returns the :class:`Counted` request; ``retry_after`` is set when it
    is refused.
    """

    __slots__ = ("limits", "store", "trust_host", "trusted_proxies")

    def __init__(
        self,
        limits: RateLimits | None,
        store: RateLimitStore,
        *,
        trust_host: bool,
        trusted_proxies: Sequence[Network],
    ) -> None:
        self.limits = limits
        self.store = store
        self.trust_host = trust_host
        self.trusted_proxies = trusted_proxies

    def _client(self, scope: Scope) -> str:
        return client_address(
            scope, trust_host=self.trust_host, trusted_proxies=self.trusted_proxies
        )

    async def sign_in_start(
        self, scope: Scope, provider_type: str, identifier: str | None, now: float
    ) -> Counted:
        """A sign-in that sends something somewhere: a mailed link (per address and
        per client) or a trip to an OAuth server (per client)."""
        limits = self.limits
        if limits is None:
            return NOT_COUNTED
        if provider_type == "email":
            checks: list[Check] = [
                ("email_per_address", limits.email_per_address, identifier),
                ("email_per_ip", limits.email_per_ip, self._client(scope)),
            ]
        elif provider_type in ("oauth", "oidc"):
            checks = [("oauth_per_ip", limits.oauth_per_ip, self._client(scope))]
        else:
            return NOT_COUNTED
        return await count(self.store, checks, now)

    async def sign_in_attempt(self, scope: Scope, identifier: str | None, now: float) -> Counted:
        """Credentials about to be checked, per client and per identifier; unless
        they prove wrong, :meth:`take_back` the count."""
        limits = self.limits
        if limits is None:
            return NOT_COUNTED
        checks: list[Check] = [
            ("failed_sign_in_per_ip", limits.failed_sign_in_per_ip, self._client(scope)),
            ("failed_sign_in_per_identifier", limits.failed_sign_in_per_identifier, identifier),
        ]
        return await count(self.store, checks, now)

    async def account_action(
        self,
        action: Literal["sign_up", "reset_link", "reset", "change"],
        scope: Scope,
        subject: str | None,
        now: float,
    ) -> Counted:
        """A door of password accounts: a sign-up or a reset link mailed (per client and
        per address, ``subject``), a reset form posted, a password change (per user,
        ``subject``)."""
        limits = self.limits
        if limits is None:
            return NOT_COUNTED
        checks: list[Check]
        if action == "sign_up":
            checks = [
                ("sign_up_per_address", limits.sign_up_per_address, subject),
                ("sign_up_per_ip", limits.sign_up_per_ip, self._client(scope)),
            ]
        elif action == "reset_link":
            checks = [
                ("password_reset_per_address", limits.password_reset_per_address, subject),
                ("password_reset_per_ip", limits.password_reset_per_ip, self._client(scope)),
            ]
        elif action == "reset":
            checks = [("password_reset_per_ip", limits.password_reset_per_ip, self._client(scope))]
        else:
            checks = [("password_change_per_user", limits.password_change_per_user, subject)]
        return await count(self.store, checks, now)

    async def second_factor_attempt(self, scope: Scope, user_id: str, now: float) -> Counted:
        """A second-factor code about to be checked, per client and per user; unless it
        proves wrong, :meth:`take_back` the count."""
        limits = self.limits
        if limits is None:
            return NOT_COUNTED
        checks: list[Check] = [
            ("two_factor_per_ip", limits.two_factor_per_ip, self._client(scope)),
            ("two_factor_per_user", limits.two_factor_per_user, f"user:{user_id}"),
        ]
        return await count(self.store, checks, now)

    async def take_back(self, counted: Counted, now: float) -> None:
        """The attempt did not fail: it does not count."""
        await release(self.store, counted, now)

    async def session_change(
        self, change: Literal["update", "revoke"], session: Session, now: float
    ) -> Counted:
        """A client's update of its session, or its revocation of sessions."""
        limits = self.limits
        if limits is None:
            return NOT_COUNTED
        if change == "update":
            check: Check = (
                "session_update_per_session",
                limits.session_update_per_session,
                session_subject(session),
            )
        else:
            check = (
                "session_revoke_per_session",
                limits.session_revoke_per_session,
                session_subject(session),
            )
        return await count(self.store, [check], now)
