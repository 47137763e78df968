"""Email and password accounts: sign-up, sign-in, verification, reset and change.

The provider vouches for someone who knows a password, like any provider: sign-in
(``POST /callback/<id>``), a followed verification link and a password reset end in an
:class:`~asgi_session.providers.Identity`, and the one sign-in flow does the rest. What
only passwords have is here too, below the HTTP layer: each step takes the
:class:`~asgi_session.providers.ProviderRequest` and returns a URL or an identity, or
raises :class:`~asgi_session.errors.SignInError`. The routes that call them are in
``asgi_session/_password_routes.py``.

Storage stays Auth.js's: the user is an Auth.js user, and the hash lives in an account
record (``type: "credentials"``, ``provider: "password"``, ``providerAccountId`` the
user's id) as its ``password`` field, which Auth.js's adapters store and hand back
untouched, so a Next.js app sharing the database is unaffected. Reset and verification
links are Auth.js verification tokens whose identifier names their purpose
(``password-reset:ada@example.com``): Auth.js's email sign-in asks for the bare address
and can never use one up.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import secrets
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlencode

from starlette.requests import Request

from asgi_session import _second_factor as second_factors
from asgi_session.backends._adapter import TokenSweeper
from asgi_session.errors import (
    ConfigurationError,
    CredentialsSignin,
    DuplicateRecordError,
    PasswordRefused,
    SignInError,
)
from asgi_session.providers._base import (
    Identity,
    Provider,
    ProviderContext,
    ProviderRequest,
    ProviderType,
)
from asgi_session.providers._email import (
    adapter_of,
    check_mailed_links,
    hash_token,
    normalize_email,
)

if TYPE_CHECKING:
    from asgi_session._config import AuthConfig
    from asgi_session.backends._adapter import Adapter
    from asgi_session.models import Account, User

if TYPE_CHECKING:
    from asgi_session.passwords import PasswordHasher, PasswordRules
else:
    try:
        from asgi_session.passwords import PasswordHasher, PasswordRules
    except ImportError:  # the passwords extra is not installed: Password() says so
        PasswordHasher = PasswordRules = None

logger = logging.getLogger("asgi_session")

#: ``send(to, subject, text, url, request)``: deliver an email; plain or ``async``.
SendEmail = Callable[[str, str, str, str, Request], Awaitable[None] | None]

#: The account field the hash is kept in (Better Auth names its field the same).
HASH_FIELD = "password"
#: Set on the account while its password was chosen by someone who has not yet proved
#: the address (a sign-up before its link is followed).
UNCONFIRMED_FIELD = "unconfirmed"
_RESET = "password-reset:"
_VERIFY = "verify-email:"
_MAX_NAME_LENGTH = 200
_MAX_TOKEN_LENGTH = 128

Purpose = Literal["reset", "verify"]


class Password(Provider):
    """Accounts with an email address and a password.

    Example::

        async def send_email(to, subject, text, url, request):
            await mailer.send(to=to, subject=subject, body=text)

        AuthConfig(adapter=MongoDBAdapter(db), providers=[Password(send=send_email)])

    - ``send`` delivers verification, reset and "you already have an account" emails.
    - ``require_verified_email``: sign-in waits for the verification link (and a
      sign-up then looks the same whether or not the address had an account); without
      it a new user is signed in at once.
    - ``rules``: :class:`~asgi_session.passwords.PasswordRules` (NIST's: 8 to 256
      characters, not the address, not a common password, plus the app's own rule).
    - ``hasher``: :class:`~asgi_session.passwords.PasswordHasher` (argon2id; verifies
      bcrypt, Better Auth's scrypt and older argon2 hashes, which are replaced at the
      next sign-in). Under a strategy sharing Better Auth's records, new hashes are
      Better Auth's scrypt instead, so its app verifies them too.
    - ``hash_field``: a user field holding a hash made elsewhere (a Mongoose app's
      ``password``): it signs its user in, and the hash moves to the account record.
    - ``reset_max_age`` / ``verify_max_age``: how long links work (1 hour / 24 hours).

    Needs an adapter (users and accounts are stored) and ``AuthConfig(url=...)`` or
    ``trust_host``, since the links it mails name the app.
    """

    type: ClassVar[ProviderType] = "credentials"
    posts_to_callback: ClassVar[bool] = True
    reauthenticates: ClassVar[bool] = True

    def __init__(
        self,
        *,
        send: SendEmail,
        id: str = "password",
        name: str = "Email and password",
        require_verified_email: bool = False,
        rules: PasswordRules | None = None,
        hasher: PasswordHasher | None = None,
        hash_field: str | None = None,
        reset_max_age: int = 60 * 60,
        verify_max_age: int = 24 * 60 * 60,
    ) -> None:
        super().__init__(id=id, name=name)
        if PasswordHasher is None:
            raise ConfigurationError(
                "Password accounts need the passwords extra: pip install 'asgi-session[passwords]'"
            )
        if not callable(send):
            raise ConfigurationError(
                "Password(send=...) needs a function (to, subject, text, url, request) that "
                "delivers verification and reset emails"
            )
        for option, value in (("reset_max_age", reset_max_age), ("verify_max_age", verify_max_age)):
            if not isinstance(value, int) or value <= 0:
                raise ConfigurationError(
                    f"Password({option}=...) must be a positive number of seconds"
                )
        if hash_field is not None and (not isinstance(hash_field, str) or not hash_field):
            raise ConfigurationError(
                "Password(hash_field=...) must name a user field, e.g. 'password'"
            )
        self.send = send
        self.require_verified_email = require_verified_email
        self.rules = rules if rules is not None else PasswordRules()
        self.hasher = hasher if hasher is not None else PasswordHasher()
        self._default_hasher = hasher is None
        self.hash_field = hash_field
        self.reset_max_age = reset_max_age
        self.verify_max_age = verify_max_age

    def check_config(self, config: AuthConfig) -> None:
        check_mailed_links(config, self.id, "users, their password hashes and single-use links")
        wanted = getattr(config.strategy, "password_hashes", None)
        if self._default_hasher and wanted is not None:
            # Another app verifies these hashes too (Better Auth's: scrypt).
            self.hasher = PasswordHasher(new_hashes=wanted)
        if not isinstance(config.adapter, TokenSweeper):
            raise ConfigurationError(
                f"the {self.id!r} password provider needs an adapter with "
                "delete_verification_tokens(identifier) (only the newest reset link may "
                f"work); {type(config.adapter).__name__} has none: add it, or use "
                "MongoDBAdapter or MemoryAdapter"
            )
        if getattr(config.strategy, "revocation_check_interval", 0) is None:
            # A reset or a change ends the user's other sessions; with JWTs that takes
            # the revocation checks, and the pages would say it happened when it did not.
            raise ConfigurationError(
                f"the {self.id!r} password provider ends sessions at a password reset, which "
                "JWTStrategy(revocation_check_interval=None) cannot: give it an interval "
                "(the default is 10 seconds)"
            )
        others = [p.id for p in config.providers.values() if isinstance(p, Password)]
        if len(others) > 1:
            raise ConfigurationError(
                f"only one Password provider may be configured (found {', '.join(others)}): "
                "the sign-up and reset routes belong to it"
            )

    @property
    def form_fields(self) -> Mapping[str, Mapping[str, str]]:
        return {
            "email": {"label": "Email", "type": "email", "required": "required"},
            "password": {"label": "Password", "type": "password", "required": "required"},
        }

    def form_links(self, context: ProviderContext) -> list[tuple[str, str]]:
        pages = context.config.pages
        return [
            ("Forgot password?", context.page_url(pages.forgot_password, "password/forgot")),
            ("Create an account", context.page_url(pages.sign_up, "signup")),
        ]

    def rate_limit_identifier(self, request: ProviderRequest) -> str | None:
        return normalize_email(request.field("email"))

    # -- the store ----------------------------------------------------------------

    async def _account(self, adapter: Adapter, user: User) -> Account | None:
        return await adapter.get_account(provider=self.id, provider_account_id=user.id)

    async def has_password(self, config: AuthConfig, user: User) -> bool:
        """Whether ``user`` can sign in with a password (one set, or an imported hash)."""
        adapter = config.adapter
        assert adapter is not None  # checked at start-up
        return self._stored_hash(user, await self._account(adapter, user)) is not None

    def _stored_hash(self, user: User, account: Account | None) -> str | None:
        """The hash that signs ``user`` in: the account's, else one imported on the user."""
        stored = None if account is None else account.extra.get(HASH_FIELD)
        if not stored and self.hash_field is not None:
            stored = user.extra.get(self.hash_field)
        return stored if isinstance(stored, str) and stored else None

    async def _store_hash(
        self,
        adapter: Adapter,
        user: User,
        account: Account | None,
        hashed: str,
        *,
        unconfirmed: bool = False,
    ) -> None:
        """Keep ``hashed`` as the user's password; ``unconfirmed`` when whoever chose it
        has not proved the address (else any earlier mark goes: a reset proved it)."""
        fields = {HASH_FIELD: hashed, UNCONFIRMED_FIELD: True if unconfirmed else None}
        if account is not None:
            await adapter.update_account(provider=self.id, provider_account_id=user.id, data=fields)
        else:
            try:
                await adapter.link_account(
                    {
                        "user_id": user.id,
                        "type": "credentials",
                        "provider": self.id,
                        "provider_account_id": user.id,
                        **{key: value for key, value in fields.items() if value is not None},
                    }
                )
            except DuplicateRecordError:
                # Linked by a request running alongside this one: this hash is the newer.
                await adapter.update_account(
                    provider=self.id, provider_account_id=user.id, data=fields
                )
        if self.hash_field is not None and user.extra.get(self.hash_field) is not None:
            # The imported hash has moved: left on the user, it would reach every
            # callback and event that is handed the stored user (database sessions'),
            # and stay a copy of the old password to crack after it was changed.
            await adapter.update_user({"id": user.id, self.hash_field: None})

    async def _still_verified(
        self, adapter: Adapter, user: User, password: str, checked: str | None
    ) -> Account | None:
        """The account as it is now, if ``password`` still opens it: the hash checked
        may have been replaced meanwhile (a change, a reset, a drop, or only a rehash by
        a sign-in alongside, which the password still matches). Else ``CredentialsSignin``."""
        account = await self._account(adapter, user)
        current = self._stored_hash(user, account)
        if current == checked:
            return account
        if current is None or not (await self.hasher.verify_async(password, current)).ok:
            raise CredentialsSignin()
        return account

    def _public_user(self, user: User) -> dict[str, Any]:
        """The user as callbacks and the session see it: never a hash."""
        fields = user.to_dict()
        if self.hash_field is not None:
            fields.pop(self.hash_field, None)
        fields.pop(HASH_FIELD, None)
        return fields

    def _identity(self, request: ProviderRequest, user: User, email: str) -> Identity:
        return Identity(
            provider=self.id,
            type="credentials",
            account_id=user.id,
            user=self._public_user(user),
            # What the sign_in callback sees; the password itself never leaves here.
            credentials={"email": email},
            callback_url=request.field("callbackUrl") or request.query.get("callbackUrl"),
        )

    # -- sign-in: POST /callback/<id> ----------------------------------------------

    async def authenticate(self, request: ProviderRequest) -> Identity:
        """Check the email and password; wrong either way is ``CredentialsSignin``, and
        costs one hash verification either way (unknown addresses verify a dummy)."""
        email = normalize_email(request.field("email"))
        password = request.field("password") or ""
        if email is None or not password or self.rules.too_long(password):
            # No account can match; nothing to time: the answer is the form's own.
            raise CredentialsSignin()
        adapter = adapter_of(request)
        user = await adapter.get_user_by_email(email)
        if user is None:
            await self.hasher.verify_nothing(password)
            raise CredentialsSignin()
        account = await self._account(adapter, user)
        stored = self._stored_hash(user, account)
        verified = await self.hasher.verify_async(password, stored)
        if not verified.ok:
            raise CredentialsSignin()
        # Read again: while the hash was being checked, the password may have been
        # changed, reset or dropped (its address proven by its owner), and the sessions
        # it opened ended; a sign-in still under way must not open a new one.
        account = await self._still_verified(adapter, user, password, stored)
        if verified.rehashed is not None or account is None or HASH_FIELD not in account.extra:
            # Older parameters, bcrypt, or a hash imported on the user: from now on the
            # account holds a current one.
            new_hash = verified.rehashed or self._stored_hash(user, account)
            assert new_hash is not None
            await self._store_hash(
                adapter, user, account, new_hash, unconfirmed=_marked_unconfirmed(account)
            )
        if self.require_verified_email and user.email_verified is None:
            # The link again, and the answer a wrong password gets: a code of its own
            # would tell anyone who signs up with an address and then signs in with
            # that password whether the address had an account before.
            request.defer(self._link_job(request, "verify", email))
            raise CredentialsSignin()
        return self._identity(request, user, email)

    # -- POST /signup ----------------------------------------------------------------

    async def sign_up(self, request: ProviderRequest) -> Identity | str:
        """Create an account: the new user's identity (signed in at once), or the URL of
        "check your email" (``require_verified_email``, or the address had an account)."""
        email = normalize_email(request.field("email"))
        if email is None:
            raise SignInError("InvalidEmail")
        name = _clean_name(request.field("name"))
        password = request.field("password")
        problem = await self.rules.check(password, user={"email": email, "name": name})
        if problem is not None:
            raise PasswordRefused(problem.code, problem.message)
        assert password is not None  # a missing password is a problem above
        elsewhere = await request.may_sign_in(
            Identity(
                provider=self.id,
                type="credentials",
                account_id="",
                user={"email": email, "name": name},
                credentials={"email": email},
            )
        )
        if elsewhere is not None:
            return elsewhere
        # Hashed first, and everything that depends on whether the address is taken
        # done after the answer: the answer takes as long either way.
        hashed = await self.hasher.hash_async(password)
        check_email = request.context.page_url(
            request.config.pages.verify_request, "verify-request", provider=self.id, type="signup"
        )
        create = self._sign_up_job(request, email, name, hashed)
        if self.require_verified_email:
            request.defer(create)
            return check_email
        user = await create()
        if user is None:
            return check_email  # the address had an account: its owner was mailed
        return dataclasses.replace(self._identity(request, user, email), is_new_user=True)

    def _sign_up_job(
        self, request: ProviderRequest, email: str, name: str | None, hashed: str
    ) -> Callable[[], Awaitable[User | None]]:
        """Store the account and mail the verification link, or mail the address's
        owner if it has an account: the new user, or ``None``."""
        adapter = adapter_of(request)
        events = request.config.events
        verify = self._link_job(request, "verify", email)
        existing = self._existing_job(request, email)

        async def create() -> User | None:
            user = None
            if await adapter.get_user_by_email(email) is None:
                fields: dict[str, Any] = {"email": email, "email_verified": None}
                if name:
                    fields["name"] = name
                try:
                    user = await adapter.create_user(fields)
                except DuplicateRecordError:
                    user = None  # a sign-up alongside this one took the address first
            if user is None:
                await existing()
                return None
            await self._store_hash(adapter, user, None, hashed, unconfirmed=True)
            await events.emit("create_user", user=self._public_user(user))
            await verify()
            return user

        return create

    # -- POST /verify-email (the link's page posts it) -----------------------------------

    async def verify_email(self, request: ProviderRequest) -> Identity:
        """Use a verification link up: the address is verified, and its owner signed in
        (the link proves the inbox, as a magic link does)."""
        email, user = await self._use_link(request, "verify", request.form)
        adapter = adapter_of(request)
        # Every link of the address goes with the first one used: they were mailed on
        # each sign-in waiting for one, and each would sign in for a day.
        await _sweep(adapter, _VERIFY + email)
        if user.email_verified is not None:
            # Confirmed already: a link is not a way to sign in but once.
            raise SignInError("Verification", "the address is confirmed already", page="error")
        now = datetime.fromtimestamp(request.context.now, UTC)
        user = await adapter.update_user({"id": user.id, "email_verified": now}) or user
        if await self._account(adapter, user) is not None:
            await adapter.update_account(
                provider=self.id, provider_account_id=user.id, data={UNCONFIRMED_FIELD: None}
            )
        await request.config.events.emit("update_user", user=self._public_user(user))
        return self._identity(request, user, email)

    # -- POST /password/forgot ------------------------------------------------------------

    async def request_reset(self, request: ProviderRequest) -> str:
        """Mail a reset link if the address has a user; the same answer if it has not."""
        email = normalize_email(request.field("email"))
        if email is None:
            raise SignInError("InvalidEmail")
        adapter = adapter_of(request)
        mail = self._link_job(request, "reset", email)

        async def mail_if_known() -> None:
            if await adapter.get_user_by_email(email) is not None:
                await mail()

        # After the answer: looking the address up and mailing take their time only
        # when it has an account.
        request.defer(mail_if_known)
        return request.context.page_url(
            request.config.pages.verify_request, "verify-request", provider=self.id, type="reset"
        )

    # -- POST /password/reset -------------------------------------------------------------

    async def reset_password(self, request: ProviderRequest) -> Identity:
        """Set a new password from a reset link; the user's identity, to sign in after
        the caller ends their other sessions. The address is verified too."""
        password = request.field("password")
        email = normalize_email(request.field("email"))
        # The rules first: a refused password must not use the link up.
        problem = await self.rules.check(password, user={"email": email or ""})
        if problem is not None:
            raise PasswordRefused(problem.code, problem.message)
        assert password is not None
        email, user = await self._use_link(request, "reset", request.form)
        adapter = adapter_of(request)
        if await self._unconfirmed(request.context, user):
            # The owner, proving the address, takes over from whoever signed up with it:
            # second factors that one set must not stand between the owner and the account.
            await second_factors.reset(request.config, user.id)
        # Links asked for at the same moment as this one go too, and the address's
        # verification links (anyone who had the old password could have asked).
        await self._drop_links(adapter, email)
        hashed = await self.hasher.hash_async(password)
        await self._store_hash(adapter, user, await self._account(adapter, user), hashed)
        if user.email_verified is None:
            now = datetime.fromtimestamp(request.context.now, UTC)
            user = await adapter.update_user({"id": user.id, "email_verified": now}) or user
        await request.config.events.emit("update_user", user=self._public_user(user))
        return self._identity(request, user, email)

    # -- POST /password/change ------------------------------------------------------------

    async def change_password(self, request: ProviderRequest, user_id: str) -> None:
        """Replace the signed-in user's password, the current one required."""
        adapter = adapter_of(request)
        user = await adapter.get_user(user_id)
        current = request.field("currentPassword") or ""
        new = request.field("newPassword")
        if user is None:
            raise SignInError("SessionRequired")
        account = await self._account(adapter, user)
        stored = self._stored_hash(user, account)
        if stored is None:
            # Signed up with another provider: a reset link sets a first password.
            raise SignInError("NoPassword")
        if self.rules.too_long(current):
            raise CredentialsSignin()
        verified = await self.hasher.verify_async(current, stored)
        if not verified.ok:
            raise CredentialsSignin()
        account = await self._still_verified(adapter, user, current, stored)
        problem = await self.rules.check(new, user=self._public_user(user))
        if problem is not None:
            raise PasswordRefused(problem.code, problem.message)
        assert new is not None
        # Knowing the password proves nothing about the address: a mark stays.
        hashed = await self.hasher.hash_async(new)
        await self._store_hash(
            adapter, user, account, hashed, unconfirmed=_marked_unconfirmed(account)
        )
        if user.email is not None:
            await self._drop_links(adapter, user.email)

    # -- another sign-in proved the address -------------------------------------------

    async def _unconfirmed(self, context: ProviderContext, user: User) -> bool:
        adapter = context.config.adapter
        if adapter is None or user.email_verified is not None:
            return False
        return _marked_unconfirmed(await self._account(adapter, user))

    async def holds_unproven(self, context: ProviderContext, user: User) -> bool:
        return await self._unconfirmed(context, user)

    async def address_proven(self, context: ProviderContext, user: User) -> None:
        """A password chosen at a sign-up whose link was never followed was chosen by
        whoever typed the address: now that its owner has proved it another way, the
        password and the sessions it opened go, or whoever signed up first would share
        the account. (Imported and reset passwords carry no such mark and stay.)"""
        adapter = context.config.adapter
        if adapter is None or not await self._unconfirmed(context, user):
            return
        await adapter.unlink_account(provider=self.id, provider_account_id=user.id)
        await context.config.strategy.end_user_sessions(user.id, now=context.now)
        if user.email is not None:
            await self._drop_links(adapter, user.email)
        logger.info("dropped the unconfirmed password of a user whose address was proven")

    # -- links ----------------------------------------------------------------------------

    def _link_job(
        self, request: ProviderRequest, purpose: Purpose, email: str
    ) -> Callable[[], Awaitable[None]]:
        """A job storing a new single-use token for ``email`` and mailing its link (built
        now: the request is gone when the job runs). A new reset link replaces every
        earlier one: only the newest works."""
        adapter = adapter_of(request)
        ctx = request.context
        identifier = (_RESET if purpose == "reset" else _VERIFY) + email
        token = secrets.token_urlsafe(32)
        max_age = self.reset_max_age if purpose == "reset" else self.verify_max_age
        record = {
            "identifier": identifier,
            "token": hash_token(token, request.config.secrets[0]),
            "expires": datetime.fromtimestamp(ctx.now, UTC) + timedelta(seconds=max_age),
        }
        query = urlencode({"token": token, "email": email})
        if purpose == "reset":
            url = f"{ctx.page_url(request.config.pages.reset_password, 'password/reset')}"
            url += ("&" if "?" in url else "?") + query
            subject = "Reset your password"
            text = (
                f"Choose a new password by opening this link within {max_age // 60} "
                f"minutes:\n\n{url}\n\nIf you did not ask for this, ignore this email: "
                "your password has not changed."
            )
        else:
            url = f"{ctx.auth_url('verify-email')}?{query}"
            subject = "Confirm your email address"
            text = (
                f"Confirm your email address by opening this link:\n\n{url}\n\n"
                "If you did not create an account, ignore this email."
            )
        deliver = self._delivery(request, email, subject, text, url)

        async def job() -> None:
            if purpose == "reset":
                await _sweep(adapter, identifier)
            await adapter.create_verification_token(record)
            await deliver()

        return job

    def _existing_job(self, request: ProviderRequest, email: str) -> Callable[[], Awaitable[None]]:
        """A job telling an address's owner that someone tried to sign up with it
        (perhaps they forgot they had an account)."""
        ctx = request.context
        url = ctx.page_url(request.config.pages.sign_in, "signin")
        forgot = ctx.page_url(request.config.pages.forgot_password, "password/forgot")
        text = (
            "Someone, perhaps you, tried to create an account with this email address, "
            f"which already has one. Sign in here:\n\n{url}\n\nForgot your password? Reset "
            f"it here:\n\n{forgot}\n\nIf it was not you, you can ignore this email."
        )
        return self._delivery(request, email, "You already have an account", text, url)

    def _delivery(
        self, request: ProviderRequest, to: str, subject: str, text: str, url: str
    ) -> Callable[[], Awaitable[None]]:
        starlette_request = request.request

        async def deliver() -> None:
            try:
                sent = self.send(to, subject, text, url, starlette_request)
                if inspect.isawaitable(sent):
                    await sent
            except Exception as exc:
                # A warning: anyone can give an address the mailer refuses. The answer
                # is the same, so it tells nobody whether the address has an account.
                logger.warning("the %s provider could not send an email: %r", self.id, exc)

        return deliver

    @staticmethod
    async def _drop_links(adapter: Adapter, email: str) -> None:
        for prefix in (_RESET, _VERIFY):
            await _sweep(adapter, prefix + email)

    async def _use_link(
        self, request: ProviderRequest, purpose: Purpose, fields: Mapping[str, Any]
    ) -> tuple[str, User]:
        """Use up the token a link carried: its address and that address's user now."""
        email = normalize_email(fields.get("email"))
        token = fields.get("token")
        invalid = "InvalidResetLink" if purpose == "reset" else "Verification"
        page: Literal["signin", "error"] = "signin" if purpose == "reset" else "error"
        if email is None or not isinstance(token, str) or not token:
            raise SignInError(invalid, "the link is incomplete", page=page)
        if len(token) > _MAX_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
            raise SignInError(invalid, "the link is not one of ours", page=page)
        adapter = adapter_of(request)
        identifier = (_RESET if purpose == "reset" else _VERIFY) + email
        used = None
        for secret in request.config.secrets:  # links mailed before a secret rotation work
            used = await adapter.use_verification_token(
                identifier=identifier, token=hash_token(token, secret)
            )
            if used is not None:
                break
        if used is None or used.expires.timestamp() <= request.context.now:
            raise SignInError(invalid, "the link is used up or expired", page=page)
        # Bound to the address: a user whose address changed since has no such link.
        user = await adapter.get_user_by_email(email)
        if user is None:
            raise SignInError(invalid, "the address has no account now", page=page)
        return email, user


def _marked_unconfirmed(account: Account | None) -> bool:
    return account is not None and account.extra.get(UNCONFIRMED_FIELD) is True


async def _sweep(adapter: Adapter, identifier: str) -> None:
    """Drop every pending link of ``identifier`` (the adapter can: checked at start-up)."""
    assert isinstance(adapter, TokenSweeper)
    await adapter.delete_verification_tokens(identifier)


def _clean_name(value: str | None) -> str | None:
    """A display name: trimmed, NFKC, without control characters, at most 200 long."""
    if not value:
        return None
    # Cut before normalising: NFKC may grow a string 18-fold, and costs its length.
    name = unicodedata.normalize("NFKC", value[: 4 * _MAX_NAME_LENGTH]).strip()
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C")
    return name[:_MAX_NAME_LENGTH] or None
