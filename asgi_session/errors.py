"""Every exception asgi-session raises on purpose; all are :class:`AuthError` subclasses."""

from __future__ import annotations

from typing import Literal

__all__ = [
    "AuthError",
    "BackendUnavailableError",
    "ConfigurationError",
    "CookieTooLargeError",
    "CredentialsSignin",
    "DuplicateRecordError",
    "JWTDecodeError",
    "OAuthFlowError",
    "PasskeyRefused",
    "PasswordRefused",
    "SessionEndedError",
    "SignInError",
    "TokenRefreshError",
    "UnsupportedOperationError",
]


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


class UnsupportedOperationError(AuthError):
    """The session strategy in use cannot do this: JWTs cannot be listed or ended one by one.

    The ``/auth/sessions`` routes answer ``501`` with the message.
    """


class JWTDecodeError(AuthError, ValueError):
    """The token is malformed, tampered with, expired or made with another secret.

    Every decoding failure raises this, so callers can treat it as "no session".
    """


class SignInError(AuthError):
    """A sign-in was refused; the browser is sent to a page showing :attr:`error`.

    ``error`` is Auth.js's error type (``"AccessDenied"``, ``"OAuthAccountNotLinked"``,
    ...), shown as ``?error=...``; ``page`` is where it is shown: the sign-in page, or
    the error page for errors the user cannot fix by trying again.
    """

    #: Auth.js's ``?code=...`` detail, sent only for credentials sign-ins.
    code: str | None = None

    def __init__(
        self, error: str, message: str = "", *, page: Literal["signin", "error"] = "signin"
    ) -> None:
        super().__init__(message or error)
        self.error = error
        self.page: Literal["signin", "error"] = page


class CredentialsSignin(SignInError):
    """The credentials were wrong: ``?error=CredentialsSignin&code=<code>``, as in Auth.js v5.

    ``authorize`` returning ``None`` means this with ``code="credentials"``. To tell the
    sign-in page (or ``signIn()`` of ``next-auth/react``) why, raise it from ``authorize``
    with a code of your own::

        class InvalidLogin(CredentialsSignin):
            code = "invalid_login"

        async def authorize(credentials, request):
            ...
            raise InvalidLogin()          # or: raise CredentialsSignin(code="invalid_login")

    The code travels in the URL: keep it to short, non-secret words.
    """

    code = "credentials"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__("CredentialsSignin", message)
        if code is not None:
            self.code = code


class PasswordRefused(SignInError):
    """A new password breaks one of the rules (too short, too common, the app's own...).

    ``error`` is the rule's code (``"PasswordTooShort"``, ...); ``message`` is a sentence
    for the person choosing it, shown on the page the form came from.
    """

    def __init__(self, error: str, message: str) -> None:
        super().__init__(error, message)
        self.message = message


class PasskeyRefused(SignInError):
    """A passkey's answer did not verify, so nobody is signed in and nothing is registered.

    It was made for another challenge (an old or a used one), site or credential, its
    signature counter did not go up (a copied authenticator, or a replayed answer), it
    did not verify the user (no PIN, fingerprint or face), or it is not what a browser
    sends. ``error`` is Auth.js's ``"WebAuthnVerificationError"``; :attr:`reason` is a
    short sentence that is safe to show: it never repeats what the browser sent.
    """

    def __init__(self, reason: str) -> None:
        super().__init__("WebAuthnVerificationError", reason)
        self.reason = reason


class OAuthFlowError(AuthError):
    """A step of an OAuth sign-in or token refresh failed; ``error`` is shown on the page."""

    def __init__(self, message: str, error: str = "OAuthCallbackError") -> None:
        super().__init__(message)
        self.error = error


class TokenRefreshError(AuthError):
    """The access token has expired and cannot be refreshed; the user must sign in again.

    Raised when the account has no refresh token, or the provider refused the refresh
    or could not be reached.
    """
