"""AuthMiddleware: resolving the session cookie around any ASGI app."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from asgi_session import AuthConfig, AuthMiddleware, Callbacks
from asgi_session.jwt import decode, encode
from tests.support.apps import (
    SECRET,
    Clock,
    build_app,
    client_for,
    csrf_token,
    set_cookies,
    sign_in,
)
from tests.support.node import run_node_script

SESSION_COOKIE = "authjs.session-token"
DAY = 24 * 60 * 60


def _token(
    claims: dict[str, Any],
    *,
    secret: str = SECRET,
    now: float | None = None,
    salt: str = SESSION_COOKIE,
    max_age: int = 30 * DAY,
) -> str:
    return encode(claims, secret=secret, salt=salt, max_age=max_age, now=now)


async def test_no_cookie_means_no_session_and_no_set_cookie(client: Any) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.json() is None
    assert "set-cookie" not in response.headers


async def test_signed_in_session_is_attached(client: Any, clock: Clock) -> None:
    response = await sign_in(client)
    assert response.status_code == 302
    body = (await client.get("/")).json()
    assert body["id"] == "user-1"
    assert body["user"] == {"name": "Ann", "email": "ann@example.com"}
    expires = datetime.fromisoformat(body["expires"].replace("Z", "+00:00"))
    assert abs(expires.timestamp() - (clock.now + 30 * DAY)) < 1


async def test_session_object_in_handler(clock: Clock) -> None:
    seen = {}

    async def handler(request: Request) -> JSONResponse:
        session = request.state.session
        seen["session"] = session
        return JSONResponse(None)

    config = AuthConfig(secret=SECRET, clock=clock)
    app = Starlette(
        routes=[Route("/", handler)], middleware=[Middleware(AuthMiddleware, config=config)]
    )
    token = _token(
        {"sub": "u9", "name": "Bo", "email": "bo@example.com", "picture": "p.png"}, now=clock.now
    )
    async with client_for(app) as http:
        await http.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})
    session = seen["session"]
    assert session.user.id == "u9"
    assert session.user.name == "Bo"
    assert session.user["email"] == "bo@example.com"
    assert session.user.image == "p.png"
    assert session.expires.tzinfo is not None
    assert session.claims["sub"] == "u9"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-5] + ("AAAAA" if not t.endswith("AAAAA") else "BBBBB"),  # tampered tag
        lambda t: t[: len(t) // 2],  # truncated
        lambda t: t + "." + t,  # extra segments
        lambda t: "x" * 100_000,  # oversized
        lambda t: "not a token at all",
        lambda t: "é∂ƒ",  # non-ASCII
        lambda t: "",  # empty
    ],
)
async def test_bad_cookie_means_no_session_never_500(
    client: Any, clock: Clock, mangle: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = _token({"sub": "u1"}, now=clock.now)
    with caplog.at_level(logging.DEBUG, logger="asgi_session"):
        cookie = f"{SESSION_COOKIE}={mangle(token)}".encode()
        response = await client.get("/", headers={"cookie": cookie})
    assert response.status_code == 200
    assert response.json() is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_bad_cookie_is_cleared(client: Any) -> None:
    response = await client.get("/", headers={"cookie": f"{SESSION_COOKIE}=garbage"})
    assert "Max-Age=0" in set_cookies(response)[SESSION_COOKIE]


async def test_wrong_secret_means_no_session(client: Any, clock: Clock) -> None:
    token = _token({"sub": "u1"}, secret="another-secret", now=clock.now)
    response = await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})
    assert response.json() is None


async def test_token_for_secure_cookie_does_not_work_as_plain(client: Any, clock: Clock) -> None:
    token = _token({"sub": "u1"}, now=clock.now, salt="__Secure-" + SESSION_COOKIE)
    response = await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})
    assert response.json() is None


async def test_expired_token_means_no_session(client: Any, clock: Clock) -> None:
    await sign_in(client)
    assert (await client.get("/")).json() is not None
    clock.advance(30 * DAY + 16)
    response = await client.get("/")
    assert response.json() is None
    assert "Max-Age=0" in set_cookies(response)[SESSION_COOKIE]


async def test_cached_token_still_expires(client: Any, clock: Clock) -> None:
    token = _token({"sub": "u1"}, now=clock.now, max_age=60)
    assert (await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})).json()[
        "id"
    ] == "u1"
    clock.advance(60 + 16)
    assert (await client.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})).json() is None


async def test_token_is_reissued_at_most_once_per_update_age(client: Any, clock: Clock) -> None:
    await sign_in(client)
    first = client.cookies[SESSION_COOKIE]
    clock.advance(DAY - 10)
    response = await client.get("/")
    assert "set-cookie" not in response.headers
    clock.advance(20)
    response = await client.get("/")
    header = set_cookies(response)[SESSION_COOKIE]
    assert "Expires=" in header
    second = client.cookies[SESSION_COOKIE]
    assert second != first
    claims = decode(second, secret=SECRET, salt=SESSION_COOKIE, now=clock.now)
    assert claims["exp"] == int(clock.now) + 30 * DAY
    assert claims["sub"] == "user-1"
    response = await client.get("/")
    assert "set-cookie" not in response.headers


async def test_jwt_callback_returning_none_ends_session_on_reissue(clock: Clock) -> None:
    revoked = set()

    def jwt(token: dict[str, Any]) -> dict[str, Any] | None:
        return None if token.get("sub") in revoked else token

    app = build_app(clock=clock, callbacks=Callbacks(jwt=jwt))
    async with client_for(app) as client:
        await sign_in(client)
        revoked.add("user-1")
        clock.advance(DAY + 1)
        response = await client.get("/")
        assert response.json() is None
        assert "Max-Age=0" in set_cookies(response)[SESSION_COOKIE]


async def test_streaming_response_is_untouched(client: Any) -> None:
    await sign_in(client)
    response = await client.get("/stream")
    assert response.text == "part 0\npart 1\npart 2\n"


async def test_server_side_update_reissues_cookie(clock: Clock) -> None:
    def session(session: dict[str, Any], token: dict[str, Any]) -> dict[str, Any]:
        session["theme"] = token.get("theme")
        return session

    app = build_app(clock=clock, callbacks=Callbacks(session=session))
    async with client_for(app) as client:
        await sign_in(client)
        before = client.cookies[SESSION_COOKIE]
        response = await client.post("/update", json={"theme": "dark"})
        assert response.json()["theme"] == "dark"
        assert SESSION_COOKIE in set_cookies(response)
        assert client.cookies[SESSION_COOKIE] != before
        assert (await client.get("/")).json()["theme"] == "dark"


def test_websocket_sees_the_session(clock: Clock) -> None:
    app = build_app(clock=clock)
    token = _token({"sub": "u1", "name": "Ann"}, now=clock.now)
    with TestClient(app) as http:
        http.cookies.set(SESSION_COOKIE, token)
        with http.websocket_connect("/ws") as websocket:
            assert websocket.receive_json()["user"]["name"] == "Ann"
    with TestClient(app) as http, http.websocket_connect("/ws") as websocket:
        assert websocket.receive_json() is None


def test_lifespan_passes_through() -> None:
    events = []

    async def lifespan(app: Starlette) -> Any:
        events.append("startup")
        yield
        events.append("shutdown")

    from contextlib import asynccontextmanager

    config = AuthConfig(secret=SECRET)
    app = Starlette(
        lifespan=asynccontextmanager(lifespan),
        middleware=[Middleware(AuthMiddleware, config=config)],
    )
    with TestClient(app):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


async def test_wraps_any_asgi_app(clock: Clock) -> None:
    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        session = scope["state"]["session"]
        body = b"anonymous" if session is None else session.user.id.encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    app = AuthMiddleware(raw_app, secret=SECRET, clock=clock)
    async with client_for(app) as http:
        assert (await http.get("/")).text == "anonymous"
        token = _token({"sub": "u7"}, now=clock.now)
        assert (await http.get("/", headers={"cookie": f"{SESSION_COOKIE}={token}"})).text == "u7"


async def test_config_or_options_not_both() -> None:
    from asgi_session.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="not both"):
        AuthMiddleware(build_app(), config=AuthConfig(secret=SECRET), secret=SECRET)


async def test_https_uses_secure_cookie_names(clock: Clock) -> None:
    app = build_app(clock=clock, allowed_hosts=["app.example.com"])
    async with client_for(app, base_url="https://app.example.com") as client:
        response = await sign_in(client)
        cookies = set_cookies(response)
        assert "__Secure-authjs.session-token" in cookies
        assert "; Secure" in cookies["__Secure-authjs.session-token"]
        assert client.cookies.get("__Host-authjs.csrf-token")
        assert (await client.get("/")).json()["id"] == "user-1"


@pytest.mark.parametrize(("trust_host", "secure"), [(True, True), (False, False)])
async def test_forwarded_proto_is_trusted_only_when_configured(
    clock: Clock, trust_host: bool, secure: bool
) -> None:
    app = build_app(clock=clock, trust_host=trust_host)
    async with client_for(app) as client:
        response = await client.get(
            "/auth/csrf",
            headers={"x-forwarded-proto": "https", "x-forwarded-host": "public.example"},
        )
        name = "__Host-authjs.csrf-token" if secure else "authjs.csrf-token"
        assert name in set_cookies(response)
        providers = (
            await client.get(
                "/auth/providers",
                headers={"x-forwarded-proto": "https", "x-forwarded-host": "public.example"},
            )
        ).json()
        expected = "https://public.example" if trust_host else "http://testserver"
        assert providers["credentials"]["callbackUrl"] == expected + "/auth/callback/credentials"


async def test_auth_url_fixes_origin_and_secure_cookies(clock: Clock) -> None:
    app = build_app(clock=clock, url="https://public.example/")
    async with client_for(app) as client:
        response = await client.get("/auth/csrf")
        assert "__Host-authjs.csrf-token" in set_cookies(response)
        providers = (await client.get("/auth/providers")).json()
        assert (
            providers["credentials"]["signinUrl"]
            == "https://public.example/auth/signin/credentials"
        )


async def test_large_session_is_chunked_and_read_back(clock: Clock) -> None:
    def jwt(token: dict[str, Any], trigger: str | None) -> dict[str, Any]:
        if trigger == "signIn":
            token["blob"] = "x" * 5000
        return token

    app = build_app(clock=clock, callbacks=Callbacks(jwt=jwt))
    async with client_for(app) as client:
        response = await sign_in(client)
        names = set(set_cookies(response))
        assert {f"{SESSION_COOKIE}.0", f"{SESSION_COOKIE}.1"} <= names
        assert SESSION_COOKIE not in client.cookies
        assert (await client.get("/")).json()["id"] == "user-1"


async def test_too_large_session_is_a_clear_configuration_error(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    def jwt(token: dict[str, Any]) -> dict[str, Any]:
        token["blob"] = "x" * 40_000
        return token

    app = build_app(clock=clock, callbacks=Callbacks(jwt=jwt))
    async with client_for(app) as client:
        with caplog.at_level(logging.ERROR, logger="asgi_session"):
            response = await sign_in(client)
        assert response.headers["location"].endswith("/auth/error?error=Configuration")
        assert "set-cookie" not in response.headers or SESSION_COOKIE not in response.headers.get(
            "set-cookie", ""
        )
        assert any("database strategy" in r.getMessage() or r.exc_info for r in caplog.records)


async def test_broken_chunk_set_is_no_session_and_cleared(client: Any, clock: Clock) -> None:
    token = _token({"sub": "u1"}, now=clock.now)
    half = len(token) // 2
    header = f"{SESSION_COOKIE}.0={token[:half]}; {SESSION_COOKIE}.2={token[half:]}"
    response = await client.get("/", headers={"cookie": header})
    assert response.json() is None
    cleared = set_cookies(response)
    assert "Max-Age=0" in cleared[f"{SESSION_COOKIE}.0"]
    assert "Max-Age=0" in cleared[f"{SESSION_COOKIE}.2"]


async def test_chunks_written_by_hand_are_joined(client: Any, clock: Clock) -> None:
    token = _token({"sub": "u1"}, now=clock.now)
    half = len(token) // 2
    header = f"{SESSION_COOKIE}.1={token[half:]}; {SESSION_COOKIE}.0={token[:half]}"
    assert (await client.get("/", headers={"cookie": header})).json()["id"] == "u1"


def test_websocket_session_cannot_be_updated(clock: Clock) -> None:
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def try_update(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.state.session.update({"theme": "dark"})
        except RuntimeError as exc:
            await websocket.send_text(str(exc))
        await websocket.close()

    config = AuthConfig(secret=SECRET, clock=clock)
    app = Starlette(
        routes=[WebSocketRoute("/ws", try_update)],
        middleware=[Middleware(AuthMiddleware, config=config)],
    )
    with TestClient(app) as http:
        http.cookies.set(SESSION_COOKIE, _token({"sub": "u1"}, now=clock.now))
        with http.websocket_connect("/ws") as websocket:
            assert "WebSocket" in websocket.receive_text()


# -- junk under the session cookie's name ---------------------------------------------
# A sibling subdomain can toss cookies named like chunks (<name>.00, <name>.7) at the
# app. They are never read, never an error, and the response expires exactly them.


def _expired(response: Any, prefix: str = SESSION_COOKIE) -> dict[str, str]:
    """The session cookie names the response sets, each mapped to its header."""
    return {
        name: header
        for header in response.headers.get_list("set-cookie")
        if (name := header.split("=", 1)[0]).startswith(prefix)
    }


@pytest.mark.parametrize(
    "planted",
    [
        {f"{SESSION_COOKIE}.00": "x"},
        {f"{SESSION_COOKIE}.0": "a", f"{SESSION_COOKIE}.01": "b"},
        {f"{SESSION_COOKIE}.00": "x", f"{SESSION_COOKIE}.x": "y", f"{SESSION_COOKIE}.7": "z"},
    ],
    ids=["leading-zero", "zero-and-zero-one", "assorted"],
)
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/protected", 401),
        ("GET", "/auth/session", 200),
        ("POST", "/auth/signout", 302),
    ],
)
async def test_junk_chunk_names_never_500_and_are_expired(
    client: Any, planted: dict[str, str], method: str, path: str, status: int
) -> None:
    data = {"csrfToken": await csrf_token(client)} if method == "POST" else None
    for name, value in planted.items():
        client.cookies.set(name, value)
    response = await client.request(method, path, data=data)
    assert response.status_code == status
    expired = _expired(response)
    assert set(expired) == set(planted)
    assert all("Max-Age=0" in header for header in expired.values())


async def test_signing_in_expires_junk_chunk_names(client: Any) -> None:
    client.cookies.set(f"{SESSION_COOKIE}.00", "x")
    response = await sign_in(client)
    assert response.status_code == 302
    written = _expired(response)
    assert set(written) == {SESSION_COOKIE, f"{SESSION_COOKIE}.00"}
    assert "Max-Age=0" in written[f"{SESSION_COOKIE}.00"]
    assert "Max-Age=0" not in written[SESSION_COOKIE]
    assert (await client.get("/")).json()["id"] == "user-1"


@pytest.mark.parametrize("junk", [".00", ".01", ".7", ".x", ".\xb9"])  # \xb9: superscript one
async def test_valid_session_survives_a_planted_junk_chunk(client: Any, junk: str) -> None:
    await sign_in(client)
    name = SESSION_COOKIE + junk
    cookie = f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}; {name}=x"
    response = await client.get("/", headers={"cookie": cookie.encode("latin-1")})
    assert response.status_code == 200
    assert response.json()["id"] == "user-1"
    expired = _expired(response)
    assert list(expired) == [name]
    assert "Max-Age=0" in expired[name]


async def test_secure_junk_chunk_names_are_expired_over_https(clock: Clock) -> None:
    secure_name = f"__Secure-{SESSION_COOKIE}"
    app = build_app(clock=clock, allowed_hosts=["app.example.com"])
    async with client_for(app, base_url="https://app.example.com") as client:
        client.cookies.set(f"{secure_name}.00", "x")
        response = await client.get("/auth/session")
        assert response.status_code == 200
        assert response.json() is None
        expired = _expired(response, secure_name)
        assert list(expired) == [f"{secure_name}.00"]
        assert "Max-Age=0" in expired[f"{secure_name}.00"]
        assert "; Secure" in expired[f"{secure_name}.00"]

        await sign_in(client)
        token = client.cookies[secure_name]
        cookie = f"{secure_name}={token}; {secure_name}.01=x; {secure_name}.0=y"
        response = await client.get("/", headers={"cookie": cookie})
        # A usable chunk set wins over the plain cookie, as in Auth.js: this one is no
        # token, so everything goes, the planted junk with it.
        assert response.status_code == 200
        assert response.json() is None
        expired = _expired(response, secure_name)
        assert set(expired) == {secure_name, f"{secure_name}.0", f"{secure_name}.01"}
        assert all("Max-Age=0" in header for header in expired.values())


# -- a name sent twice --------------------------------------------------------------------


async def test_a_repeated_session_cookie_resolves_to_the_first_as_in_authjs(
    client: Any, clock: Clock
) -> None:
    first = _token({"sub": "u1", "name": "First", "email": "first@example.com"}, now=clock.now)
    second = _token({"sub": "u2", "name": "Second", "email": "second@example.com"}, now=clock.now)
    header = f"{SESSION_COOKIE}={first}; {SESSION_COOKIE}={second}"
    assert (await client.get("/", headers={"cookie": header})).json()["id"] == "u1"
    # HTTP/2 clients may split cookies over several headers; they are joined in order.
    split = [("cookie", f"{SESSION_COOKIE}={first}"), ("cookie", f"{SESSION_COOKIE}={second}")]
    assert (await client.get("/", headers=split)).json()["id"] == "u1"

    answer = await asyncio.to_thread(
        run_node_script,
        "authjs_session.mjs",
        {"secret": SECRET, "cookie": header, "url": "http://next.example/api/auth/session"},
    )
    assert answer["body"]["user"] == {"name": "First", "email": "first@example.com"}


# -- the path of a remembered token ---------------------------------------------------------


async def test_a_strategy_that_changes_load_is_asked_for_remembered_tokens_too(
    clock: Clock,
) -> None:
    from asgi_session import Session
    from asgi_session._context import RequestContext
    from asgi_session.backends import JWTStrategy

    loads = []

    class Counting(JWTStrategy):
        async def load(self, ctx: RequestContext) -> Session | None:
            loads.append(ctx.cookie_header)
            return await super().load(ctx)

    app = build_app(clock=clock, strategy=Counting())
    headers = {"cookie": f"{SESSION_COOKIE}={_token({'sub': 'u1'}, now=clock.now)}"}
    async with client_for(app) as client:
        for _ in range(3):
            assert (await client.get("/", headers=headers)).json()["id"] == "u1"
    assert len(loads) == 3


async def test_a_remembered_session_can_be_updated_and_sets_its_cookie(clock: Clock) -> None:
    app = build_app(clock=clock)
    token = _token({"sub": "u1", "name": "Ann"}, now=clock.now)
    headers = {"cookie": f"{SESSION_COOKIE}={token}"}
    async with client_for(app) as client:
        await client.get("/", headers=headers)  # now remembered
        clock.advance(5)
        response = await client.post("/update", json={"name": "Bo"}, headers=headers)
    assert response.json()["user"]["name"] == "Bo"
    issued = set_cookies(response)[SESSION_COOKIE].split(";")[0].partition("=")[2]
    claims = decode(issued, secret=SECRET, salt=SESSION_COOKIE, now=clock.now)
    assert claims["name"] == "Bo"
    assert claims["sub"] == "u1"


async def test_cookies_reach_a_server_that_sends_through_the_app(clock: Clock) -> None:
    # The app's send returns the server's awaitable; messages arrive in order, the
    # cookie on the response's start only.
    sent: list[dict[str, Any]] = []

    async def server_send(message: Any) -> None:
        sent.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await scope["state"]["session"].update({"name": "Bo"})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    middleware = AuthMiddleware(app, config=AuthConfig(secret=SECRET, clock=clock))
    token = _token({"sub": "u1"}, now=clock.now)
    cookie = (b"cookie", f"{SESSION_COOKIE}={token}".encode())
    for _ in range(2):  # the second request takes the remembered token's path
        sent.clear()
        scope = {"type": "http", "path": "/", "headers": [cookie], "state": {}}
        await middleware(scope, receive, server_send)
        assert [message["type"] for message in sent] == [
            "http.response.start",
            "http.response.body",
            "http.response.body",
        ]
        names = [value.split(b"=")[0] for key, value in sent[0]["headers"] if key == b"set-cookie"]
        assert names == [SESSION_COOKIE.encode()]
        assert [message.get("body") for message in sent[1:]] == [b"a", b"b"]
