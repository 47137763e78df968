"""Second factors kept on an account: sealed secrets, TOTP codes and recovery codes.

A TOTP secret must be read back to check a code, so it cannot be hashed like a password:
it is *sealed*, encrypted with a key derived from the app's secret, and stored as a short
token. A copy of the database alone (a backup, a leaked dump) then gives no second
factor away, and the token is bound to its user, so a sealed secret moved onto another
account does not open there.

Recovery codes, on the other hand, are only ever compared: they are stored as HMACs,
keyed from the app's secret so that a leaked list cannot be checked offline either.

Each function takes the app's secrets as ``AuthConfig.secrets`` holds them, newest first:
the first one seals and hashes, every one opens and matches, so rotating ``AUTH_SECRET``
(the new one first, the old one kept as ``AUTH_SECRET_1``) loses no second factor.

TOTP (RFC 6238: 6 digits, 30-second steps, HMAC-SHA-1, what every authenticator app
does by default) uses ``pyotp``, and the QR code ``segno``: both come with the ``mfa``
extra and are imported only when needed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import io
import re
from collections.abc import Sequence
from secrets import choice, token_bytes
from typing import TYPE_CHECKING, Final
from xml.sax.saxutils import quoteattr

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from asgi_session.errors import ConfigurationError

if TYPE_CHECKING:
    import pyotp
    import segno

_MISSING_EXTRA: Final = (
    "Two-factor sign-in needs the mfa extra (pyotp and segno): pip install 'asgi-session[mfa]'"
)


class SealedValueError(ValueError):
    """A sealed token does not open: tampered, cut, for another user or purpose, made
    with a secret no longer configured, or not a token at all.

    The one error :func:`open_sealed` raises, so a caller treats them all alike.
    """


# --- Sealed secrets -------------------------------------------------------------------

# The version names the whole format (AES-256-GCM, the key derivation, the layout), so a
# later one can be told apart and old tokens still opened.
_VERSION: Final = "v1."
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
# A sealed TOTP secret is about 90 characters. The cap bounds the work a corrupt or
# hostile stored value can cause, with room for anything else worth sealing.
_MAX_TOKEN_LENGTH: Final = 4096
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")
# Completes a base64url body of each length modulo 4 (1 is never valid).
_PADDING: Final = ("", "=", "==", "=")


def _secret_tuple(secrets: Sequence[str]) -> tuple[str, ...]:
    # A lone string is a sequence of its characters: each would become a "secret".
    found = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    if not found or not all(isinstance(secret, str) and secret for secret in found):
        raise ConfigurationError(
            "Sealing a second factor needs the app's secret: set AUTH_SECRET, for example "
            "to the output of `python -m asgi_session secret`."
        )
    return found


def _derive(secret: str, info: str) -> bytes:
    """A 256-bit key for one use of ``secret``: the ``info`` keeps uses apart, so no key
    serves two purposes (nor equals a session token's, derived with other labels)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info.encode())
    return hkdf.derive(secret.encode())


@functools.lru_cache(maxsize=64)
def _aead(secret: str, purpose: str) -> AESGCM:
    return AESGCM(_derive(secret, f"asgi-session sealed {purpose}"))


def _encoded(text: str) -> bytes:
    # A lone surrogate has no UTF-8; surrogatepass still gives it one spelling.
    return text.encode("utf-8", "surrogatepass")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(body: str) -> bytes | None:
    """Strict unpadded base64url, with one spelling per value; ``None`` otherwise.

    (``base64``'s decoder skips characters it does not know, and every decoder ignores
    the unused bits of the last letter: re-encoding refuses both.)
    """
    if not _BASE64URL.fullmatch(body) or len(body) % 4 == 1:
        return None
    padded = (body + _PADDING[len(body) % 4]).encode("ascii").translate(_FROM_URLSAFE)
    try:
        data = binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error:
        return None
    return data if _b64encode(data) == body else None


def _check_purpose(purpose: str) -> None:
    if not isinstance(purpose, str) or not purpose:
        raise ValueError("a sealed value's purpose names what it holds, such as 'totp'")


def seal(secrets: Sequence[str], purpose: str, plaintext: str, *, bind: str) -> str:
    """``plaintext`` encrypted for storage: ``"v1."`` and base64url of nonce, ciphertext
    and tag.

    AES-256-GCM with a fresh random nonce, and a key derived (HKDF-SHA256) from
    ``secrets[0]`` for ``purpose``, so that a token sealed for one purpose does not open
    as another. ``bind`` (the user id) is authenticated with it: the token opens for that
    user only.
    """
    _check_purpose(purpose)
    if not isinstance(plaintext, str) or not isinstance(bind, str):
        raise TypeError("seal() takes the plaintext and the user id it is bound to as str")
    nonce = token_bytes(_NONCE_BYTES)
    sealed = _aead(_secret_tuple(secrets)[0], purpose).encrypt(
        nonce, plaintext.encode("utf-8"), _encoded(bind)
    )
    return _VERSION + _b64encode(nonce + sealed)


def open_sealed(secrets: Sequence[str], purpose: str, token: str, *, bind: str) -> tuple[str, bool]:
    """The plaintext :func:`seal` sealed in ``token``, and whether it was sealed with an
    older secret than ``secrets[0]`` (then seal it again and store the new token, before
    the old secret is dropped).

    Raises :class:`SealedValueError`, and nothing else, for any token that does not
    open with one of ``secrets`` for this ``purpose`` and ``bind``.
    """
    keys = _secret_tuple(secrets)
    _check_purpose(purpose)
    if not isinstance(token, str) or not isinstance(bind, str):
        raise SealedValueError("a sealed token and the user id it is bound to are strings")
    if len(token) > _MAX_TOKEN_LENGTH:
        raise SealedValueError("the sealed token is too long to be one")
    if not token.startswith(_VERSION):
        raise SealedValueError("not a sealed token, or one of an unknown version")
    raw = _b64decode(token[len(_VERSION) :])
    if raw is None or len(raw) < _NONCE_BYTES + _TAG_BYTES:
        raise SealedValueError("the sealed token is malformed or cut short")
    nonce, sealed, aad = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _encoded(bind)
    # A token does not name the secret that sealed it: trying each of the few an app
    # configures costs microseconds, and the tag tells the right one.
    for index, secret in enumerate(keys):
        try:
            plaintext = _aead(secret, purpose).decrypt(nonce, sealed, aad)
        except InvalidTag:
            continue
        try:
            return plaintext.decode("utf-8"), index > 0
        except UnicodeDecodeError:  # authentic, so never; but only SealedValueError leaves
            break
    raise SealedValueError(
        "the sealed token was tampered with, belongs to another user or purpose, or was "
        "sealed with a secret no longer configured"
    )


# --- TOTP -----------------------------------------------------------------------------

_STEP_SECONDS: Final = 30
_CODE: Final = re.compile(r"[0-9]{6}")
# Longer input is no code with spaces in it; refused before any work.
_MAX_CODE_INPUT: Final = 64


def _totp(secret: str) -> pyotp.TOTP:
    try:
        import pyotp
    except ImportError as missing:
        raise ConfigurationError(_MISSING_EXTRA) from missing
    return pyotp.TOTP(secret)


def new_secret() -> str:
    """A new TOTP secret: 160 random bits (RFC 4226's recommended length), in base32, as
    authenticator apps take it (32 letters, no padding)."""
    return base64.b32encode(token_bytes(20)).decode("ascii")


def otpauth_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads from a QR code.

    ``account`` (usually the email address) and ``issuer`` (the app's name) are how the
    entry is labelled in the app.
    """
    return _totp(secret).provisioning_uri(name=account, issuer_name=issuer)


def matching_step(secret: str, code: str, now: float, *, window: int = 1) -> int | None:
    """The time step (``int(now // 30)``, give or take ``window``) whose code ``code`` is,
    or ``None``.

    Returning the step, not a yes or no, lets the caller refuse a code whose step is not
    after the last one used: an observed code cannot be replayed within its 90 seconds.
    ``window`` steps either side allow for clocks that disagree and for the time it
    takes to type.

    Only 6 ASCII digits are a code (spaces ignored: apps show "123 456"); anything
    else is refused before any HMAC is computed. Every candidate is compared, in constant
    time, so the time taken tells nothing about how close a guess was.
    """
    if not isinstance(window, int) or isinstance(window, bool) or window < 0:
        raise ValueError(f"window={window!r} must be a number of steps, 0 or more")
    if not isinstance(code, str) or len(code) > _MAX_CODE_INPUT:
        return None
    digits = "".join(code.split())
    # fullmatch, and [0-9] rather than \d or isdigit(): Arabic-Indic and full-width digits
    # are digits to Python, and int() reads them, but no authenticator app shows them.
    if not _CODE.fullmatch(digits):
        return None
    totp = _totp(secret)
    current = int(now // _STEP_SECONDS)
    # Should a code be that of two steps (one in a few hundred thousand), the one nearest
    # the server's clock wins, then the earlier: the step returned is the last one used,
    # and an earlier one leaves the next code usable.
    offsets = sorted(range(-window, window + 1), key=lambda offset: (abs(offset), offset))
    found: int | None = None
    for step in (current + offset for offset in offsets):
        if step < 0:
            continue
        if hmac.compare_digest(totp.generate_otp(step), digits) and found is None:
            found = step
    return found


def qr_svg(uri: str, *, title: str = "QR code to scan with an authenticator app") -> str:
    """``uri`` as a QR code: an ``<svg>`` element to put in a page as it is.

    Error correction M (15%) at least: segno raises it when the code stays as small.
    Dark modules on a white quiet zone whatever the page's colours: a scanner needs the
    contrast, which a dark page showing through would take away. Colours are ``stroke``
    and ``fill`` attributes, not ``style``, and there is no script, so the page's
    Content-Security-Policy needs no ``'unsafe-inline'``. ``title`` is what screen
    readers announce.
    """
    try:
        import segno
    except ImportError as missing:
        raise ConfigurationError(_MISSING_EXTRA) from missing
    qr: segno.QRCode = segno.make(uri, error="m")
    out = io.BytesIO()
    qr.save(
        out,
        kind="svg",
        xmldecl=False,
        svgns=True,
        nl=False,
        scale=4,
        # A unit adds a viewBox, so a stylesheet can resize the image without cropping it.
        unit="px",
        dark="#000",
        light="#fff",
        svgclass=None,
        lineclass=None,
        title=title,
    )
    svg = out.getvalue().decode("utf-8")
    # An image to assistive technology, named by its title (segno writes neither).
    return svg.replace("<svg", f'<svg role="img" aria-label={quoteattr(title)}', 1)


# --- Recovery codes -------------------------------------------------------------------

#: The letters of a recovery code: digits and lower-case letters without the ones read
#: as another (0/o, 1/l/i), so a code copied by hand from paper comes back the same.
RECOVERY_CODE_ALPHABET: Final = "23456789abcdefghjkmnpqrstuvwxyz"
# 10 letters of 31: 49.5 bits each, out of reach of guessing through a rate-limited form,
# and short enough to type.
_RECOVERY_CODE_LENGTH: Final = 10
_RECOVERY_CODE: Final = re.compile(f"[{RECOVERY_CODE_ALPHABET}]{{{_RECOVERY_CODE_LENGTH}}}")
# Typing is forgiving (spaces, dashes, capitals); much more than a code is not one.
_MAX_RECOVERY_INPUT: Final = 64
_SEPARATORS: Final = re.compile(r"[\s-]+")


def new_recovery_codes(count: int = 10) -> list[str]:
    """``count`` new recovery codes, ``"xxxxx-xxxxx"``, each usable once instead of a TOTP
    code. Show them once, store only :func:`hash_recovery_code` of each."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count={count!r} must be a positive number of recovery codes")
    codes = []
    for _ in range(count):
        letters = "".join(choice(RECOVERY_CODE_ALPHABET) for _ in range(_RECOVERY_CODE_LENGTH))
        codes.append(f"{letters[:5]}-{letters[5:]}")
    return codes


def normalise_recovery_code(text: str) -> str | None:
    """A recovery code as typed, in the form it is hashed in (10 lower-case letters), or
    ``None`` when it cannot be one: capitals, spaces and dashes do not matter."""
    if not isinstance(text, str) or len(text) > _MAX_RECOVERY_INPUT:
        return None
    code = _SEPARATORS.sub("", text).lower()
    return code if _RECOVERY_CODE.fullmatch(code) else None


@functools.lru_cache(maxsize=16)
def _recovery_key(secret: str) -> bytes:
    return _derive(secret, "asgi-session recovery code hash")


def _recovery_hash(secret: str, code: str) -> str:
    return hmac.new(_recovery_key(secret), code.encode("ascii"), "sha256").hexdigest()


def hash_recovery_code(secrets: Sequence[str], code: str) -> str:
    """What to store for ``code``: HMAC-SHA256 hex, keyed from ``secrets[0]``.

    A hash rather than the code, so a copy of the database gives none away, and keyed,
    so that 49.5 bits cannot be searched offline by whoever holds that copy.
    """
    normalised = normalise_recovery_code(code)
    if normalised is None:
        raise ValueError(
            "not a recovery code: hash the codes new_recovery_codes() returned, "
            "'xxxxx-xxxxx' of the letters in RECOVERY_CODE_ALPHABET"
        )
    return _recovery_hash(_secret_tuple(secrets)[0], normalised)


def find_recovery_code(secrets: Sequence[str], code: str, hashes: Sequence[str]) -> int | None:
    """The index in ``hashes`` of the one ``code`` (as typed) was stored as, or ``None``.

    Every secret is tried, so codes hashed before a rotation still work. Every
    comparison is made, in constant time, whichever matches; an entry that is not a
    hash (a corrupt record) matches nothing.
    """
    keys = _secret_tuple(secrets)
    normalised = normalise_recovery_code(code)
    if normalised is None:
        return None
    candidates = [_recovery_hash(secret, normalised) for secret in keys]
    found: int | None = None
    for index, stored in enumerate(hashes):
        # compare_digest refuses non-ASCII strings with a TypeError.
        if not isinstance(stored, str) or not stored.isascii():
            continue
        for candidate in candidates:
            if hmac.compare_digest(candidate, stored) and found is None:
                found = index
    return found
