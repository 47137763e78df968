"""Sign-in by a single-use link sent to an email address ("magic links").

``POST /signin/<id>`` with an ``email`` field stores a hash of a random token and hands
the link to the app's ``send`` function; ``GET /callback/<id>?token=...&email=...`` uses
the token up (it works once, within ``max_age``) and signs the owner of the address in,
creating the user or marking the address verified.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from asgi_session.errors import ConfigurationError, DuplicateRecordError
from asgi_session.models import User
from asgi_session.providers.base import Provider, ProviderType
from asgi_session.redirects import resolve_redirect
from asgi_session.signin import SignInError, check_sign_in, start_session

if TYPE_CHECKING:
    from asgi_session.backends.base import Adapter
    from asgi_session.config import AuthConfig
    from asgi_session.routes import AuthRequest

logger = logging.getLogger("asgi_session")

#: ``send(identifier, url, request)``: deliver the sign-in link; plain or ``async``.
SendLink = Callable[[str, str, Request], Awaitable[None] | None]

_MAX_EMAIL_LENGTH = 254


def normalize_email(value: object) -> str | None:
    """The canonical form of an address (NFKC, trimmed, lower case), or ``None`` if invalid.

    Exactly one ``@`` with something on both sides, no spaces or control characters:
    anything else could name two different mailboxes to two different systems.
    """
    if not isinstance(value, str):
        return None
    email = unicodedata.normalize("NFKC", value).strip().lower()
    if len(email) > _MAX_EMAIL_LENGTH or email.count("@") != 1:
        return None
    local, domain = email.split("@")
    if not local or not domain or domain.startswith(".") or domain.endswith("."):
        return None
    if any(char.isspace() or unicodedata.category(char)[0] == "C" for char in email):
        return None
    if any(char in email for char in ',;<>()[]\\"'):
        return None
    return email


def hash_token(token: str, secret: str) -> str:
    """How a token is stored: ``sha256(token + secret)``, as Auth.js stores it."""
    return hashlib.sha256(f"{token}{secret}".encode()).hexdigest()


class Email(Provider):
    """Passwordless sign-in by email.

    Example::

        async def send_magic_link(identifier, url, request):
            await mailer.send(to=identifier, subject="Sign in", body=f"Sign in: {url}")

        Email(send=send_magic_link)

    Needs a backend that stores verification tokens and users (an adapter such as
    :class:`~asgi_session.backends.mongodb.MongoDBBackend`). ``max_age`` is how long a link
    works, 24 hours by default.
    """

    type: ClassVar[ProviderType] = "email"

    def __init__(
        self,
        *,
        send: SendLink,
        id: str = "email",
        name: str = "Email",
        max_age: int = 24 * 60 * 60,
    ) -> None:
        super().__init__(id=id, name=name)
        if not callable(send):
            raise ConfigurationError(
                "Email(send=...) needs a function (identifier, url, request) that delivers "
                "the sign-in link"
            )
        if max_age <= 0:
            raise ConfigurationError("Email(max_age=...) must be a positive number of seconds")
        self.send = send
        self.max_age = max_age

    def check_config(self, config: AuthConfig) -> None:
        if config.backend.adapter is None:
            raise ConfigurationError(
                f"the {self.id!r} email provider stores single-use tokens and users: give "
                "AuthConfig a backend that keeps them, e.g. backend=MongoDBBackend(db)"
            )
        if config.url is None and not config.trust_host:
            # The link goes to someone else's inbox: built from a request's Host header,
            # anyone could have it point at their own server and collect the token.
            raise ConfigurationError(
                f"the {self.id!r} email provider puts the app's address in links it mails: "
                "set AUTH_URL (or AuthConfig(url='https://app.example.com')) so that a "
                "forged Host header cannot change it; behind a proxy that sets "
                "X-Forwarded-Host, trust_host=True (AUTH_TRUST_HOST=true) does instead"
            )

    @staticmethod
    def _adapter(auth: AuthRequest) -> Adapter:
        adapter = auth.config.backend.adapter
        assert adapter is not None  # checked at start-up
        return adapter

    # -- POST /signin/<id> -------------------------------------------------------

    async def begin_sign_in(self, auth: AuthRequest) -> Response:
        ctx = auth.ctx
        email = normalize_email(auth.field("email"))
        if email is None:
            return auth.sign_in_error("EmailSignin")
        adapter = self._adapter(auth)
        _, refused = await self._ask_sign_in(auth, adapter, email, verification_request=True)
        if refused is not None:
            return refused

        token = secrets.token_hex(32)
        now = datetime.fromtimestamp(ctx.now, UTC)
        await adapter.create_verification_token(
            {
                "identifier": email,
                "token": hash_token(token, auth.config.secrets[0]),
                "expires": now + timedelta(seconds=self.max_age),
            }
        )
        callback_url = await auth.callback_url(auth.field("callbackUrl"))
        query = urlencode({"callbackUrl": callback_url, "token": token, "email": email})
        url = f"{ctx.auth_url(f'callback/{self.id}')}?{query}"
        try:
            sent = self.send(email, url, auth.request)
            if inspect.isawaitable(sent):
                await sent
        except Exception as exc:
            # Warning, not error: anyone can ask for a link to an address the mailer refuses.
            logger.warning("the %s provider could not send the sign-in link: %r", self.id, exc)
            return auth.sign_in_error("EmailSignin")
        verify = auth.page_url(
            auth.config.pages.verify_request, "verify-request", provider=self.id, type="email"
        )
        return auth.redirect(verify)

    # -- GET /callback/<id> -------------------------------------------------------

    async def handle_callback(self, auth: AuthRequest) -> Response:
        ctx = auth.ctx
        params = auth.request.query_params
        email = normalize_email(params.get("email"))
        token = params.get("token")
        if email is None or not token or len(token) > 128:
            return auth.error("Verification")
        adapter = self._adapter(auth)
        used = None
        for secret in auth.config.secrets:  # links sent before a secret rotation still work
            used = await adapter.use_verification_token(
                identifier=email, token=hash_token(token, secret)
            )
            if used is not None:
                break
        if used is None or used.expires.timestamp() <= ctx.now:
            return auth.error("Verification")

        existing, refused = await self._ask_sign_in(
            auth, adapter, email, verification_request=False
        )
        if refused is not None:
            return refused
        user, is_new_user = await self._verified_user(auth, adapter, email, existing)
        await start_session(
            ctx, user=user.to_dict(), account=self._account(email), is_new_user=is_new_user
        )
        target = params.get("callbackUrl") or auth.stored_callback_url()
        if is_new_user and auth.config.pages.new_user:
            target = auth.config.pages.new_user
        ctx.clear_cookie(ctx.names.callback_url)
        return auth.redirect(await resolve_redirect(ctx, target))

    def _account(self, email: str) -> dict[str, Any]:
        return {"provider": self.id, "type": "email", "providerAccountId": email}

    async def _ask_sign_in(
        self, auth: AuthRequest, adapter: Adapter, email: str, *, verification_request: bool
    ) -> tuple[User | None, Response | None]:
        """The address's user, if any, and the answer to give instead of going on, if the
        ``sign_in`` callback refuses (or sends the browser elsewhere)."""
        existing = await adapter.get_user_by_email(email)
        user = existing.to_dict() if existing else {"id": email, "email": email}
        try:
            elsewhere = await check_sign_in(
                auth.ctx,
                user=user,
                account=self._account(email),
                email={"verificationRequest": verification_request},
            )
        except SignInError as exc:
            return existing, auth.sign_in_error(exc.code)
        return existing, None if elsewhere is None else auth.redirect(elsewhere)

    async def _verified_user(
        self, auth: AuthRequest, adapter: Adapter, email: str, existing: User | None
    ) -> tuple[User, bool]:
        """The address's user, created or marked verified now that the link proved it."""
        events = auth.config.events
        now = datetime.fromtimestamp(auth.ctx.now, UTC)
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
                return created, True
        if existing.email_verified is None:
            updated = await adapter.update_user({"id": existing.id, "email_verified": now})
            if updated is not None:
                await events.emit("update_user", user=updated.to_dict())
                return updated, False
        return existing, False
