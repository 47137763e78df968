"""An app ready for production: behind a reverse proxy, on a MongoDB replica set, run
as several processes or machines that share one database.

Run it with::

    pip install "asgi-session[mongodb,passwords]" uvicorn
    export AUTH_SECRET=...    # the same on every instance
    export MONGODB_URL="mongodb://db1,db2,db3/app?replicaSet=rs0"
    uvicorn deploy_app:app --host 0.0.0.0 --port 8000 --workers 4
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pymongo
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import MongoDBAdapter
from asgi_session.providers import Password

client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])
adapter = MongoDBAdapter(client.get_default_database("app"))


async def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To {to}: {subject}\n{url}", flush=True)


# --8<-- [start:secrets]
# The current secret encrypts and signs; while the previous one is still set as
# AUTH_SECRET_1, what it made (JWTs, CSRF tokens, sealed TOTP secrets, recovery codes)
# still works.
secrets = [os.environ["AUTH_SECRET"]]
if os.environ.get("AUTH_SECRET_1"):
    secrets.append(os.environ["AUTH_SECRET_1"])
# --8<-- [end:secrets]

# --8<-- [start:config]
config = AuthConfig(
    secret=secrets,
    providers=[Password(send=send_email)],
    adapter=adapter,  # sessions, and the rate limit counters, in the shared database
    # The proxy sets X-Forwarded-Host and X-Forwarded-Proto: URLs are built from them,
    # and cookies are Secure (__Secure-authjs.session-token) when the browser uses https.
    trust_host=True,
    # ...but only for the public name: any other forwarded host gets a 400.
    allowed_hosts=["app.example.com"],
    # The proxies' own addresses: only their X-Forwarded-For names the client whom
    # the per-address rate limits count.
    trusted_proxies=["10.0.0.0/8"],
)
# --8<-- [end:config]


async def home(request: Request) -> Response:
    session = request.state.session
    if session is None:
        return JSONResponse({"signedIn": False})
    return JSONResponse({"signedIn": True, "id": session.user.id, **session.to_dict()})


# --8<-- [start:health]
async def health(request: Request) -> Response:
    """For the load balancer: 200 while this instance can reach the database."""
    try:
        with pymongo.timeout(2):
            await client.admin.command("ping")
    except PyMongoError:
        return PlainTextResponse("database unreachable", status_code=503)
    return PlainTextResponse("ok")


# --8<-- [end:health]


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await adapter.ensure_indexes()
    yield
    await client.close()


app = Starlette(
    routes=[Route("/", home), Route("/healthz", health)],
    middleware=[Middleware(AuthMiddleware, config=config)],
    lifespan=lifespan,
)
