"""HTTP answers the route modules share: built-in pages with their headers, 429s, 503s."""

from __future__ import annotations

import secrets

from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from asgi_session._pages import content_security_policy

#: On JSON answers that depend on the session: no cache may keep them.
NO_STORE = {"Cache-Control": "private, no-cache, no-store", "Expires": "0", "Pragma": "no-cache"}


def nonce() -> str:
    """A fresh CSP nonce for one page."""
    return secrets.token_urlsafe(16)


def page(html: str, nonce: str, status: int = 200) -> Response:
    """A built-in page, with the headers that keep it from being framed or injected into."""
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Content-Security-Policy": content_security_policy(nonce),
            "X-Frame-Options": "DENY",
        },
    )


def too_many(retry_after: int, **fields: str) -> Response:
    """429 for a JSON route, saying when to come back."""
    return JSONResponse(
        {"error": "RateLimited", **fields},
        status_code=429,
        headers={**NO_STORE, "Retry-After": str(retry_after)},
    )


def service_unavailable() -> Response:
    """The answer when the session store cannot be reached."""
    return PlainTextResponse(
        "Service Unavailable: the session store cannot be reached. Try again shortly.",
        status_code=503,
        headers={"Retry-After": "5", "Cache-Control": "no-store"},
    )
