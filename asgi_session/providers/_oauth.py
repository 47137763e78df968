"""Sign in with an OAuth 2 authorization server: authorization code flow with PKCE.

``POST /signin/<id>`` sends the browser to the provider with a ``state`` and a PKCE
S256 challenge; ``/callback/<id>`` checks the state, exchanges the code (with the PKCE
verifier) for tokens, reads the user's profile and signs the user in. The check values
travel in short-lived encrypted cookies (see :mod:`asgi_session.providers._checks`), so no
server-side state is kept. Any failure ends on the sign-in page with an error code.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx2
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from joserfc.errors import JoseError

from asgi_session.errors import ConfigurationError, OAuthFlowError, SignInError
from asgi_session.providers._base import Identity, Provider, ProviderRequest, ProviderType
from asgi_session.providers._checks import Check, OAuthChecks

if TYPE_CHECKING:
    from asgi_session.providers._base import ProviderContext

logger = logging.getLogger("asgi_session")

#: ``profile(profile, tokens)`` maps the provider's profile to the user: a mapping with
#: ``id`` (the provider's account id) and optionally ``name``, ``email``, ``image``.
#: It may be a plain or an ``async`` function.
ProfileMapper = Callable[
    [dict[str, Any], dict[str, Any]], Mapping[str, Any] | Awaitable[Mapping[str, Any]]
]

#: Seconds any one call to the provider may take, connecting included.
DEFAULT_TIMEOUT = 10.0


class OAuthOptions(TypedDict, total=False):
    """The settings every OAuth provider takes (see :class:`OAuth`)."""

    client_id: str | None
    client_secret: str | None
    scope: str | None
    authorization_params: Mapping[str, str] | None
    profile: ProfileMapper | None
    checks: Sequence[Check] | None
    token_endpoint_auth_method: str
    allow_dangerous_email_account_linking: bool
    timeout: float


#: Token response fields kept on the account, as Auth.js keeps them.
TOKEN_FIELDS = ("access_token", "id_token", "refresh_token", "scope", "token_type", "session_state")

_USER_AGENT = "asgi-session"

_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")

#: Authorization request parameters a sign-in request cannot set.
_RESERVED_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "nonce",
        "response_mode",
        "request",
        "request_uri",
    }
)
_T = TypeVar("_T")

# What a misbehaving or unreachable provider makes the protocol code raise.
_PROTOCOL_ERRORS: tuple[type[BaseException], ...] = (
    httpx2.HTTPError,
    OAuthError,
    JoseError,
    TimeoutError,
    ValueError,
    TypeError,
    KeyError,
)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where a provider's authorization server answers."""

    authorization: str
    token: str
    userinfo: str | None = None
    #: The issuer the callback's ``iss`` parameter must name, if known (RFC 9207).
    issuer: str | None = None
    #: Whether the callback must carry ``iss`` (the server said it always sends it).
    requires_iss: bool = False


def env_name(provider_id: str, what: str) -> str:
    """Auth.js's environment variable name, e.g. ``AUTH_GITHUB_ID`` for ``("github", "ID")``."""
    return f"AUTH_{provider_id.upper().replace('-', '_')}_{what}"


def _default_profile(profile: dict[str, Any], tokens: dict[str, Any]) -> Mapping[str, Any]:
    return {
        "id": profile.get("sub", profile.get("id")),
        "name": profile.get("name"),
        "email": profile.get("email"),
        "image": profile.get("picture", profile.get("image")),
    }


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = urlencode(params)
    return urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))


class OAuth(Provider):
    """A generic OAuth 2 provider (no OpenID Connect): endpoints and a profile mapping.

    Example::

        OAuth(
            id="acme",
            name="Acme",
            authorization_url="https://acme.example/oauth/authorize",
            token_url="https://acme.example/oauth/token",
            userinfo_url="https://api.acme.example/me",
            scope="read:user",
            profile=lambda profile, tokens: {
                "id": profile["uid"], "name": profile["display_name"],
                "email": profile["mail"], "image": profile["avatar"],
            },
        )

    ``client_id`` and ``client_secret`` default to the ``AUTH_<ID>_ID`` and
    ``AUTH_<ID>_SECRET`` environment variables. Other arguments:

    - ``authorization_params``: extra query parameters for the authorization request.
      The sign-in request's own query (``POST /auth/signin/acme?login_hint=...``) may
      add more, but never the flow's ``state``, ``redirect_uri``, PKCE or ``nonce``.
    - ``checks``: ``"state"`` and ``"pkce"`` by default; ``"nonce"`` for OpenID Connect.
    - ``token_endpoint_auth_method``: ``"client_secret_basic"`` (default),
      ``"client_secret_post"`` or ``"none"`` (a public client).
    - ``allow_dangerous_email_account_linking``: sign in to an existing user whose email
      matches the provider's, without that user linking the account first. Only for
      providers that verify email addresses.
    - ``timeout``: seconds any call to the provider may take (10).
    """

    type: ClassVar[ProviderType] = "oauth"
    #: The scope requested when the app names none.
    default_scope: ClassVar[str] = ""
    #: The checks made when the app names none.
    default_checks: ClassVar[tuple[Check, ...]] = ("state", "pkce")

    def __init__(
        self,
        *,
        id: str,
        name: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        authorization_url: str | None = None,
        token_url: str | None = None,
        userinfo_url: str | None = None,
        scope: str | None = None,
        authorization_params: Mapping[str, str] | None = None,
        profile: ProfileMapper | None = None,
        checks: Sequence[Check] | None = None,
        token_endpoint_auth_method: str = "client_secret_basic",  # noqa: S107 (a method name)
        allow_dangerous_email_account_linking: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(id=id, name=name)
        self.client_id = client_id or os.environ.get(env_name(id, "ID")) or ""
        self.client_secret = client_secret or os.environ.get(env_name(id, "SECRET")) or ""
        if token_endpoint_auth_method not in _AUTH_METHODS:
            raise ConfigurationError(
                f"token_endpoint_auth_method must be one of {', '.join(_AUTH_METHODS)}, "
                f"not {token_endpoint_auth_method!r}"
            )
        self.token_endpoint_auth_method = token_endpoint_auth_method
        self._check_credentials()
        self.authorization_url = authorization_url
        self.token_url = token_url
        self.userinfo_url = userinfo_url
        self.scope = self.default_scope if scope is None else scope
        self.authorization_params = dict(authorization_params or {})
        self.profile = profile or _default_profile
        self.checks: tuple[Check, ...] = self.default_checks if checks is None else tuple(checks)
        unknown = set(self.checks) - {"state", "pkce", "nonce"}
        if unknown:
            raise ConfigurationError(
                f"unknown checks {sorted(unknown)} for provider {id!r}; "
                "use 'state', 'pkce' and 'nonce'"
            )
        if "state" not in self.checks and "pkce" not in self.checks:
            raise ConfigurationError(
                f"provider {id!r} needs the 'state' or 'pkce' check to resist CSRF"
            )
        self.allow_dangerous_email_account_linking = allow_dangerous_email_account_linking
        if not timeout > 0:
            raise ConfigurationError("timeout must be a positive number of seconds")
        self.timeout = float(timeout)

    def _check_credentials(self) -> None:
        needs_secret = self.token_endpoint_auth_method != "none"  # noqa: S105 (a method name)
        if self.client_id and (self.client_secret or not needs_secret):
            return
        wanted = [env_name(self.id, "ID")] + ([env_name(self.id, "SECRET")] if needs_secret else [])
        raise ConfigurationError(
            f"the {self.name} provider needs its OAuth client id"
            + (" and secret" if needs_secret else "")
            + f": set {' and '.join(wanted)} or pass client_id=..."
            + (", client_secret=..." if needs_secret else "")
        )

    @property
    def form_post(self) -> bool:
        """Whether the provider answers with a cross-site POST (``response_mode=form_post``)."""
        return self.authorization_params.get("response_mode") == "form_post"

    # -- endpoints -------------------------------------------------------------------

    async def endpoints(self) -> Endpoints:
        """The authorization server's endpoints (fixed for plain OAuth 2)."""
        if not self.authorization_url or not self.token_url:
            raise OAuthFlowError(
                f"provider {self.id!r} needs authorization_url and token_url", "Configuration"
            )
        return Endpoints(self.authorization_url, self.token_url, self.userinfo_url)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[Any]:
        """An authlib ``AsyncOAuth2Client`` for this provider's client credentials."""
        client = AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self.client_secret or None,
            token_endpoint_auth_method=self.token_endpoint_auth_method,
            timeout=self.timeout,
            follow_redirects=False,
            headers={"User-Agent": _USER_AGENT},
        )
        try:
            yield client
        finally:
            await client.aclose()

    async def bounded(self, call: Awaitable[_T]) -> _T:
        """Await a call to the provider, giving up after :attr:`timeout` seconds in all."""
        async with asyncio.timeout(self.timeout):
            return await call

    async def get_json(self, client: Any, url: str, access_token: str) -> Any:
        """GET a JSON resource of the provider with the user's access token."""
        response: httpx2.Response = await self.bounded(
            client.request(
                "GET",
                url,
                withhold_token=True,
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            )
        )
        response.raise_for_status()
        return response.json()

    # -- the sign-in flow --------------------------------------------------------------

    def redirect_uri(self, ctx: ProviderContext) -> str:
        """This provider's callback URL, registered with the provider."""
        return ctx.auth_url(f"callback/{self.id}")

    def _checks(self, ctx: ProviderContext) -> OAuthChecks:
        return OAuthChecks(ctx, self.id, cross_site=self.form_post)

    async def begin_sign_in(self, request: ProviderRequest) -> str:
        """``POST /signin/<id>``: remember the checks and send the browser to the provider."""
        ctx = request.context
        try:
            endpoints = await self.endpoints()
        except OAuthFlowError as exc:
            logger.error("cannot start signing in with %s: %s", self.id, exc)
            raise SignInError("OAuthSignin", str(exc)) from exc
        except _PROTOCOL_ERRORS as exc:
            logger.error("cannot start signing in with %s: %r", self.id, exc)
            raise SignInError("OAuthSignin", repr(exc)) from exc
        checks = self._checks(ctx)
        await request.callback_url(request.field("callbackUrl"), checks.spec_for_callback_url())
        params: dict[str, str] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri(ctx),
        }
        if self.scope:
            params["scope"] = self.scope
        if "state" in self.checks:
            params["state"] = checks.issue("state")
        if "pkce" in self.checks:
            params["code_challenge"] = create_s256_code_challenge(checks.issue("pkce"))
            params["code_challenge_method"] = "S256"
        if "nonce" in self.checks:
            params["nonce"] = checks.issue("nonce")
        params.update(self.authorization_params)
        # As in Auth.js, the sign-in request may add parameters (login_hint, prompt...),
        # but never replace those the flow's security rests on.
        params.update(
            (key, value) for key, value in request.query.items() if key not in _RESERVED_PARAMS
        )
        return _with_query(endpoints.authorization, params)

    async def authenticate(self, request: ProviderRequest) -> Identity:
        """``GET``/``POST /callback/<id>``: verify, exchange the code, read the profile."""
        ctx = request.context
        params: Mapping[str, Any] = request.form if request.method == "POST" else request.query
        checks = self._checks(ctx)
        try:
            user, account_id, tokens, profile = await self._complete(ctx, params, checks)
        except OAuthFlowError as exc:
            logger.warning("signing in with %s failed: %s", self.id, exc)
            raise SignInError(exc.error, str(exc)) from exc
        finally:
            checks.clear(*self.checks)
        return Identity(
            provider=self.id,
            type=self.type,
            account_id=account_id,
            user=user,
            tokens=tokens,
            profile=profile,
            allow_email_linking=self.allow_dangerous_email_account_linking,
        )

    async def _complete(
        self, ctx: ProviderContext, params: Mapping[str, Any], checks: OAuthChecks
    ) -> tuple[dict[str, Any], str, dict[str, Any], dict[str, Any]]:
        """Check the provider's answer: the user, their account id, tokens and profile."""
        if "state" in self.checks:
            expected = checks.read("state")
            got = params.get("state")
            if expected is None:
                raise OAuthFlowError("the state cookie is missing, expired or for another provider")
            if not isinstance(got, str) or not hmac.compare_digest(
                got.encode("utf-8", "replace"), expected.encode("utf-8", "replace")
            ):
                raise OAuthFlowError("the state parameter does not match")
        try:
            endpoints = await self.endpoints()
        except _PROTOCOL_ERRORS as exc:
            raise OAuthFlowError(f"cannot reach the provider: {exc!r}") from exc
        _check_issuer_parameter(endpoints, params)
        error = params.get("error")
        if error is not None:
            description = params.get("error_description")
            raise OAuthFlowError(f"the provider answered {error!r} ({description!r})")
        code = params.get("code")
        if not isinstance(code, str) or not code:
            raise OAuthFlowError("the callback carries no authorization code")
        verifier = checks.read("pkce") if "pkce" in self.checks else None
        if "pkce" in self.checks and verifier is None:
            raise OAuthFlowError("the PKCE cookie is missing, expired or for another provider")
        nonce = checks.read("nonce") if "nonce" in self.checks else None
        if "nonce" in self.checks and nonce is None:
            raise OAuthFlowError("the nonce cookie is missing, expired or for another provider")
        try:
            async with self.client() as client:
                tokens = await self.exchange_code(
                    client,
                    endpoints,
                    code=code,
                    redirect_uri=self.redirect_uri(ctx),
                    verifier=verifier,
                )
                profile = await self.fetch_profile(
                    client, endpoints, tokens, nonce=nonce, now=ctx.now
                )
        except OAuthFlowError:
            raise
        except _PROTOCOL_ERRORS as exc:
            raise OAuthFlowError(f"the provider's answer was not usable: {exc!r}") from exc
        user = await self._map_profile(profile, tokens)
        account_id: str = user.pop("id")
        # The user's id is the app's, not the provider's: that one is on the account.
        user["id"] = str(uuid.uuid4())
        return user, account_id, self.stored_tokens(tokens, now=ctx.now), profile

    async def exchange_code(
        self,
        client: Any,
        endpoints: Endpoints,
        *,
        code: str,
        redirect_uri: str,
        verifier: str | None,
    ) -> dict[str, Any]:
        """Trade the authorization code for tokens at the token endpoint."""
        extra = {} if verifier is None else {"code_verifier": verifier}
        token = await self.bounded(
            client.fetch_token(
                endpoints.token,
                grant_type="authorization_code",
                code=code,
                redirect_uri=redirect_uri,
                **extra,
            )
        )
        return _token_dict(token)

    async def fetch_profile(
        self,
        client: Any,
        endpoints: Endpoints,
        tokens: dict[str, Any],
        *,
        nonce: str | None,
        now: float,
    ) -> dict[str, Any]:
        """The user's profile, from the userinfo endpoint."""
        if not endpoints.userinfo:
            raise OAuthFlowError(f"provider {self.id!r} has no userinfo_url", "Configuration")
        profile = await self.get_json(client, endpoints.userinfo, tokens["access_token"])
        if not isinstance(profile, dict):
            raise OAuthFlowError("the userinfo endpoint did not answer a JSON object")
        return profile

    async def _map_profile(self, profile: dict[str, Any], tokens: dict[str, Any]) -> dict[str, Any]:
        try:
            mapped = self.profile(dict(profile), dict(tokens))
            if inspect.isawaitable(mapped):
                mapped = await mapped
        except Exception as exc:
            logger.exception("the %s provider's profile function failed", self.id)
            raise OAuthFlowError(f"the profile could not be mapped: {exc!r}") from exc
        if not isinstance(mapped, Mapping):
            raise OAuthFlowError("the profile function must return a mapping")
        user = dict(mapped)
        account_id = user.get("id")
        if isinstance(account_id, bool) or not isinstance(account_id, str | int) or not account_id:
            raise OAuthFlowError("the provider's profile has no account id")
        user["id"] = str(account_id)
        email = user.get("email")
        user["email"] = email.lower() if isinstance(email, str) and email else None
        return user

    def stored_tokens(self, tokens: Mapping[str, Any], *, now: float) -> dict[str, Any]:
        """The token fields an account keeps: ``access_token``, ``expires_at``, ..."""
        stored: dict[str, Any] = {
            name: tokens[name] for name in TOKEN_FIELDS if isinstance(tokens.get(name), str)
        }
        if "token_type" in stored:
            stored["token_type"] = stored["token_type"].lower()
        expires_in = tokens.get("expires_in")
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = int(expires_in)
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            stored["expires_at"] = int(now) + int(expires_in)
        return stored

    # -- refreshing ------------------------------------------------------------------

    async def refresh(self, refresh_token: str, *, now: float) -> dict[str, Any]:
        """New tokens for a refresh token, as :meth:`stored_tokens` gives them.

        The refresh token is kept when the provider issues no new one. Raises
        :class:`OAuthFlowError` when the provider refuses or cannot be reached.
        """
        try:
            endpoints = await self.endpoints()
            async with self.client() as client:
                token = await self.bounded(
                    client.refresh_token(endpoints.token, refresh_token=refresh_token)
                )
                tokens = _token_dict(token)
                await self.check_refreshed(tokens, now=now)
        except OAuthFlowError:
            raise
        except _PROTOCOL_ERRORS as exc:
            raise OAuthFlowError(f"refreshing the access token failed: {exc!r}") from exc
        tokens.setdefault("refresh_token", refresh_token)
        return self.stored_tokens(tokens, now=now)

    async def check_refreshed(self, tokens: dict[str, Any], *, now: float) -> None:
        """Validate a refresh response beyond its access token; nothing for plain OAuth 2."""


def _token_dict(token: Any) -> dict[str, Any]:
    if not isinstance(token, Mapping):
        raise OAuthFlowError("the token endpoint did not answer a JSON object")
    tokens = dict(token)
    if not isinstance(tokens.get("access_token"), str) or not tokens["access_token"]:
        raise OAuthFlowError("the token endpoint's answer has no access_token")
    return tokens


def _check_issuer_parameter(endpoints: Endpoints, params: Mapping[str, Any]) -> None:
    """RFC 9207: an ``iss`` parameter must name the expected issuer (mix-up defence)."""
    iss = params.get("iss")
    if iss is None:
        if endpoints.requires_iss:
            raise OAuthFlowError("the callback carries no iss parameter")
        return
    if endpoints.issuer is not None and iss != endpoints.issuer:
        raise OAuthFlowError(f"the callback's iss {iss!r} is not the provider's issuer")
