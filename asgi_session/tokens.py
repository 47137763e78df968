"""A valid access token for a linked account, refreshed when it has expired.

Example::

    from asgi_session.tokens import get_access_token

    token = await get_access_token(config, provider="corp", provider_account_id=account_id)
    response = await http.get(api_url, headers={"Authorization": f"Bearer {token}"})

The account's stored tokens (kept up to date on every sign-in) are used while they are
valid. Past ``expires_at`` (less a small margin) the refresh token buys new ones, which
are stored. Concurrent callers in one process wait for a single refresh and share its
result, so a provider that rotates refresh tokens never sees the old one used twice.
"""

from __future__ import annotations

import asyncio

from asgi_session._config import AuthConfig
from asgi_session.errors import ConfigurationError, OAuthFlowError, TokenRefreshError
from asgi_session.models import Account
from asgi_session.providers._oauth import OAuth

__all__ = ["EXPIRY_MARGIN", "TokenRefreshError", "get_access_token"]

#: Seconds before ``expires_at`` from which a token counts as expired, so that it does
#: not expire on its way to the API.
EXPIRY_MARGIN = 60


class _AccountLock:
    """One account's refresh lock, and how many callers hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


_locks: dict[tuple[int, str, str], _AccountLock] = {}


def _fresh(account: Account, now: float, margin: int) -> bool:
    return account.expires_at is None or account.expires_at - margin > now


async def get_access_token(
    config: AuthConfig,
    *,
    provider: str,
    provider_account_id: str,
    margin: int = EXPIRY_MARGIN,
) -> str | None:
    """The account's access token, refreshed and stored first if it has expired.

    Returns ``None`` when no such account is linked (or it holds no access token).
    Raises :class:`TokenRefreshError` when the token has expired and cannot be
    refreshed, and :class:`~asgi_session.errors.ConfigurationError` when the config has
    no adapter or ``provider`` is not an OAuth provider.
    """
    adapter = config.adapter
    if adapter is None:
        raise ConfigurationError(
            "get_access_token reads stored accounts: configure an adapter that stores "
            "them, e.g. AuthConfig(adapter=MongoDBAdapter(database))"
        )
    oauth = config.provider(provider)
    if not isinstance(oauth, OAuth):
        raise ConfigurationError(f"{provider!r} is not an OAuth or OpenID Connect provider")
    account = await adapter.get_account(provider=provider, provider_account_id=provider_account_id)
    if account is None or not account.access_token:
        return None
    if _fresh(account, config.clock(), margin):
        return account.access_token
    key = (id(adapter), provider, provider_account_id)
    shared = _locks.get(key)
    if shared is None:
        shared = _locks[key] = _AccountLock()
    shared.users += 1
    try:
        async with shared.lock:
            # Whoever held the lock before may have refreshed already: look again.
            account = await adapter.get_account(
                provider=provider, provider_account_id=provider_account_id
            )
            if account is None or not account.access_token:
                return None
            now = config.clock()
            if _fresh(account, now, margin):
                return account.access_token
            if not account.refresh_token:
                raise TokenRefreshError(
                    f"the {provider} access token has expired and there is no refresh token"
                )
            try:
                tokens = await oauth.refresh(account.refresh_token, now=now)
            except OAuthFlowError as exc:
                raise TokenRefreshError(str(exc)) from exc
            updated = await adapter.update_account(
                provider=provider, provider_account_id=provider_account_id, data=tokens
            )
            if updated is None or not updated.access_token:
                return None
            return updated.access_token
    finally:
        # Dropped only when no caller holds or waits for it, so every caller of one
        # account always queues on the same lock.
        shared.users -= 1
        if shared.users == 0:
            del _locks[key]
