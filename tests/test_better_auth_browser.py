"""One browser, one site: a Better Auth front end and a Python API share the session.

A real headless Chromium browses two servers on 127.0.0.1: the real ``better-auth`` npm
package (tests/support/better_auth_server.mjs), whose page signs up, in and out through
Better Auth's own browser client, and a Starlette app over real HTTP with
``BetterAuthStrategy`` on the same MongoDB database, with the package's built-in sign-in
pages under ``/auth`` and an API route, ``/api/me``, that answers the request's session.
Cookies do not tell ports apart, so both servers get the one cookie the browser keeps
for 127.0.0.1: whichever side signs in or out, the other sees it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from playwright.async_api import BrowserContext, Cookie, Page, expect
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends.better_auth import BetterAuthStrategy
from asgi_session.providers import Password
from tests.support.apps import show_session
from tests.support.better_auth import BetterAuthServer, better_auth, database_for
from tests.support.live_server import LiveServer
from tests.support.passwords import GOOD_PASSWORD, Outbox

EMAIL = "ada@example.com"
NAME = "Ada Lovelace"
TOKEN_COOKIE = "better-auth.session_token"


@dataclass
class PythonApp:
    """The Python side, where it is served (``http://127.0.0.1:<port>``)."""

    url: str


@pytest.fixture
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BetterAuthServer]:
    """Better Auth on the test's MongoDB database, trusting the origin it is browsed at
    (``http://127.0.0.1:<port>``, its default ``baseURL``)."""
    with better_auth(database_for("mongodb", request, tmp_path)) as server:
        yield server


@pytest.fixture
def python_app(node: BetterAuthServer) -> Iterator[PythonApp]:
    database = node.config["database"]
    assert database["kind"] == "mongodb"

    def build(url: str) -> Starlette:
        # Made here, used only in the server's own event loop (and closed there).
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database["url"])
        strategy = BetterAuthStrategy(client[database["db"]])
        config = AuthConfig(
            secret=node.secret,
            url=url,
            strategy=strategy,
            providers=[Password(send=Outbox().send)],
        )

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            await strategy.aclose()
            await client.close()

        return Starlette(
            routes=[Route("/", show_session), Route("/api/me", show_session)],
            middleware=[Middleware(AuthMiddleware, config=config)],
            lifespan=lifespan,
        )

    with LiveServer(build) as server:
        yield PythonApp(url=server.url)


@pytest.fixture
async def page(browser_context: BrowserContext) -> Page:
    return await browser_context.new_page()


# --- The Better Auth page ---


async def _ready(page: Page, element: str) -> Any:
    """What the Better Auth page shows in ``#result`` or ``#session``, once it has it."""
    locator = page.locator(f"#{element}")
    await expect(locator).to_have_attribute("data-state", "ready")
    return json.loads(await locator.inner_text())


async def _node_page_session(page: Page, node: BetterAuthServer) -> Any:
    """The session Better Auth's client (``getSession``) finds on a fresh load of its page."""
    await page.goto(node.page_url)
    return await _ready(page, "session")


async def _submit(page: Page, action: str, *, name: str | None = None) -> Any:
    """Fill in the Better Auth page's form and press ``action``: what the client got."""
    form = page.locator("#credentials")
    if name is not None:
        await form.get_by_label("Name").fill(name)
    await form.get_by_label("Email").fill(EMAIL)
    await form.get_by_label("Password").fill(GOOD_PASSWORD)
    await form.get_by_role("button", name=action).click()
    await expect(page.locator("#result")).to_have_attribute(
        "data-action", action.lower().replace(" ", "-")
    )
    return await _ready(page, "result")


async def _sign_up_with_better_auth(page: Page, node: BetterAuthServer) -> dict[str, Any]:
    """Sign up (and so in) on the Better Auth page: the user Better Auth answered."""
    await page.goto(node.page_url)
    assert await _ready(page, "session") is None
    answer = await _submit(page, "Sign up", name=NAME)
    assert answer["error"] is None, answer
    user: dict[str, Any] = answer["data"]["user"]
    assert (user["email"], user["name"]) == (EMAIL, NAME)
    session = await _ready(page, "session")
    assert session is not None and session["user"]["id"] == user["id"]
    return user


async def _get_session(page: Page, node: BetterAuthServer) -> Any:
    """Better Auth's ``/api/auth/get-session``, browsed to."""
    response = await page.goto(node.url + "/api/auth/get-session")
    assert response is not None and response.ok
    return await response.json()


# --- The Python side ---


async def _me(page: Page, app: PythonApp) -> Any:
    """The Python API's ``/api/me``, browsed to: the session it sees, or ``None``."""
    response = await page.goto(app.url + "/api/me")
    assert response is not None and response.ok
    return await response.json()


async def _token_cookie(context: BrowserContext) -> Cookie:
    """The session cookie the browser holds for 127.0.0.1 (every port)."""
    [cookie] = [cookie for cookie in await context.cookies() if cookie["name"] == TOKEN_COOKIE]
    assert cookie["domain"] == "127.0.0.1"
    return cookie


async def _has_no_session_cookie(context: BrowserContext) -> bool:
    return all(cookie["name"] != TOKEN_COOKIE for cookie in await context.cookies())


async def _put_back(context: BrowserContext, cookie: Cookie) -> None:
    """Give the browser back a session cookie it was told to delete, as someone who
    kept a copy would: the session must be gone from the database, not just the jar."""
    await context.add_cookies(
        [
            {
                "name": cookie["name"],
                "value": cookie["value"],
                "domain": cookie["domain"],
                "path": cookie["path"],
            }
        ]
    )
    assert (await _token_cookie(context))["value"] == cookie["value"]


def _token(cookie: Cookie) -> str:
    """The session token in a signed ``better-auth.session_token`` value."""
    return unquote(cookie["value"]).rpartition(".")[0]


# --- Tests ---


async def test_a_better_auth_sign_up_is_the_python_apis_session(
    page: Page, node: BetterAuthServer, python_app: PythonApp
) -> None:
    user = await _sign_up_with_better_auth(page, node)
    cookie = await _token_cookie(page.context)

    me = await _me(page, python_app)
    assert me is not None
    assert me["id"] == user["id"]
    assert me["user"]["email"] == EMAIL
    assert me["user"]["name"] == NAME
    # The same session, not one of Python's own: the cookie is still Better Auth's.
    assert (await _token_cookie(page.context))["value"] == cookie["value"]
    assert (await _node_page_session(page, node))["session"]["token"] == _token(cookie)


async def test_a_better_auth_sign_out_ends_the_python_apis_session(
    page: Page, node: BetterAuthServer, python_app: PythonApp
) -> None:
    await _sign_up_with_better_auth(page, node)
    assert await _me(page, python_app) is not None
    cookie = await _token_cookie(page.context)

    await page.goto(node.page_url)
    assert await _ready(page, "session") is not None
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#result")).to_have_attribute("data-action", "sign-out")
    answer = await _ready(page, "result")
    assert answer == {"data": {"success": True}, "error": None}
    assert await _ready(page, "session") is None
    assert await _has_no_session_cookie(page.context)
    assert await _me(page, python_app) is None

    # Signed out in the database too: the old cookie is no session for Python either.
    await _put_back(page.context, cookie)
    assert await _me(page, python_app) is None


async def test_a_python_sign_in_is_better_auths_session(
    page: Page, node: BetterAuthServer, python_app: PythonApp
) -> None:
    user = await _sign_up_with_better_auth(page, node)
    await page.context.clear_cookies()
    assert await _get_session(page, node) is None

    # The built-in sign-in page, with the password Better Auth hashed at sign-up.
    await page.goto(f"{python_app.url}/auth/signin?callbackUrl={quote('/api/me', safe='')}")
    form = page.locator('form[data-provider="password"]')
    await form.get_by_label("Email").fill(EMAIL)
    await form.get_by_label("Password").fill(GOOD_PASSWORD)
    await form.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(python_app.url + "/api/me")
    me = await _me(page, python_app)
    assert me is not None and me["id"] == user["id"]
    token = _token(await _token_cookie(page.context))

    # Better Auth's client on its page, and its get-session route, see that session.
    seen = await _node_page_session(page, node)
    assert seen is not None
    assert seen["user"]["id"] == user["id"]
    assert seen["user"]["email"] == EMAIL
    assert seen["session"]["token"] == token
    found = await _get_session(page, node)
    assert found is not None
    assert (found["user"]["id"], found["session"]["token"]) == (user["id"], token)


async def test_a_python_sign_out_ends_better_auths_session(
    page: Page, node: BetterAuthServer, python_app: PythonApp
) -> None:
    await _sign_up_with_better_auth(page, node)
    cookie = await _token_cookie(page.context)
    assert await _me(page, python_app) is not None

    await page.goto(python_app.url + "/auth/signout")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(python_app.url + "/")
    assert await _has_no_session_cookie(page.context)
    assert await _get_session(page, node) is None
    assert await _node_page_session(page, node) is None

    # Ended in the database, not only forgotten by the browser: Better Auth, asked
    # with the old cookie, finds no session.
    await _put_back(page.context, cookie)
    assert await _get_session(page, node) is None
