"""The deployment guide's sample (docs/samples/deploy_app.py), run as in production:
behind a TLS-terminating proxy that sets X-Forwarded-*, as two instances on one MongoDB
replica set, with a rotated secret, and with its database gone."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import httpx2
import pytest

from tests.support.docs import load_sample
from tests.support.passwords import GOOD_PASSWORD
from tests.test_docs_databases import SECRET, lifespan, until, with_database

PUBLIC = "https://app.example.com"
PROXY = ("10.0.0.5", 41_000)  # the reverse proxy's address, in trusted_proxies
INTERNAL = "http://10.0.0.12:8000"  # where the proxy reaches the app
BROWSER_IP = "198.51.100.7"
SECURE_COOKIE = "__Secure-authjs.session-token"
OLD_SECRET = "the-previous-secret-that-is-long-enough-0123"


class ReverseProxy(httpx2.AsyncBaseTransport):
    """A TLS-terminating proxy in front of the app: the browser asks for
    ``https://app.example.com/...``; the app gets plain http on its internal address,
    from the proxy's address, with X-Forwarded-Host, -Proto and -For added."""

    def __init__(self, app: Any, client_ip: str) -> None:
        self.upstream = httpx2.ASGITransport(app=app, client=PROXY)
        self.client_ip = client_ip

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
        headers += [
            (b"host", b"10.0.0.12:8000"),
            (b"x-forwarded-host", request.url.netloc),
            (b"x-forwarded-proto", request.url.scheme.encode()),
            (b"x-forwarded-for", self.client_ip.encode()),
        ]
        upstream = httpx2.Request(
            request.method,
            request.url.copy_with(scheme="http", host="10.0.0.12", port=8000),
            headers=headers,
            content=await request.aread(),
        )
        return await self.upstream.handle_async_request(upstream)


class Instance:
    """One started instance of the sample, and the ways to reach it."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.config = module.config

    def browser(
        self, client_ip: str = BROWSER_IP, host: str = "app.example.com"
    ) -> httpx2.AsyncClient:
        """A browser at ``client_ip`` opening ``https://<host>``, through the proxy."""
        return httpx2.AsyncClient(
            transport=ReverseProxy(self.module.app, client_ip), base_url=f"https://{host}"
        )

    def direct(self, peer: tuple[str, int], base_url: str, **headers: str) -> httpx2.AsyncClient:
        """A client reaching the app itself, around the proxy."""
        transport = httpx2.ASGITransport(app=self.module.app, client=peer)
        return httpx2.AsyncClient(transport=transport, base_url=base_url, headers=headers)


@contextlib.asynccontextmanager
async def instance() -> AsyncIterator[Instance]:
    module = load_sample("deploy_app.py")
    async with lifespan(module.app):
        yield Instance(module)


@pytest.fixture
def deploy_env(monkeypatch: pytest.MonkeyPatch, mongodb_url: str, mongo_db_name: str) -> None:
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    for name in ("AUTH_SECRET_1", "AUTH_URL", "AUTH_TRUST_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MONGODB_URL", with_database(mongodb_url, mongo_db_name))


async def csrf(browser: httpx2.AsyncClient) -> str:
    token: str = (await browser.get("/auth/csrf")).json()["csrfToken"]
    return token


async def sign_up(browser: httpx2.AsyncClient, email: str = "ada@example.com") -> httpx2.Response:
    return await browser.post(
        "/auth/signup",
        data={"csrfToken": await csrf(browser), "email": email, "password": GOOD_PASSWORD},
    )


async def failed_sign_in(browser: httpx2.AsyncClient, email: str) -> str:
    """A wrong password; the error the sign-in page is sent with."""
    response = await browser.post(
        "/auth/callback/password",
        data={"csrfToken": await csrf(browser), "email": email, "password": "not it at all"},
    )
    assert response.status_code == 302, response.text
    return str(httpx2.URL(response.headers["location"]).params.get("error"))


def session_cookie(response: httpx2.Response) -> str:
    (header,) = [
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith(f"{SECURE_COOKIE}=")
    ]
    return header


async def test_behind_the_proxy_urls_and_cookies_are_the_public_ones(
    deploy_env: None, mongo_db: Any
) -> None:
    async with instance() as app, app.browser() as browser:
        providers = (await browser.get("/auth/providers")).json()
        assert providers["password"]["callbackUrl"] == f"{PUBLIC}/auth/callback/password"
        response = await sign_up(browser)
        assert response.status_code == 302, response.text
        assert response.headers["location"].startswith(PUBLIC)
        cookie = session_cookie(response)
        assert "; Secure" in cookie and "HttpOnly" in cookie
        assert (await browser.get("/")).json()["signedIn"] is True
        assert await mongo_db.sessions.count_documents({}) == 1

        # Another forwarded host is refused by the auth routes.
        async with app.browser(host="evil.example") as other:
            refused = await other.get("/auth/csrf")
            assert refused.status_code == 400
            assert "allowed_hosts" in refused.text
        # The health check answers the load balancer on the internal address.
        async with app.direct(PROXY, INTERNAL) as balancer:
            health = await balancer.get("/healthz")
            assert (health.status_code, health.text) == (200, "ok")


async def test_auth_url_fixes_the_public_origin(
    deploy_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_URL", PUBLIC)
    # A proxy that passes the Host header on, over plain http, and adds nothing.
    async with instance() as app, app.direct(PROXY, "http://app.example.com") as plain:
        providers = (await plain.get("/auth/providers")).json()
        assert providers["password"]["signinUrl"].startswith(f"{PUBLIC}/auth/")
        csrf_response = await plain.get("/auth/csrf")
        assert any(
            header.startswith("__Host-authjs.csrf-token=") and "; Secure" in header
            for header in csrf_response.headers.get_list("set-cookie")
        )


async def test_the_rate_limits_count_the_client_the_proxy_names(
    deploy_env: None, mongo_db: Any
) -> None:
    async with instance() as app:
        async with app.browser(BROWSER_IP) as guesser:
            # Ten failures per address a minute (each for another account, so the
            # per-account limit of five is not what stops them).
            for number in range(10):
                error = await failed_sign_in(guesser, f"user{number}@example.com")
                assert error == "CredentialsSignin"
            assert await failed_sign_in(guesser, "user10@example.com") == "RateLimited"
        async with app.browser("198.51.100.8") as neighbour:
            assert await failed_sign_in(neighbour, "user0@example.com") == "CredentialsSignin"
        # The counters are in the database, keyed by hashes.
        stored = str(await mongo_db.rate_limits.find().to_list(None))
        assert stored != "[]"
        assert BROWSER_IP not in stored and "user1@example.com" not in stored

        # A client reaching the app around the proxy cannot choose whom it counts as:
        # its X-Forwarded-For is not read, its own address is counted.
        outsider = ("203.0.113.50", 50_000)
        for number in range(10):
            async with app.direct(
                outsider, "http://app.example.com", **{"X-Forwarded-For": f"192.0.2.{number}"}
            ) as spoofer:
                await failed_sign_in(spoofer, f"spoof{number}@example.com")
        async with app.direct(
            outsider, "http://app.example.com", **{"X-Forwarded-For": "192.0.2.200"}
        ) as again:
            assert await failed_sign_in(again, "spoof10@example.com") == "RateLimited"


async def test_two_instances_share_sessions_and_one_sign_out(
    deploy_env: None, mongo_db: Any
) -> None:
    async with (
        instance() as first,
        instance() as second,
        first.browser() as on_a,
        second.browser() as on_b,
    ):
        assert (await sign_up(on_a)).status_code == 302
        on_b.cookies.set(SECURE_COOKIE, on_a.cookies[SECURE_COOKIE])
        assert (await on_b.get("/")).json()["signedIn"] is True

        async def cached() -> bool:
            await on_b.get("/")
            return bool(second.config.strategy.cache_active)

        await until(cached, 10, "the second instance's session cache became active")

        # Signed out through the first instance...
        await on_a.post("/auth/signout", data={"csrfToken": await csrf(on_a)})
        assert await mongo_db.sessions.count_documents({}) == 0

        # ...and the second one, which served that session from memory, stops.
        async def ended() -> bool:
            return (await on_b.get("/")).json()["signedIn"] is False

        await until(ended, 2, "the second instance saw the sign-out")


async def test_rate_limits_hold_across_instances(deploy_env: None) -> None:
    async with (
        instance() as first,
        instance() as second,
        first.browser() as on_a,
        second.browser() as on_b,
    ):
        for number in range(5):
            await failed_sign_in(on_a, f"a{number}@example.com")
            await failed_sign_in(on_b, f"b{number}@example.com")
        assert await failed_sign_in(on_b, "c@example.com") == "RateLimited"
        assert await failed_sign_in(on_a, "c@example.com") == "RateLimited"


async def test_a_rotated_secret_still_decrypts_what_the_old_one_made(
    deploy_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_SECRET", OLD_SECRET)
    async with instance() as old, old.browser() as browser:
        token = await csrf(browser)  # a CSRF cookie and token made under the old secret
        cookies = browser.cookies

    async def sign_up_with_old_token(app: Instance, email: str) -> httpx2.Response:
        async with app.browser() as later:
            later.cookies = cookies
            return await later.post(
                "/auth/signup",
                data={"csrfToken": token, "email": email, "password": GOOD_PASSWORD},
            )

    monkeypatch.setenv("AUTH_SECRET", SECRET)
    monkeypatch.setenv("AUTH_SECRET_1", OLD_SECRET)
    async with instance() as rotated:
        response = await sign_up_with_old_token(rotated, "ada@example.com")
        assert response.status_code == 302 and session_cookie(response)
    monkeypatch.delenv("AUTH_SECRET_1")
    async with instance() as dropped:
        response = await sign_up_with_old_token(dropped, "bob@example.com")
        assert "MissingCSRF" in response.headers.get("location", response.text), response.text


async def test_without_its_database_the_app_answers_503_and_the_health_check_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    monkeypatch.delenv("AUTH_URL", raising=False)
    monkeypatch.setenv("MONGODB_URL", "mongodb://127.0.0.1:9/app")  # nothing listens there
    module = load_sample("deploy_app.py")
    app = Instance(module)
    async with app.browser() as browser, app.direct(PROXY, INTERNAL) as balancer:
        browser.cookies.set(SECURE_COOKIE, "a-session-token-from-before-the-outage")
        token = await csrf(browser)  # needs no database
        started = time.monotonic()
        page, sign_in, health = await asyncio.gather(
            browser.get("/"),
            browser.post(
                "/auth/callback/password",
                data={"csrfToken": token, "email": "a@example.com", "password": "x"},
            ),
            balancer.get("/healthz"),
        )
        waited = time.monotonic() - started
    # Each gives up within operation_timeout (5 s): a request never hangs on the database.
    assert waited < 5 + 1.5
    assert (page.status_code, page.headers["retry-after"]) == (503, "5")
    assert "session store cannot be reached" in page.text
    assert sign_in.status_code == 503
    assert health.status_code == 503
    await module.client.close()


async def test_an_app_served_under_a_prefix_takes_it_from_root_path(deploy_env: None) -> None:
    async with instance() as app:
        # What `uvicorn --root-path /app` tells the app of a request the proxy passed on.
        transport = httpx2.ASGITransport(app=app.module.app, client=PROXY, root_path="/app")
        async with httpx2.AsyncClient(
            transport=transport,
            base_url=INTERNAL,
            headers={"X-Forwarded-Host": "app.example.com", "X-Forwarded-Proto": "https"},
        ) as browser:
            providers = (await browser.get("/auth/providers")).json()
    assert providers["password"]["callbackUrl"] == f"{PUBLIC}/app/auth/callback/password"
