"""Small ASGI apps and clients the core tests run against."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from asgi_session import AuthConfig, AuthMiddleware, requires_session
from asgi_session.providers import Credentials

SECRET = "test-secret-that-is-long-enough-0123456789"
#: The session cookie's name over plain http, as Auth.js names it.
SESSION_COOKIE = "authjs.session-token"
USERS = {
    "ann@example.com": {
        "id": "user-1",
        "name": "Ann",
        "email": "ann@example.com",
        "password": "pw-ann",
    },
}


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: float | None = None) -> None:
        self.now = float(int(time.time())) if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def authorize(credentials: Mapping[str, str], request: Request) -> dict[str, Any] | None:
    user = USERS.get(credentials.get("email", ""))
    if user is None or user["password"] != credentials.get("password"):
        return None
    return {key: value for key, value in user.items() if key != "password"}


async def show_session(request: Request) -> Response:
    session = request.state.session
    if session is None:
        return JSONResponse(None)
    return JSONResponse({"id": session.user.id, **session.to_dict()})


@requires_session
async def protected(request: Request) -> Response:
    return PlainTextResponse(f"hello {request.state.session.user.name}")


async def update_session(request: Request) -> Response:
    data = await request.json()
    await request.state.session.update(data)
    return JSONResponse(request.state.session.to_dict())


async def stream(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        for index in range(3):
            yield f"part {index}\n".encode()

    return StreamingResponse(body(), media_type="text/plain")


async def websocket_session(websocket: WebSocket) -> None:
    await websocket.accept()
    session = websocket.state.session
    await websocket.send_json(None if session is None else session.to_dict())
    await websocket.close()


def build_app(**options: Any) -> Starlette:
    """A Starlette app under AuthMiddleware with a credentials provider."""
    options.setdefault("secret", SECRET)
    options.setdefault("providers", [Credentials(authorize=authorize)])
    config = AuthConfig(**options)
    routes = [
        Route("/", show_session),
        Route("/protected", protected),
        Route("/update", update_session, methods=["POST"]),
        Route("/stream", stream),
        WebSocketRoute("/ws", websocket_session),
    ]
    return Starlette(routes=routes, middleware=[Middleware(AuthMiddleware, config=config)])


def config_of(app: Starlette) -> AuthConfig:
    """The config an app made by :func:`build_app` runs with."""
    config = app.user_middleware[0].kwargs["config"]
    assert isinstance(config, AuthConfig)
    return config


def client_for(app: Any, base_url: str = "http://testserver") -> httpx2.AsyncClient:
    """An HTTP client talking to ``app`` in-process, following no redirects."""
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=base_url)


async def csrf_token(client: httpx2.AsyncClient) -> str:
    response = await client.get("/auth/csrf")
    token: str = response.json()["csrfToken"]
    return token


async def sign_in(
    client: httpx2.AsyncClient,
    email: str = "ann@example.com",
    password: str = "pw-ann",
    **extra: str,
) -> httpx2.Response:
    token = await csrf_token(client)
    return await client.post(
        "/auth/callback/credentials",
        data={"csrfToken": token, "email": email, "password": password, **extra},
    )


def set_cookies(response: httpx2.Response) -> dict[str, str]:
    """``Set-Cookie`` headers of a response by cookie name."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        name = header.split("=", 1)[0]
        found[name] = header
    return found
