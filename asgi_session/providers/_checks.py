"""The values an OAuth sign-in must find again on its callback: state, PKCE verifier, nonce.

Each lives in its own short-lived cookie as a small encrypted token (the session token
format, salted with the cookie's name) that names the provider it was issued for. No
server-side state is needed, so any instance of the app can finish a sign-in another
instance started, and a value issued for one provider is worthless on another's callback.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from asgi_session._cookies import CookieSpec
from asgi_session.jwt import JWTCodec, JWTDecodeError

if TYPE_CHECKING:
    from asgi_session.providers._base import ProviderContext

#: Seconds a sign-in may take at the provider before its check cookies expire.
CHECK_MAX_AGE = 15 * 60

Check = Literal["state", "pkce", "nonce"]

_COOKIE_FIELDS: dict[Check, str] = {
    "state": "state",
    "pkce": "pkce_code_verifier",
    "nonce": "nonce",
}


def new_check_value() -> str:
    """A fresh random value for a state, PKCE code verifier or nonce (43 characters)."""
    # 32 bytes of base64url is 43 characters: within PKCE's 43-128 and unguessable.
    return secrets.token_urlsafe(32)


@functools.lru_cache(maxsize=32)
def _codec(secrets_: tuple[str, ...], cookie_name: str) -> JWTCodec:
    return JWTCodec(secrets_, cookie_name)


class OAuthChecks:
    """Issue and consume the check cookies of one provider's sign-in.

    ``cross_site`` marks the cookies ``SameSite=None`` (over https only): a provider
    answering with ``response_mode=form_post`` comes back with a cross-site POST, which
    browsers send no ``Lax`` cookie with.
    """

    def __init__(self, ctx: ProviderContext, provider_id: str, *, cross_site: bool = False) -> None:
        self.ctx = ctx
        self.provider_id = provider_id
        self.cross_site = cross_site

    def spec(self, check: Check) -> CookieSpec:
        """The cookie holding ``check``."""
        spec: CookieSpec = getattr(self.ctx.names, _COOKIE_FIELDS[check])
        if self.cross_site and spec.secure:
            spec = replace(spec, same_site="none")
        return spec

    def spec_for_callback_url(self) -> CookieSpec:
        """The cookie keeping where to go after the callback, with the checks' SameSite."""
        spec = self.ctx.names.callback_url
        if self.cross_site and spec.secure:
            spec = replace(spec, same_site="none")
        return spec

    def _codec(self, spec: CookieSpec) -> JWTCodec:
        return _codec(self.ctx.config.secrets, spec.name)

    def issue(self, check: Check) -> str:
        """Create a value for ``check``, set its cookie, and return the value."""
        value = new_check_value()
        spec = self.spec(check)
        token = self._codec(spec).encode(
            {"value": value, "provider": self.provider_id}, max_age=CHECK_MAX_AGE, now=self.ctx.now
        )
        self.ctx.set_cookie(spec, token, max_age=CHECK_MAX_AGE)
        return value

    def read(self, check: Check) -> str | None:
        """The value issued for ``check`` to this provider, or ``None``.

        ``None`` covers a missing, tampered, expired cookie or one issued to another
        provider. The cookie is not cleared here; see :meth:`clear`.
        """
        spec = self.spec(check)
        token = self.ctx.cookies.get(spec.name)
        if not token:
            return None
        try:
            claims = self._codec(spec).decode(token, now=self.ctx.now)
        except JWTDecodeError:
            return None
        value = claims.get("value")
        if claims.get("provider") != self.provider_id or not isinstance(value, str) or not value:
            return None
        return value

    def clear(self, *checks: Check) -> None:
        """Expire the cookies of ``checks`` the request carried: each value is used once."""
        for check in checks:
            self.ctx.clear_cookie(self.spec(check))
