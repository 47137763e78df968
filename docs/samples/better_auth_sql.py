"""app.py: a Python API on the Better Auth app's PostgreSQL or SQLite tables."""

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, requires_session
from asgi_session.backends.better_auth import BetterAuthStrategy
from asgi_session.backends.sql import SQLAdapter

# postgresql://user:password@localhost/app (the URL auth.ts uses), or sqlite:///auth.db
database = SQLAdapter(os.environ["DATABASE_URL"], schema="better-auth")

config = AuthConfig(
    secret=os.environ["BETTER_AUTH_SECRET"],
    strategy=BetterAuthStrategy(database),  # Better Auth's defaults: 7 days, extended daily
)


@requires_session
async def me(request: Request) -> Response:
    user = request.state.session.user
    return JSONResponse({"id": user.id, "name": user.name, "email": user.email})


app = Starlette(
    routes=[Route("/api/me", me)],
    middleware=[Middleware(AuthMiddleware, config=config)],
)
