"""Second factors: how TOTP and recovery codes are stored, and which codes prove one.

Codes are sent over HTTP, as a user would after their password, on the MemoryAdapter
and (for what is stored) the real mongod through PyMongo. The clock is injected and
starts at the beginning of a TOTP step, so the step of every code is known.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import httpx2
import pytest
from starlette.applications import Starlette

from asgi_session import AuthConfig
from asgi_session import _second_factor as second_factor
from asgi_session._totp import hash_recovery_code, open_sealed
from asgi_session.backends import Adapter, MemoryAdapter
from asgi_session.providers import Password
from tests.support.apps import SECRET, Clock, client_for, csrf_token
from tests.support.passwords import (
    APP_URL,
    FAST_HASHER,
    Outbox,
    Store,
    make_store,
    sign_in,
    whoami,
)
from tests.support.two_factor import (
    ALIGNED,
    ENROLMENT_COOKIE,
    MFA_URL,
    STEP,
    answer,
    app_of,
    code_at,
    confirmed_user,
    enrolled_user,
    recovery_codes_on,
    secret_on,
    sign_out,
    stored_text,
    totp_state,
    two_factor_app,
)

NEW_SECRET = "a-new-secret-that-is-long-enough-9876543210"
INVALID_CODE = f"{MFA_URL}?error=InvalidCode"


@pytest.fixture(params=["memory", "pymongo"])
def store(request: pytest.FixtureRequest) -> Store:
    return make_store(request)


@pytest.fixture
def clock() -> Clock:
    return Clock(ALIGNED)


async def _user_id(adapter: Adapter, email: str = "ada@example.com") -> str:
    user = await adapter.get_user_by_email(email)
    assert user is not None
    return user.id


async def _recovery_tokens(store: Store) -> list[tuple[str, str]]:
    return [entry for entry in await store.verification_tokens() if "recovery" in entry[0]]


async def _challenged(client: httpx2.AsyncClient, email: str = "ada@example.com") -> None:
    """The password, right: the browser is asked for its second factor."""
    response = await sign_in(client, email)
    assert (response.status_code, response.headers["location"]) == (302, MFA_URL)


async def _proves(client: httpx2.AsyncClient, code: str) -> bool:
    """Whether ``code`` finishes a new sign-in of Ada's, as a fresh browser would."""
    client.cookies.clear()
    await _challenged(client)
    response = await answer(client, code)
    if response.headers["location"] == APP_URL:
        assert await whoami(client) == "ada@example.com"
        return True
    assert response.headers["location"] == INVALID_CODE
    assert await whoami(client) is None
    return False


# -- storage ----------------------------------------------------------------------------


async def test_the_totp_account_holds_the_secret_sealed_and_the_step_it_was_confirmed_in(
    store: Store, clock: Clock
) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox, adapter=store.adapter)
    enrolled_at = clock.now
    async with client_for(app) as client:
        secret, codes = await enrolled_user(client, clock, outbox)
    user_id = await _user_id(store.adapter)
    account = await store.adapter.get_account(provider="totp", provider_account_id=user_id)
    assert account is not None
    assert (account.type, account.user_id) == ("totp", user_id)
    sealed = account.extra["secret"]
    assert isinstance(sealed, str) and sealed.startswith("v1.")
    assert open_sealed((SECRET,), "totp secret", sealed, bind=user_id) == (secret, False)
    # The code that confirmed the enrolment is used up.
    assert account.extra["lastUsedStep"] == int(enrolled_at // STEP)
    assert isinstance(account.extra["createdAt"], datetime)
    everything = await stored_text(store)
    assert secret not in everything
    assert secret.lower() not in everything
    assert not any(code in everything for code in codes)


async def test_recovery_codes_are_stored_as_keyed_hashes_of_one_generation(
    store: Store, clock: Clock
) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox, adapter=store.adapter)
    async with client_for(app) as client:
        _, codes = await enrolled_user(client, clock, outbox)
    assert len(codes) == 10 and len(set(codes)) == 10
    user_id = await _user_id(store.adapter)
    account = await store.adapter.get_account(
        provider="recovery-codes", provider_account_id=user_id
    )
    assert account is not None and account.type == "recovery-codes"
    generation = account.extra["generation"]
    assert account.extra["remaining"] == 10
    assert await _recovery_tokens(store) == sorted(
        (f"recovery-code:{user_id}:{generation}", hash_recovery_code((SECRET,), code))
        for code in codes
    )
    everything = await stored_text(store)
    for code in codes:
        assert code not in everything
        assert code.replace("-", "") not in everything


# -- enrolment ----------------------------------------------------------------------------


async def test_enrolment_is_confirmed_by_one_code_of_the_secret_shown(clock: Clock) -> None:
    adapter = MemoryAdapter()
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox, adapter=adapter)
    async with client_for(app) as client:
        await confirmed_user(client, outbox)
        user_id = await _user_id(adapter)
        page = await client.get("/auth/mfa/totp")
        secret = secret_on(page)
        assert 'href="otpauth://totp/' in page.text and "<svg" in page.text
        assert client.cookies.get(ENROLMENT_COOKIE)
        # A reload shows the secret already scanned; nothing is stored before a code.
        assert secret_on(await client.get("/auth/mfa/totp")) == secret
        assert await adapter.get_account(provider="totp", provider_account_id=user_id) is None

        wrong = await client.post(
            "/auth/mfa/totp",
            data={"csrfToken": await csrf_token(client), "code": code_at(secret, clock.now + 90)},
        )
        assert wrong.status_code == 303
        assert wrong.headers["location"] == f"{APP_URL}/auth/mfa/totp?error=InvalidCode"
        assert await adapter.get_account(provider="totp", provider_account_id=user_id) is None
        assert await totp_state(client) == "Off."

        right = await client.post(
            "/auth/mfa/totp",
            data={"csrfToken": await csrf_token(client), "code": code_at(secret, clock.now)},
        )
        assert right.status_code == 200
        assert len(recovery_codes_on(right)) == 10
        assert await adapter.get_account(provider="totp", provider_account_id=user_id)
        assert await totp_state(client) == "On. 10 recovery codes left."
        # The code that confirmed it signs nobody in afterwards.
        await sign_out(client)
        assert not await _proves(client, code_at(secret, clock.now))


# -- TOTP codes -----------------------------------------------------------------------------


async def test_a_totp_code_works_once(clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        code = code_at(secret, clock.now)
        assert await _proves(client, code)
        assert not await _proves(client, code)
        clock.advance(STEP)
        assert await _proves(client, code_at(secret, clock.now))


async def test_of_two_sign_ins_racing_with_one_code_exactly_one_wins(clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as setup:
        secret, _ = await enrolled_user(setup, clock, outbox)
    code = code_at(secret, clock.now)
    async with client_for(app) as first, client_for(app) as second:
        await _challenged(first)
        await _challenged(second)
        answers = await asyncio.gather(answer(first, code), answer(second, code))
        landed = sorted(response.headers["location"] for response in answers)
        assert landed == [APP_URL, INVALID_CODE]
        signed_in = [await whoami(first), await whoami(second)]
    assert signed_in.count("ada@example.com") == 1 and signed_in.count(None) == 1


async def test_a_code_older_than_the_last_one_used_is_refused(clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        clock.advance(5 * STEP)
        # The next step's code (a clock running ahead) moves the last step used on...
        assert await _proves(client, code_at(secret, clock.now + STEP))
        # ...so this step's code, never used and within the window, is a replay now.
        assert not await _proves(client, code_at(secret, clock.now))
        assert not await _proves(client, code_at(secret, clock.now - STEP))
        clock.advance(2 * STEP)
        assert await _proves(client, code_at(secret, clock.now))


@pytest.mark.parametrize(
    ("offset", "works"),
    [(-2 * STEP, False), (-STEP, True), (0, True), (STEP, True), (2 * STEP, False)],
)
async def test_codes_of_the_step_before_and_after_are_accepted_not_two_away(
    clock: Clock, offset: int, works: bool
) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        clock.advance(10 * STEP)
        assert await _proves(client, code_at(secret, clock.now + offset)) is works


def _digits(zero: str) -> Callable[[str], str]:
    """The code written in another script's digits (``zero`` is its 0)."""
    table = str.maketrans("0123456789", "".join(chr(ord(zero) + n) for n in range(10)))
    return lambda code: code.translate(table)


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda code: code + "0", id="seven digits"),
        pytest.param(lambda code: "0" + code, id="seven digits, leading zero"),
        pytest.param(lambda code: code[:5], id="five digits"),
        pytest.param(lambda code: code[:5] + "a", id="a letter"),
        pytest.param(lambda code: code[:5] + "-", id="a dash"),
        pytest.param(lambda code: f"+{code[1:]}", id="a sign"),
        pytest.param(_digits("\u0660"), id="arabic-indic digits"),
        pytest.param(_digits("\uff10"), id="full-width digits"),
        pytest.param(_digits("\u0966"), id="devanagari digits"),
        pytest.param(lambda code: "", id="empty"),
    ],
)
async def test_what_is_not_six_ascii_digits_is_refused(
    clock: Clock, spoil: Callable[[str], str]
) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        code = code_at(secret, clock.now)
        assert spoil(code) != code
        assert not await _proves(client, spoil(code))
        assert await _proves(client, code)  # the code itself was good


async def test_a_code_typed_in_two_groups_is_accepted(clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        code = code_at(secret, clock.now)
        assert await _proves(client, f"{code[:3]} {code[3:]}")


# -- recovery codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param(lambda code: code, id="as shown"),
        pytest.param(str.upper, id="capitals"),
        pytest.param(lambda code: code.replace("-", ""), id="no dash"),
        pytest.param(lambda code: f" {code.replace('-', ' ')} ", id="spaces"),
    ],
)
async def test_a_recovery_code_works_once(clock: Clock, typed: Callable[[str], str]) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        _, codes = await enrolled_user(client, clock, outbox)
        assert await _proves(client, typed(codes[0]))
        assert await totp_state(client) == "On. 9 recovery codes left."
        assert not await _proves(client, codes[0])
        assert await _proves(client, codes[1])
        assert await totp_state(client) == "On. 8 recovery codes left."


async def test_of_two_sign_ins_racing_with_one_recovery_code_exactly_one_wins(
    clock: Clock,
) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as setup:
        _, codes = await enrolled_user(setup, clock, outbox)
    async with client_for(app) as first, client_for(app) as second:
        await _challenged(first)
        await _challenged(second)
        answers = await asyncio.gather(answer(first, codes[0]), answer(second, codes[0]))
        landed = sorted(response.headers["location"] for response in answers)
        assert landed == [APP_URL, INVALID_CODE]
        assert await totp_state(first if await whoami(first) else second) == (
            "On. 9 recovery codes left."
        )


async def test_new_recovery_codes_replace_the_old_set(store: Store, clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox, adapter=store.adapter)
    async with client_for(app) as client:
        _, old = await enrolled_user(client, clock, outbox)
        assert await _proves(client, old[0])
        assert await totp_state(client) == "On. 9 recovery codes left."
        page = await client.post(
            "/auth/mfa/recovery-codes", data={"csrfToken": await csrf_token(client)}
        )
        assert page.status_code == 200
        new = recovery_codes_on(page)
        assert len(new) == 10 and not set(new) & set(old)
        assert await totp_state(client) == "On. 10 recovery codes left."
        user_id = await _user_id(store.adapter)
        account = await store.adapter.get_account(
            provider="recovery-codes", provider_account_id=user_id
        )
        assert account is not None
        generation = account.extra["generation"]
        # The old set is gone from the store, not merely unreachable.
        assert await _recovery_tokens(store) == sorted(
            (f"recovery-code:{user_id}:{generation}", hash_recovery_code((SECRET,), code))
            for code in new
        )
        await sign_out(client)
        assert not await _proves(client, old[1])
        assert await _proves(client, new[0])
        assert await totp_state(client) == "On. 9 recovery codes left."


# -- the auth secret, rotated --------------------------------------------------------------


def _app_with_secrets(adapter: Adapter, clock: Clock, secrets: list[str]) -> Starlette:
    config = AuthConfig(
        secret=secrets,
        adapter=adapter,
        providers=[Password(send=Outbox().send, hasher=FAST_HASHER)],
        two_factor=True,
        clock=clock,
        url=APP_URL,
    )
    return app_of(config)


async def test_a_rotated_secret_still_opens_the_totp_secret_and_seals_it_again(
    clock: Clock,
) -> None:
    adapter = MemoryAdapter()
    outbox = Outbox()
    async with client_for(two_factor_app(clock, outbox=outbox, adapter=adapter)) as client:
        secret, codes = await enrolled_user(client, clock, outbox)
    user_id = await _user_id(adapter)
    new_only = _app_with_secrets(adapter, clock, [NEW_SECRET])
    rotated = _app_with_secrets(adapter, clock, [NEW_SECRET, SECRET])
    code = code_at(secret, clock.now)
    async with client_for(new_only) as client:
        # Without the old secret the sealed one cannot be opened.
        assert not await _proves(client, code)
    async with client_for(rotated) as client:
        assert await _proves(client, code)
        account = await adapter.get_account(provider="totp", provider_account_id=user_id)
        assert account is not None
        sealed = account.extra["secret"]
        assert open_sealed((NEW_SECRET,), "totp secret", sealed, bind=user_id) == (
            secret,
            False,
        )
        # Recovery codes hashed with the old secret still work while it is listed.
        assert await _proves(client, codes[0])
    clock.advance(STEP)
    async with client_for(new_only) as client:
        assert await _proves(client, code_at(secret, clock.now))


async def test_a_held_sign_in_gets_back_the_tokens_its_cookie_had_no_room_for() -> None:
    """Large OAuth tokens do not fit the challenge's cookie; the sign-in's end reads them
    back from the account the first step stored, so the ``jwt`` callback still gets
    ``account["access_token"]``."""
    adapter = MemoryAdapter()
    config = AuthConfig(secret=SECRET, adapter=adapter, two_factor=True)
    user = await adapter.create_user({"email": "ada@example.com"})
    await adapter.link_account(
        {
            "user_id": user.id,
            "type": "oidc",
            "provider": "entra",
            "provider_account_id": "ada-sub",
            "access_token": "a" * 3000,
            "id_token": "i" * 2000,
            "expires_at": 1_900_000_000,
        }
    )
    names = {"provider": "entra", "type": "oidc", "providerAccountId": "ada-sub"}
    held = second_factor.Challenge(
        id="c",
        user_id=user.id,
        account=names,
        profile=None,
        is_new_user=False,
        target="/",
        expires=0.0,
    )
    password_like = second_factor.Challenge(
        id="c",
        user_id=user.id,
        account={"provider": "password", "type": "credentials", "providerAccountId": user.id},
        profile=None,
        is_new_user=False,
        target="/",
        expires=0.0,
    )

    account = await second_factor.account_of(config, held)
    untouched = await second_factor.account_of(config, password_like)

    assert account["access_token"] == "a" * 3000
    assert account["id_token"] == "i" * 2000
    assert account["expires_at"] == 1_900_000_000
    # Only OAuth accounts are read back: a password account's record holds its hash.
    assert untouched == password_like.account
