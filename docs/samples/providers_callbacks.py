"""Callbacks that decide who may sign in and what the session holds; events that log."""

import logging
import os
import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, Callbacks, Events
from asgi_session.providers import Credentials

logger = logging.getLogger("app.auth")

# Stands in for your users table. Real apps store password hashes: see the passwords guide.
USERS = {
    "ada@example.com": {"id": "1", "name": "Ada", "password": "correct horse"},
    "eve@elsewhere.example": {"id": "2", "name": "Eve", "password": "apple pie"},
}
ROLES = {"1": "admin"}


def authorize(credentials: dict[str, str], request: Request) -> dict[str, Any] | None:
    user = USERS.get(credentials["email"])
    if user is None or not secrets.compare_digest(
        user["password"].encode(), credentials["password"].encode()
    ):
        return None
    return {"id": user["id"], "name": user["name"], "email": credentials["email"]}


# --8<-- [start:callbacks]
def sign_in(user: dict[str, Any]) -> bool:
    """Who may sign in at all: False refuses (AccessDenied), whatever the provider said."""
    return str(user.get("email", "")).endswith("@example.com")


def redirect(url: str, base_url: str) -> str:
    """Where the browser goes after signing in or out: this app, or the docs site."""
    if url.startswith("/"):
        return f"{base_url}{url}"
    if urlsplit(url).netloc in (urlsplit(base_url).netloc, "docs.example.com"):
        return url
    return base_url


async def jwt(token: dict[str, Any], user: dict[str, Any], trigger: str | None) -> dict[str, Any]:
    """What goes into the encrypted cookie: looked up once, at sign-in."""
    if trigger in ("signIn", "signUp"):
        token["role"] = ROLES.get(user["id"], "member")
    return token


def session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    """What handlers and GET /auth/session see, on every request."""
    session["user"]["id"] = token["sub"]
    session["user"]["role"] = token["role"]
    return session


# --8<-- [end:callbacks]
# --8<-- [start:events]
def signed_in(user: dict[str, Any], account: dict[str, Any], is_new_user: bool) -> None:
    logger.info("sign-in: user %s with %s", user["id"], account["provider"])


def signed_out(token: dict[str, Any] | None) -> None:
    logger.info("sign-out: user %s", token["sub"] if token else "?")


# --8<-- [end:events]


async def home(request: Request) -> Response:
    session = request.state.session
    return JSONResponse(None if session is None else session.to_dict())


# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    providers=[Credentials(authorize=authorize)],
    callbacks=Callbacks(sign_in=sign_in, redirect=redirect, jwt=jwt, session=session),
    events=Events(sign_in=signed_in, sign_out=signed_out),
)
# --8<-- [end:config]
app = Starlette(routes=[Route("/", home)], middleware=[Middleware(AuthMiddleware, config=config)])
