"""Users imported from a Node app: a Mongoose ``users`` collection whose ``password``
field holds bcrypt hashes made by the real npm ``bcryptjs`` package, on the real mongod.

``Password(hash_field="password")`` signs them in with the passwords they had; the hash
moves to an Auth.js account record, as a current argon2id hash, and never reaches a
session or a callback.
"""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from asgi_session import Callbacks, Events
from asgi_session.backends.mongodb import MongoDBAdapter
from tests.support.apps import client_for
from tests.support.node import run_node_script
from tests.support.passwords import (
    APP_URL,
    FAST_HASHER,
    Outbox,
    ask_reset,
    password_app,
    reset,
    sign_in,
    signed_in,
    whoami,
)

ADA = "ada's old passphrase"
# Typed on a Mac, stored by an app that did not normalise: "é" as e + combining accent.
GRACE = "cafe\u0301 au lait, s'il vous plait"
NEW_PASSWORD = "a brand new passphrase"


async def _import_users(db: Any, prefix: str) -> dict[str, str]:
    """Ada's and Grace's documents as the Node app left them; their hashes by email."""
    hashes = run_node_script(
        "bcryptjs_hash.mjs", {"passwords": [ADA, GRACE], "rounds": 10, "prefix": prefix}
    )
    assert [hashed[:4] for hashed in hashes] == [f"${prefix}$"] * 2
    users = {"ada@example.com": ("Ada", hashes[0]), "grace@example.com": ("Grace", hashes[1])}
    await db["users"].insert_many(
        [
            {"email": email, "name": name, "emailVerified": None, "password": hashed, "__v": 0}
            for email, (name, hashed) in users.items()
        ]
    )
    return {email: hashed for email, (_, hashed) in users.items()}


class Seen:
    """Everything callbacks and events were handed."""

    def __init__(self) -> None:
        self.arguments: list[Any] = []

    def jwt(self, token: dict[str, Any], user: Any) -> dict[str, Any]:
        self.arguments.append(user)
        return token

    def session(self, session: dict[str, Any], user: Any, token: Any) -> dict[str, Any]:
        self.arguments.extend([user, token])
        return session

    def sign_in_callback(self, user: Any, account: Any, credentials: Any) -> bool:
        self.arguments.extend([user, account, credentials])
        return True

    def event(self, **arguments: Any) -> None:
        self.arguments.append(arguments)


def _app(db: Any, strategy: Any, seen: Seen, outbox: Outbox | None = None) -> Any:
    return password_app(
        outbox or Outbox(),
        adapter=MongoDBAdapter(db),
        strategy=strategy,
        hash_field="password",
        config_callbacks=Callbacks(
            jwt=seen.jwt, session=seen.session, sign_in=seen.sign_in_callback
        ),
        config_events=Events(sign_in=seen.event, create_user=seen.event, update_user=seen.event),
    )


@pytest.mark.parametrize("prefix", ["2a", "2b"])
@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_an_imported_bcryptjs_hash_signs_in_and_moves_to_an_argon2id_account(
    mongo_db: Any, strategy: Any, prefix: str
) -> None:
    hashes = await _import_users(mongo_db, prefix)
    seen = Seen()
    app = _app(mongo_db, strategy, seen)
    async with client_for(app) as client:
        response = await sign_in(client, email="ada@example.com", password=ADA)
        assert response.headers["location"] == APP_URL
        assert signed_in(response)
        assert await whoami(client) == "ada@example.com"
        session = await client.get("/auth/session")
        assert session.json()["user"] == {"name": "Ada", "email": "ada@example.com"}
        page = (await client.get("/")).text
    ada = await mongo_db["users"].find_one({"email": "ada@example.com"})
    assert ada["password"] is None  # moved, not copied
    account = await mongo_db["accounts"].find_one({"userId": ada["_id"]})
    assert account == {
        "_id": account["_id"],
        "userId": ada["_id"],
        "type": "credentials",
        "provider": "password",
        "providerAccountId": str(ada["_id"]),
        "password": account["password"],
    }
    assert account["password"].startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert FAST_HASHER.verify(ADA, account["password"]).ok
    # Whatever the app, its callbacks and its events saw, no hash was in it.
    assert seen.arguments
    shown = repr(seen.arguments) + session.text + page
    for hashed in (hashes["ada@example.com"], account["password"]):
        assert hashed not in shown
    assert "$2" not in shown and "$argon2" not in shown
    if strategy == "jwt":
        assert seen.arguments[1] is not None and "password" not in seen.arguments[1]


async def test_an_imported_hash_refuses_a_wrong_password_and_stores_nothing(
    mongo_db: Any,
) -> None:
    await _import_users(mongo_db, "2a")
    app = _app(mongo_db, "jwt", Seen())
    async with client_for(app) as client:
        for email, password in (
            ("ada@example.com", "not ada's passphrase"),
            ("ada@example.com", ADA.upper()),
            ("grace@example.com", ADA),
        ):
            response = await sign_in(client, email=email, password=password)
            assert response.headers["location"] == (
                f"{APP_URL}/auth/signin?error=CredentialsSignin&code=credentials"
            )
            assert not signed_in(response)
    assert await mongo_db["accounts"].count_documents({}) == 0


async def test_a_password_the_node_app_did_not_normalise_still_signs_in(mongo_db: Any) -> None:
    await _import_users(mongo_db, "2a")
    app = _app(mongo_db, "jwt", Seen())
    async with client_for(app) as client:
        assert signed_in(await sign_in(client, email="grace@example.com", password=GRACE))
        client.cookies.clear()
        # Stored as NFKC from now on: either way of typing "é" is the same password.
        composed = "caf\u00e9 au lait, s'il vous plait"
        assert signed_in(await sign_in(client, email="grace@example.com", password=composed))


async def test_once_moved_the_account_hash_is_the_one_that_counts(mongo_db: Any) -> None:
    await _import_users(mongo_db, "2a")
    outbox = Outbox()
    app = _app(mongo_db, "jwt", Seen(), outbox)
    async with client_for(app) as client:
        assert signed_in(await sign_in(client, email="ada@example.com", password=ADA))
        client.cookies.clear()
        # The Node app's field no longer decides anything.
        await mongo_db["users"].update_one(
            {"email": "ada@example.com"}, {"$set": {"password": "not a hash"}}
        )
        assert signed_in(await sign_in(client, email="ada@example.com", password=ADA))
        client.cookies.clear()

        await ask_reset(client, "ada@example.com")
        assert signed_in(await reset(client, outbox.last(), NEW_PASSWORD))
        client.cookies.clear()
        assert not signed_in(await sign_in(client, email="ada@example.com", password=ADA))
        assert signed_in(await sign_in(client, email="ada@example.com", password=NEW_PASSWORD))
    ada = await mongo_db["users"].find_one({"email": "ada@example.com"})
    assert isinstance(ada["_id"], ObjectId)
    assert await mongo_db["accounts"].count_documents({}) == 1


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_reset_moves_an_imported_hash_out_of_sight_too(
    mongo_db: Any, strategy: Any
) -> None:
    """Grace never signed in here: her first password is set by a reset link."""
    hashes = await _import_users(mongo_db, "2b")
    seen = Seen()
    outbox = Outbox()
    app = _app(mongo_db, strategy, seen, outbox)
    async with client_for(app) as client:
        await ask_reset(client, "grace@example.com")
        assert signed_in(await reset(client, outbox.last(), NEW_PASSWORD))
        session = await client.get("/auth/session")
        assert session.json()["user"]["email"] == "grace@example.com"
        client.cookies.clear()
        assert not signed_in(await sign_in(client, email="grace@example.com", password=GRACE))
    grace = await mongo_db["users"].find_one({"email": "grace@example.com"})
    assert grace["password"] is None
    assert hashes["grace@example.com"] not in repr(seen.arguments) + session.text
    assert "$2" not in repr(seen.arguments)
