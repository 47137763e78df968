"""The example app (``examples/app.py``) served by uvicorn and used through headless Chromium
(and, with its sessions in SQLite, over plain HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import queue
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, Route, expect

from asgi_session._pages import SIGN_IN_ERRORS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "app.py"

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
DEMO_NAME = "Demo User"
SESSION_COOKIE = "authjs.session-token"

_STARTUP_TIMEOUT = 30.0
_READY = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


class ExampleServer:
    """``python examples/app.py [options]`` on a port the OS picks, with its log collected,
    started in ``cwd`` (by default the current directory)."""

    def __init__(self, *options: str, cwd: Path | None = None) -> None:
        # No AUTH_* from the developer's shell: the app must make its own dev secret.
        env = {key: value for key, value in os.environ.items() if not key.startswith("AUTH_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        # The app puts its own address in sign-in links, so it must know its port.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--host", "127.0.0.1", "--port", str(port), *options],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read_log, daemon=True).start()
        self.url = self._wait_until_serving()

    def _read_log(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_until_serving(self) -> str:
        while True:
            try:
                line = self._lines.get(timeout=_STARTUP_TIMEOUT)
            except queue.Empty:
                line = None
            if line is None:
                self.stop()
                pytest.fail("the example app did not start:\n" + "".join(self.log), pytrace=False)
            found = _READY.search(line)
            if found:
                return found.group(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("asgi_session_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example_server() -> Iterator[ExampleServer]:
    server = ExampleServer()
    try:
        yield server
    finally:
        server.stop()


async def _session_cookies(context: BrowserContext, url: str) -> list[str]:
    return [
        cookie["name"]
        for cookie in await context.cookies(url)
        if cookie["name"].startswith(SESSION_COOKIE)
    ]


async def _submit_credentials(page: Page, password: str) -> None:
    form = page.locator('form[data-provider="password"]')
    await form.get_by_label("Email").fill(DEMO_EMAIL)
    await form.get_by_label("Password").fill(password)
    await form.get_by_role("button", name="Sign in").click()


def test_example_warns_when_it_makes_its_own_secret(example_server: ExampleServer) -> None:
    warnings = [line for line in example_server.log if line.startswith("WARNING")]
    assert len(warnings) == 1, example_server.log
    assert "AUTH_SECRET is not set" in warnings[0]
    assert "restart" in warnings[0]
    assert "python -m asgi_session secret" in warnings[0]


async def test_create_app_passes_options_to_the_config() -> None:
    app = _load_example().create_app(secret="example-test-secret", base_path="/api/auth")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example.test") as client:
        home = await client.get("/")
        protected = await client.get("/protected", headers={"accept": "text/html"})
        providers = await client.get("/api/auth/providers")
    assert home.status_code == 200
    assert 'href="/api/auth/signin?callbackUrl=%2F"' in home.text
    assert protected.status_code == 303
    assert protected.headers["location"].startswith("/api/auth/signin?callbackUrl=")
    assert list(providers.json()) == ["password", "email"]


async def test_sign_in_and_out_with_a_browser(
    example_server: ExampleServer, browser_context: BrowserContext
) -> None:
    base = example_server.url
    page = await browser_context.new_page()

    await page.goto(base + "/")
    await expect(page.get_by_test_id("status")).to_have_text("Signed out")
    await expect(page.locator("main")).to_contain_text(DEMO_EMAIL)
    await expect(page.locator("main")).to_contain_text(DEMO_PASSWORD)

    # A signed-out visit to the protected page goes to sign in, remembering where it was.
    await page.goto(base + "/protected")
    landed = urlsplit(page.url)
    assert landed.path == "/auth/signin"
    assert parse_qs(landed.query)["callbackUrl"] == [base + "/protected"]
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    await _submit_credentials(page, "not-the-password")
    await page.wait_for_url("**/auth/signin?*error=CredentialsSignin*")
    await expect(page.get_by_role("alert")).to_have_text(SIGN_IN_ERRORS["CredentialsSignin"])
    assert await _session_cookies(browser_context, base) == []

    await page.goto(base + "/protected")
    await _submit_credentials(page, DEMO_PASSWORD)
    await page.wait_for_url(base + "/protected")
    await expect(page.get_by_test_id("user-name")).to_have_text(DEMO_NAME)
    cookies = {cookie["name"]: cookie for cookie in await browser_context.cookies(base)}
    assert cookies[SESSION_COOKIE]["httpOnly"] is True
    assert cookies[SESSION_COOKIE]["sameSite"] == "Lax"

    await page.goto(base + "/")
    await expect(page.get_by_test_id("status")).to_have_text("Signed in")
    main = page.locator("main")
    await expect(main).to_contain_text(DEMO_NAME)
    await expect(main).to_contain_text(DEMO_EMAIL)
    await expect(main).to_contain_text("Expires")
    shown = json.loads(await page.get_by_test_id("session-json").inner_text())
    assert (shown["user"]["name"], shown["user"]["email"]) == (DEMO_NAME, DEMO_EMAIL)
    served = await browser_context.request.get(base + "/auth/session")
    assert await served.json() == shown

    await page.get_by_role("navigation").get_by_role("link", name="Sign out").click()
    await page.wait_for_url("**/auth/signout?*")
    await expect(page.get_by_role("heading", name="Sign out")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(base + "/")
    await expect(page.get_by_test_id("status")).to_have_text("Signed out")
    assert await _session_cookies(browser_context, base) == []


_LINK = re.compile(r"Sign-in link for (\S+): (http://\S+)")


async def _printed_link(server: ExampleServer) -> tuple[str, str]:
    """The last sign-in link the app printed (its output arrives through a pipe)."""
    for _ in range(100):
        links = [found for line in server.log if (found := _LINK.search(line))]
        if links:
            identifier, url = links[-1].groups()
            return identifier, url
        await asyncio.sleep(0.05)
    pytest.fail("the app printed no sign-in link:\n" + "".join(server.log))


async def test_sign_in_with_a_link_printed_on_the_console(
    example_server: ExampleServer, browser_context: BrowserContext
) -> None:
    base = example_server.url
    page = await browser_context.new_page()
    await page.goto(base + "/protected")
    form = page.locator('form[data-provider="email"]')
    await form.get_by_label("Email").fill("  Grace@Example.com ")
    await form.get_by_role("button").click()
    await page.wait_for_url("**/auth/verify-request*")
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    assert await _session_cookies(browser_context, base) == []

    identifier, url = await _printed_link(example_server)
    assert identifier == "grace@example.com"
    await page.goto(url)
    await page.wait_for_url(base + "/protected")
    await expect(page.locator("main")).to_contain_text("grace@example.com")
    assert await _session_cookies(browser_context, base) == [SESSION_COOKIE]

    # The link works once.
    await browser_context.clear_cookies()
    await page.goto(url)
    await page.wait_for_url("**/auth/error?error=Verification")
    await expect(page.get_by_role("heading", name="Unable to sign in")).to_be_visible()
    assert await _session_cookies(browser_context, base) == []


_MAIL = re.compile(r"Email to (\S+) \(([^)]*)\): (http://\S+)")


async def _printed_mail(server: ExampleServer, to: str, subject: str, seen: int = 0) -> str:
    """The link of the app's ``seen``-th-next printed email to ``to`` with ``subject``."""
    for _ in range(100):
        links = [
            found.group(3)
            for line in server.log
            if (found := _MAIL.search(line)) and found.groups()[:2] == (to, subject)
        ]
        if len(links) > seen:
            return links[seen]
        await asyncio.sleep(0.05)
    pytest.fail(f"the app printed no {subject!r} email to {to}:\n" + "".join(server.log))


async def test_sign_up_verify_forget_reset_and_sign_in_with_a_browser(
    example_server: ExampleServer, browser_context: BrowserContext
) -> None:
    base = example_server.url
    email, first, second = "lin@example.com", "a long first passphrase", "another passphrase!"
    page = await browser_context.new_page()

    # Sign up from the sign-in page's link; a common password is refused first.
    await page.goto(base + "/auth/signin")
    await page.get_by_role("link", name="Create an account").click()
    await page.wait_for_url("**/auth/signup*")
    await page.get_by_label("Name (optional)").fill("Lin")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill("password123")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("alert")).to_contain_text("common")
    await expect(page.get_by_label("Email")).to_have_value(email)
    await page.get_by_label("Password").fill(first)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(base + "/")
    await expect(page.get_by_test_id("status")).to_have_text("Signed in")

    # The printed verification link confirms the address and keeps the browser signed in.
    await page.goto(await _printed_mail(example_server, email, "Confirm your email address"))
    await page.get_by_role("button", name="Confirm my address").click()
    await page.wait_for_url(base + "/")
    await expect(page.locator("main")).to_contain_text(email)

    await page.get_by_role("navigation").get_by_role("link", name="Sign out").click()
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(base + "/")
    await expect(page.get_by_test_id("status")).to_have_text("Signed out")

    # Forgot: the sign-in page links to it; the reset link sets a new password.
    await page.goto(base + "/auth/signin")
    await page.get_by_role("link", name="Forgot password?").click()
    await page.get_by_label("Email").fill(email)
    await page.get_by_role("button", name="Send me a reset link").click()
    await page.wait_for_url("**/auth/verify-request*")
    await expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    reset_link = await _printed_mail(example_server, email, "Reset your password")
    await page.goto(reset_link)
    await page.get_by_label("New password").fill(second)
    await page.get_by_role("button", name="Set password").click()
    await page.wait_for_url(base + "/")
    await expect(page.get_by_test_id("status")).to_have_text("Signed in")

    # Signed out again, the old password no longer works and the new one does.
    await browser_context.clear_cookies()
    await page.goto(base + "/protected")
    form = page.locator('form[data-provider="password"]')
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill(first)
    await form.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/auth/signin?*error=CredentialsSignin*")
    await expect(page.get_by_role("alert")).to_be_visible()
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill(second)
    await form.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(base + "/protected")
    await expect(page.get_by_test_id("user-name")).to_have_text("Lin")

    # The reset link worked once.
    await browser_context.clear_cookies()
    await page.goto(reset_link)
    await page.get_by_label("New password").fill("yet another passphrase")
    await page.get_by_role("button", name="Set password").click()
    await expect(page.get_by_role("alert")).to_contain_text("no longer valid")


async def test_the_built_in_forms_work_in_a_browser_that_sends_no_sec_fetch_site(
    example_server: ExampleServer, browser_context: BrowserContext
) -> None:
    # Older browsers (and some proxies) send no Sec-Fetch-Site: the cross-site check then
    # reads Origin, which the pages' Referrer-Policy must leave intact (no "null").
    base = example_server.url
    seen: list[dict[str, str]] = []

    async def without_fetch_metadata(route: Route) -> None:
        headers = {
            key: value
            for key, value in route.request.headers.items()
            if not key.startswith("sec-fetch-")
        }
        if route.request.method == "POST":
            seen.append(headers)
        await route.continue_(headers=headers)

    page = await browser_context.new_page()
    await page.route(base + "/auth/**", without_fetch_metadata)
    await page.goto(base + "/auth/signin")
    await _submit_credentials(page, DEMO_PASSWORD)
    await page.wait_for_url(base + "/")
    assert await _session_cookies(browser_context, base) == [SESSION_COOKIE]
    assert seen and seen[0].get("origin") == base
    assert "sec-fetch-site" not in seen[0]

    await page.goto(base + "/auth/signout")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(base + "/")
    assert await _session_cookies(browser_context, base) == []


def _sqlite_rows(database: Path, query: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return connection.execute(query).fetchall()


def test_database_sessions_in_sqlite_outlast_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "auth.db"  # the default: ./auth.db, where the app was started
    server = ExampleServer("--database", "sqlite", cwd=tmp_path)
    try:
        assert database.is_file(), server.log
        with httpx.Client(base_url=server.url) as client:
            fields = {"csrfToken": client.get("/auth/csrf").json()["csrfToken"]}
            fields |= {"email": DEMO_EMAIL, "password": "not-the-password"}
            refused = client.post("/auth/callback/password", data=fields)
            assert refused.status_code == 302
            assert "error=CredentialsSignin" in refused.headers["location"]
            signed_in = client.post(
                "/auth/callback/password", data={**fields, "password": DEMO_PASSWORD}
            )
            assert signed_in.status_code == 302, signed_in.text
            token = client.cookies[SESSION_COOKIE]
            session = client.get("/auth/session").json()
    finally:
        server.stop()
    assert session["user"] == {"name": DEMO_NAME, "email": DEMO_EMAIL}
    # The cookie holds the token of a row, not a JWT; the failed attempt was counted there.
    assert _sqlite_rows(database, 'SELECT "sessionToken" FROM "session"') == [(token,)]
    assert _sqlite_rows(database, "SELECT count(*) FROM asgi_session_rate_limits") != [(0,)]

    # Another process, another random secret: the session is still there.
    again = ExampleServer("--database", "sqlite", cwd=tmp_path)
    try:
        with httpx.Client(base_url=again.url, cookies={SESSION_COOKIE: token}) as client:
            assert client.get("/auth/session").json() == session
            protected = client.get("/protected")
            assert protected.status_code == 200
            assert DEMO_NAME in protected.text
            csrf = client.get("/auth/csrf").json()["csrfToken"]
            assert client.post("/auth/signout", data={"csrfToken": csrf}).status_code == 302
            assert client.get("/auth/session").json() is None
    finally:
        again.stop()
    assert _sqlite_rows(database, 'SELECT count(*) FROM "session"') == [(0,)]
    # The demo user was stored once, by the first start.
    assert _sqlite_rows(database, 'SELECT email FROM "user"') == [(DEMO_EMAIL,)]
