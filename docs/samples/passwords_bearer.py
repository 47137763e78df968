"""Bearer tokens for a command-line tool or a native app, beside the browser's cookies.

The client half uses HTTPX (``pip install httpx``).
"""

import os
from typing import Any

import httpx
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, requires_session
from asgi_session.backends import MongoDBAdapter
from asgi_session.providers import Password


def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To: {to}\nSubject: {subject}\n\n{text}\n", flush=True)


client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])

# --8<-- [start:server]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ.get("AUTH_URL", "http://localhost:8000"),
    adapter=MongoDBAdapter(client.get_default_database("app")),
    providers=[Password(send=send_email)],
    bearer_tokens=True,
)


@requires_session(redirect=False)
async def me(request: Request) -> Response:
    user = request.state.session.user
    return JSONResponse({"id": user.id, "email": user.email})


app = Starlette(
    routes=[Route("/api/me", me)],
    middleware=[Middleware(AuthMiddleware, config=config)],
)
# --8<-- [end:server]


# --8<-- [start:client]
async def sign_in(api: httpx.AsyncClient, email: str, password: str) -> str:
    """Trade an email and a password for a token (keep it in the OS keychain)."""
    response = await api.post(
        "/auth/token", json={"provider": "password", "email": email, "password": password}
    )
    response.raise_for_status()  # 401 {"error": "CredentialsSignin"} for a wrong password
    token: str = response.json()["token"]
    return token


async def whoami(api: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await api.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


async def sign_out(api: httpx.AsyncClient, token: str) -> None:
    response = await api.delete("/auth/token", headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()


# --8<-- [end:client]
