"""JWT sessions that can still be ended: an adapter keeps each user's revocation cut-off."""

import os
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, requires_session
from asgi_session.backends import JWTStrategy, MongoDBAdapter
from asgi_session.providers import Password


def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To: {to}\nSubject: {subject}\n\n{text}\n", flush=True)


client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])

# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ.get("AUTH_URL", "http://localhost:8000"),
    adapter=MongoDBAdapter(client.get_default_database("app")),  # users, and the cut-offs
    # Sessions stay in the cookie; each instance reads a user's cut-off at most every 30 s.
    strategy=JWTStrategy(revocation_check_interval=30),
    providers=[Password(send=send_email)],
)
# --8<-- [end:config]


@requires_session
async def home(request: Request) -> Response:
    return JSONResponse({"email": request.state.session.user.email})


app = Starlette(
    routes=[Route("/", home)],
    middleware=[Middleware(AuthMiddleware, config=config)],
)
