"""The password routes past sign-up: forgotten passwords, resets, changes, their rate
limits and their pages.

Flows run on the MemoryAdapter and on the real mongod through PyMongo, in both
strategies. With JWTs "another device" is a client of a second app instance sharing the
store, so that a revocation is seen as another server sees it: within
``revocation_check_interval`` seconds (the clock is moved past it). Database sessions
are checked as rows.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from starlette.applications import Starlette

from asgi_session import Pages, RateLimit, RateLimits
from asgi_session.providers._email import hash_token
from tests.support.apps import SECRET, Clock, client_for, csrf_token
from tests.support.passwords import (
    APP_URL,
    FAST_HASHER,
    GOOD_PASSWORD,
    Mail,
    Outbox,
    Store,
    ask_reset,
    change,
    client_from,
    link_params,
    local_path,
    make_store,
    password_app,
    reset,
    sign_in,
    sign_up,
    signed_in,
    whoami,
)

HOUR = 60 * 60
#: A moment at the start of a minute, for exact Retry-Afters.
ALIGNED = 1_800_000_000.0
#: Past JWTStrategy's default revocation_check_interval (10 s).
PAST_REVOCATION_CHECK = 11
NEW_PASSWORD = "a brand new passphrase"
CHECK_EMAIL = f"{APP_URL}/auth/verify-request?provider=password&type=reset"


@pytest.fixture(params=["memory", "pymongo"])
def store(request: pytest.FixtureRequest) -> Store:
    return make_store(request)


def _reset_mail(outbox: Outbox, to: str = "ada@example.com") -> Mail:
    mails = [mail for mail in outbox.to(to) if mail.subject == "Reset your password"]
    assert mails, f"no reset link sent to {to}"
    return mails[-1]


def _error_code(response: httpx2.Response) -> str | None:
    found = re.search(r'data-error="([^"]+)"', response.text)
    return found.group(1) if found else None


async def _password_works(app: Starlette, password: str, email: str = "ada@example.com") -> bool:
    async with client_for(app) as client:
        return signed_in(await sign_in(client, email=email, password=password))


def _apps(
    store: Store, strategy: Any, clock: Clock, outbox: Outbox, **options: Any
) -> tuple[Starlette, Starlette]:
    """The browser's app, and another device's: for JWT a second instance on the same
    store, which learns of a revocation within ``revocation_check_interval``. Database
    sessions are rows: both devices use one instance, since a second one's session cache
    hears of a deletion from MongoDB's change stream some milliseconds later, and the
    rows themselves are checked."""
    app = password_app(
        outbox, adapter=store.adapter, strategy=strategy, config_clock=clock, **options
    )
    if strategy == "database":
        return app, app
    other = password_app(
        outbox, adapter=store.adapter, strategy=strategy, config_clock=clock, **options
    )
    return app, other


# -- forgot --------------------------------------------------------------------------------


async def test_forgot_answers_alike_for_a_known_and_an_unknown_address(store: Store) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter)
    async with client_for(app) as client:
        await sign_up(client)
        outbox.sent.clear()
        known = await ask_reset(client, "ada@example.com")
        unknown = await ask_reset(client, "nobody@example.com")
        token = await csrf_token(client)
        as_json = [
            (
                await client.post(
                    "/auth/password/forgot",
                    data={"csrfToken": token, "email": email},
                    headers={"X-Auth-Return-Redirect": "1"},
                )
            ).json()
            for email in ("ada@example.com", "nobody@example.com")
        ]

    assert (known.status_code, known.headers["location"]) == (302, CHECK_EMAIL)
    assert (unknown.status_code, unknown.headers["location"]) == (302, CHECK_EMAIL)
    assert known.headers.get_list("set-cookie") == unknown.headers.get_list("set-cookie")
    assert as_json == [{"url": CHECK_EMAIL}] * 2
    assert {mail.to for mail in outbox.sent} == {"ada@example.com"}
    mail = _reset_mail(outbox)
    assert mail.url.startswith(f"{APP_URL}/auth/password/reset?token=")
    assert "60 minutes" in mail.text


async def test_forgot_refuses_what_is_not_an_address() -> None:
    outbox = Outbox()
    app = password_app(outbox)
    async with client_for(app) as client:
        response = await ask_reset(client, "not an address")
        no_csrf = await client.post("/auth/password/forgot", data={"email": "ada@example.com"})
    assert response.status_code == 400
    assert _error_code(response) == "InvalidEmail"
    assert no_csrf.status_code == 400
    assert _error_code(no_csrf) == "MissingCSRF"
    assert outbox.sent == []


async def test_a_reset_link_is_stored_hashed_under_its_purpose(store: Store) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter)
    async with client_for(app) as client:
        await sign_up(client)
        await ask_reset(client)
    link = link_params(_reset_mail(outbox).url)
    assert link["email"] == "ada@example.com"
    stored = [entry for entry in await store.verification_tokens() if "reset" in entry[0]]
    assert stored == [("password-reset:ada@example.com", hash_token(link["token"], SECRET))]
    assert link["token"] not in str(await store.verification_tokens())


# -- reset ---------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_reset_sets_the_password_ends_every_session_and_signs_this_browser_in(
    store: Store, strategy: Any, clock: Clock
) -> None:
    outbox = Outbox()
    app, elsewhere = _apps(store, strategy, clock, outbox)
    async with client_for(app) as browser, client_for(elsewhere) as device:
        await sign_up(browser)
        await sign_in(device)
        assert await whoami(device) == "ada@example.com"  # the other instance knows it
        user = await store.adapter.get_user_by_email("ada@example.com")
        assert user is not None and user.email_verified is None

        await ask_reset(browser)
        clock.advance(5)
        response = await reset(browser, _reset_mail(outbox), NEW_PASSWORD)
        assert response.status_code == 302
        assert response.headers["location"] == APP_URL
        assert response.headers["referrer-policy"] == "no-referrer"
        assert signed_in(response)
        assert await whoami(browser) == "ada@example.com"

        clock.advance(PAST_REVOCATION_CHECK)
        assert await whoami(device) is None
        assert await whoami(browser) == "ada@example.com"
        if strategy == "database":
            assert await store.count("sessions") == 1  # this browser's new one alone

    assert not await _password_works(app, GOOD_PASSWORD)
    assert await _password_works(app, NEW_PASSWORD)
    user = await store.adapter.get_user_by_email("ada@example.com")
    assert user is not None and user.email_verified is not None  # the inbox was proved


async def test_a_reset_link_works_once(store: Store) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter)
    async with client_for(app) as client:
        await sign_up(client)
        await ask_reset(client)
        mail = _reset_mail(outbox)
        assert signed_in(await reset(client, mail, NEW_PASSWORD))
        client.cookies.clear()
        again = await reset(client, mail, "a third passphrase here")
    assert again.status_code == 400
    assert _error_code(again) == "InvalidResetLink"
    assert "Forgot your password?" in again.text  # a new link is asked for there
    assert not signed_in(again)
    assert await _password_works(app, NEW_PASSWORD)


@pytest.mark.parametrize(("wait", "works"), [(HOUR - 10, True), (HOUR + 1, False)])
async def test_a_reset_link_works_for_an_hour(
    store: Store, clock: Clock, wait: int, works: bool
) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter, config_clock=clock)
    async with client_for(app) as client:
        await sign_up(client)
        await ask_reset(client)
        clock.advance(wait)
        client.cookies.clear()
        response = await reset(client, _reset_mail(outbox), NEW_PASSWORD)
    assert signed_in(response) is works
    assert await _password_works(app, NEW_PASSWORD) is works
    assert await _password_works(app, GOOD_PASSWORD) is not works
    if not works:
        assert _error_code(response) == "InvalidResetLink"


async def test_only_the_newest_reset_link_works(store: Store) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter)
    async with client_for(app) as client:
        await sign_up(client)
        await ask_reset(client)
        first = _reset_mail(outbox)
        await ask_reset(client)
        second = _reset_mail(outbox)
        assert first != second
        client.cookies.clear()
        old = await reset(client, first, NEW_PASSWORD)
        assert _error_code(old) == "InvalidResetLink"
        assert not await _password_works(app, NEW_PASSWORD)
        assert signed_in(await reset(client, second, NEW_PASSWORD))


async def test_a_reset_link_is_bound_to_its_address(store: Store) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter)
    async with client_for(app) as client:
        await sign_up(client)
        await sign_up(client, email="bob@example.com")
        client.cookies.clear()
        await ask_reset(client, "ada@example.com")
        ada = _reset_mail(outbox)
        params = link_params(ada.url)
        token = await csrf_token(client)
        crossed = await client.post(
            "/auth/password/reset",
            data={
                "csrfToken": token,
                "token": params["token"],
                "email": "bob@example.com",
                "password": NEW_PASSWORD,
            },
        )
        assert _error_code(crossed) == "InvalidResetLink"
        assert not signed_in(crossed)
        assert not await _password_works(app, NEW_PASSWORD, "bob@example.com")
        assert await _password_works(app, GOOD_PASSWORD, "bob@example.com")
        # Ada's own link was not used up by the attempt.
        assert signed_in(await reset(client, ada, NEW_PASSWORD))
        assert await whoami(client) == "ada@example.com"


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short", "PasswordTooShort"),
        ("ada@example.com", "PasswordMatchesEmail"),
        ("password1234", "PasswordTooCommon"),
    ],
)
async def test_a_refused_new_password_does_not_use_the_link_up(
    store: Store, password: str, code: str
) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter)
    async with client_for(app) as client:
        await sign_up(client)
        client.cookies.clear()
        await ask_reset(client)
        mail = _reset_mail(outbox)
        refused = await reset(client, mail, password)
        assert refused.status_code == 400
        assert _error_code(refused) == code
        assert not signed_in(refused)
        # The form comes back with the link's token, to try again.
        assert f'value="{link_params(mail.url)["token"]}"' in refused.text
        assert refused.headers["referrer-policy"] == "no-referrer"
        assert await _password_works(app, GOOD_PASSWORD)
        assert signed_in(await reset(client, mail, NEW_PASSWORD))


async def test_the_reset_page_shows_a_form_without_using_the_link_up(store: Store) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter)
    async with client_for(app) as client:
        await sign_up(client)
        client.cookies.clear()
        await ask_reset(client)
        mail = _reset_mail(outbox)
        for _ in range(2):
            page = await client.get(local_path(mail.url))
            assert page.status_code == 200
            assert page.headers["referrer-policy"] == "no-referrer"
            assert 'action="http://testserver/auth/password/reset"' in page.text
            assert f'value="{link_params(mail.url)["token"]}"' in page.text
            assert not signed_in(page)
        head = await client.head(local_path(mail.url))
        assert head.status_code == 200
        assert signed_in(await reset(client, mail, NEW_PASSWORD))


async def test_a_reset_sets_a_first_password_for_a_user_without_one(store: Store) -> None:
    """A user another provider made (no password account): the reset link creates one."""
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter)
    await store.adapter.create_user({"email": "ada@example.com", "email_verified": None})
    async with client_for(app) as client:
        assert not signed_in(await sign_in(client))
        await ask_reset(client)
        assert signed_in(await reset(client, _reset_mail(outbox), NEW_PASSWORD))
    assert await store.count("accounts") == 1
    assert await _password_works(app, NEW_PASSWORD)


# -- change --------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_change_ends_the_other_sessions_and_keeps_this_one(
    store: Store, strategy: Any, clock: Clock
) -> None:
    outbox = Outbox()
    app, elsewhere = _apps(store, strategy, clock, outbox)
    async with client_for(app) as browser, client_for(elsewhere) as device:
        await sign_up(browser)
        await sign_in(device)
        assert await whoami(device) == "ada@example.com"
        clock.advance(5)

        response = await change(browser, GOOD_PASSWORD, NEW_PASSWORD)
        assert response.status_code == 200
        assert "Password changed" in response.text
        assert response.headers["x-frame-options"] == "DENY"
        assert await whoami(browser) == "ada@example.com"

        clock.advance(PAST_REVOCATION_CHECK)
        assert await whoami(device) is None
        assert await whoami(browser) == "ada@example.com"
        if strategy == "database":
            assert await store.count("sessions") == 1

    assert not await _password_works(app, GOOD_PASSWORD)
    assert await _password_works(app, NEW_PASSWORD)


@pytest.mark.parametrize(
    ("current", "new", "code"),
    [
        ("not the right passphrase", NEW_PASSWORD, "WrongPassword"),
        ("x" * 2000, NEW_PASSWORD, "WrongPassword"),
        (GOOD_PASSWORD, "short", "PasswordTooShort"),
        (GOOD_PASSWORD, "ada@example.com", "PasswordMatchesEmail"),
        (GOOD_PASSWORD, "password1234", "PasswordTooCommon"),
        (GOOD_PASSWORD, "x" * 257, "PasswordTooLong"),
    ],
)
async def test_a_refused_change_changes_nothing(
    store: Store, clock: Clock, current: str, new: str, code: str
) -> None:
    outbox = Outbox()
    app, elsewhere = _apps(store, "database", clock, outbox)
    async with client_for(app) as browser, client_for(elsewhere) as device:
        await sign_up(browser)
        await sign_in(device)
        before = await store.password_hash()
        response = await change(browser, current, new)
        token = await csrf_token(browser)
        as_json = await browser.post(
            "/auth/password/change",
            data={"csrfToken": token, "currentPassword": current, "newPassword": new},
            headers={"X-Auth-Return-Redirect": "1"},
        )
        assert await whoami(device) == "ada@example.com"
        assert await whoami(browser) == "ada@example.com"

    assert response.status_code == 400
    assert _error_code(response) == code
    assert as_json.status_code == 400
    assert as_json.json()["error"] == code
    assert await store.password_hash() == before
    assert await _password_works(app, GOOD_PASSWORD)


async def test_a_change_answers_json_clients_and_follows_a_callback_url() -> None:
    app = password_app(Outbox())
    async with client_for(app) as client:
        await sign_up(client)
        token = await csrf_token(client)
        as_json = await client.post(
            "/auth/password/change",
            data={
                "csrfToken": token,
                "currentPassword": GOOD_PASSWORD,
                "newPassword": NEW_PASSWORD,
            },
            headers={"X-Auth-Return-Redirect": "1"},
        )
        assert as_json.json() == {"ok": True}
        token = await csrf_token(client)
        redirected = await client.post(
            "/auth/password/change",
            data={
                "csrfToken": token,
                "currentPassword": NEW_PASSWORD,
                "newPassword": GOOD_PASSWORD,
                "callbackUrl": "/settings",
            },
        )
        assert redirected.headers["location"] == f"{APP_URL}/settings"
        assert await whoami(client) == "ada@example.com"


async def test_a_change_needs_a_session_and_a_csrf_token() -> None:
    app = password_app(Outbox())
    async with client_for(app) as client:
        await sign_up(client)
        no_csrf = await client.post(
            "/auth/password/change",
            data={"currentPassword": GOOD_PASSWORD, "newPassword": NEW_PASSWORD},
        )
        assert no_csrf.status_code == 400
        assert _error_code(no_csrf) == "MissingCSRF"
        client.cookies.delete("authjs.session-token")
        signed_out = await change(client, GOOD_PASSWORD, NEW_PASSWORD)
        asked = await client.post(
            "/auth/password/change",
            data={
                "csrfToken": await csrf_token(client),
                "currentPassword": GOOD_PASSWORD,
                "newPassword": NEW_PASSWORD,
            },
            headers={"X-Auth-Return-Redirect": "1"},
        )
    # A browser whose session ended while the form was open signs in, then comes back.
    assert signed_out.status_code == 302
    location = urlsplit(signed_out.headers["location"])
    assert location.path == "/auth/signin"
    assert parse_qs(location.query)["callbackUrl"] == [f"{APP_URL}/auth/password/change"]
    assert asked.status_code == 401
    assert asked.json() == {"error": "SessionRequired"}
    assert await _password_works(app, GOOD_PASSWORD)


# -- rate limits -----------------------------------------------------------------------------


def _limited_app(store: Store, outbox: Outbox, **limits: RateLimit) -> Starlette:
    return password_app(
        outbox,
        adapter=store.adapter,
        config_clock=Clock(ALIGNED + 15),
        config_rate_limits=RateLimits(**limits),
    )


async def test_sign_ups_are_limited_per_ip(store: Store) -> None:
    outbox = Outbox()
    app = _limited_app(store, outbox, sign_up_per_ip=RateLimit(2, 60))
    async with client_from(app) as client, client_from(app, "198.51.100.9") as other:
        for email in ("a@example.com", "b@example.com"):
            assert signed_in(await sign_up(client, email=email))
        limited = await sign_up(client, email="c@example.com")
        token = await csrf_token(client)
        as_json = await client.post(
            "/auth/signup",
            data={"csrfToken": token, "email": "d@example.com", "password": GOOD_PASSWORD},
            headers={"X-Auth-Return-Redirect": "1"},
        )
        assert signed_in(await sign_up(other, email="e@example.com"))

    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "45"
    assert _error_code(limited) == "RateLimited"
    assert as_json.status_code == 429
    assert as_json.json() == {"error": "RateLimited"}
    assert await store.count("users") == 3
    assert {mail.to for mail in outbox.sent} == {"a@example.com", "b@example.com", "e@example.com"}


async def test_reset_links_are_limited_per_address(store: Store) -> None:
    outbox = Outbox()
    app = _limited_app(store, outbox, password_reset_per_address=RateLimit(2, 60))
    async with client_from(app) as client, client_from(app, "198.51.100.9") as other:
        await sign_up(client)
        await sign_up(client, email="bob@example.com")
        outbox.sent.clear()
        answers = [await ask_reset(client) for _ in range(2)]
        limited = await ask_reset(other, " ADA@example.com")  # from anywhere
        bob = await ask_reset(client, "bob@example.com")

    assert [answer.headers["location"] for answer in answers] == [CHECK_EMAIL] * 2
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "45"
    assert _error_code(limited) == "RateLimited"
    assert bob.headers["location"] == CHECK_EMAIL
    assert [mail.to for mail in outbox.sent] == ["ada@example.com"] * 2 + ["bob@example.com"]


async def test_reset_links_are_limited_per_ip(store: Store) -> None:
    outbox = Outbox()
    app = _limited_app(store, outbox, password_reset_per_ip=RateLimit(2, 60))
    async with client_from(app) as client, client_from(app, "198.51.100.9") as other:
        await sign_up(client)
        outbox.sent.clear()
        for email in ("nobody@example.com", "someone@example.com"):
            assert (await ask_reset(client, email)).headers["location"] == CHECK_EMAIL
        limited = await ask_reset(client)
        allowed = await ask_reset(other)

    assert limited.status_code == 429
    assert allowed.headers["location"] == CHECK_EMAIL
    assert [mail.to for mail in outbox.sent] == ["ada@example.com"]


async def test_reset_posts_are_limited_per_ip(store: Store) -> None:
    """Guessing reset links: the right one is refused too, once the IP is over."""
    outbox = Outbox()
    app = _limited_app(store, outbox, password_reset_per_ip=RateLimit(2, 60))
    async with client_from(app, "198.51.100.9") as mailbox, client_from(app) as guesser:
        await sign_up(mailbox)
        await ask_reset(mailbox)
        mail = _reset_mail(outbox)
        guess = Mail(mail.to, mail.subject, mail.text, mail.url.replace("token=", "token=x"))
        assert (await reset(guesser, guess)).status_code == 400
        assert (await reset(guesser, guess)).status_code == 400
        limited = await reset(guesser, mail)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "45"
        assert not signed_in(limited)
        # Not used up: from the owner's own address the link still works.
        assert signed_in(await reset(mailbox, mail))


async def test_failed_sign_ins_are_limited_per_address_and_per_ip(store: Store) -> None:
    outbox = Outbox()
    app = _limited_app(
        store,
        outbox,
        failed_sign_in_per_identifier=RateLimit(2, 300),
        failed_sign_in_per_ip=RateLimit(4, 60),
    )
    limited_url = f"{APP_URL}/auth/signin?error=RateLimited"
    async with client_from(app) as client, client_from(app, "198.51.100.9") as other:
        await sign_up(client)
        await sign_up(client, email="bob@example.com")
        client.cookies.clear()
        # Successes do not count.
        for _ in range(3):
            assert signed_in(await sign_in(client))
        for _ in range(2):
            wrong = await sign_in(client, password="not the right passphrase")
            assert "CredentialsSignin" in wrong.headers["location"]
        by_address = await sign_in(other)  # the right password, from elsewhere
        assert by_address.headers["location"] == limited_url
        assert by_address.headers["retry-after"] == str(300 - 15)
        assert not signed_in(by_address)

        for _ in range(2):
            await sign_in(client, email="nobody@example.com", password="guess number one")
        by_ip = await sign_in(client, email="bob@example.com")
        assert by_ip.headers["location"] == limited_url
        assert by_ip.headers["retry-after"] == "45"
        assert signed_in(await sign_in(other, email="bob@example.com"))


async def test_password_changes_are_limited_per_user(store: Store) -> None:
    outbox = Outbox()
    app = _limited_app(store, outbox, password_change_per_user=RateLimit(2, 60))
    async with client_from(app) as ada, client_from(app) as bob:
        await sign_up(ada)
        await sign_up(bob, email="bob@example.com")
        assert (await change(ada, "wrong passphrase one", NEW_PASSWORD)).status_code == 400
        assert (await change(ada, GOOD_PASSWORD, NEW_PASSWORD)).status_code == 200
        limited = await change(ada, NEW_PASSWORD, "a third passphrase here")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "45"
        assert _error_code(limited) == "RateLimited"
        assert (await change(bob, GOOD_PASSWORD, NEW_PASSWORD)).status_code == 200
    stored = await store.password_hash()
    assert stored is not None and FAST_HASHER.verify(NEW_PASSWORD, stored).ok


# -- pages -----------------------------------------------------------------------------------


def _assert_built_in_page(response: httpx2.Response) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert f'<style nonce="{nonce.group(1)}">' in response.text
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert re.search(r'name="csrfToken" value="[0-9a-f]{64}"', response.text)


async def test_the_built_in_password_pages() -> None:
    app = password_app(Outbox())
    async with client_for(app) as client:
        signup = await client.get("/auth/signup")
        _assert_built_in_page(signup)
        assert 'action="http://testserver/auth/signup"' in signup.text
        for name in ("name", "email", "password"):
            assert f'name="{name}"' in signup.text
        forgot = await client.get("/auth/password/forgot")
        _assert_built_in_page(forgot)
        assert 'action="http://testserver/auth/password/forgot"' in forgot.text
        reset_page = await client.get("/auth/password/reset?token=abc&email=ada%40example.com")
        _assert_built_in_page(reset_page)
        assert reset_page.headers["referrer-policy"] == "no-referrer"

        signed_out = await client.get("/auth/password/change")
        assert signed_out.status_code == 302
        assert signed_out.headers["location"] == (
            f"{APP_URL}/auth/signin?"
            + urlencode({"callbackUrl": f"{APP_URL}/auth/password/change"})
        )
        await sign_up(client)
        change_page = await client.get("/auth/password/change")
        _assert_built_in_page(change_page)
        assert 'name="currentPassword"' in change_page.text
        assert 'name="newPassword"' in change_page.text

        assert (await client.get("/auth/password/nothing")).status_code == 404
        token = await csrf_token(client)
        assert (
            await client.post("/auth/password/nothing", data={"csrfToken": token})
        ).status_code == 404


async def test_the_sign_in_page_links_to_the_password_pages() -> None:
    app = password_app(Outbox())
    async with client_for(app) as client:
        page = await client.get("/auth/signin")
    assert page.headers["x-frame-options"] == "DENY"
    assert '<a href="http://testserver/auth/password/forgot">Forgot password?</a>' in page.text
    assert '<a href="http://testserver/auth/signup">Create an account</a>' in page.text
    assert 'action="http://testserver/auth/callback/password"' in page.text


async def test_the_apps_own_password_pages() -> None:
    outbox = Outbox()
    app = password_app(
        outbox,
        config_pages=Pages(sign_up="/join", forgot_password="/forgot", reset_password="/reset"),
    )

    def location(response: httpx2.Response) -> tuple[str, dict[str, list[str]]]:
        assert response.status_code == 302
        parts = urlsplit(response.headers["location"])
        return parts.path, parse_qs(parts.query)

    async with client_for(app) as client:
        page = await client.get("/auth/signin")
        assert '<a href="http://testserver/forgot">Forgot password?</a>' in page.text
        assert '<a href="http://testserver/join">Create an account</a>' in page.text
        assert location(await client.get("/auth/signup")) == ("/join", {})
        assert location(await client.get("/auth/password/forgot")) == ("/forgot", {})
        assert location(await sign_up(client, password="short")) == (
            "/join",
            {"error": ["PasswordTooShort"]},
        )
        assert signed_in(await sign_up(client))
        client.cookies.clear()

        await ask_reset(client)
        mail = _reset_mail(outbox)
        assert mail.url.startswith(f"{APP_URL}/reset?token=")
        params = link_params(mail.url)
        link = {"token": [params["token"]], "email": [params["email"]]}
        assert location(await client.get(f"/auth/password/reset?{urlencode(params)}")) == (
            "/reset",
            link,
        )
        assert location(await reset(client, mail, "short")) == (
            "/reset",
            {"error": ["PasswordTooShort"], **link},
        )
        assert signed_in(await reset(client, mail, NEW_PASSWORD))
        client.cookies.clear()
        assert location(await reset(client, mail, "a third passphrase here")) == (
            "/forgot",
            {"error": ["InvalidResetLink"]},
        )
