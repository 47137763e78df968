"""Where an identity a provider vouched for becomes a user: Auth.js's account rules.

- Without an adapter nothing is stored: the mapped profile itself is the session's user.
- OAuth / OpenID Connect: a known account signs its user in; a new account is linked to
  the user already signed in; a new account whose email belongs to another user is
  refused with ``OAuthAccountNotLinked`` unless the provider allows dangerous email
  linking; otherwise a user is created and the account linked to it. Unlike Auth.js, a
  known account's stored tokens are replaced by the new ones at every sign-in, so they
  never go stale.
- Email: the address's user, created or marked verified, since the link proved it.
- Credentials: the app vouched for its own user. With database sessions, which point at
  stored users, that user gets a record, found again at every sign-in through a
  ``credentials`` account keyed by the app's id.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from asgi_session import _second_factor as second_factors
from asgi_session.backends._adapter import AuthenticatorStore
from asgi_session.errors import ConfigurationError, DuplicateRecordError, SignInError

if TYPE_CHECKING:
    from asgi_session._context import RequestContext
    from asgi_session.backends._adapter import Adapter
    from asgi_session.models import User
    from asgi_session.providers._base import Identity

logger = logging.getLogger("asgi_session")


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """Who a sign-in ends with: the user, the account as linked, and whether it is new."""

    user: dict[str, Any]
    account: dict[str, Any]
    is_new_user: bool = False


async def find_user(ctx: RequestContext, identity: Identity) -> User | None:
    """The stored user ``identity`` already belongs to, shown to the ``sign_in`` callback."""
    adapter = ctx.config.adapter
    if adapter is None or identity.type == "credentials":
        return None
    if identity.type == "email":
        return await adapter.get_user_by_email(identity.account_id)
    return await adapter.get_user_by_account(
        provider=identity.provider, provider_account_id=identity.account_id
    )


async def resolve_user(ctx: RequestContext, identity: Identity, known: User | None) -> SignedInUser:
    """Apply the rules above; raises :class:`SignInError` when they refuse."""
    adapter = ctx.config.adapter
    account = identity.account()
    if identity.type == "credentials":
        if adapter is not None and ctx.config.strategy.name == "database":
            signed_in = await _credentials_user(ctx, adapter, identity)
        else:
            signed_in = SignedInUser(dict(identity.user), account)
        if identity.is_new_user and not signed_in.is_new_user:
            return dataclasses.replace(signed_in, is_new_user=True)
        return signed_in
    if adapter is None:
        # Nothing to store: the mapped profile is the session's user, as in Auth.js.
        return SignedInUser(dict(identity.user), account)
    if identity.type == "email":
        return await _email_user(ctx, adapter, identity, known)
    return await _linked_user(ctx, adapter, identity, known)


async def holds_unproven(ctx: RequestContext, user: User) -> bool:
    """Whether a provider let someone into ``user`` without proving its address: nothing
    more may be linked to it until they do."""
    for provider in ctx.config.providers.values():
        if await provider.holds_unproven(ctx, user):
            return True
    return False


async def _address_proven(ctx: RequestContext, user: User) -> None:
    """The owner of ``user``'s unverified address is signing in: anything set on the user
    by whoever typed that address first (a password, at a sign-up) goes, before they
    could share the account."""
    unproven = await holds_unproven(ctx, user)
    for provider in ctx.config.providers.values():
        await provider.address_proven(ctx, user)
    if unproven:
        # Second factors set while nobody had proven the address are whoever typed it
        # first's: the owner must not find themselves asked for someone else's codes.
        await second_factors.reset(ctx.config, user.id)


async def _signed_in_user(ctx: RequestContext, adapter: Adapter) -> tuple[User, bool] | None:
    """The stored user of the browser's current session, if any, and whether the
    session is fresh (signed in within ``fresh_age``)."""
    session = await ctx.load_session()
    if session is None or session.user.id is None:
        return None
    user = await adapter.get_user(session.user.id)
    if user is None:
        return None
    return user, session.is_fresh(ctx.config.fresh_age, ctx.now)


def _guards_fresh_sessions(ctx: RequestContext) -> bool:
    """Whether a fresh session unlocks anything here (second factors, a passkey or a
    password to change): then linking a new account needs one too. Elsewhere a session
    is as good as its age, and Auth.js's sessions (which carry no sign-in time) can
    link as they always could."""
    config = ctx.config
    return config.two_factor is not None or any(
        provider.reauthenticates for provider in config.providers.values()
    )


async def _linked_user(
    ctx: RequestContext, adapter: Adapter, identity: Identity, known: User | None
) -> SignedInUser:
    events = ctx.config.events
    signed_in = await _signed_in_user(ctx, adapter)
    current = None if signed_in is None else signed_in[0]
    if known is not None:
        if current is not None and current.id != known.id:
            # Linking an account that already belongs to someone else would hand it over.
            raise SignInError("OAuthAccountNotLinked")
        await adapter.update_account(
            provider=identity.provider,
            provider_account_id=identity.account_id,
            data=dict(identity.tokens),
        )
        return SignedInUser(known.to_dict(), {**identity.account(), "userId": known.id})
    is_new_user = False
    target = current
    if signed_in is not None and not signed_in[1] and _guards_fresh_sessions(ctx):
        # A new way into the account is a change of how it signs in: a stolen cookie
        # must not be able to add the thief's own, and sign in fresh with it.
        raise SignInError("ReauthenticationRequired")
    if current is not None and await holds_unproven(ctx, current):
        # Signed in through a password nobody has confirmed yet: linking an account now
        # would keep whoever signed up first in, after the owner proves the address.
        raise SignInError("AccountNotConfirmed")
    if target is None:
        email = identity.user.get("email")
        owner = await adapter.get_user_by_email(email) if isinstance(email, str) else None
        if owner is not None:
            if not identity.allow_email_linking:
                # The provider's email claim alone must not take over someone's user.
                raise SignInError("OAuthAccountNotLinked")
            if owner.email_verified is None:
                await _address_proven(ctx, owner)
            target = owner
        else:
            fields = {key: value for key, value in identity.user.items() if key != "id"}
            fields["email_verified"] = None
            try:
                target = await adapter.create_user(fields)
            except DuplicateRecordError as exc:
                # The email was taken by a sign-in running alongside this one.
                logger.warning("creating a user failed: %s", exc)
                raise SignInError("OAuthAccountNotLinked") from exc
            is_new_user = True
    linked = {**identity.account(), "userId": target.id}
    try:
        await adapter.link_account(
            {
                "user_id": target.id,
                "type": identity.type,
                "provider": identity.provider,
                "provider_account_id": identity.account_id,
                **identity.tokens,
            }
        )
    except DuplicateRecordError as exc:
        # Another sign-in linked this account first; a user made for this attempt alone
        # must not be left behind.
        logger.warning("linking %s account failed: %s", identity.provider, exc)
        if is_new_user:
            await adapter.delete_user(target.id)
        raise SignInError("OAuthAccountNotLinked") from exc
    if identity.authenticator is not None:
        # A passkey's account comes with its authenticator, stored once the link holds.
        await _store_authenticator(adapter, identity, target.id)
    if is_new_user:
        await events.emit("create_user", user=target.to_dict())
    await events.emit(
        "link_account", user=target.to_dict(), account=linked, profile=dict(identity.profile or {})
    )
    return SignedInUser(target.to_dict(), linked, is_new_user)


async def _store_authenticator(adapter: Adapter, identity: Identity, user_id: str) -> None:
    authenticator = identity.authenticator
    assert authenticator is not None
    if not isinstance(adapter, AuthenticatorStore):
        raise ConfigurationError(f"{type(adapter).__name__} cannot store passkeys")
    try:
        await adapter.create_authenticator(dataclasses.replace(authenticator, user_id=user_id))
    except DuplicateRecordError as exc:
        # Registered by a request alongside this one: the account goes with it.
        await adapter.unlink_account(
            provider=identity.provider, provider_account_id=identity.account_id
        )
        raise SignInError("WebAuthnVerificationError") from exc


async def _email_user(
    ctx: RequestContext, adapter: Adapter, identity: Identity, existing: User | None
) -> SignedInUser:
    """The address's user, created or marked verified now that the link proved it."""
    events = ctx.config.events
    email = identity.account_id
    account = identity.account()
    now = datetime.fromtimestamp(ctx.now, UTC)
    if existing is None:
        try:
            created = await adapter.create_user({"email": email, "email_verified": now})
        except DuplicateRecordError:
            # Another link for the same address won the race: that user is the one.
            existing = await adapter.get_user_by_email(email)
            if existing is None:
                raise
        else:
            await events.emit("create_user", user=created.to_dict())
            return SignedInUser(created.to_dict(), account, is_new_user=True)
    if existing.email_verified is None:
        await _address_proven(ctx, existing)
        updated = await adapter.update_user({"id": existing.id, "email_verified": now})
        if updated is not None:
            await events.emit("update_user", user=updated.to_dict())
            return SignedInUser(updated.to_dict(), account)
    return SignedInUser(existing.to_dict(), account)


async def _credentials_user(
    ctx: RequestContext, adapter: Adapter, identity: Identity
) -> SignedInUser:
    """The stored record of a user the app vouched for, created if new.

    The id ``authorize`` returned is the app's own; it is kept as a ``credentials``
    account, so the same person finds the same record at every sign-in, email or not.
    """
    user: Mapping[str, Any] = identity.user
    account = identity.account()
    app_id = None if user.get("id") is None else str(user["id"])
    email = user.get("email") if isinstance(user.get("email"), str) else None
    if app_id is None and email is None:
        raise ConfigurationError("authorize must return a user with an id or an email")
    found = None
    if app_id is not None:
        found = await adapter.get_user_by_account(
            provider=identity.provider, provider_account_id=app_id
        )
    linked = found is not None
    if found is None and app_id is not None:
        found = await adapter.get_user(app_id)  # the app may hand back the stored id itself
    if found is None and email is not None:
        found = await adapter.get_user_by_email(email)
        if found is not None and found.email_verified is None:
            # The app vouched for whoever owns the address: anything set on the user
            # without that proof goes first (a password from a sign-up nobody confirmed).
            await _address_proven(ctx, found)
    is_new_user = found is None
    if found is None:
        fields = {key: value for key, value in user.items() if key != "id"}
        try:
            found = await adapter.create_user(fields)
        except DuplicateRecordError:
            # A simultaneous first sign-in with the same email created the user first.
            found = await adapter.get_user_by_email(email) if email else None
            if found is None:
                raise
            is_new_user = False
        else:
            await ctx.config.events.emit("create_user", user=found.to_dict())
    if app_id is not None and app_id != found.id and not linked:
        # A simultaneous sign-in may have linked it already.
        with contextlib.suppress(DuplicateRecordError):
            await adapter.link_account(
                {
                    "user_id": found.id,
                    "type": "credentials",
                    "provider": identity.provider,
                    "provider_account_id": app_id,
                }
            )
    return SignedInUser(found.to_dict(), account, is_new_user)
