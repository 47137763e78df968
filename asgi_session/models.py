"""Records kept by an adapter: users, accounts, database sessions, verification tokens,
and the authenticators (passkeys) of adapters that keep them.

Python code sees snake_case names and string ids; an adapter stores them the way
Auth.js's adapters do (``emailVerified``, ``userId``, ``providerAccountId``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The records are public; the field maps and as_mapping serve the adapters.
__all__ = ["Account", "Authenticator", "SessionRecord", "User", "VerificationToken"]

# Python name -> the name Auth.js's adapters store. Anything else is an "extra" field,
# stored under its own name.
USER_FIELDS: Mapping[str, str] = {
    "name": "name",
    "email": "email",
    "image": "image",
    "email_verified": "emailVerified",
}
ACCOUNT_FIELDS: Mapping[str, str] = {
    "user_id": "userId",
    "type": "type",
    "provider": "provider",
    "provider_account_id": "providerAccountId",
    "access_token": "access_token",
    "refresh_token": "refresh_token",
    "expires_at": "expires_at",
    "token_type": "token_type",
    "scope": "scope",
    "id_token": "id_token",
    "session_state": "session_state",
}
SESSION_FIELDS: Mapping[str, str] = {
    "session_token": "sessionToken",
    "user_id": "userId",
    "expires": "expires",
    "created_at": "createdAt",
    "last_seen_at": "lastSeenAt",
    "user_agent": "userAgent",
}
VERIFICATION_FIELDS: Mapping[str, str] = {
    "identifier": "identifier",
    "token": "token",
    "expires": "expires",
}
# Auth.js's Authenticator (as its Prisma, Drizzle... adapters store it), and two fields of
# ours that it passes through: a name the user gave the passkey, and when it was last used.
AUTHENTICATOR_FIELDS: Mapping[str, str] = {
    "credential_id": "credentialID",
    "user_id": "userId",
    "provider_account_id": "providerAccountId",
    "credential_public_key": "credentialPublicKey",
    "counter": "counter",
    "credential_device_type": "credentialDeviceType",
    "credential_backed_up": "credentialBackedUp",
    "transports": "transports",
    "name": "name",
    "created_at": "createdAt",
    "last_used_at": "lastUsedAt",
}


@dataclass(slots=True)
class User:
    """A person who can sign in."""

    id: str
    name: str | None = None
    email: str | None = None
    image: str | None = None
    email_verified: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The user as a plain mapping: Python-side names, extra fields merged in."""
        data: dict[str, Any] = dict(self.extra)
        data.update(
            id=self.id,
            name=self.name,
            email=self.email,
            image=self.image,
            email_verified=self.email_verified,
        )
        return data


@dataclass(slots=True)
class Account:
    """A provider account linked to a user (an OAuth login, an email address...)."""

    user_id: str
    type: str
    provider: str
    provider_account_id: str
    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: int | None = None
    token_type: str | None = None
    scope: str | None = None
    id_token: str | None = None
    session_state: str | None = None
    id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SessionRecord:
    """A database session: the opaque token in the cookie and what it stands for."""

    session_token: str
    user_id: str
    expires: datetime
    created_at: datetime | None = None
    last_seen_at: datetime | None = None
    user_agent: str | None = None
    id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class VerificationToken:
    """A single-use token proving control of an identifier (an email address)."""

    identifier: str
    token: str
    expires: datetime


@dataclass(slots=True)
class Authenticator:
    """A WebAuthn credential (a passkey) registered to a user, as Auth.js stores it.

    ``credential_id`` and ``credential_public_key`` are standard base64 with padding, as
    Auth.js writes them. ``counter`` is the signature counter last seen: an assertion
    whose counter does not go up comes from a cloned authenticator or is a replay (those
    that keep no counter always send 0). ``transports`` is comma-joined
    (``"internal,hybrid"``). ``credential_device_type`` is ``"singleDevice"`` or
    ``"multiDevice"``, ``credential_backed_up`` whether the credential is synced.
    """

    credential_id: str
    user_id: str
    provider_account_id: str
    credential_public_key: str
    counter: int
    credential_device_type: str
    credential_backed_up: bool
    transports: str | None = None
    name: str | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def as_mapping(value: Mapping[str, Any] | Any) -> dict[str, Any]:
    """Accept a mapping or one of the dataclasses above and return a plain dict."""
    if isinstance(value, Mapping):
        return dict(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, dict):
            return result
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        data = {name: getattr(value, name) for name in fields if name != "extra"}
        data.update(getattr(value, "extra", {}) or {})
        return data
    raise TypeError(f"expected a mapping or a record, got {type(value).__name__}")
