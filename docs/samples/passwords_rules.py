"""Password rules of the app's own on top of NIST's, and the hashing tuned."""

import os
from collections.abc import Mapping
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import MongoDBAdapter
from asgi_session.passwords import PasswordHasher, PasswordRules
from asgi_session.providers import Password


def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To: {to}\nSubject: {subject}\n\n{text}\n", flush=True)


# --8<-- [start:rules]
def not_about_us(password: str, user: Mapping[str, Any]) -> str | None:
    """Refuse passwords made of the product's name: the first thing an attacker tries."""
    if "acme" in password.casefold():
        return "Choose a password that does not contain the name of this site."
    return None


rules = PasswordRules(
    min_length=12,  # NIST's minimum is 8; 15 when the password is the only factor
    rule=not_about_us,
)
# --8<-- [end:rules]

# --8<-- [start:hasher]
hasher = PasswordHasher(
    max_threads=2,  # at most two hashes at once, whatever the number of CPUs
)
# --8<-- [end:hasher]

client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])

config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ.get("AUTH_URL", "http://localhost:8000"),
    adapter=MongoDBAdapter(client.get_default_database("app")),
    providers=[Password(send=send_email, rules=rules, hasher=hasher)],
)

app = Starlette(middleware=[Middleware(AuthMiddleware, config=config)])
