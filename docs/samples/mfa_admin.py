"""Second factors from the app's own code: a support tool for a user who lost their phone,
and enrolment on a settings page of the app's own."""

import os
from typing import Any

from pymongo import AsyncMongoClient

from asgi_session import AuthConfig, TwoFactor
from asgi_session.backends import MongoDBAdapter
from asgi_session.management import end_all_sessions
from asgi_session.mfa import (
    enable_totp,
    new_totp_secret,
    reset_second_factors,
    second_factors,
    totp_uri,
)
from asgi_session.providers import Passkey

client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ.get("AUTH_URL", "http://localhost:8000"),
    adapter=MongoDBAdapter(client.get_default_database("app")),
    providers=[Passkey()],
    two_factor=TwoFactor(),
)


# --8<-- [start:lost_phone]
async def lost_phone(user_id: str, *, stolen: bool) -> None:
    """Support has checked who is asking: let them sign in with their password alone."""
    before = await second_factors(config, user_id)
    print(f"TOTP on: {before.totp}, recovery codes left: {before.recovery_codes_left}")
    await reset_second_factors(config, user_id)  # passkeys=False keeps the passkeys
    if stolen:
        await end_all_sessions(config, user_id)  # sign the thief out everywhere


# --8<-- [end:lost_phone]


# --8<-- [start:enrol]
def start_enrolment(email: str) -> tuple[str, str]:
    """A new secret to keep (in the session, say) and the URI to show as a QR code."""
    secret = new_totp_secret()
    return secret, totp_uri(config, secret, account=email)


async def finish_enrolment(user_id: str, secret: str, code: str) -> list[str] | None:
    """The recovery codes to show once, or None when the code was wrong."""
    return await enable_totp(config, user_id, secret, code)


# --8<-- [end:enrol]
