"""Email and password accounts: sign-up, sign-in, rehashing, verification links, the
rules through the routes, and what the provider refuses to start with.

Every flow runs on the MemoryAdapter and on the real mongod through PyMongo, and where
sessions matter in both strategies. The reset, change, rate limit and page tests are in
tests/test_password_routes.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any
from unittest.mock import ANY
from urllib.parse import parse_qs, urlencode, urlsplit

import bcrypt
import pytest
from bson import ObjectId

from asgi_session import AuthConfig, Callbacks, ConfigurationError, Events, Pages
from asgi_session.backends import MemoryAdapter
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.passwords import PasswordHasher, PasswordRules
from asgi_session.providers import Password
from tests.support.apps import SECRET, Clock, client_for, csrf_token
from tests.support.passwords import (
    APP_URL,
    FAST_HASHER,
    GOOD_PASSWORD,
    CountingHasher,
    Outbox,
    Store,
    confirm,
    link_params,
    local_path,
    make_store,
    password_app,
    sign_in,
    sign_up,
    signed_in,
    whoami,
)

DAY = 24 * 60 * 60
CHECK_EMAIL = f"{APP_URL}/auth/verify-request?provider=password&type=signup"
WRONG = f"{APP_URL}/auth/signin?error=CredentialsSignin&code=credentials"
CURRENT_ARGON2 = "$argon2id$v=19$m=8,t=1,p=1$"


@pytest.fixture(params=["memory", "pymongo"])
def store(request: pytest.FixtureRequest) -> Store:
    return make_store(request)


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# -- sign-up -------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_sign_up_stores_a_user_and_a_password_account_and_signs_in(
    store: Store, strategy: Any, clock: Clock
) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter, strategy=strategy, config_clock=clock)
    async with client_for(app) as client:
        response = await sign_up(client, email="  Ada@Example.COM ", name=" Ada Lovelace ")
        assert response.status_code == 302
        assert response.headers["location"] == APP_URL
        assert signed_in(response)
        assert await whoami(client) == "ada@example.com"

        user = await store.adapter.get_user_by_email("ada@example.com")
        assert user is not None
        assert (user.name, user.email_verified) == ("Ada Lovelace", None)
        assert "password" not in user.extra
        account = await store.adapter.get_account(provider="password", provider_account_id=user.id)
        assert account is not None
        assert (account.type, account.user_id) == ("credentials", user.id)
        assert account.extra["password"].startswith(CURRENT_ARGON2)
        assert FAST_HASHER.verify(GOOD_PASSWORD, account.extra["password"]).ok
        [mail] = outbox.sent
        assert (mail.to, mail.subject) == ("ada@example.com", "Confirm your email address")
        assert mail.url.startswith(f"{APP_URL}/auth/verify-email?")
        assert mail.url in mail.text

        # The new account signs in again, in another browser.
        client.cookies.clear()
        assert await whoami(client) is None
        again = await sign_in(client)
        assert again.headers["location"] == APP_URL
        assert await whoami(client) == "ada@example.com"
    assert await store.count("users") == 1
    assert await store.count("accounts") == 1


async def test_sign_up_stores_exactly_authjs_documents_in_mongodb(
    mongo_db: Any, clock: Clock
) -> None:
    adapter = MongoDBAdapter(mongo_db)
    app = password_app(Outbox(), adapter=adapter, config_clock=clock)
    async with client_for(app) as client:
        await sign_up(client, name="Ada")
        await sign_up(client, email="bob@example.com")  # no name: the field is absent

    ada = await mongo_db["users"].find_one({"email": "ada@example.com"})
    assert ada == {"_id": ANY, "email": "ada@example.com", "name": "Ada", "emailVerified": None}
    bob = await mongo_db["users"].find_one({"email": "bob@example.com"})
    assert bob == {"_id": ANY, "email": "bob@example.com", "emailVerified": None}
    for user in (ada, bob):
        assert isinstance(user["_id"], ObjectId)
        account = await mongo_db["accounts"].find_one({"userId": user["_id"]})
        assert account == {
            "_id": ANY,
            "userId": user["_id"],
            "type": "credentials",
            "provider": "password",
            "providerAccountId": str(user["_id"]),
            "password": ANY,
            # Chosen by whoever typed the address, until its link is followed.
            "unconfirmed": True,
        }
        assert account["password"].startswith(CURRENT_ARGON2)
    assert await mongo_db["accounts"].count_documents({}) == 2


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_with_required_verification_the_link_signs_in(
    store: Store, strategy: Any, clock: Clock
) -> None:
    outbox = Outbox()
    app = password_app(
        outbox,
        adapter=store.adapter,
        strategy=strategy,
        require_verified_email=True,
        config_clock=clock,
    )
    async with client_for(app) as client:
        response = await sign_up(client)
        assert response.status_code == 302
        assert response.headers["location"] == CHECK_EMAIL
        assert not signed_in(response)
        assert await whoami(client) is None

        # The right password, but the address is not confirmed: a new link goes out, and
        # the answer is a wrong password's (a code of its own would tell whoever signed
        # up with an address whether it had an account before).
        refused = await sign_in(client)
        assert _query(refused.headers["location"]) == {
            "error": ["CredentialsSignin"],
            "code": ["credentials"],
        }
        assert not signed_in(refused)
        assert [mail.subject for mail in outbox.to("ada@example.com")] == [
            "Confirm your email address",
            "Confirm your email address",
        ]
        clock.advance(30)
        verified = await confirm(client, outbox.last().url)
        assert verified.status_code == 302
        assert verified.headers["location"] == APP_URL
        assert signed_in(verified)
        assert await whoami(client) == "ada@example.com"
        user = await store.adapter.get_user_by_email("ada@example.com")
        assert user is not None
        assert user.email_verified == datetime.fromtimestamp(clock.now, UTC)

        client.cookies.clear()
        assert (await sign_in(client)).headers["location"] == APP_URL
        assert await whoami(client) == "ada@example.com"


async def test_sign_up_with_a_taken_address_answers_as_for_a_new_one(store: Store) -> None:
    """With ``require_verified_email`` a sign-up tells nobody whether the address had an
    account: the same status, Location and cookies, and the owner is told by email.

    Without it a new sign-up is signed in at once, so there the answers differ (see
    the test below): an app that must not reveal its users requires verification.
    """
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter, require_verified_email=True)
    async with client_for(app) as first, client_for(app) as second:
        new = await sign_up(first)
        taken = await sign_up(second, password="another long passphrase", name="Mallory")

    assert (taken.status_code, taken.headers["location"]) == (
        new.status_code,
        new.headers["location"],
    )
    assert sorted(taken.headers.get_list("set-cookie")) == sorted(
        new.headers.get_list("set-cookie")
    )
    assert [mail.subject for mail in outbox.to("ada@example.com")] == [
        "Confirm your email address",
        "You already have an account",
    ]
    assert f"{APP_URL}/auth/password/forgot" in outbox.last().text
    assert await store.count("users") == 1
    assert await store.count("accounts") == 1
    stored = await store.password_hash()
    assert stored is not None and FAST_HASHER.verify(GOOD_PASSWORD, stored).ok
    user = await store.adapter.get_user_by_email("ada@example.com")
    assert user is not None and user.name is None


async def test_without_required_verification_a_taken_address_is_not_signed_in(
    store: Store,
) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter)
    async with client_for(app) as first, client_for(app) as second:
        new = await sign_up(first)
        taken = await sign_up(second, password="another long passphrase")
        assert await whoami(second) is None

    assert signed_in(new)
    assert taken.headers["location"] == CHECK_EMAIL
    assert not signed_in(taken)
    assert outbox.last().subject == "You already have an account"
    assert await store.count("users") == 1
    assert await store.count("accounts") == 1


class RacingAdapter(MongoDBAdapter):
    """Every sign-up's lookup of its address waits for the other's: both find nothing,
    and both go on to create the user."""

    def __init__(self, database: Any) -> None:
        super().__init__(database)
        self.barrier = asyncio.Barrier(2)

    async def get_user_by_email(self, email: str) -> Any:
        found = await super().get_user_by_email(email)
        await self.barrier.wait()
        return found


async def test_two_sign_ups_at_once_make_one_user_and_one_account(mongo_db: Any) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=RacingAdapter(mongo_db), require_verified_email=True)
    async with client_for(app) as one, client_for(app) as other:
        tokens = [await csrf_token(one), await csrf_token(other)]
        async with asyncio.timeout(20):
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/auth/signup",
                        data={"csrfToken": token, "email": "ada@example.com", "password": pw},
                    )
                    for client, token, pw in zip(
                        (one, other),
                        tokens,
                        (GOOD_PASSWORD, "another long passphrase"),
                        strict=True,
                    )
                )
            )

    assert [response.headers["location"] for response in responses] == [CHECK_EMAIL] * 2
    assert await mongo_db["users"].count_documents({}) == 1
    assert await mongo_db["accounts"].count_documents({}) == 1
    assert sorted(mail.subject for mail in outbox.sent) == [
        "Confirm your email address",
        "You already have an account",
    ]


async def test_a_refused_sign_up_form_keeps_what_was_typed_but_the_password() -> None:
    app = password_app(Outbox())
    async with client_for(app) as client:
        response = await sign_up(client, password="short", name="Ada")
    assert response.status_code == 400
    assert 'value="ada@example.com"' in response.text
    assert 'value="Ada"' in response.text
    assert 'value="short"' not in response.text


async def test_sign_up_refuses_what_is_not_an_address() -> None:
    outbox = Outbox()
    app = password_app(outbox)
    async with client_for(app) as client:
        for email in ("ada", "ada@example.com, bob@example.com", "ada%evil@example.com"):
            response = await sign_up(client, email=email)
            assert response.status_code == 400
            assert 'data-error="InvalidEmail"' in response.text
    assert outbox.sent == []


@pytest.mark.parametrize(
    ("callback_url", "location"),
    [("/dashboard", f"{APP_URL}/dashboard"), ("https://evil.example/", APP_URL)],
)
async def test_sign_up_ends_at_the_callback_url_if_it_is_the_apps(
    callback_url: str, location: str
) -> None:
    app = password_app(Outbox())
    async with client_for(app) as client:
        form = await client.get(f"/auth/signup?{urlencode({'callbackUrl': callback_url})}")
        assert f'name="callbackUrl" value="{callback_url}"' in form.text
        response = await sign_up(client, callbackUrl=callback_url)
    assert response.headers["location"] == location
    assert signed_in(response)


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_sign_up_is_a_new_user_to_callbacks_and_pages(strategy: Any) -> None:
    triggers: list[Any] = []

    def jwt(token: dict[str, Any], trigger: str | None, is_new_user: bool) -> dict[str, Any]:
        triggers.append((trigger, is_new_user))
        return token

    def on_sign_in(is_new_user: bool) -> None:
        triggers.append(("event", is_new_user))

    app = password_app(
        Outbox(),
        strategy=strategy,
        config_callbacks=Callbacks(jwt=jwt),
        config_events=Events(sign_in=on_sign_in),
        config_pages=Pages(new_user="/welcome"),
    )
    async with client_for(app) as client:
        response = await sign_up(client)
        assert urlsplit(response.headers["location"]).path == "/welcome"
        again = await sign_in(client)
        assert again.headers["location"] == APP_URL
    jwt_calls = [("signUp", True), ("signIn", False)] if strategy == "jwt" else []
    assert [t for t in triggers if t[0] != "event"] == jwt_calls
    assert [t for t in triggers if t[0] == "event"] == [("event", True), ("event", False)]


async def test_sign_up_without_a_csrf_token_is_refused() -> None:
    outbox = Outbox()
    app = password_app(outbox)
    async with client_for(app) as client:
        response = await client.post(
            "/auth/signup", data={"email": "ada@example.com", "password": GOOD_PASSWORD}
        )
    assert response.status_code == 400
    assert 'data-error="MissingCSRF"' in response.text
    assert outbox.sent == []


# -- sign-in ---------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_wrong_password_and_an_unknown_address_answer_alike_after_one_verification(
    store: Store, strategy: Any
) -> None:
    hasher = CountingHasher()
    app = password_app(Outbox(), adapter=store.adapter, strategy=strategy, hasher=hasher)
    async with client_for(app) as client:
        await sign_up(client)
        client.cookies.clear()
        answers = []
        verifications = []
        for email, password in (
            ("ada@example.com", "not the right passphrase"),
            ("nobody@example.com", "not the right passphrase"),
            ("nobody@example.com", GOOD_PASSWORD),
        ):
            hasher.verifications = 0
            response = await sign_in(client, email=email, password=password)
            answers.append((response.status_code, response.headers["location"]))
            verifications.append(hasher.verifications)
            assert not signed_in(response)
        assert await whoami(client) is None

    assert answers == [(302, WRONG)] * 3
    # One argon2 verification each: the time does not tell which addresses have accounts.
    assert verifications == [1, 1, 1]


async def test_an_account_without_a_usable_hash_costs_a_verification_too() -> None:
    hasher = CountingHasher()
    adapter = MemoryAdapter()
    app = password_app(Outbox(), adapter=adapter, hasher=hasher)
    user = await adapter.create_user({"email": "oauth@example.com", "email_verified": None})
    await adapter.link_account(
        {
            "user_id": user.id,
            "type": "credentials",
            "provider": "password",
            "provider_account_id": user.id,
            "password": "not a hash",
        }
    )
    async with client_for(app) as client:
        for email in ("oauth@example.com", "nobody@example.com"):
            hasher.verifications = 0
            response = await sign_in(client, email=email, password=GOOD_PASSWORD)
            assert response.headers["location"] == WRONG
            assert hasher.verifications == 1


async def test_sign_in_reads_the_address_in_any_case(store: Store) -> None:
    app = password_app(Outbox(), adapter=store.adapter)
    async with client_for(app) as client:
        await sign_up(client, email="Ada@Example.com")
        client.cookies.clear()
        response = await sign_in(client, email="  ADA@example.COM ")
        assert response.headers["location"] == APP_URL
        assert await whoami(client) == "ada@example.com"


async def test_sign_in_answers_next_auth_clients_with_json() -> None:
    app = password_app(Outbox())
    async with client_for(app) as client:
        await sign_up(client)
        client.cookies.clear()
        for password, url in (("not the right passphrase", WRONG), (GOOD_PASSWORD, APP_URL)):
            token = await csrf_token(client)
            response = await client.post(
                "/auth/callback/password",
                data={"csrfToken": token, "email": "ada@example.com", "password": password},
                headers={"X-Auth-Return-Redirect": "1"},
            )
            assert response.status_code == 200
            assert response.json() == {"url": url}
        assert await whoami(client) == "ada@example.com"


async def test_sign_in_without_a_csrf_token_is_refused() -> None:
    app = password_app(Outbox())
    async with client_for(app) as client:
        await sign_up(client)
        client.cookies.clear()
        response = await client.post(
            "/auth/callback/password",
            data={"email": "ada@example.com", "password": GOOD_PASSWORD},
        )
    assert _query(response.headers["location"]) == {"error": ["MissingCSRF"]}
    assert not signed_in(response)


# -- rehashing -------------------------------------------------------------------------------


def _old_hash(kind: str) -> str:
    if kind == "bcrypt":
        return bcrypt.hashpw(GOOD_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    return PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(GOOD_PASSWORD)


@pytest.mark.parametrize("kind", ["argon2 of other parameters", "bcrypt"])
async def test_an_older_hash_is_replaced_by_a_current_one_at_sign_in(
    store: Store, kind: str
) -> None:
    app = password_app(Outbox(), adapter=store.adapter)
    async with client_for(app) as client:
        await sign_up(client)
        old = _old_hash(kind)
        await store.set_password_hash(old)
        client.cookies.clear()

        wrong = await sign_in(client, password="not the right passphrase")
        assert wrong.headers["location"] == WRONG
        assert await store.password_hash() == old  # only a verified hash is replaced

        response = await sign_in(client)
        assert response.headers["location"] == APP_URL
        assert await whoami(client) == "ada@example.com"

    new = await store.password_hash()
    assert new is not None and new != old
    assert new.startswith(CURRENT_ARGON2)
    assert FAST_HASHER.verify(GOOD_PASSWORD, new).ok
    assert FAST_HASHER.verify(GOOD_PASSWORD, new).rehashed is None


async def test_a_current_hash_is_left_alone_at_sign_in(store: Store) -> None:
    app = password_app(Outbox(), adapter=store.adapter)
    async with client_for(app) as client:
        await sign_up(client)
        before = await store.password_hash()
        client.cookies.clear()
        await sign_in(client)
        assert await whoami(client) == "ada@example.com"
    assert await store.password_hash() == before


# -- the rules, through the routes ------------------------------------------------------------


def _no_company_names(password: str, user: Any) -> str | None:
    return "Do not use the company's name." if "acme" in password.lower() else None


RULE_BREAKERS = [
    pytest.param("", "PasswordTooShort", id="0 characters"),
    pytest.param("x" * 7, "PasswordTooShort", id="7 characters"),
    pytest.param("x" * 257, "PasswordTooLong", id="257 characters"),
    pytest.param("long enough\x00but a NUL", "PasswordInvalid", id="NUL"),
    pytest.param("ada@example.com", "PasswordMatchesEmail", id="the address"),
    pytest.param("ADA@EXAMPLE.COM", "PasswordMatchesEmail", id="the address, shouted"),
    pytest.param("password1234", "PasswordTooCommon", id="common"),
    pytest.param("acme rocks forever", "PasswordRejected", id="the app's rule"),
]


@pytest.mark.parametrize(("password", "code"), RULE_BREAKERS)
async def test_a_password_breaking_a_rule_is_refused_with_its_code(
    store: Store, password: str, code: str
) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter, rules=PasswordRules(rule=_no_company_names))
    async with client_for(app) as client:
        page = await sign_up(client, password=password)
        token = await csrf_token(client)
        data = {"csrfToken": token, "email": "ada@example.com", "password": password}
        as_json = await client.post(
            "/auth/signup", data=data, headers={"X-Auth-Return-Redirect": "1"}
        )
        assert await whoami(client) is None

    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert f'data-error="{code}"' in page.text
    assert "nonce-" in page.headers["content-security-policy"]
    assert as_json.status_code == 400
    assert as_json.json() == {"error": code, "message": ANY}
    if code == "PasswordRejected":
        assert as_json.json()["message"] == "Do not use the company's name."
        assert "Do not use the company&#x27;s name." in page.text
    assert not signed_in(page)
    assert await store.count("users") == 0
    assert await store.count("accounts") == 0
    assert outbox.sent == []


async def test_a_password_without_a_field_is_refused() -> None:
    app = password_app(Outbox())
    async with client_for(app) as client:
        token = await csrf_token(client)
        response = await client.post(
            "/auth/signup", data={"csrfToken": token, "email": "ada@example.com"}
        )
    assert response.status_code == 400
    assert 'data-error="PasswordInvalid"' in response.text


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(b"%FF%FEgood%20enough%20length", id="percent-encoded"),
        pytest.param(b"\xff\xfegood enough length", id="raw bytes"),
        pytest.param(b"good%C3enough length", id="a cut character"),
    ],
)
async def test_a_password_that_is_not_utf8_is_refused(store: Store, encoded: bytes) -> None:
    app = password_app(Outbox(), adapter=store.adapter)
    async with client_for(app) as client:
        token = await csrf_token(client)
        body = urlencode({"csrfToken": token, "email": "ada@example.com"}).encode()
        response = await client.post(
            "/auth/signup",
            content=body + b"&password=" + encoded,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 400
    assert 'data-error="PasswordInvalid"' in response.text
    assert await store.count("users") == 0


async def test_a_password_of_100000_characters_is_refused_before_it_is_read(
    store: Store,
) -> None:
    """Over the 64 KiB every auth form may take: refused unread (413), never a 500."""
    app = password_app(Outbox(), adapter=store.adapter)
    async with client_for(app) as client:
        response = await sign_up(client, password="x" * 100_000)
        assert await whoami(client) is None
    assert response.status_code == 413
    assert await store.count("users") == 0


async def test_json_sign_ups_are_refused_alike() -> None:
    app = password_app(Outbox())
    async with client_for(app) as client:
        token = await csrf_token(client)
        for password, code in (
            (12345678, "PasswordInvalid"),  # not a string
            ("x" * 3000, "PasswordTooLong"),
        ):
            body = {"csrfToken": token, "email": "ada@example.com", "password": password}
            response = await client.post(
                "/auth/signup",
                content=json.dumps(body),  # ASCII: "\\ud800" as JSON writes it
                headers={"Content-Type": "application/json", "X-Auth-Return-Redirect": "1"},
            )
            assert response.status_code == 400
            assert response.json()["error"] == code


# -- verification links ----------------------------------------------------------------------


def _spoiled(url: str, how: str, clock: Clock) -> str:
    params = link_params(url)
    if how == "tampered":
        params["token"] = ("A" if params["token"][0] != "A" else "B") + params["token"][1:]
    elif how == "another address":
        params["email"] = "bob@example.com"
    elif how == "expired":
        clock.advance(DAY + 1)
    return f"/auth/verify-email?{urlencode(params)}"


@pytest.mark.parametrize("how", ["expired", "tampered", "another address"])
async def test_a_spoiled_verification_link_changes_nothing(
    store: Store, clock: Clock, how: str
) -> None:
    outbox = Outbox()
    app = password_app(
        outbox, adapter=store.adapter, require_verified_email=True, config_clock=clock
    )
    async with client_for(app) as client:
        await sign_up(client)
        await sign_up(client, email="bob@example.com")
        link = outbox.to("ada@example.com")[-1].url
        response = await confirm(client, _spoiled(link, how, clock))
        assert response.status_code == 302
        assert response.headers["location"] == f"{APP_URL}/auth/error?error=Verification"
        assert not signed_in(response)
        assert await whoami(client) is None
        for email in ("ada@example.com", "bob@example.com"):
            user = await store.adapter.get_user_by_email(email)
            assert user is not None and user.email_verified is None
        if how != "expired":
            # The genuine link still works.
            assert signed_in(await confirm(client, link))


async def test_a_verification_link_works_once(store: Store) -> None:
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter, require_verified_email=True)
    async with client_for(app) as client:
        await sign_up(client)
        link = outbox.last().url
        assert signed_in(await confirm(client, link))
        client.cookies.clear()
        again = await confirm(client, link)
    assert again.headers["location"] == f"{APP_URL}/auth/error?error=Verification"
    assert not signed_in(again)


async def test_opening_a_verification_link_uses_nothing_up(store: Store) -> None:
    # Mail scanners open links: only the page's button may confirm (and sign in).
    outbox = Outbox()
    app = password_app(outbox, adapter=store.adapter, require_verified_email=True)
    async with client_for(app) as client:
        await sign_up(client)
        link = local_path(outbox.last().url)
        for response in (await client.head(link), await client.get(link), await client.get(link)):
            assert response.status_code == 200
            assert response.headers["referrer-policy"] == "no-referrer"
            assert not signed_in(response)
        assert 'action="http://testserver/auth/verify-email"' in response.text
        user = await store.adapter.get_user_by_email("ada@example.com")
        assert user is not None and user.email_verified is None
        assert signed_in(await confirm(client, outbox.last().url))


async def test_the_verification_error_page_says_what_happened() -> None:
    app = password_app(Outbox())
    async with client_for(app) as client:
        response = await confirm(client, "/auth/verify-email?token=nothing&email=ada%40example.com")
        page = await client.get(response.headers["location"])
    assert page.status_code == 403
    assert "X-Frame-Options" in page.headers


# -- configuration ----------------------------------------------------------------------------


async def _send(to: str, subject: str, text: str, url: str, request: Any) -> None:
    pass


def test_password_accounts_need_an_adapter() -> None:
    with pytest.raises(ConfigurationError, match=r"give AuthConfig an adapter.*MongoDBAdapter"):
        AuthConfig(secret=SECRET, url=APP_URL, providers=[Password(send=_send)])


def test_password_accounts_need_the_apps_address() -> None:
    with pytest.raises(ConfigurationError, match=r"AUTH_URL.*trust_host=True"):
        AuthConfig(secret=SECRET, adapter=MemoryAdapter(), providers=[Password(send=_send)])
    # Either one will do.
    AuthConfig(
        secret=SECRET, adapter=MemoryAdapter(), trust_host=True, providers=[Password(send=_send)]
    )


def test_only_one_password_provider_may_be_configured() -> None:
    with pytest.raises(ConfigurationError, match=r"only one Password provider.*password, staff"):
        AuthConfig(
            secret=SECRET,
            url=APP_URL,
            adapter=MemoryAdapter(),
            providers=[Password(send=_send), Password(send=_send, id="staff")],
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"send": "smtp://mail"}, r"needs a function \(to, subject, text, url, request\)"),
        ({"send": _send, "reset_max_age": 0}, r"reset_max_age=\.\.\.\) must be a positive"),
        ({"send": _send, "verify_max_age": -1}, r"verify_max_age=\.\.\.\) must be a positive"),
        ({"send": _send, "hash_field": ""}, r"hash_field=\.\.\.\) must name a user field"),
    ],
)
def test_password_options_are_checked_at_start_up(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Password(**options)


# -- mail that cannot be sent ----------------------------------------------------------------


async def test_a_mailer_that_fails_changes_no_answer_and_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = []
    for outbox in (Outbox(), Outbox(refuse=True)):
        app = password_app(outbox, require_verified_email=True)
        async with client_for(app) as client:
            with caplog.at_level(logging.INFO, logger="asgi_session"):
                caplog.clear()
                signed_up = await sign_up(client)
                taken = await sign_up(client)
                token = await csrf_token(client)
                forgot = await client.post(
                    "/auth/password/forgot", data={"csrfToken": token, "email": "ada@example.com"}
                )
            answers.append(
                [(r.status_code, r.headers.get("location")) for r in (signed_up, taken, forgot)]
            )
            levels = {record.levelname for record in caplog.records}
            if outbox.refuse:
                assert levels == {"WARNING"}
                assert len(caplog.records) == 3
                assert "could not send an email" in caplog.records[0].getMessage()
            else:
                assert levels == set()
    assert answers[0] == answers[1]
    assert all(status == 302 for status, _ in answers[0])
