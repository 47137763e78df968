"""Database sessions end to end: the middleware, the routes and a real mongod."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from asgi_session.backends import DatabaseStrategy
from asgi_session.backends.mongodb import MongoDBAdapter
from tests.support.apps import (
    Clock,
    build_app,
    client_for,
    config_of,
    csrf_token,
    set_cookies,
    sign_in,
)

SESSION_COOKIE = "authjs.session-token"
DAY = 24 * 60 * 60


@pytest.fixture
async def db_client(adapter: MongoDBAdapter, clock: Clock) -> AsyncIterator[Any]:
    async with client_for(build_app(clock=clock, adapter=adapter)) as http:
        yield http


async def _sessions(mongo_db: Any) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = await mongo_db.sessions.find().to_list(None)
    return documents


async def test_adapter_means_database_strategy(adapter: MongoDBAdapter) -> None:
    config = config_of(build_app(adapter=adapter))
    assert config.strategy.name == "database"
    assert isinstance(config.strategy, DatabaseStrategy)
    assert config.adapter is adapter


async def test_sign_in_stores_a_session_and_sets_an_opaque_token(
    db_client: Any, mongo_db: Any, clock: Clock
) -> None:
    response = await sign_in(db_client)
    assert response.status_code == 302
    token = db_client.cookies[SESSION_COOKIE]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token), "32 random bytes, not a JWT"
    [stored] = await _sessions(mongo_db)
    assert stored["sessionToken"] == token
    assert stored["expires"] == datetime.fromtimestamp(clock.now + 30 * DAY, UTC).replace(
        tzinfo=None
    )
    assert stored["createdAt"] is not None
    assert stored["userAgent"]
    [user] = await mongo_db.users.find().to_list(None)
    assert user["email"] == "ann@example.com"
    assert stored["userId"] == user["_id"]
    body = (await db_client.get("/")).json()
    assert body["id"] == str(user["_id"])
    assert body["user"] == {"name": "Ann", "email": "ann@example.com"}


async def test_credentials_user_is_found_again_by_email(db_client: Any, mongo_db: Any) -> None:
    await sign_in(db_client)
    await sign_in(db_client)
    assert await mongo_db.users.count_documents({}) == 1
    assert await mongo_db.sessions.count_documents({}) == 1, "the previous session is ended"


async def test_invented_or_malformed_tokens_are_no_session(db_client: Any) -> None:
    for value in ("A" * 43, "x" * 10_000, "not-an-objectid", "é", "{$ne: 1}"):
        response = await db_client.get(
            "/", headers={"cookie": f"{SESSION_COOKIE}={value}".encode()}
        )
        assert response.status_code == 200
        assert response.json() is None


async def test_expired_session_is_none_and_removed(
    db_client: Any, mongo_db: Any, clock: Clock
) -> None:
    await sign_in(db_client)
    clock.advance(30 * DAY + 1)
    response = await db_client.get("/")
    assert response.json() is None
    assert "Max-Age=0" in set_cookies(response)[SESSION_COOKIE]
    assert await mongo_db.sessions.count_documents({}) == 0


async def test_expiry_is_extended_at_most_once_per_update_age(
    db_client: Any, mongo_db: Any, clock: Clock
) -> None:
    await sign_in(db_client)
    [before] = await _sessions(mongo_db)
    clock.advance(DAY - 5)
    response = await db_client.get("/")
    assert "set-cookie" not in response.headers
    assert (await _sessions(mongo_db))[0]["expires"] == before["expires"]
    clock.advance(10)
    response = await db_client.get("/")
    [after] = await _sessions(mongo_db)
    assert after["expires"] > before["expires"]
    cookie_expires = parsedate_to_datetime(
        set_cookies(response)[SESSION_COOKIE].split("Expires=")[1].split(";")[0]
    )
    stored_expires = after["expires"].replace(tzinfo=UTC)
    assert abs((cookie_expires - stored_expires).total_seconds()) < 1
    assert after["lastSeenAt"] > before["lastSeenAt"]


async def test_sign_out_deletes_the_row(db_client: Any, mongo_db: Any) -> None:
    await sign_in(db_client)
    token = await csrf_token(db_client)
    await db_client.post("/auth/signout", data={"csrfToken": token})
    assert await mongo_db.sessions.count_documents({}) == 0
    assert (await db_client.get("/auth/session")).json() is None


async def test_server_side_update_is_stored(adapter: MongoDBAdapter, clock: Clock) -> None:
    from asgi_session import Callbacks

    def session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        session["theme"] = token.get("theme")
        return session

    app = build_app(clock=clock, adapter=adapter, callbacks=Callbacks(session=session))
    async with client_for(app) as client:
        await sign_in(client)
        assert (await client.post("/update", json={"theme": "dark"})).json()["theme"] == "dark"
        assert (await client.get("/")).json()["theme"] == "dark"


class _CommandCounter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_one_round_trip_to_read_and_no_write_within_update_age(
    mongodb_url: str, mongo_db_name: str, clock: Clock
) -> None:
    counter = _CommandCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongodb_url, event_listeners=[counter]
    )
    try:
        # Uncached; what the cache reads is counted in test_backends_session_cache.py.
        app = build_app(
            clock=clock,
            adapter=MongoDBAdapter(client[mongo_db_name]),
            strategy=DatabaseStrategy(cache=False),
        )
        async with client_for(app) as http:
            await sign_in(http)
            counter.commands.clear()
            for _ in range(3):
                assert (await http.get("/")).json() is not None
            assert counter.commands == ["aggregate"] * 3
            counter.commands.clear()
            clock.advance(DAY + 1)
            await http.get("/")
            assert counter.commands == ["aggregate", "findAndModify"]
    finally:
        await client.close()


# -- a user's sessions -------------------------------------------------------------------


async def test_list_and_end_sessions_across_browsers(adapter: MongoDBAdapter, clock: Clock) -> None:
    app = build_app(clock=clock, adapter=adapter)
    async with client_for(app) as laptop, client_for(app) as phone, client_for(app) as tablet:
        await sign_in(laptop)
        clock.advance(1)
        await sign_in(phone)
        clock.advance(1)
        await sign_in(tablet)
        listing = (await laptop.get("/auth/sessions")).json()
        assert len(listing) == 3
        assert sum(entry["current"] for entry in listing) == 1
        assert all(
            set(entry) == {"id", "createdAt", "lastSeenAt", "expires", "userAgent", "current"}
            for entry in listing
        )
        assert not any(laptop.cookies[SESSION_COOKIE] in str(entry) for entry in listing)
        # newest first: the tablet, then the phone, then this laptop
        assert listing[2]["current"] is True

        token = await csrf_token(laptop)
        phone_id = listing[1]["id"]
        ended = await laptop.post(
            "/auth/sessions/revoke", data={"csrfToken": token, "id": phone_id}
        )
        assert ended.json() == {"ok": True}
        assert (await phone.get("/")).json() is None, "ended on its very next request"
        assert (await tablet.get("/")).json() is not None

        again = await laptop.post(
            "/auth/sessions/revoke", data={"csrfToken": token, "id": phone_id}
        )
        assert again.status_code == 404

        others = await laptop.post("/auth/sessions/revoke-others", data={"csrfToken": token})
        assert others.json() == {"ok": True}
        assert (await tablet.get("/")).json() is None
        assert (await laptop.get("/")).json() is not None
        assert len((await laptop.get("/auth/sessions")).json()) == 1


async def test_session_routes_need_csrf_and_a_session(db_client: Any) -> None:
    assert (await db_client.get("/auth/sessions")).status_code == 401
    await sign_in(db_client)
    response = await db_client.post("/auth/sessions/revoke-others", data={"csrfToken": "x"})
    assert response.status_code == 403
    response = await db_client.post("/auth/sessions/unknown", data={})
    assert response.status_code == 404


async def test_cannot_end_another_users_session(adapter: MongoDBAdapter, clock: Clock) -> None:
    app = build_app(clock=clock, adapter=adapter)
    async with client_for(app) as ann:
        await sign_in(ann)
        other_user = await adapter.create_user({"name": "Cy", "email": "cy@example.com"})
        now = datetime.now(UTC)
        record = await adapter.create_session(
            {
                "session_token": "cy-token-" + "x" * 34,
                "user_id": other_user.id,
                "expires": now + timedelta(days=1),
                "created_at": now,
            }
        )
        token = await csrf_token(ann)
        response = await ann.post(
            "/auth/sessions/revoke", data={"csrfToken": token, "id": record.id}
        )
        assert response.status_code == 404
        assert await adapter.get_session_and_user(record.session_token) is not None


# -- JWT sessions with users in MongoDB ---------------------------------------------------


async def test_jwt_strategy_with_adapter_and_revocation(
    adapter: MongoDBAdapter, clock: Clock
) -> None:
    from asgi_session.backends import JWTStrategy

    def make_app() -> Any:
        return build_app(
            clock=clock,
            adapter=adapter,
            strategy=JWTStrategy(revocation_check_interval=30),
        )

    app, other_instance = make_app(), make_app()
    async with (
        client_for(app) as laptop,
        client_for(app) as phone,
        client_for(other_instance) as phone_elsewhere,
    ):
        await sign_in(laptop)
        await sign_in(phone)
        assert laptop.cookies[SESSION_COOKIE].count(".") == 4, "a JWE, not a database token"
        phone_elsewhere.cookies.set(
            SESSION_COOKIE, phone.cookies[SESSION_COOKIE], domain="testserver.local"
        )
        assert (await phone_elsewhere.get("/")).json() is not None
        token = await csrf_token(laptop)
        response = await laptop.post("/auth/sessions/revoke-others", data={"csrfToken": token})
        assert response.json() == {"ok": True}
        assert SESSION_COOKIE in set_cookies(response), "the kept session is re-issued"
        assert (await phone.get("/")).json() is None, "this instance knows at once"
        assert (await laptop.get("/")).json() is not None
        assert (await phone_elsewhere.get("/")).json() is not None, "cached cut-off"
        clock.advance(31)
        assert (await phone_elsewhere.get("/")).json() is None, "seen within the interval"
        assert (await laptop.get("/")).json() is not None
        assert (await laptop.get("/auth/sessions")).status_code == 501


async def test_end_all_sessions_from_anywhere(adapter: MongoDBAdapter, clock: Clock) -> None:
    from asgi_session.management import end_all_sessions

    app = build_app(clock=clock, adapter=adapter)
    config = config_of(app)
    async with client_for(app) as laptop, client_for(app) as phone:
        await sign_in(laptop)
        await sign_in(phone)
        user_id = (await laptop.get("/")).json()["id"]
        await end_all_sessions(config, user_id)
        assert (await laptop.get("/")).json() is None
        assert (await phone.get("/")).json() is None


# -- failure ---------------------------------------------------------------------------------


async def test_database_down_is_a_quick_503_and_recovers(mongod_server: Any, clock: Clock) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongod_server.url, serverSelectionTimeoutMS=30_000
    )
    try:
        adapter = MongoDBAdapter(client["outage_test"], operation_timeout=2)
        # Uncached, so the very first request after the stop reads the database; the
        # cache through an outage is tested in test_backends_session_cache.py.
        app = build_app(clock=clock, adapter=adapter, strategy=DatabaseStrategy(cache=False))
        async with client_for(app) as http:
            await sign_in(http)
            assert (await http.get("/")).json() is not None
            mongod_server.stop()
            try:
                started = time.monotonic()
                for path in ("/", "/auth/session"):
                    response = await http.get(path)
                    assert response.status_code == 503
                    assert "session store" in response.text
                assert time.monotonic() - started < 10
                failed = await sign_in(http)
                assert failed.status_code == 503
            finally:
                mongod_server.start()
            for _ in range(50):
                response = await http.get("/")
                if response.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            assert response.status_code == 200
            assert response.json() is not None, "the session survived the outage"
    finally:
        await client.drop_database("outage_test")
        await client.close()


async def test_simultaneous_first_sign_ins_make_one_user(
    adapter: MongoDBAdapter, clock: Clock, mongo_db: Any
) -> None:
    # Eight sign-ins at once for one identifier are more than its rate limit lets be
    # checked at once; this test is about the store, so the limits are off.
    app = build_app(clock=clock, adapter=adapter, rate_limits=None)
    clients = [client_for(app) for _ in range(8)]
    try:
        tokens = [await csrf_token(client) for client in clients]
        responses = await asyncio.gather(
            *(
                client.post(
                    "/auth/callback/credentials",
                    data={"csrfToken": token, "email": "ann@example.com", "password": "pw-ann"},
                )
                for client, token in zip(clients, tokens, strict=True)
            )
        )
        assert all(SESSION_COOKIE in set_cookies(response) for response in responses)
        assert await mongo_db.users.count_documents({}) == 1
        assert await mongo_db.sessions.count_documents({}) == 8
    finally:
        for client in clients:
            await client.aclose()


async def test_update_of_a_session_ended_meanwhile_raises(
    adapter: MongoDBAdapter, clock: Clock
) -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from asgi_session import AuthConfig, AuthMiddleware, SessionEndedError
    from asgi_session.management import end_all_sessions
    from asgi_session.providers import Credentials
    from tests.support.apps import authorize

    config = AuthConfig(
        secret="s" * 32, adapter=adapter, clock=clock, providers=[Credentials(authorize=authorize)]
    )

    async def race(request: Request) -> PlainTextResponse:
        session = request.state.session
        await end_all_sessions(config, session.user.id)  # e.g. from another device
        try:
            await session.update({"theme": "dark"})
        except SessionEndedError:
            return PlainTextResponse("ended")
        return PlainTextResponse("updated")

    app = Starlette(
        routes=[Route("/race", race)], middleware=[Middleware(AuthMiddleware, config=config)]
    )
    async with client_for(app) as client:
        await sign_in(client)
        assert (await client.get("/race")).text == "ended"


async def test_credentials_user_without_email_is_the_same_user_every_time(
    adapter: MongoDBAdapter, clock: Clock, mongo_db: Any
) -> None:
    from asgi_session.providers import Credentials

    def employee(credentials: Any, request: Any) -> dict[str, str]:
        return {"id": "emp-42", "name": "Employee 42"}

    app = build_app(clock=clock, adapter=adapter, providers=[Credentials(authorize=employee)])
    async with client_for(app) as client:
        for _ in range(3):
            response = await sign_in(client)
            assert SESSION_COOKIE in set_cookies(response)
        assert await mongo_db.users.count_documents({}) == 1
        [account] = await mongo_db.accounts.find().to_list(None)
        assert (account["provider"], account["providerAccountId"]) == ("credentials", "emp-42")
        listing = (await client.get("/auth/sessions")).json()
        assert len(listing) == 1


async def test_credentials_user_without_id_or_email_is_a_configuration_error(
    adapter: MongoDBAdapter, clock: Clock, mongo_db: Any
) -> None:
    from asgi_session.providers import Credentials

    app = build_app(
        clock=clock, adapter=adapter, providers=[Credentials(authorize=lambda c, r: {"name": "X"})]
    )
    async with client_for(app) as client:
        response = await sign_in(client)
        assert response.headers["location"].endswith("/auth/error?error=Configuration")
        assert await mongo_db.users.count_documents({}) == 0
