"""BetterAuthStrategy against the real better-auth package, on each database it shares.

Each test runs Better Auth's own HTTP handler in Node (tests/support/better_auth.py) and
the Python app in process, on one database: a MongoDB database of the test mongod, a
SQLite file, or a PostgreSQL database. Cookies cross between them as a browser would
carry them on one site.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx2
import pytest
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import Adapter, DatabaseStrategy, SessionStrategy
from asgi_session.backends.better_auth import (
    BetterAuthStrategy,
    CookieCache,
    MigrationStrategy,
)
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.providers import Password
from tests.support.apps import config_of, csrf_token, set_cookies, show_session
from tests.support.better_auth import (
    DATABASE_KINDS,
    SECRET,
    BetterAuthServer,
    Database,
    better_auth,
    database_for,
    open_adapter,
)
from tests.support.passwords import APP_URL, Outbox
from tests.support.passwords import sign_in as python_sign_in
from tests.support.passwords import sign_up as python_sign_up

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"
TOKEN_COOKIE = "better-auth.session_token"
CACHE_COOKIE = "better-auth.session_data"
AUTHJS_COOKIE = "authjs.session-token"


@pytest.fixture(params=DATABASE_KINDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    return database_for(request.param, request, tmp_path)


@pytest.fixture
async def adapter(database: Database) -> AsyncIterator[Adapter]:
    """Our adapter on the same database, laid out as Better Auth's."""
    async with open_adapter(database) as opened:
        yield opened


@pytest.fixture
def node(database: Database) -> Iterator[BetterAuthServer]:
    with better_auth(database) as server:
        yield server


def python_app(
    adapter: Adapter,
    *,
    secret: str = SECRET,
    strategy: SessionStrategy | None = None,
    **options: Any,
) -> Starlette:
    """The Python app: Better Auth's sessions (``options`` go to BetterAuthStrategy) and
    our Password provider, hashing as Better Auth does since it is given no hasher."""
    config = AuthConfig(
        secret=secret,
        url=APP_URL,
        adapter=adapter,
        strategy=strategy if strategy is not None else BetterAuthStrategy(adapter, **options),
        providers=[Password(send=Outbox().send)],
    )
    return Starlette(
        routes=[Route("/", show_session)],
        middleware=[Middleware(AuthMiddleware, config=config)],
    )


def browser(app: Any) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=APP_URL)


def cookie_header(http: httpx2.AsyncClient) -> str:
    """What the browser would send to the Node app on the same site."""
    return "; ".join(f"{name}={value}" for name, value in http.cookies.items())


def carry(http: httpx2.AsyncClient, header: str) -> None:
    """Put cookies Better Auth set into the Python side's browser."""
    for part in header.split("; "):
        if part:
            name, _, value = part.partition("=")
            http.cookies.set(name, value)


async def whoami(http: httpx2.AsyncClient) -> dict[str, Any] | None:
    response = await http.get("/")
    assert response.status_code == 200
    body: dict[str, Any] | None = response.json()
    return body


# -- reading Better Auth's sessions ---------------------------------------------------------


async def test_a_better_auth_sign_up_is_a_python_session(
    node: BetterAuthServer, adapter: Adapter
) -> None:
    signed_up = node.sign_up(EMAIL, PASSWORD, "Ada Lovelace")
    expected = node.get_session(signed_up.header)
    assert expected is not None
    async with browser(python_app(adapter)) as http:
        carry(http, signed_up.header)
        body = await whoami(http)
        assert body is not None
        assert body["user"] == {"name": "Ada Lovelace", "email": EMAIL}
        assert (await whoami(http)) is not None  # and on the next request
    user = await adapter.get_user_by_email(EMAIL)
    assert user is not None and user.id == expected["user"]["id"]
    [record] = await adapter.list_sessions(user.id)
    assert record.session_token == expected["session"]["token"]
    assert record.expires == datetime.fromisoformat(expected["session"]["expiresAt"])


async def test_a_better_auth_password_signs_in_on_the_python_side(
    node: BetterAuthServer, adapter: Adapter
) -> None:
    node.sign_up(EMAIL, PASSWORD, "Ada")
    async with browser(python_app(adapter)) as http:
        response = await python_sign_in(http, EMAIL, "not the password at all")
        assert TOKEN_COOKIE not in http.cookies
        response = await python_sign_in(http, EMAIL, PASSWORD)
        assert response.status_code in (302, 303)
        assert TOKEN_COOKIE in http.cookies
        # Better Auth sees the session Python started.
        seen = node.get_session(cookie_header(http))
        assert seen is not None and seen["user"]["email"] == EMAIL
        assert seen["session"]["token"] == unquote(http.cookies[TOKEN_COOKIE]).rsplit(".", 1)[0]


async def test_a_python_sign_up_signs_in_on_better_auth(
    node: BetterAuthServer, adapter: Adapter
) -> None:
    async with browser(python_app(adapter)) as http:
        response = await python_sign_up(http, EMAIL, PASSWORD)
        assert response.status_code in (302, 303), response.text
        seen = node.get_session(cookie_header(http))
        assert seen is not None and seen["user"]["email"] == EMAIL
    # The account is Better Auth's credential account: its own sign-in verifies the hash.
    signed_in = node.sign_in(EMAIL, PASSWORD)
    assert node.get_session(signed_in.header) is not None


async def test_a_session_better_auth_does_not_remember_is_not_extended(
    node: BetterAuthServer, adapter: Adapter
) -> None:
    node.sign_up(EMAIL, PASSWORD, "Ada")
    forgetful = node.sign_in(EMAIL, PASSWORD, remember_me=False)
    remembered = node.sign_in(EMAIL, PASSWORD)
    # updateAge 0: every request is due for an extension, unless it must not have one.
    async with browser(python_app(adapter, update_age=0)) as http:
        carry(http, forgetful.header)
        response = await http.get("/")
        assert response.json()["user"]["email"] == EMAIL
        assert TOKEN_COOKIE not in set_cookies(response)
    async with browser(python_app(adapter, update_age=0)) as http:
        carry(http, remembered.header)
        response = await http.get("/")
        assert "Max-Age=604800" in set_cookies(response)[TOKEN_COOKIE]


# -- signing out, listing and ending sessions ---------------------------------------------


async def test_a_python_sign_out_ends_the_session_for_better_auth(
    node: BetterAuthServer, adapter: Adapter
) -> None:
    signed_up = node.sign_up(EMAIL, PASSWORD, "Ada")
    async with browser(python_app(adapter)) as http:
        carry(http, signed_up.header)
        response = await http.post("/auth/signout", data={"csrfToken": await csrf_token(http)})
        assert "Max-Age=0" in set_cookies(response)[TOKEN_COOKIE]
    assert node.get_session(signed_up.header, disable_cookie_cache=True) is None


async def test_a_better_auth_sign_out_ends_the_session_for_python(
    node: BetterAuthServer, adapter: Adapter
) -> None:
    async with browser(python_app(adapter)) as http:
        await python_sign_up(http, EMAIL, PASSWORD)
        header = cookie_header(http)
        node.sign_out(header)
        assert await whoami(http) is None


async def test_sessions_are_listed_and_ended_on_better_auths_records(
    node: BetterAuthServer, adapter: Adapter
) -> None:
    node_side = node.sign_up(EMAIL, PASSWORD, "Ada")
    app = python_app(adapter)
    async with browser(app) as http:
        await python_sign_in(http, EMAIL, PASSWORD)
        listed = node.list_sessions(cookie_header(http))
        assert len(listed) == 2  # Better Auth lists the one Python made too
        strategy = config_of(app).strategy
        user = await adapter.get_user_by_email(EMAIL)
        assert user is not None
        ours = await strategy.list_user_sessions(user.id, now=datetime.now(UTC).timestamp())
        assert {record.session_token for record in ours} == {s["token"] for s in listed}
        # Ending the user's sessions from Python ends the Node app's one too.
        await strategy.end_user_sessions(user.id, now=datetime.now(UTC).timestamp())
    assert node.get_session(node_side.header, disable_cookie_cache=True) is None


# -- what is refused ----------------------------------------------------------------------


async def test_tampered_and_foreign_cookies_are_no_session(
    node: BetterAuthServer, adapter: Adapter
) -> None:
    signed_up = node.sign_up(EMAIL, PASSWORD, "Ada")
    value = unquote(signed_up[TOKEN_COOKIE].value)
    token, _, signature = value.rpartition(".")
    async with browser(python_app(adapter)) as http:
        for forged in (f"{token}.{signature[:-4]}AAA=", f"{token[:-1]}x.{signature}", token):
            http.cookies.clear()
            http.cookies.set(TOKEN_COOKIE, forged)
            assert await whoami(http) is None
    # A Python app with another secret cannot read Better Auth's cookie.
    other = python_app(adapter, secret="another secret, just as long as the real one")
    async with browser(other) as http:
        carry(http, signed_up.header)
        assert await whoami(http) is None


async def test_expired_sessions_and_vanished_users_are_refused(
    node: BetterAuthServer, adapter: Adapter
) -> None:
    first = node.sign_up(EMAIL, PASSWORD, "Ada")
    user = await adapter.get_user_by_email(EMAIL)
    assert user is not None
    [record] = await adapter.list_sessions(user.id)
    await adapter.update_session(
        {"session_token": record.session_token, "expires": datetime.now(UTC) - timedelta(1)}
    )
    async with browser(python_app(adapter)) as http:
        carry(http, first.header)
        assert await whoami(http) is None
    assert node.get_session(first.header) is None
    second = node.sign_in(EMAIL, PASSWORD)
    await adapter.delete_user(user.id)
    async with browser(python_app(adapter)) as http:
        carry(http, second.header)
        assert await whoami(http) is None


# -- the cookie cache -------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["compact", "jwt", "jwe"])
@pytest.mark.parametrize("database", ["mongodb"], indirect=True)
async def test_better_auths_cookie_cache_is_read_without_the_database(
    database: Database, adapter: Adapter, encoding: Any
) -> None:
    with better_auth(database, cookieCache={"strategy": encoding, "maxAge": 300}) as node:
        signed_up = node.sign_up(EMAIL, "a password for zoë ünïcödé", 'Zoë "Z" Ünïcödé')
        assert signed_up.get(CACHE_COOKIE) is not None
        user = await adapter.get_user_by_email(EMAIL)
        assert user is not None
        await adapter.delete_sessions(user.id)  # only the cache can answer now
        async with browser(
            python_app(adapter, cookie_cache=CookieCache(encoding=encoding))
        ) as http:
            carry(http, signed_up.header)
            body = await whoami(http)
            assert body is not None and body["user"]["name"] == 'Zoë "Z" Ünïcödé'
        # Without the cache option the record is asked for, and is gone.
        async with browser(python_app(adapter)) as http:
            carry(http, signed_up.header)
            assert await whoami(http) is None


@pytest.mark.parametrize("encoding", ["compact", "jwt", "jwe"])
@pytest.mark.parametrize("database", ["mongodb"], indirect=True)
async def test_our_cookie_cache_is_read_by_better_auth(
    database: Database, adapter: Adapter, encoding: Any
) -> None:
    with better_auth(database, cookieCache={"strategy": encoding, "maxAge": 300}) as node:
        app = python_app(adapter, cookie_cache=CookieCache(encoding=encoding))
        async with browser(app) as http:
            await python_sign_up(http, EMAIL, PASSWORD)
            assert CACHE_COOKIE in http.cookies
            header = cookie_header(http)
        user = await adapter.get_user_by_email(EMAIL)
        assert user is not None
        await adapter.delete_sessions(user.id)
        # Better Auth answers from our cache alone: it verified what we wrote.
        seen = node.get_session(header)
        assert seen is not None and seen["user"]["email"] == EMAIL
        assert node.get_session(header, disable_cookie_cache=True) is None


# -- moving from Auth.js ----------------------------------------------------------------------


@pytest.mark.parametrize("database", ["mongodb"], indirect=True)
async def test_an_authjs_user_moves_to_better_auth_on_one_mongodb_database(
    database: Database, node: BetterAuthServer
) -> None:
    assert database["kind"] == "mongodb"
    client: AsyncMongoClient[Any] = AsyncMongoClient(database["url"])
    try:
        db = client[database["db"]]
        authjs = MongoDBAdapter(db)  # Auth.js's documents: users, accounts, sessions
        target = MongoDBAdapter(db, schema="better-auth")  # Better Auth's: user, account...
        # A user of the Auth.js app, with a password account and a live session.
        old_app = python_app(authjs, strategy=DatabaseStrategy())
        async with browser(old_app) as old:
            await python_sign_up(old, EMAIL, PASSWORD)
            authjs_cookie = old.cookies[AUTHJS_COOKIE]
        strategy = MigrationStrategy(BetterAuthStrategy(target), authjs=authjs)
        app = python_app(strategy.adapter, strategy=strategy)
        async with browser(app) as http:
            http.cookies.set(AUTHJS_COOKIE, authjs_cookie, domain="testserver.local")
            body = await whoami(http)  # still signed in, nobody signed out
            adopted = await target.get_user_by_email(EMAIL)
            assert body is not None and adopted is not None
            assert body["id"] == adopted.id
            # Signing in again (the Auth.js password, argon2id) gives a Better Auth session
            # and rehashes the password as Better Auth hashes them.
            response = await python_sign_in(http, EMAIL, PASSWORD)
            assert response.status_code in (302, 303), response.text
            written = set_cookies(response)
            assert AUTHJS_COOKIE in written, response.headers.get_list("set-cookie")
            assert "Max-Age=0" in written[AUTHJS_COOKIE]
            assert "Max-Age=604800" in written[TOKEN_COOKIE]
            seen = node.get_session(cookie_header(http))
            assert seen is not None and seen["user"]["id"] == adopted.id
        # The Node app's own sign-in now takes the password too.
        assert node.get_session(node.sign_in(EMAIL, PASSWORD).header) is not None
        assert await db["users"].count_documents({}) == 1  # Auth.js's, untouched
    finally:
        await client.close()
