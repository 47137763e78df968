"""Access tokens of linked accounts: stored, refreshed once when expired, stored again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from asgi_session import AuthConfig, ConfigurationError
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.providers import OIDC, Credentials, GitHub
from asgi_session.tokens import EXPIRY_MARGIN, TokenRefreshError, get_access_token
from tests.support.apps import SECRET, Clock, authorize
from tests.support.fake_github import FakeGitHub
from tests.support.oauth import (
    APP_HOSTS,
    ProviderBrowser,
    app_client,
    begin_sign_in,
    land,
    oauth_app,
)
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProviderServer

Database = AsyncDatabase[dict[str, Any]]


@pytest.fixture
def store(mongo_db: Database) -> MongoDBAdapter:
    """Users and accounts in the test's MongoDB database (the driver is not under test)."""
    return MongoDBAdapter(mongo_db)


EXPIRES_IN = 8 * 3600
OCTOCAT = "583231"


async def signed_in(config: AuthConfig, browser: ProviderBrowser, provider_id: str) -> None:
    """Sign in once through ``provider_id`` so that its account and tokens are stored."""
    async with app_client(oauth_app(config)) as client:
        started = await begin_sign_in(client, provider_id)
        done = await land(client, await browser.authorize(started.headers["location"]))
        assert done.status_code == 302 and "error" not in done.headers["location"]


@pytest.fixture
async def github_config(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser, store: MongoDBAdapter
) -> tuple[AuthConfig, Clock]:
    """A config whose octocat account signed in with an expiring token."""
    fake_github.expires_in = EXPIRES_IN
    clock = Clock()
    provider = GitHub(
        client_id=fake_github.client_id,
        client_secret=fake_github.client_secret,
        enterprise_url=fake_github.url,
    )
    config = AuthConfig(
        secret=SECRET, providers=[provider], adapter=store, clock=clock, allowed_hosts=APP_HOSTS
    )
    await signed_in(config, provider_browser, "github")
    return config, clock


async def stored_account(database: Database) -> dict[str, Any]:
    account = await database["accounts"].find_one({"provider": "github"})
    assert account is not None
    return account


async def test_a_valid_token_is_returned_as_stored(
    github_config: tuple[AuthConfig, Clock], fake_github: FakeGitHub, mongo_db: Database
) -> None:
    config, clock = github_config
    stored = await stored_account(mongo_db)
    assert stored["expires_at"] == int(clock.now) + EXPIRES_IN
    clock.advance(EXPIRES_IN - EXPIRY_MARGIN - 1)
    token = await get_access_token(config, provider="github", provider_account_id=OCTOCAT)
    assert token == stored["access_token"]
    assert fake_github.grants["refresh_token"] == 0


async def test_an_expired_token_is_refreshed_and_stored(
    github_config: tuple[AuthConfig, Clock], fake_github: FakeGitHub, mongo_db: Database
) -> None:
    config, clock = github_config
    before = await stored_account(mongo_db)
    # Within the margin counts as expired: the token could lapse on its way to the API.
    clock.advance(EXPIRES_IN - EXPIRY_MARGIN + 1)
    token = await get_access_token(config, provider="github", provider_account_id=OCTOCAT)
    after = await stored_account(mongo_db)
    assert token == after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]  # rotated by the provider
    assert after["expires_at"] == int(clock.now) + EXPIRES_IN
    assert fake_github.grants["refresh_token"] == 1
    # Now fresh again: no second refresh.
    assert await get_access_token(config, provider="github", provider_account_id=OCTOCAT) == token
    assert fake_github.grants["refresh_token"] == 1


async def test_concurrent_callers_share_one_refresh(
    github_config: tuple[AuthConfig, Clock], fake_github: FakeGitHub
) -> None:
    config, clock = github_config
    clock.advance(EXPIRES_IN)
    tokens = await asyncio.gather(
        *(
            get_access_token(config, provider="github", provider_account_id=OCTOCAT)
            for _ in range(8)
        )
    )
    assert len(set(tokens)) == 1 and tokens[0] is not None
    assert fake_github.grants["refresh_token"] == 1


async def test_a_refused_refresh_raises_and_keeps_the_stored_tokens(
    github_config: tuple[AuthConfig, Clock], fake_github: FakeGitHub, mongo_db: Database
) -> None:
    config, clock = github_config
    before = await stored_account(mongo_db)
    fake_github.revoke_refresh_tokens()
    clock.advance(EXPIRES_IN)
    with pytest.raises(TokenRefreshError, match="bad_refresh_token"):
        await get_access_token(config, provider="github", provider_account_id=OCTOCAT)
    assert await stored_account(mongo_db) == before


async def test_an_unreachable_token_endpoint_raises(
    github_config: tuple[AuthConfig, Clock], fake_github: FakeGitHub
) -> None:
    config, clock = github_config
    fake_github.token_mode = "garbage"
    clock.advance(EXPIRES_IN)
    with pytest.raises(TokenRefreshError):
        await get_access_token(config, provider="github", provider_account_id=OCTOCAT)


async def test_an_expired_token_without_refresh_token_raises(
    github_config: tuple[AuthConfig, Clock], store: MongoDBAdapter
) -> None:
    config, clock = github_config
    await store.update_account(
        provider="github", provider_account_id=OCTOCAT, data={"refresh_token": None}
    )
    clock.advance(EXPIRES_IN)
    with pytest.raises(TokenRefreshError, match="no refresh token"):
        await get_access_token(config, provider="github", provider_account_id=OCTOCAT)


async def test_unknown_accounts_and_bad_arguments(
    github_config: tuple[AuthConfig, Clock],
) -> None:
    config, _ = github_config
    assert await get_access_token(config, provider="github", provider_account_id="1") is None
    with pytest.raises(ConfigurationError, match="not an OAuth"):
        await get_access_token(config, provider="nope", provider_account_id=OCTOCAT)
    without_store = AuthConfig(secret=SECRET, providers=[Credentials(authorize=authorize)])
    with pytest.raises(ConfigurationError, match="an adapter that stores"):
        await get_access_token(without_store, provider="github", provider_account_id=OCTOCAT)


async def test_refresh_at_a_real_openid_provider_happens_once_and_rotates(
    oidc_provider: OIDCProviderServer,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: Database,
) -> None:
    clock = Clock()
    provider = OIDC(
        id="corp",
        name="Corp SSO",
        issuer=oidc_provider.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    config = AuthConfig(
        secret=SECRET, providers=[provider], adapter=store, clock=clock, allowed_hosts=APP_HOSTS
    )
    await signed_in(config, provider_browser, "corp")
    first = await mongo_db["accounts"].find_one({"provider": "corp"})
    assert first is not None and first["refresh_token"]
    account_id = first["providerAccountId"]

    # The provider judges its tokens by the real time, so this clock may not run far
    # ahead of it: a wide margin makes the hour-long tokens count as expired sooner.
    margin = 3600 - 30
    for round_ in range(2):
        before = oidc_provider.stats()["success"].get("refresh_token", 0)
        clock.advance(40)
        tokens = await asyncio.gather(
            *(
                get_access_token(
                    config, provider="corp", provider_account_id=account_id, margin=margin
                )
                for _ in range(8)
            )
        )
        assert len(set(tokens)) == 1, round_
        assert oidc_provider.stats()["success"].get("refresh_token", 0) - before == 1
    latest = await mongo_db["accounts"].find_one({"provider": "corp"})
    assert latest is not None
    assert latest["access_token"] == tokens[0] != first["access_token"]
    # The provider rotates refresh tokens: the second round used the first round's one.
    assert latest["refresh_token"] != first["refresh_token"]
    assert latest["id_token"].count(".") == 2  # the refreshed, validated ID token
    assert latest["expires_at"] == int(clock.now) + 3600
