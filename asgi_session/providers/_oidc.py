"""Sign in with an OpenID Connect provider, configured from its issuer's discovery document.

On top of the OAuth 2 flow, the authorization request carries a ``nonce`` and the token
response must carry an ID token, checked with joserfc and authlib's OpenID Connect
claims rules: its signature against the issuer's JWKS, ``iss``, ``aud`` (and ``azp``),
``exp``, ``iat``, ``nonce`` and ``at_hash``. Discovery documents and key sets are
cached per provider; an unknown key id fetches the key set again, once.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, ClassVar, Unpack

import httpx2
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from asgi_session.errors import ConfigurationError, OAuthFlowError
from asgi_session.providers._base import ProviderType
from asgi_session.providers._checks import Check
from asgi_session.providers._oauth import Endpoints, OAuth, OAuthOptions, env_name

#: Seconds a discovery document is trusted before it is fetched again.
DISCOVERY_MAX_AGE = 24 * 60 * 60
#: Seconds of clock skew accepted on an ID token's ``exp`` and ``iat``.
ID_TOKEN_LEEWAY = 30
#: Signature algorithms accepted for ID tokens: asymmetric ones only, never ``none``.
_ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
    | {"EdDSA", "Ed25519"}
)


class OIDC(OAuth):
    """A generic OpenID Connect provider.

    Example::

        OIDC(id="corp", name="Corp SSO", issuer="https://sso.example.com",
             client_id=..., client_secret=...)

    The endpoints come from ``<issuer>/.well-known/openid-configuration``; any of
    ``authorization_url``, ``token_url`` and ``userinfo_url`` overrides the document's.
    ``issuer``, ``client_id`` and ``client_secret`` default to ``AUTH_<ID>_ISSUER``,
    ``AUTH_<ID>_ID`` and ``AUTH_<ID>_SECRET``. The profile is the ID token's claims,
    completed by the userinfo endpoint unless ``userinfo=False``. The other arguments
    are :class:`~asgi_session.providers.OAuth`'s.
    """

    type: ClassVar[ProviderType] = "oidc"
    default_scope: ClassVar[str] = "openid profile email"
    default_checks: ClassVar[tuple[Check, ...]] = ("state", "pkce", "nonce")

    def __init__(
        self,
        *,
        id: str,
        name: str,
        issuer: str | None = None,
        authorization_url: str | None = None,
        token_url: str | None = None,
        userinfo_url: str | None = None,
        userinfo: bool = True,
        **options: Unpack[OAuthOptions],
    ) -> None:
        super().__init__(
            id=id,
            name=name,
            authorization_url=authorization_url,
            token_url=token_url,
            userinfo_url=userinfo_url,
            **options,
        )
        issuer = issuer or os.environ.get(env_name(id, "ISSUER"))
        if not issuer or not issuer.startswith(("https://", "http://")):
            raise ConfigurationError(
                f"the {name} provider needs its issuer URL: pass issuer='https://...' or "
                f"set {env_name(id, 'ISSUER')}"
            )
        self.issuer = issuer
        self.userinfo = userinfo
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._lock = asyncio.Lock()

    # -- discovery -------------------------------------------------------------------

    async def _get(self, url: str) -> Any:
        async with httpx2.AsyncClient(
            timeout=self.timeout, follow_redirects=False, headers={"User-Agent": "asgi-session"}
        ) as client:
            response = await self.bounded(client.get(url, headers={"Accept": "application/json"}))
        response.raise_for_status()
        return response.json()

    async def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document, fetched once a day at most."""
        if self._metadata is not None and time.monotonic() - self._metadata_at < DISCOVERY_MAX_AGE:
            return self._metadata
        async with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at >= DISCOVERY_MAX_AGE:
                url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
                document = await self._get(url)
                if not isinstance(document, dict):
                    raise OAuthFlowError("the discovery document is not a JSON object")
                if document.get("issuer") != self.issuer:
                    raise OAuthFlowError(
                        f"the discovery document names issuer {document.get('issuer')!r}, "
                        f"not {self.issuer!r}"
                    )
                self._metadata = document
                self._metadata_at = time.monotonic()
        return self._metadata

    async def endpoints(self) -> Endpoints:
        document = await self.metadata()
        authorization = self.authorization_url or document.get("authorization_endpoint")
        token = self.token_url or document.get("token_endpoint")
        userinfo = self.userinfo_url or document.get("userinfo_endpoint")
        if not isinstance(authorization, str) or not isinstance(token, str):
            raise OAuthFlowError("the discovery document lacks the authorization or token endpoint")
        return Endpoints(
            authorization=authorization,
            token=token,
            userinfo=userinfo if isinstance(userinfo, str) else None,
            issuer=self.issuer,
            requires_iss=document.get("authorization_response_iss_parameter_supported") is True,
        )

    async def key_set(self, *, refresh: bool = False) -> KeySet:
        """The issuer's signing keys (cached; ``refresh`` fetches them again)."""
        if self._keys is not None and not refresh:
            return self._keys
        document = await self.metadata()
        uri = document.get("jwks_uri")
        if not isinstance(uri, str):
            raise OAuthFlowError("the discovery document has no jwks_uri")
        keys = await self._get(uri)
        if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
            raise OAuthFlowError("the issuer's JWKS is not a key set")
        self._keys = KeySet.import_key_set(keys)  # type: ignore[arg-type]
        return self._keys

    # -- the ID token ----------------------------------------------------------------

    async def _signature_algorithms(self) -> list[str]:
        offered = (await self.metadata()).get("id_token_signing_alg_values_supported")
        if not isinstance(offered, list):
            return ["RS256"]
        return [alg for alg in offered if alg in _ASYMMETRIC] or ["RS256"]

    def id_token_issuers(self) -> list[str]:
        """The ``iss`` values an ID token may carry: the issuer's."""
        return [self.issuer]

    async def verify_id_token(
        self, id_token: str, *, nonce: str | None, access_token: str | None, now: float
    ) -> dict[str, Any]:
        """The claims of a valid ID token issued to this client, else :class:`OAuthFlowError`."""
        if not isinstance(id_token, str) or id_token.count(".") != 2:
            raise OAuthFlowError("the ID token is not a signed JWT")
        registry = JWSRegistry(algorithms=await self._signature_algorithms())
        try:
            token = jwt.decode(id_token, await self.key_set(), registry=registry)
        except InvalidKeyIdError:
            # The issuer may have rotated its keys since they were cached.
            token = jwt.decode(id_token, await self.key_set(refresh=True), registry=registry)
        params: dict[str, Any] = {"client_id": self.client_id}
        if nonce is not None:
            params["nonce"] = nonce
        if access_token is not None:
            params["access_token"] = access_token
        claims = CodeIDToken(
            token.claims,
            token.header,
            {
                "iss": {"essential": True, "values": self.id_token_issuers()},
                "aud": {"essential": True, "value": self.client_id},
            },
            params,
        )
        claims.validate(now=int(now), leeway=ID_TOKEN_LEEWAY)
        return dict(token.claims)

    async def fetch_profile(
        self,
        client: Any,
        endpoints: Endpoints,
        tokens: dict[str, Any],
        *,
        nonce: str | None,
        now: float,
    ) -> dict[str, Any]:
        """The ID token's claims, completed by the userinfo endpoint."""
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OAuthFlowError("the token response has no ID token")
        claims = await self.verify_id_token(
            id_token, nonce=nonce, access_token=tokens["access_token"], now=now
        )
        if not self.userinfo or not endpoints.userinfo:
            return claims
        info = await self.get_json(client, endpoints.userinfo, tokens["access_token"])
        if not isinstance(info, dict) or info.get("sub") != claims.get("sub"):
            # OpenID Connect Core 5.3.2: userinfo about someone else must not be used.
            raise OAuthFlowError("the userinfo answer is not about the ID token's subject")
        return {**claims, **info}

    async def check_refreshed(self, tokens: dict[str, Any], *, now: float) -> None:
        """A refreshed ID token, if any, must be as valid as the first one (no nonce)."""
        id_token = tokens.get("id_token")
        if id_token is not None:
            await self.verify_id_token(
                id_token, nonce=None, access_token=tokens.get("access_token"), now=now
            )
