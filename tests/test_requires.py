from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from asgi_session import get_session
from tests.support.apps import client_for, sign_in


async def test_browser_is_sent_to_sign_in_and_back(client: Any) -> None:
    response = await client.get("/protected", headers={"accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/auth/signin?callbackUrl=http%3A%2F%2Ftestserver%2Fprotected"
    )


async def test_api_client_gets_401(client: Any) -> None:
    response = await client.get("/protected", headers={"accept": "application/json"})
    assert response.status_code == 401
    assert response.json() == {"error": "SessionRequired"}


async def test_signed_in_reaches_the_endpoint(client: Any) -> None:
    await sign_in(client)
    assert (await client.get("/protected")).text == "hello Ann"


async def test_get_session_without_middleware_is_an_error() -> None:
    async def handler(request: Request) -> PlainTextResponse:
        get_session(request)
        return PlainTextResponse("unreachable")

    app = Starlette(routes=[Route("/", handler)])
    async with client_for(app) as client:
        with pytest.raises(RuntimeError, match="add AuthMiddleware"):
            await client.get("/")
