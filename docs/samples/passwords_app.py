"""Email and password accounts: sign-up, a confirmation link, sign-in, "Forgot password?".

Run it with ``uvicorn passwords_app:app`` and open http://localhost:8000/auth/signup.
"""

import os
from html import escape
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, requires_session
from asgi_session.backends import MongoDBAdapter
from asgi_session.providers import Password


# --8<-- [start:send]
async def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    """Deliver one email. Until a mailer is wired in, print it: the link is in `text`."""
    print(f"To: {to}\nSubject: {subject}\n\n{text}\n", flush=True)


# --8<-- [end:send]

# --8<-- [start:config]
# The database named in MONGODB_URL (mongodb://host/mydb), else "app".
client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])
database = client.get_default_database("app")

config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ.get("AUTH_URL", "http://localhost:8000"),
    adapter=MongoDBAdapter(database),
    providers=[Password(send=send_email, require_verified_email=True)],
)
# --8<-- [end:config]


# --8<-- [start:pages]
@requires_session
async def home(request: Request) -> Response:
    user = request.state.session.user
    return HTMLResponse(
        f"<p>Signed in as {escape(user.email or '')}.</p>"
        '<p><a href="/auth/password/change">Change password</a> · '
        '<a href="/auth/signout">Sign out</a></p>'
    )


app = Starlette(
    routes=[Route("/", home)],
    middleware=[Middleware(AuthMiddleware, config=config)],
)
# --8<-- [end:pages]
