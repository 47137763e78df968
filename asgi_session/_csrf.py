"""Double-submit CSRF tokens, in Auth.js's format.

The cookie holds ``token|sha256(token + secret)``: the hash proves the server issued
the token, and a form must echo the token itself, which a cross-site page cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence


def _digest(token: str, secret: str) -> str:
    return hashlib.sha256(f"{token}{secret}".encode()).hexdigest()


def issue(secret: str) -> tuple[str, str]:
    """A new ``(token, cookie_value)`` pair signed with ``secret``."""
    token = secrets.token_hex(32)
    return token, f"{token}|{_digest(token, secret)}"


def token_from_cookie(cookie_value: str | None, secrets_: Sequence[str]) -> str | None:
    """The token a CSRF cookie carries, or ``None`` if its hash matches no secret."""
    if not cookie_value or cookie_value.count("|") != 1:
        return None
    token, digest = cookie_value.split("|")
    if len(token) != 64 or len(digest) != 64:
        return None
    # Check every secret without stopping early, so timing does not tell which matched.
    valid = False
    given = digest.encode("utf-8", "replace")  # bytes: compare_digest refuses non-ASCII str
    for secret in secrets_:
        valid |= hmac.compare_digest(given, _digest(token, secret).encode())
    return token if valid else None


def verify(cookie_value: str | None, submitted: object, secrets_: Sequence[str]) -> bool:
    """Whether a submitted form token matches the token in a genuine CSRF cookie."""
    token = token_from_cookie(cookie_value, secrets_)
    if token is None or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(token.encode(), submitted.encode("utf-8", "replace"))
