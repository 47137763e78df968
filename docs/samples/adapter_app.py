"""An app on an adapter of your own: users, accounts and database sessions in it."""

import os

from custom_adapter import DictAdapter  # your adapter's module
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.providers import Password


async def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"Email to {to} ({subject}): {url}", flush=True)  # your mail service here


async def home(request: Request) -> Response:
    session = request.state.session
    return JSONResponse(None if session is None else {"id": session.user.id, **session.to_dict()})


# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ["AUTH_URL"],
    adapter=DictAdapter(),  # strategy="database" by default with an adapter
    providers=[Password(send=send_email)],
)
# --8<-- [end:config]
app = Starlette(routes=[Route("/", home)], middleware=[Middleware(AuthMiddleware, config=config)])
