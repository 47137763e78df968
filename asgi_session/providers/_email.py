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
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlencode

from starlette.requests import Request

from asgi_session.errors import ConfigurationError, SignInError
from asgi_session.providers._base import Identity, Provider, ProviderRequest, ProviderType

if TYPE_CHECKING:
    from asgi_session._config import AuthConfig
    from asgi_session.backends._adapter import Adapter

logger = logging.getLogger("asgi_session")

#: ``send(identifier, url, request)``: deliver the sign-in link; plain or ``async``.
SendLink = Callable[[str, str, Request], Awaitable[None] | None]

_MAX_EMAIL_LENGTH = 254

# RFC 5322's specials but "@" and ".": quoting, comments, lists, groups and angle
# brackets, with which one string is parsed into several addresses, or another one.
_ADDRESS_SYNTAX = frozenset(',;:<>()[]\\"')
# The percent hack ("ada%evil.example@example.com": relays deliver to ada@evil.example)
# and UUCP bang paths ("evil.example!ada@example.com"): routes through the named host.
_SOURCE_ROUTES = frozenset("%!")


def normalize_email(value: object) -> str | None:
    """The canonical form of an address (NFKC, trimmed, lower case), or ``None`` if invalid.

    Exactly one ``@`` with something on both sides, no spaces or control characters,
    none of the characters that quote, comment, list or group addresses (``,;:<>()[]\\"``)
    and no source route (``%`` or ``!``): anything else could name two different
    mailboxes to two different systems, the mailbox the link is stored for and the one
    a relay delivers it to. Auth.js's default normaliser refuses only quotes and a
    second ``@`` (and cuts the domain at a comma), so it accepts
    ``ada%evil.example@example.com`` and ``evil.example!ada@example.com``, which are
    refused here.
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
    if not _ADDRESS_SYNTAX.isdisjoint(email) or not _SOURCE_ROUTES.isdisjoint(email):
        return None
    return email


def check_mailed_links(config: AuthConfig, provider: str, stores: str) -> None:
    """Fail at start-up unless ``config`` can keep the tokens of links it mails and
    names the app's address itself (``stores`` says what the provider keeps)."""
    if config.adapter is None:
        raise ConfigurationError(
            f"the {provider!r} provider stores {stores}: give AuthConfig an adapter that "
            "keeps them, e.g. adapter=MongoDBAdapter(db) (MemoryAdapter() for one process)"
        )
    if config.url is None and not config.trust_host:
        # The link goes to someone else's inbox: built from a request's Host header,
        # anyone could have it point at their own server and collect the token.
        raise ConfigurationError(
            f"the {provider!r} provider puts the app's address in links it mails: "
            "set AUTH_URL (or AuthConfig(url='https://app.example.com')) so that a "
            "forged Host header cannot change it; behind a proxy that sets "
            "X-Forwarded-Host, trust_host=True (AUTH_TRUST_HOST=true) does instead"
        )


def adapter_of(request: ProviderRequest) -> Adapter:
    """The adapter of a provider that :func:`check_mailed_links` let start."""
    adapter = request.config.adapter
    assert adapter is not None  # checked at start-up
    return adapter


def hash_token(token: str, secret: str) -> str:
    """How a token is stored: ``sha256(token + secret)``, as Auth.js stores it."""
    return hashlib.sha256(f"{token}{secret}".encode()).hexdigest()


class Email(Provider):
    """Passwordless sign-in by email.

    Example::

        async def send_magic_link(identifier, url, request):
            await mailer.send(to=identifier, subject="Sign in", body=f"Sign in: {url}")

        Email(send=send_magic_link)

    Needs an adapter that stores verification tokens and users (such as
    :class:`~asgi_session.backends.mongodb.MongoDBAdapter`). ``max_age`` is how long a link
    works, 24 hours by default. Following the link creates the user, or marks their
    address verified.
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
        check_mailed_links(config, self.id, "single-use tokens and users")

    @property
    def form_fields(self) -> Mapping[str, Mapping[str, str]]:
        return {"email": {"label": "Email", "type": "email", "required": "required"}}

    def rate_limit_identifier(self, request: ProviderRequest) -> str | None:
        """The address a link is asked for, as it would be sent to."""
        return normalize_email(request.field("email"))

    def _identity(self, email: str, callback_url: str | None = None) -> Identity:
        """The owner of ``email``: who a link to it vouches for."""
        return Identity(
            provider=self.id,
            type="email",
            account_id=email,
            user={"id": email, "email": email},
            callback_url=callback_url,
        )

    # -- POST /signin/<id> -------------------------------------------------------

    async def begin_sign_in(self, request: ProviderRequest) -> str:
        """Store a token for the address, mail the link, and show "check your email"."""
        ctx = request.context
        email = normalize_email(request.field("email"))
        if email is None:
            raise SignInError("EmailSignin", "not an email address")
        # Asked before anything is sent: an app may refuse addresses it does not know.
        elsewhere = await request.may_sign_in(self._identity(email))
        if elsewhere is not None:
            return elsewhere
        adapter = adapter_of(request)

        token = secrets.token_hex(32)
        now = datetime.fromtimestamp(ctx.now, UTC)
        await adapter.create_verification_token(
            {
                "identifier": email,
                "token": hash_token(token, request.config.secrets[0]),
                "expires": now + timedelta(seconds=self.max_age),
            }
        )
        callback_url = await request.callback_url(request.field("callbackUrl"))
        query = urlencode({"callbackUrl": callback_url, "token": token, "email": email})
        url = f"{ctx.auth_url(f'callback/{self.id}')}?{query}"
        try:
            sent = self.send(email, url, request.request)
            if inspect.isawaitable(sent):
                await sent
        except Exception as exc:
            # Warning, not error: anyone can ask for a link to an address the mailer refuses.
            logger.warning("the %s provider could not send the sign-in link: %r", self.id, exc)
            raise SignInError("EmailSignin", "the link could not be sent") from exc
        return ctx.page_url(
            request.config.pages.verify_request, "verify-request", provider=self.id, type="email"
        )

    # -- GET /callback/<id> -------------------------------------------------------

    async def authenticate(self, request: ProviderRequest) -> Identity:
        """Use the link's token up: it proves the owner of the address clicked it."""
        email = normalize_email(request.query.get("email"))
        token = request.query.get("token")
        if email is None or not token or len(token) > 128:
            raise SignInError("Verification", "the link is incomplete", page="error")
        adapter = adapter_of(request)
        used = None
        for secret in request.config.secrets:  # links sent before a secret rotation still work
            used = await adapter.use_verification_token(
                identifier=email, token=hash_token(token, secret)
            )
            if used is not None:
                break
        if used is None or used.expires.timestamp() <= request.context.now:
            raise SignInError("Verification", "the link is used up or expired", page="error")
        return self._identity(email, request.query.get("callbackUrl"))
