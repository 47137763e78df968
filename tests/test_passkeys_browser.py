"""Passkeys and two-factor sign-in in headless Chromium, against the app over real HTTP.

Chromium's own WebAuthn code runs the ceremonies: the Chrome DevTools Protocol gives each
page a virtual authenticator (a platform one that holds passkeys and verifies its user),
so what ``passkey.js`` sends is what a browser sends, and the server checks it for real.
Passkeys are bound to a host name, never an IP address: the app is served on 127.0.0.1
and known, and browsed, as ``http://localhost:<port>``.

The built-in pages drive the ceremonies through ``passkey.js``: adding a passkey, signing
in with its button or the email field's autofill, a passkey or a TOTP code as the second
factor after a password. Auth.js's own browser client, ``next-auth/webauthn`` (bundled
from the npm package by esbuild), registers and signs in against the same routes. TOTP
codes are computed with pyotp from the secret the enrolment page shows, at the app's
clock, which the tests move by hand.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyotp
import pytest
from playwright.async_api import BrowserContext, CDPSession, Page, expect
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, mfa
from asgi_session._mfa_pages import MESSAGES
from asgi_session.backends import MemoryAdapter
from asgi_session.providers import Passkey, Password
from tests.support.apps import SECRET, Clock, show_session
from tests.support.live_server import LiveServer
from tests.support.node import NODE_MODULES_DIR, SUPPORT_DIR, node_binary
from tests.support.passwords import FAST_HASHER, GOOD_PASSWORD, Outbox

EMAIL = "ada@example.com"
NAME = "Ada"
#: Seconds a sign-in counts as recent enough to add a way to sign in.
FRESH_AGE = 300
#: What the virtual authenticator is: a passkey provider built into the device.
AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


@dataclass
class App:
    """The app under test, where it is served, and what it keeps."""

    url: str
    clock: Clock
    adapter: MemoryAdapter
    outbox: Outbox
    config: AuthConfig | None = None


def _build(url: str, app: App, bundle: Path) -> Starlette:
    config = AuthConfig(
        secret=SECRET,
        url=url,
        adapter=app.adapter,
        strategy="jwt",
        providers=[Password(send=app.outbox.send, hasher=FAST_HASHER), Passkey()],
        two_factor=True,
        fresh_age=FRESH_AGE,
        clock=app.clock,
    )
    app.config = config

    async def nextauth_page(request: Request) -> Response:
        # next-auth/react takes its base path from NEXTAUTH_URL, which a Next.js build
        # writes into the script; here the page defines it before the bundle loads.
        return HTMLResponse(
            "<!doctype html><html><head><meta charset=utf-8><title>next-auth</title>"
            f"<script>window.process = {{ env: {{ NEXTAUTH_URL: {json.dumps(url + '/auth')} }} }};"
            "</script><script src=/nextauth-webauthn.js></script></head>"
            "<body><h1>next-auth/webauthn</h1></body></html>"
        )

    async def nextauth_script(request: Request) -> Response:
        return FileResponse(bundle, media_type="text/javascript")

    return Starlette(
        routes=[
            Route("/", show_session),
            Route("/dashboard", show_session),
            Route("/nextauth", nextauth_page),
            Route("/nextauth-webauthn.js", nextauth_script),
        ],
        middleware=[Middleware(AuthMiddleware, config=config)],
    )


@pytest.fixture(scope="module")
def nextauth_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``next-auth/webauthn``, from the npm package, bundled for the browser by esbuild."""
    node_binary()
    out = tmp_path_factory.mktemp("nextauth") / "nextauth-webauthn.js"
    built = subprocess.run(
        [
            str(NODE_MODULES_DIR / "esbuild" / "bin" / "esbuild"),
            str(SUPPORT_DIR / "nextauth_webauthn.mjs"),
            "--bundle",
            "--format=iife",
            '--define:process.env.NODE_ENV="production"',
            f"--outfile={out}",
            "--log-level=warning",
        ],
        env={**os.environ, "NODE_PATH": str(NODE_MODULES_DIR)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if built.returncode != 0:
        pytest.fail(f"esbuild could not bundle next-auth/webauthn:\n{built.stderr}")
    return out


@pytest.fixture
def app(nextauth_bundle: Path) -> Iterator[App]:
    served = App(url="", clock=Clock(), adapter=MemoryAdapter(), outbox=Outbox())

    def build(url: str) -> Starlette:
        served.url = url
        return _build(url, served, nextauth_bundle)

    with LiveServer(build, host="localhost") as server:
        assert served.url == server.url
        yield served


#: Reports the page's WebAuthn calls to the test (passing each through unchanged): which
#: ceremony asked (a button's, or the autofill's conditional request) and how it ended.
#: A binding carries them, so they outlive the page, and no script is evaluated in pages
#: whose Content-Security-Policy forbids it.
_WATCH_CEREMONIES = """
(() => {
  const container = navigator.credentials;
  if (!container) return;
  const page = location.pathname;
  let made = 0;
  for (const kind of ["create", "get"]) {
    const original = container[kind].bind(container);
    container[kind] = (options) => {
      const id = `${performance.timeOrigin}/${made++}`;
      const mediation = (options && options.mediation) || "";
      const answer = original(options);
      window.passkeyCall({ id, page, kind, mediation, outcome: "pending" });
      answer.then(
        () => window.passkeyCall({ id, outcome: "resolved" }),
        (error) => window.passkeyCall({ id, outcome: error.name }),
      );
      return answer;
    };
  }
})();
"""

#: A WebAuthn call: ``(page path, "get" or "create", mediation, outcome)``, the
#: outcome ``"pending"``, ``"resolved"`` or the name of the error it ended with.
Call = tuple[str, str, str, str]


@dataclass
class Device:
    """A page in a browser with a passkey authenticator built in."""

    page: Page
    cdp: CDPSession
    authenticator_id: str
    calls: list[Call] = field(default_factory=list)
    _ids: dict[str, int] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, source: Any, event: dict[str, str]) -> None:
        """The page made a WebAuthn call (``page`` given), or one ended."""
        index = self._ids.get(event["id"])
        if index is None and "page" not in event:
            return  # the end of a call forgotten
        if index is None:
            self._ids[event["id"]] = len(self.calls)
            self.calls.append((event["page"], event["kind"], event["mediation"], event["outcome"]))
        else:
            self.calls[index] = (*self.calls[index][:3], event["outcome"])
        self._changed.set()

    def forget(self) -> None:
        """Forget the calls so far (the ones still pending too)."""
        self.calls.clear()
        self._ids.clear()

    async def until(self, check: Callable[[list[Call]], bool]) -> None:
        """Wait (a few seconds at most) for the calls to pass ``check``."""
        async with asyncio.timeout(5):
            while not check(self.calls):
                self._changed.clear()
                await self._changed.wait()

    async def credentials(self) -> list[dict[str, Any]]:
        """The passkeys the authenticator holds."""
        found = await self.cdp.send(
            "WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id}
        )
        credentials: list[dict[str, Any]] = found["credentials"]
        return credentials

    async def presence(self, touched: bool) -> None:
        """Whether the person touches the authenticator when it asks (on by default).
        Off, a request waits for good: an autofill request started then stays waiting."""
        await self.cdp.send(
            "WebAuthn.setAutomaticPresenceSimulation",
            {"authenticatorId": self.authenticator_id, "enabled": touched},
        )


@pytest.fixture
async def device(browser_context: BrowserContext) -> AsyncIterator[Device]:
    browser_context.set_default_timeout(5_000)
    page = await browser_context.new_page()
    cdp = await browser_context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    added = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    found = Device(page=page, cdp=cdp, authenticator_id=added["authenticatorId"])
    await browser_context.expose_binding("passkeyCall", found.record)
    await browser_context.add_init_script(_WATCH_CEREMONIES)
    yield found
    await cdp.detach()


async def _session(page: Page, app: App) -> Any:
    """The session the app's own handler sees for this browser (``None``: signed out)."""
    answer = await page.context.request.get(app.url + "/")
    assert answer.ok
    return await answer.json()


async def _sign_up(page: Page, app: App, *, confirm: bool = True) -> str:
    """Sign up with a password (and confirm the address): the new user's id."""
    await page.goto(app.url + "/auth/signup")
    await page.get_by_label("Name (optional)").fill(NAME)
    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password").fill(GOOD_PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(app.url + "/")
    if not confirm:
        return str((await _session(page, app))["id"])
    # A passkey is another way into the account: it is added once the address is proven
    # (before, whoever signed up with someone's address could keep a way in).
    [mail] = app.outbox.to(EMAIL)
    await page.goto(mail.url)
    await page.get_by_role("button", name="Confirm my address").click()
    await page.wait_for_url(app.url + "/")
    session = await _session(page, app)
    assert session["user"]["email"] == EMAIL
    return str(session["id"])


async def _sign_out(page: Page, app: App) -> None:
    await page.goto(app.url + "/auth/signout")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(app.url + "/")
    assert await _session(page, app) is None


def _sign_in_url(app: App, callback_url: str) -> str:
    return f"{app.url}/auth/signin?callbackUrl={quote(callback_url, safe='')}"


async def _sign_in_with_password(page: Page, app: App, callback_url: str) -> None:
    await page.goto(_sign_in_url(app, callback_url))
    form = page.locator('form[data-provider="password"]')
    await form.get_by_label("Email").fill(EMAIL)
    await form.get_by_label("Password").fill(GOOD_PASSWORD)
    await form.get_by_role("button", name="Sign in").click()


async def _add_passkey(device: Device, app: App) -> str:
    """Add a passkey from the security page: its credential id, as the page lists it."""
    page = device.page
    await page.goto(app.url + "/auth/account/security")
    await expect(page.get_by_text("No passkeys yet.")).to_be_visible()
    await page.get_by_role("button", name="Add a passkey").click()
    listed = page.locator("li[data-passkey-id]")
    await expect(listed).to_have_count(1)
    await expect(page).to_have_url(app.url + "/auth/account/security")
    credential_id = await listed.get_attribute("data-passkey-id")
    assert credential_id
    return credential_id


async def _autofill_waiting(device: Device) -> None:
    """The sign-in page's autofill request, started while nobody touches the
    authenticator, is waiting; from now on the authenticator answers again."""
    await device.until(lambda calls: any(call[2] == "conditional" for call in calls))
    # Nothing reports the request reaching the authenticator, a hop after the call.
    await device.page.wait_for_timeout(100)
    await device.presence(True)


async def test_add_a_passkey_then_sign_in_with_it(device: Device, app: App) -> None:
    page = device.page
    user_id = await _sign_up(page, app)
    assert await device.credentials() == []

    credential_id = await _add_passkey(device, app)
    # The authenticator made a discoverable passkey for this site, the one the page
    # lists and the app stored for the user (both spell its id in standard base64).
    [held] = await device.credentials()
    assert held["rpId"] == "localhost"
    assert held["isResidentCredential"] is True
    assert held["credentialId"] == credential_id
    stored = await app.adapter.get_authenticator(credential_id)
    assert stored is not None
    assert stored.user_id == user_id
    assert (await _session(page, app))["id"] == user_id

    await _sign_out(page, app)
    device.forget()
    # The page offers the passkey in the email field's autofill too; the person presses
    # the button instead, which must take over from the autofill request.
    await device.presence(False)
    await page.goto(_sign_in_url(app, app.url + "/dashboard"))
    email = page.locator('form[data-provider="password"]').get_by_label("Email")
    await expect(email).to_have_attribute("autocomplete", "username webauthn")
    await _autofill_waiting(device)
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await page.wait_for_url(app.url + "/dashboard")
    session = await _session(page, app)
    assert (session["id"], session["user"]["email"]) == (user_id, EMAIL)
    assert device.calls == [
        ("/auth/signin", "get", "conditional", "AbortError"),
        ("/auth/signin", "get", "", "resolved"),
    ]
    [used] = await device.credentials()
    assert used["signCount"] > held["signCount"]


async def test_a_passkey_as_the_second_factor_after_a_password(device: Device, app: App) -> None:
    page = device.page
    user_id = await _sign_up(page, app)
    await _add_passkey(device, app)
    # Two-factor sign-in is on once an authenticator app is enrolled (here through the
    # app's own code); the passkey then answers in place of a code.
    secret = mfa.new_totp_secret()
    assert app.config is not None
    codes = await mfa.enable_totp(app.config, user_id, secret, pyotp.TOTP(secret).at(app.clock.now))
    assert codes
    await _sign_out(page, app)

    # Nobody picks the passkey the sign-in page's autofill offers: the password is typed.
    await device.presence(False)
    await _sign_in_with_password(page, app, app.url + "/dashboard")
    await page.wait_for_url(app.url + "/auth/mfa")
    assert await _session(page, app) is None
    await expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    await expect(page.get_by_role("textbox", name="Code")).to_have_count(1)
    await device.presence(True)
    device.forget()
    await page.get_by_role("button", name="Use a passkey").click()
    await page.wait_for_url(app.url + "/dashboard")
    session = await _session(page, app)
    assert (session["id"], session["user"]["email"]) == (user_id, EMAIL)
    assert device.calls == [("/auth/mfa", "get", "", "resolved")]


def _totp_secret(shown: str) -> str:
    secret = shown.replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), shown
    return secret


def _another_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_an_authenticator_app_code_as_the_second_factor(device: Device, app: App) -> None:
    page = device.page
    user_id = await _sign_up(page, app)

    await page.goto(app.url + "/auth/mfa/totp")
    await expect(page.locator("figure.qr svg")).to_be_visible()
    secret = _totp_secret(await page.locator("code[data-totp-secret]").inner_text())
    uri = await page.locator("a[data-totp-uri]").get_attribute("href")
    assert uri is not None and uri.startswith("otpauth://totp/")
    assert pyotp.parse_uri(uri).secret == secret
    totp = pyotp.TOTP(secret)
    await page.get_by_role("textbox", name="Code").fill(totp.at(app.clock.now))
    await page.get_by_role("button", name="Turn on two-factor sign-in").click()
    await expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    codes = await page.locator("ol[data-recovery-codes] li code").all_inner_texts()
    assert len(codes) == 10
    assert all(re.fullmatch(r"[a-z0-9]{5}-[a-z0-9]{5}", code) for code in codes), codes
    await page.get_by_role("link", name="Continue").click()
    await expect(page.locator("[data-factor=totp]")).to_have_text("On. 10 recovery codes left.")

    await _sign_out(page, app)
    # The next code: the one that turned the factor on was spent.
    app.clock.advance(30)
    await _sign_in_with_password(page, app, app.url + "/dashboard")
    await page.wait_for_url(app.url + "/auth/mfa")
    assert await _session(page, app) is None
    code = page.get_by_role("textbox", name="Code")
    await expect(code).to_be_visible()
    await expect(page.get_by_role("button", name="Use a passkey")).to_have_count(0)

    await code.fill(_another_code(totp.at(app.clock.now)))
    await page.get_by_role("button", name="Verify").click()
    await page.wait_for_url(app.url + "/auth/mfa?error=InvalidCode")
    await expect(page.get_by_role("alert")).to_have_text(MESSAGES["InvalidCode"])
    assert await _session(page, app) is None

    await page.get_by_role("textbox", name="Code").fill(totp.at(app.clock.now))
    await page.get_by_role("button", name="Verify").click()
    await page.wait_for_url(app.url + "/dashboard")
    session = await _session(page, app)
    assert (session["id"], session["user"]["email"]) == (user_id, EMAIL)


async def _next_auth_sign_in(page: Page, options: dict[str, Any]) -> Any:
    """``signIn("passkey", options)`` of next-auth/webauthn, on the app's page."""
    return await page.evaluate(
        "(options) => window.nextAuthWebAuthn.signIn('passkey', options)", options
    )


async def test_next_auth_webauthn_registers_and_signs_in(device: Device, app: App) -> None:
    page = device.page
    user_id = await _sign_up(page, app)

    await page.goto(app.url + "/nextauth")
    registered = await _next_auth_sign_in(page, {"action": "register", "redirect": False})
    assert registered == {
        "error": None,
        "code": None,
        "status": 200,
        "ok": True,
        "url": app.url + "/nextauth",
    }
    [held] = await device.credentials()
    [stored] = await app.adapter.list_authenticators_by_user_id(user_id)
    assert stored.credential_id == held["credentialId"]

    await _sign_out(page, app)
    await page.goto(app.url + "/nextauth")
    signed_in = await _next_auth_sign_in(page, {"redirect": False})
    assert signed_in == {
        "error": None,
        "code": None,
        "status": 200,
        "ok": True,
        "url": app.url + "/nextauth",
    }
    session = await _session(page, app)
    assert (session["id"], session["user"]["email"]) == (user_id, EMAIL)


async def test_the_email_fields_autofill_signs_in_with_a_passkey(device: Device, app: App) -> None:
    page = device.page
    user_id = await _sign_up(page, app)
    await _add_passkey(device, app)
    await _sign_out(page, app)
    device.forget()

    # The virtual authenticator answers a conditional request as a person picking the
    # passkey from the email field's autofill list does: no button is pressed.
    await page.goto(_sign_in_url(app, app.url + "/dashboard"))
    await page.wait_for_url(app.url + "/dashboard")
    session = await _session(page, app)
    assert (session["id"], session["user"]["email"]) == (user_id, EMAIL)
    assert device.calls == [("/auth/signin", "get", "conditional", "resolved")]


async def test_an_autofill_that_finds_no_passkey_says_nothing(device: Device, app: App) -> None:
    # A browser ends the autofill request itself when this device holds no passkey for
    # the site (Chromium's virtual authenticator does so at once): nobody asked for it.
    page = device.page
    await page.goto(_sign_in_url(app, app.url + "/dashboard"))
    await device.until(lambda calls: bool(calls) and calls[-1][3] != "pending")
    assert device.calls == [("/auth/signin", "get", "conditional", "NotAllowedError")]
    await expect(page.locator("[data-passkey-error]")).to_be_hidden()
    await expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_enabled()


async def test_adding_a_passkey_to_a_stale_session_says_why_it_cannot(
    device: Device, app: App
) -> None:
    page = device.page
    await _sign_up(page, app)
    app.clock.advance(FRESH_AGE + 1)
    await page.goto(app.url + "/auth/account/security")
    async with page.expect_response("**/auth/webauthn-options/passkey?*") as answered:
        await page.get_by_role("button", name="Add a passkey").click()
    answer = await answered.value
    assert answer.status == 401
    refused = await answer.json()
    assert refused["error"] == "ReauthenticationRequired"
    await expect(page.locator("[data-passkey-error]")).to_have_text(refused["message"])
    assert await device.credentials() == []
    assert device.calls == []


async def test_adding_a_passkey_before_confirming_the_address_is_refused_first(
    device: Device, app: App
) -> None:
    page = device.page
    await _sign_up(page, app, confirm=False)
    await page.goto(app.url + "/auth/account/security")
    async with page.expect_response("**/auth/webauthn-options/passkey?*") as answered:
        await page.get_by_role("button", name="Add a passkey").click()
    refused = await (await answered.value).json()
    assert refused["error"] == "AccountNotConfirmed"
    await expect(page.locator("[data-passkey-error]")).to_have_text(refused["message"])
    # Refused before the ceremony: the device holds no passkey that could never sign in.
    assert device.calls == []
    assert await device.credentials() == []
