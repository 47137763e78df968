"""Better Auth's cookies, byte for byte as the ``better-auth`` npm package writes them.

The session cookie (``better-auth.session_token``) holds the session's token and an
HMAC-SHA256 signature of it made with the secret: ``<token>.<base64 signature>``,
percent-encoded (the signing is ``better-call``'s ``signCookieValue``). Only the
signature is secret-bound; the token names a row in the ``session`` table.

The cookie cache (``better-auth.session_data``) holds the session and its user, so a
request needs no database until it expires, in one of the three encodings Better Auth
offers (``session.cookieCache.strategy``):

- ``"compact"`` (its default): base64url of ``{"session": payload, "expiresAt": ms,
  "signature": ...}``, the signature an HMAC-SHA256 (base64url, unpadded) of
  ``JSON.stringify({...payload, expiresAt})``. Verifying it means serialising the parsed
  payload again exactly as JavaScript does: any difference fails the signature, and the
  request falls back to the database, never to trusting the cookie.
- ``"jwt"``: an HS256 JWT signed with the secret, the payload's fields as claims.
- ``"jwe"``: a JWE (``dir``, ``A256CBC-HS512``) under a key derived with HKDF-SHA256
  from the secret (salt ``better-auth-session``, info ``BetterAuth.js Generated
  Encryption Key``), its ``kid`` the key's JWK thumbprint.

Every reader here returns ``None`` for anything it cannot verify; none raises on what a
client sent.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwe, jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from asgi_session.errors import ConfigurationError
from asgi_session.models import SessionRecord, User

__all__ = [
    "CookieCache",
    "decode_cache",
    "encode_cache",
    "record_from_json",
    "session_json",
    "sign",
    "unsign",
    "user_from_json",
    "user_json",
]

Encoding = Literal["compact", "jwt", "jwe"]
_ENCODINGS: tuple[Encoding, ...] = ("compact", "jwt", "jwe")

#: A base64 HMAC-SHA256 is 44 characters ending in one "=": better-call refuses others.
_SIGNATURE_LENGTH = 44
#: What the JWE's key is derived with (better-auth's crypto/jwt.ts).
_JWE_SALT = b"better-auth-session"
_JWE_INFO = b"BetterAuth.js Generated Encryption Key"
_JWE_REGISTRY = jwe.JWERegistry(algorithms=["dir", "A256CBC-HS512", "A256GCM"])


@dataclass(frozen=True, slots=True)
class CookieCache:
    """Better Auth's ``session.cookieCache``, as the Better Auth app configures it.

    ``encoding`` is its ``strategy`` (``"compact"``, ``"jwt"`` or ``"jwe"``); ``max_age``
    its ``maxAge`` in seconds (a cached session may outlive its revocation by this
    long, as in Better Auth); ``version`` its ``version`` (a cache of another version
    is ignored).
    """

    max_age: int = 300
    encoding: Encoding = "compact"
    version: str = "1"

    def __post_init__(self) -> None:
        if self.encoding not in _ENCODINGS:
            raise ConfigurationError(
                f"CookieCache(encoding={self.encoding!r}) must be one of "
                f"{', '.join(map(repr, _ENCODINGS))}, as Better Auth's cookieCache.strategy"
            )
        if type(self.max_age) is not int or self.max_age < 1:
            raise ConfigurationError(
                "CookieCache(max_age=...) must be a positive number of seconds, as Better "
                "Auth's cookieCache.maxAge (300 by default)"
            )
        if not isinstance(self.version, str) or not self.version:
            raise ConfigurationError("CookieCache(version=...) must be a non-empty string")


# -- the session token cookie -------------------------------------------------------


def _signature(value: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), value.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign(token: str, secret: str) -> str:
    """The session cookie's value for ``token`` (before percent-encoding)."""
    return f"{token}.{_signature(token, secret)}"


def unsign(value: str, secrets: Sequence[str]) -> str | None:
    """The token a session cookie's (percent-decoded) value carries, if one of
    ``secrets`` signed it; compared in constant time."""
    cut = value.rfind(".")
    if cut < 1:
        return None
    token, signature = value[:cut], value[cut + 1 :]
    if (
        len(signature) != _SIGNATURE_LENGTH
        or not signature.endswith("=")
        or not signature.isascii()
    ):
        # compare_digest refuses non-ASCII strings: such a value is simply no signature.
        return None
    try:
        token.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return None
    ok = False
    for secret in secrets:
        # Every secret is tried: how long this takes tells nothing of which one signed.
        ok |= hmac.compare_digest(_signature(token, secret), signature)
    return token if ok else None


# -- the records as Better Auth's JSON has them -------------------------------------------


def _js_date(moment: datetime) -> str:
    """``Date.prototype.toJSON``: UTC, milliseconds, ``Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _parse_date(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # "0001-01-01T00:00:00+01:00" is before year 1 in UTC
        return None


#: The fields of Better Auth's user and session the records have by name; any other
#: field (an app's, a plugin's: ``role``, ``activeOrganizationId``) travels as it is.
_USER_KEYS = frozenset({"id", "name", "email", "emailVerified", "image", "createdAt", "updatedAt"})
_SESSION_KEYS = frozenset(
    {"id", "token", "userId", "expiresAt", "createdAt", "updatedAt", "ipAddress", "userAgent"}
)
#: Extras of ours that stand for one of those fields.
_OWN_EXTRAS = frozenset({"created_at", "updated_at", "ip_address"})
_SKIP = object()


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON carries it (dates as JavaScript writes them), or ``_SKIP``."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _SKIP
    if isinstance(value, datetime):
        return _js_date(value)
    if depth > 20:
        return _SKIP
    if isinstance(value, Mapping):
        items = {str(key): _jsonable(item, depth + 1) for key, item in value.items()}
        return {key: item for key, item in items.items() if item is not _SKIP}
    if isinstance(value, list | tuple):
        return [
            item for item in (_jsonable(item, depth + 1) for item in value) if item is not _SKIP
        ]
    return _SKIP  # an ObjectId, bytes: nothing JSON has


def _extras(extra: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    found = {
        key: _jsonable(value)
        for key, value in extra.items()
        if key not in known and key not in _OWN_EXTRAS
    }
    return {key: value for key, value in found.items() if value is not _SKIP}


def user_json(user: User, *, known_by: datetime) -> dict[str, Any]:
    """The user as Better Auth's session endpoints and cookie cache carry it, with its
    other fields.

    Better Auth requires both times; an adapter that does not report them gives
    ``known_by``, a moment the user existed by (the session's start).
    """
    created = user.extra.get("created_at", known_by)
    updated = user.extra.get("updated_at", created)
    return {
        **_extras(user.extra, _USER_KEYS),
        "id": user.id,
        "name": user.name or "",
        "email": user.email,
        "emailVerified": user.email_verified is not None,
        "image": user.image,
        "createdAt": _js_date(created) if isinstance(created, datetime) else None,
        "updatedAt": _js_date(updated) if isinstance(updated, datetime) else None,
    }


def session_json(record: SessionRecord) -> dict[str, Any]:
    """The session as Better Auth's session endpoints and cookie cache carry it, with
    its other fields (what ``session.update()`` stored among them)."""
    created = record.created_at or record.last_seen_at
    updated = record.last_seen_at or record.created_at
    return {
        **_extras(record.extra, _SESSION_KEYS),
        "id": record.id,
        "token": record.session_token,
        "userId": record.user_id,
        "expiresAt": _js_date(record.expires),
        "createdAt": _js_date(created) if created else None,
        "updatedAt": _js_date(updated) if updated else None,
        "ipAddress": record.extra.get("ip_address"),
        "userAgent": record.user_agent,
    }


def user_from_json(value: object) -> User | None:
    """The user of a verified cookie cache, or ``None`` when it is not one."""
    if not isinstance(value, Mapping):
        return None
    user_id, email = value.get("id"), value.get("email")
    if not isinstance(user_id, str) or not user_id or not isinstance(email, str):
        return None
    name, image = value.get("name"), value.get("image")
    created, updated = _parse_date(value.get("createdAt")), _parse_date(value.get("updatedAt"))
    extra: dict[str, Any] = {key: item for key, item in value.items() if key not in _USER_KEYS}
    extra.update(
        (key, moment)
        for key, moment in (("created_at", created), ("updated_at", updated))
        if moment is not None
    )
    return User(
        id=user_id,
        name=name if isinstance(name, str) and name else None,
        email=email,
        image=image if isinstance(image, str) else None,
        # Better Auth keeps a flag, not a time: the last change is the closest there is.
        email_verified=(updated or created) if value.get("emailVerified") is True else None,
        extra=extra,
    )


def record_from_json(value: object) -> SessionRecord | None:
    """The session of a verified cookie cache, or ``None`` when it is not one."""
    if not isinstance(value, Mapping):
        return None
    token, user_id = value.get("token"), value.get("userId")
    expires = _parse_date(value.get("expiresAt"))
    if not isinstance(token, str) or not isinstance(user_id, str) or expires is None:
        return None
    session_id, agent, address = value.get("id"), value.get("userAgent"), value.get("ipAddress")
    extra = {key: item for key, item in value.items() if key not in _SESSION_KEYS}
    if isinstance(address, str):
        extra["ip_address"] = address
    return SessionRecord(
        session_token=token,
        user_id=user_id,
        expires=expires,
        created_at=_parse_date(value.get("createdAt")),
        last_seen_at=_parse_date(value.get("updatedAt")),
        user_agent=agent if isinstance(agent, str) else None,
        id=session_id if isinstance(session_id, str) else None,
        extra=extra,
    )


# -- the cookie cache ------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _js_json(value: Any) -> str:
    """``JSON.stringify(value)`` for what JSON gave: no spaces, non-ASCII as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _float_as_written(text: str) -> float:
    """A number of the cache's JSON, if writing it again gives the same text (the
    signature is over the text JavaScript writes: ``1.0`` or ``1e-07`` could not be
    reproduced, and such a cache is refused)."""
    number = float(text)
    if repr(number) != text:
        raise ValueError("a number written otherwise than Python writes it")
    return number


def _compact_signature(payload: Mapping[str, Any], expires_at: int, secret: str) -> str:
    signed = _js_json({**payload, "expiresAt": expires_at})
    return _b64url(hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest())


@functools.lru_cache(maxsize=16)
def _hs_key(secret: str) -> OctKey:
    return OctKey.import_key(secret.encode())


@functools.lru_cache(maxsize=16)
def _jwe_key(secret: str) -> OctKey:
    derived = HKDF(algorithm=hashes.SHA256(), length=64, salt=_JWE_SALT, info=_JWE_INFO).derive(
        secret.encode()
    )
    return OctKey.import_key(derived)


def _thumbprint(key: OctKey) -> str:
    return key.thumbprint()


def encode_cache(payload: Mapping[str, Any], cache: CookieCache, secret: str, *, now: float) -> str:
    """The cookie cache's value for ``payload`` (``{session, user, updatedAt,
    version}``), valid for ``cache.max_age`` seconds from ``now``."""
    issued = int(now)
    if cache.encoding == "compact":
        expires_at = int(now * 1000) + cache.max_age * 1000
        body = {
            "session": dict(payload),
            "expiresAt": expires_at,
            "signature": _compact_signature(payload, expires_at, secret),
        }
        return _b64url(_js_json(body).encode())
    claims = {**payload, "iat": issued, "exp": issued + cache.max_age}
    if cache.encoding == "jwt":
        return jwt.encode({"alg": "HS256"}, claims, _hs_key(secret))
    key = _jwe_key(secret)
    header = {"alg": "dir", "enc": "A256CBC-HS512", "kid": _thumbprint(key)}
    claims["jti"] = str(uuid.uuid4())
    return jwe.encrypt_compact(
        header, json.dumps(claims, separators=(",", ":")), key, registry=_JWE_REGISTRY
    )


@dataclass(frozen=True, slots=True)
class CachedSession:
    """A verified cookie cache: what it holds and until when (seconds) it may be used."""

    payload: Mapping[str, Any]
    expires_at: float


def decode_cache(
    value: str, cache: CookieCache, secrets: Sequence[str], *, now: float
) -> CachedSession | None:
    """The verified, unexpired contents of a cookie cache value, or ``None``."""
    if not value or len(value) > 64 * 1024:
        return None
    try:
        if cache.encoding == "compact":
            found = _decode_compact(value, secrets)
        elif cache.encoding == "jwt":
            found = _decode_jwt(value, secrets)
        else:
            found = _decode_jwe(value, secrets)
    except (JoseError, ValueError, TypeError, KeyError, UnicodeError, RecursionError):
        return None
    if found is None or found.expires_at <= now:
        return None
    payload = found.payload
    if not isinstance(payload.get("session"), Mapping) or not isinstance(
        payload.get("user"), Mapping
    ):
        return None
    if payload.get("version", "1") != cache.version:
        return None
    return found


def _decode_compact(value: str, secrets: Sequence[str]) -> CachedSession | None:
    raw = _b64url_decode(value)
    if raw is None:
        return None
    body = json.loads(raw, parse_float=_float_as_written)
    if not isinstance(body, dict):
        return None
    payload, expires_at, signature = (
        body.get("session"),
        body.get("expiresAt"),
        body.get("signature"),
    )
    if (
        not isinstance(payload, dict)
        or type(expires_at) is not int
        or not isinstance(signature, str)
    ):
        return None
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(_compact_signature(payload, expires_at, secret), signature)
    return CachedSession(payload, expires_at / 1000) if ok else None


def _decode_jwt(value: str, secrets: Sequence[str]) -> CachedSession | None:
    for secret in secrets:
        try:
            token = jwt.decode(value, _hs_key(secret), algorithms=["HS256"])
        except JoseError:
            continue
        return _from_claims(token.claims)
    return None


def _decode_jwe(value: str, secrets: Sequence[str]) -> CachedSession | None:
    for secret in secrets:
        try:
            token = jwe.decrypt_compact(value, _jwe_key(secret), registry=_JWE_REGISTRY)
        except JoseError:
            continue
        if token.plaintext is None:
            return None
        claims = json.loads(token.plaintext)
        if not isinstance(claims, dict):
            return None
        return _from_claims(claims)
    return None


def _from_claims(claims: Mapping[str, Any]) -> CachedSession | None:
    exp = claims.get("exp")
    if type(exp) is not int:
        return None
    # Better Auth's session endpoint uses the cache until "exp", and not a second longer
    # (jose's leeway on decryption notwithstanding).
    return CachedSession(claims, float(exp))
