"""Email magic links, against a real mongod."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from asgi_session import AuthConfig, Callbacks, ConfigurationError, Events, Pages
from asgi_session.backends import MemoryAdapter
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.providers import Email
from asgi_session.providers._email import normalize_email
from tests.support.apps import SECRET, Clock, build_app, client_for, csrf_token, set_cookies

SESSION_COOKIE = "authjs.session-token"
DAY = 24 * 60 * 60


class Outbox:
    """Links the app "sent", as a real mailer would have delivered them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, identifier: str, url: str, request: Any) -> None:
        self.sent.append((identifier, url))

    def last_path(self) -> str:
        parts = urlsplit(self.sent[-1][1])
        return f"{parts.path}?{parts.query}"


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


APP_URL = "http://testserver"


def _app(adapter: MongoDBAdapter, clock: Clock, outbox: Outbox, **options: Any) -> Any:
    options.setdefault("url", APP_URL)
    return build_app(clock=clock, adapter=adapter, providers=[Email(send=outbox.send)], **options)


async def _request_link(client: Any, email: str, **extra: str) -> Any:
    token = await csrf_token(client)
    return await client.post(
        "/auth/signin/email", data={"csrfToken": token, "email": email, **extra}
    )


async def test_magic_link_signs_in_and_creates_a_verified_user(
    adapter: MongoDBAdapter, clock: Clock, outbox: Outbox, mongo_db: Any
) -> None:
    created: list[Any] = []
    app = _app(adapter, clock, outbox, events=Events(create_user=lambda user: created.append(user)))
    async with client_for(app) as client:
        response = await _request_link(client, "  Ann@Example.COM ", callbackUrl="/protected")
        assert response.status_code == 302
        assert response.headers["location"].startswith("http://testserver/auth/verify-request")
        [(identifier, url)] = outbox.sent
        assert identifier == "ann@example.com"
        query = parse_qs(urlsplit(url).query)
        raw = query["token"][0]
        assert len(raw) == 64
        [stored] = await mongo_db.verification_tokens.find().to_list(None)
        assert stored["identifier"] == "ann@example.com"
        assert stored["token"] == hashlib.sha256((raw + SECRET).encode()).hexdigest()
        assert raw not in str(stored)

        signed_in = await client.get(outbox.last_path())
        assert signed_in.headers["location"] == "http://testserver/protected"
        assert SESSION_COOKIE in set_cookies(signed_in)
        body = (await client.get("/")).json()
        assert body["user"]["email"] == "ann@example.com"
        [user] = await mongo_db.users.find().to_list(None)
        assert user["emailVerified"] is not None
        assert len(created) == 1
        assert await mongo_db.verification_tokens.count_documents({}) == 0


async def test_link_works_only_once(adapter: MongoDBAdapter, clock: Clock, outbox: Outbox) -> None:
    async with client_for(_app(adapter, clock, outbox)) as client:
        await _request_link(client, "ann@example.com")
        first = await client.get(outbox.last_path())
        assert SESSION_COOKIE in set_cookies(first)
    async with client_for(_app(adapter, clock, outbox)) as other:
        again = await other.get(outbox.last_path())
        assert again.headers["location"].endswith("/auth/error?error=Verification")
        assert SESSION_COOKIE not in set_cookies(again)
        page = await other.get(again.headers["location"])
        assert page.status_code == 403


async def test_expired_link_is_refused(
    adapter: MongoDBAdapter, clock: Clock, outbox: Outbox, mongo_db: Any
) -> None:
    async with client_for(_app(adapter, clock, outbox)) as client:
        await _request_link(client, "ann@example.com")
        clock.advance(DAY + 1)
        response = await client.get(outbox.last_path())
        assert response.headers["location"].endswith("error=Verification")
        assert await mongo_db.users.count_documents({}) == 0


async def test_link_for_another_email_is_refused(
    adapter: MongoDBAdapter, clock: Clock, outbox: Outbox, mongo_db: Any
) -> None:
    async with client_for(_app(adapter, clock, outbox)) as client:
        await _request_link(client, "ann@example.com")
        path = outbox.last_path().replace("ann%40example.com", "eve%40example.com")
        response = await client.get(path)
        assert response.headers["location"].endswith("error=Verification")
        assert await mongo_db.users.count_documents({}) == 0
        assert await mongo_db.verification_tokens.count_documents({}) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/auth/callback/email",
        "/auth/callback/email?email=ann%40example.com",
        "/auth/callback/email?token=abc",
        "/auth/callback/email?token=" + "a" * 5000 + "&email=ann%40example.com",
        "/auth/callback/email?token=abc&email=not-an-email",
    ],
)
async def test_broken_links_are_verification_errors(
    adapter: MongoDBAdapter, clock: Clock, outbox: Outbox, path: str
) -> None:
    async with client_for(_app(adapter, clock, outbox)) as client:
        response = await client.get(path)
        assert response.status_code == 302
        assert response.headers["location"].endswith("error=Verification")


@pytest.mark.parametrize(
    "email",
    [
        "",
        "no-at-sign",
        "two@@example.com",
        "a@b@c",
        "@example.com",
        "ann@",
        "a b@example.com",
        "ann@exa\nmple.com",
        "x" * 300,
    ],
)
async def test_invalid_addresses_are_refused(
    adapter: MongoDBAdapter, clock: Clock, outbox: Outbox, email: str
) -> None:
    async with client_for(_app(adapter, clock, outbox)) as client:
        response = await _request_link(client, email)
        assert response.headers["location"].endswith("/auth/signin?error=EmailSignin")
        assert outbox.sent == []


def test_normalization() -> None:
    assert normalize_email(" Ann@Example.COM ") == "ann@example.com"
    fullwidth = "\uff41\uff4e\uff4e@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com"
    assert normalize_email(fullwidth) == "ann@example.com"
    assert normalize_email("ann@example.com,eve@example.com") is None
    assert normalize_email(None) is None
    # Quoted local parts and characters that normalise to "@" hide a second address.
    for hidden in (
        '"ann@evil.example"@example.com',
        '"ann"@example.com',
        "ann\uff20evil.example@example.com",  # FULLWIDTH COMMERCIAL AT
        "ann\ufe6bevil.example@example.com",  # SMALL COMMERCIAL AT
        "@relay.example,@other.example:ann@example.com",  # an RFC 822 source route
        "Ann <ann@example.com>",
    ):
        assert normalize_email(hidden) is None, hidden
    for plain in ("ann+tag@example.com", "o'brien@example.com", "a.b-c_d@sub.example.com"):
        assert normalize_email(plain) == plain


# Forms a relay may route to another mailbox than the one the link is stored for.
_ROUTED_ADDRESSES = [
    "ada%evil.example@example.com",  # the percent hack: delivered to ada@evil.example
    "ada%evil.example%relay.example@example.com",
    "evil.example!ada@example.com",  # a UUCP bang path
    "ada@example.com!evil",
    "ada@evil.example%example.com",
    "\uff05ada@example.com",  # FULLWIDTH PERCENT SIGN, a "%" once normalised
    "evil.example\uff01ada@example.com",  # FULLWIDTH EXCLAMATION MARK
    "group:ada@example.com",  # an RFC 5322 group, to a mailer building a header
    "ada:evil.example@example.com",
]


@pytest.mark.parametrize("email", _ROUTED_ADDRESSES)
def test_routed_addresses_are_refused(email: str) -> None:
    assert normalize_email(email) is None


@pytest.mark.parametrize("email", ["ada%evil.example@example.com", "evil.example!ada@example.com"])
async def test_no_link_is_sent_to_a_routed_address(
    clock: Clock, outbox: Outbox, email: str
) -> None:
    memory = MemoryAdapter(clock=clock)
    app = build_app(clock=clock, adapter=memory, providers=[Email(send=outbox.send)], url=APP_URL)
    async with client_for(app) as client:
        refused = await _request_link(client, email)
        sent = await _request_link(client, "ada@example.com")
    assert refused.headers["location"].endswith("/auth/signin?error=EmailSignin")
    assert sent.headers["location"].startswith("http://testserver/auth/verify-request")
    assert [identifier for identifier, _ in outbox.sent] == ["ada@example.com"]
    clock.advance(DAY + 1)
    assert await memory.purge_expired() == 1, "a token was stored for the plain address only"


async def test_sign_in_needs_csrf(adapter: MongoDBAdapter, clock: Clock, outbox: Outbox) -> None:
    async with client_for(_app(adapter, clock, outbox)) as client:
        response = await client.post("/auth/signin/email", data={"email": "ann@example.com"})
        assert response.headers["location"].endswith("error=MissingCSRF")
        assert outbox.sent == []


async def test_existing_unverified_user_is_marked_verified(
    adapter: MongoDBAdapter, clock: Clock, outbox: Outbox
) -> None:
    user = await adapter.create_user({"name": "Ann", "email": "ann@example.com"})
    assert user.email_verified is None
    async with client_for(_app(adapter, clock, outbox)) as client:
        await _request_link(client, "ann@example.com")
        await client.get(outbox.last_path())
        assert (await client.get("/")).json()["id"] == user.id
    stored = await adapter.get_user(user.id)
    assert stored is not None
    assert stored.email_verified is not None


async def test_two_links_clicked_at_once_make_one_user(
    adapter: MongoDBAdapter, clock: Clock, outbox: Outbox, mongo_db: Any
) -> None:
    app = _app(adapter, clock, outbox)
    async with client_for(app) as first, client_for(app) as second:
        await _request_link(first, "ann@example.com")
        await _request_link(second, "ann@example.com")
        paths = [urlsplit(url) for _, url in outbox.sent]
        responses = await asyncio.gather(
            first.get(f"{paths[0].path}?{paths[0].query}"),
            second.get(f"{paths[1].path}?{paths[1].query}"),
        )
        assert all(SESSION_COOKIE in set_cookies(r) for r in responses)
        assert await mongo_db.users.count_documents({}) == 1


async def test_send_failure_is_email_signin_error(adapter: MongoDBAdapter, clock: Clock) -> None:
    async def broken(identifier: str, url: str, request: Any) -> None:
        raise ConnectionError("mail server down")

    app = build_app(clock=clock, adapter=adapter, providers=[Email(send=broken)], url=APP_URL)
    async with client_for(app) as client:
        response = await _request_link(client, "ann@example.com")
        assert response.headers["location"].endswith("error=EmailSignin")


async def test_sign_in_callback_can_refuse_an_address(
    adapter: MongoDBAdapter, clock: Clock, outbox: Outbox
) -> None:
    def only_company(user: dict[str, Any]) -> bool:
        return str(user["email"]).endswith("@company.example")

    app = _app(adapter, clock, outbox, callbacks=Callbacks(sign_in=only_company))
    async with client_for(app) as client:
        response = await _request_link(client, "ann@example.com")
        assert response.headers["location"].endswith("error=AccessDenied")
        assert outbox.sent == []


async def test_sign_in_callback_is_asked_before_sending_and_after_clicking(
    adapter: MongoDBAdapter, clock: Clock, outbox: Outbox
) -> None:
    seen: list[dict[str, Any]] = []

    def sign_in(**arguments: Any) -> bool:
        seen.append(arguments)
        return True

    app = _app(adapter, clock, outbox, callbacks=Callbacks(sign_in=sign_in))
    async with client_for(app) as client:
        await _request_link(client, "new@example.com")
        await client.get(outbox.last_path())
    before, after = seen
    account = {"provider": "email", "type": "email", "providerAccountId": "new@example.com"}
    # As Auth.js asks it: once for the request of a link, once when it is followed.
    assert before["email"] == {"verificationRequest": True}
    assert after["email"] == {"verificationRequest": False}
    for call in (before, after):
        assert call["user"] == {"id": "new@example.com", "email": "new@example.com"}
        assert call["account"] == account
    # A known address shows its stored user.
    async with client_for(app) as client:
        await _request_link(client, "new@example.com")
    assert seen[-1]["user"]["email_verified"] is not None
    assert seen[-1]["user"]["id"] != "new@example.com"


async def test_new_user_page(adapter: MongoDBAdapter, clock: Clock, outbox: Outbox) -> None:
    app = _app(adapter, clock, outbox, pages=Pages(new_user="/welcome"))
    async with client_for(app) as client:
        await _request_link(client, "new@example.com", callbackUrl="/dashboard")
        response = await client.get(outbox.last_path())
        # The same shape as every provider's: the page, then where the user was going.
        assert response.headers["location"] == (
            "http://testserver/welcome?callbackUrl=http%3A%2F%2Ftestserver%2Fdashboard"
        )
    async with client_for(app) as client:
        await _request_link(client, "new@example.com", callbackUrl="/dashboard")
        again = await client.get(outbox.last_path())
        assert again.headers["location"] == "http://testserver/dashboard"


async def test_link_from_before_a_secret_rotation_still_works(
    adapter: MongoDBAdapter, clock: Clock, outbox: Outbox
) -> None:
    async with client_for(_app(adapter, clock, outbox, secret="old-secret")) as client:
        await _request_link(client, "ann@example.com")
    rotated = _app(adapter, clock, outbox, secret=["new-secret", "old-secret"])
    async with client_for(rotated) as client:
        response = await client.get(outbox.last_path())
        assert SESSION_COOKIE in set_cookies(response)


async def test_sign_in_page_shows_an_email_form(
    adapter: MongoDBAdapter, clock: Clock, outbox: Outbox
) -> None:
    async with client_for(_app(adapter, clock, outbox)) as client:
        page = (await client.get("/auth/signin")).text
        assert 'action="http://testserver/auth/signin/email"' in page
        assert 'name="email" type="email" required' in page


def test_email_needs_a_store() -> None:
    with pytest.raises(ConfigurationError, match="MongoDBAdapter"):
        AuthConfig(secret=SECRET, providers=[Email(send=Outbox().send)])


def test_email_needs_a_send_function() -> None:
    with pytest.raises(ConfigurationError, match="send"):
        Email(send=None)  # type: ignore[arg-type]


async def test_links_use_the_configured_url_not_the_host_header(
    adapter: MongoDBAdapter, clock: Clock, outbox: Outbox
) -> None:
    async with client_for(_app(adapter, clock, outbox, url="http://app.example")) as client:
        token = await csrf_token(client)
        await client.post(
            "/auth/signin/email",
            data={"csrfToken": token, "email": "victim@example.com"},
            headers={"host": "evil.example"},
        )
    [(_, url)] = outbox.sent
    assert url.startswith("http://app.example/auth/callback/email?")


def test_email_needs_a_trusted_url() -> None:
    with pytest.raises(ConfigurationError, match="AUTH_URL"):
        AuthConfig(secret=SECRET, adapter=MemoryAdapter(), providers=[Email(send=Outbox().send)])
    AuthConfig(
        secret=SECRET, adapter=MemoryAdapter(), providers=[Email(send=Outbox().send)], url=APP_URL
    )
