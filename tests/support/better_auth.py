"""A real Better Auth server (the ``better-auth`` npm package) for the tests.

:class:`BetterAuthServer` runs ``better_auth_server.mjs`` on a free loopback port, with
email and password sign-in and the database and options a test gives it (see
:class:`BetterAuthConfig`; SQL tables are made by Better Auth's own migrations). Its
helpers go through Better Auth's HTTP routes as a browser would, and through
``auth.api`` as server code would (``/test/*``), and hand back every ``Set-Cookie``
verbatim. :func:`better_auth` starts one for a ``with`` block; the ``*_database``
functions describe the test databases in the form the server reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sqlite3
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack
from urllib.parse import urlsplit

import httpx
import pytest
from pymongo import AsyncMongoClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from asgi_session.backends import Adapter
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.backends.sql import SQLAdapter
from tests.support.node import NODE_PROJECT_DIR, SUPPORT_DIR, node_binary

SECRET = "better-auth-harness-secret-7f3c9a1e5b2d4f6a8c0e"
"""The secret servers get unless a test gives another (32+ characters, as Better Auth asks)."""

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_REQUEST_TIMEOUT = 10.0
# Variables Better Auth reads on its own (secret, URL, trusted origins; NODE_ENV=test or
# TEST turn its Origin check off): the server must run on its config alone.
_IGNORED_ENV = frozenset({"NODE_ENV", "TEST", "AUTH_SECRET", "BASE_URL", "NUXT_PUBLIC_AUTH_URL"})


class MongoDBDatabase(TypedDict):
    kind: Literal["mongodb"]
    url: str
    db: str


class SQLiteDatabase(TypedDict):
    kind: Literal["sqlite"]
    file: str


class PostgresDatabase(TypedDict):
    kind: Literal["postgres"]
    url: str
    """A ``postgresql://`` URL, as node-postgres reads it."""


Database = MongoDBDatabase | SQLiteDatabase | PostgresDatabase
DatabaseKind = Literal["mongodb", "sqlite", "postgres"]
DATABASE_KINDS: tuple[DatabaseKind, ...] = ("mongodb", "sqlite", "postgres")


class CookieCache(TypedDict, total=False):
    strategy: Literal["compact", "jwt", "jwe"]
    maxAge: int


class BetterAuthOptions(TypedDict, total=False):
    """Better Auth's own option names; an option left out keeps Better Auth's default."""

    secret: str
    baseURL: str
    cookiePrefix: str
    expiresIn: int
    updateAge: int
    cookieCache: CookieCache
    useSecureCookies: bool


class BetterAuthConfig(BetterAuthOptions):
    """What ``better_auth_server.mjs`` reads."""

    database: Database


def mongodb_database(url: str, db: str) -> MongoDBDatabase:
    return {"kind": "mongodb", "url": url, "db": db}


def sqlite_database(path: str | Path) -> SQLiteDatabase:
    return {"kind": "sqlite", "file": str(path)}


def postgres_database(url: str) -> PostgresDatabase:
    """``url`` (a SQLAlchemy URL such as the ``postgres_url`` fixture's) for node-postgres."""
    plain = make_url(url).set(drivername="postgresql")
    return {"kind": "postgres", "url": plain.render_as_string(hide_password=False)}


def database_for(kind: DatabaseKind, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A fresh, empty database of ``kind`` from the suite's fixtures: the test's own
    MongoDB database, a SQLite file in ``tmp_path``, or the test's own PostgreSQL
    database. Only the fixtures ``kind`` needs are asked for. Call it from a synchronous
    fixture: the database fixtures are asynchronous, which a running test cannot ask for."""
    if kind == "mongodb":
        url: str = request.getfixturevalue("mongodb_url")
        name: str = request.getfixturevalue("mongo_db_name")
        return mongodb_database(url, name)
    if kind == "sqlite":
        return sqlite_database(tmp_path / "better-auth.db")
    return postgres_database(request.getfixturevalue("postgres_url"))


@dataclass(frozen=True)
class SetCookie:
    """One ``Set-Cookie`` header as Better Auth wrote it."""

    raw: str
    name: str
    value: str
    """As on the wire: Better Auth percent-encodes signed values."""
    attributes: dict[str, str | None]
    """By lower-cased name; ``None`` for a flag (``httponly``, ``secure``)."""

    @classmethod
    def parse(cls, header: str) -> SetCookie:
        pair, *parts = header.split(";")
        name, _, value = pair.partition("=")
        attributes: dict[str, str | None] = {}
        for part in parts:
            key, sep, attribute = part.strip().partition("=")
            attributes[key.lower()] = attribute if sep else None
        return cls(raw=header, name=name.strip(), value=value.strip(), attributes=attributes)

    @property
    def max_age(self) -> int | None:
        max_age = self.attributes.get("max-age")
        return None if max_age is None else int(max_age)

    @property
    def expired(self) -> bool:
        """Whether this header deletes the cookie (Better Auth sends ``Max-Age=0``)."""
        return self.max_age == 0 or self.value == ""


@dataclass(frozen=True)
class Cookies:
    """A response's ``Set-Cookie`` headers, in order, and its JSON body."""

    set_cookie: tuple[SetCookie, ...]
    body: Any = None

    @classmethod
    def from_headers(cls, headers: list[str], body: Any = None) -> Cookies:
        return cls(tuple(SetCookie.parse(header) for header in headers), body)

    def get(self, name: str) -> SetCookie | None:
        """The last ``Set-Cookie`` for ``name`` (the one a browser keeps)."""
        found = [cookie for cookie in self.set_cookie if cookie.name == name]
        return found[-1] if found else None

    def __getitem__(self, name: str) -> SetCookie:
        cookie = self.get(name)
        if cookie is None:
            names = [cookie.name for cookie in self.set_cookie]
            raise KeyError(f"no Set-Cookie for {name!r}; got {names}")
        return cookie

    @property
    def names(self) -> list[str]:
        return [cookie.name for cookie in self.set_cookie]

    @property
    def header(self) -> str:
        """The ``Cookie`` header a browser would send back: every cookie still set."""
        kept = {cookie.name: cookie.value for cookie in self.set_cookie}
        for cookie in self.set_cookie:
            if cookie.expired:
                kept.pop(cookie.name, None)
        return "; ".join(f"{name}={value}" for name, value in kept.items())


@dataclass(frozen=True)
class SessionResponse:
    """What ``auth.api.getSession`` returned, and the cookies it set on the way."""

    session: dict[str, Any] | None
    cookies: Cookies = field(default_factory=lambda: Cookies(()))


class BetterAuthRequestError(AssertionError):
    """Better Auth answered a helper's request with an error status."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        try:
            self.body: Any = response.json()
        except ValueError:
            self.body = response.text
        super().__init__(
            f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code}: {self.body}"
        )

    @property
    def code(self) -> str | None:
        """Better Auth's error code (``INVALID_ORIGIN``, ...), when it sent one."""
        body = self.body.get("error", self.body) if isinstance(self.body, dict) else None
        return body.get("code") if isinstance(body, dict) else None


def _node_env() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if key not in _IGNORED_ENV and "BETTER_AUTH" not in key
    }


class BetterAuthServer:
    """The ``better_auth_server.mjs`` process; ``url`` is ``http://127.0.0.1:<port>``.

    ``base_url`` is Better Auth's ``baseURL`` (the config's, or else ``url``): the one
    origin it trusts, sent as ``Origin`` by the helpers.
    """

    def __init__(self, config: BetterAuthConfig) -> None:
        self.config: BetterAuthConfig = {"secret": SECRET, **config}
        self.url = ""
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None
        self._http: httpx.Client | None = None
        # Open for the process's whole life; closed by close().
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115

    @property
    def secret(self) -> str:
        return self.config.get("secret", SECRET)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def page_url(self) -> str:
        """The server's page for a real browser: a sign-up, sign-in and sign-out form
        run by Better Auth's own browser client (``better-auth/client``)."""
        return f"{self.url}/test/page"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def cookie_name(self, name: str) -> str:
        """Better Auth's full name for one of its cookies: ``session_token`` is
        ``better-auth.session_token``, with the configured prefix, and ``__Secure-``
        in front when its cookies are secure (an https ``baseURL``, or the option)."""
        secure = self.config.get("useSecureCookies", self.base_url.startswith("https://"))
        prefix = self.config.get("cookiePrefix") or "better-auth"
        return f"{'__Secure-' if secure else ''}{prefix}.{name}"

    @property
    def session_token_cookie(self) -> str:
        return self.cookie_name("session_token")

    @property
    def session_data_cookie(self) -> str:
        return self.cookie_name("session_data")

    def start(self) -> None:
        process = subprocess.Popen(
            [node_binary(), str(SUPPORT_DIR / "better_auth_server.mjs"), json.dumps(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=NODE_PROJECT_DIR,
            env=_node_env(),
        )
        self._process = process
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], _START_TIMEOUT)
        line = process.stdout.readline() if ready else ""
        if not line:
            state = "no ready line"
            if ready:
                # End of stdout: the process is exiting, or closed it; either way it is done.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    state = f"exited with {process.wait(timeout=_STOP_TIMEOUT)}"
            self._stop()
            pytest.fail(
                f"better_auth_server.mjs did not start ({state} within {_START_TIMEOUT}s); "
                f"stderr:\n{self.log()}",
                pytrace=False,
            )
        started = json.loads(line)
        self.url = started["url"]
        self.base_url = started["baseURL"]
        # A jar that accepts no cookie: each request carries exactly the Cookie header
        # the test gives it, never one left over from an earlier response.
        jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        self._http = httpx.Client(base_url=self.url, cookies=jar, timeout=_REQUEST_TIMEOUT)

    def log(self) -> str:
        """What the server wrote to stderr so far (Better Auth's log included)."""
        self._stderr.seek(0)
        return self._stderr.read()

    def _stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stdout is not None:
            process.stdout.close()
        self._process = None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self._stop()
        self._stderr.close()

    def __enter__(self) -> BetterAuthServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- Requests ---

    def request(
        self,
        method: str,
        path: str,
        *,
        cookie_header: str | None = None,
        origin: str | None = "",
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request to the server, errors included. ``origin`` is sent as ``Origin``:
        the trusted one (``""``, the default), another, or none (``None``)."""
        if self._http is None:
            raise RuntimeError("the Better Auth server is not running")
        sent = dict(headers or {})
        if cookie_header:
            sent["cookie"] = cookie_header
        if origin is not None:
            sent["origin"] = origin or self.origin
        return self._http.request(method, path, headers=sent, json=json_body, params=params)

    def _ok(self, response: httpx.Response) -> httpx.Response:
        if response.is_error:
            raise BetterAuthRequestError(response)
        return response

    def _cookies(self, response: httpx.Response) -> Cookies:
        self._ok(response)
        return Cookies.from_headers(response.headers.get_list("set-cookie"), response.json())

    def sign_up(self, email: str, password: str, name: str) -> Cookies:
        """``POST /api/auth/sign-up/email``; signed in at once (autoSignIn)."""
        body = {"email": email, "password": password, "name": name}
        return self._cookies(self.request("POST", "/api/auth/sign-up/email", json_body=body))

    def sign_in(self, email: str, password: str, *, remember_me: bool = True) -> Cookies:
        """``POST /api/auth/sign-in/email``; ``remember_me=False`` makes a browser-session
        cookie (no ``Max-Age``) and sets ``dont_remember``."""
        body = {"email": email, "password": password, "rememberMe": remember_me}
        return self._cookies(self.request("POST", "/api/auth/sign-in/email", json_body=body))

    def session_response(
        self, cookie_header: str, *, disable_cookie_cache: bool = False
    ) -> SessionResponse:
        """``auth.api.getSession`` for a request with ``cookie_header``."""
        params = {"disableCookieCache": "true"} if disable_cookie_cache else None
        response = self._ok(
            self.request("GET", "/test/session", cookie_header=cookie_header, params=params)
        )
        result = response.json()
        return SessionResponse(result["session"], Cookies.from_headers(result["setCookie"]))

    def get_session(
        self, cookie_header: str, disable_cookie_cache: bool = False
    ) -> dict[str, Any] | None:
        """``{"session": {...}, "user": {...}}`` (dates as ISO strings), or ``None``."""
        return self.session_response(
            cookie_header, disable_cookie_cache=disable_cookie_cache
        ).session

    def sign_out(self, cookie_header: str) -> Cookies:
        """``auth.api.signOut``: the session is deleted and its cookies expired."""
        response = self._ok(self.request("POST", "/test/sign-out", cookie_header=cookie_header))
        result = response.json()
        return Cookies.from_headers(result["setCookie"], result["response"])

    def list_sessions(self, cookie_header: str) -> list[dict[str, Any]]:
        """``GET /api/auth/list-sessions``: the user's sessions that have not expired."""
        response = self.request("GET", "/api/auth/list-sessions", cookie_header=cookie_header)
        sessions: list[dict[str, Any]] = self._ok(response).json()
        return sessions

    def list_accounts(self, cookie_header: str) -> list[dict[str, Any]]:
        """``GET /api/auth/list-accounts``: the user's accounts as Better Auth lists them
        (``providerId``, ``accountId``, ``userId``, ``scopes``...; no tokens)."""
        response = self.request("GET", "/api/auth/list-accounts", cookie_header=cookie_header)
        accounts: list[dict[str, Any]] = self._ok(response).json()
        return accounts

    def accounts(self, cookie_header: str) -> list[dict[str, Any]]:
        """The session user's account records as Better Auth's adapter reads them
        (``internalAdapter.findAccounts``): tokens included, dates as ISO strings."""
        response = self._ok(self.request("GET", "/test/accounts", cookie_header=cookie_header))
        accounts: list[dict[str, Any]] = response.json()
        return accounts

    def revoke_session(self, cookie_header: str, token: str) -> None:
        """``POST /api/auth/revoke-session``: ends one of the user's sessions by token."""
        response = self.request(
            "POST",
            "/api/auth/revoke-session",
            cookie_header=cookie_header,
            json_body={"token": token},
        )
        self._ok(response)


@contextlib.contextmanager
def better_auth(
    database: Database, **options: Unpack[BetterAuthOptions]
) -> Iterator[BetterAuthServer]:
    """A running Better Auth server on ``database`` for the block, stopped after it."""
    config: BetterAuthConfig = {**options, "database": database}
    with BetterAuthServer(config) as server:
        yield server


# -- our side of the same database ----------------------------------------------------------


@contextlib.asynccontextmanager
async def open_adapter(database: Database) -> AsyncIterator[Adapter]:
    """Our adapter on ``database``, laid out as Better Auth's, closed after the block."""
    if database["kind"] == "mongodb":
        client: AsyncMongoClient[Any] = AsyncMongoClient(database["url"])
        try:
            yield MongoDBAdapter(client[database["db"]], schema="better-auth")
        finally:
            await client.close()
        return
    if database["kind"] == "sqlite":
        url = f"sqlite+aiosqlite:///{database['file']}"
    else:
        url = asyncpg_url(database["url"])
    sql = SQLAdapter(url, schema="better-auth")
    try:
        yield sql
    finally:
        await sql.close()


def asyncpg_url(url: str) -> str:
    """A PostgreSQL URL of the harness's, for SQLAlchemy's asyncpg driver."""
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


async def rows(database: Database, table: str) -> list[dict[str, Any]]:
    """Every row (document) of one of Better Auth's tables, read without Better Auth or
    our adapter."""
    if database["kind"] == "mongodb":
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database["url"])
        try:
            return await client[database["db"]][table].find().to_list()
        finally:
            await client.close()
    if database["kind"] == "sqlite":
        with sqlite3.connect(database["file"]) as connection:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(f'SELECT * FROM "{table}"')]
    engine = create_async_engine(asyncpg_url(database["url"]))
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text(f'SELECT * FROM "{table}"'))
            return [dict(row) for row in result.mappings()]
    finally:
        await engine.dispose()
