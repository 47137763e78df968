"""A Next.js app on Auth.js and a Python app sharing AUTH_SECRET share signed-in users.

Both directions run through the real ``@auth/core`` handler from npm: a cookie our
sign-in sets is a session to Auth.js, and one Auth.js issues is a session to us.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.apps import SECRET, Clock, build_app, client_for, sign_in
from tests.support.node import run_node_script


async def _authjs_session(cookie: str, *, secret: Any = SECRET, https: bool = False) -> Any:
    scheme = "https" if https else "http"
    return await asyncio.to_thread(
        run_node_script,
        "authjs_session.mjs",
        {"secret": secret, "cookie": cookie, "url": f"{scheme}://next.example/api/auth/session"},
    )


def _cookie_value(set_cookie: list[str], name: str) -> str:
    for header in set_cookie:
        if header.startswith(name + "="):
            return header.split(";")[0].split("=", 1)[1]
    raise AssertionError(f"{name} not set by Auth.js: {set_cookie}")


@pytest.mark.parametrize("https", [False, True])
async def test_our_session_cookie_is_a_session_to_authjs(clock: Clock, https: bool) -> None:
    base_url = "https://app.example" if https else "http://app.example"
    name = ("__Secure-" if https else "") + "authjs.session-token"
    app = build_app(clock=clock, allowed_hosts=["app.example"])
    async with client_for(app, base_url=base_url) as client:
        await sign_in(client)
        ours = (await client.get("/auth/session")).json()
        cookie = f"{name}={client.cookies[name]}"
    answer = await _authjs_session(cookie, https=https)
    assert answer["errors"] == []
    assert answer["body"]["user"] == ours["user"] == {"name": "Ann", "email": "ann@example.com"}


async def test_authjs_session_cookie_is_a_session_to_us() -> None:
    # Start from our cookie so Auth.js has something to re-issue: the cookie it sends back
    # is one Auth.js encrypted itself.
    async with client_for(build_app()) as client:
        await sign_in(client)
        first = client.cookies["authjs.session-token"]
    answer = await _authjs_session(f"authjs.session-token={first}")
    issued_by_authjs = _cookie_value(answer["setCookie"], "authjs.session-token")
    assert issued_by_authjs != first
    async with client_for(build_app()) as client:
        response = await client.get(
            "/", headers={"cookie": f"authjs.session-token={issued_by_authjs}"}
        )
        body = response.json()
    assert body["id"] == "user-1"
    assert body["user"] == {"name": "Ann", "email": "ann@example.com"}


async def test_secret_rotation_across_both_apps() -> None:
    async with client_for(build_app(secret=["new-secret", "old-secret"])) as client:
        await sign_in(client)
        cookie = f"authjs.session-token={client.cookies['authjs.session-token']}"
    assert (await _authjs_session(cookie, secret=["new-secret"]))["body"]["user"]["name"] == "Ann"
    assert (await _authjs_session(cookie, secret=["old-secret"]))["body"] is None


async def test_different_secrets_share_nothing() -> None:
    async with client_for(build_app(secret="python-secret")) as client:
        await sign_in(client)
        cookie = f"authjs.session-token={client.cookies['authjs.session-token']}"
    answer = await _authjs_session(cookie, secret="next-secret")
    assert answer["body"] is None
