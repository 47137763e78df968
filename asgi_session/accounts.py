"""Where a provider's profile is mapped to a user: Auth.js's sign-in and linking rules.

Once a provider has vouched for an account (``provider`` + ``providerAccountId``):

- the app's ``sign_in`` callback may refuse (``AccessDenied``) or send the browser
  elsewhere instead of signing in;
- without an adapter, the mapped profile itself becomes the session's user;
- with one, a known account signs its user in; a new account is linked to the user
  already signed in; a new account whose email belongs to another user is refused
  with ``OAuthAccountNotLinked`` unless the provider allows dangerous email linking;
  otherwise a user is created and the account linked to it.

Unlike Auth.js, a known account's stored tokens are replaced by the new ones on every
sign-in, so they never go stale.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from asgi_session.backends.base import Adapter
from asgi_session.context import RequestContext
from asgi_session.errors import DuplicateRecordError
from asgi_session.models import User
from asgi_session.signin import SignInError, check_sign_in, start_session

logger = logging.getLogger("asgi_session")

#: The account fields that name it; everything else on an account is token data.
_IDENTITY = ("provider", "type", "providerAccountId", "userId")


class LinkingProvider(Protocol):
    """What the linking rules need to know about a provider."""

    @property
    def id(self) -> str: ...

    @property
    def allow_dangerous_email_account_linking(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """How a sign-in ended: a session for ``user``, or a redirect chosen by ``sign_in``."""

    user: dict[str, Any]
    account: dict[str, Any]
    is_new_user: bool = False
    #: Set when the ``sign_in`` callback returned a URL: no session was started.
    redirect: str | None = None


async def sign_in_with_account(
    ctx: RequestContext,
    *,
    provider: LinkingProvider,
    user: Mapping[str, Any],
    account: Mapping[str, Any],
    profile: Mapping[str, Any],
) -> SignInOutcome:
    """Apply the sign-in rules to an account a provider vouched for, and start a session.

    ``user`` is the mapped profile (``name``, ``email``, ``image``...), ``account`` holds
    ``provider``, ``type``, ``providerAccountId`` and the token fields. Raises
    :class:`~asgi_session.signin.SignInError` (``AccessDenied``,
    ``OAuthAccountNotLinked``) when the sign-in is refused; nothing is stored then.
    """
    adapter = ctx.config.backend.adapter
    known: User | None = None
    if adapter is not None:
        known = await adapter.get_user_by_account(
            provider=account["provider"], provider_account_id=account["providerAccountId"]
        )
    redirect = await check_sign_in(
        ctx, user=known.to_dict() if known else user, account=account, profile=profile
    )
    if redirect is not None:
        return SignInOutcome(user=dict(user), account=dict(account), redirect=redirect)
    if adapter is None:
        # Nothing to store: the mapped profile is the session's user, as in Auth.js.
        await start_session(ctx, user=user, account=account, profile=profile)
        return SignInOutcome(user=dict(user), account=dict(account))
    stored, linked, is_new_user = await _resolve_user(
        ctx, adapter, provider=provider, known=known, user=user, account=account, profile=profile
    )
    await start_session(
        ctx, user=stored.to_dict(), account=linked, profile=profile, is_new_user=is_new_user
    )
    return SignInOutcome(user=stored.to_dict(), account=linked, is_new_user=is_new_user)


async def _signed_in_user(ctx: RequestContext, adapter: Adapter) -> User | None:
    """The stored user of the browser's current session, if any."""
    session = await ctx.load_session()
    if session is None or session.user.id is None:
        return None
    return await adapter.get_user(session.user.id)


def _tokens(account: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in account.items() if key not in _IDENTITY}


async def _resolve_user(
    ctx: RequestContext,
    adapter: Adapter,
    *,
    provider: LinkingProvider,
    known: User | None,
    user: Mapping[str, Any],
    account: Mapping[str, Any],
    profile: Mapping[str, Any],
) -> tuple[User, dict[str, Any], bool]:
    """The stored user to sign in, the account as linked, and whether the user is new."""
    events = ctx.config.events
    current = await _signed_in_user(ctx, adapter)
    provider_account_id = account["providerAccountId"]
    if known is not None:
        if current is not None and current.id != known.id:
            # Linking an account that already belongs to someone else would hand it over.
            raise SignInError("OAuthAccountNotLinked")
        await adapter.update_account(
            provider=account["provider"],
            provider_account_id=provider_account_id,
            data=_tokens(account),
        )
        return known, {**account, "userId": known.id}, False
    is_new_user = False
    target = current
    if target is None:
        email = user.get("email")
        owner = await adapter.get_user_by_email(email) if isinstance(email, str) else None
        if owner is not None:
            if not provider.allow_dangerous_email_account_linking:
                # The provider's email claim alone must not take over someone's user.
                raise SignInError("OAuthAccountNotLinked")
            target = owner
        else:
            fields = {key: value for key, value in user.items() if key != "id"}
            fields["email_verified"] = None
            try:
                target = await adapter.create_user(fields)
            except DuplicateRecordError as exc:
                # The email was taken by a sign-in running alongside this one.
                logger.warning("creating a user failed: %s", exc)
                raise SignInError("OAuthAccountNotLinked") from exc
            is_new_user = True
    linked = {**account, "userId": target.id}
    try:
        await adapter.link_account(
            {
                "user_id": target.id,
                "type": account["type"],
                "provider": account["provider"],
                "provider_account_id": provider_account_id,
                **_tokens(account),
            }
        )
    except DuplicateRecordError as exc:
        # Another sign-in linked this account first; a user made for this attempt alone
        # must not be left behind.
        logger.warning("linking %s account failed: %s", account["provider"], exc)
        if is_new_user:
            await adapter.delete_user(target.id)
        raise SignInError("OAuthAccountNotLinked") from exc
    if is_new_user:
        await events.emit("create_user", user=target.to_dict())
    await events.emit("link_account", user=target.to_dict(), account=linked, profile=dict(profile))
    return target, linked, is_new_user
