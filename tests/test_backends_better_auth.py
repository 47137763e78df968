"""Better Auth's cookies and session rules, in process (the real better-auth package is in
tests/test_better_auth_interop.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx2
import pytest

from asgi_session.backends import MemoryAdapter
from asgi_session.backends import _better_auth_cookies as ba
from asgi_session.backends.better_auth import BetterAuthStrategy, CookieCache
from asgi_session.errors import ConfigurationError
from tests.support.apps import SECRET, Clock, build_app, client_for, set_cookies, sign_in

TOKEN_COOKIE = "better-auth.session_token"
CACHE_COOKIE = "better-auth.session_data"
DAY = 24 * 3600


def _app(
    adapter: MemoryAdapter, clock: Clock, allowed_hosts: list[str] | None = None, **options: Any
) -> Any:
    return build_app(
        clock=clock,
        adapter=adapter,
        allowed_hosts=allowed_hosts,
        strategy=BetterAuthStrategy(adapter, **options),
    )


def _signed(token: str, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest()
    return f"{token}.{base64.b64encode(digest).decode()}"


async def test_sign_in_sets_better_auths_signed_cookie() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    async with client_for(_app(adapter, clock)) as http:
        response = await sign_in(http)
        header = set_cookies(response)[TOKEN_COOKIE]
        value = unquote(header.split(";")[0].split("=", 1)[1])
        token, _, signature = value.rpartition(".")
        # better-call's format: HMAC-SHA256 of the token with the secret, base64.
        assert value == _signed(token)
        assert len(signature) == 44
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
        assert f"Max-Age={7 * DAY}" in header
        user = await adapter.get_user_by_email("ann@example.com")
        assert user is not None
        [record] = await adapter.list_sessions(user.id)
        assert record.session_token == token
        assert record.expires == datetime.fromtimestamp(clock.now + 7 * DAY, UTC)
        assert (await http.get("/")).json()["user"]["email"] == "ann@example.com"


async def test_https_cookies_are_secure_prefixed() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    app = _app(adapter, clock, allowed_hosts=["app.example"])
    async with client_for(app, base_url="https://app.example") as http:
        response = await sign_in(http)
        header = set_cookies(response)[f"__Secure-{TOKEN_COOKIE}"]
        assert "Secure" in header
        assert (await http.get("/")).json()["user"]["email"] == "ann@example.com"


async def test_custom_cookie_prefix() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    async with client_for(_app(adapter, clock, cookie_prefix="shop")) as http:
        response = await sign_in(http)
        assert "shop.session_token" in set_cookies(response)
        assert (await http.get("/")).json()["user"]["email"] == "ann@example.com"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda value: value[:-3] + "AA=",  # another signature
        lambda value: "x" + value,  # another token, the old signature
        lambda value: value.rpartition(".")[0],  # no signature
        lambda value: value.rpartition(".")[0] + ".",  # an empty one
        lambda value: _signed(value.rpartition(".")[0], "another secret of enough length!!"),
    ],
)
async def test_a_cookie_not_signed_with_the_secret_is_no_session(tamper: Any) -> None:
    adapter, clock = MemoryAdapter(), Clock()
    async with client_for(_app(adapter, clock)) as http:
        await sign_in(http)
        value = http.cookies[TOKEN_COOKIE]
        http.cookies.clear()
        http.cookies[TOKEN_COOKIE] = tamper(unquote(value))
        response = await http.get("/")
        assert response.status_code == 200
        assert response.json() is None
        assert "Max-Age=0" in set_cookies(response)[TOKEN_COOKIE]


async def test_an_old_secret_still_verifies_and_the_new_one_signs() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    old = "an old secret that is long enough to use"
    async with client_for(_app(adapter, clock)) as http:
        await sign_in(http)
        token = unquote(http.cookies[TOKEN_COOKIE]).rpartition(".")[0]
    app = build_app(
        clock=clock,
        adapter=adapter,
        secret=["a new secret that is long enough to use", SECRET],
        strategy=BetterAuthStrategy(adapter),
    )
    async with client_for(app) as http:
        http.cookies[TOKEN_COOKIE] = _signed(token)
        assert (await http.get("/")).json()["user"]["email"] == "ann@example.com"
        http.cookies[TOKEN_COOKIE] = _signed(token, old)
        assert (await http.get("/")).json() is None


async def test_expiry_and_update_age_as_better_auth_does_them() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    async with client_for(_app(adapter, clock)) as http:
        await sign_in(http)
        start = clock.now
        clock.advance(DAY - 1)  # not yet a day old: nothing is written
        response = await http.get("/")
        assert TOKEN_COOKIE not in set_cookies(response)
        clock.advance(1)  # expiresAt - expiresIn + updateAge <= now: pushed back
        response = await http.get("/")
        assert f"Max-Age={7 * DAY}" in set_cookies(response)[TOKEN_COOKIE]
        user = await adapter.get_user_by_email("ann@example.com")
        assert user is not None
        [record] = await adapter.list_sessions(user.id)
        assert record.expires == datetime.fromtimestamp(start + 8 * DAY, UTC)
        assert record.last_seen_at == datetime.fromtimestamp(clock.now, UTC)
        clock.advance(7 * DAY)
        response = await http.get("/")
        assert response.json() is None
        assert await adapter.list_sessions(user.id) == []


async def test_sign_out_deletes_the_record_and_both_cookies() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    async with client_for(_app(adapter, clock, cookie_cache=CookieCache())) as http:
        await sign_in(http)
        assert CACHE_COOKIE in http.cookies
        csrf = (await http.get("/auth/csrf")).json()["csrfToken"]
        response = await http.post("/auth/signout", data={"csrfToken": csrf})
        cleared = set_cookies(response)
        assert "Max-Age=0" in cleared[TOKEN_COOKIE] and "Max-Age=0" in cleared[CACHE_COOKIE]
        user = await adapter.get_user_by_email("ann@example.com")
        assert user is not None and await adapter.list_sessions(user.id) == []


# -- the cookie cache -----------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["compact", "jwt", "jwe"])
async def test_the_cookie_cache_answers_without_the_database(encoding: Any) -> None:
    adapter, clock = MemoryAdapter(), Clock()
    cache = CookieCache(max_age=300, encoding=encoding)
    async with client_for(_app(adapter, clock, cookie_cache=cache)) as http:
        await sign_in(http)
        assert CACHE_COOKIE in http.cookies
        user = await adapter.get_user_by_email("ann@example.com")
        assert user is not None
        # The record is gone: only the cache can still answer, until its max age.
        await adapter.delete_sessions(user.id)
        clock.advance(299)
        body = (await http.get("/")).json()
        assert body["user"]["email"] == "ann@example.com"
        assert body["id"] == user.id
        clock.advance(1)
        response = await http.get("/")
        assert response.json() is None


@pytest.mark.parametrize("encoding", ["compact", "jwt", "jwe"])
async def test_a_cache_read_from_the_database_is_written_back(encoding: Any) -> None:
    adapter, clock = MemoryAdapter(), Clock()
    cache = CookieCache(encoding=encoding)
    async with client_for(_app(adapter, clock, cookie_cache=cache)) as http:
        await sign_in(http)
        http.cookies.delete(CACHE_COOKIE)
        response = await http.get("/")
        assert response.json()["user"]["email"] == "ann@example.com"
        value = unquote(set_cookies(response)[CACHE_COOKIE].split(";")[0].split("=", 1)[1])
        found = ba.decode_cache(value, cache, [SECRET], now=clock.now)
        assert found is not None
        assert found.payload["user"]["email"] == "ann@example.com"
        assert (
            found.payload["session"]["token"]
            == unquote(http.cookies[TOKEN_COOKIE]).rsplit(".", 1)[0]
        )


def _compact(payload: dict[str, Any], expires_at: int, secret: str = SECRET) -> str:
    signed = json.dumps({**payload, "expiresAt": expires_at}, separators=(",", ":"))
    signature = base64.urlsafe_b64encode(
        hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    ).rstrip(b"=")
    body = {"session": payload, "expiresAt": expires_at, "signature": signature.decode()}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()


async def test_a_tampered_or_foreign_cache_is_never_trusted() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    async with client_for(_app(adapter, clock, cookie_cache=CookieCache())) as http:
        await sign_in(http)
        value = unquote(http.cookies[CACHE_COOKIE])
        found = ba.decode_cache(value, CookieCache(), [SECRET], now=clock.now)
        assert found is not None
        payload = json.loads(json.dumps(found.payload))
        payload["user"]["email"] = "mallory@example.com"
        expires_at = int(clock.now * 1000) + 300_000
        for forged in (
            _compact(payload, expires_at, "not the secret, but long enough too"),
            value[:-4] + "AAAA",
            "not base64 at all %%%",
        ):
            http.cookies.set(CACHE_COOKIE, forged)
            response = await http.get("/")
            # The database answers, with the real user, and the forged cache is dropped.
            assert response.json()["user"]["email"] == "ann@example.com"
            assert CACHE_COOKIE in set_cookies(response)
        # Signed with the secret, but for another session token: ignored too.
        payload["session"]["token"] = "another-token"
        http.cookies.set(CACHE_COOKIE, _compact(payload, expires_at))
        assert (await http.get("/")).json()["user"]["email"] == "ann@example.com"
        # A cache without a signed session cookie beside it is nothing.
        http.cookies.delete(TOKEN_COOKIE)
        assert (await http.get("/")).json() is None


async def test_a_cache_of_another_version_is_ignored() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    async with client_for(_app(adapter, clock, cookie_cache=CookieCache(version="2"))) as http:
        await sign_in(http)
        value = unquote(http.cookies[CACHE_COOKIE])
        assert ba.decode_cache(value, CookieCache(version="2"), [SECRET], now=clock.now)
        assert ba.decode_cache(value, CookieCache(version="1"), [SECRET], now=clock.now) is None


def test_unsign_refuses_odd_values() -> None:
    good = _signed("token")
    assert ba.unsign(good, [SECRET]) == "token"
    for value in ("", ".", "token", f".{good.split('.')[1]}", "tok\ud800en." + "A" * 43 + "="):
        assert ba.unsign(value, [SECRET]) is None


def test_options_are_checked_at_start_up() -> None:
    adapter = MemoryAdapter()
    with pytest.raises(ConfigurationError, match="cookiePrefix"):
        BetterAuthStrategy(adapter, cookie_prefix="")
    with pytest.raises(ConfigurationError, match="expiresIn"):
        BetterAuthStrategy(adapter, expires_in=0)
    with pytest.raises(ConfigurationError, match="update_age"):
        BetterAuthStrategy(adapter, expires_in=10, update_age=20)
    with pytest.raises(ConfigurationError, match="strategy"):
        CookieCache(encoding="base64")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="MongoDB database"):
        BetterAuthStrategy(object())


def test_a_layout_other_than_better_auths_is_refused() -> None:
    class Drizzle(MemoryAdapter):
        schema = "drizzle"

    with pytest.raises(ConfigurationError, match="schema='better-auth'"):
        BetterAuthStrategy(Drizzle())


async def test_expired_records_are_refused_and_the_time_is_the_records() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    async with client_for(_app(adapter, clock, expires_in=3600, update_age=600)) as http:
        await sign_in(http)
        user = await adapter.get_user_by_email("ann@example.com")
        assert user is not None
        [record] = await adapter.list_sessions(user.id)
        assert record.expires == datetime.fromtimestamp(clock.now, UTC) + timedelta(hours=1)
        clock.advance(3600)
        assert (await http.get("/")).json() is None


def test_password_hashes_are_better_auths_scrypt_under_its_strategy() -> None:
    from asgi_session import AuthConfig
    from asgi_session.passwords import PasswordHasher
    from asgi_session.providers import Password

    def send(*args: Any) -> None:
        return None

    adapter = MemoryAdapter()
    password = Password(send=send)
    AuthConfig(
        secret=SECRET,
        url="http://app.example",
        providers=[password],
        strategy=BetterAuthStrategy(adapter),
    )
    # Better Auth's format: a 32-hex-digit salt, a colon, a 64-byte key in hex.
    assert re.fullmatch(r"[0-9a-f]{32}:[0-9a-f]{128}", password.hasher.hash("a password"))
    own = PasswordHasher()
    kept = Password(send=send, hasher=own)
    AuthConfig(
        secret=SECRET,
        url="http://app.example",
        providers=[kept],
        strategy=BetterAuthStrategy(MemoryAdapter()),
    )
    assert kept.hasher is own


async def test_a_session_not_remembered_is_never_extended() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    async with client_for(_app(adapter, clock)) as http:
        await sign_in(http)
        # What Better Auth sets for a sign-in with rememberMe: false.
        http.cookies["better-auth.dont_remember"] = _signed("true")
        clock.advance(2 * DAY)
        response = await http.get("/")
        assert response.json()["user"]["email"] == "ann@example.com"
        assert TOKEN_COOKIE not in set_cookies(response)
        # A mark not signed with the secret is no mark: the session is pushed back.
        http.cookies["better-auth.dont_remember"] = _signed("true", "not the secret at all, long")
        response = await http.get("/")
        assert f"Max-Age={7 * DAY}" in set_cookies(response)[TOKEN_COOKIE]


async def test_signing_in_again_forgets_not_being_remembered() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    async with client_for(_app(adapter, clock)) as http:
        http.cookies["better-auth.dont_remember"] = _signed("true")
        response = await sign_in(http)
        assert "Max-Age=0" in set_cookies(response)["better-auth.dont_remember"]


# -- a non-ASCII signature raises TypeError in unsign: a 500 for anyone ---------------


@pytest.mark.parametrize("bearer", [False, True])
async def test_non_ascii_signature_is_no_session_not_a_500(bearer: bool) -> None:
    adapter, clock = MemoryAdapter(), Clock()
    app = build_app(
        clock=clock, adapter=adapter, strategy=BetterAuthStrategy(adapter), bearer_tokens=bearer
    )
    value = "x." + "%C3%A9" + "A" * 42 + "%3D"  # 44 characters after decoding, ends in "="
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as http:
        if bearer:
            headers = [(b"authorization", b"Bearer x.\xe9" + b"A" * 42 + b"=")]
            response = await http.get("/", headers=headers)
        else:
            response = await http.get("/", headers={"cookie": f"{TOKEN_COOKIE}={value}"})
    assert response.status_code == 200, response.status_code
    assert response.json() is None


# -- signing in again leaves the browser's previous Better Auth session alive ---------


async def test_signing_in_again_ends_the_previous_better_auth_session() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    async with client_for(_app(adapter, clock)) as http:
        await sign_in(http)
        first = http.cookies[TOKEN_COOKIE]
        await sign_in(http)
        assert http.cookies[TOKEN_COOKIE] != first  # a new token is issued...
        user = await adapter.get_user_by_email("ann@example.com")
        assert user is not None
        # ...but the old session is never ended: start_session looks for the Auth.js
        # cookie (ctx.session_token()), which a Better Auth browser does not have.
        assert len(await adapter.list_sessions(user.id)) == 1
    async with client_for(_app(adapter, clock)) as other:
        other.cookies[TOKEN_COOKIE] = first
        assert (await other.get("/")).json() is None


# -- ending this very session by id clears Auth.js's cookie, not Better Auth's --------


async def test_revoking_the_current_session_by_id_clears_the_better_auth_cookies() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    async with client_for(_app(adapter, clock, cookie_cache=CookieCache())) as http:
        await sign_in(http)
        user = await adapter.get_user_by_email("ann@example.com")
        assert user is not None
        [record] = await adapter.list_sessions(user.id)
        csrf = (await http.get("/auth/csrf")).json()["csrfToken"]
        response = await http.post(
            "/auth/sessions/revoke", data={"csrfToken": csrf, "id": record.id}
        )
        assert response.json() == {"ok": True}
        cleared = set_cookies(response)
        still = (await http.get("/")).json()
        facts = {
            "cleared the Auth.js cookie it never set": "authjs.session-token" in cleared,
            "cleared better-auth.session_token": "Max-Age=0" in cleared.get(TOKEN_COOKIE, ""),
            "cleared better-auth.session_data": "Max-Age=0" in cleared.get(CACHE_COOKIE, ""),
            "ended session still resolves from the cache": still is not None,
        }
        assert facts == {
            "cleared the Auth.js cookie it never set": False,
            "cleared better-auth.session_token": True,
            "cleared better-auth.session_data": True,
            "ended session still resolves from the cache": False,
        }, facts


# -- dont_remember (rememberMe: false) is not honoured ---------------------------------


async def test_a_dont_remember_session_is_not_made_persistent() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    user = await adapter.create_user({"email": "ann@example.com", "name": "Ann"})
    now = datetime.fromtimestamp(clock.now, UTC)
    # What Better Auth's signIn.email({rememberMe: false}) writes: a 1-day record, a
    # session_token cookie without Max-Age, and a signed dont_remember cookie.
    record = await adapter.create_session(
        {
            "session_token": "T" * 32,
            "user_id": user.id,
            "expires": now + timedelta(days=1),
            "created_at": now,
            "last_seen_at": now,
        }
    )
    async with client_for(_app(adapter, clock)) as http:
        http.cookies[TOKEN_COOKIE] = _signed(record.session_token)
        http.cookies["better-auth.dont_remember"] = _signed("true")
        response = await http.get("/")
        assert response.json()["user"]["email"] == "ann@example.com"
        # Better Auth never refreshes such a session and never gives its cookie a Max-Age.
        assert TOKEN_COOKIE not in set_cookies(response), set_cookies(response).get(TOKEN_COOKIE)
        [stored] = await adapter.list_sessions(user.id)
        assert stored.expires == now + timedelta(days=1), stored.expires - now


# -- the cookie cache authorises sensitive changes after the session was revoked ------


async def test_a_revoked_session_cannot_revoke_the_owners_other_sessions_from_its_cache() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    app = _app(adapter, clock, cookie_cache=CookieCache(max_age=300))
    async with client_for(app) as thief, client_for(app) as owner:
        await sign_in(thief)  # a stolen session (cookie + cache)
        await sign_in(owner)
        csrf = (await owner.get("/auth/csrf")).json()["csrfToken"]
        r = await owner.post("/auth/sessions/revoke-others", data={"csrfToken": csrf})
        assert r.json() == {"ok": True}
        user = await adapter.get_user_by_email("ann@example.com")
        assert user is not None
        assert len(await adapter.list_sessions(user.id)) == 1  # only the owner's
        clock.advance(60)
        # The thief's record is gone, but its cookie cache is still trusted, for this too
        # (Better Auth reads the database for these: sensitiveSessionMiddleware).
        csrf = (await thief.get("/auth/csrf")).json()["csrfToken"]
        r = await thief.post("/auth/sessions/revoke-others", data={"csrfToken": csrf})
        assert r.status_code == 401, r.json()
        assert len(await adapter.list_sessions(user.id)) == 1


# -- a cookie-cache hit loses the session's data and the user's extra fields -----------


async def test_a_cache_hit_is_the_same_session_as_a_database_read() -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from asgi_session import AuthConfig, AuthMiddleware, Callbacks
    from asgi_session.providers import Credentials

    adapter, clock = MemoryAdapter(), Clock()
    await adapter.create_user({"email": "ann@example.com", "name": "Ann", "role": "admin"})

    async def authorize(credentials: Any, request: Any) -> Any:
        user = await adapter.get_user_by_email("ann@example.com")
        return user.to_dict() if user else None

    async def session_callback(session: Any, user: Any, **_: Any) -> Any:
        return {**session, "role": user.get("role")}

    async def show(request: Request) -> JSONResponse:
        s = request.state.session
        return JSONResponse({"claims": dict(s.claims or {}), "role": s.to_dict().get("role")})

    async def update(request: Request) -> JSONResponse:
        await request.state.session.update({"theme": "dark"})
        return JSONResponse({})

    config = AuthConfig(
        secret=SECRET,
        clock=clock,
        url="http://testserver",
        adapter=adapter,
        providers=[Credentials(authorize=authorize)],
        callbacks=Callbacks(session=session_callback),
        strategy=BetterAuthStrategy(adapter, cookie_cache=CookieCache()),
    )
    app = Starlette(
        routes=[Route("/", show), Route("/update", update, methods=["POST"])],
        middleware=[Middleware(AuthMiddleware, config=config)],
    )
    async with client_for(app) as http:
        await sign_in(http)
        await http.post("/update")
        from_db = (await http.get("/")).json()  # the update dropped the cache: a DB read
        from_cache = (await http.get("/")).json()  # the cache that read wrote
    assert from_db == {"claims": {"theme": "dark"}, "role": "admin"}, from_db
    assert from_cache == from_db, f"database read {from_db} != cookie-cache hit {from_cache}"


async def test_cookies_can_be_shared_with_subdomains_as_better_auths() -> None:
    adapter, clock = MemoryAdapter(), Clock()
    app = _app(adapter, clock, cookie_domain="example.com", allowed_hosts=["app.example.com"])
    async with client_for(app, base_url="http://app.example.com") as http:
        response = await sign_in(http)
        assert "Domain=example.com" in set_cookies(response)[TOKEN_COOKIE]
    with pytest.raises(ConfigurationError, match="crossSubDomainCookies"):
        BetterAuthStrategy(adapter, cookie_domain="example.com; Secure")
