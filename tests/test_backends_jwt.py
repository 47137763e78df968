"""The JWT strategy's own behaviour: its cache of resolved tokens and revocation."""

from __future__ import annotations

import gc
import sys
import types
from typing import Any

import pytest

from asgi_session import Callbacks
from asgi_session._session import copy_json
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


# -- what the cache of resolved tokens may hold --------------------------------------------


def _held_bytes(memo: Any) -> int:
    """What ``memo`` holds, by sys.getsizeof over every object it reaches (each once)."""
    seen: set[int] = set()
    pending: list[Any] = [memo]
    total = 0
    while pending:
        item = pending.pop()
        if id(item) in seen or isinstance(item, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        pending.extend(gc.get_referents(item))
    return total


def _junk_headers(token: str, count: int, size: int) -> list[str]:
    # What anyone holding one session can send: its cookie, then a cookie of junk, a
    # different one each time.
    filler = size - len(token) - 64
    return [f"{SESSION_COOKIE}={token}; junk{index}={'x' * filler}" for index in range(count)]


async def test_a_flood_of_large_cookie_headers_stays_within_the_byte_budget(
    clock: Clock,
) -> None:
    budget = 128 * 1024
    strategy = JWTStrategy(cache_bytes=budget)
    token = encode({"sub": "u1"}, secret=SECRET, salt=SESSION_COOKIE, now=clock.now)
    headers = _junk_headers(token, 100, 7 * 1024)
    async with client_for(build_app(clock=clock, strategy=strategy)) as client:
        for header in headers:
            assert (await client.get("/", headers={"cookie": header})).json()["id"] == "u1"
    memo = strategy._memos[False]
    assert 0 < len(memo) < 100, "the budget, not the entry count, made headers go"
    assert memo.bytes <= budget
    assert _held_bytes(memo) <= budget
    assert headers[-1].encode() in memo, "the latest header is remembered"


async def test_distinct_signed_in_users_stay_within_the_byte_budget(clock: Clock) -> None:
    budget = 64 * 1024
    strategy = JWTStrategy(cache_bytes=budget)
    claims = {"name": "Ann", "email": "ann@example.com", "picture": "https://example.com/a.png"}
    async with client_for(build_app(clock=clock, strategy=strategy)) as client:
        for index in range(60):
            user = {**claims, "sub": f"user-{index}"}
            token = encode(user, secret=SECRET, salt=SESSION_COOKIE, now=clock.now)
            response = await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})
            assert response.json()["id"] == f"user-{index}"  # the JSON, expiry included
    memo = strategy._memos[False]
    assert 0 < len(memo) < 60
    assert memo.bytes <= budget
    assert _held_bytes(memo) <= budget


async def test_the_byte_count_follows_what_is_forgotten(clock: Clock) -> None:
    strategy = JWTStrategy()
    app = build_app(clock=clock, strategy=strategy)
    expired = encode({"sub": "u1"}, secret=SECRET, salt=SESSION_COOKIE, max_age=60, now=clock.now)
    async with client_for(app) as client:
        await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={expired}"})
        assert strategy._memos[False].bytes > 0
        clock.advance(120)  # the remembered token expires, and is dropped
        response = await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={expired}"})
        assert response.json() is None
    assert len(strategy._memos[False]) == 0
    assert strategy._memos[False].bytes == 0


async def test_revocation_cutoffs_are_bounded_in_bytes(clock: Clock) -> None:
    budget = 4 * 1024
    strategy = JWTStrategy(cache_bytes=budget)
    app = build_app(clock=clock, adapter=MemoryAdapter(), strategy=strategy)
    async with client_for(app) as client:
        for index in range(40):
            sub = f"{index:04d}" + "u" * 200  # long ids: the bytes bound, not the entries
            token = encode({"sub": sub}, secret=SECRET, salt=SESSION_COOKIE, now=clock.now)
            response = await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})
            assert response.json()["id"] == sub
    assert 0 < len(strategy._cutoffs) < 40
    assert strategy._cutoff_bytes <= budget
    assert sum(sys.getsizeof(user_id) for user_id in strategy._cutoffs) <= budget


# -- the session callback --------------------------------------------------------------------


async def test_the_session_callback_runs_on_every_request(clock: Clock) -> None:
    calls = []

    async def session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        calls.append(token["sub"])
        session["user"]["id"] = token["sub"]
        session["user"]["calls"] = len(calls)  # what it adds may change each time
        return session

    app = build_app(clock=clock, callbacks=Callbacks(session=session))
    token = encode({"sub": "u1", "name": "Ann"}, secret=SECRET, salt=SESSION_COOKIE, now=clock.now)
    async with client_for(app) as client:
        for expected in (1, 2, 3):
            response = await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})
            body = response.json()
            assert body["user"] == {"name": "Ann", "id": "u1", "calls": expected}
            assert body["expires"].endswith("Z")
    assert calls == ["u1", "u1", "u1"]


async def test_what_the_session_callback_changes_stays_with_its_request(clock: Clock) -> None:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        token["roles"].append("seen")  # the callback's own copy of the claims
        session["user"]["roles"] = token["roles"]
        session["extra"] = {"nested": ["a"]}
        return session

    async def mutate(request: Request) -> JSONResponse:
        current = request.state.session
        current.user.roles.append("handler")  # a copy: the session is read-only
        current["extra"]["nested"].append("b")
        return JSONResponse(
            {
                "roles": current.user.roles,
                "extra": current["extra"],
                "claims": list(current.claims["roles"]),
            }
        )

    app = build_app(clock=clock, callbacks=Callbacks(session=session))
    app.router.routes.append(Route("/mutate", mutate))
    claims = {"sub": "u1", "roles": ["admin"]}
    token = encode(claims, secret=SECRET, salt=SESSION_COOKIE, now=clock.now)
    async with client_for(app) as client:
        for _ in range(3):  # served from what the first request remembered
            response = await client.get("/mutate", headers={"cookie": f"{SESSION_COOKIE}={token}"})
            assert response.json() == {
                "roles": ["admin", "seen"],
                "extra": {"nested": ["a"]},
                "claims": ["admin"],
            }


async def test_a_session_callback_returning_a_mapping_it_keeps(clock: Clock) -> None:
    from types import MappingProxyType

    kept: dict[str, Any] = {"user": {"name": "Kept"}, "theme": "dark"}

    def session(session: dict[str, Any], token: dict[str, Any]) -> Any:
        return MappingProxyType(kept)  # not a dict, and not its to give away

    app = build_app(clock=clock, callbacks=Callbacks(session=session))
    token = encode({"sub": "u1"}, secret=SECRET, salt=SESSION_COOKIE, now=clock.now)
    async with client_for(app) as client:
        for _ in range(2):
            body = (await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})).json()
            assert body["user"] == {"name": "Kept"}
            assert body["theme"] == "dark"
            assert body["id"] == "u1"
    assert kept == {"user": {"name": "Kept"}, "theme": "dark"}, "expires was not added to it"


async def test_the_session_callback_gets_a_fresh_default_and_cannot_move_the_expiry(
    clock: Clock,
) -> None:
    given: list[dict[str, Any]] = []

    def session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        given.append(copy_json(session))
        session["user"].pop("name")
        session["user"]["email"] = "changed@example.com"
        session["expires"] = "2999-01-01T00:00:00.000Z"
        return session

    app = build_app(clock=clock, callbacks=Callbacks(session=session))
    claims = {"sub": "u1", "name": "Ann", "email": "ann@example.com"}
    token = encode(claims, secret=SECRET, salt=SESSION_COOKIE, now=clock.now)
    async with client_for(app) as client:
        for _ in range(3):
            body = (await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})).json()
            assert body["user"] == {"email": "changed@example.com"}
            assert body["expires"] == given[0]["expires"] != "2999-01-01T00:00:00.000Z"
    assert [entry["user"] for entry in given] == [{"name": "Ann", "email": "ann@example.com"}] * 3
