"""Encrypted session tokens in the Auth.js format.

Tokens are compact JWEs (``alg`` ``dir``, ``enc`` ``A256CBC-HS512``) whose key is
derived from the secret with HKDF, salted with the session cookie name, exactly as
``@auth/core/jwt`` does. A token issued here can be read by an Auth.js app sharing the
same secret and cookie name, and the other way round. Decoding also accepts
``A256GCM`` tokens, as Auth.js does.

Usage::

    from asgi_session.jwt import JWTCodec, JWTDecodeError

    codec = JWTCodec(["new-secret", "previous-secret"], salt="authjs.session-token")
    token = codec.encode({"sub": "42", "name": "Ada"}, max_age=30 * 24 * 3600)
    try:
        claims = codec.decode(token)  # {"sub": "42", "name": "Ada", "iat": ..., "exp": ...}
    except JWTDecodeError:
        claims = None

The module-level :func:`encode` and :func:`decode` take the same arguments as their
Auth.js namesakes and reuse a cached :class:`JWTCodec`.

Several secrets allow rotation: tokens are encrypted with the first one and decrypted
with whichever one the token's ``kid`` (a key thumbprint) names.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from asgi_session.errors import ConfigurationError, JWTDecodeError

__all__ = [
    "CLOCK_TOLERANCE",
    "DEFAULT_MAX_AGE",
    "MAX_TOKEN_LENGTH",
    "JWTCodec",
    "JWTDecodeError",
    "decode",
    "encode",
]

DEFAULT_MAX_AGE: Final = 30 * 24 * 60 * 60
"""Token lifetime in seconds when none is given: 30 days, as in Auth.js."""

# A session token travels in cookies. Browsers keep about 4 KiB per cookie and servers
# refuse request headers past 8-16 KiB, so no token a browser can actually send comes
# near 64 KiB. The cap bounds the work an attacker can cause (base64 decoding, JSON
# parsing of the header) while leaving room for several cookie chunks.
MAX_TOKEN_LENGTH: Final = 64 * 1024
"""Longest token :meth:`JWTCodec.decode` looks at; longer input is rejected at once."""

CLOCK_TOLERANCE: Final = 15
"""Seconds of clock skew allowed on ``exp`` and ``nbf``, as in Auth.js."""

_ALG: Final = "dir"
_CBC: Final = "A256CBC-HS512"
_GCM: Final = "A256GCM"

# base64url's two letters mapped to standard base64's, so the strict C decoder reads it.
_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")
# Padding that completes a base64url segment of each length modulo 4 (1 is never valid).
_PADDING: Final = ("", "=", "==", "=")
# The letters a segment may end with, by its length modulo 4: the last letter of a
# segment of 2 (or 3) modulo 4 carries 4 (or 2) bits no byte uses, which must be zero.
_LAST_LETTERS: Final = (
    None,
    None,
    frozenset("AQgw"),
    frozenset("AEIMQUYcgkosw048"),
)


def _fail(reason: str) -> NoReturn:
    raise JWTDecodeError(reason)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(segment: str) -> bytes:
    """Strict unpadded base64url: anything but its 64 letters raises ``ValueError``.

    Callers first refuse ``+``, ``/`` and ``=``, which standard base64 would accept, and
    the unused low bits of the last letter must be zero (decoders ignore them, so
    ``...A`` and ``...B`` would read the same), so a token has one spelling only.
    (``binascii`` in strict mode, not ``base64``, whose decoder silently skips foreign
    characters; it ignores those bits too.)
    """
    remainder = len(segment) % 4
    if remainder == 1:
        raise ValueError("impossible base64 length")
    last_letters = _LAST_LETTERS[remainder]
    if last_letters is not None and segment[-1] not in last_letters:
        raise ValueError("non-canonical base64: unused bits are set")
    padded = (segment + _PADDING[remainder]).encode()
    return binascii.a2b_base64(padded.translate(_FROM_URLSAFE), strict_mode=True)


def _reject_constant(name: str) -> NoReturn:
    # JSON.parse has no NaN or Infinity; refusing them keeps the two sides in step.
    raise ValueError(f"{name} is not valid JSON")


_JSON_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
_dump_json: Final = functools.partial(
    json.dumps, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _derive_key(secret: str, salt: str, length: int) -> bytes:
    """Auth.js's key derivation: HKDF-SHA256 with the cookie name as salt."""
    info = f"Auth.js Generated Encryption Key ({salt})".encode()
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt.encode(), info=info)
    return hkdf.derive(secret.encode())


def _thumbprint(key: bytes) -> str:
    """RFC 7638 thumbprint of the key as an ``oct`` JWK, hashed to the key's size."""
    jwk = '{"k":"' + _b64encode(key) + '","kty":"oct"}'
    digest = hashlib.sha512 if len(key) == 64 else hashlib.sha256
    return _b64encode(digest(jwk.encode("ascii")).digest())


_SHA512_BLOCK: Final = 128
_Hash = Any  # a hashlib SHA-512 state (hashlib exports no type for it)


def _aad_length(aad: bytes) -> bytes:
    return (len(aad) * 8).to_bytes(8, "big")


class _CbcKey:
    """An A256CBC-HS512 key (RFC 7518 section 5.2) split into its MAC and AES halves."""

    __slots__ = ("_aes", "_blocks", "_inner", "_outer", "kid")

    def __init__(self, key: bytes) -> None:
        self.kid = _thumbprint(key)
        # HMAC-SHA-512 (RFC 2104) from its two padded hash states: copying a hashlib
        # state is C code, where copying an ``hmac.HMAC`` runs Python on every token.
        mac_key = key[:32].ljust(_SHA512_BLOCK, b"\0")
        self._inner = hashlib.sha512(bytes(byte ^ 0x36 for byte in mac_key))
        self._outer = hashlib.sha512(bytes(byte ^ 0x5C for byte in mac_key))
        self._aes = algorithms.AES(key[32:])
        # CBC decryption is each block's raw AES decryption XORed with the block before
        # it. An ECB context has no state between blocks, so one per thread serves every
        # token, where a CBC context must be built for each (most of decryption's cost).
        self._blocks = threading.local()

    def mac_after(self, aad: bytes) -> _Hash:
        """The MAC's inner hash already fed with ``aad``, to copy for each token."""
        inner = self._inner.copy()
        inner.update(aad)
        return inner

    def encrypt(
        self, plaintext: bytes, mac_with_aad: _Hash, al: bytes
    ) -> tuple[bytes, bytes, bytes]:
        iv = os.urandom(16)
        pad = 16 - len(plaintext) % 16
        encryptor = Cipher(self._aes, modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(plaintext + bytes((pad,)) * pad) + encryptor.finalize()
        return iv, ciphertext, self._tag(mac_with_aad, iv, ciphertext, al)

    def decrypt(
        self, iv: bytes, ciphertext: bytes, tag: bytes, mac_with_aad: _Hash, al: bytes
    ) -> bytes:
        if len(iv) != 16 or not ciphertext or len(ciphertext) % 16:
            _fail("bad A256CBC-HS512 IV or ciphertext length")
        if not hmac.compare_digest(self._tag(mac_with_aad, iv, ciphertext, al), tag):
            _fail("authentication tag mismatch")
        padded = self._cbc_decrypt(iv, ciphertext)
        pad = padded[-1]
        # The tag is checked first, so this runs only on data the key holder produced.
        if not 1 <= pad <= 16 or padded[-pad:] != bytes((pad,)) * pad:
            _fail("bad padding")
        return padded[:-pad]

    def _cbc_decrypt(self, iv: bytes, ciphertext: bytes) -> bytes:
        try:
            blocks = self._blocks.decryptor
        except AttributeError:
            blocks = self._blocks.decryptor = Cipher(self._aes, modes.ECB()).decryptor()  # noqa: S305
        decrypted = int.from_bytes(blocks.update(ciphertext), "big")
        chained = int.from_bytes(iv + ciphertext[:-16], "big")
        return (decrypted ^ chained).to_bytes(len(ciphertext), "big")

    def _tag(self, mac_with_aad: _Hash, iv: bytes, ciphertext: bytes, al: bytes) -> bytes:
        inner = mac_with_aad.copy()
        inner.update(b"".join((iv, ciphertext, al)))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:32]


class _GcmKey:
    """An A256GCM key; Auth.js never issues these but accepts them, so we do too."""

    __slots__ = ("_aead", "kid")

    def __init__(self, key: bytes) -> None:
        self.kid = _thumbprint(key)
        self._aead = AESGCM(key)

    def decrypt(self, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
        if len(iv) != 12 or len(tag) != 16:
            _fail("bad A256GCM IV or tag length")
        try:
            return self._aead.decrypt(iv, ciphertext + tag, aad)
        except InvalidTag:
            _fail("authentication tag mismatch")


class _KnownHeader:
    """A protected header this codec issues, with its MAC state precomputed."""

    __slots__ = ("al", "key", "mac_with_aad", "segment")

    def __init__(self, key: _CbcKey) -> None:
        header = _dump_json({"alg": _ALG, "enc": _CBC, "kid": key.kid})
        self.segment = _b64encode(header.encode())
        aad = self.segment.encode("ascii")
        self.key = key
        self.mac_with_aad = key.mac_after(aad)
        self.al = _aad_length(aad)


def _secret_list(secret: str | Sequence[str]) -> tuple[str, ...]:
    secrets = (secret,) if isinstance(secret, str) else tuple(secret)
    if not secrets or not all(secrets):
        raise ConfigurationError(
            "A non-empty secret is required to encrypt session tokens. Set AUTH_SECRET, "
            "for example to the output of `python -m asgi_session secret`."
        )
    return secrets


def _is_number(value: object) -> bool:
    return type(value) is int or type(value) is float


class JWTCodec:
    """Encodes and decodes Auth.js session tokens for fixed secrets and salt.

    ``secrets`` lists the current secret first, then older ones still accepted.
    ``salt`` is the session cookie name (``authjs.session-token``, or
    ``__Secure-authjs.session-token`` over https). Keys are derived once, here.
    """

    __slots__ = ("_cbc_keys", "_gcm_keys", "_issuing", "_known", "salt")

    def __init__(self, secrets: Sequence[str], salt: str) -> None:
        secret_list = _secret_list(secrets)
        self.salt = salt
        self._cbc_keys = tuple(_CbcKey(_derive_key(s, salt, 64)) for s in secret_list)
        self._gcm_keys = tuple(_GcmKey(_derive_key(s, salt, 32)) for s in secret_list)
        headers = [_KnownHeader(key) for key in self._cbc_keys]
        self._issuing = headers[0]
        # Reversed so that, for a repeated secret, the first occurrence wins as in
        # the general path.
        self._known = {header.segment: header for header in reversed(headers)}

    def encode(self, claims: Mapping[str, Any], *, max_age: int, now: float | None = None) -> str:
        """Encrypt ``claims`` plus fresh ``iat``, ``exp`` (``iat + max_age``) and ``jti``.

        Raises ``TypeError`` or ``ValueError`` when a claim is not JSON-serialisable.
        """
        issued_at = math.floor(time.time() if now is None else now)
        payload = {**claims, "iat": issued_at, "exp": issued_at + max_age, "jti": str(uuid.uuid4())}
        issuing = self._issuing
        iv, ciphertext, tag = issuing.key.encrypt(
            _dump_json(payload).encode(), issuing.mac_with_aad, issuing.al
        )
        return f"{issuing.segment}..{_b64encode(iv)}.{_b64encode(ciphertext)}.{_b64encode(tag)}"

    def decode(self, token: str, *, now: float | None = None) -> dict[str, Any]:
        """Decrypt and validate ``token``, returning its claims.

        Raises :class:`JWTDecodeError` for any token that is not a valid, unexpired
        token made with one of the codec's secrets.
        """
        try:
            return self._decode(token, now)
        except JWTDecodeError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as exc:
            # ValueError covers bad base64, UTF-8 and JSON; RecursionError deeply nested JSON.
            raise JWTDecodeError("malformed token") from exc

    def _decode(self, token: str, now: float | None) -> dict[str, Any]:
        if not isinstance(token, str):
            _fail("token must be a string")
        if len(token) > MAX_TOKEN_LENGTH:
            _fail("token too long")
        if "+" in token or "/" in token or "=" in token:
            _fail("not base64url")
        header_segment, encrypted_key, iv_segment, ciphertext_segment, tag_segment = token.split(
            "."
        )
        if encrypted_key:
            _fail('"dir" tokens carry no encrypted key')
        iv = _b64decode(iv_segment)
        ciphertext = _b64decode(ciphertext_segment)
        tag = _b64decode(tag_segment)
        header: dict[str, Any] | None = None
        known = self._known.get(header_segment)
        if known is not None:
            plaintext = known.key.decrypt(iv, ciphertext, tag, known.mac_with_aad, known.al)
        else:
            header = _parse_header(header_segment)
            plaintext = self._decrypt_other(header, header_segment, iv, ciphertext, tag)
        claims = _parse_payload(plaintext.decode("utf-8"))
        if type(claims) is not dict:
            _fail("payload is not a JSON object")
        if header is not None:
            _check_replicated_claims(header, claims)
        _check_times(claims, now)
        return claims

    def _decrypt_other(
        self, header: dict[str, Any], segment: str, iv: bytes, ciphertext: bytes, tag: bytes
    ) -> bytes:
        """Decrypt a token whose header this codec does not issue itself."""
        enc = header["enc"]
        keys: tuple[_CbcKey, ...] | tuple[_GcmKey, ...]
        keys = self._cbc_keys if enc == _CBC else self._gcm_keys
        key = keys[0] if "kid" not in header else _key_for_kid(keys, header["kid"])
        aad = segment.encode("ascii")
        if isinstance(key, _GcmKey):
            return key.decrypt(iv, ciphertext, tag, aad)
        return key.decrypt(iv, ciphertext, tag, key.mac_after(aad), _aad_length(aad))


def _parse_payload(text: str) -> Any:
    """The payload's JSON value.

    Issuers write it without surrounding white space, so the scanner alone usually reads
    it whole; anything else goes through the full decoder, which also reports errors.
    """
    try:
        value, end = _JSON_DECODER.scan_once(text, 0)  # type: ignore[attr-defined]
    except StopIteration:
        end = -1
    if end == len(text):
        return value
    return _JSON_DECODER.decode(text)


def _parse_header(segment: str) -> dict[str, Any]:
    header = _JSON_DECODER.decode(_b64decode(segment).decode("utf-8"))
    if type(header) is not dict:
        _fail("protected header is not a JSON object")
    if header.get("alg") != _ALG:
        _fail('"alg" must be "dir"')
    if header.get("enc") not in (_CBC, _GCM):
        _fail('"enc" must be A256CBC-HS512 or A256GCM')
    # No extension is understood, and compressed tokens are refused outright (Auth.js
    # never issues them, and inflating input is a denial-of-service risk).
    if "crit" in header:
        _fail('unsupported "crit" header')
    if "zip" in header:
        _fail('unsupported "zip" header')
    return header


def _key_for_kid(keys: Sequence[_CbcKey | _GcmKey], kid: object) -> _CbcKey | _GcmKey:
    if not isinstance(kid, str) or not kid.isascii():
        _fail('"kid" matches no secret')
    wanted = kid.encode("ascii")
    match: _CbcKey | _GcmKey | None = None
    for key in keys:
        # Check every key so the time taken does not tell which one matched.
        if hmac.compare_digest(key.kid.encode("ascii"), wanted) and match is None:
            match = key
    if match is None:
        _fail('"kid" matches no secret')
    return match


def _check_replicated_claims(header: Mapping[str, Any], claims: Mapping[str, Any]) -> None:
    # A claim copied into the header must agree with the payload (RFC 7519 section 5.3).
    for name in ("iss", "sub", "aud"):
        if name in header and header[name] != claims.get(name):
            _fail(f'header "{name}" does not match the claim')


def _check_times(claims: Mapping[str, Any], now: float | None) -> None:
    current = math.floor(time.time() if now is None else now)
    # A claim that is present must be a number, even when it is null.
    if not _is_number(claims.get("iat", 0)):
        _fail('"iat" claim must be a number')
    if "nbf" in claims:
        nbf = claims["nbf"]
        if not _is_number(nbf):
            _fail('"nbf" claim must be a number')
        if nbf > current + CLOCK_TOLERANCE:
            _fail("token not yet valid")
    if "exp" in claims:
        exp = claims["exp"]
        if not _is_number(exp):
            _fail('"exp" claim must be a number')
        if exp <= current - CLOCK_TOLERANCE:
            _fail("token expired")


@functools.lru_cache(maxsize=32)
def _cached_codec(secrets: tuple[str, ...], salt: str) -> JWTCodec:
    return JWTCodec(secrets, salt)


def encode(
    token: Mapping[str, Any],
    *,
    secret: str | Sequence[str],
    salt: str,
    max_age: int = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> str:
    """Issue an encrypted token, like ``encode`` from ``@auth/core/jwt``.

    ``secret`` is one secret or a list (the first one encrypts); ``salt`` is the session
    cookie name. ``now`` (seconds since the epoch) replaces the clock, for tests.
    """
    return _cached_codec(_secret_list(secret), salt).encode(token, max_age=max_age, now=now)


def decode(
    token: str, *, secret: str | Sequence[str], salt: str, now: float | None = None
) -> dict[str, Any]:
    """Read a token issued by :func:`encode` or by Auth.js; see :meth:`JWTCodec.decode`."""
    return _cached_codec(_secret_list(secret), salt).decode(token, now=now)
