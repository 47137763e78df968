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
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
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

_logger = logging.getLogger("asgi_session")

#: The field of an adopted Better Auth user naming the Auth.js user it was.
ADOPTED_FROM = "authjs_user_id"


class MigratingAdapter:
    """An adapter writing to ``target`` (Better Auth's records) that adopts, on first
    use, users and accounts only ``source`` (Auth.js's records) has.

    An Auth.js user is adopted the first time a sign-in looks for them (by email or by
    a linked account) or their Auth.js session is seen: into a new Better Auth user when
    none has the address, or into the one that has it only when both proved the address
    (a verified email on each side). Otherwise the two are different people, or may be:
    an address typed into one app and never confirmed proves nothing, and merging would
    hand one person the other's account. The adopted user keeps the Auth.js id
    (``authjs_user_id``): the Better Auth user found by the address is theirs only if it
    carries that id (or none, with both addresses verified). The adapter contract has
    no lookup by that mark, so an address changed on the Better Auth side while an
    Auth.js session still lives is adopted again, as a new user.

    Accounts come along when looked up: the one a sign-in names, and those named by
    their user's id (a password, a TOTP secret), renamed to the new id, with whatever
    marks them (a password of a sign-up nobody confirmed stays unconfirmed), and only
    ever to the user adopted from their own Auth.js user. Everything else is
    ``target``'s alone: ``source`` is only ever read.
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
        """The Better Auth user for the Auth.js user ``old``, copied over if need be;
        ``None`` when a Better Auth user already has the address and the two cannot be
        shown to be one person."""
        if not old.email:
            return None
        found = await self.target.get_user_by_email(old.email)
        if found is None:
            fields = {
                "name": old.name,
                "email": old.email,
                "image": old.image,
                "email_verified": old.email_verified,
                ADOPTED_FROM: old.id,
            }
            try:
                return await self.target.create_user(fields)
            except DuplicateRecordError:  # adopted by a concurrent request meanwhile
                found = await self.target.get_user_by_email(old.email)
                if found is None:
                    return None
        marked = found.extra.get(ADOPTED_FROM)
        if marked == old.id:
            return found
        if marked is None and old.email_verified is not None and found.email_verified is not None:
            # Both proved the address: one person. Marked, so that from now on the match
            # is by id.
            return await self.target.update_user({"id": found.id, ADOPTED_FROM: old.id}) or found
        _logger.warning(
            "Auth.js user %s and Better Auth user %s share an email address that is not "
            "verified on both sides: they are kept apart (the Auth.js user signs in anew)",
            old.id,
            found.id,
        )
        return None

    async def _twin(self, new: User) -> User | None:
        """The Auth.js user ``new`` was adopted from, if any."""
        old_id = new.extra.get(ADOPTED_FROM)
        return await self.source.get_user(old_id) if isinstance(old_id, str) else None

    async def _copy_account(self, account: Account, old: User, new: User) -> Account | None:
        renamed = account.provider_account_id == old.id
        copied = dataclasses.replace(
            account,
            user_id=new.id,
            provider_account_id=new.id if renamed else account.provider_account_id,
            id=None,
        )
        try:
            return await self.target.link_account(copied)
        except DuplicateRecordError:  # copied by a concurrent request meanwhile
            return await self.target.get_account(
                provider=copied.provider, provider_account_id=copied.provider_account_id
            )

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
        if new is None or account is None or await self._copy_account(account, old, new) is None:
            return None
        return new

    async def get_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        found = await self.target.get_account(
            provider=provider, provider_account_id=provider_account_id
        )
        if found is not None:
            return found
        # An account named by its user's id (a password): the user's Auth.js twin's.
        new = await self.target.get_user(provider_account_id)
        old = await self._twin(new) if new is not None else None
        if new is None or old is None:
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


class _AuthjsSessions(DatabaseStrategy):
    """Auth.js's database sessions, read as they are and never extended: each ends
    within Auth.js's ``maxAge`` of its last extension, so there comes a day when none is
    left and the old records can go."""

    def _extends(self, ctx: RequestContext) -> bool:
        return False


class MigrationStrategy:
    """Better Auth sessions for new sign-ins; Auth.js sessions honoured until they end.

    ``better_auth`` is the :class:`~asgi_session.backends.better_auth.BetterAuthStrategy`
    new sessions get. ``authjs`` is where the Auth.js app kept its users and database
    sessions (``MongoDBAdapter(db)``, ``SQLAdapter(url)``: Auth.js's layout), or ``None``
    when its sessions were JWTs (``AuthConfig(secret=[better_auth_secret,
    authjs_secret])``: the first secret signs, every one is tried for reading).

    ``AuthConfig.adapter`` becomes a :class:`MigratingAdapter` (Better Auth's records,
    adopting Auth.js users on first use: see there for when two users are one). An
    Auth.js session is presented under its adopted user's Better Auth id; one whose user
    cannot be adopted is no session (its user signs in anew). Auth.js sessions are never
    extended, so each ends within Auth.js's ``max_age``. Signing out ends the request's
    session whichever it is; ending a user's sessions ends them in both (JWTs: through a
    revocation cut-off in Better Auth's records).
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
        self._target = target
        self._migrating = MigratingAdapter(target, authjs) if authjs is not None else None
        self.adapter: Adapter = self._migrating or target
        self.previous: DatabaseStrategy | JWTStrategy = (
            _AuthjsSessions(cache=False) if authjs is not None else JWTStrategy()
        )
        self._config: AuthConfig | None = None

    def configure(self, config: AuthConfig) -> None:
        if self._config is not None and self._config is not config:
            raise RuntimeError("a MigrationStrategy serves one AuthConfig; create one per config")
        self._config = config
        self.better_auth.configure(config)
        self.previous.configure(config)
        # Configured with the app's adapter (Better Auth's); it reads Auth.js's. JWTs have
        # none: their revocations are checked here, by their Better Auth user.
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

    async def aclose(self) -> None:
        """Close what the Better Auth strategy holds (its change stream)."""
        await self.better_auth.aclose()

    # -- whose session a request carries ------------------------------------------------

    def carries_session(self, ctx: RequestContext) -> bool:
        return self.better_auth.carries_session(ctx) or ctx.session_token() is not None

    def clear_session_cookie(self, ctx: RequestContext) -> None:
        self.better_auth.clear_session_cookie(ctx)
        if ctx.session_token() is not None:
            self.previous.clear_session_cookie(ctx)

    async def _better_auth_id(self, session: Session) -> str | None:
        """The Better Auth id of an Auth.js session's user: its adopted user's."""
        old_id = session.user.id
        if old_id is None:
            return None
        if self._migrating is not None:
            assert self.authjs is not None
            old = await self.authjs.get_user(old_id)
            new = await self._migrating.adopt(old) if old is not None else None
            return new.id if new is not None else None
        # A JWT: its user may never have been stored. Adopted on first sight into a new
        # Better Auth user; into an existing one only if adopted before (a JWT proves no
        # address, so an email match alone makes no twin).
        email = session.user.email
        if not isinstance(email, str) or not email:
            return None
        found = await self._target.get_user_by_email(email)
        if found is not None:
            return found.id if found.extra.get(ADOPTED_FROM) == old_id else None
        fields = {
            "name": session.user.name,
            "email": email,
            "image": session.user.image,
            ADOPTED_FROM: old_id,
        }
        try:
            return (await self._target.create_user(fields)).id
        except DuplicateRecordError:
            found = await self._target.get_user_by_email(email)
            return found.id if found and found.extra.get(ADOPTED_FROM) == old_id else None

    async def _previous_user_id(self, user_id: str) -> str | None:
        """The Auth.js id of a Better Auth user, if it was adopted from one."""
        user = await self._target.get_user(user_id)
        old_id = user.extra.get(ADOPTED_FROM) if user is not None else None
        return old_id if isinstance(old_id, str) else None

    async def _revoked(self, session: Session, user_id: str) -> bool:
        """Whether an Auth.js JWT was issued before its user's sessions were ended."""
        cut = await self._target.tokens_revoked_before(user_id)
        issued = session.claims.get("iat") if session.claims else None
        return cut is not None and (
            not isinstance(issued, int | float) or issued <= cut.timestamp()
        )

    def _carried(self, ctx: RequestContext, session: Session, user_id: str) -> Session:
        """An Auth.js session, presented under its user's Better Auth id."""
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

    # -- the strategy ------------------------------------------------------------------

    async def load(self, ctx: RequestContext) -> Session | None:
        if self.better_auth.carries_session(ctx):
            session = await self.better_auth.load(ctx)
            if session is not None:
                return session
        if ctx.session_token() is None:
            return None
        session = await self.previous.load(ctx)
        if session is None:
            return None
        user_id = await self._better_auth_id(session)
        if user_id is None or (self.authjs is None and await self._revoked(session, user_id)):
            # Not carried over (its user signs in anew), or ended: the Auth.js records
            # are left as they are.
            self.previous.clear_session_cookie(ctx)
            return None
        return self._carried(ctx, session, user_id)

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
        if self.better_auth.carries_session(ctx) or session.user.id is None:
            return await self.better_auth.update(ctx, session, data, trusted=trusted)
        updated = await self.previous.update(ctx, session, data, trusted=trusted)
        # Still the Better Auth user, whatever the Auth.js record says.
        return self._carried(ctx, updated, session.user.id) if updated is not None else None

    async def destroy(
        self, ctx: RequestContext, session: Session | None, *, clear_cookie: bool = True
    ) -> None:
        if self.better_auth.carries_session(ctx):
            await self.better_auth.destroy(ctx, session, clear_cookie=clear_cookie)
        if ctx.session_token() is not None:
            # An ended Auth.js session is deleted from Auth.js's records too: the
            # Auth.js app, if it still runs, must not take it either.
            await self.previous.destroy(ctx, session, clear_cookie=clear_cookie)

    async def list_user_sessions(self, user_id: str, *, now: float) -> list[SessionRecord]:
        records = await self.better_auth.list_user_sessions(user_id, now=now)
        old_id = await self._previous_user_id(user_id) if self.authjs is not None else None
        if old_id is not None:
            records += await self.previous.list_user_sessions(old_id, now=now)
            records.sort(key=lambda record: record.created_at or record.expires, reverse=True)
        return records

    async def end_user_session(self, user_id: str, session_id: str) -> bool:
        if await self.better_auth.end_user_session(user_id, session_id):
            return True
        old_id = await self._previous_user_id(user_id) if self.authjs is not None else None
        return old_id is not None and await self.previous.end_user_session(old_id, session_id)

    async def end_user_sessions(
        self, user_id: str, *, now: float, keep: tuple[RequestContext, Session] | None = None
    ) -> Session | None:
        keeps_authjs = keep is not None and not self.better_auth.carries_session(keep[0])
        kept = await self.better_auth.end_user_sessions(
            user_id, now=now, keep=None if keeps_authjs else keep
        )
        if self.authjs is None:
            # Auth.js JWTs are stored nowhere: a cut-off in Better Auth's records ends
            # those issued before now (``load`` checks it); none is kept.
            await self._target.revoke_tokens_issued_before(
                user_id, datetime.fromtimestamp(now, UTC)
            )
            return kept
        old_id = await self._previous_user_id(user_id)
        if old_id is not None:
            kept_old = await self.previous.end_user_sessions(
                old_id, now=now, keep=keep if keeps_authjs else None
            )
            if keeps_authjs and kept_old is not None:
                return self._carried(keep[0], kept_old, user_id)  # type: ignore[index]
        return kept
