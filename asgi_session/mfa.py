"""Second factors and passkeys from Python: what ``/auth/account/security`` does, for an
app's own pages, and what an administrator does for a user who lost their phone.

Turn them on with ``AuthConfig(two_factor=TwoFactor())`` (and the ``Passkey`` provider
for passkeys); then::

    factors = await second_factors(config, user_id)      # TOTP on? codes left? passkeys
    secret = new_totp_secret()                            # show totp_uri(...) as a QR code
    codes = await enable_totp(config, user_id, secret, code_the_user_typed)
    await reset_second_factors(config, user_id)           # admin: lost device

These act at once and check nothing about who asks: an app calling them from a handler
must have made sure the signed-in user is the one (``requires_session(fresh=300)``).
"""

from __future__ import annotations

from asgi_session import _second_factor as second_factor
from asgi_session import _totp as totp
from asgi_session._config import AuthConfig
from asgi_session._second_factor import Enrolled, TwoFactor
from asgi_session.backends._adapter import AuthenticatorStore
from asgi_session.errors import ConfigurationError
from asgi_session.models import Authenticator
from asgi_session.providers._passkey import Passkey

__all__ = [
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
]


def _two_factor(config: AuthConfig) -> None:
    if config.two_factor is None:
        raise ConfigurationError(
            "second factors are off: pass AuthConfig(two_factor=TwoFactor()) to use them"
        )


async def second_factors(config: AuthConfig, user_id: str) -> Enrolled:
    """What ``user_id`` has: TOTP, how many recovery codes are left, passkeys."""
    if config.two_factor is None:
        return Enrolled(False, 0, tuple(await list_passkeys(config, user_id)))
    return await second_factor.enrolled(config, user_id)


def new_totp_secret() -> str:
    """A new TOTP secret (base32) to enrol with :func:`enable_totp`."""
    return totp.new_secret()


def totp_uri(config: AuthConfig, secret: str, *, account: str, issuer: str | None = None) -> str:
    """The ``otpauth://`` URI authenticator apps read (show it as a QR code)."""
    host = (config.url or "").partition("://")[2]
    return totp.otpauth_uri(
        secret, account=account, issuer=issuer or second_factor.issuer_of(config, host)
    )


async def enable_totp(config: AuthConfig, user_id: str, secret: str, code: str) -> list[str] | None:
    """Enrol ``secret`` for ``user_id`` if ``code`` is its current code: the recovery
    codes to show the user, once; ``None`` if the code is wrong. (``/auth/mfa/totp``
    refuses accounts whose address nobody has proven; this function leaves that to the
    caller, and a factor set on such an account goes when the owner proves it.)

    Raises :class:`~asgi_session.errors.DuplicateRecordError` when TOTP is on already.
    """
    _two_factor(config)
    return await second_factor.enable_totp(config, user_id, secret, code, config.clock())


async def disable_totp(config: AuthConfig, user_id: str) -> bool:
    """Turn ``user_id``'s TOTP off, and its recovery codes with it."""
    _two_factor(config)
    return await second_factor.disable_totp(config, user_id)


async def regenerate_recovery_codes(config: AuthConfig, user_id: str) -> list[str]:
    """A new set of recovery codes; the old ones stop working."""
    _two_factor(config)
    return await second_factor.regenerate_recovery_codes(config, user_id, config.clock())


def _passkey_provider(config: AuthConfig) -> Passkey | None:
    return next((p for p in config.providers.values() if isinstance(p, Passkey)), None)


async def list_passkeys(config: AuthConfig, user_id: str) -> list[Authenticator]:
    """``user_id``'s passkeys, oldest first."""
    adapter = config.adapter
    if _passkey_provider(config) is None or not isinstance(adapter, AuthenticatorStore):
        return []
    return await adapter.list_authenticators_by_user_id(user_id)


async def _own_passkey(
    config: AuthConfig, user_id: str, credential_id: str
) -> Authenticator | None:
    adapter = config.adapter
    if not isinstance(adapter, AuthenticatorStore):
        return None
    found = await adapter.get_authenticator(credential_id)
    return found if found is not None and found.user_id == user_id else None


async def rename_passkey(config: AuthConfig, user_id: str, credential_id: str, name: str) -> bool:
    """Give one of ``user_id``'s passkeys a name; whether it is theirs."""
    passkey = await _own_passkey(config, user_id, credential_id)
    if passkey is None:
        return False
    adapter = config.adapter
    assert isinstance(adapter, AuthenticatorStore)
    cleaned = " ".join(name.split())[:64]
    await adapter.update_authenticator(credential_id, {"name": cleaned or None})
    return True


async def delete_passkey(config: AuthConfig, user_id: str, credential_id: str) -> bool:
    """Remove one of ``user_id``'s passkeys (and its account); whether it was theirs."""
    passkey = await _own_passkey(config, user_id, credential_id)
    if passkey is None or _passkey_provider(config) is None:
        return False
    await second_factor.remove_passkey(config, passkey)
    return True


async def reset_second_factors(config: AuthConfig, user_id: str, *, passkeys: bool = True) -> None:
    """An administrator's reset for a user who lost their phone: TOTP, the recovery
    codes and every passkey go (``passkeys=False`` keeps the passkeys), so the next
    sign-in needs the first factor alone. End the user's sessions too if the device was
    stolen (:func:`asgi_session.management.end_all_sessions`)."""
    if config.two_factor is not None:
        await second_factor.reset(config, user_id, passkeys=passkeys)
    elif passkeys:
        for passkey in await list_passkeys(config, user_id):
            await second_factor.remove_passkey(config, passkey)
