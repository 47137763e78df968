"""The one owner of per-request state: the request's cookies, its session, what it sets.

Every module that needs to know about the request in flight asks its
:class:`RequestContext`: strategies read the session cookie and write a new one through
it, the routes and providers read and set their cookies through it, and only it changes
the session a handler was given. The middleware leaves it in the ASGI scope under
:data:`CONTEXT_KEY` while the app runs; :func:`request_context` finds it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.types import Scope

from asgi_session import _cookies as cookie_io
from asgi_session import _csrf as csrf
from asgi_session._cookies import CookieNames, CookieSpec
from asgi_session._hosts import is_cross_site
from asgi_session._session import NO_LONGER_UPDATABLE, isoformat, replace_contents
from asgi_session.errors import SessionEndedError

if TYPE_CHECKING:
    from asgi_session._config import AuthConfig
    from asgi_session._session import Session

#: Where the middleware leaves the request's :class:`RequestContext` in the ASGI scope
#: (only while a session cookie is being served: anonymous requests cost nothing).
CONTEXT_KEY = "asgi_session.context"
#: Key under which the middleware leaves its sign-in route in the request's state, for
#: ``@requires_session`` to send signed-out browsers to.
SIGN_IN_PATH_KEY = "asgi_session.signin_path"


def request_context(scope: Scope) -> RequestContext | None:
    """The context the middleware made for this request, if it made one."""
    ctx = scope.get(CONTEXT_KEY)
    return ctx if isinstance(ctx, RequestContext) else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContext:
    """What one request tells asgi-session, and the cookies its response must set.

    Built for every request that carries a session cookie, so everything not needed to
    resolve a session is worked out only when asked for.
    """

    __slots__ = (
        "_bearer_token",
        "_closed",
        "_cookies",
        "_origin",
        "_session",
        "_session_loaded",
        "bearer",
        "challenge",
        "config",
        "cookie_header",
        "issued",
        "names",
        "now",
        "response_started",
        "scope",
        "secure",
        "set_cookies",
    )

    def __init__(
        self,
        config: AuthConfig,
        scope: Scope,
        cookie_header: bytes | None,
        authorization: bytes | None = None,
    ) -> None:
        self.config = config
        self.scope = scope
        #: The raw ``Cookie`` header, as the key of caches of resolved sessions.
        self.cookie_header = cookie_header
        #: Whether the request authenticates with ``Authorization: Bearer`` (given by the
        #: middleware when ``AuthConfig(bearer_tokens=True)``): its token is the session
        #: token, cookies are neither read nor set, and no CSRF token is asked for, since
        #: nothing a browser sends on its own is involved.
        self.bearer = False
        self._bearer_token: str | None = None
        #: The session token a bearer request was issued (``POST /auth/token``).
        self.issued: tuple[str, datetime] | None = None
        #: The sealed sign-in this request holds for its second factor, if it held one.
        self.challenge: str | None = None
        self.now = config.clock()
        secure = config.use_secure_cookies
        if secure is None and not config.trust_host:
            # The common case needs neither the Host header nor any string building.
            secure = scope.get("scheme") in ("https", "wss")
        #: Whether cookies are ``Secure`` (with ``__Secure-``/``__Host-`` names).
        self.secure: bool = self.origin.startswith("https://") if secure is None else secure
        self.names: CookieNames = config.cookie_names[self.secure]
        #: ``Set-Cookie`` values the response must carry.
        self.set_cookies: list[str] = []
        #: Set once the response's headers are sent; cookies can no longer change.
        self.response_started = False
        self._cookies: Mapping[str, str] | None = None
        self._session_loaded = False
        self._session: Session | None = None
        self._closed = False
        if authorization is not None:
            self.use_bearer(authorization[7:].strip().decode("latin-1") or None)
            # The caches' key: NUL never occurs in a header, so no Cookie header is equal.
            self.cookie_header = b"\0" + authorization

    def issued_headers(self) -> list[tuple[bytes, bytes]]:
        """What hands a bearer client the token its request was issued (a JWT re-issued
        by an update or past a revocation, say): ``X-Auth-Token`` and
        ``X-Auth-Token-Expires``. A cookie does that for browsers."""
        if not self.bearer or self.issued is None:
            return []
        token, expires = self.issued
        return [
            (b"x-auth-token", token.encode("latin-1")),
            (b"x-auth-token-expires", isoformat(expires).encode("latin-1")),
        ]

    def use_bearer(self, token: str | None) -> None:
        """Authenticate this request by ``token`` alone (``None``: none yet, for a request
        that asks for one); cookies are ignored from here on."""
        self.bearer = True
        self._bearer_token = token
        self._cookies = {}
        self.cookie_header = None
        self._session_loaded = False
        self._session = None

    @property
    def origin(self) -> str:
        """``scheme://host`` of the app as the browser sees it."""
        try:
            return self._origin
        except AttributeError:
            self._origin: str = self._find_origin()
            return self._origin

    def _find_origin(self) -> str:
        config = self.config
        if config.url is not None:
            return config.url
        scheme = str(self.scope.get("scheme", "http"))
        if config.trust_host:
            scheme = (_header(self.scope, b"x-forwarded-proto") or scheme).split(",")[0].strip()
        if scheme in ("ws", "wss"):
            scheme = "https" if scheme == "wss" else "http"
        if scheme not in ("http", "https"):
            scheme = "http"
        return f"{scheme}://{self.request_host()}"

    def request_host(self) -> str:
        """The host the app's URLs would be built from: ``X-Forwarded-Host`` behind a
        trusted proxy, else ``Host``, else the server's address."""
        host = _header(self.scope, b"host")
        if self.config.trust_host:
            host = (_header(self.scope, b"x-forwarded-host") or host or "").split(",")[0].strip()
        if not host:
            server = self.scope.get("server")
            host = (
                (f"{server[0]}:{server[1]}" if server[1] else server[0]) if server else "localhost"
            )
        return host

    def host_allowed(self) -> bool:
        """Whether the request's host is one the app answers to (``allowed_hosts``)."""
        policy = self.config.allowed_hosts
        return policy is None or policy.allows(self.request_host())

    def cross_site(self) -> bool:
        """Whether a browser marks this request as sent by another site's page."""
        scope = self.scope
        return is_cross_site(
            _header(scope, b"sec-fetch-site"),
            _header(scope, b"origin"),
            self.origin,
            self.config.trusted_origins,
        )

    @property
    def cookies(self) -> Mapping[str, str]:
        """The request's cookies by name."""
        cookies = self._cookies
        if cookies is None:
            header = self.cookie_header
            cookies = self._cookies = (
                cookie_io.parse_cookie_header(header.decode("latin-1")) if header else {}
            )
        return cookies

    @property
    def user_agent(self) -> str | None:
        agent = _header(self.scope, b"user-agent")
        return agent[:512] if agent else None

    def base_url(self) -> str:
        """The app's base URL: the origin plus the ASGI ``root_path``."""
        return self.origin + str(self.scope.get("root_path", ""))

    def auth_url(self, action: str) -> str:
        """The absolute URL of one of the auth routes, e.g. ``auth_url("callback/github")``."""
        return f"{self.base_url()}{self.config.base_path}/{action}"

    def page_url(self, page: str | None, action: str, **params: str | None) -> str:
        """The app's own page if it set one (``Pages``), else the built-in route; with
        the query parameters that have a value."""
        base = self.base_url() + page if page else self.auth_url(action)
        query = urlencode({key: value for key, value in params.items() if value})
        return f"{base}?{query}" if query else base

    # -- the session --------------------------------------------------------------

    async def load_session(self) -> Session | None:
        """Resolve the request's session cookie through the strategy, once per request."""
        if not self._session_loaded:
            self._session_loaded = True
            self._session = await self.config.strategy.load(self)
        return self._session

    async def update_session(self, session: Session, data: Mapping[str, Any]) -> None:
        """Carry out ``session.update(data)``: a trusted update through the strategy.

        Sessions of this request carry it as their updater.
        """
        if self._closed:
            raise RuntimeError(NO_LONGER_UPDATABLE)
        updated = await self.config.strategy.update(self, session, data, trusted=True)
        if updated is None:
            raise SessionEndedError("the session ended while it was being updated")
        replace_contents(session, updated)

    async def end_session(self, session: Session, session_id: str) -> bool:
        """End one of ``session``'s user's sessions by id; whether there was one.

        Ending this very session clears its cookie too.
        """
        user_id = session.user.id
        assert user_id is not None
        ended = await self.config.strategy.end_user_session(user_id, session_id)
        if ended and session.record is not None and session.record.id == session_id:
            clear = getattr(self.config.strategy, "clear_session_cookie", None)
            if clear is not None:
                clear(self)  # the strategy's own cookies (Better Auth's, its cache's)
            else:
                self.clear_session_cookie()
            self.set_session(None)
        return ended

    async def end_other_sessions(self, session: Session) -> None:
        """End every session of ``session``'s user but this request's own."""
        user_id = session.user.id
        assert user_id is not None
        kept = await self.config.strategy.end_user_sessions(
            user_id, now=self.now, keep=(self, session)
        )
        if kept is not None:
            replace_contents(session, kept)

    def set_session(self, session: Session | None) -> None:
        """The request's session is now ``session`` (it signed in or out)."""
        self._session_loaded = True
        self._session = session

    def close(self) -> None:
        """The response is over, or there is none (a WebSocket): nothing can carry a
        cookie now, and the session can no longer be updated.

        The request's state keeps the session, whose updater is this context: letting go
        of the scope and the session here means no reference cycle is left for the
        garbage collector, on the path every signed-in request takes.
        """
        self.response_started = True
        self._closed = True
        self._session = None
        self.scope = {}

    # -- cookies --------------------------------------------------------------

    def session_token(self) -> str | None:
        """The session cookie's value, chunks joined; ``None`` if absent or broken (or
        the bearer token)."""
        if self.bearer:
            return self._bearer_token
        return cookie_io.read_chunked(
            self.cookies, self.names.session_token.name, self.config.max_cookie_chunks
        )

    def session_token_or_clear(self) -> str | None:
        """:meth:`session_token`, clearing session cookies that hold no usable value."""
        if self.bearer:
            return self._bearer_token
        spec = self.names.session_token
        max_chunks = self.config.max_cookie_chunks
        token, junk = cookie_io.read_chunked_checked(self.cookies, spec.name, max_chunks)
        if not token:
            if cookie_io.present_names(self.cookies, spec.name, max_chunks):
                # An empty value, a broken chunk set or only junk: nothing to resolve.
                self.clear_session_cookie()
            return None
        if junk:
            # Never read, but expired all the same: a planted name must not linger.
            self._check_open()
            self.set_cookies.extend(cookie_io.clear_chunked(spec, junk))
        return token

    def _check_open(self) -> None:
        if self.response_started:
            raise RuntimeError(
                "the session changed after the response started; update it before "
                "returning or streaming the response"
            )

    def set_session_cookie(self, token: str, expires: datetime) -> None:
        self._check_open()
        if self.bearer:
            self.issued = (token, expires)
            return
        spec = self.names.session_token
        self.set_cookies.extend(
            cookie_io.write_chunked(
                spec,
                token,
                expires=expires,
                present=cookie_io.present_names(
                    self.cookies, spec.name, self.config.max_cookie_chunks
                ),
                max_chunks=self.config.max_cookie_chunks,
            )
        )

    def clear_session_cookie(self) -> None:
        self._check_open()
        if self.bearer:
            self.issued = None
            return
        spec = self.names.session_token
        present = cookie_io.present_names(
            self.cookies, spec.name, self.config.max_cookie_chunks
        ) or [spec.name]
        self.set_cookies.extend(cookie_io.clear_chunked(spec, present))

    def set_cookie(self, spec: CookieSpec, value: str, *, max_age: int | None = None) -> None:
        self._check_open()
        if self.bearer:
            return
        self.set_cookies.append(cookie_io.serialize(spec, value, max_age=max_age))

    def clear_cookie(self, spec: CookieSpec) -> None:
        if spec.name in self.cookies:
            self.set_cookies.append(cookie_io.expire(spec))

    # -- CSRF and the callback URL ---------------------------------------------------

    def csrf_verified(self, submitted: object) -> bool:
        """Whether ``submitted`` is the token of the request's genuine CSRF cookie; any
        bearer request passes (a page cannot make a browser send the header)."""
        if self.bearer:
            return True
        return csrf.verify(
            self.cookies.get(self.names.csrf_token.name), submitted, self.config.secrets
        )

    def csrf_token(self) -> str:
        """The request's CSRF token, issuing a cookie for a new one when it has none."""
        token = csrf.token_from_cookie(
            self.cookies.get(self.names.csrf_token.name), self.config.secrets
        )
        if token is None:
            token, cookie_value = csrf.issue(self.config.secrets[0])
            self.set_cookie(self.names.csrf_token, cookie_value)
        return token

    def stored_callback_url(self) -> str | None:
        """Where the sign-in under way should end, as remembered in its cookie."""
        return self.cookies.get(self.names.callback_url.name)

    def remember_callback_url(self, url: str, spec: CookieSpec | None = None) -> None:
        """Keep ``url`` (already validated) for the end of the sign-in, unless it is kept.

        ``spec`` replaces the cookie's attributes (OAuth's ``form_post`` callbacks need
        ``SameSite=None``).
        """
        if url != self.stored_callback_url() or spec is not None:
            self.set_cookie(spec or self.names.callback_url, url)

    def clear_callback_url(self) -> None:
        """The sign-in is over: forget where it was to end."""
        self.clear_cookie(self.names.callback_url)
