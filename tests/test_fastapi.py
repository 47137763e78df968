from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI

from asgi_session import AuthMiddleware, Session
from asgi_session.fastapi import (
    FreshSession,
    OptionalSession,
    RequiredSession,
    require_fresh_session,
)
from asgi_session.providers import Credentials
from tests.support import passwords
from tests.support.apps import SECRET, Clock, authorize, client_for, csrf_token, sign_in
from tests.support.two_factor import ALIGNED, answer, code_at, enrolled_user, two_factor_config


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


# -- fresh sessions (step-up) ---------------------------------------------------------------

REAUTHENTICATE = "/auth/reauthenticate?callbackUrl=http%3A%2F%2Ftestserver%2Fsettings"
PAGE = {"accept": "text/html"}


def _step_up_app(clock: Clock, strategy: Any = "jwt", **options: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/settings")
    async def settings(session: FreshSession) -> dict[str, Any]:
        return {"email": session.user.email}

    @app.get("/minute")
    async def minute(
        session: Annotated[Session, Depends(require_fresh_session(60))],
    ) -> dict[str, Any]:
        return {"email": session.user.email}

    app.add_middleware(
        AuthMiddleware, config=two_factor_config(clock, strategy=strategy, **options)
    )
    return app


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_fresh_session_dependency(strategy: Any) -> None:
    clock = Clock(ALIGNED)
    async with client_for(_step_up_app(clock, strategy)) as client:
        signed_out = await client.get("/settings", headers=PAGE)
        assert (signed_out.status_code, signed_out.json()) == (401, {"detail": "SessionRequired"})
        await passwords.sign_up(client)
        assert (await client.get("/settings")).json() == {"email": "ada@example.com"}
        clock.advance(61)
        assert (await client.get("/settings")).status_code == 200
        assert (await client.get("/minute")).json() == {"detail": "ReauthenticationRequired"}
        clock.advance(240)
        page = await client.get("/settings", headers=PAGE)
        assert (page.status_code, page.headers["location"]) == (303, REAUTHENTICATE)
        api = await client.get("/settings", headers={"accept": "application/json"})
        assert (api.status_code, api.json()) == (401, {"detail": "ReauthenticationRequired"})

        again = await client.post(
            "/auth/callback/password",
            data={
                "csrfToken": await csrf_token(client),
                "email": "ada@example.com",
                "password": passwords.GOOD_PASSWORD,
                "callbackUrl": "http://testserver/settings",
            },
        )
        assert again.headers["location"] == "http://testserver/settings"
        assert (await client.get("/settings", headers=PAGE)).json() == {"email": "ada@example.com"}
        assert (await client.get("/minute")).status_code == 200


async def test_fresh_session_follows_the_configured_fresh_age() -> None:
    clock = Clock(ALIGNED)
    async with client_for(_step_up_app(clock, config_fresh_age=30)) as client:
        await passwords.sign_up(client)
        clock.advance(30)
        assert (await client.get("/settings")).status_code == 200
        clock.advance(1)
        assert (await client.get("/settings")).status_code == 401


async def test_a_totp_code_makes_a_fresh_session_again() -> None:
    clock = Clock(ALIGNED)
    outbox = passwords.Outbox()
    async with client_for(_step_up_app(clock, outbox=outbox)) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        await passwords.sign_in(client)
        await answer(client, code_at(secret, clock.now))
        clock.advance(301)
        assert (await client.get("/settings")).status_code == 401
        proved = await client.post(
            "/auth/reauthenticate",
            data={
                "csrfToken": await csrf_token(client),
                "code": code_at(secret, clock.now),
                "callbackUrl": "http://testserver/settings",
            },
        )
        assert proved.headers["location"] == "http://testserver/settings"
        assert (await client.get("/settings")).json() == {"email": "ada@example.com"}
