"""The Better Auth rows: :class:`~asgi_session.backends.better_auth.BetterAuthStrategy`
reading Better Auth's signed session cookie, as a Python service behind a Better Auth
front end does on every request.

- The cookie cache hit: ``BetterAuthStrategy(adapter, cookie_cache=CookieCache(...))``,
  every request carrying the signed ``better-auth.session_token`` and a valid
  ``better-auth.session_data`` (``"compact"``, Better Auth's default encoding, and
  ``"jwe"``): the session comes from the cookies, with no database call. The adapter is
  ``SQLAdapter(url, schema="better-auth")`` on SQLite; its statements are counted, and a
  request that sends one fails the row.
- The database path: ``BetterAuthStrategy(adapter, cache=False)``, the signed session
  cookie alone, on SQLite (``SQLAdapter(url, schema="better-auth")``) and on MongoDB
  (``MongoDBAdapter(db, schema="better-auth")``), each with its floor: a pure ASGI
  middleware checking the cookie's HMAC-SHA256 signature by hand (as a hand-written
  middleware would have to) and running the one lookup of the session and its user on
  Better Auth's tables (a ``SELECT ... JOIN``; on MongoDB one ``aggregate`` with a
  ``$lookup``) through the same engine or client.

Every row gets a database of its own (on SQLite a file in a temporary directory, on
MongoDB a database of the run's server), made as an app's start-up makes it
(``create_tables()``, ``ensure_indexes()``) and holding the benchmark's user and one
session of theirs, stored through the adapter (``create_user``, ``create_session``) as a
sign-in stores them. The session lasts Better Auth's ``expiresIn`` (7 days), so within
its ``updateAge`` (1 day) resolving it writes nothing. The cookie's value is the token
signed as ``_better_auth_cookies.sign`` signs it, percent-encoded as the strategy writes
it. The cookie cache is the one the strategy itself wrote for that session, encoded again
with a fresh expiry before each batch, as a browser always holds the latest one (its
``maxAge`` is 300 s, shorter than a run).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from asgi_session import AuthConfig, AuthMiddleware, Session
from asgi_session.backends import _better_auth_cookies as ba
from asgi_session.backends.better_auth import BetterAuthStrategy, CookieCache
from database import MongoDB, _Client, _open_client
from fixtures import CLAIMS, SECRET, check_ok, session_app
from harness import (
    COMMON_HEADERS,
    BenchmarkError,
    Extra,
    Reply,
    Run,
    Target,
    call_once,
    http_scope,
    require,
)
from sql_database import _DATABASES, SQLITE, _counting, _Statements, _statements_per_request

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from asgi_session.backends import Adapter
    from asgi_session.backends.sql import SQLAdapter

TOKEN_COOKIE = "better-auth.session_token"
CACHE_COOKIE = "better-auth.session_data"
_SCHEMA = "better-auth"
# Better Auth's session.expiresIn, BetterAuthStrategy's default.
_EXPIRES_IN = timedelta(days=7)
# encodeURIComponent's unescaped characters: how the strategy writes cookie values.
_URI_COMPONENT_SAFE = "-_.!~*'()"
# Better Auth's session tokens: generateId(32), letters and digits.
_TOKEN_ALPHABET = string.ascii_letters + string.digits
_CLIENT_ADDRESS = "127.0.0.1"

# The floor's query on Better Auth's tables: the session and its user, unexpired.
_BY_HAND = (
    'SELECT u.id, u.name, u.email, u.image FROM "session" AS s '
    'JOIN "user" AS u ON u.id = s."userId" '
    'WHERE s.token = :token AND s."expiresAt" > :now'
)


# -- the records and the cookies ---------------------------------------------------------


async def _seed(adapter: Adapter) -> str:
    """Store the benchmark's user and one session of theirs through ``adapter``, as a
    sign-in stores them; the session's token."""
    user = await adapter.create_user(
        {"name": CLAIMS["name"], "email": CLAIMS["email"], "image": CLAIMS["picture"]}
    )
    now = datetime.now(UTC)
    token = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(32))
    await adapter.create_session(
        {
            "session_token": token,
            "user_id": user.id,
            "expires": now + _EXPIRES_IN,
            "created_at": now,
            "last_seen_at": now,
            "user_agent": dict(COMMON_HEADERS)[b"user-agent"].decode("latin-1"),
            "ip_address": _CLIENT_ADDRESS,
        }
    )
    return token


def _cookie_pair(name: str, value: str) -> str:
    return f"{name}={quote(value, safe=_URI_COMPONENT_SAFE)}"


def _session_cookie(token: str) -> str:
    """``better-auth.session_token=...``: the token signed with the secret."""
    return _cookie_pair(TOKEN_COOKIE, ba.sign(token, SECRET))


def _same_cookie(cookie: str) -> Callable[[int], list[Scope]]:
    template = http_scope("/", [(b"cookie", cookie.encode("latin-1"))])
    return lambda count: [template] * count


def _check_session(scope: Scope, reply: Reply) -> None:
    check_ok(scope, reply)
    session = scope["state"].get("session")
    require(isinstance(session, Session), f"no session resolved: {session!r}")
    require(session.user.email == CLAIMS["email"], "wrong session user")


def _check_by_hand(scope: Scope, reply: Reply) -> None:
    check_ok(scope, reply)
    session = scope["state"].get("session")
    require(isinstance(session, _ByHand), f"no session looked up: {session!r}")
    require(session.user.email == CLAIMS["email"], "wrong session user")


def _app(adapter: Adapter, cookie_cache: CookieCache | None = None) -> ASGIApp:
    if cookie_cache is None:
        # Uncached, as the other database rows: every request reads the database.
        strategy = BetterAuthStrategy(adapter, cache=False)
    else:
        strategy = BetterAuthStrategy(adapter, cookie_cache=cookie_cache)
    config = AuthConfig(secret=SECRET, strategy=strategy)
    return session_app(Middleware(AuthMiddleware, config=config))


# -- the floors: the signature checked and the session looked up by hand ----------------


class _ByHand:
    """The session a lookup by hand gives the handler: the user, as it came."""

    __slots__ = ("user",)

    def __init__(self, user: Any) -> None:
        self.user = user


def _signed_token(headers: list[tuple[bytes, bytes]], key: bytes) -> str | None:
    """The token of the request's ``better-auth.session_token``, if the secret signed it:
    the cookie found in the header, percent-decoded, its HMAC-SHA256 compared."""
    for name, value in headers:
        if name == b"cookie":
            for pair in value.decode("latin-1").split(";"):
                cookie, _, signed = pair.strip().partition("=")
                if cookie == TOKEN_COOKIE:
                    token, _, signature = unquote(signed).rpartition(".")
                    digest = hmac.new(key, token.encode(), hashlib.sha256).digest()
                    expected = base64.b64encode(digest).decode("ascii")
                    if token and hmac.compare_digest(expected, signature):
                        return token
                    return None
    return None


class _SelectByHand:
    """The cheapest Better Auth database session there is: the signature checked, one
    ``SELECT ... JOIN`` of the session and its user on ``engine``, the row in
    ``request.state``. No session object, no expiry extended, nothing written."""

    def __init__(self, app: ASGIApp, engine: AsyncEngine) -> None:
        from sqlalchemy import text

        self.app = app
        self.engine = engine
        self.query = text(_BY_HAND)
        self.key = SECRET.encode()
        # How Better Auth's columns keep a time: on SQLite, the text Date.toISOString()
        # gives (compared as text); on PostgreSQL, a timestamptz.
        if engine.dialect.name == "sqlite":
            self.now: Callable[[], object] = lambda: (
                datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            )
        else:
            self.now = lambda: datetime.now(UTC)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            session = None
            token = _signed_token(scope["headers"], self.key)
            if token is not None:
                async with self.engine.connect() as connection:
                    found = await connection.execute(
                        self.query, {"token": token, "now": self.now()}
                    )
                    row = found.first()
                if row is not None:
                    session = _ByHand(row)
            scope["state"]["session"] = session
        await self.app(scope, receive, send)


class _AggregateByHand:
    """The same on MongoDB: the signature checked, one ``aggregate`` (the session by its
    token, unexpired, and its user through ``$lookup``) on Better Auth's collections."""

    def __init__(self, app: ASGIApp, database: Any) -> None:
        self.app = app
        self.sessions = database["session"]
        self.key = SECRET.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            session = None
            token = _signed_token(scope["headers"], self.key)
            if token is not None:
                pipeline = [
                    {"$match": {"token": token, "expiresAt": {"$gt": datetime.now(UTC)}}},
                    {"$limit": 1},
                    {
                        "$lookup": {
                            "from": "user",
                            "localField": "userId",
                            "foreignField": "_id",
                            "as": "user",
                        }
                    },
                ]
                found = await (await self.sessions.aggregate(pipeline)).to_list(1)
                if found and found[0]["user"]:
                    session = _ByHand(SimpleNamespace(**found[0]["user"][0]))
            scope["state"]["session"] = session
        await self.app(scope, receive, send)


# -- SQLite --------------------------------------------------------------------------------


@dataclass
class _OpenedSQL:
    adapter: SQLAdapter
    token: str
    close: Callable[[], Awaitable[None]]


async def _open_sql(run: Run, kind: str) -> _OpenedSQL:
    """A database of the row's own with Better Auth's tables, seeded."""
    database = await _DATABASES[kind](run)
    try:
        from asgi_session.backends.sql import SQLAdapter

        adapter = SQLAdapter(database.url, schema=_SCHEMA)
        try:
            await adapter.create_tables()
            token = await _seed(adapter)
        except BaseException:
            await adapter.close()
            raise
    except BaseException:
        await database.delete()
        raise

    async def close() -> None:
        try:
            await adapter.close()
        finally:
            await database.delete()

    return _OpenedSQL(adapter, token, close)


def _counted(engine: AsyncEngine) -> _Statements:
    """Statements ``engine`` sends from now on."""
    statements = _Statements()
    statements.listen(engine)
    return statements


async def cookie_cache_hits(run: Run, *, encoding: ba.Encoding) -> Target:
    """Requests carrying the session cookie and a valid cookie cache in ``encoding``."""
    opened = await _open_sql(run, SQLITE)
    try:
        cache = CookieCache(encoding=encoding)
        app = _app(opened.adapter, cache)
        session_cookie = _session_cookie(opened.token)
        # The session cookie alone: the database answers, and the strategy writes the
        # cookie cache a browser then keeps.
        _, reply = await call_once(app, _same_cookie(session_cookie)(1)[0])
        prefix = f"{CACHE_COOKIE}=".encode("latin-1")
        written = [
            header.split(b";")[0][len(prefix) :]
            for header in reply.header_values(b"set-cookie")
            if header.startswith(prefix)
        ]
        require(len(written) == 1, f"no {CACHE_COOKIE} cookie written (or chunked)")
        found = ba.decode_cache(
            unquote(written[0].decode("latin-1")), cache, [SECRET], now=time.time()
        )
        if found is None:
            raise BenchmarkError("the cookie cache the strategy wrote does not verify")
        payload = {key: found.payload[key] for key in ("session", "user", "version")}
    except BaseException:
        await opened.close()
        raise
    statements = _counted(opened.adapter.engine)

    def requests(count: int) -> list[Scope]:
        # The same cache, valid for its max_age from now: what the browser holds.
        now = time.time()
        value = ba.encode_cache({**payload, "updatedAt": int(now * 1000)}, cache, SECRET, now=now)
        return _same_cookie(f"{session_cookie}; {_cookie_pair(CACHE_COOKIE, value)}")(count)

    def sent() -> int:
        return statements.reads + statements.writes + statements.other

    def check(scope: Scope, reply: Reply) -> None:
        # No Set-Cookie (check_ok): the cache was read, not written again.
        _check_session(scope, reply)
        require(sent() == 0, f"a cookie cache hit sent {sent()} statement(s)")

    counted, served = _counting(requests)
    per_request = _statements_per_request(statements, served)

    def extra() -> Extra:
        # Checked again after timing: a request the database answered was no cache hit.
        require(sent() == 0, f"{sent()} statement(s) sent while timing cookie cache hits")
        return per_request()

    return Target(app, counted, check, extra, opened.close)


async def better_auth_sql_sessions(run: Run, *, kind: str) -> Target:
    """Requests carrying the signed session cookie, resolved by ``SQLAdapter``."""
    opened = await _open_sql(run, kind)
    statements = _counted(opened.adapter.engine)
    requests, served = _counting(_same_cookie(_session_cookie(opened.token)))
    return Target(
        _app(opened.adapter),
        requests,
        _check_session,
        _statements_per_request(statements, served),
        opened.close,
    )


async def better_auth_sql_floor(run: Run, *, kind: str) -> Target:
    """The same requests, the signature checked and the session looked up by hand."""
    opened = await _open_sql(run, kind)
    statements = _counted(opened.adapter.engine)
    requests, served = _counting(_same_cookie(_session_cookie(opened.token)))
    app = session_app(Middleware(_SelectByHand, engine=opened.adapter.engine))
    return Target(
        app, requests, _check_by_hand, _statements_per_request(statements, served), opened.close
    )


# -- MongoDB -------------------------------------------------------------------------------


async def _open_mongodb(run: Run) -> tuple[_Client, Adapter, str]:
    """A database of the row's own on the run's server, laid out as Better Auth's, seeded."""
    url = await run.shared(MongoDB).url()
    client = await _open_client(url, "pymongo")
    try:
        from asgi_session.backends.mongodb import MongoDBAdapter

        adapter = MongoDBAdapter(client.database, schema=_SCHEMA)
        await adapter.ensure_indexes()
        token = await _seed(adapter)
    except BaseException:
        await client.close()
        raise
    # Counted from here: every request the row sends, and nothing the seeding sent.
    client.commands.reset()
    return client, adapter, token


def _round_trips(client: _Client, served: Callable[[], int]) -> Callable[[], Extra]:
    def extra() -> Extra:
        requests, commands = served(), client.commands
        reads, writes = commands.reads / requests, commands.writes / requests
        line = f"round trips per request: {reads:.2f} (reads), writes: {writes:g}"
        if commands.other:
            line += f", other commands: {commands.other / requests:g}"
        return Extra({"reads_per_request": reads, "writes_per_request": writes}, [line])

    return extra


async def better_auth_mongodb_sessions(run: Run) -> Target:
    """Requests carrying the signed session cookie, resolved by ``MongoDBAdapter``."""
    client, adapter, token = await _open_mongodb(run)
    requests, served = _counting(_same_cookie(_session_cookie(token)))
    return Target(
        _app(adapter), requests, _check_session, _round_trips(client, served), client.close
    )


async def better_auth_mongodb_floor(run: Run) -> Target:
    """The same requests, the signature checked and the session looked up by hand."""
    client, _, token = await _open_mongodb(run)
    requests, served = _counting(_same_cookie(_session_cookie(token)))
    app = session_app(Middleware(_AggregateByHand, database=client.database))
    return Target(app, requests, _check_by_hand, _round_trips(client, served), client.close)
