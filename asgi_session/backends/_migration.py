"""Moving from Auth.js to Better Auth without signing anyone out.

Two pieces, each with one job:

- :class:`MigratingAdapter` stores into Better Auth's records, and finds there first. A
  user (or a linked account) that only Auth.js's records have is copied into Better
  Auth's the first time a sign-in looks for it, matched by email: the Auth.js documents
  or rows stay as they were, and a user never ends up twice. Both sets live side by side
  in one database (Auth.js's ``users``/``accounts``/``sessions`` next to Better Auth's
  ``user``/``account``/``session``) or in two.
- :class:`MigrationStrategy` accepts both cookies: a browser with a Better Auth session
  is resolved by the :class:`~asgi_session.backends.better_auth.BetterAuthStrategy`; one
  with an Auth.js session keeps it until it expires, its user presented under the Better
  Auth user's id (so handlers see one id whichever cookie came); every new sign-in gets a
  Better Auth session and ends the Auth.js one. Signing out ends both.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from asgi_session._session import Session
from asgi_session.backends._adapter import Adapter
from asgi_session.backends._better_auth import BetterAuthStrategy
from asgi_session.backends._database import DatabaseStrategy
from asgi_session.backends._jwt import JWTStrategy
from asgi_session.errors import ConfigurationError, DuplicateRecordError
from asgi_session.models import Account, SessionRecord, User, VerificationToken

if TYPE_CHECKING:
    from asgi_session._config import AuthConfig
    from asgi_session._context import RequestContext
    from asgi_session.backends._adapter import (
        AccountInput,
        SessionInput,
        UserInput,
        VerificationTokenInput,
    )

__all__ = ["MigratingAdapter", "MigrationStrategy"]

#: Users whose Auth.js id has been matched to a Better Auth id, kept in memory.
_KNOWN_USERS = 10_000


class MigratingAdapter:
    """An adapter writing to ``target`` (Better Auth's records) that adopts, on first
    use, users and accounts only ``source`` (Auth.js's records) has.

    Adopted: a user looked up by email or by a linked account, with that account; an
    account looked up for a user whose Auth.js twin (same email) has it (a password, a
    TOTP secret: accounts named by their user's id are renamed to the new id). Everything
    else is ``target``'s alone: ``source`` is only ever read.
    """

    def __init__(self, target: Adapter, source: Adapter) -> None:
        for role, adapter in (("target", target), ("source", source)):
            if not isinstance(adapter, Adapter):
                raise ConfigurationError(f"MigratingAdapter({role}=...) must be an adapter")
        self.target = target
        self.source = source

    def __getattr__(self, name: str) -> Any:
        # Whatever else the target offers (passkeys, rate limit stores, token sweeping).
        return getattr(self.target, name)

    async def adopt(self, old: User) -> User | None:
        """The Better Auth user for the Auth.js user ``old``, copied over if need be."""
        if not old.email:
            return None
        found = await self.target.get_user_by_email(old.email)
        if found is not None:
            return found
        fields = {
            "name": old.name,
            "email": old.email,
            "image": old.image,
            "email_verified": old.email_verified,
        }
        try:
            return await self.target.create_user(fields)
        except DuplicateRecordError:  # adopted by a concurrent request meanwhile
            return await self.target.get_user_by_email(old.email)

    async def _copy_account(self, account: Account, old: User, new: User) -> Account:
        renamed = account.provider_account_id == old.id
        copied = dataclasses.replace(
            account,
            user_id=new.id,
            provider_account_id=new.id if renamed else account.provider_account_id,
            id=None,
        )
        try:
            return await self.target.link_account(copied)
        except DuplicateRecordError:
            existing = await self.target.get_account(
                provider=copied.provider, provider_account_id=copied.provider_account_id
            )
            assert existing is not None
            return existing

    # -- what finds users, with adoption --------------------------------------------------

    async def get_user_by_email(self, email: str) -> User | None:
        found = await self.target.get_user_by_email(email)
        if found is not None:
            return found
        old = await self.source.get_user_by_email(email)
        return await self.adopt(old) if old is not None else None

    async def get_user_by_account(self, *, provider: str, provider_account_id: str) -> User | None:
        found = await self.target.get_user_by_account(
            provider=provider, provider_account_id=provider_account_id
        )
        if found is not None:
            return found
        old = await self.source.get_user_by_account(
            provider=provider, provider_account_id=provider_account_id
        )
        if old is None:
            return None
        new = await self.adopt(old)
        account = await self.source.get_account(
            provider=provider, provider_account_id=provider_account_id
        )
        if new is not None and account is not None:
            await self._copy_account(account, old, new)
        return new

    async def get_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        found = await self.target.get_account(
            provider=provider, provider_account_id=provider_account_id
        )
        if found is not None:
            return found
        # An account named by its user's id (a password): the user's Auth.js twin's.
        new = await self.target.get_user(provider_account_id)
        if new is None or not new.email:
            return None
        old = await self.source.get_user_by_email(new.email)
        if old is None:
            return None
        account = await self.source.get_account(provider=provider, provider_account_id=old.id)
        return await self._copy_account(account, old, new) if account is not None else None

    # -- the rest is Better Auth's records' --------------------------------------------

    async def ensure_indexes(self) -> None:
        await self.target.ensure_indexes()

    async def create_user(self, user: UserInput) -> User:
        return await self.target.create_user(user)

    async def get_user(self, id: str) -> User | None:
        return await self.target.get_user(id)

    async def update_user(self, user: UserInput) -> User | None:
        return await self.target.update_user(user)

    async def delete_user(self, id: str) -> User | None:
        return await self.target.delete_user(id)

    async def link_account(self, account: AccountInput) -> Account:
        return await self.target.link_account(account)

    async def unlink_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        return await self.target.unlink_account(
            provider=provider, provider_account_id=provider_account_id
        )

    async def update_account(
        self, *, provider: str, provider_account_id: str, data: Mapping[str, Any]
    ) -> Account | None:
        if await self.get_account(provider=provider, provider_account_id=provider_account_id):
            return await self.target.update_account(
                provider=provider, provider_account_id=provider_account_id, data=data
            )
        return None

    async def create_session(self, session: SessionInput) -> SessionRecord:
        return await self.target.create_session(session)

    async def get_session_and_user(self, session_token: str) -> tuple[SessionRecord, User] | None:
        return await self.target.get_session_and_user(session_token)

    async def update_session(self, session: SessionInput) -> SessionRecord | None:
        return await self.target.update_session(session)

    async def delete_session(self, session_token: str) -> SessionRecord | None:
        return await self.target.delete_session(session_token)

    async def list_sessions(self, user_id: str) -> list[SessionRecord]:
        return await self.target.list_sessions(user_id)

    async def delete_sessions(self, user_id: str, *, except_token: str | None = None) -> int:
        return await self.target.delete_sessions(user_id, except_token=except_token)

    async def create_verification_token(
        self, verification_token: VerificationTokenInput
    ) -> VerificationToken:
        return await self.target.create_verification_token(verification_token)

    async def use_verification_token(
        self, *, identifier: str, token: str
    ) -> VerificationToken | None:
        return await self.target.use_verification_token(identifier=identifier, token=token)

    async def revoke_tokens_issued_before(self, user_id: str, when: datetime) -> None:
        await self.target.revoke_tokens_issued_before(user_id, when)

    async def tokens_revoked_before(self, user_id: str) -> datetime | None:
        return await self.target.tokens_revoked_before(user_id)


class MigrationStrategy:
    """Better Auth sessions for new sign-ins; Auth.js sessions honoured until they end.

    ``better_auth`` is the :class:`~asgi_session.backends.better_auth.BetterAuthStrategy`
    new sessions get. ``authjs`` is where the Auth.js app kept its users and database
    sessions (``MongoDBAdapter(db)``, ``SQLAdapter(url)``: Auth.js's layout), or ``None``
    when its sessions were JWTs (``AuthConfig(secret=[better_auth_secret,
    authjs_secret])``: the first secret signs, every one is tried for reading).

    ``AuthConfig.adapter`` becomes a :class:`MigratingAdapter` (Better Auth's records,
    adopting Auth.js users on first use). Sign-outs end the request's session whichever
    it is; ending a user's sessions ends them in both.
    """

    name = "database"

    #: What new password hashes must be for the Better Auth app to verify them too.
    password_hashes = "scrypt"  # noqa: S105 (a scheme's name, not a password)

    def __init__(self, better_auth: BetterAuthStrategy, *, authjs: Adapter | None = None) -> None:

        if not isinstance(better_auth, BetterAuthStrategy):
            raise ConfigurationError(
                "MigrationStrategy(better_auth=...) must be a BetterAuthStrategy(database)"
            )
        if authjs is not None and not isinstance(authjs, Adapter):
            raise ConfigurationError(
                "MigrationStrategy(authjs=...) must be the adapter of Auth.js's records, "
                "e.g. MongoDBAdapter(db), or None for Auth.js JWT sessions"
            )
        target = better_auth.adapter
        assert target is not None
        self.better_auth = better_auth
        self.authjs: Adapter | None = authjs
        self.adapter: Adapter = MigratingAdapter(target, authjs) if authjs is not None else target
        # Auth.js's database sessions are read as they are, uncached: they only dwindle.
        self.previous: DatabaseStrategy | JWTStrategy = (
            DatabaseStrategy(cache=False) if authjs is not None else JWTStrategy()
        )
        self._config: AuthConfig | None = None
        self._known: OrderedDict[str, str] = OrderedDict()

    def configure(self, config: AuthConfig) -> None:
        if self._config is not None and self._config is not config:
            raise RuntimeError("a MigrationStrategy serves one AuthConfig; create one per config")
        self._config = config
        self.better_auth.configure(config)
        self.previous.configure(config)
        # Configured with the app's adapter (Better Auth's); it reads Auth.js's.
        self.previous.adapter = self.authjs

    @property
    def session_cookie_names(self) -> tuple[str, ...]:
        """Better Auth's session cookie and Auth.js's (on http and on https)."""
        authjs = tuple(spec.session_token.name for spec in self.config.cookie_names.values())
        return self.better_auth.session_cookie_names + authjs

    @property
    def config(self) -> AuthConfig:
        if self._config is None:
            raise RuntimeError(
                "MigrationStrategy is not configured; pass it to AuthConfig(strategy=...)"
            )
        return self._config

    # -- whose session a request carries ------------------------------------------------

    def _carries_better_auth(self, ctx: RequestContext) -> bool:
        return self.better_auth.carries_session(ctx)

    async def _better_auth_id(self, session: Session) -> str | None:
        """The Better Auth id of an Auth.js session's user, matched by email."""
        email = session.user.email
        old_id = session.user.id
        key = f"{old_id}\x00{email}"
        known = self._known.get(key)
        if known is not None:
            self._known.move_to_end(key)
            return known
        if not isinstance(email, str) or not email:
            return None
        user = await self.adapter.get_user_by_email(email)
        if user is None and self.authjs is None:
            # An Auth.js JWT's user was never stored: stored now, under Better Auth's layout.
            fields = {"name": session.user.name, "email": email, "image": session.user.image}
            try:
                user = await self.adapter.create_user(fields)
            except DuplicateRecordError:
                user = await self.adapter.get_user_by_email(email)
        if user is None:
            return None
        self._known[key] = user.id
        if len(self._known) > _KNOWN_USERS:
            self._known.popitem(last=False)
        return user.id

    async def _previous_user_id(self, user_id: str) -> str | None:
        """The Auth.js id of a Better Auth user, matched by email (database sessions)."""
        if self.authjs is None:
            return None
        user = await self.adapter.get_user(user_id)
        if user is None or not user.email:
            return None
        old = await self.authjs.get_user_by_email(user.email)
        return old.id if old is not None else None

    # -- the strategy ------------------------------------------------------------------

    async def load(self, ctx: RequestContext) -> Session | None:
        if self._carries_better_auth(ctx):
            return await self.better_auth.load(ctx)
        session = await self.previous.load(ctx)
        if session is None:
            return None
        user_id = await self._better_auth_id(session)
        if user_id is None:
            # No email to match by: the session cannot be carried over; it is not ended.
            return None
        data = session.to_dict()
        user = data.get("user")
        if isinstance(user, dict) and "id" in user:
            user["id"] = user_id
        return Session(
            data,
            expires=session.expires,
            user_id=user_id,
            claims=session.claims,
            record=session.record,
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
        if ctx.session_token() is not None:
            # Signing in again moves the browser to Better Auth: its Auth.js session ends.
            await self.previous.destroy(ctx, None)
        return await self.better_auth.create(
            ctx, user=user, account=account, profile=profile, is_new_user=is_new_user
        )

    async def update(
        self, ctx: RequestContext, session: Session, data: Mapping[str, Any], *, trusted: bool
    ) -> Session | None:
        if self._carries_better_auth(ctx):
            return await self.better_auth.update(ctx, session, data, trusted=trusted)
        return await self.previous.update(ctx, session, data, trusted=trusted)

    async def destroy(
        self, ctx: RequestContext, session: Session | None, *, clear_cookie: bool = True
    ) -> None:
        if self._carries_better_auth(ctx):
            await self.better_auth.destroy(ctx, session, clear_cookie=clear_cookie)
        if ctx.session_token() is not None:
            await self.previous.destroy(ctx, session, clear_cookie=clear_cookie)

    async def list_user_sessions(self, user_id: str, *, now: float) -> list[SessionRecord]:
        records = await self.better_auth.list_user_sessions(user_id, now=now)
        old_id = await self._previous_user_id(user_id)
        if old_id is not None:
            records += await self.previous.list_user_sessions(old_id, now=now)
            records.sort(key=lambda record: record.created_at or record.expires, reverse=True)
        return records

    async def end_user_session(self, user_id: str, session_id: str) -> bool:
        if await self.better_auth.end_user_session(user_id, session_id):
            return True
        old_id = await self._previous_user_id(user_id)
        return old_id is not None and await self.previous.end_user_session(old_id, session_id)

    async def end_user_sessions(
        self, user_id: str, *, now: float, keep: tuple[RequestContext, Session] | None = None
    ) -> Session | None:
        old_id = await self._previous_user_id(user_id)
        if keep is not None and not self._carries_better_auth(keep[0]):
            # The request's own session is an Auth.js one: every Better Auth one ends.
            await self.better_auth.end_user_sessions(user_id, now=now)
            if old_id is not None:
                return await self.previous.end_user_sessions(old_id, now=now, keep=keep)
            return None
        kept = await self.better_auth.end_user_sessions(user_id, now=now, keep=keep)
        if old_id is not None:
            await self.previous.end_user_sessions(old_id, now=now)
        # Auth.js JWTs (no ``authjs`` adapter) are stored nowhere: they end when they expire.
        return kept
