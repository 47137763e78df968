"""Sign in with GitHub or Google; the client ids and secrets come from the environment."""

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.providers import GitHub, Google

# --8<-- [start:providers]
providers = [
    GitHub(),  # AUTH_GITHUB_ID, AUTH_GITHUB_SECRET
    Google(),  # AUTH_GOOGLE_ID, AUTH_GOOGLE_SECRET
]
# --8<-- [end:providers]


async def home(request: Request) -> Response:
    session = request.state.session
    return JSONResponse(None if session is None else session.to_dict())


# The callback URLs to register are <AUTH_URL>/auth/callback/github and .../google.
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"], url=os.environ["AUTH_URL"], providers=providers
)
app = Starlette(routes=[Route("/", home)], middleware=[Middleware(AuthMiddleware, config=config)])
