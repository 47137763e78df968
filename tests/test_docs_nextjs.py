"""The Next.js guide's samples: an Auth.js app and a Python service sharing sessions.

The TypeScript files the page shows are compiled by esbuild (it strips the types) and
run by Node with the real packages: ``@auth/core``'s ``Auth()`` answers requests with the
page's ``auth.config.ts``, as ``NextAuth(config)`` does inside Next.js (which is not
installed, so ``auth.ts`` itself is only compiled). The Python samples run in-process.
Each direction is checked: a cookie one side issues is a session to the other.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import pytest

from tests.support.docs import SAMPLES, load_sample
from tests.support.live_server import LiveServer
from tests.support.node import NODE_MODULES_DIR, node_binary, run_node_script

SECRET = "docs-nextjs-secret-0123456789abcdef0123456789"
SESSION_COOKIE = "__Secure-authjs.session-token"
API_URL = "https://api.example.com"
NEXT_ORIGIN = "https://example.com"
ADA = {"email": "ada@example.com", "password": "demo-password"}
ADA_SESSION_USER = {"name": "Ada", "email": "ada@example.com", "id": "user-ada", "role": "admin"}

# Does what NextAuth(config) does before it hands a request to @auth/core (next-auth's
# lib/env.js: the secret from AUTH_SECRET, basePath "/api/auth"), then answers the ops.
RUNNER = r"""
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const input = JSON.parse(readFileSync(0, "utf8"));
Object.assign(process.env, input.env);
const { Auth, setEnvDefaults } = await import("@auth/core");
const { default: config } = await import(pathToFileURL(input.config).href);
config.secret ??= process.env.AUTH_SECRET;
config.basePath ||= "/api/auth";
setEnvDefaults(process.env, config, true);
const errors = [];
config.logger = { error: (error) => errors.push(String(error)), warn() {}, debug() {} };

async function call(method, path, { cookie, form, json } = {}) {
  const headers = new Headers();
  if (cookie) headers.set("cookie", cookie);
  const init = { method, headers };
  if (form) {
    headers.set("content-type", "application/x-www-form-urlencoded");
    init.body = new URLSearchParams(form).toString();
  }
  if (json) {
    headers.set("content-type", "application/json");
    init.body = JSON.stringify(json);
  }
  const url = new URL(config.basePath + path, input.origin);
  const response = await Auth(new Request(url, init), config);
  const text = await response.text();
  let body = null;
  try { body = JSON.parse(text); } catch {}
  return {
    status: response.status,
    body,
    location: response.headers.get("location"),
    setCookie: response.headers.getSetCookie(),
  };
}

const pair = (header) => header.split(";")[0];

const revive = (value) =>
  Array.isArray(value) ? value.map(revive)
  : value && typeof value === "object"
    ? (typeof value.$date === "string" ? new Date(value.$date)
       : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)])))
    : value;

async function run(op) {
  switch (op.op) {
    case "session":
      return call("GET", "/session", { cookie: op.cookie });
    case "signIn": {
      const csrf = await call("GET", "/csrf");
      const cookie = csrf.setCookie.map(pair).join("; ");
      return call("POST", "/callback/credentials", {
        cookie,
        form: { csrfToken: csrf.body.csrfToken, email: op.email, password: op.password },
      });
    }
    case "update": {
      const csrf = await call("GET", "/csrf", { cookie: op.cookie });
      const cookie = [op.cookie, ...csrf.setCookie.map(pair)].join("; ");
      return call("POST", "/session", {
        cookie,
        json: { csrfToken: csrf.body.csrfToken, data: op.data },
      });
    }
    case "adapter":
      return (await config.adapter[op.method](...revive(op.args))) ?? null;
    default:
      throw new Error(`unknown op ${op.op}`);
  }
}

const results = [];
for (const op of input.ops) results.push(await run(op));
process.stdout.write(JSON.stringify({ results, errors }), () => process.exit(0));
"""


class NextApp:
    """The page's Next.js files, compiled into a directory Node runs them from."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        #: What the last run wrote to stderr (the samples' audit lines).
        self.stderr = ""

    def add(self, sample: str, name: str) -> None:
        """Save ``docs/samples/<sample>`` as ``name`` in the project."""
        (self.directory / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES / sample, self.directory / name)

    def compile(self, entry: str) -> Path:
        """Bundle ``entry`` (its local imports in, packages left to node_modules)."""
        source = self.directory / entry
        out = source.with_suffix(".mjs")
        built = subprocess.run(
            [
                str(NODE_MODULES_DIR / "esbuild" / "bin" / "esbuild"),
                str(source),
                "--bundle",
                "--platform=node",
                "--format=esm",
                "--packages=external",
                f"--outfile={out}",
                "--jsx=automatic",
                "--log-level=error",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if built.returncode != 0:
            pytest.fail(f"esbuild could not compile {entry}:\n{built.stderr}")
        return out

    def run(
        self,
        config: Path,
        ops: list[dict[str, Any]],
        env: dict[str, str],
        *,
        logged: tuple[str, ...] = (),
    ) -> Any:
        """The ops' results; ``logged`` names the errors Auth.js may log (refused sign-ins)."""
        completed = subprocess.run(
            [node_binary(), str(self.directory / "runner.mjs")],
            input=json.dumps(
                {"config": str(config), "origin": NEXT_ORIGIN, "env": env, "ops": ops}
            ),
            capture_output=True,
            text=True,
            cwd=self.directory,
            timeout=60,
            check=False,
        )
        if completed.returncode != 0:
            pytest.fail(f"the Next.js config failed under Node:\n{completed.stderr}")
        self.stderr = completed.stderr
        answer = json.loads(completed.stdout)
        unexpected = [error for error in answer["errors"] if not error.startswith(logged)]
        assert unexpected == [], unexpected
        return answer["results"]


def build_next_app(directory: Path) -> NextApp:
    """A project directory Node runs the page's files from, with the packages at hand."""
    node_binary()
    (directory / "node_modules").symlink_to(NODE_MODULES_DIR, target_is_directory=True)
    (directory / "runner.mjs").write_text(RUNNER)
    return NextApp(directory)


@pytest.fixture(scope="module")
def next_app(tmp_path_factory: pytest.TempPathFactory) -> NextApp:
    """The samples saved under the names the page gives them, as in a Next.js project."""
    app = build_next_app(tmp_path_factory.mktemp("nextjs-app"))
    for sample, name in (
        ("nextjs_auth_config.ts", "auth.config.ts"),
        ("nextjs_auth.ts", "auth.ts"),
        ("nextjs_mongodb_config.ts", "mongodb/auth.config.ts"),
        ("nextjs_next_config.ts", "next.config.ts"),
        ("nextjs_providers.tsx", "app/providers.tsx"),
    ):
        app.add(sample, name)
    return app


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    monkeypatch.setenv("AUTH_URL", API_URL)
    monkeypatch.setenv("AUTH_COOKIE_DOMAIN", "example.com")
    monkeypatch.setenv("NEXT_APP_ORIGIN", NEXT_ORIGIN)
    return load_sample("nextjs_api.py")


NEXT_ENV = {"AUTH_SECRET": SECRET, "AUTH_COOKIE_DOMAIN": "example.com"}


def _client(app: Any) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=API_URL)


def _session_cookie(set_cookie: list[str]) -> str:
    """The session cookie's ``Set-Cookie`` header."""
    found = [header for header in set_cookie if header.startswith(SESSION_COOKIE + "=")]
    assert len(found) == 1, set_cookie
    return found[0]


def _pair(header: str) -> str:
    return header.split(";")[0]


async def _python_sign_in(client: httpx2.AsyncClient) -> httpx2.Response:
    csrf = (await client.get("/auth/csrf")).json()["csrfToken"]
    return await client.post("/auth/callback/credentials", data={"csrfToken": csrf, **ADA})


async def test_a_python_sign_in_is_a_session_to_the_nextjs_app(
    api: ModuleType, next_app: NextApp
) -> None:
    async with _client(api.app) as client:
        response = await _python_sign_in(client)
        assert response.status_code == 302
        header = _session_cookie(response.headers.get_list("set-cookie"))
        assert "Domain=example.com" in header and "Secure" in header
        ours = (await client.get("/auth/session")).json()
    config = next_app.compile("auth.config.ts")
    [answer] = await asyncio.to_thread(
        next_app.run, config, [{"op": "session", "cookie": _pair(header)}], NEXT_ENV
    )
    assert answer["status"] == 200
    assert answer["body"]["user"] == ours["user"] == ADA_SESSION_USER


async def test_a_nextjs_sign_in_is_a_session_to_the_python_service(
    api: ModuleType, next_app: NextApp
) -> None:
    config = next_app.compile("auth.config.ts")
    [signed_in] = await asyncio.to_thread(next_app.run, config, [{"op": "signIn", **ADA}], NEXT_ENV)
    assert signed_in["status"] == 302, signed_in
    header = _session_cookie(signed_in["setCookie"])
    # Both apps set the same cookie, under the same name, for the parent domain.
    assert "Domain=example.com" in header
    async with _client(api.app) as client:
        me = await client.get("/api/me", headers={"cookie": _pair(header)})
        assert me.json() == {"id": "user-ada", "email": "ada@example.com", "role": "admin"}
        assert (await client.get("/api/me")).status_code == 401


async def test_a_different_secret_shares_nothing(api: ModuleType, next_app: NextApp) -> None:
    config = next_app.compile("auth.config.ts")
    env = {**NEXT_ENV, "AUTH_SECRET": "another-secret-0123456789abcdef0123456789"}
    [signed_in] = await asyncio.to_thread(next_app.run, config, [{"op": "signIn", **ADA}], env)
    async with _client(api.app) as client:
        cookie = _pair(_session_cookie(signed_in["setCookie"]))
        assert (await client.get("/api/me", headers={"cookie": cookie})).status_code == 401


async def test_pages_of_the_nextjs_origin_may_post_to_the_python_routes(api: ModuleType) -> None:
    async with _client(api.app) as client:
        await _python_sign_in(client)
        csrf = (await client.get("/auth/csrf")).json()["csrfToken"]
        for origin, allowed in ((NEXT_ORIGIN, True), ("https://shop.example.com", False)):
            response = await client.post(
                "/auth/signout",
                data={"csrfToken": csrf},
                headers={"origin": origin, "sec-fetch-site": "same-site"},
            )
            assert (response.status_code != 403) is allowed, (origin, response.status_code)


def test_auth_ts_compiles_against_next_auth(next_app: NextApp) -> None:
    """``next`` is not installed, so ``auth.ts`` is compiled (types, imports), not run."""
    built = next_app.compile("auth.ts").read_text()
    assert 'from "next-auth"' in built
    assert "NextAuth(auth_config_default)" in built


FRONT_END_CHECK = r"""
import { pathToFileURL } from "node:url";
import { SessionProvider } from "next-auth/react";
const [nextConfig, providers] = process.argv.slice(2);
const { default: config } = await import(pathToFileURL(nextConfig).href);
const { Providers } = await import(pathToFileURL(providers).href);
const element = Providers({ children: null });
process.stdout.write(JSON.stringify({
  rewrites: await config.rewrites(),
  provider: element.type === SessionProvider,
  basePath: element.props.basePath,
}), () => process.exit(0));
"""


def test_the_front_end_sends_next_auth_react_to_the_python_routes(
    next_app: NextApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_AUTH_URL", "http://auth.internal:8000")
    check = next_app.directory / "front_end_check.mjs"
    check.write_text(FRONT_END_CHECK)
    completed = subprocess.run(
        [
            node_binary(),
            str(check),
            str(next_app.compile("next.config.ts")),
            str(next_app.compile("app/providers.tsx")),
        ],
        capture_output=True,
        text=True,
        cwd=next_app.directory,
        timeout=60,
        check=True,
    )
    answer = json.loads(completed.stdout)
    assert answer == {
        "rewrites": [
            {"source": "/auth/:path*", "destination": "http://auth.internal:8000/auth/:path*"}
        ],
        "provider": True,
        "basePath": "/auth",
    }


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture
def mongo_api(monkeypatch: pytest.MonkeyPatch, mongodb_url: str, mongo_db_name: str) -> ModuleType:
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    monkeypatch.setenv("AUTH_URL", API_URL)
    monkeypatch.setenv("AUTH_COOKIE_DOMAIN", "example.com")
    monkeypatch.setenv("MONGODB_URL", _with_database(mongodb_url, mongo_db_name))
    monkeypatch.setenv("AUTH_GITHUB_ID", "github-client-id")
    monkeypatch.setenv("AUTH_GITHUB_SECRET", "github-client-secret")
    return load_sample("nextjs_api_mongodb.py")


async def test_database_sessions_on_one_mongodb_are_shared_both_ways(
    mongo_api: ModuleType, next_app: NextApp, mongodb_url: str, mongo_db_name: str
) -> None:
    adapter = mongo_api.config.adapter
    expires = datetime.now(UTC) + timedelta(days=30)
    ada = await adapter.create_user({"name": "Ada", "email": "ada@example.com"})
    ours = await adapter.create_session(
        {"session_token": "python-made-token", "user_id": ada.id, "expires": expires}
    )
    env = {
        **NEXT_ENV,
        "MONGODB_URL": _with_database(mongodb_url, mongo_db_name),
        "AUTH_GITHUB_ID": "github-client-id",
        "AUTH_GITHUB_SECRET": "github-client-secret",
    }
    config = next_app.compile("mongodb/auth.config.ts")
    read_ours, grace, theirs = await asyncio.to_thread(
        next_app.run,
        config,
        [
            {"op": "session", "cookie": f"{SESSION_COOKIE}={ours.session_token}"},
            {
                "op": "adapter",
                "method": "createUser",
                "args": [{"name": "Grace", "email": "grace@example.com", "emailVerified": None}],
            },
            {"op": "session", "cookie": f"{SESSION_COOKIE}=not-a-session"},
        ],
        env,
    )
    assert read_ours["body"]["user"] == {"name": "Ada", "email": "ada@example.com"}
    assert theirs["body"] is None
    [created] = await asyncio.to_thread(
        next_app.run,
        config,
        [
            {
                "op": "adapter",
                "method": "createSession",
                "args": [
                    {
                        "sessionToken": "nextjs-made-token",
                        "userId": grace["id"],
                        "expires": {"$date": expires.isoformat()},
                    }
                ],
            }
        ],
        env,
    )
    assert created["sessionToken"] == "nextjs-made-token"
    async with _client(mongo_api.app) as client:
        me = await client.get("/api/me", headers={"cookie": f"{SESSION_COOKIE}=nextjs-made-token"})
        assert me.json() == {"id": grace["id"], "name": "Grace", "email": "grace@example.com"}
        # Signing out on the Python side deletes the row: the Next.js app sees no session.
        csrf = (await client.get("/auth/csrf")).json()["csrfToken"]
        signed_out = await client.post(
            "/auth/signout",
            data={"csrfToken": csrf},
            headers={"cookie": f"{SESSION_COOKIE}={ours.session_token}; {client_csrf(client)}"},
        )
        assert signed_out.status_code == 302
    [after] = await asyncio.to_thread(
        next_app.run,
        config,
        [{"op": "session", "cookie": f"{SESSION_COOKIE}={ours.session_token}"}],
        env,
    )
    assert after["body"] is None


def client_csrf(client: httpx2.AsyncClient) -> str:
    """The CSRF cookie the client holds, as a ``name=value`` pair."""
    name = "__Host-authjs.csrf-token"
    return f"{name}={client.cookies[name]}"


@pytest.fixture(scope="module")
def react_run() -> Iterator[dict[str, Any]]:
    """``next-auth/react`` pointed at the Python service (NEXTAUTH_URL = its /auth)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AUTH_SECRET", SECRET)
        monkeypatch.delenv("AUTH_COOKIE_DOMAIN", raising=False)

        def build(url: str) -> Any:
            monkeypatch.setenv("AUTH_URL", url)
            monkeypatch.setenv("NEXT_APP_ORIGIN", "http://localhost:3000")
            return load_sample("nextjs_api.py").app

        with LiveServer(build) as server:
            yield run_node_script(
                "nextauth_react.mjs",
                {
                    "authUrl": f"{server.url}/auth",
                    "email": "ada@example.com",
                    "password": "demo-password",
                    "wrongPassword": "wrong",
                    "customCodeEmail": "nobody@example.com",
                    "callbackUrl": "/dashboard",
                },
            )


def test_next_auth_react_signs_in_and_out_of_the_python_service(
    react_run: dict[str, Any],
) -> None:
    assert react_run["wrongPassword"]["error"] == "CredentialsSignin"
    assert react_run["signedIn"].get("error") is None
    assert react_run["session"]["user"] == ADA_SESSION_USER
    assert react_run["sessionSignedOut"] is None
