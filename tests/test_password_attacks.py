"""What an attacker tries against password accounts, and what stops it.

Each test here stands for a way in that was found by trying it: an account taken over
before its owner arrives, links that outlive a reset, answers that tell which addresses
have accounts, mail floods, and input no form should send.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx2
import pytest
from starlette.requests import Request

from asgi_session import AuthConfig, ConfigurationError, RateLimit, RateLimits
from asgi_session.backends import JWTStrategy, MemoryAdapter
from asgi_session.passwords import PasswordHasher, Verified
from asgi_session.providers import (
    Credentials,
    Email,
    Identity,
    Password,
    Provider,
    ProviderRequest,
)
from asgi_session.providers._base import ProviderType
from tests.support.apps import SECRET, SESSION_COOKIE, Clock, client_for, csrf_token
from tests.support.passwords import (
    APP_URL,
    FAST_HASHER,
    GOOD_PASSWORD,
    Outbox,
    ask_reset,
    confirm,
    link_params,
    local_path,
    password_app,
    reset,
    sign_in,
    sign_up,
    whoami,
)

VICTIM = "victim@example.com"
ATTACKERS = "the attacker's passphrase"


def _email_links() -> tuple[list[str], Email]:
    """An ``Email`` provider whose sign-in links land in the list returned with it."""
    links: list[str] = []

    def send_link(identifier: str, url: str, request: Request) -> None:
        links.append(url)

    return links, Email(send=send_link)


async def _magic_link(client: httpx2.AsyncClient, links: list[str], email: str) -> str:
    await client.post(
        "/auth/signin/email", data={"csrfToken": await csrf_token(client), "email": email}
    )
    return links[-1]


@pytest.mark.parametrize("strategy", ["jwt", "database"])
@pytest.mark.parametrize("required", [False, True])
async def test_a_password_set_before_the_owner_proved_the_address_goes_when_they_do(
    strategy: Any, required: bool
) -> None:
    # Someone signs up with another's address; the owner later signs in with a link
    # mailed to that address. The attacker's password must not open the owner's account.
    links, email_provider = _email_links()

    app = password_app(
        Outbox(),
        strategy=strategy,
        require_verified_email=required,
        providers=[email_provider],
    )
    async with client_for(app) as attacker, client_for(app) as victim:
        await sign_up(attacker, VICTIM, ATTACKERS)
        assert await whoami(attacker) == (None if required else VICTIM)

        await victim.get(local_path(await _magic_link(victim, links, VICTIM)))
        assert await whoami(victim) == VICTIM

        assert await whoami(attacker) is None  # the session the sign-up opened ended
        attacker.cookies.clear()
        refused = await sign_in(attacker, VICTIM, ATTACKERS)
        assert "error=CredentialsSignin" in refused.headers["location"]
        assert await whoami(attacker) is None


async def test_an_owner_who_proved_the_address_keeps_their_own_password() -> None:
    links, email_provider = _email_links()

    outbox = Outbox()
    app = password_app(outbox, providers=[email_provider])
    async with client_for(app) as client:
        await sign_up(client)
        await confirm(client, outbox.last().url)  # confirmed with its own link
        client.cookies.clear()
        await client.get(local_path(await _magic_link(client, links, "ada@example.com")))
        client.cookies.clear()
        assert (await sign_in(client)).headers["location"] == APP_URL


async def test_one_verification_link_used_ends_them_all_and_a_reset_ends_any_left() -> None:
    clock = Clock()
    outbox = Outbox()
    app = password_app(outbox, require_verified_email=True, config_clock=clock)
    async with client_for(app) as client:
        await sign_up(client)
        await sign_in(client)  # unconfirmed: another link goes out
        first, second = (mail.url for mail in outbox.to("ada@example.com"))
        assert (await confirm(client, second)).headers["location"] == APP_URL
        client.cookies.clear()
        used_up = await confirm(client, first)
        assert used_up.headers["location"].endswith("/auth/error?error=Verification")
        assert await whoami(client) is None

    # A link left over from before a reset signs nobody in after it.
    outbox = Outbox()
    app = password_app(outbox, require_verified_email=True, config_clock=clock)
    async with client_for(app) as client:
        await sign_up(client)
        verify = outbox.last().url
        await ask_reset(client)
        await reset(client, outbox.last())
        client.cookies.clear()
        clock.advance(11)
        stale = await confirm(client, verify)
        assert stale.headers["location"].endswith("/auth/error?error=Verification")
        assert await whoami(client) is None


async def test_a_link_to_a_confirmed_address_does_not_sign_in() -> None:
    outbox = Outbox()
    adapter = MemoryAdapter()
    app = password_app(outbox, adapter=adapter)
    async with client_for(app) as client:
        await sign_up(client)
        user = await adapter.get_user_by_email("ada@example.com")
        assert user is not None
        await adapter.update_user({"id": user.id, "email_verified": datetime.now(UTC)})
        client.cookies.clear()
        late = await confirm(client, outbox.last().url)
        assert late.headers["location"].endswith("/auth/error?error=Verification")
        assert await whoami(client) is None


async def test_forgot_answers_before_it_looks_the_address_up_or_mails() -> None:
    # What the answer waits for must not depend on whether the address has an account:
    # the lookup, the token and the mail come after the response is sent.
    outbox = Outbox()
    app = password_app(outbox)
    async with client_for(app) as client:
        await sign_up(client)
        cookies = dict(client.cookies)
        token = await csrf_token(client)
    for email in ("ada@example.com", "nobody@example.com"):
        events = await _forgot_events(app, outbox, cookies, token, email)
        expected = 1 if email == "ada@example.com" else 0
        assert events == ["answered, 0 mailed", f"done, {expected} mailed"]


async def _forgot_events(
    app: Any, outbox: Outbox, cookies: dict[str, str], token: str, email: str
) -> list[str]:
    """POST /auth/password/forgot straight through ASGI: what was mailed when the
    answer's body went out, and when the app returned."""
    events: list[str] = []
    mailed = len(outbox.sent)

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body":
            events.append(f"answered, {len(outbox.sent) - mailed} mailed")

    body = f"csrfToken={token}&email={email}".encode()
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/auth/password/forgot",
        "raw_path": b"/auth/password/forgot",
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"cookie", cookie.encode()),
        ],
    }

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    await app(scope, receive, send)
    events.append(f"done, {len(outbox.sent) - mailed} mailed")
    return events


async def test_sign_ups_with_one_address_are_limited_so_its_inbox_is_not_flooded() -> None:
    outbox = Outbox()
    app = password_app(outbox, config_rate_limits=RateLimits(sign_up_per_address=RateLimit(2, 60)))
    async with client_for(app) as client:
        await sign_up(client)
        answers = []
        for _ in range(3):
            client.cookies.clear()
            answers.append((await sign_up(client)).status_code)
    assert answers == [302, 429, 429]
    assert len(outbox.to("ada@example.com")) == 2  # the verification link, one warning


async def test_reset_links_asked_for_at_once_all_go_with_the_first_used() -> None:
    outbox = Outbox()
    app = password_app(outbox)
    async with client_for(app) as client:
        await sign_up(client)
        await asyncio.gather(*(ask_reset(client) for _ in range(3)))
        links = [mail for mail in outbox.to("ada@example.com") if "Reset" in mail.subject]
        assert len(links) == 3
        assert (await reset(client, links[-1])).status_code == 302
        for other in links[:-1]:
            refused = await reset(client, other, "yet another passphrase")
            assert refused.status_code == 400
            assert 'data-error="InvalidResetLink"' in refused.text


async def test_a_password_provider_needs_jwt_revocations_on() -> None:
    with pytest.raises(ConfigurationError, match="revocation_check_interval"):
        AuthConfig(
            secret=SECRET,
            url=APP_URL,
            adapter=MemoryAdapter(),
            strategy=JWTStrategy(revocation_check_interval=None),
            providers=[Password(send=Outbox().send, hasher=FAST_HASHER)],
        )


# An adapter written before delete_verification_tokens existed: MemoryAdapter without it.
_OlderAdapter = type(
    "_OlderAdapter",
    MemoryAdapter.__bases__,
    {
        name: value
        for name, value in vars(MemoryAdapter).items()
        if name not in ("delete_verification_tokens", "__dict__", "__weakref__")
    },
)


def test_an_adapter_without_the_newer_method_still_serves_everything_else() -> None:
    AuthConfig(secret=SECRET, adapter=_OlderAdapter())  # no Password: accepted as before
    with pytest.raises(ConfigurationError, match="delete_verification_tokens"):
        AuthConfig(
            secret=SECRET,
            url=APP_URL,
            adapter=_OlderAdapter(),
            providers=[Password(send=Outbox().send, hasher=FAST_HASHER)],
        )


@pytest.mark.parametrize(
    ("token", "callback_url"),
    [("\ud800", "/"), ("x" * 40, "/\ud800")],
)
async def test_lone_surrogates_in_json_are_refused_not_a_500(token: str, callback_url: str) -> None:
    outbox = Outbox()
    app = password_app(outbox)
    async with client_for(app) as client:
        await sign_up(client)
        await ask_reset(client)
        email = link_params(outbox.last().url)["email"]
        fields = {
            "csrfToken": await csrf_token(client),
            "email": email,
            "token": token,
            "password": "a brand new passphrase",
            "callbackUrl": callback_url,
        }
        response = await client.post(
            "/auth/password/reset",
            content=json.dumps(fields).encode(),  # escaped: the surrogate reaches the server
            headers={"X-Auth-Return-Redirect": "1", "Content-Type": "application/json"},
        )
    # Text no client means: the whole body is refused, before anything is looked at.
    assert response.status_code == 400
    assert response.text == "Bad Request: unreadable body"


class _Vouching(Provider):
    """An OAuth provider reduced to its end: the callback vouches for one account."""

    type: ClassVar[ProviderType] = "oauth"

    def __init__(self) -> None:
        super().__init__(id="vouching", name="Vouching")

    async def authenticate(self, request: ProviderRequest) -> Identity:
        return Identity(
            provider=self.id,
            type="oauth",
            account_id="the-attackers-own",
            user={"email": "attacker@evil.example", "name": "Attacker"},
        )


async def test_nothing_can_be_linked_to_an_account_whose_password_nobody_confirmed() -> None:
    # Otherwise the attacker links an OAuth account of their own while signed in through
    # the unconfirmed password, and keeps it after the owner proves the address.
    links, email_provider = _email_links()

    outbox = Outbox()
    app = password_app(outbox, providers=[email_provider, _Vouching()])
    async with client_for(app) as attacker, client_for(app) as victim:
        await sign_up(attacker, VICTIM, ATTACKERS)
        linked = await attacker.get("/auth/callback/vouching")
        assert linked.headers["location"].endswith("error=AccountNotConfirmed")
        await victim.get(local_path(await _magic_link(victim, links, VICTIM)))
        attacker.cookies.clear()
        again = await attacker.get("/auth/callback/vouching")
        assert await whoami(attacker) != VICTIM, again.headers

    # Once the address is confirmed, linking works as before.
    outbox = Outbox()
    app = password_app(outbox, providers=[_Vouching()])
    async with client_for(app) as owner:
        await sign_up(owner)
        await confirm(owner, outbox.last().url)
        linked = await owner.get("/auth/callback/vouching")
        assert linked.headers["location"] == APP_URL
        assert await whoami(owner) == "ada@example.com"


class _HeldHasher(PasswordHasher):
    """Holds a verification open until the test lets it finish."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def verify_async(self, password: str, stored: str | None) -> Verified:
        verified = await super().verify_async(password, stored)
        if password == ATTACKERS:
            self.started.set()
            await self.go.wait()
        return verified


@pytest.mark.parametrize("strategy", ["jwt", "database"])
async def test_a_sign_in_under_way_when_the_owner_proves_the_address_opens_nothing(
    strategy: Any,
) -> None:
    links, email_provider = _email_links()

    hasher = _HeldHasher()
    app = password_app(Outbox(), strategy=strategy, hasher=hasher, providers=[email_provider])
    async with client_for(app) as attacker, client_for(app) as victim:
        await sign_up(attacker, VICTIM, ATTACKERS)
        attacker.cookies.clear()
        under_way = asyncio.ensure_future(sign_in(attacker, VICTIM, ATTACKERS))
        await hasher.started.wait()
        await victim.get(local_path(await _magic_link(victim, links, VICTIM)))
        hasher.go.set()
        answer = await under_way
        assert "error=CredentialsSignin" in answer.headers["location"]
        assert await whoami(attacker) is None
        assert await whoami(victim) == VICTIM


async def test_a_password_the_owner_set_through_a_reset_stays_when_they_use_a_link() -> None:
    # Only a password chosen at a sign-up nobody confirmed is dropped: one set through a
    # reset link (or imported) was set by whoever holds the inbox.
    links, email_provider = _email_links()

    outbox = Outbox()
    app = password_app(outbox, providers=[email_provider])
    async with client_for(app) as client:
        await sign_up(client)
        await ask_reset(client)
        await reset(client, outbox.last(), "a brand new passphrase")
        client.cookies.clear()
        await client.get(local_path(await _magic_link(client, links, "ada@example.com")))
        client.cookies.clear()
        ok = await sign_in(client, password="a brand new passphrase")
        assert ok.headers["location"] == APP_URL


async def test_a_cookies_token_sent_as_a_bearer_token_can_still_sign_in_again() -> None:
    app = password_app(Outbox(), config_bearer_tokens=True)
    async with client_for(app) as client:
        await sign_up(client)
        token = client.cookies[SESSION_COOKIE]
        client.cookies.clear()
        answer = await client.post(
            "/auth/callback/password",
            data={"email": "ada@example.com", "password": GOOD_PASSWORD},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 302
    assert "set-cookie" not in answer.headers


async def test_an_app_vouching_for_the_address_drops_an_unconfirmed_password_too() -> None:
    # A directory login (Credentials) naming the address is the owner proving it.
    def directory(credentials: dict[str, str], request: Request) -> dict[str, str] | None:
        return {"id": "staff-7", "email": VICTIM} if credentials["email"] == VICTIM else None

    app = password_app(
        Outbox(),
        strategy="database",
        providers=[Credentials(authorize=directory, id="directory")],
    )
    async with client_for(app) as attacker, client_for(app) as victim:
        await sign_up(attacker, VICTIM, ATTACKERS)
        signed = await victim.post(
            "/auth/callback/directory",
            data={"csrfToken": await csrf_token(victim), "email": VICTIM, "password": "x"},
        )
        assert signed.status_code == 302
        assert await whoami(victim) == VICTIM
        assert await whoami(attacker) is None
        attacker.cookies.clear()
        assert (
            "error=CredentialsSignin"
            in (await sign_in(attacker, VICTIM, ATTACKERS)).headers["location"]
        )


async def test_signing_out_with_a_cookies_token_as_a_bearer_token_says_it_cannot() -> None:
    app = password_app(Outbox(), config_bearer_tokens=True)
    async with client_for(app) as client:
        await sign_up(client)
        token = client.cookies[SESSION_COOKIE]
        client.cookies.clear()
        out = await client.post("/auth/signout", headers={"Authorization": f"Bearer {token}"})
        assert out.status_code == 501
        still = await client.get("/", headers={"Authorization": f"Bearer {token}"})
        assert still.json()["user"]["email"] == "ada@example.com"


async def test_two_sign_ins_at_once_that_both_rehash_both_get_in() -> None:
    adapter = MemoryAdapter()
    app = password_app(Outbox(), adapter=adapter)
    async with client_for(app) as client:
        await sign_up(client)
    user = await adapter.get_user_by_email("ada@example.com")
    assert user is not None
    older = PasswordHasher(time_cost=1, memory_cost=16, parallelism=1).hash(GOOD_PASSWORD)
    await adapter.update_account(
        provider="password", provider_account_id=user.id, data={"password": older}
    )
    async with client_for(app) as one, client_for(app) as two:
        answers = await asyncio.gather(sign_in(one), sign_in(two))
    assert [answer.headers["location"] for answer in answers] == [APP_URL, APP_URL]


async def test_confirming_without_a_csrf_token_shows_the_page_again_and_spends_nothing() -> None:
    outbox = Outbox()
    app = password_app(outbox, require_verified_email=True)
    async with client_for(app) as client:
        await sign_up(client)
        params = link_params(outbox.last().url)
        refused = await client.post("/auth/verify-email", data=params)
        assert refused.status_code == 400
        assert 'data-error="MissingCSRF"' in refused.text
        assert f'value="{params["token"]}"' in refused.text
        assert (await confirm(client, outbox.last().url)).headers["location"] == APP_URL
