"""The one way every sign-in ends, whichever provider vouched.

:func:`complete_sign_in` takes the :class:`~asgi_session.providers.Identity` a provider
returned and does the rest, in Auth.js's order:

1. the app's ``sign_in`` callback may refuse (``AccessDenied``) or send the browser
   elsewhere instead of signing in;
2. the identity becomes a user (:mod:`asgi_session._accounts`: found, created or linked);
3. a user with a second factor (``AuthConfig(two_factor=...)``) is asked for it: no
   session yet, the browser goes to ``/auth/mfa`` with the sign-in sealed in a
   short-lived cookie, and :func:`finish_sign_in` takes it from there once the code is
   right (a passkey is both factors at once, and is not asked again);
4. whatever session the browser had ends and a new one starts, with a new token, which
   remembers when its user proved who they are (``auth_time``, for step-up);
5. the ``sign_in`` event is told;
6. the browser goes to the validated callback URL, or a new user to ``pages.new_user``
   (with that URL as ``callbackUrl``).

A new provider or a second factor goes into this flow, never beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from asgi_session import _accounts as accounts
from asgi_session import _second_factor as second_factor
from asgi_session._redirects import resolve_redirect
from asgi_session.errors import SignInError

if TYPE_CHECKING:
    from asgi_session._context import RequestContext
    from asgi_session._session import Session
    from asgi_session.models import User
    from asgi_session.providers._base import Identity

logger = logging.getLogger("asgi_session")


async def check_sign_in(
    ctx: RequestContext,
    *,
    user: Mapping[str, Any],
    account: Mapping[str, Any] | None,
    profile: Mapping[str, Any] | None = None,
    email: Mapping[str, Any] | None = None,
    credentials: Mapping[str, Any] | None = None,
) -> str | None:
    """Ask the ``sign_in`` callback: the (checked) URL it sends the browser to instead of
    signing in, ``None`` to go on; raises :class:`SignInError` if it says no.

    A callback that fails refuses the sign-in (``AccessDenied``), as in Auth.js.
    """
    try:
        allowed = await ctx.config.callbacks.call(
            "sign_in",
            True,
            user=dict(user),
            account=None if account is None else dict(account),
            profile=None if profile is None else dict(profile),
            email=None if email is None else dict(email),
            credentials=None if credentials is None else dict(credentials),
        )
    except Exception as exc:
        logger.exception("the sign_in callback failed")
        raise SignInError("AccessDenied") from exc
    if allowed is False or allowed is None:
        raise SignInError("AccessDenied")
    return await resolve_redirect(ctx, allowed) if isinstance(allowed, str) else None


async def ask_sign_in(
    ctx: RequestContext, identity: Identity, *, known: User | None, before: bool = False
) -> str | None:
    """:func:`check_sign_in` for an identity, with the arguments Auth.js gives it.

    ``known`` is the user the identity already belongs to; ``before`` says the provider
    asks ahead of its own step (an email sign-in, before the link is mailed).
    """
    return await check_sign_in(
        ctx,
        user=known.to_dict() if known is not None else identity.user,
        account=identity.account(),
        profile=identity.profile,
        email={"verificationRequest": before} if identity.type == "email" else None,
        credentials=identity.credentials,
    )


async def may_sign_in(ctx: RequestContext, identity: Identity) -> str | None:
    """Whether ``identity`` may go on signing in, asked before the provider's own step."""
    known = await accounts.find_user(ctx, identity)
    return await ask_sign_in(ctx, identity, known=known, before=True)


async def complete_sign_in(ctx: RequestContext, identity: Identity) -> str:
    """Sign in the person ``identity`` stands for; the URL to send the browser to.

    Raises :class:`SignInError` when the sign-in is refused; nothing is stored then.
    """
    known = await accounts.find_user(ctx, identity)
    elsewhere = await ask_sign_in(ctx, identity, known=known)
    if elsewhere is not None:
        # As in Auth.js: a URL from sign_in sends the browser there, not signed in.
        return elsewhere
    signed_in = await accounts.resolve_user(ctx, identity, known)
    target = await resolve_redirect(ctx, identity.callback_url or ctx.stored_callback_url())
    ctx.clear_callback_url()
    user_id = signed_in.user.get("id")
    if (
        ctx.config.two_factor is not None
        and identity.type != "webauthn"
        and user_id is not None
        and await second_factor.required(ctx.config, str(user_id))
    ):
        challenge = second_factor.new_challenge(
            ctx,
            user_id=str(user_id),
            account=signed_in.account,
            profile=identity.profile,
            is_new_user=signed_in.is_new_user,
            target=target,
        )
        return ask_second_factor(ctx, challenge)
    return await finish_sign_in(
        ctx,
        user=signed_in.user,
        account=signed_in.account,
        profile=identity.profile,
        is_new_user=signed_in.is_new_user,
        target=target,
    )


def ask_second_factor(ctx: RequestContext, challenge: second_factor.Challenge) -> str:
    """Hold the sign-in until its second factor: the challenge goes in its cookie (or,
    for a bearer client, to :attr:`RequestContext.challenge`); the URL of the page
    asking for the code."""
    sealed = second_factor.seal_challenge(ctx, challenge)
    ctx.challenge = sealed
    max_age = max(1, int(challenge.expires - ctx.now))
    ctx.set_cookie(ctx.names.two_factor, sealed, max_age=max_age)
    return ctx.auth_url("mfa")


async def finish_sign_in(
    ctx: RequestContext,
    *,
    user: Mapping[str, Any],
    account: Mapping[str, Any] | None,
    profile: Mapping[str, Any] | None,
    is_new_user: bool,
    target: str,
) -> str:
    """The end of every sign-in, once every factor it needs is proven: the new session,
    the ``sign_in`` event, and where the browser goes."""
    ctx.clear_cookie(ctx.names.two_factor)
    await start_session(ctx, user=user, account=account, profile=profile, is_new_user=is_new_user)
    new_user_page = ctx.config.pages.new_user
    if is_new_user and new_user_page:
        return ctx.page_url(new_user_page, "signin", callbackUrl=target)
    return target


async def start_session(
    ctx: RequestContext,
    *,
    user: Mapping[str, Any],
    account: Mapping[str, Any] | None = None,
    profile: Mapping[str, Any] | None = None,
    is_new_user: bool = False,
) -> Session:
    """End whatever session the browser had and start a new one for ``user``."""
    config = ctx.config
    strategy = config.strategy
    carries = getattr(strategy, "carries_session", None)  # strategies of an app's own may lack it
    if carries(ctx) if carries is not None else ctx.session_token():
        # A new token every sign-in: a token planted before sign-in is worth nothing after.
        await strategy.destroy(ctx, await ctx.load_session(), clear_cookie=False)
    session = await strategy.create(
        ctx, user=user, account=account, profile=profile, is_new_user=is_new_user
    )
    ctx.set_session(session)
    await config.events.emit(
        "sign_in", user=dict(user), account=account, profile=profile, is_new_user=is_new_user
    )
    return session
