"""``scripts/screenshots.py`` (``make screenshots``), which makes the guides' images of the
built-in pages: run into a temporary directory, every image is written, a PNG of the
viewport's size, of the page its name says."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType

from playwright.async_api import Browser

from tests.support.docs import ROOT

SCRIPT = ROOT / "scripts" / "screenshots.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: What each image must show: the page's path and the heading of what is in view.
EXPECTED = {
    "signin.png": ("/auth/signin", "Sign in"),
    "signup.png": ("/auth/signup", "Create an account"),
    "two-factor.png": ("/auth/mfa/totp", "Set up an authenticator app"),
    "account-security.png": ("/auth/account/security", "Sign-in and security"),
    "passkey.png": ("/auth/account/security", "Passkeys"),
    "two-factor-challenge.png": ("/auth/mfa", "Two-factor sign-in"),
}
#: The names the guides use.
REFERENCED = {"signin.png", "signup.png", "two-factor.png", "passkey.png", "account-security.png"}


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("asgi_session_docs_screenshots", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: its dataclasses look their module up while being made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_the_screenshots_script_photographs_every_built_in_page(
    browser: Browser, tmp_path: Path
) -> None:
    script = _load_script()
    assert set(script.IMAGES) == set(EXPECTED)
    shots = await script.capture(browser, tmp_path)

    assert set(shots) == set(EXPECTED)
    assert _names(tmp_path) == sorted(EXPECTED)
    viewport = (script.VIEWPORT["width"], script.VIEWPORT["height"])
    for name, (url_path, heading) in EXPECTED.items():
        shot = shots[name]
        assert shot.path == tmp_path / name
        assert _png_size(shot.path) == viewport, name
        assert (shot.url_path, shot.heading) == (url_path, heading), name
        # A page, not a blank image: a few kilobytes at least, and small enough to commit.
        assert 5_000 < shot.path.stat().st_size < 300_000, name


def test_the_guides_images_are_in_the_repository() -> None:
    images = ROOT / "docs" / "images"
    for name in sorted(REFERENCED):
        assert _png_size(images / name) == (1000, 720), name
