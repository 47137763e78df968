"""Passwords, an authenticator app as a second factor, passkeys, and a page that asks
for a recent sign-in.

Run it with ``uvicorn mfa_app:app`` and open http://localhost:8000/auth/signup (passkeys
need a host name such as ``localhost``: browsers refuse them on an IP address).
"""

import os
from html import escape
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, TwoFactor, requires_session
from asgi_session.backends import MongoDBAdapter
from asgi_session.providers import Passkey, Password


def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To: {to}\nSubject: {subject}\n\n{text}\n", flush=True)


client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])

config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ.get("AUTH_URL", "http://localhost:8000"),  # passkeys are bound to its host
    adapter=MongoDBAdapter(client.get_default_database("app")),
    providers=[Password(send=send_email, require_verified_email=True), Passkey()],
    two_factor=TwoFactor(issuer="Example"),  # the name authenticator apps show
    fresh_age=300,  # what changes a factor needs a sign-in at most 5 minutes old
)


# --8<-- [start:pages]
@requires_session
async def home(request: Request) -> Response:
    user = request.state.session.user
    return HTMLResponse(
        f"<p>Signed in as {escape(user.email or '')}.</p>"
        '<p><a href="/auth/account/security">Two-factor sign-in and passkeys</a></p>'
    )


@requires_session(fresh=300)
async def billing(request: Request) -> Response:
    """Signed in more than 5 minutes ago? Prove it is you again first, then come back."""
    return HTMLResponse("<p>Card ending 4242.</p>")


app = Starlette(
    routes=[Route("/", home), Route("/billing", billing)],
    middleware=[Middleware(AuthMiddleware, config=config)],
)
# --8<-- [end:pages]
