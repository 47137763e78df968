"""Behind a reverse proxy that ends TLS: the public URL, and which peers may say who
the client is."""

import os
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import MongoDBAdapter
from asgi_session.providers import Password


def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To: {to}\nSubject: {subject}\n\n{text}\n", flush=True)


client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])

# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    # Every URL is built from this, never from the request: cookies are Secure (with
    # __Secure- and __Host- names) even though the proxy talks plain http to the app.
    url="https://app.example.com",
    # Only the proxies' X-Forwarded-For names the client, for the per-address limits.
    trusted_proxies=["10.0.0.0/8"],
    adapter=MongoDBAdapter(client.get_default_database("app")),
    providers=[Password(send=send_email)],
)
# --8<-- [end:config]

app = Starlette(middleware=[Middleware(AuthMiddleware, config=config)])
