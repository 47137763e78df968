"""The MongoDB adapter and the database strategy with their options spelled out."""

import os
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import DatabaseStrategy, MongoDBAdapter
from asgi_session.providers import Password

client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])

# --8<-- [start:adapter]
adapter = MongoDBAdapter(
    client.get_default_database("app"),
    schema="authjs",  # the documents of @auth/mongodb-adapter (the default)
    collections={"users": "people"},  # any collection under another name
    operation_timeout=5.0,  # seconds before a call gives up with a 503 (the default)
)
# --8<-- [end:adapter]

# --8<-- [start:strategy]
strategy = DatabaseStrategy(
    cache=True,  # keep resolved sessions in memory while the change stream is live
    cache_size=20_000,  # sessions (and as many users) kept at most
    cache_bytes=32 * 1024 * 1024,  # and about this many bytes
)
# --8<-- [end:strategy]


async def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To {to}: {subject}\n{url}", flush=True)


config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    providers=[Password(send=send_email)],
    adapter=adapter,
    strategy=strategy,
)


async def home(request: Request) -> Response:
    session = request.state.session
    if session is None:
        return JSONResponse({"signedIn": False})
    return JSONResponse({"signedIn": True, "id": session.user.id, **session.to_dict()})


app = Starlette(routes=[Route("/", home)], middleware=[Middleware(AuthMiddleware, config=config)])
