"""Reading the session in handlers, and guarding the ones that need a signed-in user."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload
from urllib.parse import urlencode

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response

from asgi_session._context import SIGN_IN_PATH_KEY, request_context
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


def reauthenticate_redirect(connection: HTTPConnection) -> str:
    """The URL that has the user prove who they are again, then come back to this page."""
    ctx = request_context(connection.scope)
    base_path = ctx.config.base_path if ctx is not None else "/auth"
    query = urlencode({"callbackUrl": str(connection.url)})
    return f"{connection.scope.get('root_path', '')}{base_path}/reauthenticate?{query}"


def session_is_fresh(connection: HTTPConnection, session: Session, max_age: float) -> bool:
    """Whether ``session``'s user signed in at most ``max_age`` seconds ago (by the
    app's clock)."""
    ctx = request_context(connection.scope)
    if ctx is None:
        return False
    return session.is_fresh(max_age, ctx.config.clock())


@overload
def requires_session(
    endpoint: Endpoint, *, redirect: bool = True, fresh: float | None = None
) -> Endpoint: ...


@overload
def requires_session(
    endpoint: None = None, *, redirect: bool = True, fresh: float | None = None
) -> Callable[[Endpoint], Endpoint]: ...


def requires_session(
    endpoint: Endpoint | None = None, *, redirect: bool = True, fresh: float | None = None
) -> Any:
    """Decorate a Starlette endpoint that needs a signed-in user.

    Signed-out browsers asking for a page are sent to the sign-in page (and back after
    signing in); other clients get ``401``. ``redirect=False`` always answers 401::

        @requires_session
        async def dashboard(request):
            return HTMLResponse(f"Hello {request.state.session.user.name}")

    ``fresh=300`` also needs the user to have signed in within the last 300 seconds
    (step-up, for what an attacker holding a stolen cookie must not do): browsers with an
    older session go through ``/auth/reauthenticate`` (a password, a passkey or a TOTP
    code) and back; other clients get ``401`` with ``{"error": "ReauthenticationRequired"}``.
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
            session = get_session(request)
            if session is None:
                return _deny(request, redirect=redirect)
            if fresh is not None and not session_is_fresh(request, session, fresh):
                return _deny(request, redirect=redirect, stale=True)
            return await function(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate(endpoint) if endpoint is not None else decorate


def wants_page(request: HTTPConnection) -> bool:
    """Whether the request is a browser asking for a page (it can follow a redirect)."""
    method = request.scope.get("method", "GET")
    return method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


def _deny(request: HTTPConnection, *, redirect: bool, stale: bool = False) -> Response:
    if redirect and wants_page(request):
        url = reauthenticate_redirect(request) if stale else sign_in_redirect(request)
        return RedirectResponse(url, status_code=303)
    error = "ReauthenticationRequired" if stale else "SessionRequired"
    return JSONResponse({"error": error}, status_code=401)
