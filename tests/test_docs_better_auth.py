"""The samples of the Better Auth guide and of the Auth.js-to-Better-Auth page, run.

The Node side is the guide's own ``auth.ts`` and ``server.ts`` (docs/samples), built
with esbuild (types stripped, packages from tests/node) and served by Node; the Python
side is the guide's ``app.py``, in process (or served by uvicorn for the browser client,
bundled as a front end's build would and run in Chromium). Both run on one fresh
database, and cookies cross between them as a browser on one site carries them. The
migration samples meet sessions written by Auth.js's own MongoDB adapter and JWTs
encoded by ``@auth/core``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import httpx2
import pytest
from playwright.async_api import BrowserContext, Route

from tests.support.apps import csrf_token, set_cookies
from tests.support.better_auth import SECRET, BetterAuthServer, Cookies, Database, database_for
from tests.support.better_auth import _node_env as node_env
from tests.support.docs import load_sample, sample_path
from tests.support.live_server import LiveServer
from tests.support.node import NODE_PROJECT_DIR, node_binary, run_node_script
from tests.support.passwords import sign_in as python_sign_in
from tests.support.passwords import sign_up as python_sign_up

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"
TOKEN_COOKIE = "better-auth.session_token"
CACHE_COOKIE = "better-auth.session_data"
PYTHON_URL = "http://testserver"

# Builds auth.ts and server.ts with esbuild into one bundle (a shared chunk: one
# Better Auth instance), makes the tables or waits for the indexes, then imports
# server.ts, which listens on PORT. Run with cwd tests/node, so that packages resolve.
RUNNER = r"""
// Builds the documentation's Better Auth samples with esbuild (types stripped, the
// packages left to tests/node/node_modules) and runs them as a reader would.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const { auth: authEntry, server: serverEntry, outdir } = JSON.parse(process.env.DOCS_SAMPLE_RUN);
const { build } = await import("esbuild");
const packages = {
  name: "packages",
  setup(b) {
    b.onResolve({ filter: /^\.\/auth$/ }, () => ({ path: authEntry }));
    b.onResolve({ filter: /^[^./]/ }, (args) => ({
      path: import.meta.resolve(args.path),
      external: true,
    }));
  },
};
await build({
  entryPoints: { auth: authEntry, server: serverEntry },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  outExtension: { ".js": ".mjs" },
  plugins: [packages],
  logLevel: "warning",
});
const { auth } = await import(pathToFileURL(join(outdir, "auth.mjs")).href);
await auth.$context;
if (process.env.MONGODB_URL) {
  // A brand-new database: wait for the adapter's index builds before the first
  // sign-up, whose transaction would otherwise meet them (SnapshotUnavailable).
  const { MongoClient } = await import("mongodb");
  const client = new MongoClient(process.env.MONGODB_URL);
  const db = client.db();
  const wanted = { user: ["email"], session: ["token", "userId"] };
  const deadline = Date.now() + 10_000;
  for (const [collection, fields] of Object.entries(wanted)) {
    for (;;) {
      const indexes = await db.collection(collection).listIndexes().toArray().catch(() => []);
      const keys = indexes.map((index) => Object.keys(index.key).join(","));
      if (fields.every((field) => keys.includes(field))) break;
      if (Date.now() > deadline) throw new Error(`no index on ${collection} after 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  await client.close();
} else {
  // What `npx @better-auth/cli migrate` does: Better Auth's tables, made by Better Auth.
  const { getMigrations } = await import("better-auth/db/migration");
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
}
await import(pathToFileURL(join(outdir, "server.mjs")).href);
"""

# Bundles a browser sample (ENTRY) as a front end's build would: one script, its exports
# on window.sample.
BUNDLER = r"""
const { build } = await import("esbuild");
const built = await build({
  entryPoints: [process.env.ENTRY],
  nodePaths: [process.cwd() + "/node_modules"],
  bundle: true, format: "iife", globalName: "sample", platform: "browser",
  define: { "process.env.NODE_ENV": '"production"' }, write: false, logLevel: "warning",
});
process.stdout.write(built.outputFiles[0].text);
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SampleServer(BetterAuthServer):
    """The guide's ``server.ts`` with its ``auth.ts`` (``auth_sample``), in Node, with
    the environment the guide names: BETTER_AUTH_SECRET, BETTER_AUTH_URL, PORT and
    MONGODB_URL or DATABASE_URL."""

    def __init__(self, database: Database, auth_sample: str, env: dict[str, str], out: Path):
        super().__init__({"database": database})
        self.auth_sample = auth_sample
        self.env = env
        self.out = out

    def start(self) -> None:
        port = _free_port()
        self.url = self.base_url = f"http://127.0.0.1:{port}"
        env = {
            **node_env(),
            **self.env,
            "BETTER_AUTH_SECRET": self.secret,
            "BETTER_AUTH_URL": self.base_url,
            "PORT": str(port),
            "DOCS_SAMPLE_RUN": json.dumps(
                {
                    "auth": str(sample_path(self.auth_sample)),
                    "server": str(sample_path("better_auth_server.ts")),
                    "outdir": str(self.out),
                }
            ),
        }
        self._process = subprocess.Popen(
            [node_binary(), "--input-type=module", "-e", RUNNER],
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
            text=True,
            cwd=NODE_PROJECT_DIR,
            env=env,
        )
        jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        self._http = httpx.Client(base_url=self.url, cookies=jar, timeout=10.0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                if self._http.get("/api/auth/ok").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail(f"server.ts did not start; its output:\n{self.log()}", pytrace=False)

    def get_session(
        self, cookie_header: str, disable_cookie_cache: bool = False
    ) -> dict[str, Any] | None:
        """``GET /api/auth/get-session``: what ``authClient.getSession()`` asks."""
        params = {"disableCookieCache": "true"} if disable_cookie_cache else None
        response = self._ok(
            self.request("GET", "/api/auth/get-session", cookie_header=cookie_header, params=params)
        )
        found: dict[str, Any] | None = response.json()
        return found


def with_database(url: str, name: str) -> str:
    """``url`` naming database ``name``: mongodb://host/name?options."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def mongodb(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    return database_for("mongodb", request, tmp_path)


@pytest.fixture
def mongodb_env(mongodb: Database, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    assert mongodb["kind"] == "mongodb"
    env = {"MONGODB_URL": with_database(mongodb["url"], mongodb["db"])}
    for name, value in {**env, "BETTER_AUTH_SECRET": SECRET, "AUTH_URL": PYTHON_URL}.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def node(mongodb: Database, mongodb_env: dict[str, str], tmp_path: Path) -> Iterator[SampleServer]:
    server = SampleServer(mongodb, "better_auth_auth.ts", mongodb_env, tmp_path / "build")
    with server:
        yield server


@pytest.fixture
def app_sample(mongodb_env: dict[str, str]) -> ModuleType:
    return load_sample("better_auth_app.py")


def db_of(module: ModuleType) -> Any:
    """The sample's own database handle (for a test to look behind its back)."""
    return module.db


def python_client(module: ModuleType) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=module.app), base_url=PYTHON_URL)


def cookie_header(http: httpx2.AsyncClient) -> str:
    """What the browser sends the Node side: the cookies of the site."""
    return "; ".join(f"{name}={value}" for name, value in http.cookies.items())


def carry(http: httpx2.AsyncClient, cookies: Cookies) -> None:
    """What a browser does with the Node side's ``Set-Cookie`` headers."""
    for cookie in cookies.set_cookie:
        if cookie.expired:
            http.cookies.delete(cookie.name)
        else:
            http.cookies.set(cookie.name, cookie.value)


# -- the guide's app ------------------------------------------------------------------------


async def test_a_better_auth_sign_up_is_seen_by_the_python_api(
    node: SampleServer, app_sample: ModuleType
) -> None:
    signed_up = node.sign_up(EMAIL, PASSWORD, "Ada Lovelace")
    seen = node.get_session(signed_up.header)
    assert seen is not None
    async with python_client(app_sample) as http:
        assert (await http.get("/api/me")).status_code == 401
        carry(http, signed_up)
        response = await http.get("/api/me")
        assert response.status_code == 200
        assert response.json() == {"id": seen["user"]["id"], "name": "Ada Lovelace"}


async def test_a_python_sign_up_is_seen_by_better_auths_get_session(
    node: SampleServer, app_sample: ModuleType
) -> None:
    async with python_client(app_sample) as http:
        response = await python_sign_up(http, EMAIL, PASSWORD)
        assert response.status_code in (302, 303), response.text
        assert TOKEN_COOKIE in http.cookies
        seen = node.get_session(cookie_header(http), disable_cookie_cache=True)
        assert seen is not None and seen["user"]["email"] == EMAIL
        assert CACHE_COOKIE in http.cookies  # the sign-up left a cookie cache
        http.cookies.delete(CACHE_COOKIE)
        me = await http.get("/api/me")
        assert me.json()["id"] == seen["user"]["id"]
        # That read went to the database, and left a new cache, which Better Auth reads too.
        assert CACHE_COOKIE in set_cookies(me)
        header = cookie_header(http)
    await db_of(app_sample)["session"].delete_many({})
    assert node.get_session(header) is not None  # answered from the cache alone
    assert node.get_session(header, disable_cookie_cache=True) is None
    # The password hash is Better Auth's scrypt: its own sign-in takes it.
    signed_in = node.sign_in(EMAIL, PASSWORD)
    assert node.get_session(signed_in.header) is not None


async def test_a_better_auth_password_signs_in_on_the_python_side(
    node: SampleServer, app_sample: ModuleType
) -> None:
    node.sign_up(EMAIL, PASSWORD, "Ada")
    async with python_client(app_sample) as http:
        response = await python_sign_in(http, EMAIL, PASSWORD)
        assert response.status_code in (302, 303), response.text
        assert node.get_session(cookie_header(http)) is not None


async def test_signing_out_on_either_side_ends_the_session_for_both(
    node: SampleServer, app_sample: ModuleType
) -> None:
    async with python_client(app_sample) as http:
        carry(http, node.sign_up(EMAIL, PASSWORD, "Ada"))
        assert (await http.get("/api/me")).status_code == 200
        signed_out = node.request("POST", "/api/auth/sign-out", cookie_header=cookie_header(http))
        assert signed_out.status_code == 200
        carry(http, Cookies.from_headers(signed_out.headers.get_list("set-cookie")))
        assert TOKEN_COOKIE not in http.cookies and CACHE_COOKIE not in http.cookies
        assert (await http.get("/api/me")).status_code == 401
    async with python_client(app_sample) as http:
        await python_sign_in(http, EMAIL, PASSWORD)
        header = cookie_header(http)
        assert node.get_session(header) is not None
        response = await http.post("/auth/signout", data={"csrfToken": await csrf_token(http)})
        assert response.status_code in (302, 303)
        assert node.get_session(header, disable_cookie_cache=True) is None


async def test_the_cookie_cache_answers_reads_until_it_expires(
    node: SampleServer, app_sample: ModuleType
) -> None:
    signed_up = node.sign_up(EMAIL, PASSWORD, "Ada")
    assert signed_up.get(CACHE_COOKIE) is not None  # session.cookieCache is on
    async with python_client(app_sample) as http:
        carry(http, signed_up)
        # Ended on the Node side, but this browser kept its cache cookie (another tab,
        # say): reads are answered from the cache until maxAge, as in Better Auth.
        node.request("POST", "/api/auth/sign-out", cookie_header=signed_up.header)
        assert (await http.get("/api/me")).status_code == 200
        assert node.get_session(signed_up.header) is not None
        assert node.get_session(signed_up.header, disable_cookie_cache=True) is None
        # Without the cache cookie, the database answers: signed out.
        http.cookies.delete(CACHE_COOKIE)
        assert (await http.get("/api/me")).status_code == 401


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture
def postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    return database_for("postgres", request, tmp_path)


async def test_on_postgresql_a_better_auth_user_is_seen_by_the_python_api(
    postgres: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = postgres
    assert database["kind"] == "postgres"
    env = {"DATABASE_URL": database["url"]}  # one URL for node-postgres and for SQLAdapter
    monkeypatch.setenv("DATABASE_URL", database["url"])
    monkeypatch.setenv("BETTER_AUTH_SECRET", SECRET)
    sample = load_sample("better_auth_sql.py")
    try:
        with SampleServer(
            database, "better_auth_auth_postgres.ts", env, tmp_path / "build"
        ) as node:
            signed_up = node.sign_up(EMAIL, PASSWORD, "Ada Lovelace")
            seen = node.get_session(signed_up.header)
            assert seen is not None
            async with python_client(sample) as http:
                assert (await http.get("/api/me")).status_code == 401
                carry(http, signed_up)
                response = await http.get("/api/me")
                assert response.json() == {
                    "id": seen["user"]["id"],
                    "name": "Ada Lovelace",
                    "email": EMAIL,
                }
                node.request("POST", "/api/auth/sign-out", cookie_header=signed_up.header)
                assert (await http.get("/api/me")).status_code == 401
    finally:
        await sample.database.close()


# -- moving from Auth.js ----------------------------------------------------------------------

AUTHJS_COOKIE = "authjs.session-token"
AUTHJS_SECRET = "the-old-authjs-apps-own-secret-0123456789abcdef"


def _iso(delta: timedelta) -> dict[str, str]:
    return {"$date": (datetime.now(UTC) + delta).isoformat()}


async def authjs_session(mongodb: Database, *, verified: bool = True) -> str:
    """A user and a session written by Auth.js's own MongoDB adapter; the cookie's value."""
    assert mongodb["kind"] == "mongodb"
    token = f"authjs-{uuid.uuid4()}"
    user: dict[str, Any] = {
        "name": "Ada",
        "email": EMAIL,
        "emailVerified": _iso(-timedelta(days=1)),
    }
    if not verified:
        user["emailVerified"] = None
    session = {"sessionToken": token, "userId": {"$result": [0, "id"]}}
    ops = [
        {"op": "createUser", "args": [user]},
        {"op": "createSession", "args": [{**session, "expires": _iso(timedelta(days=30))}]},
    ]
    request = {"url": mongodb["url"], "database": mongodb["db"], "ops": ops}
    results = await asyncio.to_thread(run_node_script, "authjs_mongodb.mjs", request)
    assert all(result["ok"] for result in results), results
    return token


async def authjs_session_exists(mongodb: Database, token: str) -> bool:
    assert mongodb["kind"] == "mongodb"
    ops = [{"op": "getSessionAndUser", "args": [token]}]
    request = {"url": mongodb["url"], "database": mongodb["db"], "ops": ops}
    [result] = await asyncio.to_thread(run_node_script, "authjs_mongodb.mjs", request)
    return result["value"] is not None


async def test_an_authjs_session_keeps_working_under_the_migration_strategy(
    mongodb: Database, mongodb_env: dict[str, str], mongo_db: Any
) -> None:
    token = await authjs_session(mongodb)
    sample = load_sample("better_auth_migration.py")
    async with python_client(sample) as http:
        http.cookies.set(AUTHJS_COOKIE, token)
        response = await http.get("/api/me")
        assert response.status_code == 200, response.text
        # The user was adopted into Better Auth's records, and is presented by that id.
        adopted = await mongo_db["user"].find_one({"email": EMAIL})
        assert adopted is not None
        assert response.json() == {"id": str(adopted["_id"]), "email": EMAIL}
        assert await mongo_db["users"].count_documents({}) == 1  # Auth.js's, untouched
        # Signing out ends the Auth.js session for the Auth.js app too.
        signed_out = await http.post("/auth/signout", data={"csrfToken": await csrf_token(http)})
        assert signed_out.status_code in (302, 303)
        assert (await http.get("/api/me")).status_code == 401
    assert not await authjs_session_exists(mongodb, token)


async def test_a_new_sign_in_during_the_move_is_a_better_auth_session(
    node: SampleServer, mongodb_env: dict[str, str]
) -> None:
    sample = load_sample("better_auth_migration.py")
    async with python_client(sample) as http:
        response = await python_sign_up(http, EMAIL, PASSWORD)
        assert response.status_code in (302, 303), response.text
        seen = node.get_session(cookie_header(http))
        assert seen is not None
        assert (await http.get("/api/me")).json()["id"] == seen["user"]["id"]
    assert node.get_session(node.sign_in(EMAIL, PASSWORD).header) is not None


async def test_an_address_not_verified_on_both_sides_joins_no_users(
    node: SampleServer, mongodb: Database, mongo_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Someone signed up on the Better Auth app with Ada's address, never confirming it.
    node.sign_up(EMAIL, PASSWORD, "Not Ada")
    token = await authjs_session(mongodb)
    sample = load_sample("better_auth_migration.py")
    async with python_client(sample) as http:
        http.cookies.set(AUTHJS_COOKIE, token)
        assert (await http.get("/api/me")).status_code == 401  # Ada signs in anew
    assert "not verified on both sides" in caplog.text
    owner = await mongo_db["user"].find_one({"email": EMAIL})
    assert owner is not None and "authjs_user_id" not in owner


async def test_an_authjs_jwt_keeps_working_with_both_secrets(
    mongodb_env: dict[str, str], mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_SECRET", AUTHJS_SECRET)
    claims = {"sub": "authjs-user-1", "name": "Ada", "email": EMAIL}
    encoded = await asyncio.to_thread(
        run_node_script,
        "authjs_jwt.mjs",
        {"op": "encode", "token": claims, "secret": AUTHJS_SECRET, "salt": AUTHJS_COOKIE},
    )
    assert encoded["ok"], encoded
    sample = load_sample("better_auth_migration_jwt.py")
    async with python_client(sample) as http:
        http.cookies.set(AUTHJS_COOKIE, encoded["value"])
        response = await http.get("/api/me")
        assert response.status_code == 200, response.text
    adopted = await mongo_db["user"].find_one({"email": EMAIL})
    assert adopted is not None and adopted["authjs_user_id"] == "authjs-user-1"
    assert response.json() == {"id": str(adopted["_id"]), "email": EMAIL}


# -- the browser client -----------------------------------------------------------------------


def bundle_for_the_browser(sample: str) -> str:
    completed = subprocess.run(
        [node_binary(), "--input-type=module", "-e", BUNDLER],
        capture_output=True,
        text=True,
        cwd=NODE_PROJECT_DIR,
        env={**node_env(), "ENTRY": str(sample_path(sample))},
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


async def test_the_browser_client_and_the_python_api_share_the_session(
    node: SampleServer, mongodb_env: dict[str, str], browser_context: BrowserContext
) -> None:
    script = bundle_for_the_browser("better_auth_client.ts")
    # The Python API served for real; the page's origin is the Node app's, and requests for
    # /api/me are passed on to Python, as the guide's proxy does.
    sample = load_sample("better_auth_app.py")
    with LiveServer(lambda url: sample.app) as python:
        page = await browser_context.new_page()

        async def front_end(route: Route) -> None:
            page_html = '<!doctype html><title>app</title><script src="/client.js"></script>'
            await route.fulfill(content_type="text/html", body=page_html)

        async def client_js(route: Route) -> None:
            await route.fulfill(content_type="text/javascript", body=script)

        async def proxy(route: Route) -> None:
            await route.fulfill(response=await route.fetch(url=f"{python.url}/api/me"))

        await page.route(f"{node.url}/", front_end)
        await page.route(f"{node.url}/client.js", client_js)
        await page.route(f"{node.url}/api/me", proxy)
        await page.goto(f"{node.url}/")
        assert await page.evaluate("sample.me()") is None
        me = await page.evaluate(
            "sample.signUpThenAskTheApi('Ada', 'ada@example.com', 'correct horse battery staple')"
        )
        session = await page.evaluate("sample.authClient.getSession().then((r) => r.data)")
        assert me == {"id": session["user"]["id"], "name": "Ada"}
        await page.evaluate("sample.authClient.signOut()")
        assert await page.evaluate("sample.me()") is None
