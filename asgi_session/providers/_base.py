"""The provider plug-in interface: what a provider is given, and what it hands back.

A provider's whole job is to vouch for someone. It may take the browser somewhere first
(:meth:`Provider.begin_sign_in`: an OAuth authorization server, an email inbox), and it
checks what comes back (:meth:`Provider.authenticate`), answering with an
:class:`Identity`. Everything after that — the ``sign_in`` callback, finding, creating
or linking the user, the new session, events, where the browser goes — is the same for
every provider and happens in one place, :func:`asgi_session._signin.complete_sign_in`.

Providers see the request through :class:`ProviderRequest` and never build HTTP
responses: they return a URL to send the browser to, or raise
:class:`~asgi_session.errors.SignInError`. This module imports no provider and nothing
of the HTTP layer.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from asgi_session.errors import ConfigurationError, SignInError
from asgi_session.models import Authenticator

if TYPE_CHECKING:
    from starlette.requests import Request

    from asgi_session._config import AuthConfig
    from asgi_session._cookies import CookieNames, CookieSpec
    from asgi_session._session import Session
    from asgi_session.models import User

ProviderType = Literal["oauth", "oidc", "email", "credentials", "webauthn"]

_ID = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")


class ProviderContext(Protocol):
    """What a provider may keep between its steps: cookies, the clock, the app's URLs."""

    @property
    def config(self) -> AuthConfig:
        """The app's configuration."""

    @property
    def now(self) -> float:
        """The request's time, seconds since the epoch (the config's clock)."""

    @property
    def names(self) -> CookieNames:
        """The request's cookies by role (``names.state``...), ``Secure`` ones over https."""

    @property
    def cookies(self) -> Mapping[str, str]:
        """The request's cookies by name."""

    def set_cookie(self, spec: CookieSpec, value: str, *, max_age: int | None = None) -> None:
        """Set a cookie on the response."""

    def clear_cookie(self, spec: CookieSpec) -> None:
        """Expire a cookie the request carried."""

    def auth_url(self, action: str) -> str:
        """The absolute URL of an auth route, e.g. ``auth_url("callback/github")``."""

    def page_url(self, page: str | None, action: str, **params: str | None) -> str:
        """The app's own page if it set one, else the built-in route, with a query."""


class ProviderRequest(Protocol):
    """The request to an auth route, as a provider sees it."""

    @property
    def config(self) -> AuthConfig:
        """The app's configuration (its adapter, secrets, pages...)."""

    @property
    def context(self) -> ProviderContext:
        """The request's cookies, clock and URLs: what a provider keeps between steps."""

    @property
    def request(self) -> Request:
        """The Starlette request, for the app's own functions (``authorize``, ``send``)."""

    @property
    def method(self) -> str:
        """``GET`` or ``POST``."""

    @property
    def query(self) -> Mapping[str, str]:
        """The query string's parameters."""

    @property
    def form(self) -> Mapping[str, Any]:
        """The parsed form or JSON body of a ``POST`` (empty otherwise)."""

    def field(self, name: str) -> str | None:
        """A string field of the body, or ``None``."""

    def defer(self, job: Callable[[], Awaitable[object]]) -> None:
        """Run ``job`` once the answer has been sent (mailing a link, say), so that how
        long the answer took tells the client nothing about what the job does. A job
        that fails is logged; the client has its answer already."""

    async def session(self) -> Session | None:
        """The browser's current session, if signed in (a passkey is added to its user)."""

    async def may_sign_in(self, identity: Identity) -> str | None:
        """Ask the app's ``sign_in`` callback about ``identity`` before doing anything
        costly for it (mailing a link): ``None`` to go on, or the URL the app sends the
        browser to instead. Raises :class:`~asgi_session.errors.SignInError` if refused.

        The callback sees what it sees when the sign-in completes, with
        ``email={"verificationRequest": True}`` for an email identity.
        """

    async def callback_url(self, requested: str | None, spec: CookieSpec | None = None) -> str:
        """Where the sign-in should end: ``requested`` if allowed, else the one remembered.

        The URL is checked by the ``redirect`` rules and remembered in a cookie, so a
        failed attempt followed by a good one still ends there. ``spec`` writes that
        cookie with other attributes, even when nothing new was requested (OAuth's
        ``form_post`` callbacks come back cross-site: they need ``SameSite=None``).
        """


@dataclass(frozen=True, slots=True)
class Identity:
    """Someone a provider vouches for: where a provider's part of a sign-in ends.

    ``account_id`` is who they are to the provider (Auth.js's ``providerAccountId``: the
    OAuth subject, the email address, the app's own user id for credentials); ``user``
    is their profile as user fields (``name``, ``email``, ``image``...).
    """

    #: The id of the provider that vouches.
    provider: str
    #: The kind of account: ``"oauth"``, ``"oidc"``, ``"email"``, ``"credentials"`` or
    #: ``"webauthn"``.
    type: ProviderType
    account_id: str
    user: Mapping[str, Any]
    #: Token fields to keep on the linked account (``access_token``, ``expires_at``...).
    tokens: Mapping[str, Any] = field(default_factory=dict)
    #: The provider's own profile, as received (OAuth), for callbacks and events.
    profile: Mapping[str, Any] | None = None
    #: What the form submitted (credentials), for the ``sign_in`` callback.
    credentials: Mapping[str, str] | None = None
    #: Where the browser asked to end up, if this request said (else the remembered one).
    callback_url: str | None = None
    #: Whether an existing user with the same email may be signed in without having
    #: linked this account first (only for providers that verify addresses).
    allow_email_linking: bool = False
    #: Whether the provider stored the user itself just now (a password sign-up): the
    #: sign-in is then a sign-up (``trigger="signUp"``, ``pages.new_user``).
    is_new_user: bool = False
    #: The passkey a registration adds: stored with the account when it is linked.
    authenticator: Authenticator | None = None

    def account(self) -> dict[str, Any]:
        """The account as Auth.js hands it to callbacks: names, then token fields."""
        return {
            "provider": self.provider,
            "type": self.type,
            "providerAccountId": self.account_id,
            **self.tokens,
        }


class Provider:
    """A way to sign in. Subclasses set :attr:`type` and implement the steps they have."""

    type: ClassVar[ProviderType]
    #: Whether the sign-in form posts straight to ``/callback/<id>`` (credentials): that
    #: callback then takes only ``POST`` with the CSRF token, and there is no
    #: ``/signin/<id>`` step.
    posts_to_callback: ClassVar[bool] = False
    #: Whether a signed-in user proves who they are again with it (a password, a
    #: passkey): where one does, a fresh session guards what changes how the account
    #: signs in, linking another account included.
    reauthenticates: ClassVar[bool] = False

    def __init__(self, *, id: str, name: str) -> None:
        if not isinstance(id, str) or not _ID.match(id):
            raise ConfigurationError(
                f"provider id {id!r} must be lower-case letters, digits, '-' or '_' "
                "(it becomes part of the /signin/<id> and /callback/<id> URLs)"
            )
        self.id = id
        self.name = name

    @property
    def form_fields(self) -> Mapping[str, Mapping[str, str]]:
        """The inputs the built-in sign-in page shows for this provider, by field name:
        ``label``, HTML input ``type``, optionally ``placeholder`` and ``required``.
        None by default: a button."""
        return {}

    def form_links(self, context: ProviderContext) -> list[tuple[str, str]]:
        """Links the built-in sign-in page shows under this provider's form, as
        ``(label, URL)`` ("Forgot password?"). None by default."""
        return []

    async def holds_unproven(self, context: ProviderContext, user: User) -> bool:
        """Whether this provider let someone set a way into ``user`` without proving its
        address (a password at a sign-up not yet confirmed): while it does, nothing more
        may be linked to the user. ``False`` by default."""
        return False

    async def address_proven(self, context: ProviderContext, user: User) -> None:
        """Another sign-in just proved that ``user``'s address, unverified until now,
        belongs to the one signing in (a magic link followed, an OAuth account linked by
        email). Whatever this provider let someone set on the user before, without that
        proof, must go now. Nothing by default."""

    def check_config(self, config: AuthConfig) -> None:
        """Fail at start-up if ``config`` lacks what this provider needs."""

    def rate_limit_identifier(self, request: ProviderRequest) -> str | None:
        """Whom a sign-in request names (the submitted email or username), for the
        per-identifier rate limits; normalised as sign-in compares it, so that two
        spellings of one account share a counter. ``None`` by default: only the
        client's address is counted."""
        return None

    async def begin_sign_in(self, request: ProviderRequest) -> str | None:
        """Start a sign-in (``POST /signin/<id>``, CSRF already checked).

        Returns the URL to send the browser to, or ``None`` when the provider has no
        such step (the browser goes back to the sign-in page). Raises
        :class:`~asgi_session.errors.SignInError` to refuse.
        """
        return None

    async def authenticate(self, request: ProviderRequest) -> Identity:
        """Check what came back to ``/callback/<id>`` and say who it proves someone is.

        Raises :class:`~asgi_session.errors.SignInError` when it proves nothing.
        """
        raise SignInError("Configuration", f"{self!r} has no callback", page="error")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"
