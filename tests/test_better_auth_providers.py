"""Sign-in on the Python side with each provider but passwords, as Better Auth sees it.

The Python app runs in process under BetterAuthStrategy and signs a user in with OAuth
(the fake GitHub, and the real OpenID provider), an email magic link, or a Credentials
``authorize`` callback. The real Better Auth app (tests/support/better_auth.py), on the
same database, must then take what was written: the session cookie is its session, the
user and account are its records, read by its own routes and adapter. The records are
also read raw, so that their field names and types are Better Auth's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx2
import pytest
from bson import ObjectId
from starlette.applications import Starlette
from starlette.requests import Request

from asgi_session import AuthConfig
from asgi_session.backends import Adapter
from asgi_session.backends.better_auth import BetterAuthStrategy
from asgi_session.providers import OIDC, Credentials, Email, GitHub, OAuth
from asgi_session.providers._email import hash_token
from tests.support.apps import USERS, authorize, csrf_token, set_cookies
from tests.support.apps import sign_in as credentials_sign_in
from tests.support.better_auth import (
    DATABASE_KINDS,
    SECRET,
    BetterAuthServer,
    Database,
    better_auth,
    database_for,
    open_adapter,
    rows,
)
from tests.support.fake_github import FakeGitHub
from tests.support.oauth import (
    APP_HOSTS,
    APP_ORIGIN,
    ProviderBrowser,
    app_client,
    begin_sign_in,
    land,
    oauth_app,
    session_of,
)
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProviderServer
from tests.support.passwords import link_params, local_path

TOKEN_COOKIE = "better-auth.session_token"
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"
#: How long the fake GitHub's tokens last when it makes them expire (GitHub's 8 hours).
GITHUB_TOKEN_LIFETIME = 8 * 3600
#: How far a stored expiry may be from the one computed around the request.
SLACK = timedelta(seconds=5)

# -- the databases, Better Auth, and our app on them ------------------------------------


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
    """Better Auth on the database; started first, so its tables are its own migration's."""
    with better_auth(database) as server:
        yield server


def python_app(adapter: Adapter, *providers: Any) -> Starlette:
    """The Python app at APP_ORIGIN: Better Auth's sessions, and ``providers``."""
    config = AuthConfig(
        secret=SECRET,
        url=APP_ORIGIN,
        allowed_hosts=APP_HOSTS,
        adapter=adapter,
        strategy=BetterAuthStrategy(adapter),
        providers=list(providers),
    )
    return oauth_app(config)


def cookie_header(http: httpx2.AsyncClient) -> str:
    """What the browser would send to the Node app on the same site."""
    return "; ".join(f"{name}={value}" for name, value in http.cookies.items())


def session_token(http: httpx2.AsyncClient) -> str:
    """The token in the browser's (signed) Better Auth session cookie."""
    return unquote(http.cookies[TOKEN_COOKIE]).rpartition(".")[0]


def seen_by_better_auth(node: BetterAuthServer, http: httpx2.AsyncClient) -> dict[str, Any]:
    """``auth.api.getSession`` for the browser's cookies, from the database (no cache)."""
    seen = node.get_session(cookie_header(http), disable_cookie_cache=True)
    assert seen is not None, "Better Auth sees no session"
    assert seen["session"]["token"] == session_token(http)
    return seen


# -- the records, read without Better Auth or our adapter ---------------------------------


def as_date(database: Database, stored: Any) -> datetime:
    """A date as Better Auth keeps it in ``database``: a BSON date (naive, UTC), the ISO
    text of ``Date.toISOString()`` on SQLite, a ``timestamptz`` on PostgreSQL."""
    if database["kind"] == "sqlite":
        assert isinstance(stored, str) and stored.endswith("Z"), stored
        return datetime.fromisoformat(stored)
    assert isinstance(stored, datetime), stored
    return stored.replace(tzinfo=UTC) if database["kind"] == "mongodb" else stored


def user_ref(database: Database, user_id: str) -> Any:
    """How a record names its user: an ObjectId in MongoDB, the id's text in SQL."""
    return ObjectId(user_id) if database["kind"] == "mongodb" else user_id


def flag(database: Database, value: bool) -> Any:
    """A boolean as stored: SQLite has none, so 0 or 1."""
    return int(value) if database["kind"] == "sqlite" else value


#: Auth.js's names for what Better Auth calls otherwise: none may be a field of its records.
AUTHJS_ACCOUNT_FIELDS = {
    "provider",
    "providerAccountId",
    "access_token",
    "refresh_token",
    "id_token",
    "expires_at",
}


# -- OAuth -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upstream:
    """An OAuth provider to sign in with, and who signing in there makes one."""

    provider: OAuth
    login: str
    account_id: str
    email: str
    token_lifetime: int
    id_token: bool
    scopes: frozenset[str]
    """What the provider grants: GitHub says ``read:user,user:email``, the OpenID
    provider ``openid profile email`` (RFC 6749's spaces)."""


@pytest.fixture(params=["github", "oidc"])
def upstream(request: pytest.FixtureRequest) -> Upstream:
    """The fake GitHub (with expiring tokens), or the real OpenID provider as ``corp``."""
    if request.param == "github":
        fake: FakeGitHub = request.getfixturevalue("fake_github")
        fake.expires_in = GITHUB_TOKEN_LIFETIME
        github = GitHub(
            client_id=fake.client_id, client_secret=fake.client_secret, enterprise_url=fake.url
        )
        [user] = fake.users.values()
        assert user.email is not None
        return Upstream(
            github,
            user.login,
            str(user.id),
            user.email,
            GITHUB_TOKEN_LIFETIME,
            id_token=False,
            scopes=frozenset({"read:user", "user:email"}),
        )
    server: OIDCProviderServer = request.getfixturevalue("oidc_provider")
    corp = OIDC(
        id="corp",
        name="Corp SSO",
        issuer=server.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    return Upstream(
        corp,
        "alice",
        "alice",
        "alice@example.com",
        server.access_token_ttl,
        id_token=True,
        scopes=frozenset({"openid", "profile", "email"}),
    )


async def oauth_sign_in(
    http: httpx2.AsyncClient, browser: ProviderBrowser, upstream: Upstream
) -> None:
    started = await begin_sign_in(http, upstream.provider.id)
    assert started.status_code == 302, started.text
    landing = await browser.authorize(started.headers["location"], login=upstream.login)
    done = await land(http, landing)
    assert done.headers.get("location") == f"{APP_ORIGIN}/dashboard", done.headers
    assert TOKEN_COOKIE in set_cookies(done)


async def test_an_oauth_sign_in_makes_better_auths_user_account_and_session(
    node: BetterAuthServer,
    adapter: Adapter,
    database: Database,
    upstream: Upstream,
    provider_browser: ProviderBrowser,
) -> None:
    provider_id = upstream.provider.id
    async with app_client(python_app(adapter, upstream.provider)) as http:
        before = datetime.now(UTC)
        await oauth_sign_in(http, provider_browser, upstream)
        after = datetime.now(UTC)
        ours = await session_of(http)
        assert ours is not None
        seen = seen_by_better_auth(node, http)
        header = cookie_header(http)
    user_id = ours["id"]
    assert seen["user"]["id"] == user_id
    assert seen["user"]["email"] == upstream.email

    # Better Auth's own route lists the account, as it would one it linked itself.
    [listed] = node.list_accounts(header)
    assert listed["providerId"] == provider_id
    assert listed["accountId"] == upstream.account_id
    assert listed["userId"] == user_id

    # Its adapter reads the tokens, and the expiry as a date (JSON: an ISO string).
    [account] = node.accounts(header)
    assert account["providerId"] == provider_id and account["accountId"] == upstream.account_id
    assert isinstance(account["accessToken"], str) and account["accessToken"]
    assert isinstance(account["accessTokenExpiresAt"], str), account
    expires = datetime.fromisoformat(account["accessTokenExpiresAt"])
    lifetime = timedelta(seconds=upstream.token_lifetime)
    assert before + lifetime - SLACK <= expires <= after + lifetime + SLACK
    assert isinstance(account["refreshToken"], str) and account["refreshToken"]
    assert bool(account.get("idToken")) is upstream.id_token

    # The stored record has Better Auth's field names and types.
    [row] = await rows(database, "account")
    assert row["userId"] == user_ref(database, user_id)
    assert (row["providerId"], row["accountId"]) == (provider_id, upstream.account_id)
    assert row["accessToken"] == account["accessToken"]
    assert row["refreshToken"] == account["refreshToken"]
    assert as_date(database, row["accessTokenExpiresAt"]) == expires
    as_date(database, row["createdAt"])
    as_date(database, row["updatedAt"])
    assert not AUTHJS_ACCOUNT_FIELDS & set(row), sorted(row)
    [user] = await rows(database, "user")
    assert user["email"] == upstream.email

    # Signing in again finds the user and account through Better Auth's records.
    async with app_client(python_app(adapter, upstream.provider)) as again:
        await oauth_sign_in(again, provider_browser, upstream)
        assert seen_by_better_auth(node, again)["user"]["id"] == user_id
    assert len(await rows(database, "user")) == 1
    assert len(await rows(database, "account")) == 1
    assert len(await rows(database, "session")) == 2


async def test_better_auth_reads_the_granted_scopes(
    node: BetterAuthServer,
    adapter: Adapter,
    upstream: Upstream,
    provider_browser: ProviderBrowser,
) -> None:
    # Better Auth keeps an account's scopes joined by commas (its callback stores
    # tokens.scopes.join(",")) and splits them on commas when it reads them
    # (list-accounts, get-access-token, linking with more scopes).
    # OpenID providers answer the space-separated scopes of OAuth 2, GitHub commas.
    async with app_client(python_app(adapter, upstream.provider)) as http:
        await oauth_sign_in(http, provider_browser, upstream)
        header = cookie_header(http)
    [listed] = node.list_accounts(header)
    assert sorted(listed["scopes"]) == sorted(upstream.scopes)


# -- email magic links ---------------------------------------------------------------------


@dataclass
class LinkOutbox:
    """The sign-in links the app mailed, as a mailer would have delivered them."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, identifier: str, url: str, request: Request) -> None:
        self.sent.append((identifier, url))


async def request_link(http: httpx2.AsyncClient, email: str) -> None:
    response = await http.post(
        "/auth/signin/email", data={"csrfToken": await csrf_token(http), "email": email}
    )
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(f"{APP_ORIGIN}/auth/verify-request")


async def test_a_magic_link_is_a_better_auth_verification_and_signs_in(
    node: BetterAuthServer, adapter: Adapter, database: Database
) -> None:
    outbox = LinkOutbox()
    async with app_client(python_app(adapter, Email(send=outbox.send))) as http:
        asked = datetime.now(UTC)
        await request_link(http, EMAIL)
        [(identifier, url)] = outbox.sent
        assert identifier == EMAIL
        token = link_params(url)["token"]

        # The link's token is Better Auth's verification record (hashed, as Auth.js's).
        [verification] = await rows(database, "verification")
        assert verification["identifier"] == EMAIL
        assert verification["value"] == hash_token(token, SECRET)
        expires = as_date(database, verification["expiresAt"])
        assert abs(expires - (asked + timedelta(days=1))) < SLACK
        assert not {"token", "expires"} & set(verification), sorted(verification)

        signed_in = await http.get(local_path(url))
        assert signed_in.headers["location"].startswith(APP_ORIGIN), signed_in.headers
        assert TOKEN_COOKIE in set_cookies(signed_in)
        ours = await session_of(http)
        assert ours is not None
        seen = seen_by_better_auth(node, http)

    assert seen["user"]["id"] == ours["id"]
    assert seen["user"]["email"] == EMAIL
    assert seen["user"]["emailVerified"] is True
    [user] = await rows(database, "user")
    assert user["emailVerified"] == flag(database, True)
    assert await rows(database, "verification") == []  # used up


async def test_a_magic_link_verifies_a_better_auth_users_address(
    node: BetterAuthServer, adapter: Adapter
) -> None:
    signed_up = node.sign_up(EMAIL, PASSWORD, "Ada")
    before = node.get_session(signed_up.header)
    assert before is not None and before["user"]["emailVerified"] is False
    outbox = LinkOutbox()
    async with app_client(python_app(adapter, Email(send=outbox.send))) as http:
        await request_link(http, EMAIL)
        [(_, url)] = outbox.sent
        await http.get(local_path(url))
        seen = seen_by_better_auth(node, http)
    # The same user, its address now verified for Better Auth, its password still its own.
    assert seen["user"]["id"] == before["user"]["id"]
    assert seen["user"]["emailVerified"] is True
    signed_in = node.sign_in(EMAIL, PASSWORD)
    again = node.get_session(signed_in.header)
    assert again is not None and again["user"]["emailVerified"] is True


# -- Credentials ---------------------------------------------------------------------------


async def test_a_credentials_sign_in_is_a_better_auth_session(
    node: BetterAuthServer, adapter: Adapter, database: Database
) -> None:
    app_user = USERS["ann@example.com"]
    app = python_app(adapter, Credentials(authorize=authorize))
    user_ids = []
    for _ in range(2):  # two browsers: the second sign-in finds the first one's user
        async with app_client(app) as http:
            response = await credentials_sign_in(http)
            assert response.status_code == 302, response.text
            assert TOKEN_COOKIE in set_cookies(response)
            ours = await session_of(http)
            assert ours is not None
            seen = seen_by_better_auth(node, http)
            header = cookie_header(http)
        assert seen["user"]["id"] == ours["id"]
        assert (seen["user"]["email"], seen["user"]["name"]) == (app_user["email"], "Ann")
        user_ids.append(ours["id"])
    assert user_ids[0] == user_ids[1]
    # The user is Better Auth's; the app's own id is kept on an account of the provider's.
    [user] = await rows(database, "user")
    assert user["email"] == app_user["email"]
    [listed] = node.list_accounts(header)
    assert (listed["providerId"], listed["accountId"]) == ("credentials", app_user["id"])
    assert listed["userId"] == user_ids[0]
    assert len(await rows(database, "session")) == 2
