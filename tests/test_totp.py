"""Sealed secrets, TOTP codes, QR codes and recovery codes.

TOTP codes are checked against RFC 6238's own test vectors, recomputed here with
``hmac`` and ``struct`` from the RFC's algorithm rather than with pyotp, so the test does
not trust the library it tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
import segno

from asgi_session._totp import (
    RECOVERY_CODE_ALPHABET,
    SealedValueError,
    find_recovery_code,
    hash_recovery_code,
    matching_step,
    new_recovery_codes,
    new_secret,
    normalise_recovery_code,
    open_sealed,
    otpauth_uri,
    qr_svg,
    seal,
)
from asgi_session.errors import ConfigurationError

# RFC 6238 appendix B: the SHA-1 seed, and (time, 8-digit TOTP) pairs.
RFC_SEED = b"12345678901234567890"
RFC_SECRET = base64.b32encode(RFC_SEED).decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]

SECRETS = ("current-secret-of-32-characters!",)
BIND = "user-1"


def rfc6238(seed: bytes, for_time: int, digits: int) -> str:
    """RFC 6238 (and RFC 4226's dynamic truncation), written out from the RFCs."""
    mac = hmac.new(seed, struct.pack(">Q", for_time // 30), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    (number,) = struct.unpack(">I", mac[offset : offset + 4])
    return str((number & 0x7FFFFFFF) % 10**digits).zfill(digits)


def code_at(step: int) -> str:
    return rfc6238(RFC_SEED, step * 30, 6)


# --- TOTP -----------------------------------------------------------------------------


def test_the_reference_implementation_reproduces_the_rfc_table() -> None:
    assert [rfc6238(RFC_SEED, when, 8) for when, _ in RFC_VECTORS] == [
        code for _, code in RFC_VECTORS
    ]


@pytest.mark.parametrize(("when", "eight_digits"), RFC_VECTORS)
def test_rfc_6238_codes_match_their_step(when: int, eight_digits: str) -> None:
    six_digits = rfc6238(RFC_SEED, when, 6)
    # Six digits are the eight-digit value's last six (both are the number modulo 10**n).
    assert six_digits == eight_digits[-6:]
    assert matching_step(RFC_SECRET, six_digits, when) == when // 30


def test_the_returned_step_is_the_one_the_code_is_for() -> None:
    now = 1111111111.0
    current = int(now // 30)
    assert matching_step(RFC_SECRET, code_at(current), now) == current
    assert matching_step(RFC_SECRET, code_at(current - 1), now) == current - 1
    assert matching_step(RFC_SECRET, code_at(current + 1), now) == current + 1


def test_codes_two_steps_away_are_refused_by_default() -> None:
    now = 1234567890.0
    current = int(now // 30)
    assert matching_step(RFC_SECRET, code_at(current - 2), now) is None
    assert matching_step(RFC_SECRET, code_at(current + 2), now) is None


def test_the_window_is_the_number_of_steps_either_side() -> None:
    now = 1234567890.0
    current = int(now // 30)
    assert matching_step(RFC_SECRET, code_at(current - 2), now, window=2) == current - 2
    assert matching_step(RFC_SECRET, code_at(current + 2), now, window=2) == current + 2
    assert matching_step(RFC_SECRET, code_at(current), now, window=0) == current
    assert matching_step(RFC_SECRET, code_at(current - 1), now, window=0) is None
    with pytest.raises(ValueError, match="window"):
        matching_step(RFC_SECRET, code_at(current), now, window=-1)


def test_the_step_is_counted_from_the_epoch_in_30_second_steps() -> None:
    # The last second of a step and the first of the next.
    assert matching_step(RFC_SECRET, code_at(10), 329.9, window=0) == 10
    assert matching_step(RFC_SECRET, code_at(11), 330.0, window=0) == 11
    # At the epoch there is no step before; the window does not look for one.
    assert matching_step(RFC_SECRET, code_at(0), 0.0) == 0
    assert matching_step(RFC_SECRET, code_at(1), 0.0) == 1


def test_a_code_of_two_steps_is_taken_for_the_nearest_to_the_clock() -> None:
    # Found by search: with the RFC's seed, steps 910737 and 910738 share a code, and so
    # do 153567 and 153569.
    assert code_at(910737) == code_at(910738)
    assert matching_step(RFC_SECRET, code_at(910737), 910737 * 30.0) == 910737
    assert matching_step(RFC_SECRET, code_at(910738), 910738 * 30.0) == 910738
    # Either side of the clock: the earlier, which leaves the later free for the next code.
    assert code_at(153567) == code_at(153569)
    assert matching_step(RFC_SECRET, code_at(153567), 153568 * 30.0) == 153567


def test_spaces_in_a_code_are_ignored() -> None:
    now = 1111111109.0
    code = code_at(int(now // 30))
    assert matching_step(RFC_SECRET, f"{code[:3]} {code[3:]}", now) == int(now // 30)
    assert matching_step(RFC_SECRET, f" {code}\n", now) == int(now // 30)


def test_a_wrong_code_matches_nothing() -> None:
    now = 1111111109.0
    code = code_at(int(now // 30))
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert matching_step(RFC_SECRET, wrong, now) is None
    assert matching_step(new_secret(), code, now) is None


# Digits to int() and str.isdigit(), though no authenticator app shows them.
FULL_WIDTH = {ord("0") + digit: 0xFF10 + digit for digit in range(10)}  # "\uff10".."\uff19"
ARABIC_INDIC = {ord("0") + digit: 0x0660 + digit for digit in range(10)}  # "\u0660".."\u0669"


@pytest.mark.parametrize(
    "spell",
    [
        pytest.param(lambda code: code.translate(FULL_WIDTH), id="full-width digits"),
        pytest.param(lambda code: code.translate(ARABIC_INDIC), id="Arabic-Indic digits"),
        pytest.param(lambda code: code[:5], id="5 digits"),
        pytest.param(lambda code: code + "0", id="7 digits"),
        pytest.param(lambda code: "0" + code, id="7 digits, leading zero"),
        pytest.param(lambda code: code[:5] + "a", id="a letter"),
        pytest.param(lambda code: f"+{code[1:]}", id="a sign"),
        pytest.param(lambda code: f"{code[:3]}-{code[3:]}", id="a dash"),
        pytest.param(lambda code: "", id="empty"),
        pytest.param(lambda code: " " * 100 + code, id="too long to look at"),
    ],
)
def test_only_six_ascii_digits_are_a_code(spell: Callable[[str], str]) -> None:
    # Each is a spelling of the right code: comparing numbers, or reading the digits
    # with int() or str.isdigit(), would let some through.
    now = 1111111109.0
    code = code_at(int(now // 30))
    assert matching_step(RFC_SECRET, code, now) is not None
    assert matching_step(RFC_SECRET, spell(code), now) is None


def test_the_rfc_eight_digit_value_is_not_its_six_digit_code() -> None:
    when, eight_digits = RFC_VECTORS[0]
    assert matching_step(RFC_SECRET, eight_digits[-6:], when) == when // 30
    assert matching_step(RFC_SECRET, eight_digits, when) is None


def test_a_malformed_code_is_refused_before_the_secret_is_used() -> None:
    # The secret is not base32: using it would raise.
    with pytest.raises(ValueError):
        matching_step("not base32!", "123456", 1111111109.0)
    assert matching_step("not base32!", "12345", 1111111109.0) is None
    assert (
        matching_step("not base32!", "\uff11\uff12\uff13\uff14\uff15\uff16", 1111111109.0) is None
    )


def test_new_secrets_are_160_random_bits_in_base32() -> None:
    made = {new_secret() for _ in range(200)}
    assert len(made) == 200
    for secret in made:
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)
        assert len(base64.b32decode(secret)) == 20


def test_a_new_secret_gives_codes_an_app_would_compute() -> None:
    secret = new_secret()
    now = 1700000000.0
    expected = rfc6238(base64.b32decode(secret), int(now), 6)
    assert matching_step(secret, expected, now) == int(now // 30)


def test_the_otpauth_uri_names_the_secret_account_and_issuer() -> None:
    uri = otpauth_uri(RFC_SECRET, account="ada@example.com", issuer="Example App")
    assert uri == (
        f"otpauth://totp/Example%20App:ada%40example.com?secret={RFC_SECRET}&issuer=Example%20App"
    )


def test_without_the_mfa_extra_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes `import pyotp` raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "pyotp", None)
    monkeypatch.setitem(sys.modules, "segno", None)
    for attempt in (
        lambda: matching_step(RFC_SECRET, "123456", 59.0),
        lambda: otpauth_uri(RFC_SECRET, account="a", issuer="b"),
        lambda: qr_svg("otpauth://totp/x"),
    ):
        with pytest.raises(ConfigurationError, match=re.escape("pip install 'asgi-session[mfa]'")):
            attempt()
    # What needs neither library still works.
    assert len(new_secret()) == 32
    assert open_sealed(SECRETS, "totp", seal(SECRETS, "totp", "x", bind=BIND), bind=BIND)[0] == "x"


# --- Sealed secrets -------------------------------------------------------------------


def test_a_sealed_value_opens_with_the_same_secret_purpose_and_user() -> None:
    token = seal(SECRETS, "totp", RFC_SECRET, bind=BIND)
    assert token.startswith("v1.")
    assert RFC_SECRET not in token
    assert open_sealed(SECRETS, "totp", token, bind=BIND) == (RFC_SECRET, False)


def test_each_seal_uses_a_fresh_nonce() -> None:
    tokens = {seal(SECRETS, "totp", RFC_SECRET, bind=BIND) for _ in range(50)}
    assert len(tokens) == 50
    nonces = {base64.urlsafe_b64decode(token[3:] + "==")[:12] for token in tokens}
    assert len(nonces) == 50


def test_non_ascii_plaintext_and_user_ids_round_trip() -> None:
    token = seal(SECRETS, "note", "Zoë 🚀", bind="ユーザー")
    assert open_sealed(SECRETS, "note", token, bind="ユーザー") == ("Zoë 🚀", False)


def test_a_value_sealed_before_a_rotation_opens_and_says_so() -> None:
    old = seal(["old-secret"], "totp", RFC_SECRET, bind=BIND)
    assert open_sealed(["new-secret", "old-secret"], "totp", old, bind=BIND) == (RFC_SECRET, True)
    new = seal(["new-secret", "old-secret"], "totp", RFC_SECRET, bind=BIND)
    assert open_sealed(["new-secret"], "totp", new, bind=BIND) == (RFC_SECRET, False)
    with pytest.raises(SealedValueError):
        open_sealed(["old-secret"], "totp", new, bind=BIND)


def test_a_value_sealed_with_a_secret_no_longer_configured_does_not_open() -> None:
    token = seal(["retired-secret"], "totp", RFC_SECRET, bind=BIND)
    with pytest.raises(SealedValueError):
        open_sealed(["new-secret", "previous-secret"], "totp", token, bind=BIND)


def test_a_sealed_value_copied_onto_another_user_does_not_open() -> None:
    token = seal(SECRETS, "totp", RFC_SECRET, bind="user-1")
    with pytest.raises(SealedValueError):
        open_sealed(SECRETS, "totp", token, bind="user-2")
    with pytest.raises(SealedValueError):
        open_sealed(SECRETS, "totp", token, bind="")


def test_a_value_sealed_for_one_purpose_does_not_open_as_another() -> None:
    token = seal(SECRETS, "totp", RFC_SECRET, bind=BIND)
    with pytest.raises(SealedValueError):
        open_sealed(SECRETS, "recovery", token, bind=BIND)


def test_every_tampered_byte_is_detected() -> None:
    token = seal(SECRETS, "totp", RFC_SECRET, bind=BIND)
    raw = base64.urlsafe_b64decode(token[3:] + "==")
    for position in range(len(raw)):
        changed = bytearray(raw)
        changed[position] ^= 0x01
        forged = "v1." + base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode()
        with pytest.raises(SealedValueError):
            open_sealed(SECRETS, "totp", forged, bind=BIND)


def test_a_truncated_or_extended_token_does_not_open() -> None:
    token = seal(SECRETS, "totp", RFC_SECRET, bind=BIND)
    for cut in range(1, len(token)):
        with pytest.raises(SealedValueError):
            open_sealed(SECRETS, "totp", token[:cut], bind=BIND)
    for extended in (token + "A", token + "AAAA", token + "=", token + " "):
        with pytest.raises(SealedValueError):
            open_sealed(SECRETS, "totp", extended, bind=BIND)


def test_a_second_spelling_of_the_same_bytes_does_not_open() -> None:
    # The last letter carries bits no byte uses; decoders ignore them. (12 bytes of
    # nonce, 3 of plaintext and 16 of tag: 31, which leaves 4 unused bits.)
    token = seal(SECRETS, "totp", "abc", bind=BIND)
    body = token[3:]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bytes = [
        body[:-1] + letter
        for letter in alphabet
        if letter != body[-1]
        and base64.urlsafe_b64decode(body[:-1] + letter + "==")
        == base64.urlsafe_b64decode(body + "==")
    ]
    assert len(same_bytes) == 15
    for spelling in same_bytes:
        with pytest.raises(SealedValueError):
            open_sealed(SECRETS, "totp", "v1." + spelling, bind=BIND)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "v1",
        "v1.",
        "v1.AAAA",
        "v1.!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "v1." + "A" * 5000,
        "v1.\udc80" * 10,
        "V1." + "A" * 60,
        "JBSWY3DPEHPK3PXP",
        "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..AAAA.AAAA.AAAA",
    ],
)
def test_garbage_raises_only_the_sealed_value_error(garbage: str) -> None:
    with pytest.raises(SealedValueError):
        open_sealed(SECRETS, "totp", garbage, bind=BIND)


def test_an_unknown_version_does_not_open() -> None:
    token = seal(SECRETS, "totp", RFC_SECRET, bind=BIND)
    with pytest.raises(SealedValueError):
        open_sealed(SECRETS, "totp", "v2." + token[3:], bind=BIND)


@pytest.mark.parametrize("not_a_string", [None, 42, b"v1.AAAA", ["v1.AAAA"]])
def test_a_token_that_is_not_a_string_raises_the_sealed_value_error(
    not_a_string: object,
) -> None:
    with pytest.raises(SealedValueError):
        open_sealed(SECRETS, "totp", not_a_string, bind=BIND)  # type: ignore[arg-type]


def test_sealing_without_a_secret_says_how_to_set_one() -> None:
    with pytest.raises(ConfigurationError, match="AUTH_SECRET"):
        seal([], "totp", RFC_SECRET, bind=BIND)
    with pytest.raises(ConfigurationError, match="AUTH_SECRET"):
        seal([""], "totp", RFC_SECRET, bind=BIND)


def test_a_single_string_secret_is_one_secret_not_its_characters() -> None:
    token = seal("one-secret", "totp", RFC_SECRET, bind=BIND)
    assert open_sealed(["one-secret"], "totp", token, bind=BIND) == (RFC_SECRET, False)
    with pytest.raises(SealedValueError):
        open_sealed(["o"], "totp", token, bind=BIND)


# --- QR code --------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"
URI = otpauth_uri(RFC_SECRET, account="ada@example.com", issuer="Example App")


def test_the_qr_code_is_an_svg_element_without_a_prolog() -> None:
    svg = qr_svg(URI)
    assert svg.startswith("<svg ")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox")


def test_the_qr_code_is_labelled_for_screen_readers() -> None:
    root = ET.fromstring(qr_svg(URI, title="Scan me & go"))
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Scan me & go"
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == "Scan me & go"


def test_the_qr_code_passes_a_strict_content_security_policy() -> None:
    svg = qr_svg(URI)
    root = ET.fromstring(svg)
    for element in root.iter():
        assert element.tag.removeprefix(SVG) not in {"script", "style", "foreignObject"}
        assert "style" not in element.attrib
        assert not any(name.startswith("on") for name in element.attrib)
        assert not any("javascript:" in value for value in element.attrib.values())
    # The URI (and its secret) is in the picture only, not as text anything could read.
    assert RFC_SECRET not in svg
    assert "otpauth" not in svg


def test_the_qr_code_is_dark_on_a_white_quiet_zone() -> None:
    root = ET.fromstring(qr_svg(URI))
    paths = list(root.iter(f"{SVG}path"))
    assert {path.get("fill") for path in paths} >= {"#fff"}
    assert {path.get("stroke") for path in paths} >= {"#000"}


def test_the_qr_code_encodes_the_uri_at_error_correction_m() -> None:
    # The dark modules' path as segno draws this URI at level M, unscaled.
    expected = ET.fromstring(
        segno.make(URI, error="m").svg_inline(scale=1, dark="#000", light=None)
    ).find("path")
    assert expected is not None
    root = ET.fromstring(qr_svg(URI))
    dark = [path for path in root.iter(f"{SVG}path") if path.get("stroke") == "#000"]
    assert [path.get("d") for path in dark] == [expected.get("d")]
    other = otpauth_uri(new_secret(), account="ada@example.com", issuer="Example App")
    assert qr_svg(other) != qr_svg(URI)


# --- Recovery codes -------------------------------------------------------------------

RECOVERY_CODE = re.compile(f"[{RECOVERY_CODE_ALPHABET}]{{5}}-[{RECOVERY_CODE_ALPHABET}]{{5}}")


def test_ten_recovery_codes_are_made_by_default() -> None:
    assert len(new_recovery_codes()) == 10
    assert len(new_recovery_codes(3)) == 3
    with pytest.raises(ValueError, match="count"):
        new_recovery_codes(0)


def test_recovery_codes_are_two_groups_of_five_without_look_alikes() -> None:
    assert set(RECOVERY_CODE_ALPHABET).isdisjoint("01ilo")
    assert RECOVERY_CODE_ALPHABET.lower() == RECOVERY_CODE_ALPHABET
    for code in new_recovery_codes(50):
        assert RECOVERY_CODE.fullmatch(code), code


def test_recovery_codes_are_random_over_the_whole_alphabet() -> None:
    codes = [code for _ in range(100) for code in new_recovery_codes()]
    assert len(set(codes)) == len(codes) == 1000
    letters = "".join(codes).replace("-", "")
    # 10,000 letters: each of the 31 appears (about 320 times each).
    assert set(letters) == set(RECOVERY_CODE_ALPHABET)
    assert min(letters.count(letter) for letter in RECOVERY_CODE_ALPHABET) > 200


@pytest.mark.parametrize(
    "typed",
    [
        "abcde-fghjk",
        "ABCDE FGHJK",
        "abcde-fghjk ",
        " Abcde - Fghjk\n",
        "abcdefghjk",
        "ab-cde-fghjk",
    ],
)
def test_recovery_codes_are_read_as_people_type_them(typed: str) -> None:
    assert normalise_recovery_code(typed) == "abcdefghjk"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "abcde-fghj",
        "abcde-fghjkm",
        "abcde-fghji",
        "abcde-fghj0",
        "abcde_fghjk",
        "abcde-fghjk".translate({letter: letter + 0xFEE0 for letter in range(0x61, 0x7B)}),
        "abcde-fghjk" + " " * 100,
    ],
)
def test_what_cannot_be_a_recovery_code_is_refused(typed: str) -> None:
    assert normalise_recovery_code(typed) is None


def test_a_recovery_code_hash_is_a_keyed_hmac_of_the_normalised_code() -> None:
    hashed = hash_recovery_code(SECRETS, "abcde-fghjk")
    assert re.fullmatch(r"[0-9a-f]{64}", hashed)
    assert hash_recovery_code(SECRETS, "ABCDE FGHJK") == hashed
    assert hash_recovery_code(["another-secret"], "abcde-fghjk") != hashed
    # Not a plain digest anyone could recompute without the app's secret.
    assert hashed != hashlib.sha256(b"abcdefghjk").hexdigest()
    assert hashed != hmac.new(SECRETS[0].encode(), b"abcdefghjk", "sha256").hexdigest()
    with pytest.raises(ValueError, match="not a recovery code"):
        hash_recovery_code(SECRETS, "not-a-code")


def test_a_recovery_code_is_found_by_its_index() -> None:
    codes = new_recovery_codes()
    hashes = [hash_recovery_code(SECRETS, code) for code in codes]
    for index, code in enumerate(codes):
        assert find_recovery_code(SECRETS, code, hashes) == index
        assert find_recovery_code(SECRETS, code.upper().replace("-", " "), hashes) == index


def test_a_wrong_recovery_code_is_found_nowhere() -> None:
    codes = new_recovery_codes()
    hashes = [hash_recovery_code(SECRETS, code) for code in codes]
    other = next(code for code in new_recovery_codes(20) if code not in codes)
    assert find_recovery_code(SECRETS, other, hashes) is None
    assert find_recovery_code(SECRETS, "not a code", hashes) is None
    assert find_recovery_code(SECRETS, codes[0], []) is None


def test_recovery_codes_hashed_before_a_rotation_are_still_found() -> None:
    codes = new_recovery_codes(3)
    hashes = [hash_recovery_code(["old-secret"], code) for code in codes]
    assert find_recovery_code(["new-secret", "old-secret"], codes[2], hashes) == 2
    assert find_recovery_code(["new-secret"], codes[2], hashes) is None
    fresh = [hash_recovery_code(["new-secret", "old-secret"], code) for code in codes]
    assert find_recovery_code(["new-secret"], codes[1], fresh) == 1


def test_corrupt_stored_hashes_match_nothing_and_raise_nothing() -> None:
    code = new_recovery_codes(1)[0]
    good = hash_recovery_code(SECRETS, code)
    stored: list[object] = ["é" * 64, None, 7, "", good.upper(), good]
    assert find_recovery_code(SECRETS, code, stored) == 5  # type: ignore[arg-type]
