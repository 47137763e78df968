"""The second step of a sign-in (``/auth/mfa``), bearer clients' second factor, and the
routes that change factors.

A first factor (a password, a magic link, GitHub) for a user with TOTP starts no
session: the browser holds a sealed challenge and is asked for a code. Flows run in
both strategies, on the MemoryAdapter and (the main flow) the real mongod through
PyMongo, with an injected clock.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from starlette.requests import Request

from asgi_session import AuthConfig, Events, RateLimit, RateLimits, mfa
from asgi_session.backends import MemoryAdapter
from asgi_session.providers import Email, GitHub
from tests.support.apps import SECRET, Clock, client_for, csrf_token, set_cookies
from tests.support.fake_github import FakeGitHub
from tests.support.oauth import (
    APP_HOSTS,
    APP_ORIGIN,
    ProviderBrowser,
    app_client,
    begin_sign_in,
    land,
    oauth_app,
    session_of,
)
from tests.support.passwords import (
    APP_URL,
    GOOD_PASSWORD,
    Outbox,
    Store,
    ask_reset,
    client_from,
    local_path,
    make_store,
    reset,
    sign_in,
    sign_up,
    signed_in,
    whoami,
)
from tests.support.two_factor import (
    ALIGNED,
    MFA_URL,
    STEP,
    TWO_FACTOR_COOKIE,
    answer,
    app_of,
    challenge_of,
    code_at,
    confirmed_user,
    enrol,
    enrolled_user,
    hold_challenge,
    recovery_codes_on,
    sign_out,
    totp_state,
    two_factor_app,
    two_factor_config,
)

INVALID_CODE = f"{MFA_URL}?error=InvalidCode"
FAILED = f"{APP_URL}/auth/signin?error=TwoFactorFailed"
EXPIRED = f"{APP_URL}/auth/signin?error=TwoFactorExpired"
SECURITY = f"{APP_URL}/auth/account/security"
REAUTHENTICATE = (
    f"{APP_URL}/auth/reauthenticate?callbackUrl=http%3A%2F%2Ftestserver%2Fauth%2Faccount%2Fsecurity"
)


@pytest.fixture(params=["memory", "pymongo"])
def store(request: pytest.FixtureRequest) -> Store:
    return make_store(request)


@pytest.fixture
def clock() -> Clock:
    return Clock(ALIGNED)


def _cleared(response: httpx2.Response, name: str = TWO_FACTOR_COOKIE) -> bool:
    return "Max-Age=0" in set_cookies(response).get(name, "")


async def _challenged(
    client: httpx2.AsyncClient, email: str = "ada@example.com", **fields: str
) -> httpx2.Response:
    """The right password of an enrolled user: asked for a code, signed in nowhere."""
    response = await client.post(
        "/auth/callback/password",
        data={
            "csrfToken": await csrf_token(client),
            "email": email,
            "password": GOOD_PASSWORD,
            **fields,
        },
    )
    assert (response.status_code, response.headers["location"]) == (302, MFA_URL)
    assert not signed_in(response)
    return response


# -- the challenge ------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_first_factor_asks_for_the_code_and_the_code_finishes_the_sign_in(
    store: Store, strategy: Any, clock: Clock
) -> None:
    events: list[tuple[float, str | None]] = []

    def on_sign_in(account: dict[str, Any] | None) -> None:
        events.append((clock.now, None if account is None else account.get("provider")))

    outbox = Outbox()
    app = two_factor_app(
        clock,
        outbox=outbox,
        adapter=store.adapter,
        strategy=strategy,
        config_events=Events(sign_in=on_sign_in),
    )
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        events.clear()  # the sign-up's
        if strategy == "database":
            assert await store.count("sessions") == 0

        first = await _challenged(client, callbackUrl="/dashboard")
        cookie = set_cookies(first)[TWO_FACTOR_COOKIE]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=300" in cookie
        assert await whoami(client) is None
        assert events == []
        if strategy == "database":
            assert await store.count("sessions") == 0
        page = await client.get("/auth/mfa")
        assert page.status_code == 200 and "name=code" in page.text

        clock.advance(5)
        done = await answer(client, code_at(secret, clock.now))
        assert (done.status_code, done.headers["location"]) == (302, f"{APP_URL}/dashboard")
        assert signed_in(done)
        assert _cleared(done)
        assert await whoami(client) == "ada@example.com"
        assert events == [(clock.now, "password")]
        if strategy == "database":
            assert await store.count("sessions") == 1


async def test_users_without_a_second_factor_sign_in_directly(clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as ada, client_for(app) as bob:
        await enrolled_user(ada, clock, outbox)
        await sign_up(bob, "bob@example.com")
        await sign_out(bob)
        await _challenged(ada)
        response = await sign_in(bob, "bob@example.com")
        assert response.headers["location"] == APP_URL
        assert signed_in(response)
        assert TWO_FACTOR_COOKIE not in set_cookies(response)
        assert await whoami(bob) == "bob@example.com"


async def test_five_wrong_codes_end_the_challenge_even_for_a_right_sixth(clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        await _challenged(client)
        held = challenge_of(client)
        for _ in range(4):
            wrong = await answer(client, "000000")
            assert wrong.headers["location"] == INVALID_CODE
            assert not _cleared(wrong)
        fifth = await answer(client, "000000")
        assert fifth.headers["location"] == FAILED
        assert _cleared(fifth)
        # The count is the server's: the cookie sent again carries none of its own.
        hold_challenge(client, held)
        sixth = await answer(client, code_at(secret, clock.now))
        assert sixth.headers["location"] == FAILED
        assert not signed_in(sixth)
        assert await whoami(client) is None
        # Starting over works.
        await _challenged(client)
        assert (await answer(client, code_at(secret, clock.now))).headers["location"] == APP_URL


@pytest.mark.parametrize(("wait", "works"), [(299, True), (300, False), (314, False)])
async def test_a_challenge_lasts_five_minutes(clock: Clock, wait: int, works: bool) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        await _challenged(client)
        clock.advance(wait)
        response = await answer(client, code_at(secret, clock.now))
        assert signed_in(response) is works
        assert response.headers["location"] == (APP_URL if works else EXPIRED)
        assert await whoami(client) == ("ada@example.com" if works else None)


async def test_past_its_end_a_challenge_takes_no_code_even_with_rate_limits_off(
    clock: Clock,
) -> None:
    # Its attempt counter lives until the challenge ends: a challenge still read after
    # that (within the token's clock tolerance) would make every code a first attempt.
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox, config_rate_limits=None)
    async with client_for(app) as client:
        await enrolled_user(client, clock, outbox)
        await _challenged(client)
        held = challenge_of(client)
        clock.advance(299)
        for _ in range(4):
            assert (await answer(client, "000000")).headers["location"] == INVALID_CODE
        clock.advance(6)
        for _ in range(3):
            hold_challenge(client, held)
            assert (await answer(client, "000000")).headers["location"] == EXPIRED


def _flip(value: str) -> str:
    middle = len(value) // 2
    return value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_flip, id="tampered"),
        pytest.param(lambda value: value[:-10], id="cut"),
        pytest.param(lambda value: value + value, id="doubled"),
        pytest.param(lambda value: "", id="empty"),
        pytest.param(lambda value: "not.a.jwe.at.all", id="garbage"),
        pytest.param(None, id="missing"),
    ],
)
async def test_a_spoilt_or_missing_challenge_gives_no_session(clock: Clock, spoil: Any) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        await _challenged(client)
        held = challenge_of(client)
        if spoil is None:
            client.cookies.delete(TWO_FACTOR_COOKIE)
        else:
            hold_challenge(client, spoil(held))
        page = await client.get("/auth/mfa")
        assert page.headers["location"] == EXPIRED
        response = await answer(client, code_at(secret, clock.now))
        assert response.headers["location"] == EXPIRED
        assert not signed_in(response)
        assert await whoami(client) is None
        # The code was not used up by the attempt.
        hold_challenge(client, held)
        assert (await answer(client, code_at(secret, clock.now))).headers["location"] == APP_URL


async def test_a_challenge_is_answered_by_its_own_users_code_alone(clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as ada, client_for(app) as bob:
        ada_secret, _ = await enrolled_user(ada, clock, outbox)
        bob_secret, _ = await enrolled_user(bob, clock, outbox, "bob@example.com")
        await _challenged(ada)
        await _challenged(bob, "bob@example.com")
        code = code_at(bob_secret, clock.now)
        crossed = await answer(ada, code)
        assert crossed.headers["location"] == INVALID_CODE
        assert await whoami(ada) is None
        # Bob's challenge in Ada's browser signs in Bob, never Ada.
        hold_challenge(ada, challenge_of(bob))
        assert (await answer(ada, code)).headers["location"] == APP_URL
        assert await whoami(ada) == "bob@example.com"
        assert (await answer(bob, code)).headers["location"] == INVALID_CODE  # used
        await _challenged(ada)
        assert (await answer(ada, code_at(ada_secret, clock.now))).headers["location"] == APP_URL
        assert await whoami(ada) == "ada@example.com"


async def test_a_challenge_copied_before_its_success_cannot_sign_in_again(
    clock: Clock,
) -> None:
    # The cookie (the password, proven) copied from a browser that went on to sign in:
    # neither the code used nor a later one starts a second session with it.
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client, client_for(app) as copy:
        secret, _ = await enrolled_user(client, clock, outbox)
        await _challenged(client)
        held = challenge_of(client)
        code = code_at(secret, clock.now)
        assert (await answer(client, code)).headers["location"] == APP_URL
        assert client.cookies.get(TWO_FACTOR_COOKIE) is None
        hold_challenge(copy, held)
        assert (await answer(copy, code)).headers["location"] == INVALID_CODE
        clock.advance(STEP)
        again = await answer(copy, code_at(secret, clock.now))
        assert again.headers["location"] == EXPIRED
        assert not signed_in(again)
        assert _cleared(again)
        assert await whoami(copy) is None


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
async def test_a_code_without_the_csrf_token_is_refused(clock: Clock, token: str | None) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        await _challenged(client)
        code = code_at(secret, clock.now)
        data = {"code": code} if token is None else {"code": code, "csrfToken": token}
        refused = await client.post("/auth/mfa", data=data)
        assert refused.headers["location"] == f"{MFA_URL}?error=MissingCSRF"
        assert not signed_in(refused)
        assert await whoami(client) is None
        assert (await answer(client, code)).headers["location"] == APP_URL


async def test_wrong_codes_are_limited_per_user_across_challenges_and_clients(
    clock: Clock,
) -> None:
    outbox = Outbox()
    app = two_factor_app(
        clock, outbox=outbox, config_rate_limits=RateLimits(two_factor_per_user=RateLimit(3, 900))
    )
    async with client_for(app) as client, client_from(app, "198.51.100.9") as elsewhere:
        secret, _ = await enrolled_user(client, clock, outbox)
        await _challenged(client)
        for _ in range(3):
            assert (await answer(client, "000000")).headers["location"] == INVALID_CODE
        await _challenged(elsewhere)
        limited = await answer(elsewhere, code_at(secret, clock.now))
        assert limited.headers["location"] == f"{MFA_URL}?error=RateLimited"
        assert 0 < int(limited.headers["retry-after"]) <= 900
        assert not signed_in(limited)
        assert await whoami(elsewhere) is None
        clock.advance(900)
        await _challenged(elsewhere)
        assert (await answer(elsewhere, code_at(secret, clock.now))).headers["location"] == APP_URL


async def test_right_codes_do_not_count_towards_the_limit(clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(
        clock, outbox=outbox, config_rate_limits=RateLimits(two_factor_per_user=RateLimit(2, 900))
    )
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        for _ in range(4):
            await _challenged(client)
            assert (await answer(client, code_at(secret, clock.now))).headers["location"] == APP_URL
            await sign_out(client)
            clock.advance(STEP)


# -- other first factors ------------------------------------------------------------------


async def test_a_magic_link_of_an_enrolled_user_asks_for_the_code(clock: Clock) -> None:
    links: list[str] = []

    def send_link(identifier: str, url: str, request: Request) -> None:
        links.append(url)

    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox, providers=[Email(send=send_link)])
    async with client_for(app) as client:
        # The address proven before the factor is set: the owner's own factor.
        await confirmed_user(client, outbox)
        secret, _ = await enrol(client, clock)
        await sign_out(client)
        clock.advance(STEP)
        await client.post(
            "/auth/signin/email",
            data={"csrfToken": await csrf_token(client), "email": "ada@example.com"},
        )
        landed = await client.get(local_path(links[-1]))
        assert (landed.status_code, landed.headers["location"]) == (302, MFA_URL)
        assert not signed_in(landed)
        assert await whoami(client) is None
        done = await answer(client, code_at(secret, clock.now))
        assert done.headers["location"] == APP_URL
        assert await whoami(client) == "ada@example.com"


async def test_a_github_sign_in_of_an_enrolled_user_asks_for_the_code(
    fake_github: FakeGitHub, provider_browser: ProviderBrowser
) -> None:
    clock = Clock()
    config = AuthConfig(
        secret=SECRET,
        allowed_hosts=APP_HOSTS,
        adapter=MemoryAdapter(),
        two_factor=True,
        clock=clock,
        providers=[
            GitHub(
                client_id=fake_github.client_id,
                client_secret=fake_github.client_secret,
                enterprise_url=fake_github.url,
            )
        ],
    )

    async def through_github(client: httpx2.AsyncClient) -> httpx2.Response:
        started = await begin_sign_in(client, "github")
        return await land(client, await provider_browser.authorize(started.headers["location"]))

    async with app_client(oauth_app(config)) as client:
        first = await through_github(client)
        assert first.headers["location"] == f"{APP_ORIGIN}/dashboard"
        secret, _ = await enrol(client, clock)
        client.cookies.clear()
        clock.advance(STEP)
        asked = await through_github(client)
        assert asked.headers["location"] == f"{APP_ORIGIN}/auth/mfa"
        assert await session_of(client) is None
        done = await answer(client, code_at(secret, clock.now))
        assert done.headers["location"] == f"{APP_ORIGIN}/dashboard"
        assert (await session_of(client))["user"]["email"] == "octocat@example.com"


# -- bearer clients ------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_bearer_client_gets_a_challenge_then_a_token_for_the_code(
    strategy: Any, clock: Clock
) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox, strategy=strategy, config_bearer_tokens=True)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        client.cookies.clear()
        fields = {"provider": "password", "email": "ada@example.com", "password": GOOD_PASSWORD}
        asked = await client.post("/auth/token", json=fields)
        assert asked.status_code == 401
        body = asked.json()
        assert body["error"] == "TwoFactorRequired"
        assert isinstance(body["challenge"], str) and body["challenge"]
        assert "set-cookie" not in asked.headers
        challenge = {"challenge": body["challenge"]}

        wrong = await client.post("/auth/token", json={**challenge, "code": "000000"})
        assert (wrong.status_code, wrong.json()) == (401, {"error": "InvalidCode"})
        spoilt = await client.post(
            "/auth/token", json={**challenge, "challenge": "x", "code": "000000"}
        )
        assert (spoilt.status_code, spoilt.json()["error"]) == (401, "TwoFactorExpired")

        issued = await client.post(
            "/auth/token", json={**challenge, "code": code_at(secret, clock.now)}
        )
        assert issued.status_code == 200, issued.text
        token = issued.json()["token"]
        assert "set-cookie" not in issued.headers
        me = await client.get("/", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["user"]["email"] == "ada@example.com"
        clock.advance(STEP)
        again = await client.post(
            "/auth/token", json={**challenge, "code": code_at(secret, clock.now)}
        )
        assert (again.status_code, again.json()["error"]) == (401, "TwoFactorExpired")


async def test_a_bearer_challenge_ends_after_five_wrong_codes(clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox, config_bearer_tokens=True)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        fields = {"provider": "password", "email": "ada@example.com", "password": GOOD_PASSWORD}
        sealed = (await client.post("/auth/token", json=fields)).json()["challenge"]
        challenge = {"challenge": sealed}
        errors = [
            (await client.post("/auth/token", json={**challenge, "code": "000000"})).json()
            for _ in range(5)
        ]
        assert errors == [{"error": "InvalidCode"}] * 4 + [{"error": "TwoFactorFailed"}]
        last = await client.post(
            "/auth/token", json={**challenge, "code": code_at(secret, clock.now)}
        )
        assert (last.status_code, last.json()) == (401, {"error": "TwoFactorFailed"})


# -- changing factors -----------------------------------------------------------------------


async def test_the_security_page_shows_the_factor_and_turning_it_off_signs_in_directly(
    store: Store, clock: Clock
) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox, adapter=store.adapter)
    async with client_for(app) as client:
        await confirmed_user(client, outbox)
        assert await totp_state(client) == "Off."
        await enrol(client, clock)
        assert await totp_state(client) == "On. 10 recovery codes left."
        turned_off = await client.post(
            "/auth/mfa/totp/disable", data={"csrfToken": await csrf_token(client)}
        )
        assert turned_off.status_code == 303
        assert turned_off.headers["location"] == f"{SECURITY}?message=totp-off"
        assert await totp_state(client) == "Off."
        user = await store.adapter.get_user_by_email("ada@example.com")
        assert user is not None
        for provider in ("totp", "recovery-codes"):
            assert (
                await store.adapter.get_account(provider=provider, provider_account_id=user.id)
                is None
            )
        assert not [entry for entry in await store.verification_tokens() if "recovery" in entry[0]]
        await sign_out(client)
        response = await sign_in(client)
        assert response.headers["location"] == APP_URL and signed_in(response)


@pytest.mark.parametrize("path", ["/auth/mfa/totp/disable", "/auth/mfa/recovery-codes"])
async def test_changing_factors_needs_the_csrf_token_and_a_fresh_session(
    clock: Clock, path: str
) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        secret, codes = await enrolled_user(client, clock, outbox)
        await _challenged(client)
        await answer(client, code_at(secret, clock.now))
        no_csrf = await client.post(path, data={})
        assert (no_csrf.status_code, no_csrf.headers["location"]) == (
            303,
            f"{SECURITY}?error=MissingCSRF",
        )
        clock.advance(301)
        stale = await client.post(path, data={"csrfToken": await csrf_token(client)})
        assert (stale.status_code, stale.headers["location"]) == (303, REAUTHENTICATE)
        assert await totp_state(client) == "On. 10 recovery codes left."
        # Proving it again (a code, here) makes the session fresh: then it works.
        proved = await client.post(
            "/auth/reauthenticate",
            data={
                "csrfToken": await csrf_token(client),
                "code": code_at(secret, clock.now),
                "callbackUrl": SECURITY,
            },
        )
        assert proved.headers["location"] == SECURITY
        done = await client.post(path, data={"csrfToken": await csrf_token(client)})
        if path.endswith("disable"):
            assert done.status_code == 303
            assert await totp_state(client) == "Off."
        else:
            assert done.status_code == 200
            new = recovery_codes_on(done)
            assert len(new) == 10 and not set(new) & set(codes)
            assert await totp_state(client) == "On. 10 recovery codes left."
            await sign_out(client)
            await _challenged(client)
            assert (await answer(client, codes[0])).headers["location"] == INVALID_CODE


async def test_enrolment_needs_a_fresh_session(clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        await sign_up(client)
        clock.advance(301)
        page = await client.get("/auth/mfa/totp")
        assert page.status_code == 303
        assert page.headers["location"] == (
            f"{APP_URL}/auth/reauthenticate?callbackUrl=http%3A%2F%2Ftestserver%2Fauth%2Fmfa%2Ftotp"
        )


async def test_an_account_nobody_confirmed_takes_no_second_factor(clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        # Whoever signs up with an address is signed in before its owner proves it.
        await sign_up(client)
        page = await client.get("/auth/mfa/totp")
        posted = await client.post(
            "/auth/mfa/totp", data={"csrfToken": await csrf_token(client), "code": "123456"}
        )
        state = await totp_state(client)

    refused = f"{SECURITY}?error=AccountNotConfirmed"
    assert (page.status_code, page.headers["location"]) == (303, refused)
    assert (posted.status_code, posted.headers["location"]) == (303, refused)
    assert state == "Off."


async def test_factors_set_before_the_address_was_proven_go_when_its_owner_proves_it(
    clock: Clock,
) -> None:
    outbox = Outbox()
    config = two_factor_config(clock, outbox=outbox)
    app = app_of(config)
    async with client_for(app) as squatter, client_for(app) as owner:
        await sign_up(squatter)
        user = await config.adapter.get_user_by_email("ada@example.com")  # type: ignore[union-attr]
        assert user is not None
        # Set through the app's own code, which the routes refuse for such accounts.
        secret = mfa.new_totp_secret()
        assert await mfa.enable_totp(config, user.id, secret, code_at(secret, clock.now))
        await ask_reset(owner)
        clock.advance(STEP)
        reset_done = await reset(owner, outbox.last("ada@example.com"))
        left = await mfa.second_factors(config, user.id)

    assert reset_done.headers["location"] != MFA_URL
    assert not left.totp and left.recovery_codes_left == 0


async def test_factors_set_before_the_address_was_proven_go_at_its_magic_link(
    clock: Clock,
) -> None:
    links: list[str] = []

    def send_link(identifier: str, url: str, request: Request) -> None:
        links.append(url)

    outbox = Outbox()
    config = two_factor_config(clock, outbox=outbox, providers=[Email(send=send_link)])
    app = app_of(config)
    async with client_for(app) as squatter, client_for(app) as owner:
        await sign_up(squatter)
        user = await config.adapter.get_user_by_email("ada@example.com")  # type: ignore[union-attr]
        assert user is not None
        secret = mfa.new_totp_secret()
        assert await mfa.enable_totp(config, user.id, secret, code_at(secret, clock.now))
        await owner.post(
            "/auth/signin/email",
            data={"csrfToken": await csrf_token(owner), "email": "ada@example.com"},
        )
        landed = await owner.get(local_path(links[-1]))
        left = await mfa.second_factors(config, user.id)

    assert landed.headers["location"] != MFA_URL
    assert not left.totp and left.recovery_codes_left == 0


async def test_wrong_codes_to_reauthenticate_end_the_session_whatever_the_rate_limits(
    clock: Clock,
) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox, config_rate_limits=None)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        await _challenged(client)
        await answer(client, code_at(secret, clock.now))
        clock.advance(301)  # a stale session: a stolen cookie, say, guessing codes

        async def guess(code: str) -> httpx2.Response:
            return await client.post(
                "/auth/reauthenticate",
                data={"csrfToken": await csrf_token(client), "code": code, "callbackUrl": "/"},
            )

        wrong = [await guess(f"{n:06d}") for n in range(5)]
        still_signed_in = await whoami(client)
        ended = await guess(code_at(secret, clock.now))
        after = await whoami(client)

    assert all(response.status_code == 200 for response in wrong)
    assert still_signed_in == "ada@example.com"
    assert ended.headers["location"] == FAILED
    assert after is None


async def test_right_codes_to_reauthenticate_do_not_count(clock: Clock) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        secret, _ = await enrolled_user(client, clock, outbox)
        await _challenged(client)
        await answer(client, code_at(secret, clock.now))
        landed = []
        for _ in range(7):
            clock.advance(STEP)  # each code of its own step
            response = await client.post(
                "/auth/reauthenticate",
                data={
                    "csrfToken": await csrf_token(client),
                    "code": code_at(secret, clock.now),
                    "callbackUrl": "/",
                },
            )
            landed.append(response.headers.get("location"))
        still = await whoami(client)

    assert landed == [f"{APP_URL}/"] * 7
    assert still == "ada@example.com"


# -- what no form sends ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param("code=" + "9" * 60_000, "application/x-www-form-urlencoded", id="huge"),
        pytest.param("code=1&code=2", "application/x-www-form-urlencoded", id="twice"),
        pytest.param("code=%ff%fe%00", "application/x-www-form-urlencoded", id="bad utf-8"),
        pytest.param("code=%ED%A0%80", "application/x-www-form-urlencoded", id="surrogate"),
        pytest.param('{"code": "\\ud800\\udfff\\ud800"}', "application/json", id="json surrogates"),
        pytest.param('{"code": 123456}', "application/json", id="json number"),
        pytest.param('{"code": ["123456"]}', "application/json", id="json list"),
        pytest.param('{"code": {"$ne": null}}', "application/json", id="json object"),
        pytest.param('{"code": null}', "application/json", id="json null"),
        pytest.param("[1, 2]", "application/json", id="json array"),
        pytest.param("{" * 10_000, "application/json", id="json deep"),
    ],
)
@pytest.mark.parametrize("path", ["/auth/mfa", "/auth/mfa/totp", "/auth/reauthenticate"])
async def test_garbage_is_refused_never_an_error(
    clock: Clock, content: str, content_type: str, path: str
) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox)
    async with client_for(app) as client:
        if path == "/auth/mfa/totp":
            # Enrolling: the code goes to the secret on the page.
            await confirmed_user(client, outbox)
            assert (await client.get(path)).status_code == 200
        else:
            secret, _ = await enrolled_user(client, clock, outbox)
            await _challenged(client)
            if path == "/auth/reauthenticate":
                await answer(client, code_at(secret, clock.now))
        token = await csrf_token(client)
        if content_type == "application/json" and content.startswith('{"'):
            body = '{"csrfToken": "' + token + '", ' + content[1:]
        elif content_type == "application/json":
            body = content
        else:
            body = f"csrfToken={token}&{content}"
        response = await client.post(path, content=body, headers={"content-type": content_type})
        assert response.status_code < 500, response.text
        if path == "/auth/mfa":
            assert not signed_in(response)
            assert await whoami(client) is None


@pytest.mark.parametrize(
    "body",
    [
        '{"provider": "password", "challenge": "\\ud800", "code": "\\udc00"}',
        '{"provider": "password", "challenge": 5, "code": [1]}',
        '{"provider": "password", "challenge": "CHALLENGE", "code": {"a": 1}}',
        '{"provider": "password", "challenge": "CHALLENGE", "code": 123456}',
        '{"provider": "password", "challenge": "CHALLENGE", "code": "' + "7" * 40_000 + '"}',
        '{"provider": "password", "challenge": "' + "x" * 40_000 + '", "code": "1"}',
        '{"provider": "password", "challenge": null, "code": null}',
    ],
)
async def test_bearer_garbage_is_refused_never_an_error(clock: Clock, body: str) -> None:
    outbox = Outbox()
    app = two_factor_app(clock, outbox=outbox, config_bearer_tokens=True)
    async with client_for(app) as client:
        await enrolled_user(client, clock, outbox)
        fields = {"provider": "password", "email": "ada@example.com", "password": GOOD_PASSWORD}
        sealed = (await client.post("/auth/token", json=fields)).json()["challenge"]
        response = await client.post(
            "/auth/token",
            content=body.replace("CHALLENGE", sealed),
            headers={"content-type": "application/json"},
        )
        assert 400 <= response.status_code < 500, response.text
        assert "token" not in response.text
