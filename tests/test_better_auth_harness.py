"""The Better Auth harness (tests/support/better_auth.py) against real Better Auth.

Beyond proving the harness, these tests pin down what Better Auth 1.7 does on the wire
and in its tables: cookie names and attributes, how the session token is signed, the
three cookie cache formats, what its Origin check asks for, and how each database holds
dates. That is what a Python peer sharing Better Auth's sessions has to reproduce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote

import pytest
from bson import ObjectId
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwe, jwt
from joserfc.jwk import OctKey

from tests.support.better_auth import (
    DATABASE_KINDS,
    SECRET,
    BetterAuthRequestError,
    BetterAuthServer,
    Cookies,
    Database,
    SetCookie,
    better_auth,
    database_for,
    rows,
    sqlite_database,
)

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"
SESSION_TOKEN = "better-auth.session_token"
SESSION_DATA = "better-auth.session_data"
# Better Auth's session token: 32 letters and digits (its generateId).
TOKEN = re.compile(r"[A-Za-z0-9]{32}")
# Dates in its JSON (getSession, sign-up): JavaScript's Date.toISOString().
JSON_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# encodeURIComponent leaves these as they are; quote() with them safe is the same.
_URI_COMPONENT_SAFE = "-_.!~*'()"


@pytest.fixture(params=DATABASE_KINDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A fresh database of each kind Better Auth runs on here."""
    return database_for(request.param, request, tmp_path)


@pytest.fixture
def sqlite(tmp_path: Path) -> Database:
    """For tests of Better Auth's cookies, which do not depend on the database."""
    return sqlite_database(tmp_path / "better-auth.db")


def sign(token: str, secret: str = SECRET) -> str:
    """A session token cookie value as Better Auth (better-call's signCookieValue)
    makes it: ``<token>.<standard base64 HMAC-SHA256 of the token>``, percent-encoded."""
    digest = hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest()
    return quote(f"{token}.{base64.b64encode(digest).decode()}", safe=_URI_COMPONENT_SAFE)


def unsign(cookie: SetCookie, secret: str = SECRET) -> str:
    """The token in a session token cookie, once its signature is checked."""
    token, _, _ = unquote(cookie.value).rpartition(".")
    assert TOKEN.fullmatch(token), cookie.value
    assert cookie.value == sign(token, secret)
    return token


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- Sign-up, sessions and sign-out, on each database ---


def test_sign_up_signs_in_and_sign_out_ends_the_session(database: Database) -> None:
    with better_auth(database) as server:
        signed_up = server.sign_up(EMAIL, PASSWORD, "Ada")
        # Without the cookie cache, the session token is the only cookie.
        assert signed_up.names == [SESSION_TOKEN] == [server.session_token_cookie]
        user = signed_up.body["user"]
        assert user["email"] == EMAIL
        assert user["name"] == "Ada"
        assert user["emailVerified"] is False
        assert JSON_DATE.fullmatch(user["createdAt"])
        token = unsign(signed_up[SESSION_TOKEN])
        assert signed_up.body["token"] == token

        found = server.get_session(signed_up.header)
        assert found is not None
        assert found["user"]["id"] == user["id"]
        assert found["user"]["email"] == EMAIL
        assert found["session"]["token"] == token
        assert found["session"]["userId"] == user["id"]
        assert JSON_DATE.fullmatch(found["session"]["expiresAt"])

        signed_out = server.sign_out(signed_up.header)
        assert signed_out.body == {"success": True}
        cleared = signed_out[SESSION_TOKEN]
        assert cleared.value == ""
        assert cleared.max_age == 0
        assert server.get_session(signed_up.header) is None
        assert server.get_session(signed_up.header, disable_cookie_cache=True) is None


def test_wrong_cookies_give_no_session(database: Database) -> None:
    with better_auth(database) as server:
        signed_up = server.sign_up(EMAIL, PASSWORD, "Ada")
        value = signed_up[SESSION_TOKEN].value
        token = unsign(signed_up[SESSION_TOKEN])
        tampered = value[:-5] + ("A" if value[-5] != "A" else "B") + value[-4:]
        other_secret = "another-secret-of-thirty-two-characters-or-more"
        for header in (
            f"{SESSION_TOKEN}={tampered}",
            f"{SESSION_TOKEN}={sign(token, other_secret)}",
            f"{SESSION_TOKEN}={token}",
            f"better-auth.session_tokens={value}",
            f"other.session_token={value}",
            "",
        ):
            assert server.get_session(header) is None, header

        # A signature that holds on a token the database does not know: no session, and
        # Better Auth expires the cookie. A bad signature is ignored without a word.
        unknown = server.session_response(f"{SESSION_TOKEN}={sign(secrets.token_hex(16))}")
        assert unknown.session is None
        assert unknown.cookies[SESSION_TOKEN].expired
        assert server.session_response(f"{SESSION_TOKEN}={tampered}").cookies.names == []

        assert server.get_session(signed_up.header) is not None


def test_sign_in_adds_a_session_that_can_be_listed_and_revoked(database: Database) -> None:
    with better_auth(database) as server:
        first = server.sign_up(EMAIL, PASSWORD, "Ada")
        second = server.sign_in(EMAIL, PASSWORD)
        assert second.names == [SESSION_TOKEN]
        assert second.body["user"]["id"] == first.body["user"]["id"]
        first_token, second_token = unsign(first[SESSION_TOKEN]), unsign(second[SESSION_TOKEN])
        assert first_token != second_token

        listed = server.list_sessions(second.header)
        assert sorted(session["token"] for session in listed) == sorted([first_token, second_token])
        server.revoke_session(second.header, first_token)
        assert server.get_session(first.header) is None
        assert server.get_session(second.header) is not None

        with pytest.raises(BetterAuthRequestError) as failed:
            server.sign_in(EMAIL, "not the password")
        assert failed.value.status_code == 401
        assert failed.value.code == "INVALID_EMAIL_OR_PASSWORD"


def _as_datetime(kind: str, stored: Any) -> datetime:
    """A date as each database holds it, checked for its form, as an aware datetime."""
    if kind == "mongodb":
        # A BSON date (milliseconds); PyMongo hands it back naive, in UTC.
        assert isinstance(stored, datetime)
        assert stored.tzinfo is None
        assert stored.microsecond % 1000 == 0
        return stored.replace(tzinfo=UTC)
    if kind == "sqlite":
        # Text: toISOString(), milliseconds and a Z (the column's declared type is "date").
        assert isinstance(stored, str)
        assert JSON_DATE.fullmatch(stored), stored
        return datetime.fromisoformat(stored)
    # timestamptz.
    assert isinstance(stored, datetime)
    assert stored.utcoffset() == timedelta(0)
    return stored


async def test_what_better_auth_stores_in_each_database(database: Database) -> None:
    kind = database["kind"]
    with better_auth(database) as server:
        signed_up = server.sign_up(EMAIL, PASSWORD, "Ada")
        token = unsign(signed_up[SESSION_TOKEN])
        user_id = signed_up.body["user"]["id"]
        [user] = await rows(database, "user")
        [session] = await rows(database, "session")
        [account] = await rows(database, "account")

    if kind == "mongodb":
        # ObjectIds under _id and in references; the API shows them as 24 hex digits.
        assert user["_id"] == ObjectId(user_id)
        assert session["userId"] == ObjectId(user_id)
        assert account["userId"] == ObjectId(user_id)
        # Fields left empty are not stored at all.
        assert "image" not in user
        assert "accessToken" not in account
    else:
        assert user["id"] == user_id
        assert TOKEN.fullmatch(user_id)
        assert session["userId"] == account["userId"] == user_id
        assert user["image"] is None
    # Booleans: SQLite has none, so 0 and 1.
    assert user["emailVerified"] == 0 if kind == "sqlite" else user["emailVerified"] is False

    assert session["token"] == token
    # Loopback requests without X-Forwarded-For: an empty string, not null.
    assert session["ipAddress"] == ""
    assert session["userAgent"].startswith("python-httpx/")
    expires_at = _as_datetime(kind, session["expiresAt"])
    created_at = _as_datetime(kind, session["createdAt"])
    _as_datetime(kind, session["updatedAt"])
    _as_datetime(kind, user["createdAt"])
    # Seven days (expiresAt is computed a moment before createdAt).
    assert abs(expires_at - created_at - timedelta(days=7)) < timedelta(seconds=1)

    # The password: scrypt, "<salt hex>:<key hex>", on the "credential" account, whose
    # accountId is the user's id as a string.
    assert account["providerId"] == "credential"
    assert account["accountId"] == user_id
    assert re.fullmatch(r"[0-9a-f]{32}:[0-9a-f]{128}", account["password"])


# --- Better Auth's cookies and checks (the same on every database) ---


def test_the_session_token_cookie_and_a_python_signed_one(sqlite: Database) -> None:
    with better_auth(sqlite) as server:
        signed_up = server.sign_up(EMAIL, PASSWORD, "Ada")
        cookie = signed_up[SESSION_TOKEN]
        assert cookie.raw == (
            f"{SESSION_TOKEN}={cookie.value}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax"
        )
        token, _, signature = unquote(cookie.value).rpartition(".")
        # 44 letters of standard, padded base64 (with + and /), percent-encoded on the wire.
        assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", signature)
        assert cookie.value.endswith("%3D")
        assert unsign(cookie) == token

        # A cookie Python signs for the token is Better Auth's own; percent-decoding is
        # lenient, so the unencoded form is read the same.
        for value in (sign(token), unquote(sign(token))):
            found = server.get_session(f"{SESSION_TOKEN}={value}")
            assert found is not None
            assert found["session"]["token"] == token


def test_cookie_options_name_and_refresh(sqlite: Database) -> None:
    with better_auth(
        sqlite, cookiePrefix="myapp", useSecureCookies=True, expiresIn=3600, updateAge=0
    ) as server:
        name = "__Secure-myapp.session_token"
        assert server.session_token_cookie == name
        signed_up = server.sign_up(EMAIL, PASSWORD, "Ada")
        assert signed_up.names == [name]
        cookie = signed_up[name]
        assert cookie.attributes == {
            "max-age": "3600",
            "path": "/",
            "httponly": None,
            "secure": None,
            "samesite": "Lax",
        }

        # updateAge 0: every getSession moves expiresAt on and sets the cookie again,
        # with the same value (the token does not change).
        before = server.get_session(signed_up.header)
        refreshed = server.session_response(signed_up.header)
        assert before is not None and refreshed.session is not None
        assert refreshed.session["session"]["expiresAt"] >= before["session"]["expiresAt"]
        assert refreshed.cookies.names == [name]
        assert refreshed.cookies[name].value == cookie.value
        assert refreshed.cookies[name].max_age == 3600

        # rememberMe false: a cookie for the browser session only, and a signed
        # dont_remember cookie that keeps later refreshes that way.
        forgotten = server.sign_in(EMAIL, PASSWORD, remember_me=False)
        assert forgotten.names == [name, "__Secure-myapp.dont_remember"]
        assert forgotten[name].max_age is None
        assert unquote(forgotten["__Secure-myapp.dont_remember"].value).startswith("true.")


def test_the_origin_check(sqlite: Database) -> None:
    with better_auth(sqlite, baseURL="http://app.test") as server:
        # The trusted origin is baseURL's, not the address the server is reached at.
        assert server.origin == "http://app.test"
        body = {"email": EMAIL, "password": PASSWORD, "name": "Ada"}
        for origin in (server.url, "http://evil.test", "null"):
            refused = server.request(
                "POST", "/api/auth/sign-up/email", origin=origin, json_body=body
            )
            assert refused.status_code == 403, origin
            code = "MISSING_OR_NULL_ORIGIN" if origin == "null" else "INVALID_ORIGIN"
            assert refused.json()["code"] == code
        server.sign_up(EMAIL, PASSWORD, "Ada")

        # Without cookies, a request with no Origin, Referer or Sec-Fetch-* headers (not
        # a browser) is let through: only an origin that is sent gets checked.
        login = {"email": EMAIL, "password": PASSWORD}
        bare = server.request("POST", "/api/auth/sign-in/email", origin=None, json_body=login)
        assert bare.status_code == 200
        signed_in = Cookies.from_headers(bare.headers.get_list("set-cookie"), bare.json())

        # With cookies, every POST needs a trusted Origin, or failing that a Referer.
        header = signed_in.header
        no_origin = server.request(
            "POST", "/api/auth/sign-out", cookie_header=header, origin=None, json_body={}
        )
        assert no_origin.status_code == 403
        assert no_origin.json()["code"] == "MISSING_OR_NULL_ORIGIN"
        by_referer = server.request(
            "POST",
            "/api/auth/sign-out",
            cookie_header=header,
            origin=None,
            headers={"referer": "http://app.test/account"},
            json_body={},
        )
        assert by_referer.status_code == 200
        assert Cookies.from_headers(by_referer.headers.get_list("set-cookie"))[
            SESSION_TOKEN
        ].expired
        assert server.get_session(header) is None


def _session_data(
    strategy: Literal["compact", "jwt", "jwe"], value: str, max_age: int
) -> dict[str, Any]:
    """The payload of a session_data cookie, checked as Better Auth would check it."""
    if strategy == "compact":
        # base64url (unpadded) JSON: the data, when it expires (ms), and an HMAC-SHA256
        # (base64url, unpadded) over the JSON of the data with expiresAt added at the end.
        outer = json.loads(b64url_decode(value))
        assert list(outer) == ["session", "expiresAt", "signature"]
        data: dict[str, Any] = outer["session"]
        signed = json.dumps(
            {**data, "expiresAt": outer["expiresAt"]}, separators=(",", ":"), ensure_ascii=False
        )
        digest = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).digest()
        assert outer["signature"] == b64url_encode(digest)
        assert abs(outer["expiresAt"] - data["updatedAt"] - max_age * 1000) < 1000
        return data
    if strategy == "jwt":
        # A JWT signed HS256 with the secret itself.
        token = jwt.decode(value, OctKey.import_key(SECRET.encode()), algorithms=["HS256"])
        assert token.header == {"alg": "HS256"}
        claims = token.claims
    else:
        # A JWE, "dir" with A256CBC-HS512, its key HKDF-SHA256 of the secret (salt
        # "better-auth-session", info "BetterAuth.js Generated Encryption Key"); the kid is
        # the key's RFC 7638 thumbprint, hashed with SHA-256.
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=64,
            salt=b"better-auth-session",
            info=b"BetterAuth.js Generated Encryption Key",
        ).derive(SECRET.encode())
        thumbprint = hashlib.sha256(f'{{"k":"{b64url_encode(key)}","kty":"oct"}}'.encode())
        decrypted = jwe.decrypt_compact(value, OctKey.import_key(key))
        assert decrypted.protected == {
            "alg": "dir",
            "enc": "A256CBC-HS512",
            "kid": b64url_encode(thumbprint.digest()),
        }
        assert decrypted.plaintext is not None
        claims = json.loads(decrypted.plaintext)
        assert re.fullmatch(r"[0-9a-f-]{36}", claims.pop("jti"))
    # iat and exp come from two readings of the clock, which may straddle a second.
    assert claims.pop("exp") - claims.pop("iat") in (max_age, max_age + 1)
    return claims


@pytest.mark.parametrize("strategy", ["compact", "jwt", "jwe"])
def test_the_cookie_cache(sqlite: Database, strategy: Literal["compact", "jwt", "jwe"]) -> None:
    with better_auth(sqlite, cookieCache={"strategy": strategy, "maxAge": 600}) as server:
        first = server.sign_up(EMAIL, PASSWORD, "Ada")
        assert first.names == [SESSION_TOKEN, SESSION_DATA]
        cached = first[SESSION_DATA]
        assert cached.attributes == {
            "max-age": "600",
            "path": "/",
            "httponly": None,
            "samesite": "Lax",
        }
        data = _session_data(strategy, cached.value, 600)
        assert list(data) == ["session", "user", "updatedAt", "version"]
        assert data["version"] == "1"
        assert data["session"]["token"] == unsign(first[SESSION_TOKEN])
        assert data["user"]["email"] == EMAIL
        assert JSON_DATE.fullmatch(data["session"]["expiresAt"])

        # The cache answers until it expires: a session revoked in the database still
        # reads as signed in through it, and as signed out without it.
        second = server.sign_in(EMAIL, PASSWORD)
        server.revoke_session(second.header, data["session"]["token"])
        from_cache = server.get_session(first.header)
        assert from_cache is not None
        assert from_cache["session"]["token"] == data["session"]["token"]
        assert server.get_session(first.header, disable_cookie_cache=True) is None

        # The cached data alone, without the session token, is no session.
        assert server.get_session(f"{SESSION_DATA}={cached.value}") is None


def test_a_server_that_cannot_start_fails_with_its_stderr(tmp_path: Path) -> None:
    database = sqlite_database(tmp_path / "missing-directory" / "better-auth.db")
    server = BetterAuthServer({"database": database})
    with pytest.raises(pytest.fail.Exception, match=r"(?s)did not start.*exited with"), server:
        pass
    assert server.pid is None
