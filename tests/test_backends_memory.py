"""MemoryAdapter: what it keeps beyond the adapter contract, and database sessions through it.

The contract every adapter keeps is tested in test_backends_adapter.py.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from asgi_session import AuthConfig, ConfigurationError
from asgi_session.backends import DatabaseStrategy, MemoryAdapter
from asgi_session.models import User, VerificationToken
from tests.support.apps import SECRET, Clock, build_app, client_for, csrf_token, sign_in
from tests.support.records import UNKNOWN_ID, account_data, later, make_session, make_user

SESSION_COOKIE = "authjs.session-token"


@pytest.fixture
def memory() -> MemoryAdapter:
    return MemoryAdapter()


async def test_each_call_lets_other_tasks_run(memory: MemoryAdapter) -> None:
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    task = asyncio.create_task(other())
    await memory.get_user(UNKNOWN_ID)

    assert ran == ["other"], "the call yielded to the event loop, as a round trip would"
    await task


# -- expired records ---------------------------------------------------------------------
# On MongoDB the TTL monitor may remove an expired record at any moment, which would
# make these flaky there; test_backends_mongodb.py checks the session case on a raw
# document the monitor has not yet seen.


async def test_get_session_and_user_neither_checks_nor_deletes_expired(
    memory: MemoryAdapter,
) -> None:
    user = await make_user(memory)
    old = await make_session(memory, user, "old", expires=datetime(2020, 1, 1))

    found = await memory.get_session_and_user("old")

    assert found is not None
    assert found[0] == old
    assert found[0].expires == datetime(2020, 1, 1, tzinfo=UTC)
    assert [s.session_token for s in await memory.list_sessions(user.id)] == ["old"]


async def test_expired_verification_token_is_still_returned(memory: MemoryAdapter) -> None:
    past = later(hours=-1)
    await memory.create_verification_token({"identifier": "i", "token": "t", "expires": past})

    used = await memory.use_verification_token(identifier="i", token="t")

    assert used == VerificationToken("i", "t", past), "the caller checks expiry"


# -- copies ------------------------------------------------------------------------------


async def test_changing_returned_records_does_not_change_the_store(
    memory: MemoryAdapter,
) -> None:
    user = await make_user(memory, tags=["a"])
    session = await make_session(memory, user, "tok", data={"claims": {"role": "user"}})
    account = await memory.link_account(account_data(user, scopes=["read"]))

    user.name = "Mallory"
    user.extra["tags"].append("b")
    session.extra["data"]["claims"]["role"] = "admin"
    account.extra["scopes"].append("write")
    account.access_token = "stolen"

    assert await memory.get_user(user.id) == User(
        id=user.id, name="Ada", email="ada@example.com", extra={"tags": ["a"]}
    )
    found = await memory.get_session_and_user("tok")
    assert found is not None and found[0].extra == {"data": {"claims": {"role": "user"}}}
    stored = await memory.get_account(provider="github", provider_account_id="gh-1")
    assert stored is not None
    assert (stored.access_token, stored.extra) == ("at-1", {"scopes": ["read"]})


async def test_changing_an_input_after_storing_it_does_not_change_the_store(
    memory: MemoryAdapter,
) -> None:
    data: dict[str, Any] = {"email": "ada@example.com", "prefs": {"theme": "dark"}}
    user = await memory.create_user(data)
    claims: dict[str, Any] = {"role": "user"}
    await make_session(memory, user, "tok", data=claims)

    data["prefs"]["theme"] = "light"
    claims["role"] = "admin"

    stored = await memory.get_user(user.id)
    assert stored is not None and stored.extra == {"prefs": {"theme": "dark"}}
    found = await memory.get_session_and_user("tok")
    assert found is not None and found[0].extra == {"data": {"role": "user"}}


async def test_authenticators_handed_in_and_out_are_copies(memory: MemoryAdapter) -> None:
    user = await make_user(memory)
    flags: list[str] = ["uv"]
    created = await memory.create_authenticator(
        {
            "credential_id": "AAECAwQFBgcICQoLDA0ODw==",
            "user_id": user.id,
            "provider_account_id": "AAECAwQFBgcICQoLDA0ODw==",
            "credential_public_key": "pQECAyYgASFYIA==",
            "counter": 1,
            "credential_device_type": "singleDevice",
            "credential_backed_up": False,
            "flags": flags,
        }
    )

    flags.append("be")
    created.counter = 0
    created.extra["flags"].append("changed")
    listed = await memory.list_authenticators_by_user_id(user.id)
    listed[0].name = "Mallory's"

    stored = await memory.get_authenticator("AAECAwQFBgcICQoLDA0ODw==")
    assert stored is not None
    assert (stored.counter, stored.name, stored.extra) == (1, None, {"flags": ["uv"]})
    assert await memory.update_authenticator_counter("AAECAwQFBgcICQoLDA0ODw==", 1) is None


# -- expiry ------------------------------------------------------------------------------


async def test_purge_expired_removes_only_expired_sessions_and_tokens(
    memory: MemoryAdapter,
) -> None:
    user = await make_user(memory)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    await make_session(memory, user, "expired", expires=now - timedelta(seconds=1))
    await make_session(memory, user, "at-the-moment", expires=now)
    await make_session(memory, user, "valid", expires=now + timedelta(seconds=1))
    await memory.create_verification_token({"identifier": "i", "token": "old", "expires": now})
    await memory.create_verification_token(
        {"identifier": "i", "token": "new", "expires": now + timedelta(hours=1)}
    )

    assert await memory.purge_expired(now) == 3

    assert [s.session_token for s in await memory.list_sessions(user.id)] == ["valid"]
    assert await memory.use_verification_token(identifier="i", token="old") is None
    assert await memory.use_verification_token(identifier="i", token="new") is not None
    assert await memory.get_user(user.id) == user


async def test_purge_expired_defaults_to_the_current_time(memory: MemoryAdapter) -> None:
    user = await make_user(memory)
    await make_session(memory, user, "expired", expires=later(seconds=-1))
    await make_session(memory, user, "valid", expires=later(hours=1))

    assert await memory.purge_expired() == 1
    assert [s.session_token for s in await memory.list_sessions(user.id)] == ["valid"]


async def test_purge_expired_defaults_to_the_adapters_clock() -> None:
    clock = Clock(start=1_900_000_000)
    memory = MemoryAdapter(clock=clock)
    expires = datetime.fromtimestamp(clock.now + 60, UTC)
    await memory.create_verification_token({"identifier": "i", "token": "t", "expires": expires})

    assert await memory.purge_expired() == 0
    clock.advance(60)
    assert await memory.purge_expired() == 1
    assert await memory.use_verification_token(identifier="i", token="t") is None


def _token(number: int, expires: datetime) -> dict[str, Any]:
    return {"identifier": f"user{number}@example.com", "token": f"t{number}", "expires": expires}


async def test_expired_records_are_swept_as_records_are_written() -> None:
    clock = Clock(start=1_900_000_000)
    memory = MemoryAdapter(clock=clock)
    soon = datetime.fromtimestamp(clock.now + 60, UTC)
    user = await make_user(memory)
    await make_session(memory, user, "expired", expires=soon)
    await make_session(memory, user, "valid", expires=soon + timedelta(days=30))
    await memory.create_verification_token(_token(0, soon))
    clock.advance(61)
    tomorrow = datetime.fromtimestamp(clock.now + 24 * 3600, UTC)

    await memory.create_verification_token(_token(1, tomorrow))
    # Swept now and then, not on each write: no request pays for a scan of the store.
    assert await memory.get_session_and_user("expired") is not None
    written = 1
    while await memory.get_session_and_user("expired") is not None:
        written += 1
        assert written <= 1_000, "expired records outlived a thousand writes"
        await memory.create_verification_token(_token(written, tomorrow))

    assert await memory.use_verification_token(identifier="user0@example.com", token="t0") is None
    assert await memory.get_session_and_user("valid") is not None
    for number in range(1, written + 1):
        assert await memory.use_verification_token(
            identifier=f"user{number}@example.com", token=f"t{number}"
        ), "nothing unexpired was swept"
    assert await memory.get_user(user.id) == user


async def test_verification_tokens_are_bounded_oldest_first() -> None:
    memory = MemoryAdapter(max_verification_tokens=3)
    expires = later(hours=1)
    for number in range(5):
        await memory.create_verification_token(_token(number, expires))

    for number in (0, 1):
        assert (
            await memory.use_verification_token(
                identifier=f"user{number}@example.com", token=f"t{number}"
            )
            is None
        )
    for number in (2, 3, 4):
        assert await memory.use_verification_token(
            identifier=f"user{number}@example.com", token=f"t{number}"
        ) == VerificationToken(f"user{number}@example.com", f"t{number}", expires)


async def test_ten_thousand_verification_tokens_are_kept_by_default() -> None:
    memory = MemoryAdapter()
    expires = later(hours=1)
    for number in range(10_001):
        await memory.create_verification_token(_token(number, expires))

    assert await memory.use_verification_token(identifier="user0@example.com", token="t0") is None
    assert await memory.use_verification_token(identifier="user1@example.com", token="t1")
    assert await memory.use_verification_token(identifier="user10000@example.com", token="t10000")


def test_the_bound_must_allow_a_token() -> None:
    with pytest.raises(ConfigurationError, match="max_verification_tokens"):
        MemoryAdapter(max_verification_tokens=0)


# -- database sessions through the middleware --------------------------------------------


def test_a_memory_adapter_means_database_sessions() -> None:
    memory = MemoryAdapter()
    config = AuthConfig(secret=SECRET, adapter=memory)

    assert isinstance(config.strategy, DatabaseStrategy)
    assert config.strategy.name == "database"
    assert config.adapter is memory


async def test_sign_in_see_the_session_sign_out(clock: Clock) -> None:
    memory = MemoryAdapter()
    app = build_app(adapter=memory, clock=clock)
    async with client_for(app) as client:
        assert (await client.get("/")).json() is None

        response = await sign_in(client)
        assert response.status_code == 302
        token = client.cookies[SESSION_COOKIE]
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token), "an opaque token, not a JWT"

        user = await memory.get_user_by_email("ann@example.com")
        assert user is not None
        found = await memory.get_session_and_user(token)
        assert found is not None and found[1] == user
        assert found[0].expires == datetime.fromtimestamp(clock.now + 30 * 24 * 3600, UTC)
        body = (await client.get("/")).json()
        assert body["id"] == user.id
        assert body["user"] == {"name": "Ann", "email": "ann@example.com"}
        listed = (await client.get("/auth/sessions")).json()
        assert [entry["id"] for entry in listed] == [found[0].id]

        await client.post("/auth/signout", data={"csrfToken": await csrf_token(client)})

        assert await memory.get_session_and_user(token) is None
        assert await memory.list_sessions(user.id) == []
        assert (await client.get("/")).json() is None
        assert (await client.get("/auth/session")).json() is None


async def test_signing_in_again_ends_the_previous_session_and_reuses_the_user(
    clock: Clock,
) -> None:
    memory = MemoryAdapter()
    async with client_for(build_app(adapter=memory, clock=clock)) as client:
        await sign_in(client)
        first = client.cookies[SESSION_COOKIE]
        await sign_in(client)
        second = client.cookies[SESSION_COOKIE]

    user = await memory.get_user_by_email("ann@example.com")
    assert user is not None and first != second
    assert [s.session_token for s in await memory.list_sessions(user.id)] == [second]


async def test_a_session_update_is_kept_in_memory(clock: Clock) -> None:
    memory = MemoryAdapter()
    async with client_for(build_app(adapter=memory, clock=clock)) as client:
        await sign_in(client)
        assert (await client.post("/update", json={"theme": "dark"})).status_code == 200
        token = client.cookies[SESSION_COOKIE]

    found = await memory.get_session_and_user(token)
    assert found is not None and found[0].extra["data"] == {"theme": "dark"}


async def test_an_expired_session_is_no_session_and_is_removed(clock: Clock) -> None:
    memory = MemoryAdapter()
    async with client_for(build_app(adapter=memory, clock=clock)) as client:
        await sign_in(client)
        token = client.cookies[SESSION_COOKIE]
        clock.advance(30 * 24 * 3600 + 1)

        assert (await client.get("/")).json() is None

    assert await memory.get_session_and_user(token) is None
