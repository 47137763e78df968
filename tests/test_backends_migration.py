"""Moving from Auth.js to Better Auth: both cookies accepted, users adopted by email.

In process over two memory adapters (Auth.js's records and Better Auth's); the same path
over one real MongoDB database, with the real better-auth package reading the result, is
in tests/test_better_auth_interop.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import MemoryAdapter
from asgi_session.backends.better_auth import (
    BetterAuthStrategy,
    MigratingAdapter,
    MigrationStrategy,
)
from asgi_session.errors import ConfigurationError
from asgi_session.passwords import PasswordHasher
from asgi_session.providers import Password
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


# -- who is whom: adoption only where it is safe ---------------------------------------

VICTIM = "victim@example.com"
DAY = 24 * 3600


async def _authjs_session(source: MemoryAdapter, user_id: str, clock: Clock) -> str:
    now = datetime.fromtimestamp(clock.now, UTC)
    record = await source.create_session(
        {
            "session_token": "authjs-token-" + user_id,
            "user_id": user_id,
            "expires": now + timedelta(days=30),
        }
    )
    return record.session_token


def _migrating(target: MemoryAdapter, source: MemoryAdapter, clock: Clock, **options: Any) -> Any:
    return build_app(
        clock=clock,
        strategy=MigrationStrategy(BetterAuthStrategy(target), authjs=source),
        **options,
    )


# -- an unverified Auth.js record becomes a verified Better Auth user ------------------


async def test_an_unverified_authjs_users_session_does_not_become_the_better_auth_owner() -> None:
    clock, source, target = Clock(), MemoryAdapter(), MemoryAdapter()
    # The victim's Better Auth account: the address proven (magic link, OAuth, ...).
    owner = await target.create_user({"email": VICTIM, "email_verified": datetime.now(UTC)})
    # Back in the Auth.js era, someone else typed the victim's address and never proved it.
    squatter = await source.create_user({"email": VICTIM, "email_verified": None})
    token = await _authjs_session(source, squatter.id, clock)
    async with client_for(_migrating(target, source, clock)) as http:
        http.cookies[AUTHJS_COOKIE] = token
        body = (await http.get("/")).json()
    assert body is None or body["id"] != owner.id, "the squatter is signed in as the owner"


async def test_an_unverified_authjs_password_is_not_copied_onto_the_owner() -> None:
    clock, source, target = Clock(), MemoryAdapter(), MemoryAdapter()
    owner = await target.create_user({"email": VICTIM, "email_verified": datetime.now(UTC)})
    squatter = await source.create_user({"email": VICTIM, "email_verified": None})
    await source.link_account(
        {
            "user_id": squatter.id,
            "type": "credentials",
            "provider": "password",
            "provider_account_id": squatter.id,
            "password": PasswordHasher().hash("squatters password 42"),
            "unconfirmed": True,
        }
    )
    app = _migrating(
        target, source, clock, url="http://testserver", providers=[Password(send=lambda *a: None)]
    )
    async with client_for(app) as http:
        csrf = (await http.get("/auth/csrf")).json()["csrfToken"]
        await http.post(
            "/auth/callback/password",
            data={"csrfToken": csrf, "email": VICTIM, "password": "squatters password 42"},
        )
        body = (await http.get("/")).json()
    assert body is None or body["id"] != owner.id, "the squatter's password opens the owner"


async def test_an_unverified_authjs_oauth_account_is_not_linked_to_the_owner() -> None:
    source, target = MemoryAdapter(), MemoryAdapter()
    owner = await target.create_user({"email": VICTIM, "email_verified": datetime.now(UTC)})
    squatter = await source.create_user({"email": VICTIM, "email_verified": None})
    await source.link_account(
        {
            "user_id": squatter.id,
            "type": "oauth",
            "provider": "github",
            "provider_account_id": "squatters-github-id",
        }
    )
    adapter = MigratingAdapter(target, source)
    found = await adapter.get_user_by_account(
        provider="github", provider_account_id="squatters-github-id"
    )
    assert found is None or found.id != owner.id, "the squatter's GitHub now signs in as the owner"


# -- an unverified Better Auth sign-up captures the Auth.js owner ---------------------


async def test_an_authjs_owner_is_not_handed_to_an_unverified_better_auth_signup() -> None:
    clock, source, target = Clock(), MemoryAdapter(), MemoryAdapter()
    owner = await source.create_user({"email": VICTIM, "email_verified": datetime.now(UTC)})
    token = await _authjs_session(source, owner.id, clock)
    # The attacker signs up in the Node app with the victim's address (Better Auth's
    # default: no verification required) and knows that account's password.
    squatter = await target.create_user({"email": VICTIM, "email_verified": None})
    async with client_for(_migrating(target, source, clock)) as http:
        http.cookies[AUTHJS_COOKIE] = token
        body = (await http.get("/")).json()
    assert body is None or body["id"] != squatter.id, (
        "the owner now works inside the squatter's account"
    )


# -- Auth.js database sessions are extended, written to, and never run out -------------


async def test_authjs_records_are_only_read_and_their_sessions_end_within_max_age() -> None:
    clock, source, target = Clock(), MemoryAdapter(), MemoryAdapter()
    async with client_for(build_app(clock=clock, adapter=source)) as http:
        await sign_in(http)
        cookie = http.cookies[AUTHJS_COOKIE]
    old = await source.get_user_by_email("ann@example.com")
    assert old is not None
    [before] = await source.list_sessions(old.id)
    app = _migrating(target, source, clock)
    for _ in range(40):  # used every day for 40 days
        clock.advance(DAY)
        async with client_for(app) as http:
            http.cookies[AUTHJS_COOKIE] = cookie
            body = (await http.get("/")).json()
    # Not extended: it ran out 30 days after it began, and its record was never rewritten.
    assert body is None
    assert [record.expires for record in await source.list_sessions(old.id)] in (
        [],
        [before.expires],
    )


# -- Auth.js JWT sessions: re-issued forever, and "end all sessions" leaves them -----


async def test_ending_a_users_sessions_ends_their_authjs_jwt() -> None:
    clock = Clock()
    authjs_secret = "the auth.js app's secret, long enough to use"
    async with client_for(build_app(clock=clock, secret=authjs_secret)) as http:
        await sign_in(http)
        cookie = http.cookies[AUTHJS_COOKIE]
    target = MemoryAdapter()
    strategy = MigrationStrategy(BetterAuthStrategy(target))
    app = build_app(clock=clock, secret=[SECRET, authjs_secret], strategy=strategy)
    async with client_for(app) as http:
        http.cookies[AUTHJS_COOKIE] = cookie
        body = (await http.get("/")).json()
        assert body is not None
        # "Sign out everywhere" / a password reset / address_proven():
        await strategy.end_user_sessions(body["id"], now=clock.now)
        clock.advance(60)
        assert (await http.get("/")).json() is None, (
            "a stolen Auth.js JWT survives end_user_sessions"
        )


# -- session.update() on an Auth.js session switches the user id back to Auth.js's ----


async def test_update_keeps_the_better_auth_user_id() -> None:
    clock, source, target = Clock(), MemoryAdapter(), MemoryAdapter()
    async with client_for(build_app(clock=clock, adapter=source)) as http:
        await sign_in(http)
        cookie = http.cookies[AUTHJS_COOKIE]

    async def ids(request: Request) -> JSONResponse:
        session = request.state.session
        before = session.user.id
        await session.update({"theme": "dark"})
        return JSONResponse({"before": before, "after": session.user.id})

    config = AuthConfig(
        secret=SECRET,
        clock=clock,
        url="http://testserver",
        strategy=MigrationStrategy(BetterAuthStrategy(target), authjs=source),
    )
    app = Starlette(
        routes=[Route("/ids", ids)], middleware=[Middleware(AuthMiddleware, config=config)]
    )
    async with client_for(app) as http:
        http.cookies[AUTHJS_COOKIE] = cookie
        body = (await http.get("/ids")).json()
    assert body["before"] == body["after"], body


# -- a user deleted in Better Auth is brought back from Auth.js's records ---------------
