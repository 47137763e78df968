"""The migration pages' samples: an Auth.js config ported to Python, and users brought
over from fastapi-users with their password hashes.

The Auth.js config the page starts from runs under Node with the real packages (see
``tests/test_docs_nextjs.py``); the Python port answers the same requests the same way,
and each side reads the other's cookie.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy import CHAR, Boolean, String
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from asgi_session.backends.sql import SQLAdapter
from tests.support.docs import load_sample
from tests.test_docs_nextjs import NextApp, build_next_app

SECRET = "docs-migrating-secret-0123456789abcdef0123456789"
ORIGIN = "https://example.com"
COOKIE = "__Secure-authjs.session-token"
ENV = {"AUTH_SECRET": SECRET, "AUTH_GITHUB_ID": "github-id", "AUTH_GITHUB_SECRET": "github-secret"}
ADA = {"email": "ada@example.com", "password": "demo-password"}


@pytest.fixture
def ported(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("APP_HOST", "example.com")
    return load_sample("from_authjs_config.py")


def _client(app: Any) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=ORIGIN)


def _pair(set_cookie: list[str], name: str = COOKIE) -> str | None:
    for header in set_cookie:
        if header.startswith(name + "=") and not header.startswith(name + "=;"):
            return header.split(";")[0]
    return None


async def _python_sign_in(client: httpx2.AsyncClient, email: str, password: str) -> Any:
    csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    response = await client.post(
        "/api/auth/callback/credentials",
        data={"csrfToken": csrf, "email": email, "password": password},
    )
    return {
        "status": response.status_code,
        "location": response.headers.get("location"),
        "setCookie": response.headers.get_list("set-cookie"),
    }


@pytest.fixture(scope="module")
def next_app(tmp_path_factory: pytest.TempPathFactory) -> NextApp:
    """The Auth.js app being moved: its ``auth.config.ts``, run by Node."""
    app = build_next_app(tmp_path_factory.mktemp("authjs-app"))
    app.add("nextjs_full_config.ts", "auth.config.ts")
    return app


@pytest.fixture(scope="module")
def authjs_config(next_app: NextApp) -> Path:
    return next_app.compile("auth.config.ts")


async def test_the_port_answers_sign_ins_as_the_authjs_app_does(
    ported: ModuleType,
    next_app: NextApp,
    authjs_config: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts = [
        ADA,
        {"email": "ada@example.com", "password": "wrong"},
        {"email": "eve@blocked.example", "password": "demo-password"},
    ]
    theirs = await asyncio.to_thread(
        next_app.run,
        authjs_config,
        [{"op": "signIn", **attempt} for attempt in attempts],
        ENV,
        logged=("CredentialsSignin", "AccessDenied"),
    )
    assert "audit: sign-in user-ada" in next_app.stderr
    caplog.set_level(logging.INFO, logger="audit")
    async with _client(ported.app) as client:
        ours = [await _python_sign_in(client, **attempt) for attempt in attempts]
        client.cookies.clear()
    assert "sign-in user-ada" in caplog.messages
    assert [answer["status"] for answer in ours + theirs] == [302] * 6
    # Signed in: back to the app; a wrong password: the sign-in page, with the same code.
    assert ours[0]["location"] == theirs[0]["location"] == ORIGIN
    assert (
        ours[1]["location"]
        == theirs[1]["location"]
        == (f"{ORIGIN}/login?error=CredentialsSignin&code=credentials")
    )
    # Refused by the sign_in callback: Auth.js shows its error page, the port the
    # sign-in page (the page says so).
    assert theirs[2]["location"] == f"{ORIGIN}/login/error?error=AccessDenied"
    assert ours[2]["location"] == f"{ORIGIN}/login?error=AccessDenied"
    assert _pair(ours[0]["setCookie"]) and _pair(theirs[0]["setCookie"])
    assert not any(_pair(answer["setCookie"]) for answer in ours[1:] + theirs[1:])


def _shown(session: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in session.items() if key != "expires"}


async def test_sessions_cross_between_the_authjs_app_and_the_port(
    ported: ModuleType,
    next_app: NextApp,
    authjs_config: Path,
) -> None:
    async with _client(ported.app) as client:
        signed_in = await _python_sign_in(client, **ADA)
        ours = _pair(signed_in["setCookie"])
        assert ours is not None
        client.cookies.clear()
        [theirs_signed_in] = await asyncio.to_thread(
            next_app.run, authjs_config, [{"op": "signIn", **ADA}], ENV
        )
        theirs = _pair(theirs_signed_in["setCookie"])
        assert theirs is not None
        read_ours, updated_by_them = await asyncio.to_thread(
            next_app.run,
            authjs_config,
            [
                {"op": "session", "cookie": ours},
                {"op": "update", "cookie": theirs, "data": {"theme": "dark"}},
            ],
            ENV,
        )
        expected = {
            "user": {"name": "Ada", "email": "ada@example.com", "id": "user-ada", "role": "admin"}
        }
        assert _shown(read_ours["body"]) == expected
        assert _shown(updated_by_them["body"]) == {**expected, "theme": "dark"}
        # The cookie Auth.js re-issued after the update is the port's session too.
        updated_cookie = _pair(updated_by_them["setCookie"])
        assert updated_cookie is not None
        seen = (await client.get("/me", headers={"cookie": updated_cookie})).json()
        assert _shown(seen) == {**expected, "theme": "dark"}
        # And the port's own update goes through the same jwt callback.
        csrf = (await client.get("/api/auth/csrf", headers={"cookie": ours})).json()["csrfToken"]
        csrf_cookie = client.cookies["__Host-authjs.csrf-token"]
        updated = await client.post(
            "/api/auth/session",
            json={"csrfToken": csrf, "data": {"theme": "light"}},
            headers={"cookie": f"{ours}; __Host-authjs.csrf-token={csrf_cookie}"},
        )
        assert _shown(updated.json()) == {**expected, "theme": "light"}


# -- fastapi-users -------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class FastAPIUsersUser(Base):
    """fastapi-users' ``SQLAlchemyBaseUserTableUUID``, column for column (its GUID type is
    PostgreSQL's UUID there, CHAR(36) elsewhere)."""

    __tablename__ = "user"
    id: Mapped[str] = mapped_column(
        CHAR(36).with_variant(postgresql.UUID(as_uuid=False), "postgresql"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(String(1024))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)
    is_verified: Mapped[bool] = mapped_column(Boolean, default=False)


ADA_PASSWORD = "ada's fastapi-users passphrase"
GRACE_PASSWORD = "grace's passlib-era passphrase"
EVE_PASSWORD = "eve was deactivated"
#: fastapi-users' PasswordHelper: pwdlib, argon2 first (new hashes), bcrypt verified.
FASTAPI_USERS_HASHER = PasswordHash((Argon2Hasher(), BcryptHasher()))


@dataclass
class FastAPIUsersDatabase:
    url: str
    ids: dict[str, str]
    hashes: dict[str, str]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty SQLite file or PostgreSQL database (sync, so that it may ask for the
    asynchronous PostgreSQL fixture)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def fastapi_users_db(database_url: str) -> FastAPIUsersDatabase:
    """A fastapi-users app's database as it left it: three users, real pwdlib hashes."""
    url = database_url
    hashes = {
        "Ada@Example.com": FASTAPI_USERS_HASHER.hash(ADA_PASSWORD),
        # Hashed before fastapi-users moved to pwdlib: bcrypt, as passlib made them.
        "grace@example.com": BcryptHasher().hash(GRACE_PASSWORD),
        "eve@example.com": FASTAPI_USERS_HASHER.hash(EVE_PASSWORD),
    }
    ids = {email: str(uuid.uuid4()) for email in hashes}
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with AsyncSession(engine) as db, db.begin():
        db.add_all(
            [
                FastAPIUsersUser(
                    id=ids["Ada@Example.com"],
                    email="Ada@Example.com",
                    hashed_password=hashes["Ada@Example.com"],
                    is_superuser=True,
                    is_verified=True,
                ),
                FastAPIUsersUser(
                    id=ids["grace@example.com"],
                    email="grace@example.com",
                    hashed_password=hashes["grace@example.com"],
                ),
                FastAPIUsersUser(
                    id=ids["eve@example.com"],
                    email="eve@example.com",
                    hashed_password=hashes["eve@example.com"],
                    is_active=False,
                ),
            ]
        )
    await engine.dispose()
    assert hashes["Ada@Example.com"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert hashes["grace@example.com"].startswith("$2b$12$")
    return FastAPIUsersDatabase(url, ids, hashes)


async def _password_sign_in(client: httpx2.AsyncClient, email: str, password: str) -> str:
    csrf = (await client.get("/auth/csrf")).json()["csrfToken"]
    response = await client.post(
        "/auth/callback/password",
        data={"csrfToken": csrf, "email": email, "password": password},
    )
    assert response.status_code == 302
    return str(response.headers["location"])


async def _account_hash(adapter: Any, email: str) -> str:
    user = await adapter.get_user_by_email(email)
    accounts = await adapter.get_account(provider="password", provider_account_id=user.id)
    return str(accounts.extra["password"])


async def test_fastapi_users_sign_in_with_their_old_passwords(
    fastapi_users_db: FastAPIUsersDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", fastapi_users_db.url)
    monkeypatch.setenv("AUTH_URL", "http://testserver")
    script = load_sample("from_fastapi_users_import.py")
    service = load_sample("from_fastapi_users_app.py")
    importer = SQLAdapter(fastapi_users_db.url, tables={"users": "auth_user"})
    try:
        assert await script.import_users(fastapi_users_db.url, importer) == 3
        assert await script.import_users(fastapi_users_db.url, importer) == 0  # safe to rerun
        ada = await importer.get_user_by_email("ada@example.com")
        assert ada is not None and ada.email_verified is not None
        assert ada.extra["fastapi_users_id"] == fastapi_users_db.ids["Ada@Example.com"]
    finally:
        await importer.close()

    adapter = service.adapter
    transport = httpx2.ASGITransport(app=service.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/users/me")).status_code == 401
        # Their old passwords, typed as they always were.
        assert await _password_sign_in(client, "ada@example.com", ADA_PASSWORD) == (
            "http://testserver"
        )
        me = (await client.get("/users/me")).json()
        assert me == {"id": ada.id, "email": "ada@example.com"}
        assert (await client.get("/greeting")).json() == "Hello ada@example.com"
        grace = await adapter.get_user_by_email("grace@example.com")
        shown = await client.get(f"/admin/users/{grace.id}")
        assert shown.json() == {"id": grace.id, "email": "grace@example.com", "is_active": True}
        client.cookies.clear()

        assert await _password_sign_in(client, "grace@example.com", GRACE_PASSWORD) == (
            "http://testserver"
        )
        assert (await client.get(f"/admin/users/{ada.id}")).status_code == 403  # not a superuser
        client.cookies.clear()

        assert await _password_sign_in(client, "grace@example.com", "not her password") == (
            "http://testserver/auth/signin?error=CredentialsSignin&code=credentials"
        )
        # is_active=False: the sign_in callback refuses, even with the right password.
        refused = await _password_sign_in(client, "eve@example.com", EVE_PASSWORD)
        assert refused == "http://testserver/auth/signin?error=AccessDenied"
        assert (await client.get("/users/me")).status_code == 401

        # What called POST /auth/jwt/login now calls POST /auth/token.
        token = await client.post(
            "/auth/token",
            json={"provider": "password", "email": "grace@example.com", "password": GRACE_PASSWORD},
        )
        assert token.status_code == 200, token.text
        bearer = {"authorization": f"Bearer {token.json()['token']}"}
        assert (await client.get("/users/me", headers=bearer)).json()["email"] == (
            "grace@example.com"
        )

    # The old hashes were replaced by current argon2id ones once each password was
    # verified (Eve's too: her password was right, the callback refused her after).
    for email, old in fastapi_users_db.hashes.items():
        stored = await _account_hash(adapter, email.lower())
        assert stored != old
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    await adapter.close()
