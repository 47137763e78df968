"""The Passkey provider over HTTP: registering a passkey, signing in with it alone or as
a second factor, every answer it must refuse, and managing passkeys.

A software authenticator (``tests/support/authenticator.py``) makes real P-256 keys and
ES256 signatures, posted as ``next-auth/webauthn`` posts them. Each forged answer differs
from a good one in one respect, and a good one is shown to work afterwards, so each test
shows one check. Flows run on the MemoryAdapter and on the real mongod through PyMongo;
no test may log an error.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC
from html import unescape
from typing import Any
from urllib.parse import urlencode

import httpx2
import pytest
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from asgi_session import _webauthn as webauthn
from asgi_session import mfa
from asgi_session.backends import MemoryAdapter
from asgi_session.backends.mongodb import MongoDBAdapter
from tests.support.apps import Clock, config_of, csrf_token
from tests.support.authenticator import AuthenticatorRefused, SoftwareAuthenticator, b64url
from tests.support.passkeys import (
    APP_URL,
    CALLBACK_URL,
    CHALLENGE_COOKIE,
    REFUSED_URL,
    START,
    TWO_FACTOR_COOKIE,
    RacingMemoryAdapter,
    RacingMongoDBAdapter,
    answer,
    browser,
    new_user,
    options,
    options_of,
    passkey_app,
    passkeys,
    password_sign_in,
    phone,
    register,
    returned_url,
    session_token,
    set_cookie,
    sign_in_with_passkey,
    sign_out,
    turn_on_totp,
    url_error,
)
from tests.support.passwords import Outbox, Store, make_store, sign_up, whoami

ADA = "ada@example.com"
BOB = "bob@example.com"
#: Standard base64 of these bytes has "+", "/" and padding: Auth.js's spelling shows.
AWKWARD_ID = bytes.fromhex("fbff") * 8 + b"\xfe"
SECURITY_URL = f"{APP_URL}/auth/account/security"


@pytest.fixture(params=["memory", "pymongo"])
def store(request: pytest.FixtureRequest) -> Store:
    return make_store(request)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture(autouse=True)
def no_error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever a browser sends, nothing here is the server's fault: no ERROR is logged."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [record for record in caplog.get_records("call") if record.levelno >= logging.ERROR]
    assert not errors, [record.getMessage() for record in errors]


def _standard_b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _allowed(found: dict[str, Any]) -> list[str]:
    return [item["id"] for item in found.get("allowCredentials") or []]


def _refused(response: httpx2.Response) -> None:
    """A refused passkey: back to the sign-in page with Auth.js's error, no session."""
    assert returned_url(response) == REFUSED_URL
    assert "authjs.session-token" not in response.headers.get("set-cookie", "")


# -- registering ---------------------------------------------------------------------------


async def test_a_fresh_session_registers_an_authjs_authenticator(
    store: Store, clock: Clock
) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, adapter=store.adapter, config_clock=clock)
    authenticator = phone()
    async with browser(app) as client:
        await new_user(client, outbox)
        before = session_token(client)
        response = await register(client, authenticator, credential_id=AWKWARD_ID)
        after = session_token(client)
        signed_in_as = await whoami(client)

    assert returned_url(response) == CALLBACK_URL
    assert f"{CHALLENGE_COOKIE}=;" in response.headers["set-cookie"]
    # A new factor, a new session: a token planted before it is worth nothing after.
    assert after is not None and before is not None and after != before
    assert signed_in_as == ADA
    user = await store.adapter.get_user_by_email(ADA)
    assert user is not None
    [stored] = await passkeys(store.adapter)
    credential = authenticator.credentials[-1]
    credential_id = _standard_b64(AWKWARD_ID)
    assert "+" in credential_id and "/" in credential_id and credential_id.endswith("=")
    assert stored.credential_id == credential_id
    assert stored.provider_account_id == credential_id
    assert stored.credential_public_key == _standard_b64(credential.cose_public_key())
    assert stored.user_id == user.id
    assert (stored.counter, stored.credential_device_type, stored.credential_backed_up) == (
        0,
        "singleDevice",
        False,
    )
    assert stored.transports == "internal,hybrid"
    assert stored.name == "Passkey"
    account = await store.adapter.get_account(provider="passkey", provider_account_id=credential_id)
    assert account is not None
    assert (account.type, account.user_id) == ("webauthn", user.id)


async def test_mongodb_keeps_passkeys_under_authjs_field_names(
    mongo_db: AsyncDatabase[dict[str, Any]], clock: Clock
) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, adapter=MongoDBAdapter(mongo_db), config_clock=clock)
    # A synced passkey: backup eligible and backed up.
    authenticator = SoftwareAuthenticator(APP_URL, backup_eligible=True, backed_up=True)
    async with browser(app) as client:
        await new_user(client, outbox)
        returned_url(await register(client, authenticator, credential_id=AWKWARD_ID))

    user = await mongo_db["users"].find_one({"email": ADA})
    assert user is not None
    credential_id = _standard_b64(AWKWARD_ID)
    document = await mongo_db["authenticators"].find_one({"credentialID": credential_id})
    assert document is not None
    public_key = _standard_b64(authenticator.credentials[-1].cose_public_key())
    assert {key: document[key] for key in document if key not in ("_id", "createdAt")} == {
        "credentialID": credential_id,
        "providerAccountId": credential_id,
        "userId": user["_id"],
        "credentialPublicKey": public_key,
        "counter": 0,
        "credentialDeviceType": "multiDevice",
        "credentialBackedUp": True,
        "transports": "internal,hybrid",
        "name": "Passkey",
        "lastUsedAt": None,
    }
    assert isinstance(document["userId"], ObjectId)
    assert document["createdAt"].replace(tzinfo=UTC).timestamp() == START
    account = await mongo_db["accounts"].find_one({"provider": "passkey"})
    assert account is not None
    assert {key: account[key] for key in ("type", "provider", "providerAccountId", "userId")} == {
        "type": "webauthn",
        "provider": "passkey",
        "providerAccountId": credential_id,
        "userId": user["_id"],
    }


async def test_registering_needs_a_signed_in_user(clock: Clock) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, config_clock=clock)
    async with browser(app) as client:
        refused = await options(client, "register")
        # Nothing to answer: no registration challenge was ever given to this browser.
        authenticate = await options_of(client, "authenticate")
        made_for, _ = webauthn.registration_options(
            webauthn.relying_party(APP_URL), user_name=ADA, user_display_name=None, exclude=[]
        )
        made = phone().register(made_for, challenge=authenticate["challenge"])
        posted = await answer(client, "register", made)
        signed_in_as = await whoami(client)

    assert refused.status_code == 400
    assert "error" in refused.json() and "options" not in refused.json()
    assert CHALLENGE_COOKIE not in refused.headers.get("set-cookie", "")
    _refused(posted)
    assert signed_in_as is None


async def test_registering_needs_a_fresh_session(clock: Clock) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, config_clock=clock)
    async with browser(app) as client:
        await new_user(client, outbox)
        clock.advance(301)  # past AuthConfig.fresh_age
        stale = await options(client, "register")
        # Proving it is you again makes it fresh.
        await password_sign_in(client)
        fresh = await options(client, "register")

    assert stale.status_code == 401
    assert "options" not in stale.json()
    assert CHALLENGE_COOKIE not in stale.headers.get("set-cookie", "")
    assert fresh.status_code == 200
    assert fresh.json()["action"] == "register"


async def test_a_stale_session_is_told_to_reauthenticate(clock: Clock) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, config_clock=clock)
    async with browser(app) as client:
        await new_user(client, outbox)
        clock.advance(301)
        stale = await options(client, "register")
    assert stale.json()["error"] == "ReauthenticationRequired"


async def test_a_ceremony_outlasting_the_fresh_session_adds_nothing(clock: Clock) -> None:
    outbox = Outbox()
    adapter = MemoryAdapter()
    app = passkey_app(outbox, adapter=adapter, config_clock=clock)
    async with browser(app) as client:
        await new_user(client, outbox)
        clock.advance(250)
        begun = await options_of(client, "register")
        clock.advance(100)  # 350 s after signing in: past fresh_age, within the ceremony
        posted = await answer(client, "register", phone().register(begun))

    _refused(posted)
    assert await passkeys(adapter) == []


async def test_an_unconfirmed_account_gets_no_registration_options(clock: Clock) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, config_clock=clock)
    async with browser(app) as client:
        # Signed in at once, the address not yet proven by its link.
        await sign_up(client, ADA)
        signed_in_as = await whoami(client)
        refused = await options(client, "register")

    assert signed_in_as == ADA
    assert refused.status_code == 403
    assert refused.json()["error"] == "AccountNotConfirmed"
    assert CHALLENGE_COOKIE not in refused.headers.get("set-cookie", "")


async def test_a_registration_begun_by_another_user_is_refused(clock: Clock) -> None:
    outbox = Outbox()
    adapter = MemoryAdapter()
    app = passkey_app(outbox, adapter=adapter, config_clock=clock)
    authenticator = phone()
    async with browser(app) as ada, browser(app, ip="198.51.100.9") as bob:
        await new_user(ada, outbox, ADA)
        await new_user(bob, outbox, BOB)
        begun = await options_of(ada, "register")
        bobs_token = session_token(bob)
        # Ada's challenge cookie, in Bob's browser, with Bob signed in.
        set_cookie(bob, CHALLENGE_COOKIE, ada.cookies[CHALLENGE_COOKIE])
        as_bob = await answer(bob, "register", authenticator.register(begun))
        bob_after = session_token(bob)
        # Begun by Ada, who signed out before finishing.
        begun = await options_of(ada, "register")
        await sign_out(ada)
        signed_out = await answer(ada, "register", authenticator.register(begun))

    _refused(as_bob)
    assert bob_after == bobs_token
    _refused(signed_out)
    assert await passkeys(adapter, ADA) == []
    assert await passkeys(adapter, BOB) == []


async def test_a_passkey_is_registered_once(clock: Clock) -> None:
    outbox = Outbox()
    adapter = MemoryAdapter()
    app = passkey_app(outbox, adapter=adapter, config_clock=clock)
    authenticator = phone()
    async with browser(app) as ada, browser(app, ip="198.51.100.9") as bob:
        await new_user(ada, outbox, ADA)
        await new_user(bob, outbox, BOB)
        returned_url(await register(ada, authenticator, credential_id=AWKWARD_ID))
        again = await options_of(ada, "register")
        with pytest.raises(AuthenticatorRefused) as declined:
            authenticator.register(again)
        # A device that answers anyway, or a forged answer, with the same credential id.
        twice = await answer(ada, "register", phone().register(again, credential_id=AWKWARD_ID))
        for_bob = await register(bob, phone(), credential_id=AWKWARD_ID)
        bob_signed_in_as = await whoami(bob)

    assert [item["id"] for item in again["excludeCredentials"]] == [b64url(AWKWARD_ID)]
    assert declined.value.name == "InvalidStateError"
    _refused(twice)
    _refused(for_bob)
    assert bob_signed_in_as == BOB
    [stored] = await passkeys(adapter, ADA)
    assert stored.credential_public_key == _standard_b64(
        authenticator.credentials[-1].cose_public_key()
    )
    assert await passkeys(adapter, BOB) == []
    bob_user = await adapter.get_user_by_email(BOB)
    assert bob_user is not None
    linked = await adapter.get_user_by_account(
        provider="passkey", provider_account_id=stored.credential_id
    )
    assert linked is not None and linked.email == ADA


# -- signing in ---------------------------------------------------------------------------


async def test_a_passkey_signs_in_on_its_own(store: Store, clock: Clock) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, adapter=store.adapter, config_clock=clock)
    adas, bobs = phone(), phone()
    async with browser(app) as setup:
        await new_user(setup, outbox, ADA)
        returned_url(await register(setup, adas))
        await sign_out(setup)
        await new_user(setup, outbox, BOB)
        returned_url(await register(setup, bobs))
    clock.advance(60)
    async with browser(app) as client:
        found = await options_of(client, "authenticate")
        response = await answer(client, "authenticate", adas.authenticate(found))
        signed_in_as = await whoami(client)
    async with browser(app) as client:
        as_bob = await sign_in_with_passkey(client, bobs)
        bob_signed_in_as = await whoami(client)

    # Discoverable: any passkey of this site may answer, no address typed.
    assert _allowed(found) == []
    assert (found["rpId"], found["userVerification"]) == ("localhost", "required")
    assert returned_url(response) == CALLBACK_URL
    assert f"{CHALLENGE_COOKIE}=;" in response.headers["set-cookie"]
    assert signed_in_as == ADA
    assert returned_url(as_bob) == CALLBACK_URL
    assert bob_signed_in_as == BOB
    [stored] = await passkeys(store.adapter, ADA)
    assert stored.counter == 1
    assert stored.last_used_at is not None
    assert stored.last_used_at.timestamp() == START + 60


async def test_the_passkey_provider_is_listed_and_offered(clock: Clock) -> None:
    app = passkey_app(Outbox(), config_clock=clock)
    async with browser(app) as client:
        providers = (await client.get("/auth/providers")).json()
        page = await client.get("/auth/signin")

    assert providers["passkey"] == {
        "id": "passkey",
        "name": "Passkey",
        "type": "webauthn",
        "signinUrl": f"{APP_URL}/auth/signin/passkey",
        "callbackUrl": f"{APP_URL}/auth/callback/passkey",
    }
    assert 'data-passkey="authenticate"' in page.text
    assert 'autocomplete="username webauthn"' in page.text


# -- what must be refused -------------------------------------------------------------------

Forgery = Callable[[httpx2.AsyncClient, SoftwareAuthenticator, Clock], Awaitable[httpx2.Response]]


async def _another_challenge(
    client: httpx2.AsyncClient, authenticator: SoftwareAuthenticator, clock: Clock
) -> httpx2.Response:
    first = await options_of(client, "authenticate")
    await options_of(client, "authenticate")  # the cookie now holds the second challenge
    return await answer(client, "authenticate", authenticator.authenticate(first))


async def _no_cookie(
    client: httpx2.AsyncClient, authenticator: SoftwareAuthenticator, clock: Clock
) -> httpx2.Response:
    signed = authenticator.authenticate(await options_of(client, "authenticate"))
    client.cookies.delete(CHALLENGE_COOKIE)
    return await answer(client, "authenticate", signed)


async def _tampered_cookie(
    client: httpx2.AsyncClient, authenticator: SoftwareAuthenticator, clock: Clock
) -> httpx2.Response:
    signed = authenticator.authenticate(await options_of(client, "authenticate"))
    cookie = client.cookies[CHALLENGE_COOKIE]
    middle = len(cookie) // 2
    flipped = "A" if cookie[middle] != "A" else "B"
    set_cookie(client, CHALLENGE_COOKIE, cookie[:middle] + flipped + cookie[middle + 1 :])
    return await answer(client, "authenticate", signed)


async def _expired_cookie(
    client: httpx2.AsyncClient, authenticator: SoftwareAuthenticator, clock: Clock
) -> httpx2.Response:
    signed = authenticator.authenticate(await options_of(client, "authenticate"))
    cookie = client.cookies[CHALLENGE_COOKIE]
    clock.advance(301)  # the ceremony's five minutes are over
    set_cookie(client, CHALLENGE_COOKIE, cookie)  # even if the browser kept it
    return await answer(client, "authenticate", signed)


async def _a_registration_challenge(
    client: httpx2.AsyncClient, authenticator: SoftwareAuthenticator, clock: Clock
) -> httpx2.Response:
    """An assertion posted under the challenge of a registration begun while signed in."""
    await password_sign_in(client)
    begun = await options_of(client, "register")
    signed = authenticator.authenticate({"rpId": "localhost", "challenge": begun["challenge"]})
    await sign_out(client)
    return await answer(client, "authenticate", signed)


def _forged(**forge: Any) -> Forgery:
    async def forgery(
        client: httpx2.AsyncClient, authenticator: SoftwareAuthenticator, clock: Clock
    ) -> httpx2.Response:
        return await sign_in_with_passkey(client, authenticator, **forge)

    return forgery


def _action(action: str) -> Forgery:
    async def forgery(
        client: httpx2.AsyncClient, authenticator: SoftwareAuthenticator, clock: Clock
    ) -> httpx2.Response:
        signed = authenticator.authenticate(await options_of(client, "authenticate"))
        return await answer(client, action, signed)

    return forgery


def _data(data: str) -> Forgery:
    async def forgery(
        client: httpx2.AsyncClient, authenticator: SoftwareAuthenticator, clock: Clock
    ) -> httpx2.Response:
        await options_of(client, "authenticate")
        return await answer(client, "authenticate", data)

    return forgery


def _changed(change: Callable[[dict[str, Any]], object]) -> Forgery:
    """A good answer, changed by ``change`` (which returns what to post)."""

    async def forgery(
        client: httpx2.AsyncClient, authenticator: SoftwareAuthenticator, clock: Clock
    ) -> httpx2.Response:
        signed = authenticator.authenticate(await options_of(client, "authenticate"))
        return await answer(client, "authenticate", change(signed))

    return forgery


async def _raw_surrogate(
    client: httpx2.AsyncClient, authenticator: SoftwareAuthenticator, clock: Clock
) -> httpx2.Response:
    """A lone surrogate as bytes no UTF-8 decoder accepts, in the form itself."""
    await options_of(client, "authenticate")
    body = urlencode({"csrfToken": await csrf_token(client), "action": "authenticate"})
    return await client.post(
        "/auth/callback/passkey",
        content=f"{body}&data=%7B%22id%22%3A%22%ED%A0%80%22%7D".encode(),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "X-Auth-Return-Redirect": "1",
        },
    )


def _without_id(signed: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in signed.items() if key != "id"}


def _surrogate_in(signed: dict[str, Any]) -> dict[str, Any]:
    # json.dumps escapes it ("\ud800"): the JSON is ASCII, the string it holds is not text.
    return {**signed, "clientExtensionResults": {"note": "\ud800"}}


FORGERIES: dict[str, Forgery] = {
    "another challenge": _another_challenge,
    "another origin": _forged(origin="http://evil.example"),
    "another port": _forged(origin=f"{APP_URL}:8080"),
    "another relying party": _forged(rp_id="evil.example"),
    "another ceremony": _forged(ceremony="webauthn.create"),
    "forged challenge": _forged(challenge=b64url(b"\x00" * 32)),
    "no user verification": _forged(user_verified=False),
    "no user presence": _forged(user_present=False),
    "no challenge cookie": _no_cookie,
    "tampered challenge cookie": _tampered_cookie,
    "expired challenge cookie": _expired_cookie,
    "a registration's challenge": _a_registration_challenge,
    "unknown action": _action("delete"),
    "action of another ceremony": _action("register"),
    "not JSON": _data("{not json"),
    "JSON array": _data("[1, 2, 3]"),
    "JSON string": _data('"id"'),
    "empty": _data(""),
    "deep nesting": _data("[" * 5_000 + "]" * 5_000),
    "huge number": _data('{"id": "AAAA", "n": ' + "9" * 30_000 + "}"),
    "escaped lone surrogate": _data('{"id": "\\ud800", "rawId": "\\udfff"}'),
    "lone surrogate bytes": _raw_surrogate,
    "lone surrogate in a good answer": _changed(_surrogate_in),
    "missing id": _changed(_without_id),
    "id not base64url": _changed(lambda signed: {**signed, "id": signed["id"] + "*"}),
    "unknown credential": _changed(lambda signed: {**signed, "id": b64url(b"\x01" * 32)}),
    "signature of other bytes": _changed(
        lambda signed: {
            **signed,
            "response": {**signed["response"], "signature": b64url(b"\x30\x06\x02\x01\x01")},
        }
    ),
    "response not an object": _changed(lambda signed: {**signed, "response": "nothing"}),
}


@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=FORGERIES.keys())
async def test_a_bad_answer_never_signs_in(forgery: Forgery, clock: Clock) -> None:
    outbox = Outbox()
    adapter = MemoryAdapter()
    app = passkey_app(outbox, adapter=adapter, config_clock=clock)
    authenticator = phone()
    async with browser(app) as setup:
        await new_user(setup, outbox)
        returned_url(await register(setup, authenticator))
    async with browser(app) as client:
        response = await forgery(client, authenticator, clock)
        signed_in_as = await whoami(client)
        [stored] = await passkeys(adapter)
        # The refusal is the forgery's: the same passkey, answering properly, signs in.
        good = await sign_in_with_passkey(client, authenticator)
        then = await whoami(client)

    _refused(response)
    assert signed_in_as is None
    assert stored.counter == 0
    assert stored.last_used_at is None
    assert returned_url(good) == CALLBACK_URL
    assert then == ADA


async def test_an_answer_without_the_csrf_token_is_refused(clock: Clock) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, config_clock=clock)
    authenticator = phone()
    async with browser(app) as setup:
        await new_user(setup, outbox)
        returned_url(await register(setup, authenticator))
    async with browser(app) as client:
        signed = authenticator.authenticate(await options_of(client, "authenticate"))
        response = await answer(client, "authenticate", signed, csrf=False)
        signed_in_as = await whoami(client)

    url = returned_url(response)
    assert url.startswith(f"{APP_URL}/auth/signin?")
    assert url_error(url) == "MissingCSRF"
    assert signed_in_as is None


async def test_an_answer_too_large_to_be_a_browsers_is_not_read(clock: Clock) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, config_clock=clock)
    authenticator = phone()
    async with browser(app) as setup:
        await new_user(setup, outbox)
        returned_url(await register(setup, authenticator))
    async with browser(app) as client:
        signed = authenticator.authenticate(await options_of(client, "authenticate"))
        response = await answer(client, "authenticate", {**signed, "padding": "x" * 100_000})
        signed_in_as = await whoami(client)

    assert response.status_code == 413
    assert signed_in_as is None


async def test_a_replayed_assertion_is_refused_even_with_its_cookie(
    store: Store, clock: Clock
) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, adapter=store.adapter, config_clock=clock)
    # No counter (a synced passkey always sends 0): only the spent challenge stops a replay.
    authenticator = SoftwareAuthenticator(APP_URL, counter_step=0)
    async with browser(app) as setup:
        await new_user(setup, outbox)
        returned_url(await register(setup, authenticator))
    async with browser(app) as client:
        signed = authenticator.authenticate(await options_of(client, "authenticate"))
        cookie = client.cookies[CHALLENGE_COOKIE]
        first = await answer(client, "authenticate", signed)
        first_signed_in_as = await whoami(client)
        await sign_out(client)
        set_cookie(client, CHALLENGE_COOKIE, cookie)
        replayed = await answer(client, "authenticate", signed)
        signed_in_as = await whoami(client)
    async with browser(app, ip="198.51.100.9") as elsewhere:
        # The same request, from another browser.
        set_cookie(elsewhere, CHALLENGE_COOKIE, cookie)
        from_elsewhere = await answer(elsewhere, "authenticate", signed)
        elsewhere_signed_in_as = await whoami(elsewhere)

    assert returned_url(first) == CALLBACK_URL
    assert first_signed_in_as == ADA
    _refused(replayed)
    assert signed_in_as is None
    _refused(from_elsewhere)
    assert elsewhere_signed_in_as is None


async def test_a_counter_that_does_not_go_up_is_refused(store: Store, clock: Clock) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, adapter=store.adapter, config_clock=clock)
    authenticator = phone()
    async with browser(app) as setup:
        await new_user(setup, outbox)
        returned_url(await register(setup, authenticator, sign_count=5))
    async with browser(app) as client:
        backwards = await sign_in_with_passkey(client, authenticator, sign_count=4)
        same = await sign_in_with_passkey(client, authenticator, sign_count=5)
        signed_in_as = await whoami(client)
        [kept] = await passkeys(store.adapter)
        up = await sign_in_with_passkey(client, authenticator, sign_count=6)
        then = await whoami(client)

    _refused(backwards)
    _refused(same)
    assert signed_in_as is None
    assert kept.counter == 5
    assert returned_url(up) == CALLBACK_URL
    assert then == ADA
    [stored] = await passkeys(store.adapter)
    assert stored.counter == 6


async def test_the_passkey_decides_who_signs_in(clock: Clock) -> None:
    outbox = Outbox()
    adapter = MemoryAdapter()
    app = passkey_app(outbox, adapter=adapter, config_clock=clock)
    adas, bobs = phone(), phone()
    async with browser(app) as setup:
        await new_user(setup, outbox, ADA)
        returned_url(await register(setup, adas))
        await sign_out(setup)
        await new_user(setup, outbox, BOB)
        returned_url(await register(setup, bobs))
    bobs_credential = bobs.credentials[-1]
    async with browser(app) as client:
        # Ada's signature under Bob's credential id (and his user handle): Bob's stored
        # key does not verify it.
        signed = adas.authenticate(await options_of(client, "authenticate"))
        as_bob = {
            **signed,
            "id": bobs_credential.b64url_id,
            "rawId": bobs_credential.b64url_id,
            "response": {**signed["response"], "userHandle": b64url(bobs_credential.user_handle)},
        }
        claimed = await answer(client, "authenticate", as_bob)
        claimed_as = await whoami(client)
        # Ada's own answer with Bob's user handle: the credential, not the handle, decides.
        signed = adas.authenticate(await options_of(client, "authenticate"))
        handle = {
            **signed,
            "response": {**signed["response"], "userHandle": b64url(bobs_credential.user_handle)},
        }
        with_handle = await answer(client, "authenticate", handle)
        with_handle_as = await whoami(client)

    _refused(claimed)
    assert claimed_as is None
    assert returned_url(with_handle) == CALLBACK_URL
    assert with_handle_as == ADA
    [bobs_stored] = await passkeys(adapter, BOB)
    assert bobs_stored.counter == 0


# -- a passkey as the second factor ---------------------------------------------------------


async def test_a_passkey_is_a_second_factor(store: Store, clock: Clock) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, adapter=store.adapter, config_clock=clock, config_two_factor=True)
    laptop, key, bobs = phone(), phone(), phone()
    async with browser(app) as setup:
        await new_user(setup, outbox, BOB)
        returned_url(await register(setup, bobs))
        await sign_out(setup)
        await new_user(setup, outbox, ADA)
        returned_url(await register(setup, laptop))
        returned_url(await register(setup, key))
        await turn_on_totp(app, ADA, clock.now)
    async with browser(app) as client:
        first = await password_sign_in(client)
        pending_as = await whoami(client)
        page = await client.get("/auth/mfa")
        found = await options_of(client, "authenticate")
        response = await answer(client, "authenticate", key.authenticate(found))
        signed_in_as = await whoami(client)

    assert (first.status_code, first.headers["location"]) == (302, f"{APP_URL}/auth/mfa")
    assert pending_as is None
    assert page.status_code == 200
    assert 'data-passkey="authenticate"' in page.text
    button = re.search(r'data-passkey="authenticate"[^>]*data-callback-url="([^"]*)"', page.text)
    assert button is not None and unescape(button.group(1)) == CALLBACK_URL
    # Exactly Ada's passkeys may answer: the browser offers no others.
    ada_ids = [b64url(c.id) for c in (laptop.credentials[-1], key.credentials[-1])]
    assert sorted(_allowed(found)) == sorted(ada_ids)
    assert returned_url(response) == CALLBACK_URL
    assert f"{TWO_FACTOR_COOKIE}=;" in response.headers["set-cookie"]
    assert signed_in_as == ADA


async def test_a_passkey_sign_in_is_not_asked_for_a_second_factor(clock: Clock) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, config_clock=clock, config_two_factor=True)
    authenticator = phone()
    async with browser(app) as setup:
        await new_user(setup, outbox)
        returned_url(await register(setup, authenticator))
        await turn_on_totp(app, ADA, clock.now)
    async with browser(app) as client:
        with_password = await password_sign_in(client)
        await sign_out(client)
    async with browser(app) as client:
        response = await sign_in_with_passkey(client, authenticator)
        signed_in_as = await whoami(client)

    # The same user's password sign-in is asked for one, so the passkey's is not by choice.
    assert with_password.headers["location"] == f"{APP_URL}/auth/mfa"
    assert returned_url(response) == CALLBACK_URL
    assert signed_in_as == ADA


async def test_another_users_passkey_at_the_second_step_signs_in_only_its_own_user(
    clock: Clock,
) -> None:
    outbox = Outbox()
    adapter = MemoryAdapter()
    app = passkey_app(outbox, adapter=adapter, config_clock=clock, config_two_factor=True)
    adas, bobs = phone(), phone()
    async with browser(app) as setup:
        await new_user(setup, outbox, ADA)
        returned_url(await register(setup, adas))
        await turn_on_totp(app, ADA, clock.now)
        await sign_out(setup)
        await new_user(setup, outbox, BOB)
        returned_url(await register(setup, bobs))
    async with browser(app) as client:
        # Ada's password is right; the passkey that answers is Bob's.
        await password_sign_in(client, ADA)
        found = await options_of(client, "authenticate")
        response = await answer(
            client, "authenticate", bobs.authenticate(found, credential=bobs.credentials[-1])
        )
        signed_in_as = await whoami(client)

    assert _allowed(found) == [adas.credentials[-1].b64url_id]
    assert returned_url(response) == CALLBACK_URL
    assert signed_in_as == BOB


# -- managing passkeys ----------------------------------------------------------------------


async def _post(client: httpx2.AsyncClient, path: str, **fields: str) -> httpx2.Response:
    return await client.post(path, data={"csrfToken": await csrf_token(client), **fields})


async def test_the_security_page_lists_passkeys_and_renames_them(
    store: Store, clock: Clock
) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, adapter=store.adapter, config_clock=clock)
    async with browser(app) as client:
        await new_user(client, outbox)
        returned_url(await register(client, phone(), credential_id=AWKWARD_ID))
        returned_url(await register(client, phone()))
        first, second = await passkeys(store.adapter)
        page = await client.get("/auth/account/security")
        renamed = await _post(
            client,
            "/auth/account/passkey/rename",
            credentialId=first.credential_id,
            name="  Work   laptop ",
        )
        after = await client.get("/auth/account/security")

    assert page.status_code == 200
    listed = [unescape(found) for found in re.findall(r'data-passkey-id="([^"]*)"', page.text)]
    assert listed == [first.credential_id, second.credential_id]
    assert 'data-passkey="register"' in page.text
    assert (renamed.status_code, renamed.headers["location"]) == (
        303,
        f"{SECURITY_URL}?message=renamed",
    )
    [stored, untouched] = await passkeys(store.adapter)
    assert stored.name == "Work laptop"
    assert untouched.name == second.name == "Passkey"
    assert "Work laptop" in after.text


async def test_deleting_a_passkey_needs_a_fresh_session_and_ends_its_sign_ins(
    store: Store, clock: Clock
) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, adapter=store.adapter, config_clock=clock)
    authenticator = phone()
    async with browser(app) as client:
        await new_user(client, outbox)
        returned_url(await register(client, authenticator))
        [passkey] = await passkeys(store.adapter)
        clock.advance(301)  # past AuthConfig.fresh_age
        stale = await _post(
            client, "/auth/account/passkey/delete", credentialId=passkey.credential_id
        )
        kept = await passkeys(store.adapter)
        await password_sign_in(client)
        deleted = await _post(
            client, "/auth/account/passkey/delete", credentialId=passkey.credential_id
        )
        page = await client.get("/auth/account/security")
        await sign_out(client)
        afterwards = await sign_in_with_passkey(client, authenticator)
        signed_in_as = await whoami(client)

    assert stale.status_code == 303
    assert stale.headers["location"].startswith(f"{APP_URL}/auth/reauthenticate?callbackUrl=")
    assert kept == [passkey]
    assert (deleted.status_code, deleted.headers["location"]) == (
        303,
        f"{SECURITY_URL}?message=deleted",
    )
    assert await passkeys(store.adapter) == []
    assert await store.adapter.get_authenticator(passkey.credential_id) is None
    assert (
        await store.adapter.get_account(
            provider="passkey", provider_account_id=passkey.credential_id
        )
        is None
    )
    assert "data-passkey-id" not in page.text
    _refused(afterwards)
    assert signed_in_as is None


async def test_renaming_a_passkey_needs_a_fresh_session(clock: Clock) -> None:
    outbox = Outbox()
    adapter = MemoryAdapter()
    app = passkey_app(outbox, adapter=adapter, config_clock=clock)
    async with browser(app) as client:
        await new_user(client, outbox)
        returned_url(await register(client, phone()))
        [passkey] = await passkeys(adapter)
        clock.advance(301)
        # A stale (perhaps stolen) cookie must not relabel the owner's passkey.
        stale = await _post(
            client,
            "/auth/account/passkey/rename",
            credentialId=passkey.credential_id,
            name="Old phone, remove me",
        )

    assert stale.status_code == 303
    assert stale.headers["location"].startswith(f"{APP_URL}/auth/reauthenticate?callbackUrl=")
    [kept] = await passkeys(adapter)
    assert kept.name == passkey.name


async def test_a_passkey_alone_asks_nothing_after_a_password(clock: Clock) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, config_clock=clock, config_two_factor=True)
    async with browser(app) as client:
        await new_user(client, outbox)
        returned_url(await register(client, phone()))
        await sign_out(client)
        # A passkey added for convenience is no second factor the user signed up for:
        # it came with no recovery codes, and losing the phone must not lock them out.
        signed_in = await password_sign_in(client)

    assert signed_in.headers["location"] == CALLBACK_URL


async def test_turning_totp_off_takes_the_recovery_codes_even_with_a_passkey(
    clock: Clock,
) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, config_clock=clock, config_two_factor=True)
    config = config_of(app)
    async with browser(app) as client:
        await new_user(client, outbox)
        returned_url(await register(client, phone()))
        await turn_on_totp(app, ADA, clock.now)
        assert config.adapter is not None
        user = await config.adapter.get_user_by_email(ADA)
        assert user is not None
        before = await mfa.second_factors(config, user.id)
        assert await mfa.disable_totp(config, user.id)
        after = await mfa.second_factors(config, user.id)

    assert before.recovery_codes_left == 10
    assert after.recovery_codes_left == 0 and not after.any and len(after.passkeys) == 1


async def test_another_users_passkey_cannot_be_renamed_or_deleted(clock: Clock) -> None:
    outbox = Outbox()
    adapter = MemoryAdapter()
    app = passkey_app(outbox, adapter=adapter, config_clock=clock)
    async with browser(app) as ada, browser(app, ip="198.51.100.9") as bob:
        await new_user(ada, outbox, ADA)
        returned_url(await register(ada, phone()))
        await new_user(bob, outbox, BOB)
        [adas] = await passkeys(adapter, ADA)
        renamed = await _post(
            bob, "/auth/account/passkey/rename", credentialId=adas.credential_id, name="Mine"
        )
        deleted = await _post(bob, "/auth/account/passkey/delete", credentialId=adas.credential_id)
        # Her own browser may: the same requests are not refused for what they are.
        own = await _post(
            ada, "/auth/account/passkey/rename", credentialId=adas.credential_id, name="Phone"
        )

    not_found = (303, f"{SECURITY_URL}?error=PasskeyNotFound")
    assert (renamed.status_code, renamed.headers["location"]) == not_found
    assert (deleted.status_code, deleted.headers["location"]) == not_found
    assert own.headers["location"] == f"{SECURITY_URL}?message=renamed"
    [stored] = await passkeys(adapter, ADA)
    assert stored.name == "Phone"
    assert await adapter.get_user_by_account(
        provider="passkey", provider_account_id=adas.credential_id
    ) == await adapter.get_user_by_email(ADA)


@pytest.fixture(params=["memory", "pymongo"])
def racing(request: pytest.FixtureRequest) -> RacingMemoryAdapter | RacingMongoDBAdapter:
    if request.param == "memory":
        return RacingMemoryAdapter()
    return RacingMongoDBAdapter(request.getfixturevalue("mongo_db"))


async def test_of_two_sign_ins_with_one_counter_exactly_one_succeeds(
    racing: RacingMemoryAdapter | RacingMongoDBAdapter, clock: Clock
) -> None:
    outbox = Outbox()
    app = passkey_app(outbox, adapter=racing, config_clock=clock)
    authenticator = phone()
    async with browser(app) as setup:
        await new_user(setup, outbox)
        returned_url(await register(setup, authenticator))
    async with browser(app) as one, browser(app, ip="198.51.100.9") as two:
        # A cloned authenticator: two assertions carrying the same counter.
        first = authenticator.authenticate(await options_of(one, "authenticate"), sign_count=1)
        second = authenticator.authenticate(await options_of(two, "authenticate"), sign_count=1)
        # Both requests read the stored counter (0) before either stores 1.
        racing.meeting = asyncio.Barrier(2)
        responses = await asyncio.gather(
            answer(one, "authenticate", first), answer(two, "authenticate", second)
        )
        racing.meeting = None
        signed_in = [await whoami(one), await whoami(two)]

    assert sorted(returned_url(response) for response in responses) == sorted(
        [CALLBACK_URL, REFUSED_URL]
    )
    assert sorted(signed_in, key=str) == sorted([ADA, None], key=str)
    [stored] = await passkeys(racing)
    assert stored.counter == 1
