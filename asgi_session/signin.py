"""What happens once a provider has vouched for a user: checks, records, a new session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asgi_session.context import RequestContext
from asgi_session.errors import DuplicateRecordError
from asgi_session.models import as_mapping
from asgi_session.session import Session


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
    """Ask the ``sign_in`` callback; returns a URL it wants instead, raises if it says no."""
    allowed = await ctx.config.callbacks.call(
        "sign_in",
        True,
        user=dict(user),
        account=None if account is None else dict(account),
        profile=None if profile is None else dict(profile),
        email=None if email is None else dict(email),
        credentials=None if credentials is None else dict(credentials),
    )
    if allowed is False or allowed is None:
        raise SignInError("AccessDenied")
    return allowed if isinstance(allowed, str) else None


async def _stored_user(ctx: RequestContext, user: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The adapter's record for a user an app vouched for (credentials), created if new."""
    adapter = ctx.config.backend.adapter
    assert adapter is not None
    found = None
    if user.get("id") is not None:
        found = await adapter.get_user(str(user["id"]))
    if found is None and isinstance(user.get("email"), str):
        found = await adapter.get_user_by_email(user["email"])
    if found is not None:
        return found.to_dict(), False
    fields = {key: value for key, value in user.items() if key != "id"}
    try:
        created = await adapter.create_user(fields)
    except DuplicateRecordError:
        # A simultaneous first sign-in with the same email created the user first.
        found = await adapter.get_user_by_email(user["email"])
        if found is None:
            raise
        return found.to_dict(), False
    await ctx.config.events.emit("create_user", user=created.to_dict())
    return created.to_dict(), True


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
        user, is_new_user = await _stored_user(ctx, user)
    if ctx.session_token():
        # A new token every sign-in: a token planted before sign-in is worth nothing after.
        await backend.destroy(ctx, await ctx.load_session(), clear_cookie=False)
    session = await backend.create(
        ctx, user=user, account=account, profile=profile, is_new_user=is_new_user
    )
    ctx.forget_session(session)
    await config.events.emit(
        "sign_in", user=dict(user), account=account, profile=profile, is_new_user=is_new_user
    )
    return session
