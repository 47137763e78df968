from typing import Any

from fastapi import FastAPI

from asgi_session import AuthMiddleware
from asgi_session.fastapi import OptionalSession, RequiredSession
from asgi_session.providers import Credentials
from tests.support.apps import SECRET, Clock, authorize, client_for, sign_in


def _app(clock: Clock) -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    async def me(session: RequiredSession) -> dict[str, Any]:
        return {"id": session.user.id, "email": session.user.email}

    @app.get("/maybe")
    async def maybe(session: OptionalSession) -> dict[str, Any]:
        return {"signed_in": session is not None}

    app.add_middleware(
        AuthMiddleware, secret=SECRET, providers=[Credentials(authorize=authorize)], clock=clock
    )
    return app


async def test_required_session_dependency(clock: Clock) -> None:
    async with client_for(_app(clock)) as client:
        assert (await client.get("/me")).status_code == 401
        assert (await client.get("/maybe")).json() == {"signed_in": False}
        await sign_in(client)
        assert (await client.get("/me")).json() == {"id": "user-1", "email": "ann@example.com"}
        assert (await client.get("/maybe")).json() == {"signed_in": True}
