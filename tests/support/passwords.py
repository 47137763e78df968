"""An app with email and password accounts, the mail it sends, and clients that use it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from bson import ObjectId
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends import Adapter, MemoryAdapter, SessionStrategy
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.passwords import PasswordHasher, Verified
from asgi_session.providers import Password
from tests.support.apps import SECRET, SESSION_COOKIE, csrf_token, set_cookies, show_session

APP_URL = "http://testserver"
#: argon2id at its smallest: the flows, not the hashing, are under test here.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
GOOD_PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    url: str


@dataclass
class Outbox:
    """Every email the provider handed to ``send``, in order."""

    sent: list[Mail] = field(default_factory=list)
    refuse: bool = False

    async def send(self, to: str, subject: str, text: str, url: str, request: Request) -> None:
        if self.refuse:
            raise ConnectionError("the mail server refused the message")
        self.sent.append(Mail(to, subject, text, url))

    def last(self, to: str | None = None) -> Mail:
        mails = [mail for mail in self.sent if to is None or mail.to == to]
        assert mails, f"no mail sent to {to}"
        return mails[-1]

    def to(self, address: str) -> list[Mail]:
        return [mail for mail in self.sent if mail.to == address]


def link_params(url: str) -> dict[str, str]:
    """The query of a mailed link."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def local_path(url: str) -> str:
    """A mailed link as a path for the in-process client."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def password_app(
    outbox: Outbox,
    *,
    adapter: Adapter | None = None,
    strategy: Literal["jwt", "database"] | SessionStrategy = "jwt",
    providers: Sequence[Any] = (),
    **options: Any,
) -> Starlette:
    """The app under test: a :class:`Password` provider (``options`` go to it, but the
    AuthConfig ones named ``config_*``) mailing into ``outbox``."""
    config_options = {
        key.removeprefix("config_"): value
        for key, value in options.items()
        if key.startswith("config_")
    }
    provider_options = {
        key: value for key, value in options.items() if not key.startswith("config_")
    }
    provider_options.setdefault("hasher", FAST_HASHER)
    config_options.setdefault("url", APP_URL)
    config = AuthConfig(
        secret=SECRET,
        adapter=adapter if adapter is not None else MemoryAdapter(),
        strategy=strategy,
        providers=[Password(send=outbox.send, **provider_options), *providers],
        **config_options,
    )
    return Starlette(
        routes=[Route("/", show_session)],
        middleware=[Middleware(AuthMiddleware, config=config)],
    )


async def sign_up(
    client: httpx2.AsyncClient,
    email: str = "ada@example.com",
    password: str = GOOD_PASSWORD,
    **extra: str,
) -> httpx2.Response:
    token = await csrf_token(client)
    return await client.post(
        "/auth/signup",
        data={"csrfToken": token, "email": email, "password": password, **extra},
    )


async def sign_in(
    client: httpx2.AsyncClient, email: str = "ada@example.com", password: str = GOOD_PASSWORD
) -> httpx2.Response:
    token = await csrf_token(client)
    return await client.post(
        "/auth/callback/password",
        data={"csrfToken": token, "email": email, "password": password},
    )


async def confirm(client: httpx2.AsyncClient, link: str) -> httpx2.Response:
    """Follow a verification link as a browser does: open its page, press its button."""
    page = await client.get(local_path(link))
    assert page.status_code == 200, page.text
    params = link_params(link)
    return await client.post(
        "/auth/verify-email",
        data={
            "csrfToken": await csrf_token(client),
            "token": params.get("token", ""),
            "email": params.get("email", ""),
        },
    )


async def ask_reset(client: httpx2.AsyncClient, email: str = "ada@example.com") -> httpx2.Response:
    token = await csrf_token(client)
    return await client.post("/auth/password/forgot", data={"csrfToken": token, "email": email})


async def reset(
    client: httpx2.AsyncClient, mail: Mail, password: str = "a brand new passphrase"
) -> httpx2.Response:
    params = link_params(mail.url)
    token = await csrf_token(client)
    return await client.post(
        "/auth/password/reset",
        data={
            "csrfToken": token,
            "token": params["token"],
            "email": params["email"],
            "password": password,
        },
    )


async def change(client: httpx2.AsyncClient, current: str, new: str) -> httpx2.Response:
    token = await csrf_token(client)
    return await client.post(
        "/auth/password/change",
        data={"csrfToken": token, "currentPassword": current, "newPassword": new},
    )


async def whoami(client: httpx2.AsyncClient) -> str | None:
    """The signed-in user's email, as the app's handler sees it."""
    body = (await client.get("/")).json()
    return None if body is None else str(body["user"]["email"])


def signed_in(response: httpx2.Response) -> bool:
    """Whether ``response`` set a session cookie (signed a browser in)."""
    cookie = set_cookies(response).get(SESSION_COOKIE, "")
    return bool(cookie) and not cookie.startswith(f"{SESSION_COOKIE}=;")


def client_from(app: Any, ip: str = "203.0.113.7") -> httpx2.AsyncClient:
    """A client (one browser) connecting to ``app`` from ``ip``, following no redirects."""
    transport = httpx2.ASGITransport(app=app, client=(ip, 50_000))
    return httpx2.AsyncClient(transport=transport, base_url=APP_URL)


class CountingHasher(PasswordHasher):
    """:data:`FAST_HASHER`'s parameters, counting every verification it does: of a
    stored hash, and of the dummy spent on an address no account has."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verifications = 0

    def verify(self, password: str, stored: str | None) -> Verified:
        self.verifications += 1
        return super().verify(password, stored)

    async def verify_nothing(self, password: str) -> None:
        self.verifications += 1
        await super().verify_nothing(password)


class Store:
    """What an adapter holds, read past its API: how many records of each kind, the raw
    MongoDB documents, the stored verification tokens."""

    def __init__(self, adapter: MemoryAdapter | MongoDBAdapter, db: Any = None) -> None:
        self.adapter = adapter
        self.db = db

    async def count(self, what: Literal["users", "accounts", "sessions"]) -> int:
        if self.db is not None:
            found: int = await self.db[what].count_documents({})
            return found
        adapter = self.adapter
        assert isinstance(adapter, MemoryAdapter)
        tables: dict[str, dict[Any, Any]] = {
            "users": adapter._users,
            "accounts": adapter._accounts,
            "sessions": adapter._sessions,
        }
        return len(tables[what])

    async def verification_tokens(self) -> list[tuple[str, str]]:
        """``(identifier, token)`` of every stored verification token."""
        if self.db is not None:
            documents = await self.db["verification_tokens"].find().to_list(None)
            return sorted((doc["identifier"], doc["token"]) for doc in documents)
        adapter = self.adapter
        assert isinstance(adapter, MemoryAdapter)
        return sorted(adapter._tokens)

    async def password_hash(self, email: str = "ada@example.com") -> str | None:
        """The hash on the account of ``email``'s user."""
        user = await self.adapter.get_user_by_email(email)
        assert user is not None, f"no user {email}"
        account = await self.adapter.get_account(provider="password", provider_account_id=user.id)
        if account is None:
            return None
        stored = account.extra.get("password")
        return stored if isinstance(stored, str) else None

    async def set_password_hash(self, hashed: str, email: str = "ada@example.com") -> None:
        user = await self.adapter.get_user_by_email(email)
        assert user is not None, f"no user {email}"
        await self.adapter.update_account(
            provider="password", provider_account_id=user.id, data={"password": hashed}
        )

    async def raw(self, collection: str, user_id: str) -> dict[str, Any] | None:
        """A user's raw MongoDB document (``users``) or its account's (``accounts``)."""
        assert self.db is not None
        key = "_id" if collection == "users" else "userId"
        document: dict[str, Any] | None = await self.db[collection].find_one(
            {key: ObjectId(user_id)}
        )
        return document


def make_store(request: pytest.FixtureRequest) -> Store:
    """The store of a test parametrized over ``memory`` and ``pymongo`` (real mongod)."""
    if request.param == "memory":
        return Store(MemoryAdapter())
    db = request.getfixturevalue("mongo_db")
    return Store(MongoDBAdapter(db), db)
