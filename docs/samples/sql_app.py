"""Email and password accounts with their sessions in PostgreSQL or SQLite.

Run it with::

    pip install "asgi-session[sql,passwords]" uvicorn
    export AUTH_SECRET="$(python -m asgi_session secret)"
    export AUTH_URL=http://localhost:8000
    export DATABASE_URL=sqlite+aiosqlite:///auth.db   # or postgresql+asyncpg://app@db/app
    uvicorn sql_app:app
"""

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
# Drizzle's tables (the default preset). Making the adapter opens no connection.
adapter = SQLAdapter(os.environ["DATABASE_URL"])
# --8<-- [end:adapter]


async def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    """Stand in for a mailer: verification and reset links go to the console."""
    print(f"To {to}: {subject}\n{url}", flush=True)


config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    providers=[Password(send=send_email)],
    adapter=adapter,  # sessions are rows of the "session" table
)


async def home(request: Request) -> Response:
    session = request.state.session
    if session is None:
        return JSONResponse({"signedIn": False, "signIn": "/auth/signin"})
    return JSONResponse({"signedIn": True, "id": session.user.id, **session.to_dict()})


# --8<-- [start:lifespan]
@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # Creates the tables that are missing, and only those; checks the others.
    await adapter.create_tables()
    yield
    await adapter.close()


# --8<-- [end:lifespan]

app = Starlette(
    routes=[Route("/", home)],
    middleware=[Middleware(AuthMiddleware, config=config)],
    lifespan=lifespan,
)
