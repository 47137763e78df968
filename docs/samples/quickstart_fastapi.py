"""The same app on FastAPI: the session arrives as a dependency."""

import os
import secrets
from typing import Any

from fastapi import FastAPI, Request

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.fastapi import OptionalSession, RequiredSession
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


config = AuthConfig(secret=os.environ["AUTH_SECRET"], providers=[Credentials(authorize=authorize)])

# --8<-- [start:app]
app = FastAPI()
app.add_middleware(AuthMiddleware, config=config)


@app.get("/")
async def home(session: OptionalSession) -> dict[str, Any]:
    """Anyone: the session's JSON, or a hint where to sign in."""
    if session is None:
        return {"signedIn": False, "signIn": "/auth/signin"}
    return {"signedIn": True, **session.to_dict()}


@app.get("/me")
async def me(session: RequiredSession) -> dict[str, Any]:
    """Signed-in users only: anyone else gets 401."""
    return {"id": session.user.id, "name": session.user.name, "email": session.user.email}


# --8<-- [end:app]
