"""An engine of your own: tables in another PostgreSQL schema, under other names."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends.sql import SQLAdapter
from asgi_session.providers import Password

# --8<-- [start:engine]
engine = create_async_engine(
    os.environ["DATABASE_URL"],  # postgresql+asyncpg://...
    pool_pre_ping=True,  # a connection that died during an outage is replaced, not used
    pool_size=10,
    # Every connection finds (and creates) its tables in the schema "auth" first, as
    # Drizzle's pgSchema("auth") puts them there.
    connect_args={"server_settings": {"search_path": "auth"}},
)
adapter = SQLAdapter(
    engine,
    tables={"users": "app_users", "sessions": "app_sessions"},  # the rest keep their names
    operation_timeout=5.0,  # seconds before a call gives up with a 503 (the default)
)
# --8<-- [end:engine]


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


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await adapter.create_tables()
    yield
    await engine.dispose()  # the engine is yours: adapter.close() leaves it open


app = Starlette(
    routes=[Route("/", home)],
    middleware=[Middleware(AuthMiddleware, config=config)],
    lifespan=lifespan,
)
