"""Users who already have passwords: hashes another app made keep working."""

import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import Adapter, MongoDBAdapter
from asgi_session.providers import Password


def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To: {to}\nSubject: {subject}\n\n{text}\n", flush=True)


client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])
adapter = MongoDBAdapter(client.get_default_database("app"))

# --8<-- [start:hash_field]
# The Node app's users carry their bcrypt hash in a "password" field of their own.
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ.get("AUTH_URL", "http://localhost:8000"),
    adapter=adapter,
    providers=[Password(send=send_email, hash_field="password")],
)
# --8<-- [end:hash_field]

app = Starlette(middleware=[Middleware(AuthMiddleware, config=config)])


# --8<-- [start:import]
async def import_users(adapter: Adapter, rows: Iterable[Mapping[str, str]]) -> int:
    """Store users exported from elsewhere (`email`, `name`, `hash`), each with its hash
    where the Password provider keeps it. Returns how many were new."""
    added = 0
    for row in rows:
        email = row["email"].strip().lower()  # addresses are looked up lower-cased
        if await adapter.get_user_by_email(email) is not None:
            continue
        user = await adapter.create_user(
            # The old app confirmed its addresses; say None where it did not.
            {"email": email, "name": row.get("name"), "email_verified": datetime.now(UTC)}
        )
        await adapter.link_account(
            {
                "user_id": user.id,
                "type": "credentials",
                "provider": "password",
                "provider_account_id": user.id,
                "password": row["hash"],  # bcrypt, argon2 or Better Auth's scrypt
            }
        )
        added += 1
    return added


# --8<-- [end:import]
