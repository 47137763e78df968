"""The apps the end-to-end row serves with uvicorn (``served_app:bare`` and the others).

Each is the in-process rows' one-route app with the same handler (see :mod:`fixtures`),
plus a ``/whoami`` route the row asks once, before timing, to check that the cookie it
sends is resolved; wrk only ever requests ``/``, the first route.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from fixtures import SECRET, cookie_session_homepage, homepage, session_homepage


async def _whoami(request: Request) -> PlainTextResponse:
    session = request.state.session
    return PlainTextResponse("" if session is None else str(session.user.email))


async def _cookie_whoami(request: Request) -> PlainTextResponse:
    user = request.session.get("user") or {}
    return PlainTextResponse(str(user.get("email", "")))


bare = Starlette(routes=[Route("/", homepage)])
jwt_session = Starlette(
    routes=[Route("/", session_homepage), Route("/whoami", _whoami)],
    middleware=[Middleware(AuthMiddleware, config=AuthConfig(secret=SECRET))],
)
starlette_session = Starlette(
    routes=[Route("/", cookie_session_homepage), Route("/whoami", _cookie_whoami)],
    middleware=[Middleware(SessionMiddleware, secret_key=SECRET)],
)
