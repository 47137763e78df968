"""Sign in with Google (OpenID Connect)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from asgi_session.oauth_checks import Check
from asgi_session.providers.oauth import DEFAULT_TIMEOUT, ProfileMapper
from asgi_session.providers.oidc import OIDC

GOOGLE_ISSUER = "https://accounts.google.com"


class Google(OIDC):
    """Google sign-in. ``client_id``/``client_secret`` default to ``AUTH_GOOGLE_ID``/``_SECRET``.

    Example::

        Google()  # with AUTH_GOOGLE_ID and AUTH_GOOGLE_SECRET set
        # A refresh token too:
        Google(authorization_params={"access_type": "offline", "prompt": "consent"})

    Google verifies the email addresses it vouches for (``email_verified``), so
    ``allow_dangerous_email_account_linking=True`` is a reasonable choice here.
    """

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        id: str = "google",
        name: str = "Google",
        issuer: str = GOOGLE_ISSUER,
        scope: str | None = None,
        authorization_params: Mapping[str, str] | None = None,
        profile: ProfileMapper | None = None,
        checks: Sequence[Check] | None = None,
        allow_dangerous_email_account_linking: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(
            id=id,
            name=name,
            issuer=issuer,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            authorization_params=authorization_params,
            profile=profile,
            checks=checks,
            allow_dangerous_email_account_linking=allow_dangerous_email_account_linking,
            timeout=timeout,
        )

    def id_token_issuers(self) -> list[str]:
        # Google documents both spellings of its issuer in ID tokens.
        issuers = [self.issuer]
        if self.issuer == GOOGLE_ISSUER:
            issuers.append("accounts.google.com")
        return issuers
