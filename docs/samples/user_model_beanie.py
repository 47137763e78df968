"""The app's own Beanie document on the users collection asgi-session keeps."""

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from beanie import Document, init_beanie
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, Callbacks
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.providers import Password


# --8<-- [start:model]
class User(Document):
    name: str | None = None
    email: str | None = None
    emailVerified: datetime | None = None  # Auth.js's field names
    image: str | None = None
    role: str = "member"  # the app's own

    class Settings:
        name = "users"  # the collection asgi-session (and Auth.js) keep users in


async def make_admin(email: str) -> None:
    """The app's own code, changing only its own field."""
    user = await User.find_one(User.email == email)
    if user is not None:
        await user.set({User.role: "admin"})  # $set: every other field stays


# --8<-- [end:model]
# --8<-- [start:callback]
def session(session: dict[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """A user asgi-session created has no role until the app sets one."""
    return {**session, "user": {**session["user"], "role": user.get("role", "member")}}


# --8<-- [end:callback]


async def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"Email to {to} ({subject}): {url}", flush=True)  # your mail service here


async def home(request: Request) -> Response:
    session = request.state.session
    return JSONResponse(None if session is None else session.to_dict())


# --8<-- [start:config]
# The database is the URL's: mongodb://localhost:27017/app
database = AsyncMongoClient[dict[str, Any]](os.environ["MONGODB_URL"]).get_default_database()
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ["AUTH_URL"],
    adapter=MongoDBAdapter(database),
    providers=[Password(send=send_email)],
    callbacks=Callbacks(session=session),
)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await init_beanie(database=database, document_models=[User])
    yield


# --8<-- [end:config]
app = Starlette(
    routes=[Route("/", home)],
    middleware=[Middleware(AuthMiddleware, config=config)],
    lifespan=lifespan,
)
