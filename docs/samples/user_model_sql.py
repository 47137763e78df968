"""The app's own SQLAlchemy model on the users table asgi-session keeps (PostgreSQL)."""

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, Callbacks
from asgi_session.backends.sql import SQLAdapter
from asgi_session.providers import Password


# --8<-- [start:model]
class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "user"  # the users table of the default ("drizzle") preset

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text, unique=True)
    email_verified: Mapped[datetime | None] = mapped_column("emailVerified", DateTime)
    image: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text, server_default="member")  # the app's own


# --8<-- [end:model]
# --8<-- [start:callback]
def session(session: dict[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """user["role"] is the app's column, read with the rest of the user."""
    return {**session, "user": {**session["user"], "role": user["role"]}}


# --8<-- [end:callback]


async def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"Email to {to} ({subject}): {url}", flush=True)  # your mail service here


async def home(request: Request) -> Response:
    session = request.state.session
    return JSONResponse(None if session is None else session.to_dict())


# --8<-- [start:config]
adapter = SQLAdapter(os.environ["DATABASE_URL"])  # e.g. postgresql+asyncpg://app@db/app
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ["AUTH_URL"],
    adapter=adapter,  # database sessions: each request reads the user, role included
    providers=[Password(send=send_email)],
    callbacks=Callbacks(session=session),
)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # Stands in for your migrations: the app's table first, then the ones still missing.
    async with adapter.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    await adapter.create_tables()
    yield
    await adapter.close()


# --8<-- [end:config]
app = Starlette(
    routes=[Route("/", home)],
    middleware=[Middleware(AuthMiddleware, config=config)],
    lifespan=lifespan,
)
