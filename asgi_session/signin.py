"""What happens once a provider has vouched for a user: checks, records, a new session."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from asgi_session.context import RequestContext
from asgi_session.errors import ConfigurationError, DuplicateRecordError
from asgi_session.models import as_mapping
from asgi_session.redirects import resolve_redirect
from asgi_session.session import Session

logger = logging.getLogger("asgi_session")


class SignInError(Exception):
    """Sign-in refused; ``code`` is the Auth.js error name shown to the user."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code


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


async def _stored_user(
    ctx: RequestContext, user: Mapping[str, Any], account: Mapping[str, Any] | None
) -> tuple[dict[str, Any], bool]:
    """The adapter's record for a user the app vouched for (credentials), created if new.

    The id ``authorize`` returned is the app's own; it is kept as a ``credentials``
    account, so the same person finds the same record at every sign-in, email or not.
    """
    adapter = ctx.config.backend.adapter
    assert adapter is not None
    provider = account.get("provider") if account else None
    app_id = None if user.get("id") is None else str(user["id"])
    email = user.get("email") if isinstance(user.get("email"), str) else None
    if app_id is None and email is None:
        raise ConfigurationError("authorize must return a user with an id or an email")
    found = None
    if provider and app_id is not None:
        found = await adapter.get_user_by_account(provider=provider, provider_account_id=app_id)
    linked = found is not None
    if found is None and app_id is not None:
        found = await adapter.get_user(app_id)  # the app may hand back the stored id itself
    if found is None and email is not None:
        found = await adapter.get_user_by_email(email)
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
    if provider and app_id is not None and app_id != found.id and not linked:
        # A simultaneous sign-in may have linked it already.
        with contextlib.suppress(DuplicateRecordError):
            await adapter.link_account(
                {
                    "user_id": found.id,
                    "type": "credentials",
                    "provider": provider,
                    "provider_account_id": app_id,
                }
            )
    return found.to_dict(), is_new_user


async def start_session(
    ctx: RequestContext,
    *,
    user: Mapping[str, Any],
    account: Mapping[str, Any] | None = None,
    profile: Mapping[str, Any] | None = None,
    is_new_user: bool = False,
    store_user: bool = False,
) -> Session:
    """End whatever session the browser had and start a new one for ``user``.

    ``store_user`` makes sure a user vouched for by the app itself (credentials) has a
    record when sessions live in the database, as database sessions point to users.
    """
    config = ctx.config
    backend = config.backend
    user = as_mapping(user)
    if store_user and backend.strategy == "database":
        user, is_new_user = await _stored_user(ctx, user, account)
    if ctx.session_token():
        # A new token every sign-in: a token planted before sign-in is worth nothing after.
        await backend.destroy(ctx, await ctx.load_session(), clear_cookie=False)
    session = await backend.create(
        ctx, user=user, account=account, profile=profile, is_new_user=is_new_user
    )
    ctx.set_session(session)
    await config.events.emit(
        "sign_in", user=dict(user), account=account, profile=profile, is_new_user=is_new_user
    )
    return session
