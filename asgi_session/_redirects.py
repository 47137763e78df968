"""Where the browser may be sent after signing in or out: the app's own origin only."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from asgi_session._context import RequestContext


_MAX_URL_LENGTH = 2048


def _origin(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default_port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{parts.hostname.lower()}:{port or default_port}"


def _plain(url: str) -> bool:
    # A lone surrogate (JSON can carry one) cannot be written into a header at all.
    return len(url) <= _MAX_URL_LENGTH and all(
        " " < char != "\\" and not "\ud800" <= char <= "\udfff" for char in url
    )


def same_origin_url(url: object, base_url: str) -> str:
    """``url`` if it stays on ``base_url``'s origin, else ``base_url``.

    A path (``/dashboard``) is joined to the base URL. Anything that could leave the
    origin falls back: other hosts, other schemes, ``//host`` and ``/\\host`` (which
    browsers read as another host), control characters and spaces.
    """
    if not isinstance(url, str) or not url or not _plain(url):
        return base_url
    if url.startswith("/"):
        if url.startswith("//"):
            return base_url
        return base_url + url
    origin = _origin(url)
    if origin is not None and origin == _origin(base_url):
        return url
    return base_url


async def resolve_redirect(ctx: RequestContext, url: object) -> str:
    """The URL to redirect to, decided by the ``redirect`` callback (default: same origin)."""
    base_url = ctx.base_url()
    callbacks = ctx.config.callbacks
    if not callbacks.has("redirect"):
        return same_origin_url(url, base_url)
    # Auth.js always hands the callback a URL: the base URL when none was asked for.
    asked = url if isinstance(url, str) and url else base_url
    chosen = await callbacks.call("redirect", base_url, url=asked, base_url=base_url)
    if isinstance(chosen, str) and _origin(chosen) is not None and _plain(chosen):
        return chosen
    if isinstance(chosen, str) and chosen.startswith("/") and not chosen.startswith("//"):
        return same_origin_url(chosen, base_url)
    return base_url
