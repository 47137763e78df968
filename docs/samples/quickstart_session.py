"""What a handler finds in request.state.session, and how it changes the session."""

import os
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, Callbacks, Session, requires_session
from asgi_session.providers import Credentials

# Stands in for your users table. Real apps store password hashes: see the passwords guide.
USERS = {"ada@example.com": {"id": "1", "name": "Ada", "password": "correct horse"}}


def authorize(credentials: dict[str, str], request: Request) -> dict[str, Any] | None:
    """The sign-in form's fields in, the user out (None: wrong email or password)."""
    user = USERS.get(credentials["email"])
    if user is None or not secrets.compare_digest(
        user["password"].encode(), credentials["password"].encode()
    ):
        return None
    return {"id": user["id"], "name": user["name"], "email": credentials["email"]}


# --8<-- [start:read]
async def home(request: Request) -> Response:
    """Signed in or not: None, or the session's fields."""
    session: Session | None = request.state.session
    if session is None:
        return JSONResponse({"signedIn": False})
    user = session.user  # a SessionUser
    return JSONResponse(
        {
            "id": user.id,
            "name": user.name,
            "email": user.email,
            "image": user.image,  # None: this provider gives no picture
            "expires": session.expires.isoformat(),  # an aware datetime, in UTC
            "json": session.to_dict(),  # what GET /auth/session answers
        }
    )


# --8<-- [end:read]
# --8<-- [start:update]
@requires_session
async def choose_theme(request: Request) -> Response:
    """POST /theme?theme=dark: keep a preference in the session itself."""
    session: Session = request.state.session
    await session.update({"theme": request.query_params.get("theme", "light")})
    return JSONResponse(session.to_dict())  # this response carries the new cookie


# --8<-- [end:update]
# --8<-- [start:callback]
def show_theme(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    """The session callback: what handlers and GET /auth/session see of the token."""
    session["user"]["theme"] = token.get("theme", "light")
    return session


# --8<-- [end:callback]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    providers=[Credentials(authorize=authorize)],
    callbacks=Callbacks(session=show_theme),
)
app = Starlette(
    routes=[Route("/", home), Route("/theme", choose_theme, methods=["POST"])],
    middleware=[Middleware(AuthMiddleware, config=config)],
)
