"""An app answering on many subdomains (one per customer), served directly: the hosts it
answers, the other origin whose pages may post to it, and rate limits of its own."""

import os
from collections.abc import Mapping
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request

from asgi_session import AuthConfig, AuthMiddleware, RateLimit, RateLimits
from asgi_session.passwords import PasswordHasher
from asgi_session.providers import Credentials

client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])
members = client.get_default_database("app")["members"]  # the app's own user table
hasher = PasswordHasher()


async def authorize(credentials: Mapping[str, str], request: Request) -> dict[str, Any] | None:
    member = await members.find_one({"email": credentials.get("email", "").lower()})
    stored = None if member is None else member["password_hash"]
    # An unknown address costs the same work as a wrong password: nothing to tell apart.
    if not (await hasher.verify_async(credentials.get("password", ""), stored)).ok:
        return None
    assert member is not None
    return {"id": str(member["_id"]), "email": member["email"]}


# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    providers=[Credentials(authorize=authorize)],
    # No url (each customer has a host of their own), so the routes build their URLs
    # from the request's Host: only these hosts are answered, any other gets a 400.
    allowed_hosts=[".example.com"],  # the domain and its subdomains
    # A front end on another origin whose pages post to /auth/* (sign-in, sign-out).
    trusted_origins=["https://shop.example.com"],
    rate_limits=RateLimits(
        failed_sign_in_per_identifier=RateLimit(3, 15 * 60),  # stricter: 3 per 15 minutes
        oauth_per_ip=None,  # no limit on OAuth sign-ins (there are none here)
    ),
)
# --8<-- [end:config]

app = Starlette(middleware=[Middleware(AuthMiddleware, config=config)])
