"""Trusted hosts and cross-site request checks: ``_hosts.py`` and where the routes apply it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from asgi_session import AuthConfig, ConfigurationError
from asgi_session._hosts import HostPolicy, host_name, is_cross_site, normalize_origin
from tests.support.apps import SECRET, USERS, build_app, client_for, csrf_token, sign_in

# -- the pure rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("Example.COM", "example.com"),
        ("example.com:8443", "example.com"),
        ("example.com.", "example.com"),
        ("[::1]:8000", "[::1]"),
        ("127.0.0.1", "127.0.0.1"),
        ("", None),
        ("evil.com/path", None),
        ("evil.com@good.com", None),
        ("a b", None),
        ("example.com:99999999", None),
        ("exa\x00mple.com", None),
    ],
)
def test_host_names_are_parsed_strictly(host: str, name: str | None) -> None:
    assert host_name(host) == name


def test_a_policy_allows_exact_names_domains_and_any() -> None:
    policy = HostPolicy.of(["app.example.com", ".example.org"])
    assert policy.allows("app.example.com")
    assert policy.allows("APP.example.com:443")
    assert policy.allows("example.org")
    assert policy.allows("eu.api.example.org")
    assert not policy.allows("example.com")
    assert not policy.allows("evil-example.org")
    assert not policy.allows("example.org.evil.com")
    assert not policy.allows(None)
    assert HostPolicy.of(["*"]).allows("anything.example")
    assert not HostPolicy.of(["*"]).allows("not a host")


@pytest.mark.parametrize(
    ("origin", "normalized"),
    [
        ("https://App.Example.com", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("null", None),
        ("ftp://example.com", None),
        ("https://example.com/path", None),
        ("https://user@example.com", None),
        ("https://example.com:bad", None),
    ],
)
def test_origins_are_normalized(origin: str, normalized: str | None) -> None:
    assert normalize_origin(origin) == normalized


@pytest.mark.parametrize(
    ("fetch_site", "origin", "cross"),
    [
        ("same-origin", "https://app.example.com", False),
        ("none", None, False),
        ("same-site", "https://evil.example.com", True),  # a sibling subdomain
        ("cross-site", "https://evil.test", True),
        ("cross-site", None, True),
        ("cross-site", "https://front.example.com", False),  # trusted
        (None, "https://app.example.com:443", False),
        (None, "https://evil.test", True),
        (None, "null", True),
        (None, "https://front.example.com", False),
        (None, None, False),  # not a browser: the CSRF token still guards it
    ],
)
def test_cross_site_requests_are_told_apart(
    fetch_site: str | None, origin: str | None, cross: bool
) -> None:
    trusted = frozenset({"https://front.example.com"})
    assert is_cross_site(fetch_site, origin, "https://app.example.com", trusted) is cross


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"allowed_hosts": "example.com"}, "must be a list"),
        ({"allowed_hosts": ["https://example.com"]}, "without scheme or port"),
        ({"allowed_hosts": ["example.com:443"]}, "without scheme or port"),
        ({"trusted_origins": ["example.com"]}, "is not an origin"),
        ({"trusted_origins": ["https://example.com/app"]}, "without a path"),
        ({"trusted_origins": "https://example.com"}, "must be a list"),
    ],
)
def test_bad_host_settings_say_how_to_fix_them(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        AuthConfig(secret=SECRET, **options)


def test_which_hosts_are_checked_by_default() -> None:
    default = AuthConfig(secret=SECRET).allowed_hosts
    assert default is not None
    for host in ("localhost:8000", "127.0.0.1", "[::1]:3000", "testserver"):
        assert default.allows(host)
    assert not default.allows("app.example.com")
    # A configured URL means no URL is built from the request; a trusted proxy vouches.
    assert AuthConfig(secret=SECRET, url="https://app.example.com").allowed_hosts is None
    assert AuthConfig(secret=SECRET, trust_host=True).allowed_hosts is None


# -- untrusted hosts at the routes --------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/auth/providers", "/auth/signin", "/auth/error", "/auth/session", "/auth/csrf"]
)
async def test_a_forged_host_gets_a_400_and_no_url_built_from_it(path: str) -> None:
    async with client_for(build_app(), base_url="http://evil.example") as client:
        response = await client.get(path)
    assert response.status_code == 400
    assert "allowed_hosts" in response.text
    assert "evil.example" not in response.text
    assert "evil.example" not in str(response.headers)


async def test_a_forged_host_cannot_post_a_sign_in() -> None:
    async with client_for(build_app()) as client:
        token = await csrf_token(client)
        response = await client.post(
            "/auth/callback/credentials",
            data={"csrfToken": token, **USERS["ann@example.com"]},
            headers={"host": "evil.example"},
        )
    assert response.status_code == 400
    assert "set-cookie" not in response.headers


async def test_an_untrusted_host_is_logged_once_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with client_for(build_app(), base_url="http://evil.example") as client:
        with caplog.at_level(logging.WARNING, logger="asgi_session"):
            for _ in range(5):
                assert (await client.get("/auth/signin")).status_code == 400
    warnings = [record for record in caplog.records if "allowed_hosts" in record.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


async def test_allowed_hosts_accept_their_names_and_subdomains() -> None:
    app = build_app(allowed_hosts=[".example.com"])
    for base_url in ("https://example.com", "https://eu.example.com"):
        async with client_for(app, base_url=base_url) as client:
            providers = (await client.get("/auth/providers")).json()
        assert providers["credentials"]["signinUrl"] == f"{base_url}/auth/signin/credentials"
    async with client_for(app) as client:  # testserver is no longer implied
        assert (await client.get("/auth/providers")).status_code == 400


async def test_trust_host_checks_the_forwarded_host_when_hosts_are_listed() -> None:
    app = build_app(trust_host=True, allowed_hosts=["app.example.com"])
    async with client_for(app) as client:
        good = await client.get("/auth/providers", headers={"x-forwarded-host": "app.example.com"})
        bad = await client.get("/auth/providers", headers={"x-forwarded-host": "evil.example"})
    assert good.status_code == 200
    assert bad.status_code == 400


async def test_app_routes_are_not_refused_for_their_host() -> None:
    # The host check guards the URLs the auth routes build; the app's own pages
    # decide for themselves.
    async with client_for(build_app(), base_url="http://evil.example") as client:
        assert (await client.get("/")).status_code == 200


async def test_an_https_url_makes_cookies_secure_behind_a_plain_http_proxy() -> None:
    app = build_app(url="https://app.example.com")
    async with client_for(app, base_url="http://app.example.com") as client:
        response = await client.get("/auth/csrf")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-authjs.csrf-token=")
    assert "; Secure" in cookie


# -- cross-site requests at the routes ----------------------------------------------------


async def _post_sign_in(client: Any, headers: dict[str, str]) -> Any:
    token = await csrf_token(client)
    return await client.post(
        "/auth/callback/credentials",
        data={"csrfToken": token, **USERS["ann@example.com"]},
        headers=headers,
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site", "origin": "https://evil.test"},
        {"sec-fetch-site": "same-site", "origin": "http://evil.testserver"},
        {"origin": "https://evil.test"},
        {"origin": "null"},
    ],
)
async def test_a_cross_site_post_is_refused_even_with_a_valid_csrf_token(
    headers: dict[str, str],
) -> None:
    async with client_for(build_app()) as client:
        response = await _post_sign_in(client, headers)
    assert response.status_code == 403
    assert "trusted_origins" in response.text
    assert "authjs.session-token" not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "same-origin", "origin": "http://testserver"},
        {"origin": "http://testserver"},
        {},
        {"sec-fetch-site": "cross-site", "origin": "http://localhost:3000"},
    ],
)
async def test_same_origin_trusted_and_non_browser_posts_go_through(
    headers: dict[str, str],
) -> None:
    app = build_app(trusted_origins=["http://localhost:3000"])
    async with client_for(app) as client:
        response = await _post_sign_in(client, headers)
    assert response.status_code == 302
    assert "authjs.session-token=" in response.headers["set-cookie"]


async def test_a_cross_site_sign_out_and_session_update_are_refused() -> None:
    headers = {"sec-fetch-site": "cross-site", "origin": "https://evil.test"}
    async with client_for(build_app()) as client:
        await sign_in(client)
        token = await csrf_token(client)
        out = await client.post("/auth/signout", data={"csrfToken": token}, headers=headers)
        update = await client.post(
            "/auth/session", json={"csrfToken": token, "data": {"name": "Eve"}}, headers=headers
        )
        assert out.status_code == update.status_code == 403
        assert (await client.get("/")).json()["user"]["name"] == "Ann"


async def test_cross_site_gets_are_not_refused() -> None:
    # Links from other sites to the sign-in page must keep working.
    async with client_for(build_app()) as client:
        response = await client.get(
            "/auth/signin", headers={"sec-fetch-site": "cross-site", "origin": "https://a.test"}
        )
    assert response.status_code == 200
