"""Users and accounts in MongoDB, sessions in the encrypted cookie (no session rows)."""

import os
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import JWTStrategy, MongoDBAdapter
from asgi_session.providers import Password

client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])
adapter = MongoDBAdapter(client.get_default_database("app"))


async def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To {to}: {subject}\n{url}", flush=True)


# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    providers=[Password(send=send_email)],
    adapter=adapter,
    # A JWT per browser; each instance reads a user's revocation cut-off from the
    # database at most every 30 seconds (strategy="jwt" is the same with 10).
    strategy=JWTStrategy(revocation_check_interval=30),
)
# --8<-- [end:config]


async def home(request: Request) -> Response:
    session = request.state.session
    if session is None:
        return JSONResponse({"signedIn": False})
    return JSONResponse({"signedIn": True, "id": session.user.id, **session.to_dict()})


app = Starlette(routes=[Route("/", home)], middleware=[Middleware(AuthMiddleware, config=config)])
