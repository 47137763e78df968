"""Sign-in links by email ("magic links"): no password, the inbox is the proof."""

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import MemoryAdapter
from asgi_session.providers import Email


# --8<-- [start:send]
async def send_magic_link(identifier: str, url: str, request: Request) -> None:
    """Deliver the link. Here it is printed; a real app hands it to its mail service."""
    print(f"Sign-in link for {identifier}: {url}", flush=True)


# --8<-- [end:send]


async def home(request: Request) -> Response:
    session = request.state.session
    return JSONResponse(None if session is None else {"id": session.user.id, **session.to_dict()})


# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ["AUTH_URL"],  # links are built from it, never from a request's Host
    adapter=MemoryAdapter(),  # keeps the links' tokens and the users: use a database
    providers=[Email(send=send_magic_link)],
)
# --8<-- [end:config]
app = Starlette(routes=[Route("/", home)], middleware=[Middleware(AuthMiddleware, config=config)])
