"""Credentials with fields of your own, and refusals that say why."""

import os
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.errors import CredentialsSignin
from asgi_session.providers import Credentials

# Stands in for your users table. Real apps store password hashes: see the passwords guide.
USERS = {
    "ada": {"id": "1", "name": "Ada", "password": "correct horse", "locked": False},
    "bob": {"id": "2", "name": "Bob", "password": "battery staple", "locked": True},
}


# --8<-- [start:authorize]
class AccountLocked(CredentialsSignin):
    code = "account_locked"  # ?error=CredentialsSignin&code=account_locked


async def authorize(credentials: dict[str, str], request: Request) -> dict[str, Any] | None:
    user = USERS.get(credentials["username"].lower())
    if user is None or not secrets.compare_digest(
        str(user["password"]).encode(), credentials["password"].encode()
    ):
        return None  # ?error=CredentialsSignin&code=credentials
    if user["locked"]:
        raise AccountLocked()
    return {"id": user["id"], "name": user["name"]}


employees = Credentials(
    id="staff",  # the form posts to /auth/callback/staff
    name="Staff account",  # the sign-in page's button
    fields={
        "username": {"label": "Username", "type": "text"},
        "password": {"label": "Password", "type": "password"},
    },
    authorize=authorize,
)
# --8<-- [end:authorize]


async def home(request: Request) -> Response:
    session = request.state.session
    return JSONResponse(None if session is None else {"id": session.user.id, **session.to_dict()})


config = AuthConfig(secret=os.environ["AUTH_SECRET"], providers=[employees])
app = Starlette(routes=[Route("/", home)], middleware=[Middleware(AuthMiddleware, config=config)])
