"""A FastAPI service beside a Next.js app on Auth.js: one sign-in, one session for both.

The Next.js app serves https://example.com, this service https://api.example.com. Both
read AUTH_SECRET, and the session cookie is set for the parent domain, so a browser
signed in on either sends its session to both.
"""

import os
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request

from asgi_session import AuthConfig, AuthMiddleware, Callbacks
from asgi_session.fastapi import RequiredSession
from asgi_session.providers import Credentials

# --8<-- [start:users]
# Stands in for your user lookup: the same users the Next.js app's authorize checks.
DEMO_USERS = {
    "ada@example.com": {
        "id": "user-ada",
        "name": "Ada",
        "role": "admin",
        "password": "demo-password",
    },
}


async def authorize(credentials: dict[str, str], request: Request) -> dict[str, Any] | None:
    email = credentials.get("email", "").lower()
    user = DEMO_USERS.get(email)
    if user is None or user["password"] != credentials.get("password"):
        return None
    return {"id": user["id"], "name": user["name"], "email": email, "role": user["role"]}


# --8<-- [end:users]


# --8<-- [start:callbacks]
def jwt(token: dict[str, Any], user: dict[str, Any] | None) -> dict[str, Any]:
    if user is not None:  # at sign-in only, as in the Next.js app
        token["role"] = user.get("role")
    return token


def session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
    session["user"]["id"] = token["sub"]
    session["user"]["role"] = token.get("role")
    return session


# --8<-- [end:callbacks]

# --8<-- [start:config]
cookie_domain = os.environ.get("AUTH_COOKIE_DOMAIN")  # "example.com" in production

config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],  # the Next.js app's AUTH_SECRET
    url=os.environ.get("AUTH_URL", "https://api.example.com"),
    cookies={"session_token": {"domain": cookie_domain}} if cookie_domain else None,
    trusted_origins=[os.environ.get("NEXT_APP_ORIGIN", "https://example.com")],
    providers=[Credentials(authorize=authorize)],
    callbacks=Callbacks(jwt=jwt, session=session),
)
# --8<-- [end:config]

app = FastAPI()
app.add_middleware(AuthMiddleware, config=config)


@app.get("/api/me")
async def me(session: RequiredSession) -> dict[str, Any]:
    return {"id": session.user.id, "email": session.user.email, "role": session.user["role"]}
