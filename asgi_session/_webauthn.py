"""The two WebAuthn ceremonies of passkeys: the options a browser needs, and the checks of
what it answers.

Pure ceremony logic over py_webauthn, without HTTP or storage: the routes fetch and store,
this module decides. It speaks Auth.js's dialect where the two meet: options are the JSON
``@simplewebauthn/browser`` reads (camelCase, base64url), and credential ids and public
keys are standard base64 with padding, as Auth.js stores them (``Buffer.toString
("base64")``), so passkeys registered by either app sign in to the other.

Everything a browser sends is untrusted: whatever does not verify, from a forged origin
to bytes that are not CBOR, raises :class:`~asgi_session.errors.PasskeyRefused` with a
short reason safe to show, never another exception.

py_webauthn is optional (the ``mfa`` extra): this module loads without it, and says how
to install it when a ceremony needs it.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from asgi_session.errors import ConfigurationError, PasskeyRefused
from asgi_session.models import Authenticator

if TYPE_CHECKING:
    import webauthn
    from webauthn.helpers import cose, structs
else:
    try:
        import webauthn
        from webauthn.helpers import cose, structs
    except ImportError:  # the mfa extra is not installed: require_py_webauthn() says so
        webauthn = cose = structs = None

__all__ = [
    "NewCredential",
    "RelyingParty",
    "authentication_options",
    "credential_id",
    "parse_response",
    "registration_options",
    "relying_party",
    "require_py_webauthn",
    "verify_authentication",
    "verify_registration",
]

#: How long the browser waits for the person, as Auth.js's default: five minutes.
DEFAULT_TIMEOUT_MS: Final = 5 * 60 * 1000

# Ed25519, P-256 and RSA: what platform authenticators and security keys make (Windows
# Hello makes only RSA), in py_webauthn's and SimpleWebAuthn's order of preference.
_ALGORITHMS: Final = (-8, -7, -257)

# WebAuthn caps credential ids at 1023 bytes; a longer one is not from an authenticator,
# and would be a large key to store and look up.
_MAX_CREDENTIAL_ID: Final = 1023
_MAX_CREDENTIAL_ID_CHARS: Final = -(-_MAX_CREDENTIAL_ID * 4 // 3)

# A registration answer with an attestation certificate chain is a few KB; anything far
# larger is not from a browser, and is refused before it is parsed.
_MAX_RESPONSE_CHARS: Final = 64 * 1024

# 32 random bytes, as SimpleWebAuthn makes: unguessable, and short in a cookie.
_CHALLENGE_BYTES: Final = 32
# The user handle is random too, as Auth.js makes it: a passkey is tied to its user by
# the stored Authenticator, never by the handle, which would otherwise name the user
# to anyone holding the device.
_USER_HANDLE_BYTES: Final = 32

_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

_UNREADABLE: Final = "The passkey's answer could not be read. Try again."
_EXPIRED: Final = "This passkey request has expired or was already used. Try again."
_COUNTER: Final = (
    "This passkey's signature counter did not go up, so it may have been copied. "
    "Sign in another way and check your passkeys."
)

# py_webauthn's messages, by how they start (what follows may repeat what the browser
# sent, so it is never shown), and what the person is told instead.
_REASONS: Final = (
    ("client data challenge", _EXPIRED),
    ("unexpected client data origin", "The passkey was used on another website."),
    ("unexpected client data type", "The passkey answered another request. Try again."),
    ("unexpected rp id hash", "This passkey belongs to another website."),
    (
        "user verification is required",
        "The passkey did not check that it is you. Use one with a PIN, fingerprint or face.",
    ),
    ("user presence was required", "The passkey was not confirmed by you. Try again."),
    ("user was not present", "The passkey was not confirmed by you. Try again."),
    ("response sign count", _COUNTER),
    ("could not verify authentication signature", "The passkey's signature does not match."),
    ("unsupported credential public key alg", "This kind of passkey is not supported."),
)


def require_py_webauthn() -> None:
    """Raise :class:`ConfigurationError` unless py_webauthn (the ``mfa`` extra) is installed.

    Providers call it when they are made, so a missing extra shows when the app starts,
    not at the first passkey.
    """
    if webauthn is None:
        raise ConfigurationError(
            "passkeys need py_webauthn, which the mfa extra installs: "
            "pip install 'asgi-session[mfa]'"
        )


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """The site passkeys are made for, in WebAuthn's terms."""

    #: The host name (``"example.com"``): a passkey made for it works for no other site.
    id: str
    #: What the browser shows when it asks to make a passkey.
    name: str
    #: ``scheme://host[:port]``: where the browser must have been when it answered.
    origin: str


def relying_party(url: str, name: str | None = None) -> RelyingParty:
    """The relying party of an app at ``url`` (``AuthConfig(url=...)``).

    The id is the URL's host name, and ``name`` defaults to its host and port, as in
    Auth.js. Raises :class:`ConfigurationError` for a URL that is not ``http(s)://host``,
    for an IP address (browsers refuse one as a relying party id), and when py_webauthn
    is not installed. (Browsers offer passkeys only to secure contexts: https, or http on
    localhost; a plain-http app elsewhere gets a SecurityError in the browser.)
    """
    require_py_webauthn()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as bad:
        raise ConfigurationError(
            f"passkeys need the app's URL, such as https://example.com; {url!r} is not one ({bad})"
        ) from None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise ConfigurationError(
            f"passkeys need the app's URL, such as https://example.com, in AuthConfig(url=...); "
            f"{url!r} is not an http(s) URL with a host"
        )
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise ConfigurationError(
            f"passkeys cannot work at {url!r}: browsers refuse an IP address as a WebAuthn "
            "relying party id; use a host name such as localhost"
        )
    try:
        # Browsers use the ASCII form of an international name, in the id and the origin.
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ConfigurationError(
            f"passkeys need a valid host name; the one in {url!r} is not"
        ) from None
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    if name is not None and not (isinstance(name, str) and name.strip()):
        raise ConfigurationError(
            "the relying party name is what browsers show when making a passkey: give a "
            "non-empty string, or None for the app's host"
        )
    return RelyingParty(id=host, name=name or netloc, origin=f"{scheme}://{netloc}")


@dataclass(frozen=True, slots=True)
class NewCredential:
    """A verified registration, ready to store as an :class:`Authenticator`."""

    #: Standard base64 with padding, Auth.js's spelling.
    credential_id: str
    #: The COSE public key, in standard base64.
    credential_public_key: str
    counter: int
    #: ``"singleDevice"`` or ``"multiDevice"`` (a synced passkey).
    credential_device_type: str
    credential_backed_up: bool
    #: How the browser can reach the authenticator, comma-joined (``"internal,hybrid"``).
    transports: str | None

    def authenticator(
        self, user_id: str, *, name: str | None = None, created_at: datetime | None = None
    ) -> Authenticator:
        """The record to store for ``user_id``; its account is the credential id, as in
        Auth.js."""
        return Authenticator(
            credential_id=self.credential_id,
            user_id=user_id,
            provider_account_id=self.credential_id,
            credential_public_key=self.credential_public_key,
            counter=self.counter,
            credential_device_type=self.credential_device_type,
            credential_backed_up=self.credential_backed_up,
            transports=self.transports,
            name=name,
            created_at=created_at,
        )


def registration_options(
    rp: RelyingParty,
    *,
    user_name: str,
    user_display_name: str | None,
    exclude: Sequence[Authenticator],
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> tuple[dict[str, Any], str]:
    """Options for ``navigator.credentials.create()``, and their challenge (base64url).

    ``user_name`` (the email address) and ``user_display_name`` are what the browser
    lists the passkey under. The passkey must be discoverable (it can sign in without a
    typed address) and verify the user (a PIN, fingerprint or face): with both, it is
    a whole sign-in on its own. ``exclude`` are the user's passkeys: an authenticator
    holding one of them declines to make a second.
    """
    require_py_webauthn()
    if not isinstance(user_name, str) or not user_name:
        raise ValueError("a passkey needs a user name (the email address) for the browser to show")
    challenge = secrets.token_bytes(_CHALLENGE_BYTES)
    options = webauthn.generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_name=user_name,
        user_id=secrets.token_bytes(_USER_HANDLE_BYTES),
        user_display_name=user_display_name or user_name,
        challenge=challenge,
        timeout=_timeout(timeout_ms),
        attestation=structs.AttestationConveyancePreference.NONE,
        authenticator_selection=structs.AuthenticatorSelectionCriteria(
            resident_key=structs.ResidentKeyRequirement.REQUIRED,
            user_verification=structs.UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(exclude),
        supported_pub_key_algs=_algorithms(),
    )
    return _json(options), _to_base64url(challenge)


def authentication_options(
    rp: RelyingParty,
    *,
    allow: Sequence[Authenticator] | None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> tuple[dict[str, Any], str]:
    """Options for ``navigator.credentials.get()``, and their challenge (base64url).

    ``allow`` lists the passkeys that may answer (a known user's); ``None`` lets any
    passkey of this site answer, which is what passkey sign-in without a typed address
    and the browser's autofill (conditional UI) need. An empty list means the same to
    browsers: the answer is checked against the stored passkey either way.
    """
    require_py_webauthn()
    challenge = secrets.token_bytes(_CHALLENGE_BYTES)
    options = webauthn.generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=_timeout(timeout_ms),
        allow_credentials=None if allow is None else _descriptors(allow),
        user_verification=structs.UserVerificationRequirement.REQUIRED,
    )
    return _json(options), _to_base64url(challenge)


def credential_id(response: Mapping[str, Any]) -> str | None:
    """The id of the passkey that made ``response``, in standard base64 with padding (how
    it is stored), or ``None`` when it has none that could be one."""
    raw = _response_id(response)
    return None if raw is None else base64.b64encode(raw).decode("ascii")


def parse_response(data: object) -> dict[str, Any]:
    """The browser's answer, from the ``data`` form field (a JSON string, as Auth.js's
    client posts it).

    Raises :class:`PasskeyRefused` for anything that is not a JSON object with a string
    ``id``: a missing field, garbage, numbers too long to convert, nesting deep enough
    to exhaust the parser, lone surrogates (which no UTF-8 encoder accepts, so nothing
    could store or log them).
    """
    if not isinstance(data, str) or not data or len(data) > _MAX_RESPONSE_CHARS:
        raise PasskeyRefused(_UNREADABLE)
    try:
        parsed = json.loads(data)
        # Raises for a lone surrogate anywhere, escaped ("\\ud800") or not.
        json.dumps(parsed, ensure_ascii=False).encode()
    except (ValueError, RecursionError):
        raise PasskeyRefused(_UNREADABLE) from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("id"), str):
        raise PasskeyRefused(_UNREADABLE)
    return parsed


def verify_registration(
    rp: RelyingParty, response: Mapping[str, Any], *, challenge: str
) -> NewCredential:
    """Check the browser's answer to :func:`registration_options` (``challenge`` is what
    it returned) and return the new passkey.

    The answer must be for this challenge, this site (origin and relying party id), and
    come from an authenticator that verified the user. Raises :class:`PasskeyRefused`.
    """
    require_py_webauthn()
    expected = _challenge(challenge)
    try:
        verified = webauthn.verify_registration_response(
            credential=dict(response),
            expected_challenge=expected,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=True,
            supported_pub_key_algs=_algorithms(),
        )
    except Exception as error:  # see _refusal
        raise _refusal(error) from error
    raw_id = verified.credential_id
    if len(raw_id) > _MAX_CREDENTIAL_ID:
        raise PasskeyRefused("The passkey's id is longer than WebAuthn allows.")
    if _response_id(response) != raw_id:
        # The browser names the credential the authenticator made; an answer naming
        # another would store a passkey that no later sign-in could find.
        raise PasskeyRefused(_UNREADABLE)
    device = verified.credential_device_type
    return NewCredential(
        credential_id=base64.b64encode(raw_id).decode("ascii"),
        credential_public_key=base64.b64encode(verified.credential_public_key).decode("ascii"),
        counter=verified.sign_count,
        credential_device_type=(
            "multiDevice" if device == structs.CredentialDeviceType.MULTI_DEVICE else "singleDevice"
        ),
        credential_backed_up=verified.credential_backed_up,
        transports=_transports(response.get("response")),
    )


def verify_authentication(
    rp: RelyingParty,
    response: Mapping[str, Any],
    *,
    challenge: str,
    authenticator: Authenticator,
) -> int:
    """Check the browser's answer to :func:`authentication_options` against the stored
    passkey it names, and return the new signature counter, to store.

    The answer must be from ``authenticator`` (the route looked it up by
    :func:`credential_id`), for this challenge and site, verify the user, and carry a
    counter above the stored one unless both are 0 (authenticators that keep no counter
    always send 0): one that does not go up is a copied authenticator or a replay.
    Raises :class:`PasskeyRefused`.
    """
    require_py_webauthn()
    expected = _challenge(challenge)
    stored_id = _from_base64(authenticator.credential_id)
    if stored_id is None or _response_id(response) != stored_id:
        raise PasskeyRefused("This answer is from another passkey. Try again.")
    public_key = _from_base64(authenticator.credential_public_key)
    counter = authenticator.counter
    if public_key is None or not isinstance(counter, int) or counter < 0:
        raise PasskeyRefused(
            "This passkey's stored record cannot be read. Remove the passkey and add it again."
        )
    credential = dict(response)
    inner = credential.get("response")
    if isinstance(inner, Mapping):
        # Not needed (the credential id finds the user, as in Auth.js), and SimpleWebAuthn
        # 9, which Auth.js's client bundles, sends it as UTF-8 rather than base64url:
        # passkeys made by either client must sign in through both.
        credential["response"] = {key: value for key, value in inner.items() if key != "userHandle"}
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=expected,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=public_key,
            credential_current_sign_count=counter,
            require_user_verification=True,
        )
    except Exception as error:  # see _refusal
        raise _refusal(error) from error
    new_counter = verified.new_sign_count
    if (new_counter > 0 or counter > 0) and new_counter <= counter:
        # py_webauthn checks this too; a passkey sign-in rests on it, so it is not left
        # to one library version's behaviour.
        raise PasskeyRefused(_COUNTER)
    return new_counter


def _refusal(error: Exception) -> PasskeyRefused:
    """What the person is told when py_webauthn refuses an answer, or fails on it.

    py_webauthn reads attacker-controlled JSON, base64, CBOR, COSE keys and X.509 chains
    through several libraries, each with its own exceptions for malformed input; any of
    them means the answer did not verify, and none may become a server error.
    """
    message = str(error).strip().lower()
    for start, reason in _REASONS:
        if message.startswith(start):
            return PasskeyRefused(reason)
    return PasskeyRefused(_UNREADABLE)


def _response_id(response: Mapping[str, Any]) -> bytes | None:
    value = response.get("id")
    if not isinstance(value, str) or len(value) > _MAX_CREDENTIAL_ID_CHARS:
        return None
    return _from_base64url(value) or None


def _challenge(challenge: str) -> bytes:
    raw = _from_base64url(challenge) if isinstance(challenge, str) else None
    if not raw:
        # The challenge comes from the route's own signed cookie: a missing or broken one
        # means the request is not the one this answer is for.
        raise PasskeyRefused(_EXPIRED)
    return raw


def _timeout(timeout_ms: int) -> int:
    if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool) or timeout_ms < 1:
        raise ConfigurationError(
            f"a passkey timeout is a positive number of milliseconds, not {timeout_ms!r}; "
            f"Auth.js waits {DEFAULT_TIMEOUT_MS} (five minutes)"
        )
    return timeout_ms


def _algorithms() -> list[cose.COSEAlgorithmIdentifier]:
    return [cose.COSEAlgorithmIdentifier(alg) for alg in _ALGORITHMS]


def _descriptors(
    authenticators: Sequence[Authenticator],
) -> list[structs.PublicKeyCredentialDescriptor]:
    """The stored passkeys as WebAuthn names them. A record whose id cannot be read is
    left out: it could not sign in anyway, and must not stop the others."""
    descriptors = []
    for authenticator in authenticators:
        raw = _from_base64(authenticator.credential_id)
        if raw is None:
            continue
        transports = [
            structs.AuthenticatorTransport(name)
            for name in _known_transports((authenticator.transports or "").split(","))
        ]
        descriptors.append(
            structs.PublicKeyCredentialDescriptor(id=raw, transports=transports or None)
        )
    return descriptors


def _transports(response: object) -> str | None:
    """``response.transports`` as Auth.js stores it (comma-joined), keeping only the
    transports WebAuthn defines: the value is sent back to browsers in later options."""
    if not isinstance(response, Mapping):
        return None
    listed = response.get("transports")
    if not isinstance(listed, list):
        return None
    known = _known_transports(listed)
    return ",".join(known) if known else None


def _known_transports(names: Sequence[object]) -> list[str]:
    known = {transport.value for transport in structs.AuthenticatorTransport}
    found: list[str] = []
    for name in names:
        if isinstance(name, str) and name in known and name not in found:
            found.append(name)
    return found


def _json(
    options: structs.PublicKeyCredentialCreationOptions | structs.PublicKeyCredentialRequestOptions,
) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(webauthn.options_to_json(options))
    return parsed


def _to_base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _from_base64url(text: str) -> bytes | None:
    """Bytes of unpadded base64url, as WebAuthn's JSON spells them; ``None`` for anything
    else (Python's decoder would skip stray characters)."""
    if _BASE64URL.fullmatch(text) is None or len(text) % 4 == 1:
        return None
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _from_base64(text: object) -> bytes | None:
    """Bytes of a stored id or key: standard base64 as Auth.js writes it, also read
    without padding or in the URL-safe alphabet, which other software writes."""
    if not isinstance(text, str):
        return None
    unpadded = text.rstrip("=").translate(str.maketrans("+/", "-_"))
    return _from_base64url(unpadded) or None
