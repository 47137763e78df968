"""The samples of the password, two-factor and sessions guides, driven as a reader would:
through the real routes, on the real mongod, reading the links the samples' ``send``
functions print."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import bcrypt
import httpx
import httpx2
import pyotp
import pytest

from tests.support import passkeys, two_factor
from tests.support.apps import SECRET, Clock, client_for, csrf_token
from tests.support.docs import load_sample, loaded_sample, mongodb_url_with_database
from tests.support.live_server import LiveServer
from tests.support.passwords import (
    GOOD_PASSWORD,
    Mail,
    ask_reset,
    change,
    confirm,
    link_params,
    reset,
    sign_in,
    sign_up,
    signed_in,
)
from tests.support.smtp import SMTPServer

APP_URL = "http://testserver"
NEW_PASSWORD = "a brand new passphrase"
_PRINTED = re.compile(
    r"To: (?P<to>\S+)\nSubject: (?P<subject>[^\n]+)\n\n(?P<text>.*?)\n\n(?=To: |\Z)", re.S
)


@dataclass(frozen=True)
class Printed:
    to: str
    subject: str
    text: str

    @property
    def url(self) -> str:
        found = re.search(r"https?://\S+", self.text)
        assert found, self.text
        return found.group(0)

    def as_mail(self) -> Mail:
        return Mail(self.to, self.subject, self.text, self.url)


class Console:
    """The mail a sample printed, read off standard output."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.mails: list[Printed] = []
        self.out = ""

    def read(self) -> list[Printed]:
        out = self.capsys.readouterr().out
        self.out += out
        self.mails += [Printed(**found.groupdict()) for found in _PRINTED.finditer(out)]
        return self.mails

    def last(self, subject: str) -> Printed:
        mails = [mail for mail in self.read() if mail.subject == subject]
        assert mails, f"no mail {subject!r} printed: {self.mails}"
        return mails[-1]


@pytest.fixture
def console(capsys: pytest.CaptureFixture[str]) -> Console:
    return Console(capsys)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, mongodb_url: str, mongo_db_name: str) -> None:
    """What a reader exports before running a sample: the secret, the app's URL and a
    database of the test's own."""
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    monkeypatch.setenv("AUTH_URL", APP_URL)
    monkeypatch.setenv("MONGODB_URL", mongodb_url_with_database(mongodb_url, mongo_db_name))


@pytest.fixture
async def passwords_app(environment: None) -> AsyncIterator[ModuleType]:
    async for module in loaded_sample("passwords_app.py"):
        yield module


# -- passwords_app.py ----------------------------------------------------------------------


async def test_sign_up_confirm_sign_in_and_reset(
    passwords_app: ModuleType, console: Console
) -> None:
    async with client_for(passwords_app.app) as browser:
        page = await browser.get("/auth/signup")
        assert page.status_code == 200 and 'name="password"' in page.text

        response = await sign_up(browser)
        assert (
            response.headers["location"]
            == f"{APP_URL}/auth/verify-request?provider=password&type=signup"
        )
        assert not signed_in(response)
        # Before the link is followed the right password answers as a wrong one.
        early = await sign_in(browser)
        assert "error=CredentialsSignin" in early.headers["location"]

        link = console.last("Confirm your email address")
        assert link.to == "ada@example.com"
        assert link.url.startswith(f"{APP_URL}/auth/verify-email?token=")
        confirmed = await confirm(browser, link.url)
        assert signed_in(confirmed)
        home = await browser.get("/")
        assert "Signed in as ada@example.com." in home.text

        token = await csrf_token(browser)
        await browser.post("/auth/signout", data={"csrfToken": token})
        signed_out = await browser.get("/", headers={"Accept": "text/html"})
        assert signed_out.headers["location"].startswith("/auth/signin?callbackUrl=")
        wrong = await sign_in(browser, password="not the passphrase")
        assert "error=CredentialsSignin" in wrong.headers["location"]
        assert signed_in(await sign_in(browser))

        browser.cookies.clear()
        await ask_reset(browser)
        mail = console.last("Reset your password")
        assert set(link_params(mail.url)) == {"token", "email"}
        done = await reset(browser, mail.as_mail(), NEW_PASSWORD)
        assert signed_in(done)
        assert "Signed in as ada@example.com." in (await browser.get("/")).text

    async with client_for(passwords_app.app) as other:
        assert not signed_in(await sign_in(other, password=GOOD_PASSWORD))
        assert signed_in(await sign_in(other, password=NEW_PASSWORD))
        changed = await change(other, NEW_PASSWORD, "a third long passphrase")
        assert changed.status_code == 200 and "Password changed" in changed.text
        assert signed_in(await sign_in(other, password="a third long passphrase"))


# -- passwords_rules.py --------------------------------------------------------------------


async def test_the_apps_own_rule_and_nists_refuse_passwords_with_a_reason(
    environment: None, console: Console
) -> None:
    async for module in loaded_sample("passwords_rules.py"):
        async with client_for(module.app) as browser:

            async def refused(password: str, email: str) -> Any:
                # (sign-ups with one address are limited to 3 a minute, refused or not)
                response = await browser.post(
                    "/auth/signup",
                    data={
                        "csrfToken": await csrf_token(browser),
                        "email": email,
                        "password": password,
                    },
                    headers={"X-Auth-Return-Redirect": "1"},
                )
                assert response.status_code == 400, response.text
                return response.json()

            assert await refused("I love acme products", "ada@example.com") == {
                "error": "PasswordRejected",
                "message": "Choose a password that does not contain the name of this site.",
            }
            too_short = await refused("eleven char", "bob@example.com")
            assert too_short["error"] == "PasswordTooShort"
            common = await refused("password1234", "bob@example.com")
            assert common["error"] == "PasswordTooCommon"
            own = await refused("grace@example.com", "grace@example.com")
            assert own["error"] == "PasswordMatchesEmail"
            page = await sign_up(browser, email="grace@example.com", password="acme acme acme")
            assert page.status_code == 400
            assert "does not contain the name of this site" in page.text
            assert signed_in(await sign_up(browser, password=GOOD_PASSWORD))


# -- passwords_import.py -------------------------------------------------------------------


async def test_hashes_from_a_node_app_sign_their_users_in_and_are_replaced(
    environment: None, mongo_db: Any
) -> None:
    old = bcrypt.hashpw(b"ada's old passphrase", bcrypt.gensalt(rounds=4)).decode()
    await mongo_db["users"].insert_one(
        {"email": "ada@example.com", "name": "Ada", "emailVerified": None, "password": old}
    )
    async for module in loaded_sample("passwords_import.py"):
        imported = await module.import_users(
            module.adapter,
            [
                {"email": " Grace@Example.com", "name": "Grace", "hash": old},
                {"email": "ada@example.com", "name": "Ada", "hash": old},  # there already
            ],
        )
        assert imported == 1
        for email in ("ada@example.com", "grace@example.com"):
            async with client_for(module.app) as browser:
                assert not signed_in(await sign_in(browser, email, "a wrong passphrase"))
                assert signed_in(await sign_in(browser, email, "ada's old passphrase"))
            user = await mongo_db["users"].find_one({"email": email})
            assert user.get("password") is None  # moved to the account, no copy left behind
            account = await mongo_db["accounts"].find_one({"userId": user["_id"]})
            assert account["provider"] == "password"
            assert account["password"].startswith("$argon2id$")


# -- passwords_bearer.py -------------------------------------------------------------------


async def test_a_command_line_client_trades_a_password_for_a_token(environment: None) -> None:
    async for module in loaded_sample("passwords_bearer.py"):
        async with client_for(module.app) as browser:
            await sign_up(browser)
        transport = httpx.ASGITransport(app=module.app)
        async with httpx.AsyncClient(transport=transport, base_url=APP_URL) as api:
            with pytest.raises(httpx.HTTPStatusError) as wrong:
                await module.sign_in(api, "ada@example.com", "a wrong passphrase")
            assert wrong.value.response.status_code == 401
            assert wrong.value.response.json()["error"] == "CredentialsSignin"

            token = await module.sign_in(api, "ada@example.com", GOOD_PASSWORD)
            assert (await module.whoami(api, token))["email"] == "ada@example.com"
            assert not api.cookies
            await module.sign_out(api, token)
            with pytest.raises(httpx.HTTPStatusError) as ended:
                await module.whoami(api, token)
            assert ended.value.response.status_code == 401


# -- mfa_app.py ----------------------------------------------------------------------------

PASSKEY_URL = passkeys.APP_URL  # a host name: browsers refuse passkeys on an IP address


@pytest.fixture
def clock() -> Clock:
    return Clock(two_factor.ALIGNED)


@pytest.fixture
async def mfa_app(
    environment: None, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> AsyncIterator[ModuleType]:
    monkeypatch.setenv("AUTH_URL", PASSKEY_URL)
    async for module in loaded_sample("mfa_app.py"):
        # The test moves time along, as minutes passing would.
        monkeypatch.setattr(module.config, "clock", clock)
        yield module


async def _eventually_signed_out(browser: httpx2.AsyncClient) -> bool:
    for _ in range(100):
        if (await browser.get("/auth/session")).json() is None:
            return True
        await asyncio.sleep(0.02)
    return False


async def _new_user(browser: httpx2.AsyncClient, console: Console) -> None:
    """Sign up and follow the link: signed in, the address proven (no factor is added
    to an account nobody confirmed)."""
    await sign_up(browser)
    confirmed = await confirm(browser, console.last("Confirm your email address").url)
    assert signed_in(confirmed)


async def test_an_authenticator_app_recovery_codes_and_step_up(
    mfa_app: ModuleType, console: Console, clock: Clock
) -> None:
    async with passkeys.browser(mfa_app.app) as browser:
        await _new_user(browser, console)
        page = await browser.get("/auth/mfa/totp")
        assert "<svg" in page.text  # the QR code
        assert "issuer=Example" in page.text  # TwoFactor(issuer=...) in the otpauth:// URI
        secret, codes = await two_factor.enrol(browser, clock)
        assert len(codes) == 10
        await passkeys.sign_out(browser)
        clock.advance(two_factor.STEP)

        # The password alone starts no session: the code finishes the sign-in.
        first = await passkeys.password_sign_in(browser, callback_url="/billing")
        assert first.headers["location"] == f"{PASSKEY_URL}/auth/mfa"
        assert not signed_in(first)
        wrong = await two_factor.answer(browser, "000000")
        assert "error=InvalidCode" in wrong.headers["location"]
        done = await two_factor.answer(browser, two_factor.code_at(secret, clock.now))
        assert done.headers["location"] == f"{PASSKEY_URL}/billing"
        assert signed_in(done)
        billing = await browser.get("/billing", headers={"Accept": "text/html"})
        assert "Card ending 4242" in billing.text

        # A recovery code in place of the code, once.
        await passkeys.sign_out(browser)
        await passkeys.password_sign_in(browser)
        assert signed_in(await two_factor.answer(browser, codes[0]))
        await passkeys.sign_out(browser)
        await passkeys.password_sign_in(browser)
        assert not signed_in(await two_factor.answer(browser, codes[0]))

        # Step-up: five minutes later the billing page asks again.
        browser.cookies.clear()
        await passkeys.password_sign_in(browser)
        clock.advance(two_factor.STEP)
        assert signed_in(await two_factor.answer(browser, two_factor.code_at(secret, clock.now)))
        clock.advance(301)
        stale = await browser.get("/billing", headers={"Accept": "text/html"})
        assert stale.status_code in (302, 303)
        assert stale.headers["location"].startswith("/auth/reauthenticate?callbackUrl=")
        again = await browser.post(
            "/auth/reauthenticate",
            data={
                "csrfToken": await csrf_token(browser),
                "code": two_factor.code_at(secret, clock.now),
                "callbackUrl": "/billing",
            },
        )
        assert again.headers["location"] == f"{PASSKEY_URL}/billing"
        billing = await browser.get("/billing", headers={"Accept": "text/html"})
        assert "Card ending 4242" in billing.text


async def test_a_passkey_signs_in_alone_and_answers_the_second_step(
    mfa_app: ModuleType, console: Console, clock: Clock
) -> None:
    phone = passkeys.phone()
    async with passkeys.browser(mfa_app.app) as browser:
        await _new_user(browser, console)
        added = await passkeys.register(browser, phone)
        assert passkeys.url_error(passkeys.returned_url(added)) is None
        security = await browser.get("/auth/account/security")
        assert "Passkey" in security.text
        await passkeys.sign_out(browser)

        signed = await passkeys.sign_in_with_passkey(browser, phone)
        assert passkeys.url_error(passkeys.returned_url(signed)) is None
        assert "Signed in as ada@example.com." in (await browser.get("/")).text
        await two_factor.enrol(browser, clock)
        await passkeys.sign_out(browser)
        clock.advance(two_factor.STEP)

        # With the authenticator app on, a password asks for a second factor, and the
        # passkey may answer in place of the code; a passkey sign-in is asked nothing.
        first = await passkeys.password_sign_in(browser)
        assert first.headers["location"] == f"{PASSKEY_URL}/auth/mfa"
        assert 'data-passkey="authenticate"' in (await browser.get("/auth/mfa")).text
        second = await passkeys.sign_in_with_passkey(browser, phone)
        assert passkeys.returned_url(second) == passkeys.CALLBACK_URL
        assert "Signed in as ada@example.com." in (await browser.get("/")).text
        await passkeys.sign_out(browser)
        alone = await passkeys.sign_in_with_passkey(browser, phone)
        assert passkeys.returned_url(alone) == passkeys.CALLBACK_URL


async def test_support_resets_a_lost_phone_and_the_app_enrols_on_its_own_page(
    mfa_app: ModuleType, console: Console, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async for admin in loaded_sample("mfa_admin.py"):
        monkeypatch.setattr(admin.config, "clock", clock)
        async with passkeys.browser(mfa_app.app) as browser:
            await _new_user(browser, console)
            user = await mfa_app.config.adapter.get_user_by_email("ada@example.com")

            secret, uri = admin.start_enrolment("ada@example.com")
            assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
            assert await admin.finish_enrolment(user.id, secret, "000000") is None
            codes = await admin.finish_enrolment(user.id, secret, pyotp.TOTP(secret).at(clock.now))
            assert codes is not None and len(codes) == 10
            assert await two_factor.totp_state(browser) == "On. 10 recovery codes left."

            await admin.lost_phone(user.id, stolen=True)
            console.read()
            assert "TOTP on: True, recovery codes left: 10" in console.out
            # Signed out everywhere: another process's session cache hears of it from
            # MongoDB's change stream within milliseconds.
            assert await _eventually_signed_out(browser)
            again = await passkeys.password_sign_in(browser)
            assert again.headers["location"] == passkeys.CALLBACK_URL  # no code asked


# -- mfa_fastapi.py ------------------------------------------------------------------------


async def test_a_fastapi_endpoint_asks_for_a_recent_sign_in(
    environment: None, console: Console, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async for module in loaded_sample("mfa_fastapi.py"):
        monkeypatch.setattr(module.config, "clock", clock)
        async with client_for(module.app) as browser:
            assert (await browser.get("/api/me")).status_code == 401
            await sign_up(browser)
            me = (await browser.get("/api/me")).json()
            assert me == {"email": "ada@example.com", "signedInAt": clock.now}
            assert (await browser.post("/api/account/delete")).status_code == 200

            clock.advance(301)
            api = await browser.post("/api/account/delete")
            assert (api.status_code, api.json()) == (401, {"detail": "ReauthenticationRequired"})
            page = await browser.get("/account/delete", headers={"Accept": "text/html"})
            assert page.status_code == 303
            assert page.headers["location"].startswith("/auth/reauthenticate?callbackUrl=")
            assert signed_in(await sign_in(browser))  # signing in again is fresh
            form = await browser.get("/account/delete", headers={"Accept": "text/html"})
            assert "<button>Delete</button>" in form.text
            assert (await browser.post("/api/account/delete")).status_code == 200


# -- sessions_app.py -----------------------------------------------------------------------


@pytest.fixture
async def sessions_app(environment: None) -> AsyncIterator[ModuleType]:
    async for module in loaded_sample("sessions_app.py"):
        yield module


def _device(app: Any, name: str) -> httpx2.AsyncClient:
    client = client_for(app)
    client.headers["User-Agent"] = name
    return client


async def _sessions(client: httpx2.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/auth/sessions")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def test_list_sessions_and_end_one_then_all_others(sessions_app: ModuleType) -> None:
    app = sessions_app.app
    async with _device(app, "Laptop") as laptop, _device(app, "Phone") as phone:
        assert signed_in(await sign_up(laptop))
        assert signed_in(await sign_in(phone))
        listed = await _sessions(laptop)
        assert [(s["userAgent"], s["current"]) for s in listed] == [
            ("Phone", False),
            ("Laptop", True),
        ]
        assert set(listed[0]) == {
            "id",
            "createdAt",
            "lastSeenAt",
            "expires",
            "userAgent",
            "current",
        }
        page = await laptop.get("/account/sessions", headers={"Accept": "text/html"})
        assert "<td>Laptop</td>" in page.text and "<strong>This device</strong>" in page.text
        assert f'data-id="{listed[0]["id"]}"' in page.text

        token = await csrf_token(laptop)
        ended = await laptop.post(
            "/auth/sessions/revoke", data={"csrfToken": token, "id": listed[0]["id"]}
        )
        assert ended.json() == {"ok": True}
        assert (await phone.get("/auth/session")).json() is None  # on its very next request
        without_token = await laptop.post("/auth/sessions/revoke-others", data={})
        assert without_token.status_code == 403

        async with _device(app, "Tablet") as tablet:
            assert signed_in(await sign_in(tablet))
            assert len(await _sessions(laptop)) == 2
            others = await laptop.post(
                "/auth/sessions/revoke-others", data={"csrfToken": await csrf_token(laptop)}
            )
            assert others.json() == {"ok": True}
            assert (await tablet.get("/auth/session")).json() is None
            assert [s["userAgent"] for s in await _sessions(laptop)] == ["Laptop"]

        user = await sessions_app.config.adapter.get_user_by_email("ada@example.com")
        await sessions_app.lock_account(user.id)
        assert (await laptop.get("/auth/session")).json() is None


async def test_the_sessions_page_buttons_work_in_a_browser(
    environment: None, monkeypatch: pytest.MonkeyPatch, browser_context: Any
) -> None:
    modules: list[ModuleType] = []

    def build(url: str) -> Any:
        monkeypatch.setenv("AUTH_URL", url)
        modules.append(load_sample("sessions_app.py"))
        return modules[0].app

    server = LiveServer(build)
    server.start()
    try:
        async with httpx2.AsyncClient(
            base_url=server.url, headers={"User-Agent": "Phone"}
        ) as phone:
            assert signed_in(await sign_up(phone))
            page = await browser_context.new_page()
            await page.goto(server.url + "/auth/signin")
            await page.get_by_label("Email").fill("ada@example.com")
            await page.get_by_label("Password").fill(GOOD_PASSWORD)
            await page.get_by_role("button", name="Sign in with Email and password").click()
            await page.goto(server.url + "/account/sessions")
            assert await page.get_by_text("This device").count() == 1
            assert await page.get_by_role("button", name="Sign out", exact=True).count() == 1
            async with page.expect_navigation():
                await page.get_by_role("button", name="Sign out", exact=True).click()
            assert await page.get_by_role("button", name="Sign out", exact=True).count() == 0
            assert (await phone.get("/auth/session")).json() is None
    finally:
        server.stop()


# -- sessions_jwt.py -----------------------------------------------------------------------


async def test_jwt_sessions_are_ended_by_a_cut_off_every_instance_reads(
    environment: None, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    async for one in loaded_sample("sessions_jwt.py"):
        async for other in loaded_sample("sessions_jwt.py"):  # a second instance of the app
            for instance in (one, other):
                monkeypatch.setattr(instance.config, "clock", clock)
            async with client_for(one.app) as laptop, client_for(other.app) as phone:
                assert signed_in(await sign_up(laptop))
                assert signed_in(await sign_in(phone))
                assert (await phone.get("/")).json() == {"email": "ada@example.com"}
                listed = await laptop.get("/auth/sessions")
                assert listed.status_code == 501  # JWTs cannot be listed

                clock.advance(1)
                others = await laptop.post(
                    "/auth/sessions/revoke-others", data={"csrfToken": await csrf_token(laptop)}
                )
                assert others.json() == {"ok": True}
                assert signed_in(others)  # this browser's new token
                assert (await laptop.get("/")).json() == {"email": "ada@example.com"}

                # The other instance read the cut-off less than 30 s ago: it learns of
                # the new one within revocation_check_interval.
                assert (await phone.get("/auth/session")).json() is not None
                clock.advance(31)
                assert (await phone.get("/auth/session")).json() is None
                assert (await laptop.get("/")).json() == {"email": "ada@example.com"}


# -- passwords_smtp.py ---------------------------------------------------------------------


@pytest.fixture
def smtp_server(environment: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[SMTPServer]:
    """A real SMTP server on loopback (STARTTLS, then AUTH), and the sample's variables
    pointing at it."""
    with SMTPServer(user="mailer", password="smtp-secret") as server:
        for name, value in {
            "SMTP_HOST": server.host,
            "SMTP_PORT": str(server.port),
            "SMTP_USER": server.user,
            "SMTP_PASSWORD": server.password,
            # The sample verifies the server's certificate against the system's CAs;
            # OpenSSL reads them from here, so the test server's own is the one trusted.
            "SSL_CERT_FILE": str(server.cert_path),
        }.items():
            monkeypatch.setenv(name, value)
        yield server


async def test_mail_goes_out_through_smtp(smtp_server: SMTPServer) -> None:
    async for module in loaded_sample("passwords_smtp.py"):
        async with client_for(module.app) as browser:
            assert signed_in(await sign_up(browser))
    [received] = smtp_server.received
    assert received.tls  # STARTTLS came first: the server takes nothing before it
    assert received.user == "mailer"
    assert received.mail_from == "no-reply@example.com"
    assert received.rcpt_tos == ["ada@example.com"]
    message = received.message
    assert message["From"] == "Example <no-reply@example.com>"
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Confirm your email address"
    assert f"{APP_URL}/auth/verify-email?token=" in message.get_content()
    assert smtp_server.refused == []


async def test_a_refused_smtp_login_is_logged_not_shown(
    smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The guide: "A `send` that raises is logged as a warning, never shown to the user."
    monkeypatch.setenv("SMTP_PASSWORD", "not the password")
    async for module in loaded_sample("passwords_smtp.py"):
        async with client_for(module.app) as browser:
            with caplog.at_level(logging.WARNING, logger="asgi_session"):
                response = await sign_up(browser)
            assert response.status_code < 500
            assert signed_in(response)  # the sign-up stands; only its mail is lost
            assert (await browser.get("/auth/session")).json()["user"]["email"] == (
                "ada@example.com"
            )
    # smtplib tries each mechanism the server offers (PLAIN, then LOGIN) before giving up.
    assert smtp_server.refused == ["mailer", "mailer"]
    assert smtp_server.received == []
    [record] = [r for r in caplog.records if r.name == "asgi_session"]
    assert record.levelno == logging.WARNING
    assert "could not send an email" in record.getMessage()
    assert "SMTPAuthenticationError" in record.getMessage()
