"""Screenshots of the built-in pages, for the documentation.

Run it with::

    python scripts/screenshots.py docs/images      # or: make screenshots

It serves ``examples/app.py`` (JWT sessions, users in memory) with uvicorn on a free
port of the loopback interface, known as ``http://localhost:<port>`` (passkeys are bound
to host names, never to IP addresses), and drives Debian's Chromium (``chromium`` on the
``PATH``, or ``CHROMIUM_PATH``) through Playwright, headless, in a fixed viewport. Signed
in as the example's demo user, it sets up an authenticator app and adds a passkey, which
Chromium's WebAuthn virtual authenticator holds, then signs in again with both factors.
Every page is photographed at the viewport's size, so that the images line up in the
guides.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import secrets
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pyotp
import uvicorn
from playwright.async_api import Browser, Locator, Page, ViewportSize, async_playwright, expect

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "app.py"

#: The size of every screenshot, in CSS pixels (one device pixel each).
VIEWPORT: ViewportSize = {"width": 1000, "height": 720}
#: The launch flags of the test suite's Chromium: headless, in a container.
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: A passkey provider built into the device, whose user is always present and verified.
AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}
#: Every image the script writes, in the order it takes them.
IMAGES = (
    "signin.png",
    "signup.png",
    "two-factor.png",
    "account-security.png",
    "passkey.png",
    "two-factor-challenge.png",
)


@dataclass(frozen=True, slots=True)
class Shot:
    """One screenshot: where it was written, and what the page showed."""

    path: Path
    #: The path of the page's URL (``/auth/signin``).
    url_path: str
    #: The text of the heading of what is shown: the page's ``h1``, or the section's.
    heading: str


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("asgi_session_example_app", EXAMPLE)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {EXAMPLE.name}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def serve_example() -> Iterator[str]:
    """The example app served from a thread: yields its URL, ``http://localhost:<port>``."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    url = f"http://localhost:{listening.getsockname()[1]}"
    # A secret of this run only: the sessions and the authenticator app set up here go
    # with it.
    app = _load_example().create_app(secrets.token_urlsafe(32), url=url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the example app did not start serving {url}")
            time.sleep(0.02)
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(10)
        listening.close()


async def _shoot(page: Page, out_dir: Path, name: str, heading: Locator) -> Shot:
    await expect(heading).to_be_visible()
    # No caret blinking in a focused field, no focus ring on a button just pressed.
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    path = out_dir / name
    await page.screenshot(path=str(path), animations="disabled", caret="hide")
    url_path = page.url.split("//", 1)[-1].partition("/")[2].partition("?")[0]
    return Shot(path=path, url_path="/" + url_path, heading=(await heading.inner_text()).strip())


async def _sign_in_with_password(page: Page, url: str, email: str, password: str) -> None:
    await page.goto(url + "/auth/signin")
    form = page.locator('form[data-provider="password"]')
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill(password)
    await form.get_by_role("button", name="Sign in").click()


async def capture(browser: Browser, out_dir: Path) -> dict[str, Shot]:
    """Serve the example app, photograph its built-in pages into ``out_dir``: each
    image's :class:`Shot`, by file name (:data:`IMAGES`). ``out_dir`` exists."""
    example = _load_example()
    email, password = example.DEMO_EMAIL, example.DEMO_PASSWORD
    shots: dict[str, Shot] = {}
    with serve_example() as url:
        context = await browser.new_context(
            viewport=VIEWPORT, device_scale_factor=1, color_scheme="light", locale="en-US"
        )
        context.set_default_timeout(10_000)
        try:
            page = await context.new_page()
            cdp = await context.new_cdp_session(page)
            await cdp.send("WebAuthn.enable")
            added = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
            authenticator = {"authenticatorId": added["authenticatorId"]}
            h1 = page.locator("h1")

            await page.goto(url + "/auth/signin")
            await expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_visible()
            shots["signin.png"] = await _shoot(page, out_dir, "signin.png", h1)

            await page.goto(url + "/auth/signup")
            shots["signup.png"] = await _shoot(page, out_dir, "signup.png", h1)

            await _sign_in_with_password(page, url, email, password)
            await page.wait_for_url(url + "/")

            # An authenticator app: the QR code, then a code computed from its key.
            await page.goto(url + "/auth/account/security")
            await page.get_by_role("link", name="Set up an authenticator app").click()
            await expect(page.locator("figure.qr svg")).to_be_visible()
            shots["two-factor.png"] = await _shoot(page, out_dir, "two-factor.png", h1)
            key = await page.locator("code[data-totp-secret]").inner_text()
            totp = pyotp.TOTP(key.replace(" ", ""))
            await page.get_by_role("textbox", name="Code").fill(totp.now())
            await page.get_by_role("button", name="Turn on two-factor sign-in").click()
            await page.get_by_role("link", name="Continue").click()
            await expect(page.locator("[data-factor=totp]")).to_contain_text("On.")
            shots["account-security.png"] = await _shoot(page, out_dir, "account-security.png", h1)

            # A passkey, made by the virtual authenticator, then listed on the page.
            await page.get_by_role("button", name="Add a passkey").click()
            await expect(page.locator("li[data-passkey-id]")).to_have_count(1)
            passkeys = page.get_by_role("heading", name="Passkeys")
            await passkeys.scroll_into_view_if_needed()
            shots["passkey.png"] = await _shoot(page, out_dir, "passkey.png", passkeys)

            # Signed out, a password is not enough: the code, or the passkey, comes next.
            await page.goto(url + "/auth/signout")
            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url(url + "/")
            # Nobody picks the passkey the email field's autofill offers: the password is
            # typed (touched, the authenticator would answer the autofill at once).
            presence = "WebAuthn.setAutomaticPresenceSimulation"
            await cdp.send(presence, {**authenticator, "enabled": False})
            await _sign_in_with_password(page, url, email, password)
            await page.wait_for_url(url + "/auth/mfa")
            await cdp.send(presence, {**authenticator, "enabled": True})
            await expect(page.get_by_role("button", name="Use a passkey")).to_be_visible()
            shots["two-factor-challenge.png"] = await _shoot(
                page, out_dir, "two-factor-challenge.png", h1
            )
            await page.get_by_role("button", name="Use a passkey").click()
            await page.wait_for_url(url + "/")
            await cdp.detach()
        finally:
            await context.close()
    return shots


def chromium_executable() -> str:
    """Debian's Chromium, or the binary ``CHROMIUM_PATH`` names."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path:
        raise SystemExit("Chromium was not found: `apt-get install -y chromium`, or CHROMIUM_PATH")
    return path


async def run(out_dir: Path) -> dict[str, Shot]:
    """Launch Chromium and :func:`capture` the pages into ``out_dir``."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_executable(), args=list(CHROMIUM_ARGS)
        )
        try:
            return await capture(browser, out_dir)
        finally:
            await browser.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``screenshots.py OUT_DIR``: write the images, list them with their sizes."""
    parser = argparse.ArgumentParser(description="Screenshots of asgi-session's built-in pages.")
    parser.add_argument("out_dir", type=Path, help="where the PNG files go (docs/images)")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    shots = asyncio.run(run(args.out_dir))
    for name, shot in shots.items():
        size = shot.path.stat().st_size // 1024
        print(f"{name:26} {size:4} KB  {shot.url_path}  {shot.heading!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
