"""app.py: a Python API on the Better Auth app's database, sharing its sessions."""

import os
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends.better_auth import BetterAuthStrategy, CookieCache
from asgi_session.providers import Password

# The database named in the URL, the one auth.ts uses: mongodb://localhost:27017/app
client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])
db = client.get_default_database()


async def send(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To {to}: {subject}\n{text}")  # verification and reset mail: use a real sender


# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["BETTER_AUTH_SECRET"],  # the Better Auth app's secret
    url=os.environ["AUTH_URL"],  # where this app is served, for the links it mails
    strategy=BetterAuthStrategy(
        db,
        cookie_prefix="better-auth",  # advanced.cookiePrefix
        expires_in=7 * 24 * 60 * 60,  # session.expiresIn
        update_age=24 * 60 * 60,  # session.updateAge
        cookie_cache=CookieCache(max_age=5 * 60, encoding="compact"),  # session.cookieCache
    ),
    providers=[Password(send=send)],  # optional: sign-in on the Python side too
)
# --8<-- [end:config]


# --8<-- [start:routes]
async def me(request: Request) -> Response:
    session = request.state.session
    if session is None:
        return JSONResponse({"error": "not signed in"}, status_code=401)
    return JSONResponse({"id": session.user.id, "name": session.user.name})


app = Starlette(
    routes=[Route("/api/me", me)],
    middleware=[Middleware(AuthMiddleware, config=config)],
)
# --8<-- [end:routes]
