import os
import secrets

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, requires_session
from asgi_session.providers import Credentials


def authorize(credentials: dict[str, str], request: Request) -> dict[str, str] | None:
    password = credentials.get("password", "").encode()  # look your user up here
    if not secrets.compare_digest(password, os.environ["DEMO_PASSWORD"].encode()):
        return None
    return {"id": "1", "name": "Ada", "email": credentials.get("email", "")}


@requires_session  # signed-out browsers go to the sign-in page, then back here
async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"Hello {request.state.session.user.name}")


config = AuthConfig(secret=os.environ["AUTH_SECRET"], providers=[Credentials(authorize=authorize)])
app = Starlette(routes=[Route("/", home)], middleware=[Middleware(AuthMiddleware, config=config)])
