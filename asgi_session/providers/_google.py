"""Sign in with Google (OpenID Connect)."""

from __future__ import annotations

from typing import Unpack

from asgi_session.providers._oauth import OAuthOptions
from asgi_session.providers._oidc import OIDC

GOOGLE_ISSUER = "https://accounts.google.com"


class Google(OIDC):
    """Google sign-in. ``client_id``/``client_secret`` default to ``AUTH_GOOGLE_ID``/``_SECRET``.

    Example::

        Google()  # with AUTH_GOOGLE_ID and AUTH_GOOGLE_SECRET set
        # A refresh token too:
        Google(authorization_params={"access_type": "offline", "prompt": "consent"})

    Google verifies the email addresses it vouches for (``email_verified``), so
    ``allow_dangerous_email_account_linking=True`` is a reasonable choice here. The other
    arguments are :class:`~asgi_session.providers.OAuth`'s.
    """

    def __init__(
        self,
        *,
        id: str = "google",
        name: str = "Google",
        issuer: str = GOOGLE_ISSUER,
        **options: Unpack[OAuthOptions],
    ) -> None:
        super().__init__(id=id, name=name, issuer=issuer, **options)

    def id_token_issuers(self) -> list[str]:
        # Google documents both spellings of its issuer in ID tokens.
        issuers = [self.issuer]
        if self.issuer == GOOGLE_ISSUER:
            issuers.append("accounts.google.com")
        return issuers
