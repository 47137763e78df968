"""Exceptions raised by asgi-session."""

from __future__ import annotations


class AuthError(Exception):
    """Base class for every error asgi-session raises on purpose."""


class ConfigurationError(AuthError, ValueError):
    """The configuration cannot work; the message says how to fix it."""


class CookieTooLargeError(AuthError):
    """A cookie value is too large for browsers to store reliably.

    Raised when issuing a session whose token would need more cookie chunks than
    ``AuthConfig.max_cookie_chunks`` allows. Store less in the token (through the
    ``jwt`` callback) or use the database strategy.
    """


class DuplicateRecordError(AuthError, ValueError):
    """A record with the same unique key exists: an email, a linked account, a token."""


class SessionEndedError(AuthError):
    """``session.update()`` found the session gone (ended elsewhere, or by a callback)."""


class BackendUnavailableError(AuthError):
    """The session or user store cannot be reached; requests needing it get a 503."""
