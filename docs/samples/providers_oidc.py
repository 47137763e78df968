"""Any OpenID Connect provider from its issuer, and a plain OAuth 2 server by its endpoints."""

import os
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.providers import OIDC, OAuth

# --8<-- [start:oidc]
# Keycloak, Okta, Auth0, Entra ID, Authentik, ...: the issuer's discovery document says the rest.
corp = OIDC(
    id="corp",  # the callback URL is <AUTH_URL>/auth/callback/corp
    name="Corp SSO",
    issuer=os.environ["CORP_ISSUER"],  # e.g. https://sso.example.com/realms/staff
    client_id=os.environ["CORP_CLIENT_ID"],
    client_secret=os.environ["CORP_CLIENT_SECRET"],
)
# --8<-- [end:oidc]


# --8<-- [start:oauth]
def acme_profile(profile: dict[str, Any], tokens: dict[str, Any]) -> dict[str, Any]:
    """Acme's /me answer as a user: ``id`` is the account's id at Acme."""
    return {
        "id": profile["uid"],
        "name": profile.get("display_name"),
        "email": profile.get("mail"),
        "image": profile.get("avatar"),
    }


ACME = "https://acme.example"

acme = OAuth(
    id="acme",  # AUTH_ACME_ID and AUTH_ACME_SECRET hold the client's id and secret
    name="Acme",
    authorization_url=f"{ACME}/oauth/authorize",
    token_url=f"{ACME}/oauth/token",
    userinfo_url=f"{ACME}/api/me",
    scope="read:user",
    profile=acme_profile,
)
# --8<-- [end:oauth]


async def home(request: Request) -> Response:
    session = request.state.session
    return JSONResponse(None if session is None else session.to_dict())


config = AuthConfig(
    secret=os.environ["AUTH_SECRET"], url=os.environ["AUTH_URL"], providers=[corp, acme]
)
app = Starlette(routes=[Route("/", home)], middleware=[Middleware(AuthMiddleware, config=config)])
