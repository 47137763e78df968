"""The database strategy: the cookie holds an opaque random token, the session a stored row.

Works over any :class:`~asgi_session.backends.Adapter`. Resolving a session is one
adapter call; its expiry is pushed back, in the store and in the cookie, at most once per
``update_age``, so a busy user costs one write a day rather than one per request.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from asgi_session._session import Session, isoformat
from asgi_session.backends._adapter import Adapter
from asgi_session.backends._strategy import BaseStrategy
from asgi_session.models import SessionRecord, User

if TYPE_CHECKING:
    from asgi_session._context import RequestContext

logger = logging.getLogger("asgi_session")

#: 32 random bytes, URL-safe base64: 256 bits a guesser must match.
_TOKEN_BYTES = 32
#: Longer cookie values cannot be ours; refuse them without a database call.
_MAX_TOKEN_LENGTH = 128


def new_session_token() -> str:
    """A fresh, unguessable session token."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


class DatabaseStrategy(BaseStrategy):
    """Sessions stored through an adapter (``strategy="database"``)."""

    name = "database"

    def __init__(self, adapter: Adapter | None = None) -> None:
        super().__init__(adapter)

    @property
    def _store(self) -> Adapter:
        adapter = self.adapter
        if adapter is None:
            raise RuntimeError("DatabaseStrategy has no adapter; pass AuthConfig(adapter=...)")
        return adapter

    def _now(self, ctx: RequestContext) -> datetime:
        return datetime.fromtimestamp(ctx.now, UTC)

    async def load(self, ctx: RequestContext) -> Session | None:
        token = ctx.session_token_or_clear()
        if token is None:
            return None
        if len(token) > _MAX_TOKEN_LENGTH:
            ctx.clear_session_cookie()
            return None
        found = await self._store.get_session_and_user(token)
        now = self._now(ctx)
        if found is None:
            ctx.clear_session_cookie()
            return None
        record, user = found
        if record.expires <= now:
            await self._store.delete_session(token)
            ctx.clear_session_cookie()
            return None
        config = self.config
        due = record.expires - timedelta(seconds=config.max_age - config.update_age)
        if due <= now:
            expires = now + timedelta(seconds=config.max_age)
            updated = await self._store.update_session(
                {"session_token": token, "expires": expires, "last_seen_at": now}
            )
            if updated is None:  # ended by another request meanwhile
                ctx.clear_session_cookie()
                return None
            record = updated
            ctx.set_session_cookie(token, record.expires)
        return await self._session(ctx, record, user)

    async def _session(
        self,
        ctx: RequestContext,
        record: SessionRecord,
        user: User,
        *,
        trigger: str | None = None,
        new_session: Mapping[str, Any] | None = None,
    ) -> Session:
        fields = {"name": user.name, "email": user.email, "image": user.image}
        data: dict[str, Any] = {
            "user": {key: value for key, value in fields.items() if value is not None},
            "expires": isoformat(record.expires),
        }
        stored = record.extra.get("data")
        claims = dict(stored) if isinstance(stored, Mapping) else {}
        callbacks = self.config.callbacks
        if callbacks.has("session"):
            data = await callbacks.call(
                "session",
                data,
                session=data,
                user=user.to_dict(),
                token=claims,
                trigger=trigger,
                new_session=new_session,
            )
        return Session(
            data,
            expires=record.expires,
            user_id=user.id,
            claims=claims,
            record=record,
            updater=ctx,
        )

    async def create(
        self,
        ctx: RequestContext,
        *,
        user: Mapping[str, Any],
        account: Mapping[str, Any] | None = None,
        profile: Mapping[str, Any] | None = None,
        is_new_user: bool = False,
    ) -> Session:
        user_id = user.get("id")
        if user_id is None:
            raise ValueError("a database session needs a stored user with an id")
        stored_user = await self._store.get_user(str(user_id))
        if stored_user is None:
            raise ValueError(f"user {user_id!r} is not in the database")
        now = self._now(ctx)
        record = await self._store.create_session(
            {
                "session_token": new_session_token(),
                "user_id": stored_user.id,
                "expires": now + timedelta(seconds=self.config.max_age),
                "created_at": now,
                "last_seen_at": now,
                "user_agent": ctx.user_agent,
            }
        )
        ctx.set_session_cookie(record.session_token, record.expires)
        return await self._session(ctx, record, stored_user)

    async def update(
        self, ctx: RequestContext, session: Session, data: Mapping[str, Any], *, trusted: bool
    ) -> Session | None:
        if session.record is None:
            raise TypeError("not a database session")
        found = await self._store.get_session_and_user(session.record.session_token)
        if found is None:
            ctx.clear_session_cookie()
            return None
        record, user = found
        if trusted:
            # Merge into what is stored now, not what this request read: a concurrent
            # update's fields survive.
            current = record.extra.get("data")
            stored = dict(current) if isinstance(current, Mapping) else {}
            stored.update(data)
            updated = await self._store.update_session(
                {"session_token": record.session_token, "data": stored}
            )
            if updated is None:
                ctx.clear_session_cookie()
                return None
            record = updated
        return await self._session(ctx, record, user, trigger="update", new_session=data)

    async def destroy(
        self, ctx: RequestContext, session: Session | None, *, clear_cookie: bool = True
    ) -> None:
        token = ctx.session_token()
        if token and len(token) <= _MAX_TOKEN_LENGTH:
            await self._store.delete_session(token)
        if clear_cookie:
            ctx.clear_session_cookie()

    # -- a user's sessions -----------------------------------------------------

    async def list_user_sessions(self, user_id: str, *, now: float) -> list[SessionRecord]:
        moment = datetime.fromtimestamp(now, UTC)
        records = await self._store.list_sessions(user_id)
        return [record for record in records if record.expires > moment]

    async def end_user_session(self, user_id: str, session_id: str) -> bool:
        for record in await self._store.list_sessions(user_id):
            if record.id == session_id:
                return await self._store.delete_session(record.session_token) is not None
        return False

    async def end_user_sessions(
        self, user_id: str, *, now: float, keep: tuple[RequestContext, Session] | None = None
    ) -> Session | None:
        keep_token = None
        if keep is not None:
            keep_token = keep[1].record.session_token if keep[1].record is not None else None
        await self._store.delete_sessions(user_id, except_token=keep_token)
        return None
