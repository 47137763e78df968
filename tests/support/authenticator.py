"""A software FIDO2 authenticator: a passkey without a phone or a security key.

It does what a platform authenticator and the browser in front of it do, for real: each
credential is its own P-256 key pair, registration answers with "none" attestation over
authenticator data holding the COSE public key, and each assertion is an ES256 signature
over the authenticator data and the SHA-256 of the client data, with a signature counter.
py_webauthn verifies its answers exactly as it would a phone's. What it returns is the
JSON SimpleWebAuthn's browser code posts (base64url everywhere), so a test can hand it
to the server as the form field ``data``.

Every step a real one would refuse or get right can be forged instead, by keyword: the
origin the "browser" reports, the relying party id hashed into the authenticator data,
the challenge, the ceremony type, the user-presence and user-verification flags, the
backup flags, the signature counter (set it backwards), the credential id.

    authenticator = SoftwareAuthenticator("http://localhost:8000")
    answer = authenticator.register(options)          # options from registration_options()
    answer = authenticator.authenticate(options)      # from authentication_options()
    replayed = answer                                 # send it twice: a replay
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

# Authenticator data flags (WebAuthn section 6.1).
UP = 0x01  # user present: someone touched it
UV = 0x04  # user verified: a PIN, fingerprint or face
BE = 0x08  # backup eligible: a synced passkey
BS = 0x10  # backed up
AT = 0x40  # attested credential data follows

ES256 = -7


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AuthenticatorRefused(Exception):
    """What ``navigator.credentials.create()/get()`` would reject with; ``name`` is the
    DOMException's (``"InvalidStateError"``, ``"NotAllowedError"``, ...)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


@dataclass
class Credential:
    """One passkey the authenticator holds."""

    id: bytes
    rp_id: str
    user_handle: bytes
    private_key: ec.EllipticCurvePrivateKey
    #: The counter the last signature carried.
    sign_count: int = 0

    @property
    def b64url_id(self) -> str:
        return b64url(self.id)

    def cose_public_key(self) -> bytes:
        """The public key as COSE_Key (EC2, P-256, ES256), as authenticator data holds it."""
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: ES256,  # alg
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def spki_public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class SoftwareAuthenticator:
    """A platform authenticator used from a browser at ``origin``.

    ``counter_step`` is how much the signature counter goes up per assertion (0: it
    keeps none and always sends 0, as synced passkeys do). ``backup_eligible`` and
    ``backed_up`` set the BE and BS flags. ``transports`` is what ``getTransports()``
    reports.
    """

    origin: str
    counter_step: int = 1
    backup_eligible: bool = False
    backed_up: bool = False
    transports: Sequence[str] = ("internal", "hybrid")
    attachment: str = "platform"
    aaguid: bytes = bytes(16)
    credentials: list[Credential] = field(default_factory=list)

    def register(
        self,
        options: Mapping[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        ceremony: str = "webauthn.create",
        user_present: bool = True,
        user_verified: bool = True,
        flags: int | None = None,
        credential_id: bytes | None = None,
        sign_count: int = 0,
    ) -> dict[str, Any]:
        """Make a credential for ``options`` (``PublicKeyCredentialCreationOptionsJSON``)
        and return the registration response JSON.

        The keywords forge what a real browser and authenticator would not: another
        ``origin``, another ``rp_id`` hashed into the authenticator data, another
        ``challenge`` (base64url) or ``ceremony`` type, cleared UP/UV flags, ``flags``
        given outright, a chosen ``credential_id`` and initial ``sign_count``. Raises
        :class:`AuthenticatorRefused` as a browser would: for an excluded credential
        this authenticator holds, or when ES256 is not offered.
        """
        real_rp_id = options["rp"].get("id") or _host(self.origin)
        excluded = {from_b64url(item["id"]) for item in options.get("excludeCredentials", [])}
        if any(c.id in excluded and c.rp_id == real_rp_id for c in self.credentials):
            raise AuthenticatorRefused("InvalidStateError", "the authenticator was registered")
        if not any(param.get("alg") == ES256 for param in options.get("pubKeyCredParams", [])):
            raise AuthenticatorRefused("NotSupportedError", "only ES256 keys are made here")
        credential = Credential(
            id=credential_id if credential_id is not None else secrets.token_bytes(32),
            rp_id=real_rp_id,
            user_handle=from_b64url(options["user"]["id"]),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            sign_count=sign_count,
        )
        self.credentials.append(credential)
        client_data = self._client_data(
            ceremony, challenge if challenge is not None else options["challenge"], origin
        )
        auth_data = self._authenticator_data(
            rp_id if rp_id is not None else real_rp_id,
            self._flags(flags, user_present, user_verified) | AT,
            sign_count,
            attested=credential,
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": credential.b64url_id,
            "rawId": credential.b64url_id,
            "type": "public-key",
            "authenticatorAttachment": self.attachment,
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": list(self.transports),
                "publicKeyAlgorithm": ES256,
                "publicKey": b64url(credential.spki_public_key()),
                "authenticatorData": b64url(auth_data),
            },
        }

    def authenticate(
        self,
        options: Mapping[str, Any],
        *,
        credential: Credential | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        ceremony: str = "webauthn.get",
        user_present: bool = True,
        user_verified: bool = True,
        flags: int | None = None,
        sign_count: int | None = None,
    ) -> dict[str, Any]:
        """Sign ``options`` (``PublicKeyCredentialRequestOptionsJSON``) and return the
        authentication response JSON, with the user handle (base64url) a discoverable
        credential carries.

        The credential is the first allowed one this authenticator holds, or with an
        empty ``allowCredentials`` the newest for the relying party (the one a person
        picks); ``credential`` chooses one outright. ``sign_count`` sets the counter
        instead of stepping it (it may go backwards); the other keywords forge as in
        :meth:`register`. Raises :class:`AuthenticatorRefused` ("NotAllowedError") when
        it holds no credential that may answer.
        """
        real_rp_id = options.get("rpId") or _host(self.origin)
        if credential is None:
            credential = self._pick(real_rp_id, options.get("allowCredentials") or [])
        if sign_count is not None:
            credential.sign_count = sign_count
        else:
            credential.sign_count += self.counter_step
        client_data = self._client_data(
            ceremony, challenge if challenge is not None else options["challenge"], origin
        )
        auth_data = self._authenticator_data(
            rp_id if rp_id is not None else real_rp_id,
            self._flags(flags, user_present, user_verified),
            credential.sign_count,
        )
        signature = credential.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": credential.b64url_id,
            "rawId": credential.b64url_id,
            "type": "public-key",
            "authenticatorAttachment": self.attachment,
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(credential.user_handle),
            },
        }

    def _pick(self, rp_id: str, allowed: Sequence[Mapping[str, Any]]) -> Credential:
        mine = [c for c in self.credentials if c.rp_id == rp_id]
        if allowed:
            ids = [from_b64url(item["id"]) for item in allowed]
            mine = [c for c in mine if c.id in ids]
        if not mine:
            raise AuthenticatorRefused("NotAllowedError", f"no credential for {rp_id} may answer")
        return mine[-1]

    def _flags(self, flags: int | None, user_present: bool, user_verified: bool) -> int:
        if flags is not None:
            return flags
        value = (UP if user_present else 0) | (UV if user_verified else 0)
        if self.backup_eligible:
            value |= BE
        if self.backed_up:
            value |= BS
        return value

    def _client_data(self, ceremony: str, challenge: str, origin: str | None) -> bytes:
        """``clientDataJSON``, as the browser writes it: compact, in this key order."""
        data = {
            "type": ceremony,
            "challenge": challenge,
            "origin": origin if origin is not None else self.origin,
            "crossOrigin": False,
        }
        return json.dumps(data, separators=(",", ":")).encode()

    def _authenticator_data(
        self, rp_id: str, flags: int, sign_count: int, *, attested: Credential | None = None
    ) -> bytes:
        data = (
            hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + sign_count.to_bytes(4, "big")
        )
        if attested is not None:
            data += (
                self.aaguid
                + len(attested.id).to_bytes(2, "big")
                + attested.id
                + attested.cose_public_key()
            )
        return data


def _host(origin: str) -> str:
    host = urlsplit(origin).hostname
    assert host is not None, origin
    return host
