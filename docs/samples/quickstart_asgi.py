"""Any ASGI app: wrap it in AuthMiddleware and read the session from the scope."""

import json
import os
import secrets
from typing import Any

from starlette.requests import HTTPConnection, Request
from starlette.types import Receive, Scope, Send

from asgi_session import AuthConfig, AuthMiddleware, get_session
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


# --8<-- [start:app]
async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI app: no framework, one JSON answer for every path."""
    if scope["type"] != "http":
        return
    session = get_session(HTTPConnection(scope))  # or scope["state"]["session"]
    body: dict[str, str | None]
    if session is None:
        status, body = 401, {"error": "sign in at /auth/signin"}
    else:
        status, body = 200, {"hello": session.user.name}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


config = AuthConfig(secret=os.environ["AUTH_SECRET"], providers=[Credentials(authorize=authorize)])
app = AuthMiddleware(hello, config=config)
# --8<-- [end:app]
