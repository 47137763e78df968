"""Listing and ending a user's sessions from a handler, as the routes do it."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import MemoryAdapter
from asgi_session.errors import UnsupportedOperationError
from asgi_session.management import end_other_sessions, end_session, list_sessions
from asgi_session.providers import Credentials
from tests.support.apps import (
    SECRET,
    SESSION_COOKIE,
    Clock,
    authorize,
    client_for,
    set_cookies,
    sign_in,
)


async def _sign_out_elsewhere(request: Request) -> Response:
    before = request.state.session.claims.get("iat")
    await end_other_sessions(request)
    return JSONResponse({"before": before, "after": request.state.session.claims.get("iat")})


async def _end_own(request: Request) -> Response:
    [mine] = [info for info in await list_sessions(request) if info.current]
    return JSONResponse({"ended": await end_session(request, mine.id)})


async def _list(request: Request) -> Response:
    try:
        return JSONResponse([info.to_dict() for info in await list_sessions(request)])
    except UnsupportedOperationError as exc:
        return PlainTextResponse(str(exc), status_code=501)


async def _update_while_streaming(request: Request) -> Response:
    session = request.state.session

    async def body() -> Any:
        yield b"first part\n"
        try:
            await session.update({"theme": "dark"})
        except RuntimeError:
            yield b"refused"
        else:
            yield b"stored"

    return StreamingResponse(body())


def _app(clock: Clock, **options: Any) -> Starlette:
    config = AuthConfig(
        secret=SECRET, clock=clock, providers=[Credentials(authorize=authorize)], **options
    )
    routes = [
        Route("/elsewhere", _sign_out_elsewhere, methods=["POST"]),
        Route("/end-own", _end_own, methods=["POST"]),
        Route("/list", _list),
        Route("/stream", _update_while_streaming),
    ]
    return Starlette(routes=routes, middleware=[Middleware(AuthMiddleware, config=config)])


async def test_signing_out_elsewhere_reissues_this_jwt_for_the_handler(clock: Clock) -> None:
    app = _app(clock, adapter=MemoryAdapter(), strategy="jwt")
    async with client_for(app) as laptop, client_for(app) as phone:
        await sign_in(laptop)
        await sign_in(phone)
        clock.advance(5)
        response = await laptop.post("/elsewhere")
        times = response.json()
        # The handler's session is the re-issued one, dated after the cut-off.
        assert times["after"] > times["before"]
        assert SESSION_COOKIE in response.cookies
        assert (await phone.get("/auth/session")).json() is None
        assert (await laptop.get("/auth/session")).json() is not None


async def test_ending_this_very_session_clears_its_cookie(clock: Clock) -> None:
    app = _app(clock, adapter=MemoryAdapter())
    async with client_for(app) as client:
        await sign_in(client)
        response = await client.post("/end-own")
        assert response.json() == {"ended": True}
        cleared = set_cookies(response)[SESSION_COOKIE]
        assert "Max-Age=0" in cleared
        assert (await client.get("/auth/session")).json() is None


async def test_jwt_sessions_cannot_be_listed(clock: Clock) -> None:
    app = _app(clock)
    async with client_for(app) as client:
        await sign_in(client)
        response = await client.get("/list")
        assert response.status_code == 501
        assert "cannot be listed" in response.text


@pytest.mark.parametrize(("strategy", "outcome"), [("database", "stored"), ("jwt", "refused")])
async def test_updates_while_streaming(clock: Clock, strategy: str, outcome: str) -> None:
    # A stored session changes without a new cookie, so it may change mid-stream; a JWT
    # would need a Set-Cookie header that has already gone.
    app = _app(clock, adapter=MemoryAdapter(), strategy=strategy)
    async with client_for(app) as client:
        await sign_in(client)
        response = await client.get("/stream")
        assert response.text == f"first part\n{outcome}"
