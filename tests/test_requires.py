from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from asgi_session import Callbacks, get_session, requires_session
from tests.support import passwords
from tests.support.apps import Clock, client_for, csrf_token, sign_in
from tests.support.two_factor import (
    ALIGNED,
    MFA_URL,
    answer,
    code_at,
    enrolled_user,
    two_factor_app,
)


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


# -- fresh sessions (step-up) ---------------------------------------------------------------


@requires_session(fresh=300)
async def _fresh(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"fresh {request.state.session.user.email}")


async def _auth_time(request: Request) -> JSONResponse:
    session = request.state.session
    record, claims = session.record, session.claims
    return JSONResponse(
        {
            "auth_time": session.auth_time,
            "claim": None if claims is None else claims.get("auth_time"),
            "created_at": (
                None
                if record is None or record.created_at is None
                else record.created_at.timestamp()
            ),
        }
    )


FRESH_URL = "http://testserver/fresh"
REAUTHENTICATE = "/auth/reauthenticate?callbackUrl=http%3A%2F%2Ftestserver%2Ffresh"
PAGE = {"accept": "text/html"}


def _step_up_app(clock: Clock, strategy: Any, outbox: passwords.Outbox) -> Starlette:
    return two_factor_app(
        clock,
        outbox=outbox,
        strategy=strategy,
        routes=[
            Route("/fresh", _fresh, methods=["GET", "POST"]),
            Route("/auth-time", _auth_time),
        ],
    )


async def _reaches(client: httpx2.AsyncClient) -> bool:
    response = await client.get("/fresh", headers=PAGE)
    if response.status_code == 200:
        assert response.text == "fresh ada@example.com"
        return True
    assert (response.status_code, response.headers["location"]) == (303, REAUTHENTICATE)
    return False


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_session_is_fresh_for_the_seconds_asked_then_sent_to_reauthenticate(
    strategy: Any,
) -> None:
    clock = Clock(ALIGNED)
    outbox = passwords.Outbox()
    async with client_for(_step_up_app(clock, strategy, outbox)) as client:
        await passwords.sign_up(client)
        assert await _reaches(client)
        clock.advance(300)
        assert await _reaches(client)
        clock.advance(1)
        assert not await _reaches(client)
        for refused in (
            await client.get("/fresh", headers={"accept": "application/json"}),
            await client.post("/fresh", headers=PAGE),
        ):
            assert refused.status_code == 401
            assert refused.json() == {"error": "ReauthenticationRequired"}
        # Still signed in: it is freshness, not the session, that is missing.
        assert await passwords.whoami(client) == "ada@example.com"


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_the_password_again_makes_the_session_fresh(strategy: Any) -> None:
    clock = Clock(ALIGNED)
    outbox = passwords.Outbox()
    async with client_for(_step_up_app(clock, strategy, outbox)) as client:
        await passwords.sign_up(client)
        clock.advance(301)
        assert not await _reaches(client)
        page = await client.get(REAUTHENTICATE)
        assert page.status_code == 200
        assert 'action="http://testserver/auth/callback/password"' in page.text
        assert f'<input type=hidden name="callbackUrl" value="{FRESH_URL}">' in page.text

        async def password(value: str) -> httpx2.Response:
            return await client.post(
                "/auth/callback/password",
                data={
                    "csrfToken": await csrf_token(client),
                    "email": "ada@example.com",
                    "password": value,
                    "callbackUrl": FRESH_URL,
                },
            )

        wrong = await password("not the password at all")
        assert "error=CredentialsSignin" in wrong.headers["location"]
        assert not await _reaches(client)
        right = await password(passwords.GOOD_PASSWORD)
        assert (right.status_code, right.headers["location"]) == (302, FRESH_URL)
        assert await _reaches(client)


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_totp_code_again_makes_the_session_fresh(strategy: Any) -> None:
    clock = Clock(ALIGNED)
    outbox = passwords.Outbox()
    async with client_for(_step_up_app(clock, strategy, outbox)) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        await passwords.sign_in(client)
        await answer(client, code_at(secret, clock.now))
        clock.advance(301)
        assert not await _reaches(client)

        async def code(value: str) -> httpx2.Response:
            return await client.post(
                "/auth/reauthenticate",
                data={
                    "csrfToken": await csrf_token(client),
                    "code": value,
                    "callbackUrl": FRESH_URL,
                },
            )

        wrong = await code("000000")
        assert wrong.status_code == 200 and 'data-error="InvalidCode"' in wrong.text
        assert not await _reaches(client)
        right = await code(code_at(secret, clock.now))
        assert (right.status_code, right.headers["location"]) == (302, FRESH_URL)
        assert await _reaches(client)
        # The password alone, for a user with a second factor, asks for the code too.
        clock.advance(301)
        asked = await client.post(
            "/auth/callback/password",
            data={
                "csrfToken": await csrf_token(client),
                "email": "ada@example.com",
                "password": passwords.GOOD_PASSWORD,
                "callbackUrl": FRESH_URL,
            },
        )
        assert asked.headers["location"] == MFA_URL
        assert not await _reaches(client)
        done = await answer(client, code_at(secret, clock.now))
        assert done.headers["location"] == FRESH_URL
        assert await _reaches(client)


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_auth_time_is_when_the_session_signed_in(strategy: Any) -> None:
    clock = Clock(ALIGNED)
    outbox = passwords.Outbox()
    async with client_for(_step_up_app(clock, strategy, outbox)) as client:
        await passwords.sign_up(client)
        signed_in_at = clock.now
        clock.advance(120)
        shown = (await client.get("/auth-time")).json()
        if strategy == "jwt":
            assert shown == {"auth_time": signed_in_at, "claim": signed_in_at, "created_at": None}
        else:
            assert shown == {"auth_time": signed_in_at, "claim": None, "created_at": signed_in_at}
        # A re-issued token (an update) keeps it.
        updated = await client.post(
            "/auth/session", json={"csrfToken": await csrf_token(client), "data": {"x": 1}}
        )
        assert updated.status_code == 200
        if strategy == "jwt":
            assert passwords.signed_in(updated)  # a new token, its claims made again
        assert (await client.get("/auth-time")).json()["auth_time"] == signed_in_at
        await passwords.sign_in(client)
        assert (await client.get("/auth-time")).json()["auth_time"] == clock.now


async def test_no_client_can_make_its_jwt_fresh_through_the_jwt_callback() -> None:
    """An app whose ``jwt`` callback merges what a client sent to ``POST /auth/session``
    (a common pattern) still cannot be told a new ``auth_time``: the claim is the
    sign-in's, whatever the callback returns."""

    def merge_updates(
        token: dict[str, Any], trigger: str | None = None, session: Any = None, **_: Any
    ) -> dict[str, Any]:
        if trigger == "update" and isinstance(session, dict):
            token.update(session)
        return token

    clock = Clock(ALIGNED)
    outbox = passwords.Outbox()
    app = two_factor_app(
        clock,
        outbox=outbox,
        config_callbacks=Callbacks(jwt=merge_updates),
        routes=[Route("/fresh", _fresh), Route("/auth-time", _auth_time)],
    )
    async with client_for(app) as client:
        await passwords.sign_up(client)
        signed_in_at = (await client.get("/auth-time")).json()["claim"]
        clock.advance(301)
        updated = await client.post(
            "/auth/session",
            json={"csrfToken": await csrf_token(client), "data": {"auth_time": clock.now, "x": 1}},
        )
        after = (await client.get("/auth-time")).json()["claim"]
        reached = await _reaches(client)

    assert updated.status_code == 200
    assert signed_in_at == int(ALIGNED)
    assert after == signed_in_at
    assert not reached
