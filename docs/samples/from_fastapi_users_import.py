"""Copy the users of a fastapi-users app into asgi-session's tables, password hashes and all.

Run once (it skips users already copied, so running it again is safe):

    DATABASE_URL=postgresql+asyncpg://app@db/app python from_fastapi_users_import.py
"""

import asyncio
import os
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from asgi_session.backends.sql import SQLAdapter

# fastapi-users' SQLAlchemyBaseUserTableUUID: the table "user".
FASTAPI_USERS = text(
    'SELECT id, email, hashed_password, is_active, is_superuser, is_verified FROM "user"'
)


# --8<-- [start:import]
async def import_users(database_url: str, adapter: SQLAdapter) -> int:
    """Copy every fastapi-users user not copied yet; how many were copied."""
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        rows = (await connection.execute(FASTAPI_USERS)).all()
    await engine.dispose()

    await adapter.create_tables()  # only those missing
    imported = 0
    for row in rows:
        email = row.email.strip().lower()  # looked up lower-cased here
        if await adapter.get_user_by_email(email) is not None:
            continue
        user = await adapter.create_user(
            {
                "email": email,
                # fastapi-users keeps no date; the import vouches for the address.
                "email_verified": datetime.now(UTC) if row.is_verified else None,
                "is_active": bool(row.is_active),
                "is_superuser": bool(row.is_superuser),
                "fastapi_users_id": str(row.id),  # for rows elsewhere that name the old id
            }
        )
        await adapter.link_account(
            {
                "user_id": user.id,
                "type": "credentials",
                "provider": "password",
                "provider_account_id": user.id,
                "password": row.hashed_password,  # argon2 or bcrypt, verified as it is
            }
        )
        imported += 1
    return imported


# --8<-- [end:import]


async def main() -> None:
    url = os.environ["DATABASE_URL"]
    adapter = SQLAdapter(url, tables={"users": "auth_user"})  # as in the app
    try:
        print(f"imported {await import_users(url, adapter)} users")
    finally:
        await adapter.close()


if __name__ == "__main__":
    asyncio.run(main())
