"""The Next.js app's auth.config.ts, option for option, as a Python service."""

import logging
import os
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, Callbacks, Events, Pages
from asgi_session.providers import Credentials, GitHub

audit = logging.getLogger("audit")  # stands in for your audit log

# Stands in for your user lookup.
DEMO_USERS = {
    "ada@example.com": {
        "id": "user-ada",
        "name": "Ada",
        "role": "admin",
        "password": "demo-password",
    },
    "eve@blocked.example": {
        "id": "user-eve",
        "name": "Eve",
        "role": "member",
        "password": "demo-password",
    },
}


async def authorize(credentials: dict[str, str], request: Request) -> dict[str, Any] | None:
    email = credentials.get("email", "").lower()
    user = DEMO_USERS.get(email)
    if user is None or user["password"] != credentials.get("password"):
        return None
    return {"id": user["id"], "name": user["name"], "email": email, "role": user["role"]}


# --8<-- [start:callbacks]
def sign_in(user: dict[str, Any]) -> bool:
    return not str(user.get("email") or "").endswith("@blocked.example")


def jwt(
    token: dict[str, Any],
    user: dict[str, Any] | None,
    trigger: str | None,
    session: dict[str, Any] | None,
) -> dict[str, Any]:
    if user is not None:
        token["role"] = user.get("role")
    if trigger == "update" and session and session.get("theme"):
        token["theme"] = session["theme"]
    return token


def session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    session["user"]["id"] = token["sub"]
    session["user"]["role"] = token.get("role")
    if token.get("theme"):
        session["theme"] = token["theme"]
    return session


def signed_in(user: dict[str, Any]) -> None:
    audit.info("sign-in %s", user["id"])


# --8<-- [end:callbacks]

# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],  # AUTH_SECRET, as in Next.js
    base_path="/api/auth",  # Next.js's paths: callback URLs and clients stay as they are
    trust_host=True,  # trustHost: true
    allowed_hosts=[os.environ.get("APP_HOST", "example.com")],  # what trustHost never checked
    providers=[Credentials(authorize=authorize), GitHub()],  # AUTH_GITHUB_ID / _SECRET
    max_age=7 * 24 * 60 * 60,  # session.maxAge
    update_age=60 * 60,  # session.updateAge
    pages=Pages(sign_in="/login", error="/login/error", new_user="/welcome"),
    callbacks=Callbacks(sign_in=sign_in, jwt=jwt, session=session),
    events=Events(sign_in=signed_in),
)
# --8<-- [end:config]


async def me(request: Request) -> Response:
    session = request.state.session
    return JSONResponse(None if session is None else session.to_dict())


app = Starlette(routes=[Route("/me", me)], middleware=[Middleware(AuthMiddleware, config=config)])
