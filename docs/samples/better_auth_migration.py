"""app.py during the move: Auth.js's sessions honoured, Better Auth's for every new sign-in."""

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
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.providers import Password

# One database holds both: Auth.js's users, accounts, sessions; Better Auth's user, account...
client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])
db = client.get_default_database()


async def send(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To {to}: {subject}\n{text}")  # verification and reset mail: use a real sender


# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["BETTER_AUTH_SECRET"],  # the Better Auth app's secret
    url=os.environ["AUTH_URL"],
    strategy=MigrationStrategy(
        BetterAuthStrategy(db),  # new sessions: Better Auth's
        authjs=MongoDBAdapter(db),  # Auth.js's records, only read
    ),
    providers=[Password(send=send)],
)
# --8<-- [end:config]


@requires_session
async def me(request: Request) -> Response:
    user = request.state.session.user  # the Better Auth user, whichever cookie came
    return JSONResponse({"id": user.id, "email": user.email})


app = Starlette(
    routes=[Route("/api/me", me)],
    middleware=[Middleware(AuthMiddleware, config=config)],
)
