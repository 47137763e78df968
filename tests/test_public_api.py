"""The public surface, pinned: changing what users can import must be a deliberate edit here.

Public modules have plain names; every other module is ``_private`` and may change at any
time. Each public name says it comes from where users import it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
import typing

import pytest

import asgi_session

PUBLIC: dict[str, list[str]] = {
    "asgi_session": [
        "AuthConfig",
        "AuthError",
        "AuthMiddleware",
        "BackendUnavailableError",
        "Callbacks",
        "ConfigurationError",
        "CookieNames",
        "CookieSpec",
        "CookieTooLargeError",
        "CredentialsSignin",
        "DuplicateRecordError",
        "Events",
        "Pages",
        "RateLimit",
        "RateLimits",
        "Session",
        "SessionEndedError",
        "SessionUser",
        "SignInError",
        "TwoFactor",
        "get_session",
        "requires_session",
    ],
    "asgi_session.backends": [
        "Adapter",
        "AuthenticatorStore",
        "DatabaseStrategy",
        "JWTStrategy",
        "MemoryAdapter",
        "MemoryRateLimitStore",
        "MongoDBAdapter",
        "RateLimitStore",
        "SQLAdapter",
        "SessionStrategy",
        "TokenSweeper",
        "Window",
    ],
    "asgi_session.backends.better_auth": [
        "BetterAuthStrategy",
        "CookieCache",
        "MigratingAdapter",
        "MigrationStrategy",
    ],
    "asgi_session.backends.mongodb": [
        "DEFAULT_COLLECTIONS",
        "MongoDBAdapter",
        "MongoDBRateLimitStore",
    ],
    "asgi_session.backends.sql": [
        "SQLAdapter",
        "SQLRateLimitStore",
    ],
    "asgi_session.errors": [
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
    ],
    "asgi_session.fastapi": [
        "FreshSession",
        "OptionalSession",
        "RequiredSession",
        "current_session",
        "require_fresh_session",
        "require_session",
    ],
    "asgi_session.jwt": [
        "CLOCK_TOLERANCE",
        "DEFAULT_MAX_AGE",
        "MAX_TOKEN_LENGTH",
        "JWTCodec",
        "JWTDecodeError",
        "decode",
        "encode",
    ],
    "asgi_session.management": [
        "SessionInfo",
        "end_all_sessions",
        "end_other_sessions",
        "end_session",
        "list_sessions",
    ],
    "asgi_session.mfa": [
        "Enrolled",
        "TwoFactor",
        "delete_passkey",
        "disable_totp",
        "enable_totp",
        "list_passkeys",
        "new_totp_secret",
        "regenerate_recovery_codes",
        "rename_passkey",
        "reset_second_factors",
        "second_factors",
        "totp_uri",
    ],
    "asgi_session.models": [
        "Account",
        "Authenticator",
        "SessionRecord",
        "User",
        "VerificationToken",
    ],
    "asgi_session.passwords": [
        "PasswordHasher",
        "PasswordProblem",
        "PasswordRule",
        "PasswordRules",
        "Verified",
    ],
    "asgi_session.providers": [
        "OIDC",
        "Credentials",
        "Email",
        "GitHub",
        "Google",
        "Identity",
        "OAuth",
        "Passkey",
        "Password",
        "Provider",
        "ProviderContext",
        "ProviderRequest",
    ],
    "asgi_session.tokens": ["EXPIRY_MARGIN", "TokenRefreshError", "get_access_token"],
    # The adapter contract as a pytest class, for adapters of other people's.
    "asgi_session.testing": ["AdapterContract"],
}


def _all_modules() -> list[str]:
    found = ["asgi_session"]
    for info in pkgutil.walk_packages(asgi_session.__path__, "asgi_session."):
        found.append(info.name)
    return found


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_exported_names(module: str) -> None:
    imported = importlib.import_module(module)
    assert sorted(imported.__all__) == sorted(PUBLIC[module])
    for name in imported.__all__:
        assert getattr(imported, name) is not None


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_annotations_resolve(module: str) -> None:
    """Documentation tools and runtime checkers read the annotations of public names."""
    imported = importlib.import_module(module)
    for name in imported.__all__:
        value = getattr(imported, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            typing.get_type_hints(value)
            if inspect.isclass(value) and "__init__" in vars(value):
                typing.get_type_hints(value.__init__)


def test_every_other_module_is_private() -> None:
    public = set(PUBLIC) | {"asgi_session.__main__"}
    for name in _all_modules():
        if name not in public:
            assert name.rsplit(".", 1)[-1].startswith("_"), f"{name} is neither pinned nor private"


def test_every_error_is_an_auth_error() -> None:
    from asgi_session import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.AuthError), name
    # Callers treating a bad token as a bad value keep working.
    assert issubclass(errors.JWTDecodeError, ValueError)


def test_only_the_testing_module_needs_pytest() -> None:
    """An app installs asgi-session without pytest: every module but the adapter kit loads
    with pytest missing, and the kit says what it needs."""
    modules = [name for name in _all_modules() if name != "asgi_session.testing"]
    script = f"""
import importlib, sys
sys.modules["pytest"] = None  # as if it were not installed
for name in {modules!r}:
    importlib.import_module(name)
try:
    import asgi_session.testing
except ImportError as exc:
    print(exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert "pytest" in done.stdout
