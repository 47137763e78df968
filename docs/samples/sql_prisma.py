"""A Python service on the tables a Next.js app's Prisma schema made (PostgreSQL)."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends.sql import SQLAdapter
from asgi_session.providers import Password

# --8<-- [start:adapter]
adapter = SQLAdapter(os.environ["DATABASE_URL"], schema="prisma")
# --8<-- [end:adapter]


async def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To {to}: {subject}\n{url}", flush=True)


config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    providers=[Password(send=send_email)],
    adapter=adapter,
)


async def home(request: Request) -> Response:
    session = request.state.session
    if session is None:
        return JSONResponse({"signedIn": False})
    return JSONResponse({"signedIn": True, "id": session.user.id, **session.to_dict()})


# --8<-- [start:lifespan]
@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # Prisma owns "User", "Account", "Session"...: make only this package's own tables
    # (asgi_session_*), and stop here if Prisma's do not have the preset's columns.
    await adapter.create_tables()
    yield
    await adapter.close()


# --8<-- [end:lifespan]

app = Starlette(
    routes=[Route("/", home)],
    middleware=[Middleware(AuthMiddleware, config=config)],
    lifespan=lifespan,
)
