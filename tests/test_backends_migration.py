"""Moving from Auth.js to Better Auth: both cookies accepted, users adopted by email.

In process over two memory adapters (Auth.js's records and Better Auth's); the same path
over one real MongoDB database, with the real better-auth package reading the result, is
in tests/test_better_auth_interop.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from asgi_session.backends import MemoryAdapter
from asgi_session.backends.better_auth import (
    BetterAuthStrategy,
    MigratingAdapter,
    MigrationStrategy,
)
from asgi_session.errors import ConfigurationError
from tests.support.apps import SECRET, Clock, build_app, client_for, set_cookies, sign_in

AUTHJS_COOKIE = "authjs.session-token"
BETTER_AUTH_COOKIE = "better-auth.session_token"
#: The id the test app's authorize gives Ann: her credentials account.
ACCOUNT_ID = "user-1"


class Setup:
    def __init__(self) -> None:
        self.clock = Clock()
        self.authjs = MemoryAdapter()
        self.better_auth = MemoryAdapter()

    def authjs_app(self) -> Any:
        return build_app(clock=self.clock, adapter=self.authjs)

    def migrating_app(self) -> Any:
        strategy = MigrationStrategy(BetterAuthStrategy(self.better_auth), authjs=self.authjs)
        return build_app(clock=self.clock, strategy=strategy)


@pytest.fixture
def setup() -> Setup:
    return Setup()


async def _authjs_cookie(setup: Setup) -> str:
    async with client_for(setup.authjs_app()) as http:
        await sign_in(http)
        return http.cookies[AUTHJS_COOKIE]


async def test_an_authjs_session_keeps_working_under_the_better_auth_users_id(
    setup: Setup,
) -> None:
    cookie = await _authjs_cookie(setup)
    old = await setup.authjs.get_user_by_email("ann@example.com")
    assert old is not None and await setup.better_auth.get_user_by_email("ann@example.com") is None
    async with client_for(setup.migrating_app()) as http:
        http.cookies[AUTHJS_COOKIE] = cookie
        body = (await http.get("/")).json()
        adopted = await setup.better_auth.get_user_by_email("ann@example.com")
        assert adopted is not None
        assert body["id"] == adopted.id and body["user"]["email"] == "ann@example.com"
        # Nothing was written to Auth.js's records, and its session is still there.
        assert len(await setup.authjs.list_sessions(old.id)) == 1
        assert (await http.get("/")).json()["id"] == adopted.id


async def test_signing_in_again_moves_the_browser_to_better_auth(setup: Setup) -> None:
    cookie = await _authjs_cookie(setup)
    old = await setup.authjs.get_user_by_email("ann@example.com")
    assert old is not None
    async with client_for(setup.migrating_app()) as http:
        http.cookies[AUTHJS_COOKIE] = cookie
        response = await sign_in(http)
        cookies = set_cookies(response)
        assert "Max-Age=0" in cookies[AUTHJS_COOKIE]
        assert BETTER_AUTH_COOKIE in cookies
        assert await setup.authjs.list_sessions(old.id) == []
        new = await setup.better_auth.get_user_by_email("ann@example.com")
        assert new is not None
        assert len(await setup.better_auth.list_sessions(new.id)) == 1
        assert (await http.get("/")).json()["id"] == new.id
        # The account the Auth.js user signed in with came along, renamed to the new user.
        account = await setup.better_auth.get_account(
            provider="credentials", provider_account_id=ACCOUNT_ID
        )
        assert account is not None and account.user_id == new.id


async def test_a_new_user_signs_in_straight_to_better_auth(setup: Setup) -> None:
    async with client_for(setup.migrating_app()) as http:
        await sign_in(http)
        assert BETTER_AUTH_COOKIE in http.cookies
        assert AUTHJS_COOKIE not in http.cookies
        assert await setup.authjs.get_user_by_email("ann@example.com") is None
        assert (await http.get("/")).json()["user"]["email"] == "ann@example.com"


async def test_signing_out_ends_the_authjs_session(setup: Setup) -> None:
    cookie = await _authjs_cookie(setup)
    old = await setup.authjs.get_user_by_email("ann@example.com")
    assert old is not None
    async with client_for(setup.migrating_app()) as http:
        http.cookies[AUTHJS_COOKIE] = cookie
        csrf = (await http.get("/auth/csrf")).json()["csrfToken"]
        response = await http.post("/auth/signout", data={"csrfToken": csrf})
        assert "Max-Age=0" in set_cookies(response)[AUTHJS_COOKIE]
        assert await setup.authjs.list_sessions(old.id) == []
        assert (await http.get("/")).json() is None


async def test_listing_and_ending_sessions_covers_both(setup: Setup) -> None:
    cookie = await _authjs_cookie(setup)
    app = setup.migrating_app()
    async with client_for(app) as other:
        await sign_in(other)  # a Better Auth session on another device
    strategy = app.user_middleware[0].kwargs["config"].strategy
    new = await setup.better_auth.get_user_by_email("ann@example.com")
    old = await setup.authjs.get_user_by_email("ann@example.com")
    assert new is not None and old is not None
    listed = await strategy.list_user_sessions(new.id, now=setup.clock.now)
    assert len(listed) == 2
    await strategy.end_user_sessions(new.id, now=setup.clock.now)
    assert await setup.authjs.list_sessions(old.id) == []
    assert await setup.better_auth.list_sessions(new.id) == []
    async with client_for(app) as http:
        http.cookies[AUTHJS_COOKIE] = cookie
        assert (await http.get("/")).json() is None


async def test_an_expired_authjs_session_is_not_carried_over(setup: Setup) -> None:
    cookie = await _authjs_cookie(setup)
    setup.clock.advance(30 * 24 * 3600)
    async with client_for(setup.migrating_app()) as http:
        http.cookies[AUTHJS_COOKIE] = cookie
        assert (await http.get("/")).json() is None


async def test_accounts_named_by_the_user_id_are_renamed_on_adoption() -> None:
    source, target = MemoryAdapter(), MemoryAdapter()
    old = await source.create_user(
        {"email": "ada@example.com", "email_verified": datetime.now(UTC)}
    )
    await source.link_account(
        {
            "user_id": old.id,
            "type": "credentials",
            "provider": "password",
            "provider_account_id": old.id,
            "password": "$argon2id$hash",
        }
    )
    adapter = MigratingAdapter(target, source)
    new = await adapter.get_user_by_email("ada@example.com")
    assert new is not None and new.id != old.id and new.email_verified == old.email_verified
    account = await adapter.get_account(provider="password", provider_account_id=new.id)
    assert account is not None
    assert account.user_id == new.id and account.extra["password"] == "$argon2id$hash"
    # Stored in Better Auth's records now: found without the Auth.js ones.
    assert await target.get_account(provider="password", provider_account_id=new.id)
    # Adopted once: the second look finds the same user.
    assert (await adapter.get_user_by_email("ada@example.com")) == new
    assert await adapter.get_user_by_email("nobody@example.com") is None


def test_the_strategy_checks_what_it_is_given() -> None:
    with pytest.raises(ConfigurationError, match="BetterAuthStrategy"):
        MigrationStrategy(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="authjs"):
        MigrationStrategy(BetterAuthStrategy(MemoryAdapter()), authjs=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="adapter"):
        MigratingAdapter(MemoryAdapter(), object())  # type: ignore[arg-type]


async def test_authjs_jwt_sessions_are_read_with_their_own_secret() -> None:
    clock = Clock()
    authjs_secret = "the auth.js app's secret, long enough to use"
    async with client_for(build_app(clock=clock, secret=authjs_secret)) as http:
        await sign_in(http)
        cookie = http.cookies[AUTHJS_COOKIE]
    target = MemoryAdapter()
    app = build_app(
        clock=clock,
        secret=[SECRET, authjs_secret],
        strategy=MigrationStrategy(BetterAuthStrategy(target)),
    )
    async with client_for(app) as http:
        http.cookies[AUTHJS_COOKIE] = cookie
        body = (await http.get("/")).json()
        user = await target.get_user_by_email("ann@example.com")
        assert user is not None and body["id"] == user.id
        response = await sign_in(http)
        assert BETTER_AUTH_COOKIE in set_cookies(response)
        assert "Max-Age=0" in set_cookies(response)[AUTHJS_COOKIE]
