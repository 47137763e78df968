"""Sign in with GitHub (OAuth 2; GitHub Enterprise Server too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from asgi_session.providers._oauth import Endpoints, OAuth, OAuthOptions

_GITHUB = "https://github.com"
_GITHUB_API = "https://api.github.com"


def github_profile(profile: dict[str, Any], tokens: dict[str, Any]) -> Mapping[str, Any]:
    """GitHub's user object as a user: the login stands in for a missing name."""
    return {
        "id": profile.get("id"),
        "name": profile.get("name") or profile.get("login"),
        "email": profile.get("email"),
        "image": profile.get("avatar_url"),
    }


class GitHub(OAuth):
    """GitHub sign-in. ``client_id``/``client_secret`` default to ``AUTH_GITHUB_ID``/``_SECRET``.

    Example::

        GitHub()  # with AUTH_GITHUB_ID and AUTH_GITHUB_SECRET set
        GitHub(enterprise_url="https://github.example.com")  # GitHub Enterprise Server

    The email is the public one, else the primary verified address from
    ``/user/emails`` (the default ``user:email`` scope allows reading it). The other
    arguments are :class:`~asgi_session.providers.OAuth`'s.
    """

    default_scope = "read:user user:email"

    def __init__(
        self,
        *,
        id: str = "github",
        name: str = "GitHub",
        enterprise_url: str | None = None,
        **options: Unpack[OAuthOptions],
    ) -> None:
        base = enterprise_url.rstrip("/") if enterprise_url else _GITHUB
        self.api_url = f"{base}/api/v3" if enterprise_url else _GITHUB_API
        options["profile"] = options.get("profile") or github_profile
        super().__init__(
            id=id,
            name=name,
            authorization_url=f"{base}/login/oauth/authorize",
            token_url=f"{base}/login/oauth/access_token",
            userinfo_url=f"{self.api_url}/user",
            **options,
        )

    async def fetch_profile(
        self,
        client: Any,
        endpoints: Endpoints,
        tokens: dict[str, Any],
        *,
        nonce: str | None,
        now: float,
    ) -> dict[str, Any]:
        profile = await super().fetch_profile(client, endpoints, tokens, nonce=nonce, now=now)
        if not profile.get("email"):
            # A private email is only listed by /user/emails.
            emails = await self.get_json(
                client, f"{self.api_url}/user/emails", tokens["access_token"]
            )
            profile["email"] = _primary_email(emails)
        return profile


def _primary_email(emails: Any) -> str | None:
    if not isinstance(emails, list):
        return None
    verified = [
        entry
        for entry in emails
        if isinstance(entry, dict)
        and entry.get("verified") is True
        and isinstance(entry.get("email"), str)
    ]
    for entry in verified:
        if entry.get("primary") is True:
            return str(entry["email"])
    return str(verified[0]["email"]) if verified else None
