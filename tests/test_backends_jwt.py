"""The JWT strategy's own behaviour: its cache of resolved tokens and revocation."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_session import Callbacks
from asgi_session.backends import JWTStrategy, MemoryAdapter
from asgi_session.jwt import encode
from asgi_session.management import end_all_sessions
from tests.support.apps import SECRET, Clock, build_app, client_for, config_of, csrf_token, sign_in

SESSION_COOKIE = "authjs.session-token"
DAY = 24 * 60 * 60


async def test_resolved_tokens_are_bounded(clock: Clock) -> None:
    strategy = JWTStrategy(cache_size=3)
    async with client_for(build_app(clock=clock, strategy=strategy)) as client:
        for index in range(10):
            token = encode({"sub": f"u{index}"}, secret=SECRET, salt=SESSION_COOKIE, now=clock.now)
            response = await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})
            assert response.json()["id"] == f"u{index}"
    assert len(strategy._memos[False]) == 3


async def test_recently_used_tokens_stay_remembered(clock: Clock) -> None:
    strategy = JWTStrategy(cache_size=2)
    headers = [
        {"cookie": f"{SESSION_COOKIE}={encode({'sub': name}, secret=SECRET, salt=SESSION_COOKIE)}"}
        for name in ("a", "b", "c")
    ]
    async with client_for(build_app(clock=clock, strategy=strategy)) as client:
        await client.get("/", headers=headers[0])
        await client.get("/", headers=headers[1])
        await client.get("/", headers=headers[0])  # "a" is now the most recent
        await client.get("/", headers=headers[2])  # so "b" makes way
    remembered = {resolved.claims["sub"] for resolved in strategy._memos[False].values()}
    assert remembered == {"a", "c"}


@pytest.mark.parametrize("shaped", [False, True], ids=["shared", "session-callback"])
async def test_session_claims_are_read_only(clock: Clock, shaped: bool) -> None:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    def session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        token["sub"] = "changed-in-the-callback's-own-copy"
        return session

    async def mutate(request: Request) -> PlainTextResponse:
        with pytest.raises(TypeError):
            request.state.session.claims["sub"] = "someone-else"
        return PlainTextResponse(request.state.session.claims["sub"])

    app = build_app(clock=clock, callbacks=Callbacks(session=session) if shaped else Callbacks())
    app.router.routes.append(Route("/mutate", mutate))
    token = encode({"sub": "u1"}, secret=SECRET, salt=SESSION_COOKIE, now=clock.now)
    headers = {"cookie": f"{SESSION_COOKIE}={token}"}
    async with client_for(app) as client:
        for _ in range(2):  # the second request is served from what the first remembered
            assert (await client.get("/mutate", headers=headers)).text == "u1"


async def test_revocation_is_seen_on_remembered_tokens(clock: Clock) -> None:
    store = MemoryAdapter()
    app = build_app(clock=clock, adapter=store, strategy="jwt")
    async with client_for(app) as client:
        await sign_in(client)
        assert (await client.get("/")).json() is not None  # now remembered
        await end_all_sessions(config_of(app), "user-1")
        assert (await client.get("/")).json() is None


async def test_sign_in_in_the_same_second_as_a_revocation_survives_it(clock: Clock) -> None:
    store = MemoryAdapter()
    app = build_app(clock=clock, adapter=store, strategy="jwt")
    async with client_for(app) as old, client_for(app) as new:
        await sign_in(old)
        # A password reset: end every session, then sign in again, all within one second.
        await end_all_sessions(config_of(app), "user-1")
        await sign_in(new)
        assert (await old.get("/")).json() is None
        assert (await new.get("/")).json()["id"] == "user-1"
        clock.advance(DAY + 1)  # and it keeps working when re-issued
        assert (await new.get("/")).json()["id"] == "user-1"


async def test_revocation_needs_a_store(clock: Clock) -> None:
    from asgi_session.errors import UnsupportedOperationError

    app = build_app(clock=clock)
    async with client_for(app) as client:
        await sign_in(client)
        token = await csrf_token(client)
        response = await client.post("/auth/sessions/revoke-others", data={"csrfToken": token})
        assert response.status_code == 501
    with pytest.raises(UnsupportedOperationError, match="strategy='jwt'"):
        await end_all_sessions(config_of(app), "user-1")


async def test_revocation_checks_can_be_turned_off(clock: Clock) -> None:
    store = MemoryAdapter()
    strategy = JWTStrategy(revocation_check_interval=None)
    app = build_app(clock=clock, adapter=store, strategy=strategy)
    async with client_for(app) as client:
        await sign_in(client)
        await store.revoke_tokens_issued_before("user-1", _at(clock.now + 5))
        assert (await client.get("/")).json() is not None, "no store read at all"


def _at(seconds: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC)
