"""app.py during the move, when the Auth.js app kept its sessions in JWTs (no database)."""

import os
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, requires_session
from asgi_session.backends.better_auth import BetterAuthStrategy, MigrationStrategy

# Better Auth's database: its user, account and session records.
client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])
db = client.get_default_database()

# --8<-- [start:config]
config = AuthConfig(
    # The first signs Better Auth's cookies; both are tried when reading: Auth.js's
    # AUTH_SECRET decrypts its JWTs until the last of them expires.
    secret=[os.environ["BETTER_AUTH_SECRET"], os.environ["AUTH_SECRET"]],
    strategy=MigrationStrategy(BetterAuthStrategy(db)),  # no authjs=: its sessions are JWTs
)
# --8<-- [end:config]


@requires_session
async def me(request: Request) -> Response:
    user = request.state.session.user
    return JSONResponse({"id": user.id, "email": user.email})


app = Starlette(
    routes=[Route("/api/me", me)],
    middleware=[Middleware(AuthMiddleware, config=config)],
)
