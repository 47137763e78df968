"""The /auth/* routes: session, csrf, providers, sign-in, callbacks, sign-out, pages."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from asgi_session import Callbacks, Events, Pages
from asgi_session.jwt import decode
from tests.support.apps import (
    SECRET,
    Clock,
    build_app,
    client_for,
    csrf_token,
    set_cookies,
    sign_in,
)

SESSION_COOKIE = "authjs.session-token"


async def test_session_is_null_when_signed_out_with_no_cache_headers(client: Any) -> None:
    response = await client.get("/auth/session")
    assert response.status_code == 200
    assert response.json() is None
    assert response.headers["cache-control"] == "private, no-cache, no-store"
    assert response.headers["expires"] == "0"
    assert response.headers["pragma"] == "no-cache"


async def test_session_json_matches_authjs_shape(client: Any) -> None:
    await sign_in(client)
    body = (await client.get("/auth/session")).json()
    assert set(body) == {"user", "expires"}
    assert body["user"] == {"name": "Ann", "email": "ann@example.com"}
    assert body["expires"].endswith("Z")


async def test_csrf_sets_cookie_once_and_reuses_token(client: Any) -> None:
    first = await client.get("/auth/csrf")
    token = first.json()["csrfToken"]
    assert len(token) == 64
    cookie = set_cookies(first)["authjs.csrf-token"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    second = await client.get("/auth/csrf")
    assert second.json()["csrfToken"] == token
    assert "set-cookie" not in second.headers


async def test_providers_lists_each_provider(client: Any) -> None:
    body = (await client.get("/auth/providers")).json()
    assert body == {
        "credentials": {
            "id": "credentials",
            "name": "Credentials",
            "type": "credentials",
            "signinUrl": "http://testserver/auth/signin/credentials",
            "callbackUrl": "http://testserver/auth/callback/credentials",
        }
    }


async def test_signin_page_has_a_form_with_csrf_token(client: Any) -> None:
    response = await client.get("/auth/signin", params={"callbackUrl": "/protected"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    token = client.cookies["authjs.csrf-token"].split("%7C")[0]
    assert f'value="{token}"' in response.text
    assert 'action="http://testserver/auth/callback/credentials"' in response.text
    assert 'name="password"' in response.text
    assert 'value="http://testserver/protected"' in response.text


async def test_signin_page_escapes_error_and_ignores_foreign_callback(client: Any) -> None:
    response = await client.get(
        "/auth/signin",
        params={"error": "<script>x</script>", "callbackUrl": "https://evil.example/"},
    )
    assert "<script>x" not in response.text
    assert "evil.example" not in response.text


async def test_credentials_sign_in_redirects_to_callback_url(client: Any) -> None:
    response = await sign_in(client, callbackUrl="/protected")
    assert response.status_code == 302
    assert response.headers["location"] == "http://testserver/protected"
    cookie = set_cookies(response)[SESSION_COOKIE]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Expires=" in cookie
    assert (await client.get("/protected")).text == "hello Ann"


async def test_a_refused_sign_in_keeps_the_callback_url_for_the_next_try(client: Any) -> None:
    # An app's own sign-in page posts callbackUrl with the form; after a wrong password
    # the retry (which may post none) still ends where the first try was going.
    refused = await sign_in(client, password="wrong", callbackUrl="/protected")
    assert "error=CredentialsSignin" in refused.headers["location"]
    response = await sign_in(client)
    assert response.headers["location"] == "http://testserver/protected"


async def test_a_refused_sign_in_keeps_no_callback_url_to_another_site(client: Any) -> None:
    await sign_in(client, password="wrong", callbackUrl="https://evil.example/")
    response = await sign_in(client)
    assert response.headers["location"] == "http://testserver"


async def test_return_redirect_header_gives_json(client: Any) -> None:
    token = await csrf_token(client)
    response = await client.post(
        "/auth/callback/credentials",
        data={"csrfToken": token, "email": "ann@example.com", "password": "pw-ann"},
        headers={"X-Auth-Return-Redirect": "1"},
    )
    assert response.status_code == 200
    assert response.json() == {"url": "http://testserver"}
    assert SESSION_COOKIE in set_cookies(response)


async def test_wrong_credentials_redirect_with_error(client: Any) -> None:
    response = await sign_in(client, password="wrong")
    assert response.status_code == 302
    # Auth.js v5's shape, which next-auth/react's signIn() reads `error` and `code` from.
    assert response.headers["location"] == (
        "http://testserver/auth/signin?error=CredentialsSignin&code=credentials"
    )
    assert SESSION_COOKIE not in set_cookies(response)
    page = await client.get(response.headers["location"])
    assert 'data-error="CredentialsSignin"' in page.text


@pytest.mark.parametrize(
    "csrf_field",
    [None, "", "0" * 64, "wrong", "é"],
)
async def test_sign_in_without_valid_csrf_is_refused(client: Any, csrf_field: str | None) -> None:
    await csrf_token(client)
    data = {"email": "ann@example.com", "password": "pw-ann"}
    if csrf_field is not None:
        data["csrfToken"] = csrf_field
    response = await client.post("/auth/callback/credentials", data=data)
    assert response.headers["location"].endswith("/auth/signin?error=MissingCSRF")
    assert SESSION_COOKIE not in set_cookies(response)


async def test_csrf_cookie_from_another_app_is_refused(clock: Clock) -> None:
    other = build_app(clock=clock, secret="a-different-secret")
    async with client_for(other) as elsewhere:
        token = await csrf_token(elsewhere)
        foreign_cookie = elsewhere.cookies["authjs.csrf-token"]
    async with client_for(build_app(clock=clock)) as client:
        response = await client.post(
            "/auth/callback/credentials",
            data={"csrfToken": token, "email": "ann@example.com", "password": "pw-ann"},
            headers={"cookie": f"authjs.csrf-token={foreign_cookie}"},
        )
        assert response.headers["location"].endswith("error=MissingCSRF")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "javascript:alert(1)",
        "http://testserver.evil.example/",
    ],
)
async def test_no_open_redirect_after_sign_in(client: Any, target: str) -> None:
    response = await sign_in(client, callbackUrl=target)
    assert response.headers["location"] == "http://testserver"


async def test_each_sign_in_issues_a_new_token(client: Any) -> None:
    await sign_in(client)
    first = client.cookies[SESSION_COOKIE]
    await sign_in(client)
    second = client.cookies[SESSION_COOKIE]
    assert first != second
    salt = SESSION_COOKIE
    assert (
        decode(first, secret=SECRET, salt=salt)["jti"]
        != decode(second, secret=SECRET, salt=salt)["jti"]
    )


async def test_planted_token_is_replaced_at_sign_in(client: Any, clock: Clock) -> None:
    from asgi_session.jwt import encode

    planted = encode({"sub": "attacker"}, secret=SECRET, salt=SESSION_COOKIE, now=clock.now)
    client.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
    await sign_in(client)
    assert client.cookies[SESSION_COOKIE] != planted
    assert (await client.get("/")).json()["id"] == "user-1"


async def test_sign_out_page_and_post(client: Any) -> None:
    await sign_in(client)
    page = await client.get("/auth/signout")
    assert page.status_code == 200
    assert 'action="http://testserver/auth/signout"' in page.text
    token = await csrf_token(client)
    response = await client.post("/auth/signout", data={"csrfToken": token, "callbackUrl": "/bye"})
    assert response.status_code == 302
    assert response.headers["location"] == "http://testserver/bye"
    assert "Max-Age=0" in set_cookies(response)[SESSION_COOKIE]
    assert (await client.get("/auth/session")).json() is None


async def test_sign_out_needs_csrf(client: Any) -> None:
    await sign_in(client)
    response = await client.post("/auth/signout", data={"csrfToken": "nope"})
    assert response.headers["location"].endswith("error=MissingCSRF")
    assert (await client.get("/auth/session")).json() is not None


async def test_post_session_needs_csrf(client: Any) -> None:
    await sign_in(client)
    response = await client.post("/auth/session", json={"data": {"name": "X"}})
    assert response.status_code == 403


async def test_post_session_runs_jwt_callback_with_update_trigger(clock: Clock) -> None:
    def jwt(token: dict[str, Any], trigger: str | None, session: Any) -> dict[str, Any]:
        if trigger == "update" and isinstance(session, dict) and "name" in session:
            token["name"] = str(session["name"])[:50]
        return token

    async with client_for(build_app(clock=clock, callbacks=Callbacks(jwt=jwt))) as client:
        await sign_in(client)
        token = await csrf_token(client)
        response = await client.post(
            "/auth/session", json={"csrfToken": token, "data": {"name": "Annie"}}
        )
        assert response.json()["user"]["name"] == "Annie"
        assert SESSION_COOKIE in set_cookies(response)
        assert (await client.get("/auth/session")).json()["user"]["name"] == "Annie"


async def test_post_session_does_not_trust_client_data_by_default(client: Any) -> None:
    await sign_in(client)
    token = await csrf_token(client)
    response = await client.post(
        "/auth/session", json={"csrfToken": token, "data": {"name": "Mallory", "sub": "admin"}}
    )
    assert response.json()["user"]["name"] == "Ann"
    assert (await client.get("/")).json()["id"] == "user-1"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("Configuration", 500),
        ("AccessDenied", 403),
        ("Verification", 403),
        ("Other", 200),
        (None, 200),
    ],
)
async def test_error_page_status(client: Any, error: str | None, status: int) -> None:
    response = await client.get("/auth/error", params={"error": error} if error else {})
    assert response.status_code == status
    assert "<h1>" in response.text


async def test_unknown_action_and_wrong_method(client: Any) -> None:
    assert (await client.get("/auth/nothing")).status_code == 404
    assert (await client.delete("/auth/session")).status_code == 405
    assert (await client.get("/auth/session/extra")).status_code == 404
    assert (await client.head("/auth/callback/credentials")).status_code == 405
    assert (await client.get("/auth/callback/credentials")).status_code == 405


async def test_unknown_provider(client: Any) -> None:
    token = await csrf_token(client)
    response = await client.post("/auth/callback/nope", data={"csrfToken": token})
    assert response.headers["location"].endswith("/auth/error?error=Configuration")


async def test_oversized_body_is_413(client: Any) -> None:
    response = await client.post(
        "/auth/callback/credentials",
        content=b"a=" + b"x" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
        (b"{not json", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'{"csrfToken": ["a"], "email": {"$ne": 1}}', "application/json"),
        (b"&&&===&&&", "application/x-www-form-urlencoded"),
        ("a=" + "&a=".join(["x"] * 200), "application/x-www-form-urlencoded"),
    ],
)
async def test_garbage_bodies_are_4xx_or_redirect_never_500(
    client: Any, content: bytes | str, content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    await csrf_token(client)
    with caplog.at_level(logging.WARNING, logger="asgi_session"):
        for path in (
            "/auth/callback/credentials",
            "/auth/signout",
            "/auth/session",
            "/auth/signin/credentials",
        ):
            response = await client.post(
                path, content=content, headers={"content-type": content_type}
            )
            assert response.status_code in (302, 400, 403, 413), path
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_garbage_headers_never_500(client: Any) -> None:
    response = await client.get(
        "/auth/session",
        headers={
            "cookie": "=;;;authjs.session-token.0=;authjs.session-token.x=\x7f",
            "host": "",
            "x-forwarded-host": "\x01",
        },
    )
    assert response.status_code == 200
    assert response.json() is None


async def test_callbacks_shape_the_session(clock: Clock) -> None:
    def jwt(
        token: dict[str, Any], user: dict[str, Any] | None, trigger: str | None
    ) -> dict[str, Any]:
        if trigger == "signIn" and user is not None:
            token["role"] = "admin" if user["email"] == "ann@example.com" else "user"
            token["uid"] = user["id"]
        return token

    async def session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        session["user"]["id"] = token["uid"]
        session["user"]["role"] = token["role"]
        return session

    app = build_app(clock=clock, callbacks=Callbacks(jwt=jwt, session=session))
    async with client_for(app) as client:
        await sign_in(client)
        body = (await client.get("/auth/session")).json()
        assert body["user"]["role"] == "admin"
        assert body["user"]["id"] == "user-1"


async def test_sign_in_callback_can_deny(clock: Clock) -> None:
    app = build_app(clock=clock, callbacks=Callbacks(sign_in=lambda user: False))
    async with client_for(app) as client:
        response = await sign_in(client)
        assert response.headers["location"].endswith("/auth/signin?error=AccessDenied")
        assert SESSION_COOKIE not in set_cookies(response)


async def test_sign_in_callback_can_send_elsewhere_instead(clock: Clock) -> None:
    app = build_app(clock=clock, callbacks=Callbacks(sign_in=lambda: "/welcome"))
    async with client_for(app) as client:
        response = await sign_in(client, callbackUrl="/elsewhere")
        assert response.headers["location"] == "http://testserver/welcome"
        assert SESSION_COOKIE not in set_cookies(response)


async def test_redirect_callback_decides(clock: Clock) -> None:
    app = build_app(
        clock=clock, callbacks=Callbacks(redirect=lambda url, base_url: base_url + "/fixed")
    )
    async with client_for(app) as client:
        response = await sign_in(client, callbackUrl="/elsewhere")
        assert response.headers["location"] == "http://testserver/fixed"


async def test_redirect_callback_is_given_a_url_when_none_was_asked_for(clock: Clock) -> None:
    seen: list[object] = []

    def redirect(url: str, base_url: str) -> str:
        seen.append(url)
        return url if url.startswith(base_url) else base_url

    app = build_app(clock=clock, callbacks=Callbacks(redirect=redirect))
    async with client_for(app) as client:
        await sign_in(client)
        seen.clear()
        # A sign-out posting no callbackUrl: the callback gets the base URL, as in Auth.js.
        response = await client.post("/auth/signout", data={"csrfToken": await csrf_token(client)})
        assert response.status_code == 302, response.text
        assert response.headers["location"] == "http://testserver"
        assert seen == ["http://testserver"]


async def test_events_run_and_their_failures_are_contained(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, Any]] = []

    def failing(**_: Any) -> None:
        raise RuntimeError("event handler broke")

    events = Events(
        sign_in=lambda user, is_new_user: seen.append(("sign_in", user["id"])),
        sign_out=lambda session: seen.append(("sign_out", session["user"]["name"])),
        session=failing,
    )
    async with client_for(build_app(clock=clock, events=events)) as client:
        await sign_in(client)
        with caplog.at_level(logging.ERROR, logger="asgi_session"):
            assert (await client.get("/auth/session")).status_code == 200
        assert any("session event" in r.getMessage() for r in caplog.records)
        token = await csrf_token(client)
        await client.post("/auth/signout", data={"csrfToken": token})
    assert seen == [("sign_in", "user-1"), ("sign_out", "Ann")]


async def test_authorize_that_raises_is_a_configuration_error(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    from asgi_session.providers import Credentials

    def broken(credentials: Any, request: Any) -> None:
        raise RuntimeError("database of users is down")

    app = build_app(clock=clock, providers=[Credentials(authorize=broken)])
    async with client_for(app) as client:
        with caplog.at_level(logging.ERROR, logger="asgi_session"):
            response = await sign_in(client)
        assert response.headers["location"].endswith("/auth/error?error=Configuration")
    # The app's own bug: logged with its traceback, for the app's developers.
    [record] = caplog.records
    assert record.levelno == logging.ERROR and "authorize" in record.getMessage()
    assert record.exc_info is not None


async def test_custom_pages_replace_built_in_ones(clock: Clock) -> None:
    pages = Pages(sign_in="/login", sign_out="/logout", error="/oops")
    async with client_for(build_app(clock=clock, pages=pages)) as client:
        response = await client.get("/auth/signin", params={"callbackUrl": "/protected"})
        assert response.headers["location"] == (
            "http://testserver/login?callbackUrl=http%3A%2F%2Ftestserver%2Fprotected"
        )
        assert (
            (await client.get("/auth/signout"))
            .headers["location"]
            .startswith("http://testserver/logout")
        )
        assert (await client.get("/auth/error", params={"error": "AccessDenied"})).headers[
            "location"
        ] == "http://testserver/oops?error=AccessDenied"
        failed = await sign_in(client, password="wrong")
        assert failed.headers["location"] == (
            "http://testserver/login?error=CredentialsSignin&code=credentials"
        )


async def test_custom_base_path(clock: Clock) -> None:
    async with client_for(build_app(clock=clock, base_path="/api/auth")) as client:
        assert (await client.get("/api/auth/session")).json() is None
        assert (await client.get("/auth/session")).status_code == 404


async def test_callback_url_survives_a_failed_attempt(client: Any) -> None:
    await client.get("/auth/signin", params={"callbackUrl": "/protected"})
    assert client.cookies["authjs.callback-url"]
    token = await csrf_token(client)
    failed = await client.post(
        "/auth/callback/credentials",
        data={"csrfToken": token, "email": "ann@example.com", "password": "wrong"},
    )
    page = await client.get(failed.headers["location"])
    assert 'name="callbackUrl" value="http://testserver/protected"' in page.text
    response = await client.post(
        "/auth/callback/credentials",
        data={"csrfToken": token, "email": "ann@example.com", "password": "pw-ann"},
    )
    assert response.headers["location"] == "http://testserver/protected"
    assert "Max-Age=0" in set_cookies(response)["authjs.callback-url"]


async def test_foreign_callback_url_cookie_is_not_followed(client: Any) -> None:
    client.cookies.set("authjs.callback-url", "https://evil.example/", domain="testserver.local")
    response = await sign_in(client)
    assert response.headers["location"] == "http://testserver"


async def test_non_ascii_csrf_cookie_is_no_token_never_500(client: Any) -> None:
    forged = "a" * 64 + "|" + "%C3%A9" * 64
    for method, path in (("GET", "/auth/csrf"), ("GET", "/auth/signin"), ("POST", "/auth/signout")):
        response = await client.request(
            method,
            path,
            headers={"cookie": f"authjs.csrf-token={forged}"},
            data={"csrfToken": "a" * 64},
        )
        assert response.status_code in (200, 302), path
    assert (await client.get("/auth/csrf")).json()["csrfToken"] != "a" * 64


async def test_deeply_nested_json_body_is_refused_not_500(client: Any) -> None:
    await sign_in(client)
    response = await client.post(
        "/auth/session", content=b"[" * 60_000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 403


# -- security headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/auth/session"),
        ("GET", "/auth/csrf"),
        ("GET", "/auth/providers"),
        ("GET", "/auth/signin"),
        ("GET", "/auth/signout"),
        ("GET", "/auth/error"),
        ("GET", "/auth/verify-request"),
        ("GET", "/auth/nothing-here"),
        ("DELETE", "/auth/session"),
        ("POST", "/auth/callback/credentials"),
    ],
)
async def test_every_auth_response_is_uncacheable_and_unsniffable(
    client: Any, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert "no-store" in response.headers["cache-control"]
    assert response.headers["x-content-type-options"] == "nosniff"
    # Token-bearing callback URLs are named to nobody; other pages only to the app.
    policy = "no-referrer" if path.startswith("/auth/callback") else "same-origin"
    assert response.headers["referrer-policy"] == policy


@pytest.mark.parametrize(
    "path", ["/auth/signin", "/auth/signout", "/auth/error", "/auth/verify-request"]
)
async def test_pages_cannot_be_framed_and_run_only_their_own_nonce(client: Any, path: str) -> None:
    first = await client.get(path)
    second = await client.get(path)
    policy = first.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    assert first.headers["x-frame-options"] == "DENY"
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<style nonce="{nonce}">' in first.text
    # A fresh nonce each time: a nonce an attacker saw once is worth nothing.
    assert second.headers["content-security-policy"] != policy
    assert "unsafe-inline" not in policy


async def test_the_apps_own_pages_keep_their_own_headers(clock: Clock) -> None:
    app = build_app(clock=clock, pages=Pages(sign_in="/"))
    async with client_for(app) as client:
        redirected = await client.get("/auth/signin")
        own = await client.get(redirected.headers["location"])
    assert redirected.status_code == 302
    assert "content-security-policy" not in own.headers
    assert "x-frame-options" not in own.headers


# -- bodies that cannot be read -------------------------------------------------------


@pytest.mark.parametrize("length", ["²", "-1", "1e3", " 12", "0x10", "١٢"])
async def test_a_content_length_that_is_not_ascii_digits_is_400(
    app: Any, length: str, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"csrfToken=x", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with caplog.at_level(logging.WARNING, logger="asgi_session"):
        await app(_post_scope([(b"content-length", length.encode())]), receive, send)
    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_client_leaving_mid_body_logs_no_error(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sequence: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"csrfToken=", "more_body": True},
        {"type": "http.disconnect"},
    ]
    messages = iter(sequence)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with caplog.at_level(logging.DEBUG):
        await app(_post_scope([(b"content-length", b"100")]), receive, send)
    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _post_scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/auth/callback/credentials",
        "raw_path": b"/auth/callback/credentials",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            *headers,
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
