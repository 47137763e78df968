"""Passkeys (WebAuthn), wire-compatible with Auth.js's ``Passkey`` provider.

The routes are Auth.js's: ``GET /webauthn-options/<id>?action=register|authenticate``
answers ``{action, options}`` and keeps the ceremony's challenge in an encrypted cookie
(``authjs.challenge``); ``POST /callback/<id>`` takes ``action`` and ``data`` (the
browser's response, as JSON) with the CSRF token, so ``signIn("passkey")`` of
``next-auth/webauthn`` works against a Python server unchanged.

A passkey vouches for someone like any provider: an authentication ends in an
:class:`~asgi_session.providers.Identity` for the account the credential belongs to, and
the one sign-in flow does the rest. A registration, made by a signed-in user with a
fresh session, is an identity for a new account of theirs, carrying the
:class:`~asgi_session.models.Authenticator` to store with it. Storage is Auth.js's:
an account ``{type: "webauthn", provider: "passkey", providerAccountId: <credential id>}``
and an Authenticator record, in every adapter that keeps them
(:class:`~asgi_session.backends.AuthenticatorStore`).

Unlike Auth.js: a challenge is used once (claimed in the rate limit store, so a replayed
ceremony fails even with its cookie), user verification is required (a passkey is then
two factors, and is not asked for a second), a signature counter that does not go up is
refused, registration needs a signed-in user (no account is created for an address
nobody proved), and the relying party is the app's configured URL, never the request's
``Host``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from asgi_session import _webauthn as webauthn
from asgi_session._ratelimit import count_once
from asgi_session.backends._adapter import AuthenticatorStore
from asgi_session.errors import ConfigurationError, PasskeyRefused, SignInError
from asgi_session.jwt import JWTCodec, JWTDecodeError
from asgi_session.providers._base import (
    Identity,
    Provider,
    ProviderContext,
    ProviderRequest,
    ProviderType,
)

if TYPE_CHECKING:
    from asgi_session._config import AuthConfig
    from asgi_session.models import User

#: Seconds a ceremony may take (the browser's timeout, and the challenge cookie's life).
CEREMONY_SECONDS = 300
#: Auth.js's error type for every refused passkey.
REFUSED = "WebAuthnVerificationError"


class Passkey(Provider):
    """Sign in with a passkey; needs ``AuthConfig(url=...)`` and an adapter that stores
    authenticators (``MemoryAdapter``, ``MongoDBAdapter``).

    - ``id``, ``name``: ``"passkey"`` and ``"Passkey"``, as in Auth.js.
    - ``relying_party_name``: the name browsers show (default: the app's host).
    """

    type: ClassVar[ProviderType] = "webauthn"
    posts_to_callback: ClassVar[bool] = True
    reauthenticates: ClassVar[bool] = True

    def __init__(
        self, *, id: str = "passkey", name: str = "Passkey", relying_party_name: str | None = None
    ) -> None:
        super().__init__(id=id, name=name)
        self.relying_party_name = relying_party_name
        self._relying_party: webauthn.RelyingParty | None = None

    def check_config(self, config: AuthConfig) -> None:
        if not isinstance(config.adapter, AuthenticatorStore):
            raise ConfigurationError(
                f"the {self.id} provider needs an adapter that stores passkeys "
                "(create_authenticator, get_authenticator, ...), e.g. "
                "AuthConfig(adapter=MongoDBAdapter(db)) or MemoryAdapter()"
            )
        if config.url is None:
            raise ConfigurationError(
                f"the {self.id} provider needs the app's public URL, AuthConfig(url=...) or "
                "AUTH_URL: passkeys are bound to its host, which must not come from requests"
            )
        webauthn.require_py_webauthn()
        self._relying_party = webauthn.relying_party(config.url, self.relying_party_name)

    @property
    def relying_party(self) -> webauthn.RelyingParty:
        if self._relying_party is None:
            raise RuntimeError(f"{self!r} is not configured; pass it to AuthConfig(providers=...)")
        return self._relying_party

    @staticmethod
    def _store(config: AuthConfig) -> AuthenticatorStore:
        adapter = config.adapter
        assert isinstance(adapter, AuthenticatorStore)  # checked at start-up
        return adapter

    # -- the challenge cookie ------------------------------------------------------------

    def _codec(self, context: ProviderContext) -> JWTCodec:
        return JWTCodec(context.config.secrets, context.names.webauthn_challenge.name)

    def _keep_challenge(
        self, context: ProviderContext, challenge: str, action: str, user_id: str | None
    ) -> None:
        claims = {"challenge": challenge, "action": action, "provider": self.id, "sub": user_id}
        token = self._codec(context).encode(claims, max_age=CEREMONY_SECONDS, now=context.now)
        context.set_cookie(context.names.webauthn_challenge, token, max_age=CEREMONY_SECONDS)

    def _take_challenge(self, context: ProviderContext) -> dict[str, Any] | None:
        """The ceremony's challenge, its cookie expired now: each is used once."""
        spec = context.names.webauthn_challenge
        token = context.cookies.get(spec.name)
        context.clear_cookie(spec)
        if not token or len(token) > 2048:
            return None
        try:
            claims = self._codec(context).decode(token, now=context.now)
        except JWTDecodeError:
            return None
        if claims.get("provider") != self.id or not isinstance(claims.get("challenge"), str):
            return None
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or expires <= context.now:
            # The codec allows tokens from other servers some clock skew past ``exp``; this
            # one is the app's own, and its single use is remembered only until ``exp``:
            # a copy replayed within the skew would otherwise be new each time.
            return None
        return claims

    # -- GET /webauthn-options/<id> ----------------------------------------------------------

    async def options(
        self,
        request: ProviderRequest,
        *,
        action: str | None,
        user: User | None,
        fresh: bool,
        pending_user_id: str | None,
    ) -> dict[str, Any]:
        """Auth.js's ``{action, options}`` for a ceremony, its challenge kept in a cookie.

        ``user`` is the signed-in user (``fresh``: signed in recently enough to add a
        factor); ``pending_user_id`` the user of a sign-in waiting for its second factor,
        whose passkeys the browser is then offered. Raises :class:`SignInError` for a
        request that cannot have options.
        """
        if action not in (None, "register", "authenticate"):
            raise SignInError("InvalidAction", "Invalid action")
        if action is None:
            # As Auth.js infers it; a signed-in user must say which they want.
            if user is not None:
                raise SignInError("InvalidAction", "Invalid request")
            action = "authenticate"
        context = request.context
        store = self._store(request.config)
        rp = self.relying_party
        if action == "register":
            if user is None:
                raise SignInError("SessionRequired", "sign in first, then add a passkey")
            if not fresh:
                raise SignInError(
                    "ReauthenticationRequired", "confirm it is you again, then add the passkey"
                )
            existing = await store.list_authenticators_by_user_id(user.id)
            options, challenge = webauthn.registration_options(
                rp,
                user_name=user.email or user.id,
                user_display_name=user.name,
                exclude=existing,
                timeout_ms=CEREMONY_SECONDS * 1000,
            )
            self._keep_challenge(context, challenge, action, user.id)
        else:
            allow = None
            if user is None and pending_user_id is not None:
                allow = await store.list_authenticators_by_user_id(pending_user_id) or None
            options, challenge = webauthn.authentication_options(
                rp, allow=allow, timeout_ms=CEREMONY_SECONDS * 1000
            )
            self._keep_challenge(context, challenge, action, None)
        return {"action": action, "options": options}

    # -- POST /callback/<id> ------------------------------------------------------------------

    async def authenticate(self, request: ProviderRequest) -> Identity:
        action = request.field("action")
        if action not in ("authenticate", "register"):
            raise SignInError(REFUSED, "Invalid action parameter")
        claims = self._take_challenge(request.context)
        if claims is None or claims.get("action") != action:
            raise SignInError(REFUSED, "the passkey challenge is missing or expired")
        try:
            response = webauthn.parse_response(request.field("data"))
        except PasskeyRefused as exc:
            raise SignInError(REFUSED, str(exc)) from None
        context = request.context
        challenge: str = claims["challenge"]
        uses = await count_once(
            request.config.rate_limit_store,
            f"webauthn-challenge:{challenge}",
            float(claims["exp"]),
            context.now,
        )
        if uses != 1:
            # The same ceremony sent again (its cookie copied): one sign-in per challenge.
            raise SignInError(REFUSED, "this passkey challenge was used already")
        callback_url = request.field("callbackUrl")
        if action == "register":
            return await self._registered(request, response, challenge, claims.get("sub"))
        return await self._authenticated(request, response, challenge, callback_url)

    async def _authenticated(
        self,
        request: ProviderRequest,
        response: dict[str, Any],
        challenge: str,
        callback_url: str | None,
    ) -> Identity:
        config = request.config
        store = self._store(config)
        credential_id = webauthn.credential_id(response)
        stored = await store.get_authenticator(credential_id) if credential_id else None
        if stored is None:
            raise SignInError(REFUSED, "this passkey is not registered here")
        try:
            counter = webauthn.verify_authentication(
                self.relying_party, response, challenge=challenge, authenticator=stored
            )
        except PasskeyRefused as exc:
            raise SignInError(REFUSED, str(exc)) from None
        used_at = datetime.fromtimestamp(request.context.now, UTC)
        if (
            await store.update_authenticator_counter(stored.credential_id, counter, used_at=used_at)
            is None
        ):
            # Another sign-in with this counter got there first: a clone, or a replay.
            raise SignInError(REFUSED, "the passkey's signature counter did not go up")
        adapter = config.adapter
        assert adapter is not None
        user = await adapter.get_user(stored.user_id)
        if user is None:
            raise SignInError(REFUSED, "this passkey's user is gone")
        return Identity(
            provider=self.id,
            type="webauthn",
            account_id=stored.provider_account_id,
            user=_fields(user),
            callback_url=callback_url,
        )

    async def _registered(
        self, request: ProviderRequest, response: dict[str, Any], challenge: str, user_id: object
    ) -> Identity:
        config = request.config
        session = await request.session()
        if not isinstance(user_id, str) or session is None or session.user.id != user_id:
            # The ceremony was for the user signed in when it began, and only them.
            raise SignInError(REFUSED, "sign in as the user who began adding this passkey")
        if not session.is_fresh(config.fresh_age, request.context.now):
            # Checked again here: the ceremony may have outlasted the freshness asked for.
            raise SignInError(REFUSED, "confirm it is you again, then add the passkey")
        try:
            credential = webauthn.verify_registration(
                self.relying_party, response, challenge=challenge
            )
        except PasskeyRefused as exc:
            raise SignInError(REFUSED, str(exc)) from None
        store = self._store(config)
        if await store.get_authenticator(credential.credential_id) is not None:
            raise SignInError(REFUSED, "this passkey is registered already")
        adapter = config.adapter
        assert adapter is not None
        user = await adapter.get_user(user_id)
        if user is None:
            raise SignInError(REFUSED, "the user adding this passkey is gone")
        now = datetime.fromtimestamp(request.context.now, UTC)
        record = credential.authenticator(user.id, name=_default_name(response), created_at=now)
        return Identity(
            provider=self.id,
            type="webauthn",
            account_id=credential.credential_id,
            user=_fields(user),
            callback_url=request.field("callbackUrl"),
            authenticator=record,
        )


def _fields(user: User) -> dict[str, Any]:
    fields = {"id": user.id, "name": user.name, "email": user.email, "image": user.image}
    return {key: value for key, value in fields.items() if value is not None}


def _default_name(response: dict[str, Any]) -> str:
    attachment = response.get("authenticatorAttachment")
    return "Security key" if attachment == "cross-platform" else "Passkey"
