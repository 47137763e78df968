"""Session tokens: wire compatibility with the real ``@auth/core`` and strict rejection.

Tokens travel both ways through ``tests/support/authjs_jwt.mjs``: Python tokens are
decoded by Auth.js and Auth.js (or jose) tokens by Python. The node calls are batched
in two module-scoped fixtures so the file stays fast.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from asgi_session.jwt import (
    MAX_TOKEN_LENGTH,
    JWTCodec,
    JWTDecodeError,
    decode,
    encode,
)
from tests.support.node import run_node_script

SECRET_A = "first-secret-4e1b6f0a9c2d8e7f"
SECRET_B = "second-secret-0d9c8b7a6f5e4d3c"
SECRET_C = "unrelated-secret-1a2b3c4d5e6f"
HTTP = "authjs.session-token"
HTTPS = "__Secure-authjs.session-token"
CBC = "A256CBC-HS512"
GCM = "A256GCM"

CLAIMS: dict[str, Any] = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "picture": "https://images.example.com/ada.png",
    "sub": "6560a0f0c1d2e3f4a5b6c7d8",
    "roles": ["admin", "editor"],
    "profile": {"locale": "fr-CA", "age": 36, "verified": True, "nickname": None},
}
UNICODE_CLAIMS: dict[str, Any] = {"sub": "7", "name": "Zoë Ågren 🚀", "note": "ünïcødé \u2028"}


# -- helpers ----------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _header(token: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(_unb64(token.split(".")[0]))
    return header


def _derive(secret: str, salt: str, length: int = 64) -> bytes:
    info = f"Auth.js Generated Encryption Key ({salt})".encode()
    return HKDF(hashes.SHA256(), length, salt.encode(), info).derive(secret.encode())


def _seal(
    plaintext: bytes,
    header: dict[str, Any] | list[Any],
    *,
    secret: str = SECRET_A,
    salt: str = HTTP,
    pkcs7: bool = True,
) -> str:
    """A properly authenticated A256CBC-HS512 token with any header and plaintext.

    Written independently of the module under test, straight from RFC 7518 section 5.2,
    so that tokens jose refuses to build (odd headers, bad padding) can be tried.
    """
    key = _derive(secret, salt)
    header_segment = _b64(json.dumps(header).encode())
    if pkcs7:
        padder = padding.PKCS7(128).padder()
        plaintext = padder.update(plaintext) + padder.finalize()
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(key[32:]), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    aad = header_segment.encode()
    mac_input = aad + iv + ciphertext + (len(aad) * 8).to_bytes(8, "big")
    tag = hmac.new(key[:32], mac_input, hashlib.sha512).digest()[:32]
    return ".".join([header_segment, "", _b64(iv), _b64(ciphertext), _b64(tag)])


def _with_segment(token: str, index: int, segment: str) -> str:
    parts = token.split(".")
    parts[index] = segment
    return ".".join(parts)


def _flip_middle(segment: str) -> str:
    # The middle character always carries payload bits (the last one may be padding).
    middle = len(segment) // 2
    replacement = "B" if segment[middle] == "A" else "A"
    return segment[:middle] + replacement + segment[middle + 1 :]


def _node_value(result: dict[str, Any]) -> Any:
    assert result["ok"], f"the JavaScript side failed: {result['error']}"
    return result["value"]


def _node_error(result: dict[str, Any]) -> str:
    assert not result["ok"], f"Auth.js accepted the token: {result['value']}"
    error: str = result["error"]
    return error


# -- tokens made by Auth.js and jose ------------------------------------------------------


def _jose(name: str, **op: Any) -> tuple[str, dict[str, Any]]:
    op.setdefault("salt", HTTP)
    op.setdefault("secret", SECRET_A)
    op.setdefault("kid", True)
    header = op.setdefault("header", {"alg": "dir", "enc": CBC})
    op.setdefault("keyLength", 64 if header.get("enc") == CBC and header["alg"] == "dir" else 32)
    if "plaintext" not in op:
        op.setdefault("payload", {**CLAIMS, "exp": int(time.time()) + 3600})
    return name, {"op": "joseEncrypt", **op}


def _authjs(name: str, token: dict[str, Any], secret: Any, salt: str) -> tuple[str, dict[str, Any]]:
    op = {"op": "encode", "token": token, "secret": secret, "salt": salt, "maxAge": 3600}
    return name, op


@pytest.fixture(scope="module")
def node_tokens() -> dict[str, str]:
    """Tokens built by @auth/core's ``encode`` and by jose, in one node run."""
    ops = dict(
        [
            _authjs("http", CLAIMS, SECRET_A, HTTP),
            _authjs("https", CLAIMS, SECRET_A, HTTPS),
            _authjs("unicode", UNICODE_CLAIMS, SECRET_A, HTTP),
            _authjs("rotated", CLAIMS, [SECRET_A, SECRET_B], HTTP),
            _jose("kidless", kid=False),
            _jose("gcm", header={"alg": "dir", "enc": GCM}, secret=SECRET_B),
            _jose("gcm_kidless", header={"alg": "dir", "enc": GCM}, kid=False),
            _jose("a256kw", header={"alg": "A256KW", "enc": CBC}),
            _jose("zip", header={"alg": "dir", "enc": CBC, "zip": "DEF"}),
            _jose("not_json", plaintext="this is not JSON"),
            _jose("array", plaintext="[1, 2, 3]"),
            _jose("string", plaintext='"just a string"'),
            _jose("unknown_enc", header={"alg": "dir", "enc": "A128GCM"}, keyLength=16, kid=False),
        ]
    )
    results = run_node_script("authjs_jwt.mjs", list(ops.values()))
    return {name: _node_value(result) for name, result in zip(ops, results, strict=True)}


@pytest.fixture(scope="module")
def authjs_reads_python() -> dict[str, tuple[str, dict[str, Any]]]:
    """Python-made tokens and what @auth/core's ``decode`` made of each, in one node run."""
    past = time.time() - 7200
    cases = {
        "http": (encode(CLAIMS, secret=SECRET_A, salt=HTTP), SECRET_A, HTTP),
        "https": (encode(CLAIMS, secret=SECRET_A, salt=HTTPS), SECRET_A, HTTPS),
        "unicode": (encode(UNICODE_CLAIMS, secret=SECRET_A, salt=HTTP), SECRET_A, HTTP),
        "codec": (JWTCodec([SECRET_A], HTTP).encode(CLAIMS, max_age=600), SECRET_A, HTTP),
        "rotated": (
            encode(CLAIMS, secret=[SECRET_A, SECRET_B], salt=HTTP),
            [SECRET_C, SECRET_A],
            HTTP,
        ),
        "only_first_secret_used": (
            encode(CLAIMS, secret=[SECRET_A, SECRET_B], salt=HTTP),
            [SECRET_B],
            HTTP,
        ),
        "salt_mismatch": (encode(CLAIMS, secret=SECRET_A, salt=HTTP), SECRET_A, HTTPS),
        "expired": (
            encode(CLAIMS, secret=SECRET_A, salt=HTTP, max_age=60, now=past),
            SECRET_A,
            HTTP,
        ),
    }
    ops = [
        {"op": "decode", "token": token, "secret": secret, "salt": salt}
        for token, secret, salt in cases.values()
    ]
    results = run_node_script("authjs_jwt.mjs", ops)
    return {
        name: (case[0], result) for (name, case), result in zip(cases.items(), results, strict=True)
    }


# -- Python -> Auth.js ---------------------------------------------------------------------


@pytest.mark.parametrize("case", ["http", "https", "unicode", "codec"])
def test_authjs_decodes_python_tokens(
    authjs_reads_python: dict[str, tuple[str, dict[str, Any]]], case: str
) -> None:
    _, result = authjs_reads_python[case]
    payload = _node_value(result)
    expected = UNICODE_CLAIMS if case == "unicode" else CLAIMS
    assert {k: v for k, v in payload.items() if k not in ("iat", "exp", "jti")} == expected
    assert payload["exp"] - payload["iat"] == (600 if case == "codec" else 30 * 24 * 3600)
    assert abs(payload["iat"] - time.time()) < 60
    assert str(uuid.UUID(payload["jti"], version=4)) == payload["jti"]


def test_authjs_decodes_python_token_with_rotated_secrets(
    authjs_reads_python: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    assert _node_value(authjs_reads_python["rotated"][1])["sub"] == CLAIMS["sub"]
    # Only the first secret of the list encrypts.
    error = _node_error(authjs_reads_python["only_first_secret_used"][1])
    assert "no matching decryption secret" in error


def test_authjs_rejects_python_token_under_other_salt(
    authjs_reads_python: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    assert "no matching decryption secret" in _node_error(authjs_reads_python["salt_mismatch"][1])


def test_authjs_sees_python_expiry(
    authjs_reads_python: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    assert "JWTExpired" in _node_error(authjs_reads_python["expired"][1])


def test_python_and_authjs_build_the_same_header(
    node_tokens: dict[str, str], authjs_reads_python: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    # Same secret and salt: same derived key, so the same thumbprint, byte for byte.
    assert authjs_reads_python["http"][0].split(".")[0] == node_tokens["http"].split(".")[0]
    assert authjs_reads_python["https"][0].split(".")[0] == node_tokens["https"].split(".")[0]
    assert _header(node_tokens["http"])["kid"] != _header(node_tokens["https"])["kid"]


# -- Auth.js -> Python ---------------------------------------------------------------------


@pytest.mark.parametrize(("case", "salt"), [("http", HTTP), ("https", HTTPS)])
def test_python_decodes_authjs_tokens(node_tokens: dict[str, str], case: str, salt: str) -> None:
    payload = decode(node_tokens[case], secret=SECRET_A, salt=salt)
    assert {k: v for k, v in payload.items() if k not in ("iat", "exp", "jti")} == CLAIMS
    assert payload["exp"] - payload["iat"] == 3600
    assert uuid.UUID(payload["jti"]).version == 4


def test_python_decodes_authjs_unicode_claims(node_tokens: dict[str, str]) -> None:
    payload = decode(node_tokens["unicode"], secret=SECRET_A, salt=HTTP)
    assert payload["name"] == UNICODE_CLAIMS["name"]
    assert payload["note"] == UNICODE_CLAIMS["note"]


def test_python_rejects_authjs_token_under_other_salt(node_tokens: dict[str, str]) -> None:
    with pytest.raises(JWTDecodeError):
        decode(node_tokens["http"], secret=SECRET_A, salt=HTTPS)
    with pytest.raises(JWTDecodeError):
        decode(node_tokens["https"], secret=SECRET_A, salt=HTTP)


def test_python_decodes_authjs_rotated_token_with_secret_second(
    node_tokens: dict[str, str],
) -> None:
    payload = decode(node_tokens["rotated"], secret=[SECRET_C, SECRET_A], salt=HTTP)
    assert payload["sub"] == CLAIMS["sub"]
    with pytest.raises(JWTDecodeError):
        decode(node_tokens["rotated"], secret=[SECRET_B, SECRET_C], salt=HTTP)


def test_kidless_token_uses_first_secret(node_tokens: dict[str, str]) -> None:
    token = node_tokens["kidless"]
    assert "kid" not in _header(token)
    assert decode(token, secret=[SECRET_A, SECRET_B], salt=HTTP)["sub"] == CLAIMS["sub"]
    with pytest.raises(JWTDecodeError):
        decode(token, secret=[SECRET_B, SECRET_A], salt=HTTP)


def test_gcm_tokens_are_accepted(node_tokens: dict[str, str]) -> None:
    assert _header(node_tokens["gcm"])["enc"] == GCM
    payload = decode(node_tokens["gcm"], secret=[SECRET_A, SECRET_B], salt=HTTP)
    assert payload["email"] == CLAIMS["email"]
    kidless = decode(node_tokens["gcm_kidless"], secret=[SECRET_A, SECRET_B], salt=HTTP)
    assert kidless["email"] == CLAIMS["email"]
    with pytest.raises(JWTDecodeError):
        decode(node_tokens["gcm_kidless"], secret=[SECRET_B, SECRET_A], salt=HTTP)
    with pytest.raises(JWTDecodeError):
        decode(node_tokens["gcm"], secret=[SECRET_A], salt=HTTP)


@pytest.mark.parametrize(
    "case",
    ["a256kw", "zip", "not_json", "array", "string", "unknown_enc"],
)
def test_python_rejects_jose_tokens_auth_js_does_not_issue(
    node_tokens: dict[str, str], case: str
) -> None:
    with pytest.raises(JWTDecodeError):
        decode(node_tokens[case], secret=SECRET_A, salt=HTTP)


# -- encoding --------------------------------------------------------------------------------


def test_encode_sets_iat_exp_jti_and_overrides_the_callers() -> None:
    now = 1_700_000_000.75
    token = encode(
        {"sub": "1", "iat": 5, "exp": 6, "jti": "mine"},
        secret=SECRET_A,
        salt=HTTP,
        max_age=120,
        now=now,
    )
    payload = decode(token, secret=SECRET_A, salt=HTTP, now=now)
    assert payload["iat"] == 1_700_000_000
    assert payload["exp"] == 1_700_000_120
    assert payload["jti"] != "mine"
    assert uuid.UUID(payload["jti"]).version == 4
    assert list(payload) == ["sub", "iat", "exp", "jti"]


def test_encode_uses_a_fresh_iv_and_jti_each_time() -> None:
    codec = JWTCodec([SECRET_A], HTTP)
    first, second = (codec.encode(CLAIMS, max_age=60) for _ in range(2))
    assert first.split(".")[2] != second.split(".")[2]
    assert codec.decode(first)["jti"] != codec.decode(second)["jti"]


def test_header_is_dir_a256cbc_hs512_with_kid() -> None:
    token = encode(CLAIMS, secret=[SECRET_A, SECRET_B], salt=HTTP)
    header = _header(token)
    assert header == {"alg": "dir", "enc": CBC, "kid": header["kid"]}
    assert token.split(".")[1] == ""
    assert header["kid"] == _header(encode({}, secret=SECRET_A, salt=HTTP))["kid"]


def test_codec_and_module_functions_agree() -> None:
    codec = JWTCodec([SECRET_B, SECRET_A], HTTPS)
    token = codec.encode(CLAIMS, max_age=60)
    assert decode(token, secret=SECRET_B, salt=HTTPS)["sub"] == CLAIMS["sub"]
    assert codec.decode(encode(CLAIMS, secret=SECRET_A, salt=HTTPS))["email"] == CLAIMS["email"]


@pytest.mark.parametrize("secret", ["", [], ["ok", ""], ()])
def test_missing_secret_is_a_configuration_error(secret: Any) -> None:
    with pytest.raises(ValueError, match="AUTH_SECRET"):
        encode(CLAIMS, secret=secret, salt=HTTP)
    with pytest.raises(ValueError, match="python -m asgi_session secret"):
        decode("x", secret=secret, salt=HTTP)
    with pytest.raises(ValueError, match="AUTH_SECRET"):
        JWTCodec(secret if not isinstance(secret, str) else [secret], HTTP)


def test_encode_refuses_claims_json_cannot_carry() -> None:
    with pytest.raises(ValueError):
        encode({"score": float("nan")}, secret=SECRET_A, salt=HTTP)
    with pytest.raises(TypeError):
        encode({"when": object()}, secret=SECRET_A, salt=HTTP)


# -- time --------------------------------------------------------------------------------------

T0 = 1_700_000_000


def _issued(max_age: int = 60, **claims: Any) -> str:
    return encode(claims or {"sub": "1"}, secret=SECRET_A, salt=HTTP, max_age=max_age, now=T0)


def test_expired_token_is_rejected() -> None:
    token = _issued(60)
    with pytest.raises(JWTDecodeError, match="expired"):
        decode(token, secret=SECRET_A, salt=HTTP, now=T0 + 60 + 15)
    with pytest.raises(JWTDecodeError, match="expired"):
        decode(token, secret=SECRET_A, salt=HTTP, now=T0 + 10_000)


def test_expiry_within_clock_tolerance_is_accepted() -> None:
    token = _issued(60)
    assert decode(token, secret=SECRET_A, salt=HTTP, now=T0 + 60 + 10)["sub"] == "1"
    assert decode(token, secret=SECRET_A, salt=HTTP, now=T0 + 60 + 14.9)["sub"] == "1"


def test_not_before_is_checked_with_tolerance() -> None:
    token = _seal(json.dumps({"sub": "1", "nbf": T0 + 20}).encode(), {"alg": "dir", "enc": CBC})
    with pytest.raises(JWTDecodeError):
        decode(token, secret=SECRET_A, salt=HTTP, now=T0)
    assert decode(token, secret=SECRET_A, salt=HTTP, now=T0 + 5)["sub"] == "1"


@pytest.mark.parametrize(
    "claims",
    [{"iat": "yesterday"}, {"iat": None}, {"exp": "never"}, {"nbf": [1]}, {"exp": True}],
)
def test_time_claims_must_be_numbers(claims: dict[str, Any]) -> None:
    token = _seal(json.dumps({"sub": "1", **claims}).encode(), {"alg": "dir", "enc": CBC})
    with pytest.raises(JWTDecodeError, match="must be a number"):
        decode(token, secret=SECRET_A, salt=HTTP, now=T0)


# -- rejection ---------------------------------------------------------------------------------

_DIR_CBC = {"alg": "dir", "enc": CBC}


def test_sealing_helper_builds_accepted_tokens() -> None:
    # The negative cases below only mean something if the sealer itself is sound.
    token = _seal(b'{"sub":"1"}', _DIR_CBC)
    assert decode(token, secret=SECRET_A, salt=HTTP) == {"sub": "1"}


@pytest.mark.parametrize("segment", [0, 2, 3, 4], ids=["header", "iv", "ciphertext", "tag"])
def test_tampered_segment_is_rejected(segment: int) -> None:
    token = encode(CLAIMS, secret=SECRET_A, salt=HTTP)
    tampered = _with_segment(token, segment, _flip_middle(token.split(".")[segment]))
    with pytest.raises(JWTDecodeError):
        decode(tampered, secret=SECRET_A, salt=HTTP)


def test_header_is_authenticated() -> None:
    token = encode(CLAIMS, secret=SECRET_A, salt=HTTP)
    header = _header(token)
    for changed in ({**header, "typ": "JWT"}, {"kid": header["kid"], "alg": "dir", "enc": CBC}):
        segment = _b64(json.dumps(changed, separators=(",", ":")).encode())
        with pytest.raises(JWTDecodeError, match="tag"):
            decode(_with_segment(token, 0, segment), secret=SECRET_A, salt=HTTP)


def test_truncated_tokens_are_rejected() -> None:
    token = encode(CLAIMS, secret=SECRET_A, salt=HTTP)
    parts = token.split(".")
    for truncated in (
        token[:-1],
        token[:-4],
        token[: len(token) // 2],
        ".".join(parts[:4]),
        ".".join(parts[:4]) + ".",
        token[1:],
        _with_segment(token, 3, parts[3][:-16]),
    ):
        with pytest.raises(JWTDecodeError):
            decode(truncated, secret=SECRET_A, salt=HTTP)


def test_wrong_secret_is_rejected() -> None:
    token = encode(CLAIMS, secret=SECRET_A, salt=HTTP)
    with pytest.raises(JWTDecodeError):
        decode(token, secret=SECRET_B, salt=HTTP)
    with pytest.raises(JWTDecodeError):
        decode(token, secret=[SECRET_B, SECRET_C], salt=HTTP)


def test_kid_of_another_secret_is_rejected_even_when_the_key_would_work() -> None:
    token = encode(CLAIMS, secret=SECRET_A, salt=HTTP)
    kid_b = _header(encode({}, secret=SECRET_B, salt=HTTP))["kid"]
    sealed = _seal(b'{"sub":"1"}', {**_DIR_CBC, "kid": kid_b})
    with pytest.raises(JWTDecodeError):
        decode(sealed, secret=[SECRET_A, SECRET_B], salt=HTTP)
    assert decode(token, secret=[SECRET_B, SECRET_A], salt=HTTP)["sub"] == CLAIMS["sub"]


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none"},
        {"alg": "none", "enc": CBC},
        {"alg": "A256KW", "enc": CBC},
        {"alg": "RSA-OAEP", "enc": CBC},
        {"alg": "DIR", "enc": CBC},
        {"enc": CBC},
        {"alg": "dir"},
        {"alg": "dir", "enc": "A128CBC-HS256"},
        {"alg": "dir", "enc": CBC, "zip": "DEF"},
        {"alg": "dir", "enc": CBC, "crit": ["exp"], "exp": 1},
        {"alg": "dir", "enc": CBC, "kid": 7},
        {"alg": "dir", "enc": CBC, "kid": "not-a-thumbprint"},
        {"alg": "dir", "enc": CBC, "kid": "ümlaut"},
        {"alg": "dir", "enc": CBC, "sub": "someone-else"},
        ["dir", CBC],
    ],
    ids=lambda header: json.dumps(header),
)
def test_unacceptable_headers_are_rejected(header: Any) -> None:
    # Sealed with the right key: only the header check can reject these.
    token = _seal(b'{"sub":"1"}', header)
    with pytest.raises(JWTDecodeError):
        decode(token, secret=SECRET_A, salt=HTTP)


def test_replicated_header_claim_that_matches_is_accepted() -> None:
    token = _seal(b'{"sub":"1"}', {**_DIR_CBC, "sub": "1"})
    assert decode(token, secret=SECRET_A, salt=HTTP) == {"sub": "1"}


def test_encrypted_key_segment_must_be_empty() -> None:
    token = encode(CLAIMS, secret=SECRET_A, salt=HTTP)
    with pytest.raises(JWTDecodeError):
        decode(_with_segment(token, 1, "AAAA"), secret=SECRET_A, salt=HTTP)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"not json",
        b"[1,2,3]",
        b'"text"',
        b"null",
        b"42",
        b'{"a":NaN}',
        b'{"a":1} x',
        b"\xff\xfe{}",
        b"",
    ],
)
def test_payload_must_be_a_json_object(plaintext: bytes) -> None:
    with pytest.raises(JWTDecodeError):
        decode(_seal(plaintext, _DIR_CBC), secret=SECRET_A, salt=HTTP)


@pytest.mark.parametrize("last_byte", [0, 2, 17, 255])
def test_bad_padding_is_rejected(last_byte: int) -> None:
    plaintext = b'{"sub":"1"}     ' + b" " * 15 + bytes((last_byte,))
    with pytest.raises(JWTDecodeError, match="padding"):
        decode(_seal(plaintext, _DIR_CBC, pkcs7=False), secret=SECRET_A, salt=HTTP)


def test_oversized_token_is_rejected_even_if_valid() -> None:
    codec = JWTCodec([SECRET_A], HTTP)
    small = codec.encode({"blob": "x" * (MAX_TOKEN_LENGTH // 2)}, max_age=60)
    assert len(small) <= MAX_TOKEN_LENGTH
    assert codec.decode(small)["blob"]
    large = codec.encode({"blob": "x" * MAX_TOKEN_LENGTH}, max_age=60)
    assert len(large) > MAX_TOKEN_LENGTH
    with pytest.raises(JWTDecodeError, match="too long"):
        codec.decode(large)


def test_deeply_nested_header_is_rejected() -> None:
    segment = _b64(b"[" * 40_000)
    assert len(segment) < MAX_TOKEN_LENGTH
    with pytest.raises(JWTDecodeError):
        decode(f"{segment}..{'A' * 22}.{'A' * 22}.AAAA", secret=SECRET_A, salt=HTTP)


_GARBAGE = [
    "",
    ".",
    "....",
    "......",
    "a.b.c.d.e",
    "A.A.A.A.A",
    "eyJhbGciOiJkaXIifQ....",
    "not a token",
    "héllo.wörld.ä.ö.ü",
    "🍪🍪🍪",
    "\x00\x00\x00\x00",
    "\ud800.\udfff....",
    "eyJ=.==.=.=.=",
    " eyJhbGciOiJkaXIifQ. . . . ",
    "eyJhbGciOiJkaXIifQ..+/+/.+/+/.+/+/",
]


@pytest.mark.parametrize("garbage", _GARBAGE)
def test_garbage_is_rejected(garbage: str) -> None:
    with pytest.raises(JWTDecodeError):
        decode(garbage, secret=SECRET_A, salt=HTTP)


@pytest.mark.parametrize("not_a_string", [None, b"a.b.c.d.e", 42, ["a"]])
def test_non_string_input_is_rejected(not_a_string: Any) -> None:
    with pytest.raises(JWTDecodeError):
        decode(not_a_string, secret=SECRET_A, salt=HTTP)


def test_foreign_characters_inside_segments_are_rejected() -> None:
    # A lenient base64 decoder skips them (four keep the length valid) and reads "+" and
    # "/" as "-" and "_"; a token must not have several spellings.
    tokens = (encode(CLAIMS, secret=SECRET_A, salt=HTTP) for _ in range(100))
    token = next(t for t in tokens if "-" in t.split(".")[3] or "_" in t.split(".")[3])
    ciphertext = token.split(".")[3]
    spellings = [ciphertext[:8] + bad * 4 + ciphertext[8:] for bad in ("!", " ", "\n", "é")]
    spellings.append(ciphertext.replace("-", "+").replace("_", "/"))
    for spelling in spellings:
        with pytest.raises(JWTDecodeError):
            decode(_with_segment(token, 3, spelling), secret=SECRET_A, salt=HTTP)


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _token_with_unused_bits_in_every_encrypted_segment() -> str:
    # The IV and tag always have such bits; the ciphertext has them for some lengths.
    for size in range(16):
        token = encode({"sub": "1", "pad": "x" * size}, secret=SECRET_A, salt=HTTP)
        if all(len(segment) % 4 for segment in token.split(".")[2:]):
            return token
    raise AssertionError("no claims size gave such a token")


def test_unused_trailing_bits_must_be_zero() -> None:
    # A segment of 2 (or 3) letters modulo 4 ends in a letter with 4 (or 2) bits no byte
    # uses; decoders drop them, so setting them would spell the same token another way.
    token = _token_with_unused_bits_in_every_encrypted_segment()
    assert decode(token, secret=SECRET_A, salt=HTTP)["sub"] == "1"
    spellings = 0
    for index, segment in enumerate(token.split(".")):
        unused = {2: 4, 3: 2}.get(len(segment) % 4)
        if unused is None:
            continue
        value = _B64URL.index(segment[-1])
        assert value % (1 << unused) == 0, "the package writes the canonical spelling"
        for bits in range(1, 1 << unused):
            spelling = segment[:-1] + _B64URL[value | bits]
            assert _unb64(spelling) == _unb64(segment), "a lenient decoder reads the same"
            with pytest.raises(JWTDecodeError, match="malformed"):
                decode(_with_segment(token, index, spelling), secret=SECRET_A, salt=HTTP)
            spellings += 1
    assert spellings >= 15 + 3 + 3  # the IV, the tag and the ciphertext at least


def test_random_corruption_only_ever_raises_jwt_decode_error() -> None:
    token = encode(CLAIMS, secret=SECRET_A, salt=HTTP)
    alphabet = "ABCxyz019-_.=é\x00 "
    rng = random.Random(20240601)
    accepted = 0
    for _ in range(3000):
        chars = list(token)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(chars))
            action = rng.random()
            if action < 0.4:
                chars[position] = rng.choice(alphabet)
            elif action < 0.7:
                del chars[position]
            else:
                chars.insert(position, rng.choice(alphabet))
        try:
            payload = decode("".join(chars), secret=SECRET_A, salt=HTTP)
        except JWTDecodeError:
            continue
        # A token has one spelling: only changes that change nothing leave it valid.
        assert "".join(chars) == token
        assert payload["sub"] == CLAIMS["sub"]
        accepted += 1
    assert accepted < 100
