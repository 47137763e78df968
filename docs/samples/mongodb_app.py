"""Email and password accounts with their sessions stored in MongoDB.

Run it with::

    pip install "asgi-session[mongodb,passwords]" uvicorn
    export AUTH_SECRET="$(python -m asgi_session secret)"
    export AUTH_URL=http://localhost:8000
    export MONGODB_URL="mongodb://localhost:27017/app?replicaSet=rs0"
    uvicorn mongodb_app:app
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import MongoDBAdapter
from asgi_session.providers import Password

# --8<-- [start:adapter]
# One client for the whole process: it holds the connection pool. Connecting happens
# in the background on first use, never here at import time.
client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])
# The database named in the URL's path (".../app?..."), else "app".
adapter = MongoDBAdapter(client.get_default_database("app"))
# --8<-- [end:adapter]


async def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    """Stand in for a mailer: verification and reset links go to the console."""
    print(f"To {to}: {subject}\n{url}", flush=True)


# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    providers=[Password(send=send_email)],
    adapter=adapter,  # with an adapter, sessions are stored: strategy="database"
)
# --8<-- [end:config]


async def home(request: Request) -> Response:
    session = request.state.session
    if session is None:
        return JSONResponse({"signedIn": False, "signIn": "/auth/signin"})
    return JSONResponse({"signedIn": True, "id": session.user.id, **session.to_dict()})


# --8<-- [start:lifespan]
@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # Made on first use anyway; at start-up, a database that cannot take them (duplicate
    # emails left by another app) stops the app here rather than failing a sign-in.
    await adapter.ensure_indexes()
    yield
    await client.close()


# --8<-- [end:lifespan]

app = Starlette(
    routes=[Route("/", home)],
    middleware=[Middleware(AuthMiddleware, config=config)],
    lifespan=lifespan,
)
