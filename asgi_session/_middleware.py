"""``AuthMiddleware``: resolves the session cookie before the app runs, and serves ``/auth/*``."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_session._answers import service_unavailable
from asgi_session._config import AuthConfig
from asgi_session._context import CONTEXT_KEY, SIGN_IN_PATH_KEY, RequestContext
from asgi_session._routes import AuthRoutes
from asgi_session.backends._jwt import JWTStrategy
from asgi_session.errors import BackendUnavailableError, ConfigurationError


class AuthMiddleware:
    """Pure ASGI middleware putting the session in ``request.state.session``.

    ``request.state.session`` is ``None`` when signed out, else a
    :class:`~asgi_session.Session`. Requests under ``config.base_path`` are the
    sign-in routes and never reach the app. Works around any ASGI app::

        app = Starlette(routes=routes, middleware=[Middleware(AuthMiddleware, config=config)])
        app = AuthMiddleware(other_asgi_app, config=config)

    The options of :class:`~asgi_session.AuthConfig` may be passed directly
    instead of ``config``.
    """

    def __init__(self, app: ASGIApp, /, config: AuthConfig | None = None, **options: Any) -> None:
        if config is None:
            config = AuthConfig(**options)
        elif options:
            raise ConfigurationError(
                "pass either config=AuthConfig(...) or AuthConfig's options, not both"
            )
        self.app = app
        self.config = config
        self._routes = AuthRoutes(config)
        self._prefix = config.base_path + "/"
        self._sign_in_path = config.pages.sign_in or config.base_path + "/signin"
        self._bearer = config.bearer_tokens
        # The session cookie's name is in the Cookie header whenever there is a session to
        # resolve; checking for it spares every anonymous request any parsing.
        # A strategy with cookies of its own (Better Auth's) names them.
        own = getattr(config.strategy, "session_cookie_names", None)
        if own is None:
            own = [spec.session_token.name for spec in config.cookie_names.values()]
        names = {name.encode("latin-1") for name in own}
        # "__Secure-authjs.session-token" contains "authjs.session-token": usually one
        # substring test covers both modes.
        markers = [name for name in names if not any(o in name for o in names if o != name)]
        self._marker = markers[0]
        self._other_markers = tuple(markers[1:])
        strategy = config.strategy
        # A JWT seen before resolves without a coroutine; a subclass that changed how
        # sessions load is asked through load() alone.
        self._remembered = (
            strategy.remembered
            if isinstance(strategy, JWTStrategy) and type(strategy).load is JWTStrategy.load
            else None
        )

    def _has_other_marker(self, cookie_header: bytes) -> bool:
        return any(marker in cookie_header for marker in self._other_markers)

    def _closing_at_shutdown(self, send: Send) -> Send:
        """``send`` for the lifespan: at shutdown, what the strategy holds (a database
        strategy's change stream) is closed before the server is told it may stop."""
        strategy = self.config.strategy

        async def send_lifespan(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                aclose = getattr(strategy, "aclose", None)
                if aclose is not None:
                    await aclose()
            await send(message)

        return send_lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http" and scope_type != "websocket":
            if scope_type == "lifespan":
                send = self._closing_at_shutdown(send)
            await self.app(scope, receive, send)
            return

        cookie_header: bytes | None = None
        authorization: bytes | None = None
        if self._bearer:
            for key, value in scope["headers"]:
                if key == b"cookie":
                    cookie_header = (
                        value if cookie_header is None else cookie_header + b"; " + value
                    )
                elif key == b"authorization" and value[:7].lower() == b"bearer ":
                    authorization = value
        else:
            for key, value in scope["headers"]:
                if key == b"cookie":
                    # HTTP/2 clients may split cookies over several headers.
                    cookie_header = (
                        value if cookie_header is None else cookie_header + b"; " + value
                    )

        if scope_type == "http":
            path: str = scope["path"]
            # A substring test first: most paths are not ours, and it spares the
            # root_path arithmetic on every one of them.
            if self._prefix in path:
                root_path: str = scope.get("root_path", "")
                if root_path and path.startswith(root_path):
                    path = path[len(root_path) :]
                if path.startswith(self._prefix):
                    ctx = RequestContext(self.config, scope, cookie_header, authorization)
                    await self._routes(scope, receive, send, ctx, path[len(self._prefix) :])
                    return

        state = scope.get("state")
        if authorization is None and (
            cookie_header is None
            or (self._marker not in cookie_header and not self._has_other_marker(cookie_header))
        ):
            if state is None:
                scope["state"] = {"session": None, SIGN_IN_PATH_KEY: self._sign_in_path}
            else:
                state["session"] = None
                state[SIGN_IN_PATH_KEY] = self._sign_in_path
            await self.app(scope, receive, send)
            return
        if state is None:
            state = scope["state"] = {}
        state[SIGN_IN_PATH_KEY] = self._sign_in_path

        ctx = RequestContext(self.config, scope, cookie_header, authorization)
        remembered = self._remembered
        session = None if remembered is None else remembered(ctx)
        if session is not None:
            ctx.set_session(session)
        else:
            try:
                session = await ctx.load_session()
            except BackendUnavailableError:
                if scope_type == "http":
                    await service_unavailable()(scope, receive, send)
                else:
                    await send({"type": "websocket.close", "code": 1013})
                return
        state["session"] = session
        if scope_type != "http":
            ctx.close()  # a WebSocket has no response to carry a new cookie
            await self.app(scope, receive, send)
            return
        if session is None and not ctx.set_cookies:
            await self.app(scope, receive, send)
            return

        def send_with_cookies(message: Message) -> Awaitable[None]:
            # A plain function returning send's awaitable, not a coroutine function:
            # each message (two for most responses) costs no coroutine of its own.
            if message["type"] == "http.response.start":
                ctx.response_started = True  # streaming may go on; cookies cannot change
                if ctx.set_cookies or ctx.issued is not None:
                    headers = list(message.get("headers", ()))
                    headers.extend(
                        (b"set-cookie", cookie.encode("latin-1")) for cookie in ctx.set_cookies
                    )
                    headers.extend(ctx.issued_headers())
                    message = {**message, "headers": headers}
            return send(message)

        scope[CONTEXT_KEY] = ctx
        try:
            await self.app(scope, receive, send_with_cookies)
        finally:
            # The response is over: nothing could carry a new cookie now.
            del scope[CONTEXT_KEY]
            ctx.close()
