"""Property-based tests: whatever a client sends, nothing breaks and nothing is forged.

Every parser of untrusted input (the Cookie header, cookie chunks, session tokens, CSRF
cookies, redirect targets, email addresses, request bodies) and the middleware as a
whole get random and hostile input. Each property holds for any input: only the
documented exceptions, never a 500, and never a session from a token we did not issue.

The normal run tries a few thousand examples per property; ``make fuzz`` runs the
``fuzz`` profile of ``tests/conftest.py`` (100,000 per property).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import json
import logging
import os
import string
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import event, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_session import AuthConfig, AuthMiddleware, Callbacks
from asgi_session import _cookies as cookies
from asgi_session import _csrf as csrf
from asgi_session._context import RequestContext
from asgi_session._cookies import CHUNK_SIZE, DEFAULT_MAX_CHUNKS, CookieSpec
from asgi_session._redirects import same_origin_url
from asgi_session._routes import MAX_BODY_SIZE, AuthRequest, BodyTooLarge
from asgi_session.backends import MemoryAdapter
from asgi_session.errors import CookieTooLargeError, JWTDecodeError
from asgi_session.jwt import JWTCodec
from asgi_session.providers import Credentials, Email
from asgi_session.providers._email import normalize_email
from tests.support.apps import SECRET, SESSION_COOKIE, Clock, authorize

SECURE_SESSION_COOKIE = "__Secure-" + SESSION_COOKIE
SESSION_NAMES = (SESSION_COOKIE, SECURE_SESSION_COOKIE)
CSRF_COOKIES = ("authjs.csrf-token", "__Host-authjs.csrf-token")
#: A secret the apps still accept (rotation), and one they never knew.
OLD_SECRET = "previous-secret-still-accepted-0123456789"
OTHER_SECRET = "someone-elses-secret-0123456789abcdef"
SECRETS = (SECRET, OLD_SECRET)
#: The apps' clock stands still, so the tokens issued here stay valid for the whole run.
NOW = 1_750_000_000.0
DAY = 24 * 60 * 60
BASE64URL = string.ascii_letters + string.digits + "-_"


# -- input that looks like what clients send ------------------------------------------

#: Text any client could send, weighted towards the characters parsers split on.
SEPARATORS = ";=,\"'%\\ \t\r\n\x00\x7f."
tricky_text = st.text(
    alphabet=st.one_of(st.sampled_from(SEPARATORS), st.characters(codec="utf-8")), max_size=40
)
#: What follows a cookie's name: nothing, chunk numbers and near misses of them.
NAME_SUFFIXES = (
    "",
    ".0",
    ".1",
    ".2",
    ".3",
    ".00",
    ".01",
    ".001",
    ".10",
    ".63",
    ".64",
    ".99",
    ".100",
    ".",
    "..0",
    ".-1",
    ".+1",
    ". 1",
    ".1 ",
    ".a",
    ".\u0660",  # ARABIC-INDIC DIGIT ZERO: a digit to regular expressions and int()
    ".\uff11",  # FULLWIDTH DIGIT ONE
    ".\u00b2",  # SUPERSCRIPT TWO: isdigit() but not int()
    ".0\n",
)
NAME_BASES = (
    *SESSION_NAMES,
    *CSRF_COOKIES,
    "authjs.callback-url",
    "AUTHJS.session-token",
    "__secure-authjs.session-token",
    "__Host-authjs.session-token",
    "authjs.session-tokenx",
    "authjs.session",
    "next-auth.session-token",
    "",
)
near_names = st.builds(
    lambda base, suffix: base + suffix, st.sampled_from(NAME_BASES), st.sampled_from(NAME_SUFFIXES)
)
cookie_names = st.one_of(near_names, near_names, tricky_text)
cookie_values = st.one_of(
    tricky_text,
    st.text(alphabet=BASE64URL + ".", max_size=80),
    st.sampled_from(["", '""', '"', '"a"', "%", "%zz", "%C3", "%00", "%3B", "%25", "a%20b"]),
)


# -- session tokens -----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _derive(secret: str, salt: str, length: int) -> bytes:
    info = f"Auth.js Generated Encryption Key ({salt})".encode()
    return HKDF(hashes.SHA256(), length, salt.encode(), info).derive(secret.encode())


def _seal_gcm(claims: Mapping[str, Any], secret: str, salt: str) -> str:
    """An A256GCM token without ``kid``, as Auth.js accepts (and this codec reads)."""
    header = _b64(json.dumps({"alg": "dir", "enc": "A256GCM"}).encode())
    iv = os.urandom(12)
    sealed = AESGCM(_derive(secret, salt, 32)).encrypt(
        iv, json.dumps(dict(claims)).encode(), header.encode()
    )
    return ".".join([header, "", _b64(iv), _b64(sealed[:-16]), _b64(sealed[-16:])])


def _seal_cbc(claims: Mapping[str, Any], secret: str, salt: str) -> str:
    """An A256CBC-HS512 token without ``kid``: a header this codec never issues itself."""
    key = _derive(secret, salt, 64)
    header = _b64(json.dumps({"alg": "dir", "enc": "A256CBC-HS512"}).encode())
    plaintext = json.dumps(dict(claims)).encode()
    pad = 16 - len(plaintext) % 16
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(key[32:]), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(plaintext + bytes((pad,)) * pad) + encryptor.finalize()
    aad = header.encode()
    mac = hmac.new(key[:32], aad + iv + ciphertext + (len(aad) * 8).to_bytes(8, "big"), "sha512")
    return ".".join([header, "", _b64(iv), _b64(ciphertext), _b64(mac.digest()[:32])])


CODECS = {salt: JWTCodec(list(SECRETS), salt) for salt in SESSION_NAMES}


def _claims(sub: str, **extra: Any) -> dict[str, Any]:
    return {"sub": sub, "name": f"User {sub}", "email": f"{sub}@example.com", **extra}


def _issue(salt: str, claims: Mapping[str, Any], *, secret: str = SECRET, now: float = NOW) -> str:
    codec = CODECS[salt] if secret == SECRET else JWTCodec([secret], salt)
    return codec.encode(claims, max_age=30 * DAY, now=now)


@dataclass(frozen=True)
class Issued:
    """A token, the cookie name (salt) it was issued for, and the claims it carries."""

    token: str
    salt: str
    claims: dict[str, Any]


def _issued(token: str, salt: str) -> Issued:
    return Issued(token, salt, CODECS[salt].decode(token, now=NOW))


def _foreign(token: str) -> Issued:
    """A token the apps must refuse: it has no claims to read."""
    return Issued(token, SESSION_COOKIE, {})


_iat = {"iat": int(NOW), "exp": int(NOW) + 30 * DAY}
VALID = (
    _issued(_issue(SESSION_COOKIE, _claims("u1")), SESSION_COOKIE),
    _issued(_issue(SESSION_COOKIE, _claims("u2", roles=["admin"])), SESSION_COOKIE),
    # Big enough to take two cookie chunks.
    _issued(_issue(SESSION_COOKIE, _claims("u3", blob="x" * 4000)), SESSION_COOKIE),
    _issued(_issue(SESSION_COOKIE, _claims("u4"), secret=OLD_SECRET), SESSION_COOKIE),
    _issued(_issue(SECURE_SESSION_COOKIE, _claims("u5")), SECURE_SESSION_COOKIE),
    _issued(
        _seal_gcm({**_claims("u6"), **_iat, "jti": "gcm"}, SECRET, SESSION_COOKIE), SESSION_COOKIE
    ),
    _issued(
        _seal_cbc({**_claims("u7"), **_iat, "jti": "cbc"}, SECRET, SESSION_COOKIE), SESSION_COOKIE
    ),
)
assert len(VALID[2].token) > CHUNK_SIZE
VALID_JTIS = {issued.token: issued.claims["jti"] for issued in VALID}
#: Tokens that must never give a session: made with another secret, expired, not yet
#: valid, with an expiry that is no number.
FOREIGN = (
    _issue(SESSION_COOKIE, _claims("x1"), secret=OTHER_SECRET),
    _issue(SESSION_COOKIE, _claims("x2"), now=NOW - 60 * DAY),
    _issue(SESSION_COOKIE, _claims("x3", nbf=NOW + DAY)),
    _seal_gcm({**_claims("x4"), **_iat}, OTHER_SECRET, SESSION_COOKIE),
    _seal_cbc({**_claims("x5"), "exp": "tomorrow"}, SECRET, SESSION_COOKIE),
)


#: base64url's letters in the order of the values they stand for.
BASE64URL_ORDER = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def _respelled(segment: str, draw: st.DrawFn) -> str | None:
    """``segment`` spelled differently with the same bytes (the last letter's unused
    bits set otherwise), or ``None`` when its length leaves no bits unused."""
    unused = {2: 4, 3: 2}.get(len(segment) % 4)
    if not segment or unused is None or segment[-1] not in BASE64URL_ORDER:
        return None
    value = BASE64URL_ORDER.index(segment[-1])
    mask = (1 << unused) - 1
    low = draw(st.integers(0, mask - 1))
    low += low >= value & mask  # any of the other spellings
    return segment[:-1] + BASE64URL_ORDER[(value & ~mask) | low]


MUTATIONS = (
    "replace",
    "bit",
    "respell",
    "pad",
    "standard_alphabet",
    "swap",
    "drop",
    "duplicate",
    "truncate",
    "insert",
    "delete",
    "case",
    "header",
    "splice",
)
HEADERS = (
    {"alg": "dir", "enc": "A256CBC-HS512"},
    {"alg": "dir", "enc": "A256GCM"},
    {"alg": "dir", "enc": "A128GCM"},
    {"alg": "none", "enc": "A256GCM"},
    {"alg": "dir", "enc": "A256GCM", "zip": "DEF"},
    {"alg": "dir", "enc": "A256GCM", "crit": ["exp"]},
    {"alg": "dir", "enc": "A256CBC-HS512", "kid": "nope"},
    {"alg": "dir", "enc": "A256CBC-HS512", "kid": 7},
    {"alg": "dir", "enc": "A256CBC-HS512", "sub": "u1"},
    ["alg", "dir"],
    "dir",
)


def _mutate_once(draw: st.DrawFn, token: str) -> str:
    op = draw(st.sampled_from(MUTATIONS))
    parts = token.split(".")
    index = draw(st.integers(0, len(parts) - 1))
    if not token:
        return draw(tricky_text)
    position = draw(st.integers(0, len(token) - 1))
    if op == "replace":
        letter = draw(st.sampled_from(BASE64URL + ".=+/~ \x00\u00e9"))
        return token[:position] + letter + token[position + 1 :]
    if op == "bit":
        flipped = chr(ord(token[position]) ^ (1 << draw(st.integers(0, 7))))
        return token[:position] + flipped + token[position + 1 :]
    if op == "respell":
        candidates = [i for i, part in enumerate(parts) if len(part) % 4 in (2, 3)]
        if candidates:
            index = draw(st.sampled_from(candidates))
            parts[index] = _respelled(parts[index], draw) or parts[index]
        return ".".join(parts)
    if op == "pad":
        parts[index] += "=" * draw(st.integers(1, 3))
        return ".".join(parts)
    if op == "standard_alphabet":
        parts[index] = parts[index].replace("-", "+").replace("_", "/")
        return ".".join(parts)
    if op == "swap":
        other = draw(st.integers(0, len(parts) - 1))
        parts[index], parts[other] = parts[other], parts[index]
        return ".".join(parts)
    if op == "drop":
        del parts[index]
        return ".".join(parts)
    if op == "duplicate":
        parts.insert(index, parts[index])
        return ".".join(parts)
    if op == "truncate":
        return token[:position]
    if op == "insert":
        return token[:position] + draw(tricky_text) + token[position:]
    if op == "delete":
        end = draw(st.integers(position, len(token)))
        return token[:position] + token[end:]
    if op == "case":
        parts[index] = parts[index].swapcase()
        return ".".join(parts)
    if op == "header":
        parts[0] = _b64(json.dumps(draw(st.sampled_from(HEADERS))).encode())
        return ".".join(parts)
    donor = draw(st.sampled_from([*VALID, *map(_foreign, FOREIGN)])).token.split(".")
    if index < len(donor):
        parts[index] = donor[index]
    return ".".join(parts)


@st.composite
def mutated(draw: st.DrawFn, token: str) -> str:
    """``token`` after one to three random changes (which may cancel out)."""
    for _ in range(draw(st.integers(1, 3))):
        token = _mutate_once(draw, token)
    return token


any_token = st.sampled_from([*(issued.token for issued in VALID), *FOREIGN])


# -- asgi: driving an app the way a server does ---------------------------------------


DISCONNECT = {"http": "http.disconnect", "websocket": "websocket.disconnect"}


@dataclass
class Exchange:
    """What an app sent back for one connection, and what went wrong."""

    sent: list[Message] = field(default_factory=list)
    error: BaseException | None = None
    logged: list[logging.LogRecord] = field(default_factory=list)

    @property
    def starts(self) -> list[Message]:
        return [message for message in self.sent if message["type"] == "http.response.start"]

    @property
    def status(self) -> int | None:
        starts = self.starts
        return int(starts[0]["status"]) if starts else None

    def describe(self) -> str:
        logged = [record.getMessage() for record in self.logged]
        return f"sent={self.sent!r} error={self.error!r} logged={logged!r}"


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _errors_logged() -> Iterator[list[logging.LogRecord]]:
    handler = _ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)


def _finished(message: Message) -> bool:
    kind = message["type"]
    if kind in ("http.response.body", "websocket.http.response.body"):
        return not message.get("more_body", False)
    return kind in ("websocket.close", "lifespan.shutdown.complete", "lifespan.shutdown.failed")


async def drive(app: ASGIApp, scope: Scope, incoming: list[Message]) -> Exchange:
    """Run one connection: ``incoming`` are the client's messages, in order.

    Once they are used up, ``receive`` waits until the response is over and then says
    the client has gone, as servers do; after an ``http.disconnect`` it says so at once.
    """
    exchange = Exchange()
    pending = list(incoming)
    over = asyncio.Event()
    gone = False

    async def receive() -> Message:
        nonlocal gone
        if pending:
            message = pending.pop(0)
            gone = gone or message["type"] in DISCONNECT.values()
            return message
        if not gone:
            await over.wait()
        return {"type": DISCONNECT.get(scope["type"], "lifespan.shutdown")}

    async def send(message: Message) -> None:
        exchange.sent.append(message)
        if _finished(message):
            over.set()

    with _errors_logged() as logged:
        try:
            await asyncio.wait_for(app(scope, receive, send), timeout=10)
        except Exception as exc:
            exchange.error = exc
    exchange.logged = logged
    return exchange


def http_scope(
    method: str = "GET",
    path: str = "/",
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    root_path: str = "",
) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": root_path,
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def body_messages(chunks: list[bytes]) -> list[Message]:
    chunks = chunks or [b""]
    return [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]


# -- the apps ---------------------------------------------------------------------------


#: What the app behind the middleware saw as ``request.state.session``, per connection.
SEEN: list[Any] = []


async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
    """A catch-all app: notes the session it was given and answers 200 (or closes)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        SEEN.append(scope["state"]["session"])
        await receive()
        await send({"type": "websocket.close", "code": 1000})
        return
    SEEN.append(Request(scope).state.session)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _keep_link(identifier: str, url: str, request: Request) -> None:
    """The email provider's mailer: the links go nowhere."""


@functools.cache
def apps() -> tuple[AuthMiddleware, ...]:
    """The configurations the whole-app properties run against.

    The default (the Host header decides the origin), behind a trusted proxy, and a fixed
    public ``https`` URL with users stored and magic links.
    """
    clock = Clock(NOW)
    common: dict[str, Any] = {"secret": list(SECRETS), "clock": clock}
    credentials = Credentials(authorize=authorize)
    return (
        AuthMiddleware(recorder, config=AuthConfig(providers=[credentials], **common)),
        AuthMiddleware(
            recorder, config=AuthConfig(providers=[credentials], trust_host=True, **common)
        ),
        AuthMiddleware(
            recorder,
            config=AuthConfig(
                providers=[credentials, Email(send=_keep_link)],
                adapter=MemoryAdapter(),
                strategy="jwt",
                url="https://app.example.com",
                **common,
            ),
        ),
    )


CSRF_TOKEN, CSRF_COOKIE = csrf.issue(SECRET)

#: Whole requests through an app cost milliseconds each, so the normal run tries half as
#: many of them (at least 1,000); ``make fuzz`` tries as many as of any other property.
whole_app = (
    settings()
    if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
    else settings(max_examples=max(1000, settings().max_examples // 2))
)


# ===================================================================================
# The Cookie header
# ===================================================================================


@given(
    header=st.one_of(
        tricky_text,
        st.lists(st.tuples(cookie_names, cookie_values)).map(
            lambda pairs: "; ".join(f"{name}={value}" for name, value in pairs)
        ),
    )
)
def test_cookie_header_parses_any_text_into_names_and_values(header: str) -> None:
    parsed = cookies.parse_cookie_header(header)
    assert isinstance(parsed, dict)
    for name, value in parsed.items():
        assert isinstance(name, str) and isinstance(value, str)
        assert ";" not in name and "=" not in name
        assert name == name.strip(" \t")
        if "%" not in header:  # percent-decoding is the only way to a ';' in a value
            assert ";" not in value
            assert value in header


#: RFC 6265's cookie-name: an HTTP token.
COOKIE_NAME_LETTERS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"


@given(
    name=st.text(alphabet=COOKIE_NAME_LETTERS, min_size=1, max_size=30),
    value=st.text(),
    before=st.lists(st.tuples(st.text(alphabet=string.ascii_letters, min_size=1), st.text())),
)
def test_cookie_serialize_then_parse_gives_the_value_back(
    name: str, value: str, before: list[tuple[str, str]]
) -> None:
    set_cookie = cookies.serialize(CookieSpec(name=name), value)
    sent = set_cookie.split(";")[0]  # what a browser sends back: name=value
    others = [
        cookies.serialize(CookieSpec(name=other + "-x"), text).split(";")[0]
        for other, text in before
    ]
    assert cookies.parse_cookie_header("; ".join([*others, sent]))[name] == value


@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(["a", "b", SESSION_COOKIE, "a.0"]), st.text()), max_size=8
    )
)
def test_cookie_header_first_of_repeated_names_wins(pairs: list[tuple[str, str]]) -> None:
    # As the `cookie` package Auth.js reads cookies with: a browser sends the cookie of the
    # most specific path first, and a planted duplicate must not shadow it.
    header = "; ".join(f"{name}={quote(value, safe='')}" for name, value in pairs)
    first: dict[str, str] = {}
    for name, value in pairs:
        first.setdefault(name, value)
    assert cookies.parse_cookie_header(header) == first


# ===================================================================================
# Cookie chunks
# ===================================================================================


def _long_values(limit: int) -> st.SearchStrategy[str]:
    filled = st.builds(
        lambda piece, length: (piece * length)[:length],
        st.text(min_size=1, max_size=5),
        st.sampled_from(
            [
                CHUNK_SIZE - 1,
                CHUNK_SIZE,
                CHUNK_SIZE + 1,
                2 * CHUNK_SIZE,
                DEFAULT_MAX_CHUNKS * CHUNK_SIZE,
                DEFAULT_MAX_CHUNKS * CHUNK_SIZE + 1,
            ]
        )
        | st.integers(0, limit),
    )
    return st.one_of(st.text(), filled)


@given(
    name=st.sampled_from(SESSION_NAMES),
    value=_long_values(CHUNK_SIZE * (DEFAULT_MAX_CHUNKS + 1)),
    stale=st.lists(st.sampled_from(["", ".0", ".1", ".2", ".3", ".4", ".5"]), unique=True),
    other=st.dictionaries(st.sampled_from(["authjs.csrf-token", "theme", "a.0"]), st.text()),
)
def test_chunked_value_written_then_read_back_exactly(
    name: str, value: str, stale: list[str], other: dict[str, str]
) -> None:
    # A browser's cookie jar: the cookies a previous token left, then the new ones set.
    jar = {key: quote(text) for key, text in other.items()}
    jar.update({name + suffix: "stale" for suffix in stale})
    present = cookies.present_names(cookies.parse_cookie_header(_cookie_header(jar)), name)
    spec = CookieSpec(name=name, secure=name.startswith("__Secure-"))
    if len(value) > CHUNK_SIZE * DEFAULT_MAX_CHUNKS:
        with pytest.raises(CookieTooLargeError):
            cookies.write_chunked(spec, value, expires=None, present=present)
        return
    for set_cookie in cookies.write_chunked(spec, value, expires=None, present=present):
        cookie, *attributes = set_cookie.split("; ")
        cookie_name, _, cookie_value = cookie.partition("=")
        if "Max-Age=0" in attributes:
            jar.pop(cookie_name, None)
        else:
            jar[cookie_name] = cookie_value
    assert cookies.read_chunked(cookies.parse_cookie_header(_cookie_header(jar)), name) == value


def _cookie_header(jar: Mapping[str, str]) -> str:
    return "; ".join(f"{key}={value}" for key, value in jar.items())


@given(
    name=st.sampled_from(SESSION_NAMES),
    jar=st.dictionaries(cookie_names, cookie_values, max_size=10),
)
def test_read_chunked_of_any_cookies_is_a_value_or_none(name: str, jar: dict[str, str]) -> None:
    value = cookies.read_chunked(jar, name)
    assert value is None or isinstance(value, str)
    if value is not None:
        # Either the plain cookie, or chunks 0..n-1 joined in order.
        joined = {jar.get(name)}
        index = 0
        while f"{name}.{index}" in jar:
            joined.add("".join(jar[f"{name}.{i}"] for i in range(index + 1)))
            index += 1
        assert value in joined
    # The names a new cookie would expire are cookies the request really carried.
    assert set(cookies.present_names(jar, name)) <= set(jar)


# ===================================================================================
# Session tokens
# ===================================================================================


random_tokens = st.one_of(
    st.text(),
    tricky_text,
    st.lists(st.text(alphabet=BASE64URL, max_size=60), min_size=1, max_size=7).map(".".join),
    st.binary(max_size=200).map(lambda data: _b64(data)),
)


@given(token=random_tokens, salt=st.sampled_from(SESSION_NAMES))
def test_jwt_decode_of_random_text_raises_only_jwt_decode_error(token: str, salt: str) -> None:
    with pytest.raises(JWTDecodeError):
        CODECS[salt].decode(token, now=NOW)


@given(
    issued=st.sampled_from([*VALID, *map(_foreign, FOREIGN)]),
    data=st.data(),
    salt=st.sampled_from(SESSION_NAMES),
)
def test_jwt_decode_reads_only_the_tokens_we_issued(
    issued: Issued, data: st.DataObject, salt: str
) -> None:
    token = data.draw(mutated(issued.token), label="token")
    if token == issued.token and issued.claims and salt == issued.salt:
        assert CODECS[salt].decode(token, now=NOW) == issued.claims
        return
    try:
        claims = CODECS[salt].decode(token, now=NOW)
    except JWTDecodeError:
        return
    pytest.fail(f"a token we did not issue was read: {token!r} -> {claims!r}")


# ===================================================================================
# CSRF
# ===================================================================================


#: (token, cookie value) pairs: two valid (current and previous secret), one foreign.
CSRF_PAIRS = (csrf.issue(SECRET), csrf.issue(OLD_SECRET))
FOREIGN_CSRF = csrf.issue(OTHER_SECRET)
HEX = "0123456789abcdef"


@st.composite
def csrf_cookies(draw: st.DrawFn) -> str | None:
    issued = draw(st.sampled_from([*CSRF_PAIRS, FOREIGN_CSRF]))[1]
    value: str | None = draw(
        st.one_of(
            st.none(),
            tricky_text,
            st.just(issued),
            mutated(issued),
            st.builds(
                lambda token, digest, separator: token + separator + digest,
                st.text(alphabet=HEX, min_size=64, max_size=64),
                st.text(alphabet=HEX + HEX.upper(), min_size=64, max_size=64),
                st.sampled_from(["|", "||", "", "%7C", " | "]),
            ),
            st.builds(
                lambda token, digest: f"{token}|{digest}",
                st.text(min_size=64, max_size=64),
                st.text(min_size=64, max_size=64),
            ),
            st.just(issued.upper()),
            st.just(issued.split("|")[0] + "|" + issued.split("|")[1].upper()),
        )
    )
    return value


submitted_tokens = st.one_of(
    st.none(),
    st.integers(),
    st.binary(max_size=64),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    tricky_text,
    st.sampled_from([pair[0] for pair in (*CSRF_PAIRS, FOREIGN_CSRF)]),
    st.sampled_from([pair[0] for pair in CSRF_PAIRS]).flatmap(mutated),
    st.sampled_from([pair[0].upper() for pair in CSRF_PAIRS]),
)


@given(cookie=csrf_cookies(), submitted=submitted_tokens)
def test_csrf_verifies_only_the_token_of_a_cookie_we_issued(
    cookie: str | None, submitted: object
) -> None:
    issued = {value: token for token, value in CSRF_PAIRS}
    verified = csrf.verify(cookie, submitted, SECRETS)
    assert verified is (cookie in issued and submitted == issued[cookie])
    token = csrf.token_from_cookie(cookie, SECRETS)
    assert token == (None if cookie is None else issued.get(cookie))


# ===================================================================================
# Redirects
# ===================================================================================


REDIRECT_BASES = (
    "https://app.example.com",
    "http://testserver",
    "http://localhost:8000",
    "https://app.example.com/base",
    "http://[::1]:8080",
)
TRICKY_URLS = (
    "/",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    " //evil.example",
    "\x00//evil.example",
    "\u2028//evil.example",
    "\ufeff//evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https:///evil.example",
    "https:\\\\evil.example",
    "http:\\/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "mailto:a@evil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
    "%2F%2Fevil.example",
    "/%09/evil.example",
    "?//evil.example",
    "#//evil.example",
    ".//evil.example",
    "/.//evil.example",
    "https://evil.example",
    "https://evil.example#@app.example.com",
    "https://evil.example?@app.example.com",
    "https://app.example.com@evil.example",
    "https://app.example.com:443@evil.example",
    "https://app.example.com.evil.example",
    "https://app.example.com\u3002evil.example",
    "https://app.example.com%2Eevil.example",
    "https://app.example.com%40evil.example",
    "https://\uff41pp.example.com",
    "https://app.example.com\u2100evil.example",
    "https://APP.EXAMPLE.COM",
    "HTTPS://app.example.com",
    "https://app.example.com:443",
    "https://app.example.com:0443",
    "https://app.example.com:8443",
    "https://app.example.com:99999",
    "https://app.example.com:\uff14\uff14\uff13",
    "https://app.example.com.",
    "http://app.example.com",
    "http://testserver",
    "http://testserver:80",
    "http://testserver@evil.example",
    "http://localhost:8000",
    "http://localhost:8001",
    "http://[::1]:8080",
    "http://[::1",
    "http://[evil.example]",
    "ftp://testserver",
)
redirect_urls = st.one_of(
    st.sampled_from(TRICKY_URLS),
    st.builds(
        lambda start, rest: start + rest,
        st.sampled_from(TRICKY_URLS + REDIRECT_BASES),
        st.one_of(tricky_text, st.sampled_from(["/x", "/@evil.example", "\\@evil.example"])),
    ),
    tricky_text,
    st.text(alphabet="/\\:@.%?#", max_size=12),
)


def browser_origin(url: str) -> tuple[str, str, int] | None:
    """Where a browser would send a request for ``url``: scheme, host and port.

    Written from the WHATWG URL standard's rules for http(s), independently of
    ``urllib``: tabs and newlines vanish, slashes and backslashes after the scheme
    are alike, the host follows the last ``@``, is percent-decoded, and compatibility
    characters fold (NFKC) before comparison.
    """
    url = url.strip("".join(map(chr, range(33)))).translate({9: None, 10: None, 13: None})
    scheme, colon, rest = url.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in ("http", "https"):
        return None
    rest = rest.lstrip("/\\")
    authority = rest
    for end in "/\\?#":
        authority = authority.split(end)[0]
    host = authority.rpartition("@")[2]
    port = ""
    if host.startswith("["):
        host, bracket, after = host.partition("]")
        host += bracket
        port = after.removeprefix(":") if after.startswith(":") else after
    elif ":" in host:
        host, _, port = host.partition(":")
    host = unicodedata.normalize("NFKC", unquote(host)).lower().rstrip(".")
    default = 443 if scheme == "https" else 80
    if port and not (port.isascii() and port.isdigit()):
        return None
    return scheme, host, int(port) if port else default


def _assert_stays_on(result: str, origins: tuple[str, ...]) -> None:
    assert isinstance(result, str)
    assert all(" " < char != "\\" for char in result), result
    where = browser_origin(result)
    assert where is not None and where in {browser_origin(origin) for origin in origins}, result


@given(
    url=st.one_of(redirect_urls, st.none(), st.integers(), st.binary(max_size=8)),
    base=st.sampled_from(REDIRECT_BASES),
)
def test_redirect_target_stays_on_the_apps_origin(url: object, base: str) -> None:
    result = same_origin_url(url, base)
    _assert_stays_on(result, (base,))
    if isinstance(url, str) and url.startswith("/") and result != base:
        assert result == base + url


PARTNER = "https://partner.example.org"


def _partner_or_own(url: object, base_url: str) -> str:
    # An app's own rule, as apps write it: its partner's pages, else the default.
    if isinstance(url, str) and url.startswith(PARTNER + "/"):
        return url
    return same_origin_url(url, base_url)


@functools.cache
def redirect_apps() -> tuple[AuthMiddleware, AuthMiddleware]:
    common: dict[str, Any] = {
        "secret": SECRET,
        "clock": Clock(NOW),
        "providers": [Credentials(authorize=authorize)],
    }
    return (
        AuthMiddleware(recorder, config=AuthConfig(**common)),
        AuthMiddleware(
            recorder, config=AuthConfig(callbacks=Callbacks(redirect=_partner_or_own), **common)
        ),
    )


@given(
    url=redirect_urls,
    with_callback=st.booleans(),
    root_path=st.sampled_from(["", "/base"]),
    field_name=st.sampled_from(["callbackUrl", "callbackurl"]),
)
async def test_sign_out_redirect_stays_on_the_apps_origin(
    url: str, with_callback: bool, root_path: str, field_name: str
) -> None:
    app = redirect_apps()[with_callback]
    body = urlencode({"csrfToken": CSRF_TOKEN, field_name: url}).encode()
    scope = http_scope(
        "POST",
        root_path + "/auth/signout",
        root_path=root_path,
        headers=[
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"cookie", f"authjs.csrf-token={CSRF_COOKIE}".encode()),
            (b"x-auth-return-redirect", b"1"),
        ],
    )
    exchange = await drive(app, scope, body_messages([body]))
    assert exchange.error is None and not exchange.logged, exchange.describe()
    assert exchange.status == 200, exchange.describe()
    target = json.loads(b"".join(m.get("body", b"") for m in exchange.sent[1:]))["url"]
    origins = ("http://testserver", PARTNER) if with_callback else ("http://testserver",)
    _assert_stays_on(target, origins)


# ===================================================================================
# Email addresses
# ===================================================================================


email_like = st.one_of(
    st.emails(),
    tricky_text,
    st.builds(
        lambda local, at, domain: local + at + domain,
        tricky_text,
        st.sampled_from(["@", "\uff20", "@@", "\ufe6b", " @ ", "@\u200b"]),
        tricky_text,
    ),
    st.builds(
        lambda email, noise: email + noise,
        st.emails(),
        st.sampled_from([" ", "\u3000", "\u00a0", "\x00", "\u2028", "\u200b", "\u0130", "\u212a"]),
    ),
)


@given(value=st.one_of(email_like, st.none(), st.integers(), st.binary(max_size=10)))
def test_email_normalises_to_one_canonical_address_or_none(value: object) -> None:
    email = normalize_email(value)
    if email is None:
        return
    assert isinstance(value, str)
    assert email.count("@") == 1
    local, domain = email.split("@")
    assert local and domain
    assert not any(char.isspace() or unicodedata.category(char)[0] == "C" for char in email)
    # Nothing that quotes, comments, lists or routes addresses (``ada%evil@example.com``).
    assert not any(char in email for char in ',;:<>()[]\\"%!')
    assert normalize_email(email) == email


plain_addresses = st.builds(
    "{}@{}".format,
    st.text(alphabet=string.ascii_letters + string.digits + "._+-", min_size=1, max_size=64),
    st.lists(
        st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=20),
        min_size=1,
        max_size=4,
    ).map(lambda labels: ".".join([*labels, "example"])),
).filter(lambda email: len(email) <= 254)


@given(email=plain_addresses)
def test_email_of_a_plain_address_is_its_lower_case(email: str) -> None:
    assert normalize_email(email) == email.lower()
    assert normalize_email(f"  {email.upper()}\t") == email.lower()


# ===================================================================================
# Request bodies
# ===================================================================================


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
form_fields = st.dictionaries(
    st.sampled_from(["csrfToken", "email", "password", "callbackUrl", "data", "id"]) | st.text(),
    st.text(),
    max_size=8,
)
#: The two ways browsers and ``fetch`` send what the routes read.
FORM_TYPES = (
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
)
JSON_TYPES = ("application/json", "APPLICATION/JSON", "application/json; charset=utf-8")
CONTENT_TYPES = (
    *FORM_TYPES,
    *JSON_TYPES,
    "application/json; charset=latin-1",
    " application/json ;",
    "multipart/form-data; boundary=x",
    "text/plain",
    "",
    "application/json\x00",
)


@dataclass(frozen=True)
class Body:
    """A request body, its ``Content-Type`` (``None``: no header) and what it encodes."""

    raw: bytes
    content_type: str | None
    form: dict[str, str] | None = None  # when it is a urlencoded form
    json: object = None  # when it is JSON: the value it encodes (``None`` else)


@st.composite
def bodies(draw: st.DrawFn) -> Body:
    kind = draw(st.sampled_from(["form", "json", "bytes", "text", "huge", "deep"]))
    content_type: str | None = draw(st.sampled_from(CONTENT_TYPES) | st.none() | tricky_text)
    if kind == "form":
        form = draw(form_fields)
        return Body(urlencode(form).encode(), content_type, form=form)
    if kind == "json":
        value = draw(json_values | form_fields)
        return Body(json.dumps(value).encode(), content_type, json=value)
    if kind == "bytes":
        return Body(draw(st.binary(max_size=300)), content_type)
    if kind == "text":
        return Body(draw(tricky_text).encode(), content_type)
    if kind == "huge":
        size = draw(st.integers(MAX_BODY_SIZE - 10, MAX_BODY_SIZE + 10))
        return Body(b"a=" + b"b" * size, content_type)
    depth = draw(st.integers(1, 20_000))  # past the recursion limit of any parser
    return Body(b"[" * depth + b"]" * draw(st.integers(0, depth)), content_type)


@st.composite
def pieces(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """``body`` cut into the pieces a server hands over one message at a time."""
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    return [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True)]


CONTENT_LENGTHS = (
    "",
    "-1",
    "+5",
    " 5",
    "5 ",
    "1e3",
    "0x10",
    "\u00b2",
    "\u0661",
    "\uff15",
    "99999999999999999999",
    "65537",
)


@st.composite
def content_lengths(draw: st.DrawFn, body: bytes) -> str | None:
    return draw(
        st.one_of(
            st.none(),
            st.just(str(len(body))),
            st.sampled_from(CONTENT_LENGTHS),
            st.integers(0, 2 * MAX_BODY_SIZE).map(str),
        )
    )


def header_bytes(text: str) -> bytes:
    """``text`` as the bytes of a header that servers decode to it (Latin-1), or as UTF-8
    when it has characters Latin-1 has not."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode()


def _body_headers(body: Body, length: str | None) -> list[tuple[bytes, bytes]]:
    headers = []
    if body.content_type is not None:
        headers.append((b"content-type", header_bytes(body.content_type)))
    if length is not None:
        headers.append((b"content-length", header_bytes(length)))
    return headers


@given(body=bodies(), data=st.data())
async def test_read_body_parses_any_body_or_refuses_it_as_too_large(
    body: Body, data: st.DataObject
) -> None:
    length = data.draw(content_lengths(body.raw), label="content-length")
    scope = http_scope("POST", "/auth/callback/credentials", headers=_body_headers(body, length))
    messages = body_messages(data.draw(pieces(body.raw)))

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    ctx = RequestContext(apps()[0].config, scope, None)
    auth = AuthRequest(Request(scope, receive), ctx, "credentials")
    declared = length is not None and length.isascii() and length.isdigit()
    try:
        await auth.read_body()
    except BodyTooLarge:
        # Refused only for a body over the limit, or one declared so (or unreadably).
        assert len(body.raw) > MAX_BODY_SIZE or (
            length is not None and not (declared and int(length) <= MAX_BODY_SIZE)
        )
        return
    assert isinstance(auth.form, dict)
    if length is not None and not declared:
        return  # a body of unknown length may be refused or read as empty, not guessed at
    assert len(body.raw) <= MAX_BODY_SIZE
    if body.content_type in JSON_TYPES and isinstance(body.json, dict):
        assert auth.form == body.json
    elif body.content_type in FORM_TYPES and body.form is not None:
        assert auth.form == body.form


AUTH_PATHS = (
    "/auth/signin",
    "/auth/signin/credentials",
    "/auth/signin/email",
    "/auth/signin/nope",
    "/auth/callback/credentials",
    "/auth/callback/email",
    "/auth/callback/nope",
    "/auth/callback",
    "/auth/signout",
    "/auth/session",
    "/auth/csrf",
    "/auth/providers",
    "/auth/sessions",
    "/auth/sessions/revoke",
    "/auth/sessions/revoke-others",
    "/auth/error",
    "/auth/verify-request",
    "/auth/",
    "/auth/nope",
)


@whole_app
@given(
    app_index=st.integers(0, 2),
    path=st.sampled_from(AUTH_PATHS),
    data=st.data(),
    with_csrf=st.booleans(),
    disconnect_after=st.none() | st.integers(0, 3),
)
async def test_auth_posts_of_any_body_never_fail(
    app_index: int,
    path: str,
    data: st.DataObject,
    with_csrf: bool,
    disconnect_after: int | None,
) -> None:
    body = data.draw(bodies(), label="body")
    if with_csrf:
        # Deep enough to reach the handlers: a genuine CSRF pair, then anything.
        fields = {"csrfToken": CSRF_TOKEN, **data.draw(form_fields, label="fields")}
        if body.content_type and "json" in body.content_type.lower():
            raw = json.dumps(fields).encode()
        else:
            raw = urlencode(fields).encode() + data.draw(st.sampled_from([b"", b"&", b"&%=&"]))
        body = Body(raw, body.content_type)
    length = data.draw(content_lengths(body.raw), label="content-length")
    headers = [
        (b"cookie", f"{CSRF_COOKIES[0]}={CSRF_COOKIE}; {CSRF_COOKIES[1]}={CSRF_COOKIE}".encode()),
        *_body_headers(body, length),
    ]
    messages = body_messages(data.draw(pieces(body.raw)))
    if disconnect_after is not None:
        messages = [*messages[:disconnect_after], {"type": "http.disconnect"}]
    exchange = await drive(apps()[app_index], http_scope("POST", path, headers=headers), messages)
    _assert_answered(exchange, disconnected=disconnect_after is not None)


def _assert_answered(exchange: Exchange, *, disconnected: bool) -> None:
    """The app answered (or the client left first), never with an error."""
    assert exchange.error is None, exchange.describe()
    assert not exchange.logged, exchange.describe()
    starts = exchange.starts
    assert len(starts) <= 1, exchange.describe()
    if not disconnected:
        assert len(starts) == 1, exchange.describe()
        assert _finished(exchange.sent[-1]), exchange.describe()
    if starts:
        status = exchange.status
        assert status is not None and 100 <= status <= 599, exchange.describe()
        assert status != 500, exchange.describe()


# ===================================================================================
# The whole middleware
# ===================================================================================


@dataclass(frozen=True)
class Connection:
    """One connection as a server hands it over: the scope and the client's messages."""

    scope: Scope
    incoming: list[Message]
    #: ``jti`` of the tokens we issued that the Cookie header carries verbatim.
    carried: frozenset[str]
    disconnected: bool


@st.composite
def cookie_headers(draw: st.DrawFn) -> tuple[list[bytes], frozenset[str]]:
    """Cookie headers mixing our tokens (whole or chunked), foreign and broken ones."""
    session_names = st.sampled_from(SESSION_NAMES) | near_names
    pairs: list[tuple[str, str]] = []
    carried: set[str] = set()
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(
            st.sampled_from(["issued", "chunks", "foreign", "mutated", "random", "csrf", "huge"])
        )
        if kind in ("issued", "chunks"):
            issued = draw(st.sampled_from(VALID))
            carried.add(issued.claims["jti"])
            if kind == "issued":
                pairs.append((draw(session_names), issued.token))
                continue
            name = draw(st.sampled_from(SESSION_NAMES))
            count = draw(st.integers(1, 4))
            size = -(-len(issued.token) // count)
            chunks = [
                (f"{name}.{index}", issued.token[index * size : (index + 1) * size])
                for index in range(count)
            ]
            pairs.extend(draw(st.permutations(chunks)))
        elif kind == "foreign":
            pairs.append((draw(session_names), draw(st.sampled_from(FOREIGN))))
        elif kind == "mutated":
            pairs.append((draw(session_names), draw(any_token.flatmap(mutated))))
        elif kind == "random":
            pairs.append((draw(cookie_names), draw(cookie_values)))
        elif kind == "csrf":
            value = draw(st.just(CSRF_COOKIE) | cookie_values)
            pairs.append((draw(st.sampled_from(CSRF_COOKIES)), value))
        else:
            pairs.append((draw(session_names), "A" * draw(st.integers(4000, 70_000))))
    # A change to a token may undo itself, so what counts is what the header carries.
    carried.update(VALID_JTIS[value] for _, value in pairs if value in VALID_JTIS)
    encoded = [
        f"{name}={quote(value, safe='') if draw(st.booleans()) else value}" for name, value in pairs
    ]
    separator = draw(st.sampled_from(["; ", ";", ";;", " ; ", "; ;"]))
    # HTTP/2 clients may send the cookies over several headers.
    cuts = sorted(draw(st.lists(st.integers(0, len(encoded)), max_size=2)))
    groups = [encoded[a:b] for a, b in zip([0, *cuts], [*cuts, len(encoded)], strict=True)]
    headers = [
        header_bytes(separator.join(group))
        for group in groups
        if len(group) > 0 or draw(st.booleans())
    ]
    return headers, frozenset(carried)


HOSTS = (
    "testserver",
    "localhost",
    "localhost:8000",
    "127.0.0.1:8000",
    "[::1]",
    "[::1]:8000",
    "app.example.com",
    "evil.example",
    "",
    "testserver:99999",
    "[::1",
    "a b",
    "testserver, evil.example",
)
HEADER_NAMES = (
    b"content-type",
    b"content-length",
    b"origin",
    b"sec-fetch-site",
    b"x-forwarded-host",
    b"x-forwarded-proto",
    b"x-forwarded-for",
    b"user-agent",
    b"x-auth-return-redirect",
    b"transfer-encoding",
    b"accept",
)
header_values = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"https",
            b"http, https",
            b"1",
            b"same-origin",
            b"same-site",
            b"cross-site",
            b"none",
            b"null",
            b"http://testserver",
            b"https://app.example.com",
            b"https://evil.example",
            b"application/json",
            b"\xb2",  # "²" to a server: a digit to str.isdigit(), not to int()
            b"\xc2\xb2",
            b"\xff\xfe",
            b"10.0.0.1, 203.0.113.9",
        ]
    ),
    st.integers(1, 20_000).map(lambda size: b"a" * size),
)
PATHS = (
    *AUTH_PATHS,
    "/",
    "",
    "/x",
    "/protected",
    "/ws",
    "/auth",
    "/authx",
    "//auth/session",
    "/AUTH/session",
    "/auth/session/",
    "/auth/signin/credentials/x",
    "/auth/callback/credentials/",
    "/app/auth/session",
    "/x/auth/session",
)
METHODS = ("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "get", "")


@st.composite
def connections(draw: st.DrawFn) -> Connection:
    kind = draw(st.sampled_from(["http"] * 6 + ["websocket"] * 2 + ["lifespan"]))
    asgi = {"version": "3.0", "spec_version": draw(st.sampled_from(["2.0", "2.3", "2.4"]))}
    if kind == "lifespan":
        scope: Scope = {"type": "lifespan", "asgi": asgi, "state": {}}
        incoming: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        return Connection(scope, incoming, frozenset(), disconnected=False)

    root_path = draw(st.sampled_from(["", "", "/app", "/auth", "/app/"]) | tricky_text)
    path = draw(
        st.one_of(
            st.sampled_from(PATHS),
            st.builds(
                lambda start, rest: start + rest,
                st.sampled_from(["/auth/", "/auth/signin/", "/auth/callback/", "/"]),
                tricky_text,
            ),
            tricky_text,
        )
    )
    if draw(st.booleans()):
        path = root_path + path
    query = draw(
        st.one_of(
            st.binary(max_size=60),
            st.builds(
                lambda fields: urlencode(fields).encode(),
                st.dictionaries(
                    st.sampled_from(["callbackUrl", "error", "code", "token", "email"]),
                    redirect_urls | tricky_text,
                    max_size=4,
                ),
            ),
        )
    )
    cookie_values_, carried = draw(cookie_headers())
    headers: list[tuple[bytes, bytes]] = [(b"cookie", value) for value in cookie_values_]
    host = draw(st.none() | st.sampled_from(HOSTS) | tricky_text)
    if host is not None:
        headers.extend([(b"host", header_bytes(host))] * draw(st.integers(1, 2)))
    headers.extend(
        draw(
            st.lists(
                st.tuples(
                    st.sampled_from(HEADER_NAMES) | st.binary(min_size=1, max_size=12),
                    header_values,
                ),
                max_size=6,
            )
        )
    )
    body = Body(b"", None)
    if kind == "http":
        body = draw(bodies())
        length = draw(content_lengths(body.raw))
        headers.extend(_body_headers(body, length))
    scope = {
        "type": kind,
        "asgi": asgi,
        "http_version": draw(st.sampled_from(["1.0", "1.1", "2"])),
        "path": path,
        "query_string": query,
        "root_path": root_path,
        "headers": draw(st.permutations(headers)),
        "client": draw(
            st.none() | st.tuples(st.sampled_from(["127.0.0.1", "::1", ""]), st.integers(0, 65535))
        ),
        "server": draw(
            st.none()
            | st.sampled_from([("testserver", 80), ("127.0.0.1", 8000), ("unix-socket", None)])
        ),
    }
    if draw(st.booleans()):
        scope["scheme"] = draw(
            st.sampled_from(["http", "https"] if kind == "http" else ["ws", "wss"])
            | st.sampled_from(["", "HTTPS", "ftp", "https "])
        )
    if draw(st.booleans()):
        scope["raw_path"] = path.encode()
    if draw(st.booleans()):
        scope["state"] = {}
    disconnected = draw(st.booleans()) and draw(st.booleans())
    if kind == "websocket":
        scope["subprotocols"] = []
        incoming = [{"type": "websocket.connect"}]
        if disconnected:
            incoming.append({"type": "websocket.disconnect", "code": 1001})
        return Connection(scope, incoming, carried, disconnected)
    scope["method"] = draw(
        st.sampled_from(METHODS) | st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=8)
    )
    incoming = body_messages(draw(pieces(body.raw)))
    if disconnected:
        incoming = [*incoming[: draw(st.integers(0, len(incoming)))], {"type": "http.disconnect"}]
    return Connection(scope, incoming, carried, disconnected)


@whole_app
@given(app_index=st.integers(0, 2), connection=connections())
async def test_middleware_answers_anything_and_forges_no_session(
    app_index: int, connection: Connection
) -> None:
    SEEN.clear()
    exchange = await drive(apps()[app_index], connection.scope, connection.incoming)
    kind = connection.scope["type"]
    if kind == "http":
        _assert_answered(exchange, disconnected=connection.disconnected)
    else:
        assert exchange.error is None and not exchange.logged, exchange.describe()
    if kind != "http":  # accepted and closed, or refused; the lifespan ran to its end
        assert exchange.sent and _finished(exchange.sent[-1]), exchange.describe()
    event(f"{kind} {exchange.status}")
    for session in SEEN:
        if session is not None:
            event("a session was resolved")
            assert session.claims["jti"] in connection.carried, session.claims


@given(
    issued=st.sampled_from([issued for issued in VALID if issued.salt == SESSION_COOKIE]),
    junk=st.text(alphabet=BASE64URL + ".", min_size=1, max_size=60),
    junk_first=st.booleans(),
    between=st.lists(st.sampled_from(["theme=dark", "a=1", "authjs.csrf-token=x"]), max_size=3),
)
async def test_middleware_reads_the_first_of_repeated_session_cookies(
    issued: Issued, junk: str, junk_first: bool, between: list[str]
) -> None:
    # A sibling subdomain can plant a second session cookie; the browser sends its own
    # (more specific) one first, and Auth.js reads the first.
    first, second = (junk, issued.token) if junk_first else (issued.token, junk)
    header = "; ".join([f"{SESSION_COOKIE}={first}", *between, f"{SESSION_COOKIE}={second}"])
    SEEN.clear()
    exchange = await drive(
        apps()[0], http_scope(headers=[(b"cookie", header.encode())]), body_messages([])
    )
    _assert_answered(exchange, disconnected=False)
    [session] = SEEN
    if junk_first:
        assert session is None
    else:
        assert session is not None and session.claims["jti"] == issued.claims["jti"]
