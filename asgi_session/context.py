"""Per-request facts the session machinery needs: origin, cookie mode, cookies, clock."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection, Request
from starlette.types import Scope

from asgi_session import cookies as cookie_io
from asgi_session.cookies import CookieNames, CookieSpec

if TYPE_CHECKING:
    from asgi_session.config import AuthConfig
    from asgi_session.session import Session


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContext:
    """What one request tells asgi-session, and the cookies its response must set."""

    def __init__(self, config: AuthConfig, scope: Scope, cookie_header: str | None) -> None:
        self.config = config
        self.scope = scope
        self._cookie_header = cookie_header
        self.now = config.clock()
        #: ``Set-Cookie`` values the response must carry.
        self.set_cookies: list[str] = []
        #: Set once the response's headers are sent; cookies can no longer change.
        self.response_started = False
        self._session_loaded = False
        self._session: Session | None = None

    @cached_property
    def origin(self) -> str:
        """``scheme://host`` of the app as the browser sees it."""
        config = self.config
        if config.url is not None:
            return config.url
        scheme = str(self.scope.get("scheme", "http"))
        host = _header(self.scope, b"host")
        if config.trust_host:
            scheme = (_header(self.scope, b"x-forwarded-proto") or scheme).split(",")[0].strip()
            host = (_header(self.scope, b"x-forwarded-host") or host or "").split(",")[0].strip()
        if scheme in ("ws", "wss"):
            scheme = "https" if scheme == "wss" else "http"
        if scheme not in ("http", "https"):
            scheme = "http"
        if not host:
            server = self.scope.get("server")
            host = f"{server[0]}:{server[1]}" if server else "localhost"
        return f"{scheme}://{host}"

    @cached_property
    def secure(self) -> bool:
        """Whether cookies are ``Secure`` (with ``__Secure-``/``__Host-`` names)."""
        if self.config.use_secure_cookies is not None:
            return self.config.use_secure_cookies
        return self.origin.startswith("https://")

    @cached_property
    def names(self) -> CookieNames:
        return self.config.cookie_names[self.secure]

    @cached_property
    def cookies(self) -> Mapping[str, str]:
        if not self._cookie_header:
            return {}
        return cookie_io.parse_cookie_header(self._cookie_header)

    @cached_property
    def connection(self) -> HTTPConnection:
        if self.scope["type"] == "http":
            return Request(self.scope)
        return HTTPConnection(self.scope)

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

    # -- the session --------------------------------------------------------------

    async def load_session(self) -> Session | None:
        """Resolve the request's session cookie through the backend, once per request."""
        if not self._session_loaded:
            self._session_loaded = True
            token = self.session_token()
            if token:
                self._session = await self.config.backend.load(self, token)
            elif cookie_io.present_names(self.cookies, self.names.session_token.name):
                # Only a broken chunk set, or an empty value: nothing to resolve, drop it.
                self.clear_session_cookie()
        return self._session

    def forget_session(self, session: Session | None = None) -> None:
        """Record that the request's session changed (signed in or out)."""
        self._session_loaded = True
        self._session = session

    # -- cookies --------------------------------------------------------------

    def session_token(self) -> str | None:
        return cookie_io.read_chunked(self.cookies, self.names.session_token.name)

    def _check_open(self) -> None:
        if self.response_started:
            raise RuntimeError(
                "the session changed after the response started; update it before "
                "returning or streaming the response"
            )

    def set_session_cookie(self, token: str, expires: Any) -> None:
        self._check_open()
        spec = self.names.session_token
        self.set_cookies.extend(
            cookie_io.write_chunked(
                spec,
                token,
                expires=expires,
                present=cookie_io.present_names(self.cookies, spec.name),
                max_chunks=self.config.max_cookie_chunks,
            )
        )

    def clear_session_cookie(self) -> None:
        self._check_open()
        spec = self.names.session_token
        present = cookie_io.present_names(self.cookies, spec.name) or [spec.name]
        self.set_cookies.extend(cookie_io.clear_chunked(spec, present))

    def set_cookie(self, spec: CookieSpec, value: str, *, max_age: int | None = None) -> None:
        self.set_cookies.append(cookie_io.serialize(spec, value, max_age=max_age))

    def clear_cookie(self, spec: CookieSpec) -> None:
        if spec.name in self.cookies:
            self.set_cookies.append(cookie_io.expire(spec))
