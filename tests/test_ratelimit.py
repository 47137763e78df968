"""Rate limits: the counting, the stores, whom a limit counts, and the routes they guard.

The routes are driven end to end through the ASGI app; MongoDB's store runs against the
real mongod of the suite.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient, monitoring
from starlette.requests import Request

from asgi_session import (
    AuthConfig,
    BackendUnavailableError,
    ConfigurationError,
    RateLimit,
    RateLimits,
    SignInError,
)
from asgi_session._ratelimit import (
    NOT_COUNTED,
    UNKNOWN_CLIENT,
    MemoryRateLimitStore,
    Window,
    client_address,
    count,
    count_once,
    proxy_networks,
    release,
    window_of,
)
from asgi_session.backends import MemoryAdapter
from asgi_session.backends.mongodb import MongoDBAdapter, MongoDBRateLimitStore
from asgi_session.providers import Credentials, Email, OAuth
from tests.support.apps import (
    SECRET,
    SESSION_COOKIE,
    Clock,
    authorize,
    build_app,
    config_of,
    csrf_token,
    set_cookies,
    sign_in,
)

MINUTE = 60
#: A moment at the start of a minute (and of a five-minute window), for exact Retry-Afters.
ALIGNED = 1_800_000_000.0


def client_from(app: Any, ip: str = "203.0.113.7") -> httpx2.AsyncClient:
    """A client (one browser) connecting to ``app`` from ``ip``."""
    transport = httpx2.ASGITransport(app=app, client=(ip, 50_000))
    return httpx2.AsyncClient(transport=transport, base_url="http://testserver")


def error_of(response: httpx2.Response) -> str | None:
    """The ``error`` of a redirect to the sign-in page; ``None`` for any other answer."""
    location = response.headers.get("location", "")
    if not urlsplit(location).path.endswith("/auth/signin"):
        return None
    return parse_qs(urlsplit(location).query).get("error", [None])[0]


def signed_in(response: httpx2.Response) -> bool:
    return SESSION_COOKIE in set_cookies(response)


# -- counting -------------------------------------------------------------------------------


async def test_a_fixed_window_lets_the_limit_through_then_says_when_to_come_back() -> None:
    store = MemoryRateLimitStore()
    limit = RateLimit(3, MINUTE)
    now = ALIGNED + 15
    checks = [("failed_sign_in_per_ip", limit, "ip:203.0.113.7")]

    passed = [await count(store, checks, now) for _ in range(3)]
    refused = await count(store, checks, now + 5)

    assert [counted.retry_after for counted in passed] == [None, None, None]
    assert refused.retry_after == MINUTE - 20
    # The next window starts from nothing.
    assert (await count(store, checks, ALIGNED + MINUTE)).retry_after is None


async def test_retry_after_waits_for_every_limit_the_request_is_over() -> None:
    store = MemoryRateLimitStore()
    checks = [
        ("failed_sign_in_per_ip", RateLimit(1, MINUTE), "ip:203.0.113.7"),
        ("failed_sign_in_per_identifier", RateLimit(1, 5 * MINUTE), "ada@example.com"),
    ]
    await count(store, checks, ALIGNED + 10)

    refused = await count(store, checks, ALIGNED + 10)

    assert refused.retry_after == 5 * MINUTE - 10
    assert len(refused.windows) == 2


async def test_an_attempt_taken_back_leaves_room_for_another() -> None:
    store = MemoryRateLimitStore()
    checks = [("failed_sign_in_per_identifier", RateLimit(2, 5 * MINUTE), "ada@example.com")]
    now = ALIGNED + 60

    first = await count(store, checks, now)
    assert first.retry_after is None
    await release(store, first, now)  # it succeeded: it does not count
    assert await store.peek(first.windows, now) == [0]
    assert (await count(store, checks, now)).retry_after is None
    assert (await count(store, checks, now)).retry_after is None

    # Two failures counted: a third attempt passes the limit.
    assert (await count(store, checks, now)).retry_after == 4 * MINUTE


async def test_attempts_sent_at_once_cannot_outrun_their_counter() -> None:
    # Counting before checking: a burst of guesses gets exactly the limit through,
    # however many are in flight.
    store = MemoryRateLimitStore()
    checks = [("failed_sign_in_per_identifier", RateLimit(5, 5 * MINUTE), "ada@example.com")]
    results = await asyncio.gather(*(count(store, checks, ALIGNED) for _ in range(50)))
    assert sum(result.retry_after is None for result in results) == 5


async def test_removed_limits_and_absent_subjects_count_nothing() -> None:
    store = MemoryRateLimitStore()

    counted = await count(
        store,
        [("email_per_address", None, "ada@example.com"), ("email_per_ip", RateLimit(1, 1), None)],
        ALIGNED,
    )

    assert counted == NOT_COUNTED
    assert len(store) == 0


def test_keys_name_the_limit_and_window_but_hold_no_subject_in_clear() -> None:
    window = window_of("email_per_address", RateLimit(3, MINUTE), "ada@example.com", ALIGNED + 7)

    assert window.key.startswith(f"email_per_address/60:{int(ALIGNED)}:")
    assert "example" not in window.key
    assert window.expires == ALIGNED + MINUTE
    # A JSON body may carry a lone surrogate; it still makes a key.
    assert window_of("x", RateLimit(1, 1), "\ud800", ALIGNED).key


class BrokenStore(MemoryRateLimitStore):
    """A store with a bug: every call fails."""

    async def hit(self, windows: Sequence[Window], now: float) -> list[int]:
        raise RuntimeError("bug in the store")

    async def release(self, windows: Sequence[Window], now: float) -> None:
        raise RuntimeError("bug in the store")


async def test_a_store_that_fails_is_unavailable_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(BackendUnavailableError, match="RuntimeError"):
        await count(BrokenStore(), [("oauth_per_ip", RateLimit(1, 1), "ip:1")], ALIGNED)
    assert "BrokenStore failed" in caplog.text


# -- the memory store ------------------------------------------------------------------------


async def test_the_memory_store_forgets_windows_as_they_end() -> None:
    store = MemoryRateLimitStore()
    minute = [window_of("a", RateLimit(9, MINUTE), str(index), ALIGNED) for index in range(3)]
    five = window_of("b", RateLimit(9, 5 * MINUTE), "x", ALIGNED)
    await store.hit([*minute, five], ALIGNED)
    assert len(store) == 4

    later = window_of("a", RateLimit(9, MINUTE), "y", ALIGNED + MINUTE)
    await store.hit([later], ALIGNED + MINUTE)

    assert len(store) == 2
    assert await store.hit([five], ALIGNED + MINUTE) == [2]


async def test_the_memory_store_is_capped_and_lets_the_least_recently_counted_go() -> None:
    store = MemoryRateLimitStore(max_entries=3)
    a, b, c, d = (Window(key, ALIGNED + MINUTE) for key in "abcd")
    await store.hit([a, b, c], ALIGNED)
    await store.hit([a], ALIGNED)

    await store.hit([d], ALIGNED)

    assert len(store) == 3
    assert await store.peek([a, b, c, d], ALIGNED) == [2, 0, 1, 1], "b went first"
    assert len(store) == 3


async def test_a_flood_of_fresh_keys_cannot_push_out_a_guessers_counter() -> None:
    store = MemoryRateLimitStore(max_entries=1000)
    guesser = [("failed_sign_in_per_identifier", RateLimit(5, 5 * MINUTE), "ann@example.com")]
    flood = RateLimit(10, MINUTE)
    await count(store, guesser, ALIGNED)
    for guess in range(1, 8):
        counted = await count(store, guesser, ALIGNED)
        assert (counted.retry_after is None) is (guess < 5)
        for index in range(2000):  # rotated addresses between every two guesses
            await count(store, [("failed_sign_in_per_ip", flood, f"ip:{guess}:{index}")], ALIGNED)
    assert len(store) == 1000


async def test_a_flood_of_distinct_addresses_stays_within_the_cap() -> None:
    store = MemoryRateLimitStore(max_entries=1000)
    limit = RateLimit(10, MINUTE)
    for index in range(5000):
        await count(store, [("failed_sign_in_per_ip", limit, f"ip:{index}")], ALIGNED)
    assert len(store) == 1000


async def test_peek_reads_counts_without_making_any() -> None:
    store = MemoryRateLimitStore()
    window = Window("k", ALIGNED + MINUTE)
    await store.hit([window, window], ALIGNED)

    assert await store.peek([window, Window("never-counted", ALIGNED + MINUTE)], ALIGNED) == [2, 0]
    assert len(store) == 1
    assert await store.peek([window], ALIGNED + MINUTE) == [0], "its window has ended"


def test_the_memory_store_needs_a_positive_cap() -> None:
    with pytest.raises(ConfigurationError, match="max_entries"):
        MemoryRateLimitStore(max_entries=0)


# -- whom the per-IP limits count -------------------------------------------------------------


def scope_of(peer: str | None, *forwarded: str) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {
        "type": "http",
        "client": None if peer is None else (peer, 50_000),
        "headers": headers,
    }


def address(
    peer: str | None,
    *forwarded: str,
    trust_host: bool = False,
    proxies: Sequence[str] = (),
) -> str:
    return client_address(
        scope_of(peer, *forwarded), trust_host=trust_host, trusted_proxies=proxy_networks(proxies)
    )


def test_the_peer_is_the_client_unless_a_proxy_is_trusted() -> None:
    assert address("203.0.113.7") == "ip:203.0.113.7"
    # Anyone can send the header; nobody said a proxy of ours sets it.
    assert address("203.0.113.7", "198.51.100.1") == "ip:203.0.113.7"


def test_trust_host_takes_the_address_the_proxy_added() -> None:
    # The proxy appends what it saw; whatever the client sent stays on the left.
    forged = "203.0.113.99, 198.51.100.1"
    assert address("10.0.0.2", forged, trust_host=True) == "ip:198.51.100.1"
    assert address("10.0.0.2", "198.51.100.1:4711", trust_host=True) == "ip:198.51.100.1"
    assert address("10.0.0.2", trust_host=True) == "ip:10.0.0.2"


async def test_forged_forwarded_entries_do_not_escape_the_limit(clock: Clock) -> None:
    app = build_app(clock=clock, trust_host=True)
    async with client_from(app, "10.0.0.2") as client:
        answers = []
        for index in range(12):
            token = await csrf_token(client)
            answers.append(
                await client.post(
                    "/auth/callback/credentials",
                    data={"csrfToken": token, "email": f"u{index}@example.com", "password": "x"},
                    headers={"x-forwarded-for": f"203.0.113.{index}, 198.51.100.7"},
                )
            )
    errors = [error_of(answer) for answer in answers]
    assert errors[:10] == ["CredentialsSignin"] * 10
    assert errors[10:] == ["RateLimited"] * 2


def test_trusted_proxies_take_the_right_most_address_that_is_not_theirs() -> None:
    proxies = ["10.0.0.0/8", "2001:db8:ffff::1"]
    # The client put a forged entry first; our proxies appended what they saw.
    forged = ("6.6.6.6, 198.51.100.1", "10.0.0.5")
    assert address("10.0.0.9", *forged, proxies=proxies) == "ip:198.51.100.1"
    assert address("2001:db8:ffff::1", "198.51.100.1", proxies=proxies) == "ip:198.51.100.1"
    # Only the listed proxies are believed, whatever trust_host says.
    assert address("203.0.113.7", *forged, proxies=proxies, trust_host=True) == "ip:203.0.113.7"
    # Every hop is ours: the request started inside.
    assert address("10.0.0.9", "10.0.0.3, 10.0.0.5", proxies=proxies) == "ip:10.0.0.3"


def test_junk_in_the_header_counts_as_the_peer() -> None:
    assert address("10.0.0.9", "unknown", proxies=["10.0.0.0/8"]) == "ip:10.0.0.9"
    assert address("10.0.0.9", "198.51.100.1, _hidden", proxies=["10.0.0.0/8"]) == "ip:10.0.0.9"
    assert address("10.0.0.9", "10.0.0.1, not-an-ip", trust_host=True) == "ip:10.0.0.9"


def test_ipv6_clients_are_grouped_by_their_slash_64() -> None:
    first = address("2001:db8:1:2:aaaa::1")
    assert first == "ip:2001:db8:1:2::/64"
    assert address("2001:db8:1:2:ffff:ffff:ffff:ffff") == first
    assert address("2001:db8:1:3::1") != first
    assert address("10.0.0.1", "[2001:db8:1:2::9]:443", trust_host=True) == first
    # A dual-stack socket's view of an IPv4 client is that client.
    assert address("::ffff:198.51.100.1") == "ip:198.51.100.1"


def test_a_request_without_a_client_has_one_fixed_key() -> None:
    assert address(None) == UNKNOWN_CLIENT
    assert address(None, "198.51.100.1") == UNKNOWN_CLIENT
    assert address("testclient") == "peer:testclient"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: RateLimit(0, 60), "RateLimit.limit must be a positive"),
        (lambda: RateLimit(5, 1.5), "RateLimit.period must be a positive"),  # type: ignore[arg-type]
        (lambda: RateLimit(True, 60), "RateLimit.limit"),
        (lambda: RateLimits(failed_sign_in_per_ip=(10, 60)), "must be a RateLimit"),  # type: ignore[arg-type]
    ],
)
def test_bad_limits_are_refused_at_start_up(make: Any, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        make()


def test_trusted_proxies_are_parsed_once_at_start_up() -> None:
    config = AuthConfig(secret=SECRET, trusted_proxies=["10.0.0.0/8", " 192.0.2.1 ", "::1"])
    assert [str(network) for network in config.trusted_proxies] == [
        "10.0.0.0/8",
        "192.0.2.1/32",
        "::1/128",
    ]
    with pytest.raises(ConfigurationError, match=r"'10\.0\.0\.300'"):
        AuthConfig(secret=SECRET, trusted_proxies=["10.0.0.0/8", "10.0.0.300"])
    with pytest.raises(ConfigurationError, match="must be a list"):
        AuthConfig(secret=SECRET, trusted_proxies="10.0.0.0/8")


# -- where counters live ----------------------------------------------------------------------


def test_the_store_is_the_one_given_else_the_adapters_else_memory(mongo_db: Any) -> None:
    assert isinstance(AuthConfig(secret=SECRET).rate_limit_store, MemoryRateLimitStore)
    assert isinstance(
        AuthConfig(secret=SECRET, adapter=MemoryAdapter()).rate_limit_store,
        MemoryRateLimitStore,
    )
    mongo = AuthConfig(secret=SECRET, adapter=MongoDBAdapter(mongo_db))
    assert isinstance(mongo.rate_limit_store, MongoDBRateLimitStore)
    given = MemoryRateLimitStore(max_entries=10)
    assert AuthConfig(secret=SECRET, rate_limit_store=given).rate_limit_store is given
    with pytest.raises(ConfigurationError, match="not a rate limit store"):
        AuthConfig(secret=SECRET, rate_limit_store=object())  # type: ignore[arg-type]


# -- failed sign-ins --------------------------------------------------------------------------


async def test_the_eleventh_failed_sign_in_from_one_address_is_refused(clock: Clock) -> None:
    app = build_app(clock=clock)
    async with client_from(app) as client:
        for index in range(10):
            failed = await sign_in(client, f"user{index}@example.com", "wrong")
            assert error_of(failed) == "CredentialsSignin"

        refused = await sign_in(client)

        assert error_of(refused) == "RateLimited"
        assert 1 <= int(refused.headers["retry-after"]) <= MINUTE
        assert not signed_in(refused)
    async with client_from(app, "198.51.100.1") as elsewhere:
        assert signed_in(await sign_in(elsewhere))
    clock.advance(MINUTE)
    async with client_from(app) as client:
        assert signed_in(await sign_in(client))


async def test_the_sixth_failure_for_one_identifier_is_refused_from_anywhere_in_any_spelling(
    clock: Clock,
) -> None:
    app = build_app(clock=clock)
    fullwidth = "\uff41\uff4e\uff4e@example.com"
    spellings = ["Ann@Example.com", "ann@example.com", " ANN@EXAMPLE.COM", fullwidth]
    for index in range(5):
        async with client_from(app, f"198.51.100.{index}") as client:
            failed = await sign_in(client, spellings[index % len(spellings)], "wrong")
            assert error_of(failed) == "CredentialsSignin"

    async with client_from(app, "203.0.113.50") as fresh:
        # The right password too: refusing it is what makes guessing pointless.
        refused = await sign_in(fresh)
        assert error_of(refused) == "RateLimited"
        assert not signed_in(refused)
        # Other accounts are not held up.
        other = await sign_in(fresh, "bob@example.com", "wrong")
        assert error_of(other) == "CredentialsSignin"

        clock.advance(5 * MINUTE)
        assert signed_in(await sign_in(fresh))


async def test_guesses_sent_all_at_once_get_only_the_limit_checked(clock: Clock) -> None:
    checked: list[str] = []

    async def slow_authorize(credentials: dict[str, str], request: Request) -> None:
        checked.append(credentials["password"])
        await asyncio.sleep(0)  # the guesses overlap while each is being checked
        return None

    app = build_app(clock=clock, providers=[Credentials(authorize=slow_authorize)])
    clients = [client_from(app, f"198.51.100.{index}") for index in range(20)]
    try:
        tokens = [await csrf_token(client) for client in clients]
        answers = await asyncio.gather(
            *(
                client.post(
                    "/auth/callback/credentials",
                    data={"csrfToken": token, "email": "ann@example.com", "password": f"guess{n}"},
                )
                for n, (client, token) in enumerate(zip(clients, tokens, strict=True))
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    errors = [error_of(answer) for answer in answers]
    assert errors.count("CredentialsSignin") == 5
    assert errors.count("RateLimited") == 15
    assert len(checked) == 5


async def test_any_refusal_by_authorize_counts_as_a_failure(clock: Clock) -> None:
    async def refuse(credentials: dict[str, str], request: Request) -> None:
        raise SignInError("AccessDenied")

    app = build_app(clock=clock, providers=[Credentials(authorize=refuse)])
    async with client_from(app) as client:
        errors = [error_of(await sign_in(client)) for _ in range(7)]
    assert errors == ["AccessDenied"] * 5 + ["RateLimited"] * 2


async def test_a_success_never_counts_against_the_identifier(clock: Clock) -> None:
    app = build_app(clock=clock)
    async with client_from(app) as client:
        for _ in range(4):
            assert error_of(await sign_in(client, password="wrong")) == "CredentialsSignin"
    async with client_from(app) as other:
        assert signed_in(await sign_in(other))
    async with client_from(app) as client:
        # The fifth failure is still answered: the success in between was not counted.
        assert error_of(await sign_in(client, password="wrong")) == "CredentialsSignin"
        assert error_of(await sign_in(client, password="wrong")) == "RateLimited"


async def test_clients_asking_for_json_get_a_429_with_retry_after(clock: Clock) -> None:
    clock.now = ALIGNED + 100  # 200 seconds before the five-minute window ends
    app = build_app(clock=clock)
    async with client_from(app) as client:
        for _ in range(5):
            await sign_in(client, password="wrong")

        token = await csrf_token(client)
        refused = await client.post(
            "/auth/callback/credentials",
            data={"csrfToken": token, "email": "ann@example.com", "password": "pw-ann"},
            headers={"x-auth-return-redirect": "1"},
        )

    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "200"
    body = refused.json()
    assert body["error"] == "RateLimited"
    # next-auth/react's signIn() reads the error from the URL it is given.
    assert parse_qs(urlsplit(body["url"]).query)["error"] == ["RateLimited"]


@pytest.mark.parametrize(
    ("fields", "options", "submitted"),
    [
        ({"username": {"label": "User", "type": "text"}}, {}, "username"),
        ({"pin": {"label": "PIN", "type": "text"}, "code": {"label": "Code"}}, {}, "pin"),
        (
            {"code": {"label": "Code"}, "login": {"label": "Login"}},
            {"identifier_field": "login"},
            "login",
        ),
    ],
    ids=["username", "first-field", "named"],
)
async def test_the_identifier_is_the_field_that_names_the_account(
    clock: Clock, fields: dict[str, dict[str, str]], options: dict[str, str], submitted: str
) -> None:
    provider = Credentials(authorize=lambda credentials, request: None, fields=fields, **options)
    app = build_app(clock=clock, providers=[provider])
    answers = []
    for index, spelling in enumerate(["Ada", "ada", "ADA ", "\uff21\uff44\uff41", "ada", "aDa"]):
        async with client_from(app, f"198.51.100.{index}") as client:
            token = await csrf_token(client)
            data = {"csrfToken": token, **dict.fromkeys(fields, "x"), submitted: spelling}
            answers.append(error_of(await client.post("/auth/callback/credentials", data=data)))

    assert answers == ["CredentialsSignin"] * 5 + ["RateLimited"]


def test_an_identifier_field_must_be_a_field() -> None:
    with pytest.raises(ConfigurationError, match="'login'"):
        Credentials(authorize=authorize, identifier_field="login")


async def test_the_sign_in_page_explains_rate_limited(client: Any) -> None:
    page = await client.get("/auth/signin", params={"error": "RateLimited"})
    assert "Too many attempts" in page.text


# -- email links and OAuth starts --------------------------------------------------------------


class Outbox:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, identifier: str, url: str, request: Request) -> None:
        self.sent.append(identifier)


def email_app(clock: Clock, outbox: Outbox, *others: Any, **options: Any) -> Any:
    return build_app(
        clock=clock,
        adapter=MemoryAdapter(),
        url="http://testserver",
        providers=[Email(send=outbox.send), *others],
        **options,
    )


async def request_link(client: httpx2.AsyncClient, email: str) -> httpx2.Response:
    token = await csrf_token(client)
    return await client.post("/auth/signin/email", data={"csrfToken": token, "email": email})


async def test_the_fourth_link_to_one_address_in_a_minute_is_refused_and_not_sent(
    clock: Clock,
) -> None:
    outbox = Outbox()
    app = email_app(clock, outbox)
    for index, spelling in enumerate(["ada@example.com", "Ada@Example.com", " ADA@example.com"]):
        async with client_from(app, f"198.51.100.{index}") as client:
            sent = await request_link(client, spelling)
            assert "/auth/verify-request" in sent.headers["location"]

    async with client_from(app) as client:
        refused = await request_link(client, "ada@example.com")
        assert error_of(refused) == "RateLimited"
        assert outbox.sent == ["ada@example.com"] * 3
        assert (
            "/auth/verify-request"
            in (await request_link(client, "bob@example.com")).headers["location"]
        )
        clock.advance(MINUTE)
        assert (
            "/auth/verify-request"
            in (await request_link(client, "ada@example.com")).headers["location"]
        )
    assert len(outbox.sent) == 5


async def test_links_asked_for_from_one_address_are_limited(clock: Clock) -> None:
    outbox = Outbox()
    app = email_app(clock, outbox, rate_limits=RateLimits(email_per_ip=RateLimit(2, MINUTE)))
    async with client_from(app) as client:
        for index in range(2):
            await request_link(client, f"user{index}@example.com")
        assert error_of(await request_link(client, "user2@example.com")) == "RateLimited"
    async with client_from(app, "198.51.100.1") as elsewhere:
        await request_link(elsewhere, "user2@example.com")
    assert outbox.sent == ["user0@example.com", "user1@example.com", "user2@example.com"]


def acme() -> OAuth:
    return OAuth(
        id="acme",
        name="Acme",
        client_id="app",
        client_secret="secret",
        authorization_url="https://idp.example/authorize",
        token_url="https://idp.example/token",
    )


async def test_oauth_starts_from_one_address_are_limited(clock: Clock) -> None:
    app = build_app(clock=clock, providers=[acme()])
    async with client_from(app) as client:
        token = await csrf_token(client)
        for _ in range(30):
            started = await client.post("/auth/signin/acme", data={"csrfToken": token})
            assert started.headers["location"].startswith("https://idp.example/authorize?")

        refused = await client.post("/auth/signin/acme", data={"csrfToken": token})

        assert error_of(refused) == "RateLimited"
        assert "retry-after" in refused.headers
        # Nothing of a sign-in was started: no state or PKCE cookie.
        assert not set_cookies(refused)
        clock.advance(MINUTE)
        again = await client.post("/auth/signin/acme", data={"csrfToken": token})
        assert again.headers["location"].startswith("https://idp.example/")


# -- session updates and revocations ------------------------------------------------------------


async def test_session_updates_are_limited_per_session(clock: Clock) -> None:
    app = build_app(
        clock=clock, rate_limits=RateLimits(session_update_per_session=RateLimit(3, MINUTE))
    )
    async with client_from(app) as client, client_from(app) as other:
        await sign_in(client)
        token = await csrf_token(client)
        for _ in range(3):
            updated = await client.post("/auth/session", json={"csrfToken": token, "data": {}})
            assert updated.status_code == 200
            assert updated.json()["user"]["name"] == "Ann"

        refused = await client.post("/auth/session", json={"csrfToken": token, "data": {}})

        assert refused.status_code == 429
        assert refused.json() == {"error": "RateLimited"}
        assert 1 <= int(refused.headers["retry-after"]) <= MINUTE
        # The session is still there, only not updated.
        assert (await client.get("/auth/session")).json()["user"]["name"] == "Ann"

        clock.advance(MINUTE)
        assert (
            await client.post("/auth/session", json={"csrfToken": token, "data": {}})
        ).status_code == 200
        # A signed-out request has no session to count.
        other_token = await csrf_token(other)
        for _ in range(5):
            answer = await other.post("/auth/session", json={"csrfToken": other_token})
            assert answer.json() is None


async def test_revocations_are_limited_per_session(clock: Clock) -> None:
    app = build_app(
        clock=clock,
        adapter=MemoryAdapter(),
        rate_limits=RateLimits(session_revoke_per_session=RateLimit(2, MINUTE)),
    )
    async with client_from(app) as laptop, client_from(app) as phone:
        await sign_in(laptop)
        await sign_in(phone)
        token = await csrf_token(laptop)
        for _ in range(2):
            missing = await laptop.post(
                "/auth/sessions/revoke", data={"csrfToken": token, "id": "no-such-session"}
            )
            assert missing.status_code == 404

        refused = await laptop.post("/auth/sessions/revoke-others", data={"csrfToken": token})

        assert refused.status_code == 429
        assert refused.json() == {"error": "RateLimited"}
        assert "retry-after" in refused.headers
        assert (await phone.get("/")).json() is not None, "nothing was revoked"
        # Another session of the same user has its own counter.
        phone_token = await csrf_token(phone)
        ended = await phone.post("/auth/sessions/revoke-others", data={"csrfToken": phone_token})
        assert ended.json() == {"ok": True}


# -- turning limits off ------------------------------------------------------------------------


async def test_rate_limits_none_removes_every_limit(clock: Clock) -> None:
    providers = (Credentials(authorize=authorize), acme())
    answers: dict[str, list[str | None]] = {}
    for name, limits in (("default", RateLimits()), ("none", None)):
        outbox = Outbox()
        app = email_app(clock, outbox, *providers, rate_limits=limits)
        async with client_from(app) as client:
            answers[name] = [error_of(await sign_in(client, password="wrong")) for _ in range(30)]
            token = await csrf_token(client)
            for _ in range(40):
                started = await client.post("/auth/signin/acme", data={"csrfToken": token})
                answers[name].append(error_of(started))
            for _ in range(10):
                answers[name].append(error_of(await request_link(client, "ada@example.com")))
        answers[name].append(str(len(outbox.sent)))

    assert "RateLimited" in answers["default"]
    assert answers["none"] == ["CredentialsSignin"] * 30 + [None] * 50 + ["10"]


async def test_one_limit_removed_leaves_the_others(clock: Clock) -> None:
    app = build_app(clock=clock, rate_limits=RateLimits(failed_sign_in_per_ip=None))
    async with client_from(app) as client:
        for index in range(20):
            failed = await sign_in(client, f"user{index}@example.com", "wrong")
            assert error_of(failed) == "CredentialsSignin"
        for _ in range(5):
            await sign_in(client, password="wrong")
        assert error_of(await sign_in(client)) == "RateLimited"


# -- a store that is down --------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_store_that_cannot_be_reached_answers_503_and_checks_nothing(
    clock: Clock,
) -> None:
    checked: list[str] = []

    async def counting_authorize(
        credentials: Mapping[str, str], request: Request
    ) -> dict[str, Any] | None:
        checked.append(credentials["email"])
        return None

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{_closed_port()}", serverSelectionTimeoutMS=300
    )
    try:
        down = MongoDBAdapter(client["app"], operation_timeout=0.5)
        app = build_app(
            clock=clock,
            providers=[Credentials(authorize=counting_authorize)],
            rate_limit_store=down.rate_limit_store(),
        )
        async with client_from(app) as http:
            answer = await sign_in(http, password="wrong")
    finally:
        await client.close()

    assert answer.status_code == 503
    assert "retry-after" in answer.headers
    assert checked == []


async def test_a_broken_store_answers_503_not_500(clock: Clock) -> None:
    app = build_app(clock=clock, rate_limit_store=BrokenStore())
    async with client_from(app) as client:
        assert (await sign_in(client)).status_code == 503


# -- MongoDB ----------------------------------------------------------------------------------


async def test_two_app_instances_on_one_database_share_counters(
    adapter: MongoDBAdapter, clock: Clock, mongo_db: Any
) -> None:
    # Each instance has its own adapter and client, as two processes would.
    first = build_app(clock=clock, adapter=adapter)
    second = build_app(clock=clock, adapter=MongoDBAdapter(mongo_db))
    assert config_of(first).rate_limit_store is not config_of(second).rate_limit_store
    for index in range(5):
        async with client_from((first, second)[index % 2], f"198.51.100.{index}") as client:
            assert error_of(await sign_in(client, password="wrong")) == "CredentialsSignin"

    for app in (first, second):
        async with client_from(app, "203.0.113.9") as client:
            assert error_of(await sign_in(client)) == "RateLimited"


async def test_counters_are_ttl_documents_that_hold_no_subject_in_clear(
    adapter: MongoDBAdapter, clock: Clock, mongo_db: Any
) -> None:
    clock.now = ALIGNED + 30
    app = build_app(clock=clock, adapter=adapter)
    async with client_from(app) as client:
        await sign_in(client, password="wrong")

    documents = await mongo_db["rate_limits"].find().to_list(None)
    assert len(documents) == 2
    assert {document["count"] for document in documents} == {1}
    assert {document["expires"] for document in documents} == {
        datetime.fromtimestamp(ALIGNED + MINUTE, UTC).replace(tzinfo=None),
        datetime.fromtimestamp(ALIGNED + 5 * MINUTE, UTC).replace(tzinfo=None),
    }
    assert all(set(document) == {"_id", "count", "expires"} for document in documents)
    assert not any("ann" in document["_id"] or "203.0" in document["_id"] for document in documents)
    indexes = await mongo_db["rate_limits"].index_information()
    assert indexes["expires_1"]["expireAfterSeconds"] == 0


async def test_ensure_indexes_creates_the_counters_ttl_index(
    adapter: MongoDBAdapter, mongo_db: Any
) -> None:
    await adapter.ensure_indexes()
    await adapter.ensure_indexes()

    indexes = await mongo_db["rate_limits"].index_information()
    assert indexes["expires_1"]["key"] == [("expires", 1)]
    assert indexes["expires_1"]["expireAfterSeconds"] == 0


async def test_concurrent_first_hits_of_a_window_each_get_their_own_count(
    adapter: MongoDBAdapter,
) -> None:
    store = adapter.rate_limit_store()
    window = window_of("oauth_per_ip", RateLimit(100, MINUTE), "ip:198.51.100.1", ALIGNED)

    counts = await asyncio.gather(*(store.hit([window], ALIGNED) for _ in range(20)))

    assert sorted(count for [count] in counts) == list(range(1, 21))
    other = window_of("oauth_per_ip", RateLimit(100, MINUTE), "ip:198.51.100.2", ALIGNED)
    assert await store.peek([other, window], ALIGNED) == [0, 20]


class CommandLog(monitoring.CommandListener):
    """Commands a client sends: name and collection."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in ("endSessions", "ping", "hello", "isMaster", "ismaster"):
            self.commands.append((event.command_name, event.command.get(event.command_name)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture(params=["pymongo", "motor"])
async def watched(
    request: pytest.FixtureRequest, mongodb_url: str, mongo_db_name: str
) -> AsyncIterator[tuple[MongoDBAdapter, CommandLog]]:
    """An adapter on its own client whose commands are recorded."""
    log = CommandLog()
    client: Any
    if request.param == "pymongo":
        client = AsyncMongoClient(mongodb_url, event_listeners=[log])
    else:
        client = AsyncIOMotorClient(mongodb_url, event_listeners=[log])
    adapter = MongoDBAdapter(client[mongo_db_name])
    await adapter.ensure_indexes()
    try:
        yield adapter, log
    finally:
        closed = client.close()
        if isinstance(closed, Awaitable):
            await closed


async def _commands_of(log: CommandLog, request: Awaitable[httpx2.Response]) -> list[Any]:
    log.commands.clear()
    await request
    return list(log.commands)


async def test_a_limited_request_costs_no_round_trip_more_than_an_allowed_one(
    watched: tuple[MongoDBAdapter, CommandLog], clock: Clock
) -> None:
    adapter, log = watched
    outbox = Outbox()
    app = build_app(
        clock=clock,
        adapter=adapter,
        url="http://testserver",
        providers=[Credentials(authorize=authorize), Email(send=outbox.send)],
        rate_limits=RateLimits(session_update_per_session=RateLimit(1, MINUTE)),
    )
    async with client_from(app) as client:
        token = await csrf_token(client)
        failure = {"csrfToken": token, "email": "eve@example.com", "password": "wrong"}
        wrong = [
            await _commands_of(log, client.post("/auth/callback/credentials", data=failure))
            for _ in range(6)
        ]
        link = {"csrfToken": token, "email": "ada@example.com"}
        links = [
            await _commands_of(log, client.post("/auth/signin/email", data=link)) for _ in range(4)
        ]
    async with client_from(app, "198.51.100.1") as member:
        member_token = await csrf_token(member)
        await sign_in(member)
        update = {"csrfToken": member_token, "data": {}}
        updates = [
            await _commands_of(log, member.post("/auth/session", json=update)) for _ in range(2)
        ]

    counted = [("findAndModify", "rate_limits")] * 2  # address and identifier, at once
    assert wrong[0] == counted, "an allowed failure: counted before the check, kept"
    assert wrong[5] == counted, "a limited one: counted, and nothing else"
    assert len(links[3]) <= len(links[0])
    assert links[3] == counted and ("insert", "verification_tokens") in links[0]
    assert len(updates[1]) <= len(updates[0])
    assert updates[1][-1] == ("findAndModify", "rate_limits")
    assert len(outbox.sent) == 3


async def test_a_success_is_counted_then_taken_back(
    watched: tuple[MongoDBAdapter, CommandLog], clock: Clock, mongo_db: Any
) -> None:
    adapter, log = watched
    app = build_app(clock=clock, adapter=adapter, strategy="jwt")
    async with client_from(app) as client:
        await sign_in(client, password="wrong")
        token = await csrf_token(client)
        right = {"csrfToken": token, "email": "ann@example.com", "password": "pw-ann"}
        log.commands.clear()
        answer = await client.post("/auth/callback/credentials", data=right)
        commands = list(log.commands)

    assert signed_in(answer)
    counters = [command for command in commands if command[1] == "rate_limits"]
    assert counters == [("findAndModify", "rate_limits")] * 2 + [("update", "rate_limits")]
    counts = {document["count"] for document in await mongo_db["rate_limits"].find().to_list(None)}
    assert counts == {1}, "only the failure counted"


async def test_a_one_use_claim_survives_a_flood_of_fresh_keys() -> None:
    """Counters of one go first when the memory store is full (a flood's leftovers), but
    a claim of one use is not one: forgetting it would let a TOTP step or a passkey
    challenge be used again."""
    store = MemoryRateLimitStore(max_entries=10)
    now = 1_000.0
    assert await count_once(store, "totp-step:ada:33", now + 120, now) == 1
    flood = [Window(f"flood:{n}", now + 60) for n in range(50)]
    for window in flood:
        await store.hit([window], now)
    assert await count_once(store, "totp-step:ada:33", now + 120, now) == 2


async def test_one_use_claims_end_on_shared_minutes() -> None:
    """Claims each lasting to their own second would give the memory store one end per
    claim to look through; rounded up to the minute, they share a few."""
    store = MemoryRateLimitStore()
    for offset in range(100):
        await count_once(store, f"claim:{offset}", 1_000.0 + offset * 0.37, 1_000.0)
    assert len(store._ending) <= 2
