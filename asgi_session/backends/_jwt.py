"""The JWT strategy: the session is an encrypted token in the cookie, no database needed.

Tokens are Auth.js-compatible (see :mod:`asgi_session.jwt`), so a Next.js app and a
Python service sharing ``AUTH_SECRET`` read each other's sessions.

Unlike Auth.js, a token is re-issued at most once per ``update_age`` rather than on
every request, and a decrypted token is remembered (by the Cookie header that carried
it, until it expires) so a browser sending the same cookie again costs a dictionary
lookup. What is remembered is bounded twice, in entries and in (estimated) bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from asgi_session._callbacks import may_await
from asgi_session._session import (
    Session,
    SessionUser,
    copy_json,
    isoformat,
    lazy_session,
    own_user,
    shaped_session,
)
from asgi_session.backends._adapter import Adapter
from asgi_session.backends._strategy import BaseStrategy
from asgi_session.errors import UnsupportedOperationError
from asgi_session.jwt import CLOCK_TOLERANCE, JWTCodec, JWTDecodeError
from asgi_session.models import SessionRecord

if TYPE_CHECKING:
    from asgi_session._config import AuthConfig
    from asgi_session._context import RequestContext


# What JSON numbers decode to (the codec refuses any other `iat` or `exp`).
_NUMBERS = (int, float)

#: Cookie headers longer than this are not remembered: one header cannot take a large
#: share of the cache (a few chunks of token each).
_MAX_MEMO_HEADER = 8192

#: The default byte budget of each cache of resolved tokens (there is one per cookie
#: mode), and of the revocation cut-offs.
DEFAULT_CACHE_BYTES = 8 * 1024 * 1024

# What a remembered token costs besides its Cookie header, estimated from lengths at
# hand rather than by walking the claims on every new token: the entry and the session
# parts built from it, the claims' text (about as long as the token), and each claim's
# key, value and slot. Measured with tracemalloc on CPython
# 3.11 for Auth.js's default claims (within a few percent, over rather than under);
# claims holding long lists, or text mixing ASCII with emoji, up to half as much again.
_ENTRY_BYTES = 1000
_CLAIM_BYTES = 100
# A revocation cut-off: the user id (its text counted apart), a tuple, two floats, a slot.
_CUTOFF_BYTES = 250


class _Resolved:
    """A decrypted token, and the session parts every request sending it shares."""

    __slots__ = ("_flat", "_parts", "_user", "claims", "deadline", "issued_at", "size", "view")

    def __init__(
        self, claims: dict[str, Any], issued_at: float, expiry: float, token_length: int
    ) -> None:
        self.claims = claims
        self.view: Mapping[str, Any] = MappingProxyType(claims)
        self.issued_at = issued_at
        #: No longer valid once ``int(now)`` reaches this: the codec's own rule, so a
        #: remembered token expires when a decoded one would.
        self.deadline = expiry + CLOCK_TOLERANCE
        #: Estimated bytes, the Cookie header that carried it excepted.
        self.size = _ENTRY_BYTES + token_length + _CLAIM_BYTES * len(claims)
        self._user: SessionUser | None = None
        self._parts: tuple[dict[str, Any], datetime, SessionUser] | None = None
        self._flat: bool | None = None

    def user(self) -> SessionUser:
        """The session's user, built on first use (the default shape)."""
        user = self._user
        if user is None:
            claims = self.claims
            user = self._user = own_user(_default_user(claims), _user_id(claims))
        return user

    def parts(self) -> tuple[dict[str, Any], datetime, SessionUser]:
        """The session JSON, expiry and user, built on first use (the default shape)."""
        parts = self._parts
        if parts is None:
            expires = datetime.fromtimestamp(self.claims["exp"], UTC)
            data = {"user": _default_user(self.claims), "expires": isoformat(expires)}
            parts = self._parts = (data, expires, self.user())
        return parts

    def _is_flat(self) -> bool:
        """Whether no claim holds a list or an object: then one level of copy is a copy."""
        flat = self._flat
        if flat is None:
            values = self.claims.values()
            flat = self._flat = all(type(v) is not dict and type(v) is not list for v in values)
        return flat

    def token(self) -> dict[str, Any]:
        """A copy of the claims for a callback to change at will."""
        return self.claims.copy() if self._is_flat() else copy_json(self.claims)

    def default_session(self) -> dict[str, Any]:
        """A copy of the default session JSON for a callback to change at will."""
        data = self.parts()[0]
        user = data["user"]
        return {
            "user": user.copy() if self._is_flat() else copy_json(user),
            "expires": data["expires"],
        }


def _default_user(claims: Mapping[str, Any]) -> dict[str, Any]:
    # Auth.js builds this in JavaScript, where a missing claim leaves no key behind.
    # (Spelt out: a comprehension costs a function call, on every new token.)
    user = {}
    if "name" in claims:
        user["name"] = claims["name"]
    if "email" in claims:
        user["email"] = claims["email"]
    if "picture" in claims:
        user["image"] = claims["picture"]
    return user


def _user_id(claims: Mapping[str, Any]) -> str | None:
    sub = claims.get("sub")
    return None if sub is None else str(sub)


def _default_session(claims: Mapping[str, Any]) -> tuple[dict[str, Any], datetime, str | None]:
    """The session JSON Auth.js shows by default for ``claims``, its expiry, the user id."""
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    data = {"user": _default_user(claims), "expires": isoformat(expires)}
    return data, expires, _user_id(claims)


class _Memo(OrderedDict[bytes, _Resolved]):
    """Resolved tokens by Cookie header, least recently used first, and their bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def remember(self, header: bytes, resolved: _Resolved, entries: int, budget: int) -> None:
        """Keep ``resolved`` for ``header`` (not remembered yet: its lookup just missed)."""
        self[header] = resolved
        self.bytes += len(header) + resolved.size
        while len(self) > entries or self.bytes > budget:
            old_header, old = self.popitem(last=False)
            self.bytes -= len(old_header) + old.size

    def forget(self, header: bytes) -> None:
        old = self.pop(header, None)
        if old is not None:
            self.bytes -= len(header) + old.size

    def clear(self) -> None:
        super().clear()
        self.bytes = 0


class _SessionEnded(Exception):
    """The ``jwt`` callback returned ``None``: the session must end."""


class JWTStrategy(BaseStrategy):
    """Sessions as encrypted JWTs in the cookie (the default strategy).

    With ``AuthConfig(adapter=..., strategy="jwt")`` users and accounts are stored while
    sessions stay in the cookie (Auth.js's adapter with ``strategy: "jwt"``); pass
    ``AuthConfig(adapter=..., strategy=JWTStrategy(...))`` to tune the options below.

    Decrypted tokens are remembered by the Cookie header that carried them, one cache per
    cookie mode (plain and ``__Secure-``), each holding at most ``cache_size`` tokens and
    about ``cache_bytes`` bytes (8 MiB by default, some 3,000 sessions of Auth.js's
    default claims; the bytes are estimated from the header's and the token's lengths
    and the number of claims); the least recently used make way. The revocation
    cut-offs below are bounded the same way.

    The ``session`` callback runs on every request, as in Auth.js, since it may read
    more than its arguments; the default session around it is built once per token.

    Revocation: with an adapter, :meth:`end_user_sessions` records a per-user cut-off,
    and tokens issued at or before it stop working. Each app instance reads a user's
    cut-off at most once every ``revocation_check_interval`` seconds (one indexed read;
    the instance that revoked knows at once), so elsewhere a revoked token lives on for
    at most that long. ``None`` turns the check off: no database reads at all.
    """

    name = "jwt"

    def __init__(
        self,
        *,
        adapter: Adapter | None = None,
        cache_size: int = 4096,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        revocation_check_interval: float | None = 10.0,
    ) -> None:
        super().__init__(adapter)
        self._cache_size = cache_size
        self._cache_bytes = cache_bytes
        self._revocation_interval = revocation_check_interval
        # user id -> (cut-off in epoch seconds or None, when it was read)
        self._cutoffs: dict[str, tuple[float | None, float]] = {}
        self._cutoff_bytes = 0
        self._codecs: dict[bool, JWTCodec] = {}
        # Resolved tokens by the raw Cookie header that carried them, one cache per cookie
        # mode (the salt, the cookie name, differs): a browser sends the same header again
        # and again, and a hit skips parsing, decrypting and building the session.
        self._memos: dict[bool, _Memo] = {False: _Memo(), True: _Memo()}
        self._update_age = 0
        self._shape_session: Callable[[dict[str, Any]], Any] | None = None

    def configure(self, config: AuthConfig) -> None:
        super().configure(config)
        self._codecs = {
            secure: JWTCodec(config.secrets, names.session_token.name)
            for secure, names in config.cookie_names.items()
        }
        self._update_age = config.update_age
        # A `session` callback may shape each request's session differently (it may
        # read a database, the clock...), so it runs on every request, as in Auth.js.
        self._shape_session = config.callbacks.bound("session")

    # -- reading ----------------------------------------------------------------

    def _resolve(self, ctx: RequestContext, token: str) -> _Resolved | None:
        try:
            claims = self._codecs[ctx.secure].decode(token, now=ctx.now)
        except JWTDecodeError:
            return None
        if type(claims.get("iat")) not in _NUMBERS or type(claims.get("exp")) not in _NUMBERS:
            return None
        return _Resolved(claims, claims["iat"], claims["exp"], len(token))

    def remembered(self, ctx: RequestContext) -> Session | None:
        """The session of a Cookie header resolved before, if serving it needs no I/O and
        no callback; else ``None``, and :meth:`load` does the rest.

        The path most signed-in requests take, without a coroutine; the middleware
        calls it first (unless a subclass changed :meth:`load`).
        """
        if self._shape_session is not None or (
            self._revocation_interval is not None and self.adapter is not None
        ):
            return None
        header = ctx.cookie_header
        memo = self._memos[ctx.secure]
        resolved = None if header is None else memo.get(header)
        if (
            resolved is None
            or resolved.deadline <= int(ctx.now)
            or ctx.now - resolved.issued_at >= self._update_age
        ):
            return None
        memo.move_to_end(header)  # type: ignore[arg-type]
        return lazy_session(resolved, resolved.view, ctx)

    async def load(self, ctx: RequestContext) -> Session | None:
        header = ctx.cookie_header
        memo = self._memos[ctx.secure]
        resolved = None if header is None else memo.get(header)
        if resolved is None:
            token = ctx.session_token_or_clear()
            if token is None:
                return None
            resolved = self._resolve(ctx, token)
            if resolved is None:
                ctx.clear_session_cookie()
                return None
            if header is not None and len(header) <= _MAX_MEMO_HEADER:
                memo.remember(header, resolved, self._cache_size, self._cache_bytes)
        elif resolved.deadline <= int(ctx.now):
            memo.forget(header)  # type: ignore[arg-type]
            ctx.clear_session_cookie()
            return None
        else:
            memo.move_to_end(header)  # type: ignore[arg-type]
        claims = resolved.claims
        if (
            self._revocation_interval is not None
            and self.adapter is not None
            and await self._revoked(ctx, claims)
        ):
            ctx.clear_session_cookie()
            return None
        if ctx.now - resolved.issued_at >= self._update_age and not ctx.bearer:
            # (A bearer token is not re-issued: nothing would carry the new one back.)
            try:
                fresh = await self._issue(ctx, claims, trigger=None)
            except _SessionEnded:
                ctx.clear_session_cookie()
                return None
            return await self._session(ctx, fresh)
        shape = self._shape_session
        if shape is None:
            return lazy_session(resolved, resolved.view, ctx)
        # The callback runs for this request; the default session it is given, and the
        # expiry, were worked out once for the token.
        default = resolved.default_session()
        shaped = shape(
            {
                "session": default,
                "token": resolved.token(),
                "user": None,
                "trigger": None,
                "new_session": None,
            }
        )
        if may_await(shaped):
            shaped = await shaped
        # The session ends when the token does, whatever the callback wrote there.
        data, expires, user = resolved.parts()
        return shaped_session(
            shaped,
            expires=expires,
            expires_text=data["expires"],
            user_id=user.id,
            claims=resolved.view,
            updater=ctx,
        )

    async def _session(
        self,
        ctx: RequestContext,
        claims: Mapping[str, Any],
        *,
        trigger: str | None = None,
        new_session: Mapping[str, Any] | None = None,
    ) -> Session:
        data, expires, user_id = _default_session(claims)
        callbacks = self.config.callbacks
        if callbacks.has("session"):
            data = await callbacks.call(
                "session",
                data,
                session=data,
                token=copy_json(dict(claims)),
                user=None,
                trigger=trigger,
                new_session=new_session,
            )
        return Session(data, expires=expires, user_id=user_id, claims=claims, updater=ctx)

    async def _revoked(self, ctx: RequestContext, claims: Mapping[str, Any]) -> bool:
        user_id = claims.get("sub")
        if isinstance(user_id, str) and await self._cut_off(ctx, user_id, claims["iat"]):
            return True
        # A bearer token may also have been ended alone (DELETE /auth/token). Checked
        # whichever header carries it (whoever holds one can send it as a cookie too),
        # but only for tokens issued as bearer tokens: cookie sessions pay no extra read.
        jti = claims.get("jti")
        return (
            claims.get(BEARER_CLAIM) is True
            and isinstance(jti, str)
            and await self._cut_off(ctx, _token_key(jti), 0)
        )

    async def _cut_off(self, ctx: RequestContext, key: str, issued_at: float) -> bool:
        """Whether ``key``'s tokens issued at ``issued_at`` are revoked; the cut-off is
        read at most once per ``revocation_check_interval``."""
        assert self.adapter is not None and self._revocation_interval is not None
        known = self._cutoffs.get(key)
        if known is None or ctx.now - known[1] >= self._revocation_interval:
            found = await self.adapter.tokens_revoked_before(key)
            known = (None if found is None else found.timestamp(), ctx.now)
            self._remember_cutoff(key, known)
        cutoff = known[0]
        return cutoff is not None and issued_at <= cutoff

    def _remember_cutoff(self, user_id: str, known: tuple[float | None, float]) -> None:
        """Keep a user's cut-off, the oldest read making way past the entries or bytes."""
        cutoffs = self._cutoffs
        if cutoffs.pop(user_id, None) is not None:
            self._cutoff_bytes -= _CUTOFF_BYTES + len(user_id)
        cutoffs[user_id] = known
        self._cutoff_bytes += _CUTOFF_BYTES + len(user_id)
        while len(cutoffs) > self._cache_size or self._cutoff_bytes > self._cache_bytes:
            oldest = next(iter(cutoffs))
            del cutoffs[oldest]
            self._cutoff_bytes -= _CUTOFF_BYTES + len(oldest)

    # -- writing ----------------------------------------------------------------

    async def _issue(
        self,
        ctx: RequestContext,
        token: Mapping[str, Any],
        *,
        trigger: str | None,
        issued_at: float | None = None,
        auth_time: float | None = None,
        **arguments: Any,
    ) -> dict[str, Any]:
        """Run the ``jwt`` callback, encrypt its answer and set the cookie: the new claims."""
        config = self.config
        current = {k: v for k, v in token.items() if k not in ("iat", "exp", "jti")}
        callback_arguments = {
            "user": None,
            "account": None,
            "profile": None,
            "is_new_user": None,
            "session": None,
        }
        callback_arguments.update(arguments)
        result = await config.callbacks.call(
            "jwt", current, token=current, trigger=trigger, **callback_arguments
        )
        if result is None:
            raise _SessionEnded
        if not isinstance(result, Mapping):
            raise TypeError("the jwt callback must return a mapping of claims, or None")
        codec = self._codecs[ctx.secure]
        now = ctx.now if issued_at is None else issued_at
        if ctx.bearer:
            result = {**result, BEARER_CLAIM: True}  # its revocation is looked up alone
        # When the user proved who they are (OpenID's claim), for step-up checks: set at
        # sign-in and carried by every re-issue, whatever the callback returns (it may
        # merge what a client sent to POST /session: no client may make itself fresh).
        pinned = auth_time if auth_time is not None else token.get(AUTH_TIME_CLAIM)
        result = {key: value for key, value in result.items() if key != AUTH_TIME_CLAIM}
        if type(pinned) is int or type(pinned) is float:
            result[AUTH_TIME_CLAIM] = int(pinned)
        encoded = codec.encode(result, max_age=config.max_age, now=now)
        claims = codec.decode(encoded, now=now)
        ctx.set_session_cookie(encoded, datetime.fromtimestamp(claims["exp"], UTC))
        return claims

    async def create(
        self,
        ctx: RequestContext,
        *,
        user: Mapping[str, Any],
        account: Mapping[str, Any] | None = None,
        profile: Mapping[str, Any] | None = None,
        is_new_user: bool = False,
    ) -> Session:
        default = {
            "name": user.get("name"),
            "email": user.get("email"),
            "picture": user.get("image"),
            "sub": None if user.get("id") is None else str(user["id"]),
        }
        # Auth.js builds this object in JavaScript, where absent fields vanish.
        default = {key: value for key, value in default.items() if value is not None}
        claims = await self._issue(
            ctx,
            default,
            issued_at=await self._issue_time(ctx, default.get("sub")),
            auth_time=ctx.now,
            trigger="signUp" if is_new_user else "signIn",
            user=dict(user),
            account=None if account is None else dict(account),
            profile=None if profile is None else dict(profile),
            is_new_user=is_new_user,
        )
        return await self._session(ctx, claims)

    async def _issue_time(self, ctx: RequestContext, user_id: str | None) -> float | None:
        """When a new token for ``user_id`` must say it was issued (``None``: now).

        ``iat`` counts whole seconds, and a revocation cuts off every token issued in its
        second; a sign-in in that same second (a password reset that ends every session,
        then signs in) is dated one second later, or it would be born revoked.
        """
        if user_id is None or self.adapter is None or self._revocation_interval is None:
            return None
        cutoff = await self.adapter.tokens_revoked_before(user_id)
        if cutoff is None or cutoff.timestamp() < int(ctx.now):
            return None
        return float(int(cutoff.timestamp()) + 1)

    async def update(
        self, ctx: RequestContext, session: Session, data: Mapping[str, Any], *, trusted: bool
    ) -> Session | None:
        claims = dict(session.claims or {})
        if trusted:
            claims.update(data)
        try:
            new_claims = await self._issue(ctx, claims, trigger="update", session=dict(data))
        except _SessionEnded:
            ctx.clear_session_cookie()
            return None
        return await self._session(ctx, new_claims, trigger="update", new_session=data)

    async def destroy(
        self, ctx: RequestContext, session: Session | None, *, clear_cookie: bool = True
    ) -> None:
        if ctx.cookie_header is not None:
            self._memos[ctx.secure].forget(ctx.cookie_header)
        if ctx.bearer and session is not None:
            await self._revoke_token(ctx, session, replaced=not clear_cookie)
        if clear_cookie:
            ctx.clear_session_cookie()

    @property
    def revocation_check_interval(self) -> float | None:
        """How often a user's revocation cut-off is read; ``None``: never (nothing that
        ends sessions elsewhere takes effect)."""
        return self._revocation_interval

    async def _revoke_token(
        self, ctx: RequestContext, session: Session, *, replaced: bool = False
    ) -> None:
        """End one bearer token: its ``jti`` gets a cut-off of its own, checked for
        every token presented, in a cookie too (see :meth:`_revoked`)."""
        claims = session.claims or {}
        jti = claims.get("jti")
        if claims.get(BEARER_CLAIM) is not True:
            # A cookie's token sent as a bearer one has no cut-off of its own: a sign-in
            # may replace it, but saying it ended (a sign-out) would be untrue.
            if replaced:
                return
            raise UnsupportedOperationError(
                "this token was not issued by POST /auth/token, so it cannot be ended alone; "
                "POST /auth/signout with its cookie ends a cookie's session"
            )
        if self.adapter is None or self._revocation_interval is None or not isinstance(jti, str):
            raise UnsupportedOperationError(
                "ending one JWT bearer token needs a store for revocations: "
                "AuthConfig(adapter=..., strategy='jwt') with revocation checks on, or the "
                "database strategy"
            )
        await self.adapter.revoke_tokens_issued_before(
            _token_key(jti), datetime.fromtimestamp(ctx.now, UTC)
        )
        self._remember_cutoff(_token_key(jti), (ctx.now, ctx.now))

    # -- a user's sessions -----------------------------------------------------

    def _needs_adapter(self) -> Adapter:
        if self.adapter is None:
            raise UnsupportedOperationError(
                "ending a user's JWT sessions needs a store for revocations: "
                "AuthConfig(adapter=MongoDBAdapter(db), strategy='jwt')"
            )
        return self.adapter

    async def list_user_sessions(self, user_id: str, *, now: float) -> list[SessionRecord]:
        raise UnsupportedOperationError(
            "JWT sessions are not stored, so they cannot be listed; use the database strategy"
        )

    async def end_user_session(self, user_id: str, session_id: str) -> bool:
        raise UnsupportedOperationError(
            "JWT sessions are not stored, so one cannot be ended by id; end them all with "
            "end_user_sessions(), or use the database strategy"
        )

    async def end_user_sessions(
        self, user_id: str, *, now: float, keep: tuple[RequestContext, Session] | None = None
    ) -> Session | None:
        adapter = self._needs_adapter()
        # Tokens carry whole-second `iat`s: the cut-off covers this whole second, and the
        # session kept is re-issued as of the next one, so it alone survives.
        await adapter.revoke_tokens_issued_before(user_id, datetime.fromtimestamp(now, UTC))
        self._remember_cutoff(user_id, (now, now))
        if keep is not None:
            ctx, session = keep
            claims = await self._issue(
                ctx, session.claims or {}, trigger=None, issued_at=float(int(now) + 1)
            )
            return await self._session(ctx, claims)
        return None


#: The claim saying when the session's user last signed in (seconds since the epoch).
AUTH_TIME_CLAIM = "auth_time"

#: The claim marking a token issued for ``Authorization: Bearer`` (``POST /auth/token``).
BEARER_CLAIM = "bearer"


def _token_key(jti: str) -> str:
    """Where one token's own cut-off is kept, beside users' (which are ids, never this)."""
    return f"token:{jti}"
