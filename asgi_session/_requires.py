"""Reading the session in handlers, and guarding the ones that need a signed-in user."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response

from asgi_session._context import SIGN_IN_PATH_KEY
from asgi_session._session import Session

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])


def get_session(connection: HTTPConnection) -> Session | None:
    """The request's session, or ``None`` when signed out.

    Raises ``RuntimeError`` when ``AuthMiddleware`` is not installed, rather than
    reporting every user as signed out.
    """
    state = connection.scope.get("state")
    if state is None or "session" not in state:
        raise RuntimeError(
            "no session on this request: add AuthMiddleware to the app, e.g. "
            "Starlette(middleware=[Middleware(AuthMiddleware, config=config)])"
        )
    session: Session | None = state["session"]
    return session


def sign_in_redirect(connection: HTTPConnection) -> str:
    """The sign-in URL that brings the user back to this page afterwards."""
    path = connection.scope.get("state", {}).get(SIGN_IN_PATH_KEY, "/auth/signin")
    query = urlencode({"callbackUrl": str(connection.url)})
    return f"{connection.scope.get('root_path', '')}{path}?{query}"


def requires_session(endpoint: Endpoint | None = None, *, redirect: bool = True) -> Any:
    """Decorate a Starlette endpoint that needs a signed-in user.

    Signed-out browsers asking for a page are sent to the sign-in page (and back after
    signing in); other clients get ``401``. ``redirect=False`` always answers 401::

        @requires_session
        async def dashboard(request):
            return HTMLResponse(f"Hello {request.state.session.user.name}")
    """

    def decorate(function: Endpoint) -> Endpoint:
        @functools.wraps(function)
        async def guarded(*args: Any, **kwargs: Any) -> Response:
            request = next(
                (arg for arg in (*args, *kwargs.values()) if isinstance(arg, HTTPConnection)),
                None,
            )
            if request is None:
                raise TypeError("@requires_session needs an endpoint that takes the request")
            if get_session(request) is None:
                return _deny(request, redirect=redirect)
            return await function(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate(endpoint) if endpoint is not None else decorate


def _deny(request: HTTPConnection, *, redirect: bool) -> Response:
    method = request.scope.get("method", "GET")
    accepts_html = "text/html" in request.headers.get("accept", "")
    if redirect and method in ("GET", "HEAD") and accepts_html:
        return RedirectResponse(sign_in_redirect(request), status_code=303)
    return JSONResponse({"error": "SessionRequired"}, status_code=401)
