"""OpenID Connect sign-in against a real, certified OpenID provider (``oidc-provider``)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from pymongo.asynchronous.database import AsyncDatabase

from asgi_session import AuthConfig, Callbacks, ConfigurationError
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.providers import OIDC, Google
from asgi_session.providers._oidc import DISCOVERY_MAX_AGE
from tests.support.apps import SECRET, Clock, client_for
from tests.support.oauth import (
    APP_HOSTS,
    APP_ORIGIN,
    LoopbackServer,
    ProviderBrowser,
    Reply,
    Request,
    app_client,
    begin_sign_in,
    cookie_headers,
    error_of,
    land,
    oauth_app,
    query_of,
    session_of,
    with_query,
)
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProviderServer


def corp(issuer: str, **options: Any) -> OIDC:
    options.setdefault("id", "corp")
    options.setdefault("name", "Corp SSO")
    return OIDC(issuer=issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **options)


def make_config(provider: OIDC, **options: Any) -> AuthConfig:
    options.setdefault("secret", SECRET)
    options.setdefault("allowed_hosts", APP_HOSTS)
    return AuthConfig(providers=[provider], **options)


async def sign_in_flow(
    client: httpx2.AsyncClient,
    browser: ProviderBrowser,
    provider_id: str = "corp",
    *,
    login: str = "alice",
    callback_url: str = "/dashboard",
) -> httpx2.Response:
    """The whole dance: sign-in POST, the provider's pages, the callback. Returns the last."""
    started = await begin_sign_in(client, provider_id, callback_url=callback_url)
    assert started.status_code == 302, started.text
    landing = await browser.authorize(started.headers["location"], login=login)
    return await land(client, landing)


# -- the happy path --------------------------------------------------------------------


async def test_sign_in_runs_the_code_flow_with_state_pkce_and_nonce(
    oidc_provider: OIDCProviderServer, provider_browser: ProviderBrowser
) -> None:
    app = oauth_app(make_config(corp(oidc_provider.issuer)))
    async with app_client(app) as client:
        started = await begin_sign_in(client, "corp", callback_url="/dashboard")
        assert started.status_code == 302
        location = started.headers["location"]
        assert location.startswith(f"{oidc_provider.issuer}/auth?")
        params = query_of(location)
        assert params["client_id"] == CLIENT_ID
        assert params["response_type"] == "code"
        assert params["redirect_uri"] == f"{APP_ORIGIN}/auth/callback/corp"
        assert params["scope"] == "openid profile email"
        assert params["code_challenge_method"] == "S256"
        assert len(params["code_challenge"]) == 43
        assert len(params["state"]) >= 43 and len(params["nonce"]) >= 43
        set_cookies = cookie_headers(started)
        for name in ("authjs.state", "authjs.pkce.code_verifier", "authjs.nonce"):
            header = set_cookies[name]
            assert "HttpOnly" in header and "Max-Age=900" in header and "SameSite=Lax" in header
            # Encrypted: the raw values sent to the provider appear nowhere in the cookies.
            assert params["state"] not in header and params["nonce"] not in header

        landing = await provider_browser.authorize(location, login="alice")
        assert landing.method == "GET"
        assert query_of(landing.url)["iss"] == oidc_provider.issuer
        done = await land(client, landing)
        assert done.status_code == 302
        assert done.headers["location"] == f"{APP_ORIGIN}/dashboard"
        cleared = cookie_headers(done)
        for name in ("authjs.state", "authjs.pkce.code_verifier", "authjs.nonce"):
            assert "Max-Age=0" in cleared[name]
        assert "authjs.session-token" in cleared

        session = await session_of(client)
    assert session["user"] == {
        "name": "Alice",
        "email": "alice@example.com",
        "image": "https://img.example.com/alice.png",
    }
    # Without an adapter the user's id is a fresh one, not the provider's subject.
    assert session["id"] not in (None, "alice")


async def test_jwt_callback_receives_the_account_tokens_and_profile(
    oidc_provider: OIDCProviderServer, provider_browser: ProviderBrowser
) -> None:
    seen: list[dict[str, Any]] = []

    def jwt_callback(
        token: dict[str, Any], account: Any, profile: Any, trigger: str
    ) -> dict[str, Any]:
        if trigger in ("signIn", "signUp"):
            seen.append({"account": account, "profile": profile, "trigger": trigger})
            token["provider_account"] = account["providerAccountId"]
        return token

    clock = Clock()
    config = make_config(
        corp(oidc_provider.issuer), callbacks=Callbacks(jwt=jwt_callback), clock=clock
    )
    async with app_client(oauth_app(config)) as client:
        done = await sign_in_flow(client, provider_browser)
        assert done.status_code == 302
    [call] = seen
    assert call["trigger"] == "signIn"
    account = call["account"]
    assert account["provider"] == "corp" and account["type"] == "oidc"
    assert account["providerAccountId"] == "alice"
    assert account["token_type"] == "bearer"
    assert isinstance(account["access_token"], str) and account["id_token"].count(".") == 2
    assert account["expires_at"] == int(clock.now) + 3600
    assert call["profile"]["sub"] == "alice"
    assert call["profile"]["iss"] == oidc_provider.issuer
    assert call["profile"]["email"] == "alice@example.com"  # from the userinfo endpoint


async def test_form_post_response_mode(
    oidc_provider: OIDCProviderServer, provider_browser: ProviderBrowser
) -> None:
    provider = corp(oidc_provider.issuer, authorization_params={"response_mode": "form_post"})
    async with app_client(oauth_app(make_config(provider))) as client:
        started = await begin_sign_in(client, "corp")
        landing = await provider_browser.authorize(started.headers["location"])
        assert landing.method == "POST"
        assert set(landing.data) >= {"code", "state", "iss"}
        # The provider's page posts the answer: the browser marks it cross-site.
        done = await client.post(
            landing.url,
            data=landing.data,
            headers={"sec-fetch-site": "cross-site", "origin": oidc_provider.issuer},
        )
        assert done.headers["location"] == f"{APP_ORIGIN}/dashboard"
        assert (await session_of(client))["user"]["email"] == "alice@example.com"


async def test_form_post_check_cookies_are_cross_site_over_https(
    oidc_provider: OIDCProviderServer,
) -> None:
    provider = corp(oidc_provider.issuer, authorization_params={"response_mode": "form_post"})
    config = make_config(provider, url="https://app.test")
    async with client_for(oauth_app(config), base_url="https://app.test") as client:
        started = await begin_sign_in(client, "corp")
    assert started.status_code == 302, started.headers
    headers = cookie_headers(started)
    # The provider's POST back is cross-site: without SameSite=None the browser would
    # send none of these, and the sign-in would lose its checks and its destination.
    for name in (
        "__Secure-authjs.state",
        "__Secure-authjs.pkce.code_verifier",
        "__Secure-authjs.callback-url",
    ):
        assert "SameSite=None" in headers[name] and "Secure" in headers[name]


async def test_google_is_an_oidc_provider(
    oidc_provider: OIDCProviderServer, provider_browser: ProviderBrowser
) -> None:
    google = Google(issuer=oidc_provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert google.type == "oidc" and google.scope == "openid profile email"
    async with app_client(oauth_app(make_config(google))) as client:
        done = await sign_in_flow(client, provider_browser, "google", login="gus")
        assert done.headers["location"] == f"{APP_ORIGIN}/dashboard"
        assert (await session_of(client))["user"]["email"] == "gus@example.com"


async def test_an_outside_callback_url_is_replaced_by_the_app(
    oidc_provider: OIDCProviderServer, provider_browser: ProviderBrowser
) -> None:
    async with app_client(oauth_app(make_config(corp(oidc_provider.issuer)))) as client:
        done = await sign_in_flow(
            client, provider_browser, callback_url="https://evil.example/steal"
        )
    assert done.headers["location"] == APP_ORIGIN


async def test_discovery_is_cached_per_provider(
    oidc_provider: OIDCProviderServer, provider_browser: ProviderBrowser
) -> None:
    provider = corp(oidc_provider.issuer)
    before = oidc_provider.stats()["paths"]
    async with app_client(oauth_app(make_config(provider))) as client:
        await sign_in_flow(client, provider_browser)
        await sign_in_flow(client, provider_browser)
    after = oidc_provider.stats()["paths"]
    discovery = "/.well-known/openid-configuration"
    assert after.get(discovery, 0) - before.get(discovery, 0) == 1
    assert after.get("/jwks", 0) - before.get("/jwks", 0) == 1
    assert after["/token"] - before.get("/token", 0) == 2
    # A day later the document is fetched again.
    provider._metadata_at -= DISCOVERY_MAX_AGE
    await provider.endpoints()
    assert oidc_provider.stats()["paths"][discovery] - after[discovery] == 1


# -- configuration -----------------------------------------------------------------------


def test_missing_settings_fail_at_construction_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AUTH_CORP_ID", "AUTH_CORP_SECRET", "AUTH_CORP_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="AUTH_CORP_ID and AUTH_CORP_SECRET"):
        OIDC(id="corp", name="Corp SSO", issuer="https://sso.example.com")
    with pytest.raises(ConfigurationError, match="AUTH_CORP_ISSUER"):
        OIDC(id="corp", name="Corp SSO", client_id="id", client_secret="secret")
    monkeypatch.setenv("AUTH_CORP_ID", "env-id")
    monkeypatch.setenv("AUTH_CORP_SECRET", "env-secret")
    monkeypatch.setenv("AUTH_CORP_ISSUER", "https://sso.example.com")
    provider = OIDC(id="corp", name="Corp SSO")
    assert (provider.client_id, provider.client_secret) == ("env-id", "env-secret")
    assert provider.issuer == "https://sso.example.com"


def test_google_reads_its_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTH_GOOGLE_ID", raising=False)
    monkeypatch.delenv("AUTH_GOOGLE_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="AUTH_GOOGLE_ID and AUTH_GOOGLE_SECRET"):
        Google()
    monkeypatch.setenv("AUTH_GOOGLE_ID", "g-id")
    monkeypatch.setenv("AUTH_GOOGLE_SECRET", "g-secret")
    google = Google()
    assert google.issuer == "https://accounts.google.com" and google.client_id == "g-id"
    assert google.id_token_issuers() == ["https://accounts.google.com", "accounts.google.com"]


# -- refusals ----------------------------------------------------------------------------


@pytest.fixture
def store(mongo_db: AsyncDatabase[dict[str, Any]]) -> MongoDBAdapter:
    """A MongoDB adapter (database sessions), to prove refusals store nothing."""
    return MongoDBAdapter(mongo_db)


async def assert_nothing_stored(database: AsyncDatabase[dict[str, Any]]) -> None:
    for collection in ("users", "accounts", "sessions"):
        assert await database[collection].count_documents({}) == 0, collection


async def assert_refused(
    client: httpx2.AsyncClient, response: httpx2.Response, code: str = "OAuthCallbackError"
) -> None:
    path, error = error_of(response)
    assert (path, error) == ("/auth/signin", code)
    assert "authjs.session-token" not in cookie_headers(response)
    assert await session_of(client) is None
    # The sign-in page renders the error rather than failing.
    page = await client.get(response.headers["location"])
    assert page.status_code == 200 and f'data-error="{code}"' in page.text


async def test_state_missing_or_mismatched_is_refused(
    oidc_provider: OIDCProviderServer,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    config = make_config(corp(oidc_provider.issuer), adapter=store)
    async with app_client(oauth_app(config)) as client:
        for state in (None, "forged-state"):
            started = await begin_sign_in(client, "corp")
            landing = await provider_browser.authorize(started.headers["location"])
            landing.url = with_query(landing.url, state=state)
            done = await land(client, landing)
            await assert_refused(client, done)
            # The check cookies are spent even when the check fails.
            assert "Max-Age=0" in cookie_headers(done)["authjs.state"]
    await assert_nothing_stored(mongo_db)


async def test_state_issued_for_another_provider_is_refused(
    oidc_provider: OIDCProviderServer, provider_browser: ProviderBrowser
) -> None:
    config = AuthConfig(
        secret=SECRET,
        providers=[corp(oidc_provider.issuer), corp(oidc_provider.issuer, id="sso")],
        allowed_hosts=APP_HOSTS,
    )
    async with app_client(oauth_app(config)) as client:
        started = await begin_sign_in(client, "corp")
        landing = await provider_browser.authorize(started.headers["location"])
        landing.url = landing.url.replace("/callback/corp", "/callback/sso")
        await assert_refused(client, await land(client, landing))


async def test_a_replayed_callback_is_refused(
    oidc_provider: OIDCProviderServer, provider_browser: ProviderBrowser
) -> None:
    app = oauth_app(make_config(corp(oidc_provider.issuer)))
    async with app_client(app) as client:
        started = await begin_sign_in(client, "corp")
        check_cookies = dict(client.cookies)
        landing = await provider_browser.authorize(started.headers["location"])
        assert (await land(client, landing)).headers["location"] == f"{APP_ORIGIN}/dashboard"
        # The same browser again: its check cookies were cleared by the first callback.
        async with app_client(app) as replay:
            replay.cookies.update(
                {name: value for name, value in client.cookies.items() if "session" not in name}
            )
            await assert_refused(replay, await land(replay, landing))
    # An attacker holding the original check cookies: the code is spent at the provider.
    async with app_client(app) as attacker:
        attacker.cookies.update(check_cookies)
        await assert_refused(attacker, await land(attacker, landing))


async def test_missing_or_expired_check_cookies_are_refused(
    oidc_provider: OIDCProviderServer, provider_browser: ProviderBrowser
) -> None:
    clock = Clock()
    app = oauth_app(make_config(corp(oidc_provider.issuer), clock=clock))
    async with app_client(app) as client:
        started = await begin_sign_in(client, "corp")
        landing = await provider_browser.authorize(started.headers["location"])
        async with app_client(app) as other_browser:
            await assert_refused(other_browser, await land(other_browser, landing))
        clock.advance(15 * 60 + 20)
        await assert_refused(client, await land(client, landing))


async def test_each_check_cookie_is_required(
    oidc_provider: OIDCProviderServer, provider_browser: ProviderBrowser
) -> None:
    app = oauth_app(make_config(corp(oidc_provider.issuer)))
    for cookie in ("authjs.pkce.code_verifier", "authjs.nonce"):
        async with app_client(app) as client:
            started = await begin_sign_in(client, "corp")
            landing = await provider_browser.authorize(started.headers["location"])
            client.cookies.delete(cookie)
            await assert_refused(client, await land(client, landing))


async def test_the_user_cancelling_at_the_provider_is_refused(
    oidc_provider: OIDCProviderServer,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    config = make_config(corp(oidc_provider.issuer), adapter=store)
    async with app_client(oauth_app(config)) as client:
        started = await begin_sign_in(client, "corp")
        landing = await provider_browser.authorize(started.headers["location"], cancel=True)
        assert query_of(landing.url)["error"] == "access_denied"
        await assert_refused(client, await land(client, landing))
    await assert_nothing_stored(mongo_db)


async def test_a_nonce_the_app_did_not_issue_is_refused(
    oidc_provider: OIDCProviderServer, provider_browser: ProviderBrowser
) -> None:
    async with app_client(oauth_app(make_config(corp(oidc_provider.issuer)))) as client:
        started = await begin_sign_in(client, "corp")
        # The provider really signs an ID token carrying this other nonce.
        url = with_query(started.headers["location"], nonce="a-nonce-from-elsewhere")
        landing = await provider_browser.authorize(url)
        await assert_refused(client, await land(client, landing))


async def test_an_iss_parameter_naming_another_issuer_is_refused(
    oidc_provider: OIDCProviderServer, provider_browser: ProviderBrowser
) -> None:
    async with app_client(oauth_app(make_config(corp(oidc_provider.issuer)))) as client:
        for iss in ("https://attacker.example", None):
            started = await begin_sign_in(client, "corp")
            landing = await provider_browser.authorize(started.headers["location"])
            landing.url = with_query(landing.url, iss=iss)
            await assert_refused(client, await land(client, landing))


async def test_an_unreachable_provider_fails_the_sign_in_post() -> None:
    provider = corp("http://127.0.0.1:9")  # the discard port: nothing listens
    async with app_client(oauth_app(make_config(provider))) as client:
        started = await begin_sign_in(client, "corp")
    assert error_of(started) == ("/auth/signin", "OAuthSignin")
    assert "authjs.state" not in cookie_headers(started)


async def test_a_discovery_document_for_another_issuer_is_refused(
    oidc_provider: OIDCProviderServer,
) -> None:
    # Same server, but the configured issuer differs from what the document says.
    provider = corp(oidc_provider.issuer + "/")
    async with app_client(oauth_app(make_config(provider))) as client:
        started = await begin_sign_in(client, "corp")
    assert error_of(started) == ("/auth/signin", "OAuthSignin")


# -- ID tokens and token endpoints that cannot be trusted ---------------------------------


class TokenProxy:
    """The provider's token endpoint behind a proxy that alters its answers.

    The real provider issues real tokens; the proxy then rewrites the ID token's claims
    and signs it again with the provider's own key (or another), as a compromised or
    misconfigured token endpoint could. ``mode`` picks the alteration.
    """

    def __init__(self, provider: OIDCProviderServer, key: RSAKey) -> None:
        self.provider = provider
        self.key = key
        self.mode = "pass"
        self.server = LoopbackServer(self.handle)

    def handle(self, request: Request) -> Reply:
        if self.mode == "garbage":
            return Reply(200, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"})
        headers = {"authorization": request.headers.get("authorization", "")}
        upstream = httpx2.post(
            f"{self.provider.issuer}/token", data=request.form, headers=headers, timeout=10
        )
        body = upstream.json()
        if upstream.status_code == 200 and "id_token" in body:
            if self.mode == "no-id-token":
                del body["id_token"]
            else:
                body["id_token"] = self.forge(body["id_token"])
        return Reply(upstream.status_code, body)

    def forge(self, id_token: str) -> str:
        claims = jwt.decode(id_token, self.key).claims
        key = self.key
        now = int(time.time())
        if self.mode == "iss":
            claims["iss"] = "https://other-issuer.example"
        elif self.mode == "aud":
            claims["aud"] = "some-other-client"
        elif self.mode == "exp":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif self.mode == "nonce":
            claims["nonce"] = "not-the-nonce"
        elif self.mode in ("signature", "kid"):
            kid = str(self.key.kid) if self.mode == "signature" else "unknown-key"
            key = RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)
        elif self.mode == "alg-none":

            def part(data: dict[str, Any]) -> str:
                raw = json.dumps(data).encode()
                return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

            return f"{part({'alg': 'none'})}.{part(claims)}."
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


@pytest.fixture(scope="module")
def token_proxy(
    oidc_provider: OIDCProviderServer, oidc_signing_key: RSAKey
) -> Iterator[TokenProxy]:
    proxy = TokenProxy(oidc_provider, oidc_signing_key)
    proxy.server.start()
    try:
        yield proxy
    finally:
        proxy.server.close()


def proxied_app(token_proxy: TokenProxy, store: MongoDBAdapter, mode: str) -> Any:
    """An app whose provider gets its tokens through the proxy, altered per ``mode``."""
    token_proxy.mode = mode
    provider = corp(
        token_proxy.provider.issuer, id="tampered", token_url=f"{token_proxy.server.url}/token"
    )
    return oauth_app(make_config(provider, adapter=store))


async def test_the_token_proxy_passes_good_tokens(
    token_proxy: TokenProxy,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    # The forging itself keeps a token valid: only the alterations below break it.
    async with app_client(proxied_app(token_proxy, store, "resign")) as client:
        done = await sign_in_flow(client, provider_browser, "tampered")
        assert done.headers["location"] == f"{APP_ORIGIN}/dashboard"
        assert (await session_of(client))["user"]["email"] == "alice@example.com"


@pytest.mark.parametrize(
    "mode", ["iss", "aud", "exp", "nonce", "signature", "kid", "alg-none", "no-id-token", "garbage"]
)
async def test_untrustworthy_token_responses_are_refused(
    token_proxy: TokenProxy,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: AsyncDatabase[dict[str, Any]],
    mode: str,
) -> None:
    async with app_client(proxied_app(token_proxy, store, mode)) as client:
        await assert_refused(client, await sign_in_flow(client, provider_browser, "tampered"))
    await assert_nothing_stored(mongo_db)


async def test_an_unknown_key_id_refetches_the_key_set_once(
    token_proxy: TokenProxy, provider_browser: ProviderBrowser, store: MongoDBAdapter
) -> None:
    before = token_proxy.provider.stats()["paths"].get("/jwks", 0)
    async with app_client(proxied_app(token_proxy, store, "kid")) as client:
        await assert_refused(client, await sign_in_flow(client, provider_browser, "tampered"))
    # Once for the first use, once more because the key id was unknown; no more.
    assert token_proxy.provider.stats()["paths"]["/jwks"] - before == 2


async def test_a_token_endpoint_that_is_down_is_refused(
    oidc_provider: OIDCProviderServer,
    provider_browser: ProviderBrowser,
    store: MongoDBAdapter,
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    provider = corp(oidc_provider.issuer, token_url="http://127.0.0.1:9/token")
    async with app_client(oauth_app(make_config(provider, adapter=store))) as client:
        await assert_refused(client, await sign_in_flow(client, provider_browser))
    await assert_nothing_stored(mongo_db)
