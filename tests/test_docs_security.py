"""The samples of the security guide, driven through the real routes on the real mongod:
hosts that are refused, pages of other sites that cannot post, rate limits, the headers
and cookies the routes send, where a sign-in may send the browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType

import httpx2
import pytest

from tests.support.apps import SECRET, csrf_token
from tests.support.docs import loaded_sample, mongodb_url_with_database
from tests.support.passwords import FAST_HASHER, GOOD_PASSWORD

SECURE_SESSION_COOKIE = "__Secure-authjs.session-token"
CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, mongodb_url: str, mongo_db_name: str) -> None:
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    monkeypatch.delenv("AUTH_URL", raising=False)
    monkeypatch.setenv("MONGODB_URL", mongodb_url_with_database(mongodb_url, mongo_db_name))


@pytest.fixture
async def hosts_app(environment: None) -> AsyncIterator[ModuleType]:
    async for module in loaded_sample("security_hosts.py"):
        for email in ("ada@example.com", "bob@example.com"):
            hashed = await FAST_HASHER.hash_async(GOOD_PASSWORD)
            await module.members.insert_one({"email": email, "password_hash": hashed})
        yield module


@pytest.fixture
async def proxy_app(environment: None) -> AsyncIterator[ModuleType]:
    async for module in loaded_sample("security_proxy.py"):
        yield module


def signed_in(response: httpx2.Response) -> bool:
    """Whether ``response`` set a session cookie, under its plain or its https name."""
    for header in response.headers.get_list("set-cookie"):
        name, _, value = header.partition("=")
        if name in ("authjs.session-token", SECURE_SESSION_COOKIE) and not value.startswith(";"):
            return True
    return False


def _client(
    module: ModuleType, base_url: str, peer: str = "203.0.113.7", **headers: str
) -> httpx2.AsyncClient:
    transport = httpx2.ASGITransport(app=module.app, client=(peer, 50_000))
    return httpx2.AsyncClient(transport=transport, base_url=base_url, headers=headers)


async def _sign_up(client: httpx2.AsyncClient, email: str = "ada@example.com") -> httpx2.Response:
    return await client.post(
        "/auth/signup",
        data={"csrfToken": await csrf_token(client), "email": email, "password": GOOD_PASSWORD},
    )


async def _sign_in(
    client: httpx2.AsyncClient,
    email: str = "ada@example.com",
    password: str = GOOD_PASSWORD,
    headers: dict[str, str] | None = None,
    provider: str = "credentials",
    **fields: str,
) -> httpx2.Response:
    return await client.post(
        f"/auth/callback/{provider}",
        data={
            "csrfToken": await csrf_token(client),
            "email": email,
            "password": password,
            **fields,
        },
        headers=headers,
    )


# -- security_hosts.py ---------------------------------------------------------------------


async def test_only_the_listed_hosts_are_answered(hosts_app: ModuleType) -> None:
    for base_url in ("http://example.com", "https://eu.example.com"):
        async with _client(hosts_app, base_url) as client:
            page = await client.get("/auth/signin")
            assert page.status_code == 200
            assert f'action="{base_url}/auth/callback/credentials"' in page.text
    for base_url in ("http://evil.example", "http://example.com.evil.example", "http://testserver"):
        async with _client(hosts_app, base_url) as client:
            refused = await client.get("/auth/signin")
            assert refused.status_code == 400
            assert "allowed_hosts" in refused.text
            assert "evil" not in refused.text


async def test_pages_of_other_sites_cannot_post_even_with_the_token(hosts_app: ModuleType) -> None:
    async with _client(hosts_app, "https://app.example.com") as browser:
        for headers in (
            CROSS_SITE,
            {"Sec-Fetch-Site": "same-site", "Origin": "https://blog.example.com"},
            {"Origin": "https://evil.example"},  # an older browser: no Sec-Fetch-Site
        ):
            refused = await _sign_in(browser, headers=headers)
            assert refused.status_code == 403
            assert "trusted_origins" in refused.text
            assert not signed_in(refused)
        trusted = {"Sec-Fetch-Site": "same-site", "Origin": "https://shop.example.com"}
        assert signed_in(await _sign_in(browser, headers=trusted))
        same_origin = {"Sec-Fetch-Site": "same-origin", "Origin": "https://app.example.com"}
        assert signed_in(await _sign_in(browser, headers=same_origin))
        # Without the double-submit token nothing is signed in, whatever the origin.
        forged = await browser.post(
            "/auth/callback/credentials",
            data={"email": "ada@example.com", "password": GOOD_PASSWORD},
            headers=same_origin,
        )
        assert not signed_in(forged)


async def test_failed_sign_ins_for_one_address_are_limited(hosts_app: ModuleType) -> None:
    async with (
        _client(hosts_app, "https://app.example.com") as browser,
        _client(hosts_app, "https://app.example.com", peer="198.51.100.9") as elsewhere,
    ):
        for _ in range(3):
            wrong = await _sign_in(browser, password="not the passphrase")
            assert "error=CredentialsSignin" in wrong.headers["location"]
        # Past the limit even the right password, from anywhere, is refused for a while.
        limited = await _sign_in(elsewhere)
        assert (
            limited.headers["location"] == "https://app.example.com/auth/signin?error=RateLimited"
        )
        assert 0 < int(limited.headers["retry-after"]) <= 15 * 60
        assert not signed_in(limited)
        as_json = await _sign_in(elsewhere, headers={"X-Auth-Return-Redirect": "1"})
        assert as_json.status_code == 429
        assert as_json.headers["retry-after"]
        # Other addresses are not held up.
        assert signed_in(await _sign_in(elsewhere, "bob@example.com"))


async def test_the_routes_headers_and_cookies(hosts_app: ModuleType) -> None:
    async with _client(hosts_app, "https://app.example.com") as browser:
        page = await browser.get("/auth/signin")
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-content-type-options"] == "nosniff"
        # same-origin, not no-referrer: under no-referrer a page's own form posts would
        # carry Origin: null, which the cross-site check refuses.
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["x-frame-options"] == "DENY"
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        session = await browser.get("/auth/session")
        assert "no-store" in session.headers["cache-control"]

        browser.cookies.clear()
        csrf = (await browser.get("/auth/csrf")).headers["set-cookie"]
        assert csrf.startswith("__Host-authjs.csrf-token=")
        for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
            assert attribute.lower() in csrf.lower()
        signed = await _sign_in(browser)
        cookie = next(
            header
            for header in signed.headers.get_list("set-cookie")
            if header.startswith(f"{SECURE_SESSION_COOKIE}=")
        )
        for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
            assert attribute.lower() in cookie.lower()


@pytest.mark.parametrize(
    ("callback_url", "lands"),
    [
        ("/orders?page=2", "https://app.example.com/orders?page=2"),
        ("https://app.example.com/orders", "https://app.example.com/orders"),
        ("https://evil.example/phish", "https://app.example.com"),
        ("//evil.example/phish", "https://app.example.com"),
        ("/\\evil.example", "https://app.example.com"),
        ("javascript:alert(1)", "https://app.example.com"),
        ("http://app.example.com/orders", "https://app.example.com"),  # another scheme
    ],
)
async def test_a_sign_in_sends_the_browser_nowhere_else(
    hosts_app: ModuleType, callback_url: str, lands: str
) -> None:
    async with _client(hosts_app, "https://app.example.com") as browser:
        response = await _sign_in(browser, callbackUrl=callback_url)
        assert response.headers["location"] == lands


async def test_a_token_planted_before_sign_in_is_never_used(hosts_app: ModuleType) -> None:
    async with _client(hosts_app, "https://app.example.com") as browser:
        planted = "a-token-an-attacker-chose"
        browser.cookies.set(SECURE_SESSION_COOKIE, planted, domain="app.example.com")
        response = await _sign_in(browser)
        issued = browser.cookies.get(SECURE_SESSION_COOKIE)
        assert signed_in(response)
        assert issued and issued != planted


# -- security_proxy.py ---------------------------------------------------------------------


async def test_behind_a_proxy_cookies_are_secure_and_the_url_is_the_configured_one(
    proxy_app: ModuleType,
) -> None:
    # The proxy speaks plain http to the app, under any Host.
    async with _client(proxy_app, "http://10.0.0.12:8000", peer="10.0.0.2") as hop:
        response = await hop.get("/auth/csrf")
        assert response.headers["set-cookie"].startswith("__Host-authjs.csrf-token=")
        assert "; Secure" in response.headers["set-cookie"]
        providers = (await hop.get("/auth/providers")).json()
        assert providers["password"]["callbackUrl"] == (
            "https://app.example.com/auth/callback/password"
        )


async def test_only_a_trusted_proxy_names_the_client(proxy_app: ModuleType) -> None:
    url = "https://app.example.com"

    async def guesses(client: httpx2.AsyncClient, count: int) -> list[str]:
        found = []
        for n in range(count):
            wrong = await _sign_in(
                client, f"nobody{n}@example.com", "some guessed passphrase", provider="password"
            )
            found.append(wrong.headers["location"])
        return found

    limited = f"{url}/auth/signin?error=RateLimited"
    # Behind the proxy, each client has its own count (10 failures a minute by default).
    async with (
        _client(proxy_app, url, "10.0.0.2", **{"X-Forwarded-For": "203.0.113.1"}) as one,
        _client(proxy_app, url, "10.0.0.2", **{"X-Forwarded-For": "203.0.113.2"}) as two,
    ):
        assert limited not in await guesses(one, 10)
        assert (await guesses(one, 1)) == [limited]
        assert limited not in await guesses(two, 1)
    # A client talking to the app directly cannot pick its address by the header.
    async with _client(proxy_app, url, "198.51.100.4") as direct:
        for n in range(11):
            direct.headers["X-Forwarded-For"] = f"192.0.2.{n}"
            last = await guesses(direct, 1)
        assert last == [limited]
