"""Bearer tokens (``AuthConfig(bearer_tokens=True)``): ``POST /auth/token`` for clients
that are not browsers, and ``Authorization: Bearer`` in place of the session cookie.

In both strategies, on the MemoryAdapter and the real mongod through PyMongo.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette

from asgi_session import Callbacks, RateLimit, RateLimits
from asgi_session.backends import JWTStrategy, MemoryAdapter
from tests.support.apps import SESSION_COOKIE, Clock, build_app, client_for
from tests.support.passwords import (
    GOOD_PASSWORD,
    Outbox,
    Store,
    ask_reset,
    make_store,
    password_app,
    reset,
    sign_up,
    whoami,
)

DAY = 24 * 60 * 60
MAX_AGE = 30 * DAY
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(params=["memory", "pymongo"])
def store(request: pytest.FixtureRequest) -> Store:
    return make_store(request)


def _app(store: Store, strategy: Any, clock: Clock, outbox: Outbox, **options: Any) -> Starlette:
    return password_app(
        outbox,
        adapter=store.adapter,
        strategy=strategy,
        config_clock=clock,
        config_bearer_tokens=True,
        **options,
    )


async def _ask_token(
    client: httpx2.AsyncClient,
    email: str = "ada@example.com",
    password: str = GOOD_PASSWORD,
    **headers: str,
) -> httpx2.Response:
    return await client.post(
        "/auth/token",
        json={"provider": "password", "email": email, "password": password},
        headers=headers,
    )


async def _token(client: httpx2.AsyncClient, **fields: str) -> str:
    response = await _ask_token(client, **fields)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _as(client: httpx2.AsyncClient, token: str, path: str = "/") -> Any:
    """The body of ``GET path`` with ``token`` alone; no request may set a cookie."""
    response = await client.get(path, headers=_bearer(token))
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    return response.json()


# -- asking for a token ---------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_token_resolves_the_session_a_cookie_would(
    store: Store, strategy: Any, clock: Clock
) -> None:
    app = _app(store, strategy, clock, Outbox())
    async with client_for(app) as browser, client_for(app) as native:
        await sign_up(browser)
        response = await _ask_token(native)
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
        assert response.headers["cache-control"] == "private, no-cache, no-store"
        body = response.json()
        assert set(body) == {"token", "expires"}
        expires = datetime.fromisoformat(body["expires"].replace("Z", "+00:00"))
        assert expires == datetime.fromtimestamp(clock.now, UTC) + timedelta(seconds=MAX_AGE)
        assert not native.cookies

        with_cookie = (await browser.get("/")).json()
        assert with_cookie["user"]["email"] == "ada@example.com"
        assert await _as(native, body["token"]) == with_cookie
        assert (
            await _as(native, body["token"], "/auth/session")
            == (await browser.get("/auth/session")).json()
        )


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_bearer_request_never_sets_a_cookie_even_when_its_session_is_extended(
    store: Store, strategy: Any, clock: Clock
) -> None:
    app = _app(store, strategy, clock, Outbox())
    async with client_for(app) as client:
        await sign_up(client)
        client.cookies.clear()
        token = await _token(client)
        clock.advance(2 * DAY)  # past update_age: a cookie would be re-issued now
        assert (await _as(client, token))["user"]["email"] == "ada@example.com"
        assert (await _as(client, token))["user"]["email"] == "ada@example.com"
    assert not client.cookies


async def test_asking_for_a_token_needs_no_csrf_token_but_json_from_no_other_site(
    clock: Clock,
) -> None:
    app = _app(Store(MemoryAdapter()), "jwt", clock, Outbox())
    async with client_for(app) as client:
        await sign_up(client)
        client.cookies.clear()
        # A native client: no CSRF token, no cookie, no browser headers.
        assert (await _ask_token(client)).status_code == 200
        # A page elsewhere cannot make its visitors' browsers guess passwords here: a
        # form needs no CORS preflight, so forms are refused, and so is any request the
        # browser marks as cross-site.
        fields = {"provider": "password", "email": "ada@example.com", "password": GOOD_PASSWORD}
        form = await client.post("/auth/token", data=fields)
        assert form.status_code == 415
        assert form.json()["error"] == "UnsupportedMediaType"
        cross_site = await _ask_token(
            client, **{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
        )
        assert cross_site.status_code == 403
    assert not client.cookies


@pytest.mark.parametrize(
    ("email", "password", "code"),
    [
        ("ada@example.com", "not the right passphrase", "credentials"),
        ("nobody@example.com", GOOD_PASSWORD, "credentials"),
        ("ada@example.com", "", "credentials"),
    ],
)
async def test_wrong_credentials_are_401(
    store: Store, clock: Clock, email: str, password: str, code: str
) -> None:
    app = _app(store, "jwt", clock, Outbox())
    async with client_for(app) as client:
        await sign_up(client)
        client.cookies.clear()
        response = await _ask_token(client, email=email, password=password)
    assert response.status_code == 401
    assert response.json() == {"error": "CredentialsSignin", "code": code}
    assert "set-cookie" not in response.headers


async def test_an_unverified_address_gets_no_token(clock: Clock) -> None:
    outbox = Outbox()
    app = _app(Store(MemoryAdapter()), "jwt", clock, outbox, require_verified_email=True)
    async with client_for(app) as client:
        await sign_up(client)
        response = await _ask_token(client)
    assert response.status_code == 401
    assert response.json() == {"error": "CredentialsSignin", "code": "credentials"}
    assert len(outbox.sent) == 2  # a new link went out


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "github", "email": "ada@example.com", "password": GOOD_PASSWORD},
        {"email": "ada@example.com", "password": GOOD_PASSWORD},
        {"provider": ["password"], "email": "ada@example.com", "password": GOOD_PASSWORD},
    ],
)
async def test_an_unknown_provider_is_400(clock: Clock, body: dict[str, Any]) -> None:
    app = _app(Store(MemoryAdapter()), "jwt", clock, Outbox())
    async with client_for(app) as client:
        await sign_up(client)
        response = await client.post("/auth/token", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "UnknownProvider"


@pytest.mark.parametrize(("answer", "status"), [(False, 403), ("/elsewhere", 403)])
async def test_a_sign_in_callback_that_says_no_gives_no_token(
    clock: Clock, answer: Any, status: int
) -> None:
    store = Store(MemoryAdapter())
    async with client_for(_app(store, "jwt", clock, Outbox())) as client:
        await sign_up(client)
    refusing = _app(
        store, "jwt", clock, Outbox(), config_callbacks=Callbacks(sign_in=lambda user: answer)
    )
    async with client_for(refusing) as client:
        response = await _ask_token(client)
    assert response.status_code == status
    assert response.json() == {"error": "AccessDenied"}
    assert "token" not in response.json()


async def test_asking_for_tokens_is_rate_limited(clock: Clock) -> None:
    app = _app(
        Store(MemoryAdapter()),
        "jwt",
        clock,
        Outbox(),
        config_rate_limits=RateLimits(failed_sign_in_per_ip=RateLimit(2, 60)),
    )
    async with client_for(app) as client:
        await sign_up(client)
        for _ in range(2):
            assert (await _ask_token(client, password="not the right one")).status_code == 401
        limited = await _ask_token(client)  # the right password: refused all the same
    assert limited.status_code == 429
    assert limited.json() == {"error": "RateLimited"}
    assert int(limited.headers["retry-after"]) > 0


# -- what a token is worth -----------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_tampered_or_expired_token_is_anonymous(
    store: Store, strategy: Any, clock: Clock
) -> None:
    app = _app(store, strategy, clock, Outbox())
    async with client_for(app) as client:
        await sign_up(client)
        client.cookies.clear()
        token = await _token(client)
        middle = len(token) // 2
        tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
        for broken in (tampered, token[:-1], "x" * 500, "a.b.c.d.e"):
            assert await _as(client, broken) is None
            assert await _as(client, broken, "/auth/session") is None
        assert (await _as(client, token))["user"]["email"] == "ada@example.com"
        empty = await client.get("/", headers={"Authorization": "Bearer "})
        assert empty.json() is None

        clock.advance(MAX_AGE + 60)
        assert await _as(client, token) is None
        assert await _as(client, token, "/auth/session") is None


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_bearer_request_ignores_cookies(store: Store, strategy: Any, clock: Clock) -> None:
    app = _app(store, strategy, clock, Outbox())
    async with client_for(app) as browser, client_for(app) as native:
        await sign_up(browser)
        await sign_up(native, email="bob@example.com")
        bob = await _token(native, email="bob@example.com")
        # Ada's browser, sending Bob's token: the token is whom the request is.
        assert (await _as(browser, bob))["user"]["email"] == "bob@example.com"
        assert (await _as(browser, "not a token")) is None
        assert await whoami(browser) == "ada@example.com"  # and her cookie was left alone


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_deleting_a_token_ends_its_session_alone(
    store: Store, strategy: Any, clock: Clock
) -> None:
    app = _app(store, strategy, clock, Outbox())
    async with client_for(app) as browser, client_for(app) as native:
        await sign_up(browser)
        ended, kept = await _token(native), await _token(native)
        response = await native.delete("/auth/token", headers=_bearer(ended))
        assert response.status_code == 200
        assert response.json() == {"ok": True}
        assert "set-cookie" not in response.headers
        assert await _as(native, ended) is None
        assert await _as(native, ended, "/auth/session") is None
        again = await native.delete("/auth/token", headers=_bearer(ended))
        assert again.status_code == 401
        assert (await _as(native, kept))["user"]["email"] == "ada@example.com"
        assert await whoami(browser) == "ada@example.com"
        assert (await native.delete("/auth/token")).status_code == 401
        if strategy == "database":
            assert await store.count("sessions") == 2


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_deleted_token_does_not_work_as_a_cookie_either(
    store: Store, strategy: Any, clock: Clock
) -> None:
    """Whoever holds a token can send it as the session cookie: ending it ends both."""
    app = _app(store, strategy, clock, Outbox())
    async with client_for(app) as native, client_for(app) as thief:
        await sign_up(native)
        native.cookies.clear()
        token = await _token(native)
        thief.cookies.set(SESSION_COOKIE, token)
        assert await whoami(thief) == "ada@example.com"
        assert (await native.delete("/auth/token", headers=_bearer(token))).status_code == 200
        thief.cookies.set(SESSION_COOKIE, token)
        assert await whoami(thief) is None


async def test_a_deleted_jwt_token_stops_working_on_every_instance(
    store: Store, clock: Clock
) -> None:
    app = _app(store, "jwt", clock, Outbox())
    other = _app(store, "jwt", clock, Outbox())
    async with client_for(app) as here, client_for(other) as there:
        await sign_up(here)
        token = await _token(here)
        assert (await _as(there, token))["user"]["email"] == "ada@example.com"
        assert (await here.delete("/auth/token", headers=_bearer(token))).status_code == 200
        clock.advance(11)  # past revocation_check_interval
        assert await _as(there, token) is None


async def test_deleting_a_jwt_token_without_a_revocation_store_is_501(clock: Clock) -> None:
    app = build_app(clock=clock, bearer_tokens=True)  # Credentials, JWT, no adapter
    async with client_for(app) as client:
        response = await client.post(
            "/auth/token",
            json={"provider": "credentials", "email": "ann@example.com", "password": "pw-ann"},
        )
        token = response.json()["token"]
        assert (await _as(client, token))["user"]["name"] == "Ann"
        deleted = await client.delete("/auth/token", headers=_bearer(token))
    assert deleted.status_code == 501
    assert "needs a store for revocations" in deleted.json()["error"]


async def test_revocation_checks_off_cannot_delete_a_jwt_token_either(clock: Clock) -> None:
    app = build_app(
        clock=clock,
        bearer_tokens=True,
        adapter=MemoryAdapter(),
        strategy=JWTStrategy(revocation_check_interval=None),
    )
    async with client_for(app) as client:
        response = await client.post(
            "/auth/token",
            json={"provider": "credentials", "email": "ann@example.com", "password": "pw-ann"},
        )
        token = response.json()["token"]
        deleted = await client.delete("/auth/token", headers=_bearer(token))
    assert deleted.status_code == 501
    assert "revocation" in deleted.json()["error"]


# -- tokens and passwords ----------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_password_reset_ends_bearer_tokens_too(
    store: Store, strategy: Any, clock: Clock
) -> None:
    outbox = Outbox()
    app = _app(store, strategy, clock, outbox)
    async with client_for(app) as browser, client_for(app) as native:
        await sign_up(browser)
        token = await _token(native)
        clock.advance(5)
        await ask_reset(browser)
        await reset(browser, outbox.last(), NEW_PASSWORD)
        assert await _as(native, token) is None
        assert await whoami(browser) == "ada@example.com"


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_password_change_with_a_bearer_token_needs_no_csrf_token(
    store: Store, strategy: Any, clock: Clock
) -> None:
    app = _app(store, strategy, clock, Outbox())
    async with client_for(app) as browser, client_for(app) as native:
        await sign_up(browser)
        token = await _token(native)
        clock.advance(5)
        response = await native.post(
            "/auth/password/change",
            json={"currentPassword": GOOD_PASSWORD, "newPassword": NEW_PASSWORD},
            headers=_bearer(token),
        )
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
        assert response.json() == {"ok": True}
        # The session stays: a JWT is re-issued (its old one was cut off with the
        # others) and handed back in X-Auth-Token; a database session keeps its token.
        current = response.headers.get("x-auth-token", token)
        if strategy == "database":
            assert "x-auth-token" not in response.headers
        else:
            assert current != token
            assert response.headers["x-auth-token-expires"].endswith("Z")
        assert (await _as(native, current))["user"]["email"] == "ada@example.com"
        assert await whoami(browser) is None  # the other session ended

        wrong = await native.post(
            "/auth/password/change",
            json={"currentPassword": GOOD_PASSWORD, "newPassword": "another passphrase"},
            headers=_bearer(current),
        )
        assert wrong.status_code == 400
        assert wrong.json()["error"] == "WrongPassword"
        assert (await _ask_token(native, password=NEW_PASSWORD)).status_code == 200


# -- bearer tokens off -------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_without_bearer_tokens_the_route_is_absent_and_the_header_ignored(
    store: Store, strategy: Any, clock: Clock
) -> None:
    on = _app(store, strategy, clock, Outbox())
    off = password_app(Outbox(), adapter=store.adapter, strategy=strategy, config_clock=clock)
    async with client_for(on) as client:
        await sign_up(client)
        token = await _token(client)
    async with client_for(off) as client:
        assert (await _ask_token(client)).status_code in (404, 405)
        assert (await client.delete("/auth/token", headers=_bearer(token))).status_code in (
            404,
            405,
        )
        assert (await client.get("/", headers=_bearer(token))).json() is None
        assert (await client.get("/auth/session", headers=_bearer(token))).json() is None
        # Without a cookie or CSRF token, a "bearer" post is refused as any other.
        change = await client.post(
            "/auth/password/change",
            data={"currentPassword": GOOD_PASSWORD, "newPassword": NEW_PASSWORD},
            headers=_bearer(token),
        )
        assert change.status_code in (400, 401)
    async with client_for(on) as client:
        assert (await _as(client, token))["user"]["email"] == "ada@example.com"


async def test_a_jwt_reissued_for_a_bearer_request_comes_back_in_x_auth_token(
    store: Store, clock: Clock
) -> None:
    def jwt(token: dict[str, Any], trigger: str | None, session: Any) -> dict[str, Any]:
        if trigger == "update":
            token["theme"] = session["theme"]
        return token

    def shaped(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        session["theme"] = token.get("theme")
        return session

    app = _app(store, "jwt", clock, Outbox(), config_callbacks=Callbacks(jwt=jwt, session=shaped))
    async with client_for(app) as browser, client_for(app) as native:
        await sign_up(browser)
        token = await _token(native)
        updated = await native.post(
            "/auth/session", json={"data": {"theme": "dark"}}, headers=_bearer(token)
        )
        assert updated.status_code == 200
        assert updated.json()["theme"] == "dark"
        assert "set-cookie" not in updated.headers
        # Without the header the update would be lost: the old token still says nothing.
        assert (await _as(native, token))["theme"] is None
        assert (await _as(native, updated.headers["x-auth-token"]))["theme"] == "dark"
        # A request that issues nothing carries no such header.
        plain = await native.get("/", headers=_bearer(token))
        assert "x-auth-token" not in plain.headers


async def test_a_cookies_token_sent_as_a_bearer_token_cannot_be_ended_alone(
    store: Store, clock: Clock
) -> None:
    # Only tokens issued by POST /auth/token are checked for a revocation of their own:
    # answering "ok" for a cookie's token would be untrue.
    app = _app(store, "jwt", clock, Outbox())
    async with client_for(app) as browser:
        await sign_up(browser)
        cookie_token = browser.cookies[SESSION_COOKIE]
        deleted = await browser.delete("/auth/token", headers=_bearer(cookie_token))
        assert deleted.status_code == 501
        assert "POST /auth/signout" in deleted.json()["error"]
        assert (await _as(browser, cookie_token))["user"]["email"] == "ada@example.com"
