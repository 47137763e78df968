"""Better Auth's sessions, read and written as the ``better-auth`` npm package does:
:class:`BetterAuthStrategy` (public in :mod:`asgi_session.backends.better_auth`).

It is the database strategy with Better Auth's cookies (see
:mod:`asgi_session.backends._better_auth_cookies`) over an adapter that stores Better
Auth's records. Resolving, expiry and its ``updateAge`` extension, signing out, listing
and ending a user's sessions are the database strategy's; with a :class:`CookieCache`, a
request carrying a valid ``session_data`` cookie needs no database at all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from asgi_session import _cookies as cookie_io
from asgi_session._cookies import CookieSpec
from asgi_session._session import Session
from asgi_session.backends import _better_auth_cookies as ba
from asgi_session.backends._adapter import Adapter
from asgi_session.backends._better_auth_cookies import CookieCache
from asgi_session.backends._database import DatabaseStrategy
from asgi_session.backends._session_cache import (
    DEFAULT_CACHE_BYTES,
    DEFAULT_CACHE_SIZE,
    copy_record,
    copy_user,
)
from asgi_session.errors import ConfigurationError, CookieTooLargeError
from asgi_session.models import SessionRecord, User

if TYPE_CHECKING:
    from asgi_session._config import AuthConfig
    from asgi_session._context import RequestContext

__all__ = ["BetterAuthStrategy", "better_auth_adapter"]

#: Better Auth's defaults: ``session.expiresIn`` (7 days) and ``session.updateAge`` (1 day).
DEFAULT_EXPIRES_IN = 7 * 24 * 3600
DEFAULT_UPDATE_AGE = 24 * 3600
#: Longer tokens are not Better Auth's (32 characters) nor ours (43): no database call.
_MAX_TOKEN_LENGTH = 128
_SCHEMA = "better-auth"
_READS = frozenset({"GET", "HEAD"})
#: Cookie caches remembered once verified, as the JWT strategy remembers its tokens.
_REMEMBERED = 4096


def better_auth_adapter(database: object) -> Adapter:
    """The adapter storing Better Auth's records in ``database``: a PyMongo or Motor
    database, or an adapter already laid out as Better Auth's."""
    if callable(getattr(type(database), "get_collection", None)):
        # Checked first: a PyMongo or Motor database answers any attribute with a
        # collection, so it passes for an adapter too.
        from asgi_session.backends.mongodb import MongoDBAdapter

        return MongoDBAdapter(database, schema=_SCHEMA)
    schema = getattr(database, "schema", None)
    if isinstance(database, Adapter):
        if isinstance(schema, str) and schema != _SCHEMA:
            raise ConfigurationError(
                f"BetterAuthStrategy needs Better Auth's tables, but {type(database).__name__} "
                f"was made with schema={schema!r}: pass schema={_SCHEMA!r}, e.g. "
                f"SQLAdapter(url, schema={_SCHEMA!r})"
            )
        return database
    raise ConfigurationError(
        f"BetterAuthStrategy needs a MongoDB database (AsyncMongoClient(url)['app']) or "
        f"an adapter such as SQLAdapter(url, schema={_SCHEMA!r}), not "
        f"{type(database).__name__}"
    )


class BetterAuthStrategy(DatabaseStrategy):
    """Sessions as Better Auth keeps them: its signed cookie, its ``session`` records.

    ``database`` is a PyMongo/Motor database (its documents laid out as Better Auth's
    MongoDB adapter lays them out) or an adapter with Better Auth's layout, such as
    ``SQLAdapter(url, schema="better-auth")``. ``AuthConfig(secret=...)`` must be the
    Better Auth app's ``BETTER_AUTH_SECRET`` (a list: the first signs, any verifies).

    The rest mirrors the Better Auth app's options, and must match them:

    - ``cookie_prefix``: ``advanced.cookiePrefix`` (``"better-auth"``); cookies are
      ``__Secure-`` prefixed on https, as Better Auth's are.
    - ``cookie_domain``: ``advanced.crossSubDomainCookies.domain``, when the Better Auth
      app shares its cookies with subdomains (``None``: host-only cookies, its default).
    - ``expires_in`` and ``update_age``: ``session.expiresIn`` (7 days) and
      ``session.updateAge`` (1 day); these replace ``AuthConfig(max_age, update_age)``.
    - ``cookie_cache``: ``session.cookieCache`` (off unless given): a valid cache
      cookie resolves a request with no database, and sessions read from the database
      get one.

    ``cache``, ``cache_size`` and ``cache_bytes`` are :class:`DatabaseStrategy`'s.
    """

    #: What new password hashes must be for the Better Auth app to verify them too.
    password_hashes = "scrypt"  # noqa: S105 (a scheme's name, not a password)

    def __init__(
        self,
        database: object,
        *,
        cookie_prefix: str = "better-auth",
        cookie_domain: str | None = None,
        expires_in: int = DEFAULT_EXPIRES_IN,
        update_age: int = DEFAULT_UPDATE_AGE,
        cookie_cache: CookieCache | None = None,
        cache: bool = True,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        super().__init__(cache=cache, cache_size=cache_size, cache_bytes=cache_bytes)
        if not isinstance(cookie_prefix, str) or not cookie_prefix or ";" in cookie_prefix:
            raise ConfigurationError(
                "cookie_prefix must be Better Auth's advanced.cookiePrefix, e.g. 'better-auth'"
            )
        for option, value in (("expires_in", expires_in), ("update_age", update_age)):
            if type(value) is not int or value < 0 or (option == "expires_in" and value == 0):
                raise ConfigurationError(
                    f"{option} must be a whole number of seconds, as Better Auth's "
                    f"session.{'expiresIn' if option == 'expires_in' else 'updateAge'}"
                )
        if cookie_domain is not None and (
            not isinstance(cookie_domain, str)
            or not cookie_domain.strip(".")
            or any(c in cookie_domain for c in ";, \t")
        ):
            raise ConfigurationError(
                "cookie_domain must be a domain such as 'example.com', as Better Auth's "
                "advanced.crossSubDomainCookies.domain"
            )
        if update_age > expires_in:
            raise ConfigurationError("update_age must not be more than expires_in")
        if cookie_cache is not None and not isinstance(cookie_cache, CookieCache):
            raise ConfigurationError(
                "cookie_cache must be a CookieCache(max_age=300, encoding='compact'), or None"
            )
        self.adapter = better_auth_adapter(database)
        self.cookie_prefix = cookie_prefix
        self.cookie_cache = cookie_cache
        self._lifetime = (expires_in, update_age)
        #: Cookie caches verified lately, by value.
        self._remembered: OrderedDict[str, _Verified] = OrderedDict()
        self._token_specs = {
            secure: _spec(f"{cookie_prefix}.session_token", secure, cookie_domain)
            for secure in (False, True)
        }
        self._cache_specs = {
            secure: _spec(f"{cookie_prefix}.session_data", secure, cookie_domain)
            for secure in (False, True)
        }
        # Better Auth's sign-in with rememberMe=false: a browser-session cookie that is
        # never extended, marked by this signed cookie.
        self._dont_remember_specs = {
            secure: _spec(f"{cookie_prefix}.dont_remember", secure, cookie_domain)
            for secure in (False, True)
        }

    def _lifetimes(self, config: AuthConfig) -> tuple[int, int]:
        return self._lifetime

    # -- the cookies -----------------------------------------------------------------

    @property
    def session_cookie_names(self) -> tuple[str, ...]:
        """The names the session cookie has (on http and on https)."""
        return tuple(spec.name for spec in self._token_specs.values())

    def token_cookie(self, ctx: RequestContext) -> CookieSpec:
        """The session cookie for this request (``__Secure-`` on https)."""
        return self._token_specs[ctx.secure]

    def carries_session(self, ctx: RequestContext) -> bool:
        """Whether the request carries this strategy's session cookie (or bearer token)."""
        return self._signed_value(ctx) is not None

    def _signed_value(self, ctx: RequestContext) -> str | None:
        if ctx.bearer:
            return ctx.session_token()
        return ctx.cookies.get(self.token_cookie(ctx).name)

    def _peek_token(self, ctx: RequestContext) -> str | None:
        value = self._signed_value(ctx)
        if not value:
            return None
        token = ba.unsign(value, self.config.secrets)
        return token if token and len(token) <= _MAX_TOKEN_LENGTH else None

    def _read_token(self, ctx: RequestContext) -> str | None:
        value = self._signed_value(ctx)
        if value is None:
            return None
        token = self._peek_token(ctx)
        if token is None:
            # A bad signature, or no token: nothing to look up, and nothing to keep.
            self.clear_session_cookie(ctx)
        return token

    def _dont_remember(self, ctx: RequestContext) -> bool:
        """Whether the browser signed in with Better Auth's "remember me" off."""
        value = ctx.cookies.get(self._dont_remember_specs[ctx.secure].name)
        return value is not None and ba.unsign(value, self.config.secrets) == "true"

    def _extends(self, ctx: RequestContext) -> bool:
        # As Better Auth: a session that is not remembered ends with the browser's, and
        # is never pushed back.
        return ctx.bearer or not self._dont_remember(ctx)

    def _write_cookie(self, ctx: RequestContext, record: SessionRecord, user: User) -> None:
        value = ba.sign(record.session_token, self.config.secrets[0])
        if ctx.bearer:
            ctx.issued = (value, record.expires)
            return
        ctx.set_cookie(self.token_cookie(ctx), value, max_age=self.max_age)
        # Only a new session or an extension writes the cookie, and a session that is
        # not remembered gets neither here: whatever marks one is stale now.
        self._clear_dont_remember(ctx)
        self._write_cache(ctx, record, user)

    def clear_session_cookie(self, ctx: RequestContext) -> None:
        if ctx.bearer:
            ctx.issued = None
            return
        ctx.set_cookie(self.token_cookie(ctx), "", max_age=0)
        self._clear_cache(ctx)
        self._clear_dont_remember(ctx)

    def _clear_dont_remember(self, ctx: RequestContext) -> None:
        ctx.clear_cookie(self._dont_remember_specs[ctx.secure])

    def _new_record_fields(self, ctx: RequestContext) -> dict[str, Any]:
        fields = super()._new_record_fields(ctx)
        client = ctx.scope.get("client")
        if client and isinstance(client[0], str):
            # The peer, as Better Auth records it (its own proxy handling aside).
            fields["ip_address"] = client[0]
        return fields

    # -- the cookie cache ---------------------------------------------------------------

    def _cache_cookie(self, ctx: RequestContext) -> tuple[str | None, list[str]]:
        spec = self._cache_specs[ctx.secure]
        limit = self.config.max_cookie_chunks
        return cookie_io.read_chunked(ctx.cookies, spec.name, limit), cookie_io.present_names(
            ctx.cookies, spec.name, limit
        )

    def _write_cache(self, ctx: RequestContext, record: SessionRecord, user: User) -> None:
        cache = self.cookie_cache
        if cache is None or ctx.bearer:
            return
        now = ctx.now
        payload = {
            "session": ba.session_json(record),
            "user": ba.user_json(user, known_by=record.created_at or record.expires),
            "updatedAt": int(now * 1000),
            "version": cache.version,
        }
        value = ba.encode_cache(payload, cache, self.config.secrets[0], now=now)
        spec = self._cache_specs[ctx.secure]
        _, present = self._cache_cookie(ctx)
        try:
            headers = cookie_io.write_chunked(
                spec,
                value,
                # Max-Age, as Better Auth writes it: no clock but the browser's counts.
                expires=None,
                max_age=cache.max_age,
                present=present,
                max_chunks=self.config.max_cookie_chunks,
            )
        except CookieTooLargeError:
            # Better Auth skips a cache too large for cookies too: the database answers.
            headers = cookie_io.clear_chunked(spec, present)
        ctx.set_cookies.extend(headers)

    def _clear_cache(self, ctx: RequestContext) -> None:
        spec = self._cache_specs[ctx.secure]
        _, present = self._cache_cookie(ctx)
        # A cache this response was about to set goes too: it would be stale, and its
        # value would still be on the wire (in logs) even though the browser drops it.
        pending = [
            name for name in _pending_names(ctx.set_cookies, spec.name) if name not in present
        ]
        ctx.set_cookies[:] = [header for header in ctx.set_cookies if not _sets(header, spec.name)]
        if present or pending:
            ctx.set_cookies.extend(cookie_io.clear_chunked(spec, [*present, *pending]))

    async def _cached(self, ctx: RequestContext) -> Session | None:
        """The session a valid cookie cache stands for, with no database call."""
        value, present = self._cache_cookie(ctx)
        if not present:
            return None
        token = self._peek_token(ctx)
        found = self._verified_cache(value, ctx.now) if value and token else None
        if found is None or found.record.session_token != token:
            # Tampered, expired, or another session's: never trusted; the database answers.
            self._clear_cache(ctx)
            return None
        if found.parts is None:
            found.parts = self._shared_parts(found.record, found.user)
        session = self._shared_session(ctx, found.parts)
        if session is not None:
            return session
        return await self._session(ctx, copy_record(found.record), copy_user(found.user))

    def _verified_cache(self, value: str, now: float) -> _Verified | None:
        """A cookie cache's session and user, once verified and while unexpired.

        A value verified before is remembered (the browser sends the same one until it
        is renewed), so a hit costs a lookup, not a signature or a decryption.
        """
        remembered = self._remembered.get(value)
        if remembered is None:
            cache = self.cookie_cache
            assert cache is not None
            found = ba.decode_cache(value, cache, self.config.secrets, now=now)
            record = ba.record_from_json(found.payload["session"]) if found else None
            user = ba.user_from_json(found.payload["user"]) if found else None
            if found is None or record is None or user is None or record.user_id != user.id:
                return None
            remembered = self._remembered[value] = _Verified(record, user, found.expires_at)
            if len(self._remembered) > _REMEMBERED:
                self._remembered.popitem(last=False)
        else:
            self._remembered.move_to_end(value)
        if remembered.until <= now or remembered.record.expires <= datetime.fromtimestamp(now, UTC):
            self._remembered.pop(value, None)
            return None
        return remembered

    def _resolved(
        self, ctx: RequestContext, record: SessionRecord, user: User, *, written: bool
    ) -> None:
        # Only a request that reads writes the cache: one that changes something may
        # change the session too, and its cache would be stale at once.
        if (
            not written
            and not ctx.bearer
            and self.cookie_cache is not None
            and ctx.scope.get("method") in _READS
        ):
            self._write_cache(ctx, record, user)

    # -- the strategy --------------------------------------------------------------------

    async def load(self, ctx: RequestContext) -> Session | None:
        # The cache answers requests that only read. One that changes something (ends
        # sessions, changes a password) asks the database, as Better Auth's sensitive
        # endpoints do: a session revoked a minute ago must not act from its cache.
        if self.cookie_cache is not None and not ctx.bearer and ctx.scope.get("method") in _READS:
            session = await self._cached(ctx)
            if session is not None:
                return session
        return await super().load(ctx)

    async def update(
        self, ctx: RequestContext, session: Session, data: Mapping[str, Any], *, trusted: bool
    ) -> Session | None:
        updated = await super().update(ctx, session, data, trusted=trusted)
        if trusted and not ctx.bearer:
            # The cache holds what the session was: the next request reads it anew.
            self._clear_cache(ctx)
        return updated


class _Verified:
    """A verified cookie cache: its session and user (shared read-only), until when it
    may be used, and the session parts built from it on first use."""

    __slots__ = ("parts", "record", "until", "user")

    def __init__(self, record: SessionRecord, user: User, until: float) -> None:
        self.record = record
        self.user = user
        self.until = until
        self.parts: object | None = None


def _sets(header: str, name: str) -> bool:
    """Whether a ``Set-Cookie`` value sets ``name`` or one of its chunks."""
    return header.startswith(f"{name}=") or header.startswith(f"{name}.")


def _pending_names(headers: list[str], name: str) -> list[str]:
    return [header.split("=", 1)[0] for header in headers if _sets(header, name)]


def _spec(name: str, secure: bool, domain: str | None) -> CookieSpec:
    return CookieSpec(name=f"__Secure-{name}" if secure else name, secure=secure, domain=domain)
