"""A Starlette app with one page that only signed-in users see."""

import os
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, requires_session
from asgi_session.providers import Credentials

# Stands in for your users table. Real apps store password hashes: see the passwords guide.
USERS = {"ada@example.com": {"id": "1", "name": "Ada", "password": "correct horse"}}


# --8<-- [start:authorize]
def authorize(credentials: dict[str, str], request: Request) -> dict[str, Any] | None:
    """The sign-in form's fields in, the user out (None: wrong email or password)."""
    user = USERS.get(credentials["email"])
    if user is None or not secrets.compare_digest(
        user["password"].encode(), credentials["password"].encode()
    ):
        return None
    return {"id": user["id"], "name": user["name"], "email": credentials["email"]}


# --8<-- [end:authorize]
# --8<-- [start:app]
@requires_session  # signed-out browsers go to the sign-in page, then come back
async def home(request: Request) -> Response:
    session = request.state.session  # a Session, never None here
    return PlainTextResponse(f"Hello {session.user.name}, signed in until {session.expires:%c}")


config = AuthConfig(secret=os.environ["AUTH_SECRET"], providers=[Credentials(authorize=authorize)])
app = Starlette(routes=[Route("/", home)], middleware=[Middleware(AuthMiddleware, config=config)])
# --8<-- [end:app]
