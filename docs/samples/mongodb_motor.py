"""The same app on Motor, for a codebase that already uses it.

Run it with::

    pip install "asgi-session[motor,passwords]" uvicorn
    uvicorn mongodb_motor:app
"""

import os
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import MongoDBAdapter
from asgi_session.providers import Password

# --8<-- [start:adapter]
client: AsyncIOMotorClient[dict[str, Any]] = AsyncIOMotorClient(os.environ["MONGODB_URL"])
adapter = MongoDBAdapter(client.get_default_database("app"))
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


app = Starlette(routes=[Route("/", home)], middleware=[Middleware(AuthMiddleware, config=config)])
