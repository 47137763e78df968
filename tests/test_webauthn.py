"""Passkey ceremonies: the options browsers read, and every check of what they answer.

The answers come from a software authenticator (``tests/support/authenticator.py``) that
makes real P-256 keys and ES256 signatures over real authenticator data; each forged
answer differs from a good one in one respect only, so each test shows one check.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_session import _webauthn as webauthn
from asgi_session.backends._records import to_stored
from asgi_session.errors import ConfigurationError, PasskeyRefused, SignInError
from asgi_session.models import AUTHENTICATOR_FIELDS, Authenticator, as_mapping
from tests.support.authenticator import (
    BS,
    UP,
    UV,
    AuthenticatorRefused,
    SoftwareAuthenticator,
    b64url,
)

ORIGIN = "http://localhost:8000"
RP = webauthn.relying_party(ORIGIN)
EMAIL = "ada@example.com"
USER_ID = "65f0c0ffee0000000000beef"
# Standard base64 of these bytes has "+", "/" and padding: Auth.js's spelling shows.
AWKWARD_ID = bytes.fromhex("fbff") * 8 + b"\xfe"


def _register(
    authenticator: SoftwareAuthenticator, **forge: Any
) -> tuple[webauthn.NewCredential, Authenticator]:
    options, challenge = webauthn.registration_options(
        RP, user_name=EMAIL, user_display_name="Ada", exclude=[]
    )
    new = webauthn.verify_registration(
        RP, authenticator.register(options, **forge), challenge=challenge
    )
    return new, new.authenticator(USER_ID)


def _refused_registration(reason_part: str, **forge: Any) -> PasskeyRefused:
    options, challenge = webauthn.registration_options(
        RP, user_name=EMAIL, user_display_name=None, exclude=[]
    )
    answer = SoftwareAuthenticator(ORIGIN).register(options, **forge)
    with pytest.raises(PasskeyRefused) as refused:
        webauthn.verify_registration(RP, answer, challenge=challenge)
    assert reason_part in refused.value.reason
    return refused.value


def _sign_in(
    authenticator: SoftwareAuthenticator, record: Authenticator, **forge: Any
) -> tuple[dict[str, Any], str]:
    """An assertion for ``record``'s passkey, and the challenge it must answer."""
    options, challenge = webauthn.authentication_options(RP, allow=[record])
    return authenticator.authenticate(options, **forge), challenge


@pytest.fixture
def phone() -> SoftwareAuthenticator:
    return SoftwareAuthenticator(ORIGIN)


@pytest.fixture
def registered(phone: SoftwareAuthenticator) -> Authenticator:
    return _register(phone)[1]


# --- the relying party -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:8000", webauthn.RelyingParty("localhost", "localhost:8000", ORIGIN)),
        (
            "http://localhost:8000/auth/",
            webauthn.RelyingParty("localhost", "localhost:8000", ORIGIN),
        ),
        # Browsers leave the default port out of the origin, and lower-case the host.
        (
            "https://Example.COM:443/app",
            webauthn.RelyingParty("example.com", "example.com", "https://example.com"),
        ),
        (
            "http://app.localhost:80",
            webauthn.RelyingParty("app.localhost", "app.localhost", "http://app.localhost"),
        ),
        # International names are used in their ASCII form, as browsers send them.
        (
            "https://bücher.example",
            webauthn.RelyingParty(
                "xn--bcher-kva.example", "xn--bcher-kva.example", "https://xn--bcher-kva.example"
            ),
        ),
    ],
)
def test_the_relying_party_is_the_apps_host(url: str, expected: webauthn.RelyingParty) -> None:
    assert webauthn.relying_party(url) == expected


def test_the_relying_party_can_be_named() -> None:
    assert webauthn.relying_party(ORIGIN, "Ada's app").name == "Ada's app"
    with pytest.raises(ConfigurationError, match="non-empty"):
        webauthn.relying_party(ORIGIN, " ")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "https://[::1]/", "http://10.0.0.7"])
def test_an_ip_address_cannot_be_a_relying_party(url: str) -> None:
    with pytest.raises(ConfigurationError, match="such as localhost"):
        webauthn.relying_party(url)


@pytest.mark.parametrize(
    "url", ["", "localhost:8000", "ftp://example.com", "http://", "http://localhost:99999"]
)
def test_the_relying_party_needs_an_http_url(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"https://example\.com"):
        webauthn.relying_party(url)


def test_without_py_webauthn_the_package_loads_and_passkeys_say_what_to_install() -> None:
    script = (
        "import sys; sys.modules['webauthn'] = None\n"  # what an absent package looks like
        "import asgi_session, asgi_session._webauthn as w\n"
        "from asgi_session.errors import ConfigurationError\n"
        "rp = w.RelyingParty('localhost', 'localhost', 'http://localhost')\n"
        "for step in (\n"
        "    lambda: w.relying_party('http://localhost:8000'),\n"
        "    lambda: w.authentication_options(rp, allow=None),\n"
        "    lambda: w.verify_registration(rp, {}, challenge='AA'),\n"
        "):\n"
        "    try:\n"
        "        step()\n"
        "    except ConfigurationError as error:\n"
        "        print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.count("pip install 'asgi-session[mfa]'") == 3


# --- options -----------------------------------------------------------------------------


def test_registration_options_are_what_simplewebauthn_reads(registered: Authenticator) -> None:
    options, challenge = webauthn.registration_options(
        RP, user_name=EMAIL, user_display_name="Ada Lovelace", exclude=[registered]
    )
    json.dumps(options)  # it goes to the browser as it is
    assert options["rp"] == {"id": "localhost", "name": "localhost:8000"}
    assert options["user"]["name"] == EMAIL
    assert options["user"]["displayName"] == "Ada Lovelace"
    assert options["challenge"] == challenge
    assert len(base64.urlsafe_b64decode(challenge + "=")) == 32
    # A random handle, not the user's id: the stored Authenticator ties passkey to user.
    assert len(base64.urlsafe_b64decode(options["user"]["id"] + "=")) == 32
    assert USER_ID not in json.dumps(options)
    assert [param["alg"] for param in options["pubKeyCredParams"]] == [-8, -7, -257]
    assert {param["type"] for param in options["pubKeyCredParams"]} == {"public-key"}
    assert options["timeout"] == 300_000
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"] == {
        "residentKey": "required",
        "requireResidentKey": True,
        "userVerification": "required",
    }
    assert options["excludeCredentials"] == [
        {
            "id": b64url(base64.b64decode(registered.credential_id)),
            "type": "public-key",
            "transports": ["internal", "hybrid"],
        }
    ]


def test_each_registration_gets_its_own_challenge_and_user_handle() -> None:
    first, first_challenge = webauthn.registration_options(
        RP, user_name=EMAIL, user_display_name=None, exclude=[], timeout_ms=60_000
    )
    second, second_challenge = webauthn.registration_options(
        RP, user_name=EMAIL, user_display_name=None, exclude=[]
    )
    assert first_challenge != second_challenge
    assert first["user"]["id"] != second["user"]["id"]
    assert first["user"]["displayName"] == EMAIL
    assert first["timeout"] == 60_000


def test_an_authenticator_declines_to_register_a_passkey_twice(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    options, _ = webauthn.registration_options(
        RP, user_name=EMAIL, user_display_name=None, exclude=[registered]
    )
    with pytest.raises(AuthenticatorRefused, match="InvalidStateError"):
        phone.register(options)


def test_discoverable_authentication_options_allow_any_passkey() -> None:
    options, challenge = webauthn.authentication_options(RP, allow=None)
    assert options == {
        "challenge": challenge,
        "timeout": 300_000,
        "rpId": "localhost",
        "allowCredentials": [],
        "userVerification": "required",
    }


def test_authentication_options_for_a_known_user_list_their_passkeys(
    registered: Authenticator,
) -> None:
    broken = replace(registered, credential_id="not base64!", transports=None)
    no_transports = replace(registered, credential_id="AAEC", transports="carrier-pigeon")
    options, _ = webauthn.authentication_options(RP, allow=[registered, broken, no_transports])
    assert options["allowCredentials"] == [
        {
            "id": b64url(base64.b64decode(registered.credential_id)),
            "type": "public-key",
            "transports": ["internal", "hybrid"],
        },
        {"id": "AAEC", "type": "public-key"},
    ]


@pytest.mark.parametrize("timeout", [0, -1, 1.5, True])
def test_a_timeout_is_positive_milliseconds(timeout: Any) -> None:
    with pytest.raises(ConfigurationError, match="milliseconds"):
        webauthn.authentication_options(RP, allow=None, timeout_ms=timeout)


# --- registration ------------------------------------------------------------------------


def test_a_registration_gives_an_authjs_authenticator_record() -> None:
    new, record = _register(SoftwareAuthenticator(ORIGIN), credential_id=AWKWARD_ID)
    # Node's Buffer.toString("base64"): "+", "/" and "=" padding.
    assert new.credential_id == base64.b64encode(AWKWARD_ID).decode() == "+//7//v/+//7//v/+//7//4="
    key = cbor2.loads(base64.b64decode(new.credential_public_key))
    assert (key[1], key[3], key[-1]) == (2, -7, 1)  # EC2, ES256, P-256
    assert new.counter == 0
    assert new.credential_device_type == "singleDevice"
    assert new.credential_backed_up is False
    assert new.transports == "internal,hybrid"
    assert to_stored(as_mapping(record), AUTHENTICATOR_FIELDS) == {
        "credentialID": new.credential_id,
        "userId": USER_ID,
        "providerAccountId": new.credential_id,
        "credentialPublicKey": new.credential_public_key,
        "counter": 0,
        "credentialDeviceType": "singleDevice",
        "credentialBackedUp": False,
        "transports": "internal,hybrid",
        "name": None,
        "createdAt": None,
        "lastUsedAt": None,
    }


def test_a_synced_passkey_is_multi_device() -> None:
    new, _ = _register(SoftwareAuthenticator(ORIGIN, backup_eligible=True, backed_up=True))
    assert (new.credential_device_type, new.credential_backed_up) == ("multiDevice", True)


def test_a_registration_keeps_only_transports_webauthn_defines() -> None:
    new, _ = _register(SoftwareAuthenticator(ORIGIN, transports=("usb", "usb", "x<y>", "nfc")))
    assert new.transports == "usb,nfc"
    new, _ = _register(SoftwareAuthenticator(ORIGIN, transports=()))
    assert new.transports is None


def test_a_registration_for_another_challenge_is_refused() -> None:
    _refused_registration("expired", challenge=b64url(b"\x00" * 32))


def test_a_registration_on_another_origin_is_refused() -> None:
    _refused_registration("another website", origin="http://localhost:8001")
    _refused_registration("another website", origin="https://localhost:8000")


def test_a_registration_for_another_relying_party_is_refused() -> None:
    _refused_registration("belongs to another website", rp_id="example.com")


def test_a_registration_without_user_verification_is_refused() -> None:
    _refused_registration("PIN, fingerprint or face", user_verified=False)


def test_a_registration_without_user_presence_is_refused() -> None:
    _refused_registration("not confirmed", user_present=False)


def test_an_assertion_posted_as_a_registration_is_refused() -> None:
    _refused_registration("another request", ceremony="webauthn.get")


def test_impossible_backup_flags_are_refused() -> None:
    # Backed up but not eligible for backup: no authenticator says that.
    _refused_registration("could not be read", flags=UP | UV | BS)


def test_a_registration_naming_another_credential_is_refused() -> None:
    options, challenge = webauthn.registration_options(
        RP, user_name=EMAIL, user_display_name=None, exclude=[]
    )
    answer = SoftwareAuthenticator(ORIGIN).register(options)
    answer["id"] = answer["rawId"] = b64url(b"another credential")
    with pytest.raises(PasskeyRefused):
        webauthn.verify_registration(RP, answer, challenge=challenge)


def test_a_credential_id_longer_than_webauthn_allows_is_refused() -> None:
    _refused_registration("longer than WebAuthn allows", credential_id=b"\x01" * 1024)
    new, _ = _register(SoftwareAuthenticator(ORIGIN), credential_id=b"\x01" * 1023)
    assert len(base64.b64decode(new.credential_id)) == 1023


# --- authentication ----------------------------------------------------------------------


def test_an_assertion_verifies_and_its_counter_goes_up(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    answer, challenge = _sign_in(phone, registered)
    assert webauthn.credential_id(answer) == registered.credential_id
    counter = webauthn.verify_authentication(
        RP, answer, challenge=challenge, authenticator=registered
    )
    assert counter == 1
    registered.counter = counter
    answer, challenge = _sign_in(phone, registered)
    assert (
        webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=registered)
        == 2
    )


def test_a_discoverable_passkey_signs_in_without_a_typed_address(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    options, challenge = webauthn.authentication_options(RP, allow=None)
    answer = phone.authenticate(options)
    assert answer["response"]["userHandle"]
    assert webauthn.credential_id(answer) == registered.credential_id  # how the route finds it
    assert (
        webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=registered)
        == 1
    )


def test_a_user_handle_in_simplewebauthn_9s_spelling_does_not_matter(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    """Auth.js's client decodes the handle as UTF-8: random bytes come out as text that
    is not base64url. The handle is not signed over, and not needed."""
    answer, challenge = _sign_in(phone, registered)
    answer["response"]["userHandle"] = "\ufffd\u00e9\ufffd+/"
    assert (
        webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=registered)
        == 1
    )


def test_authenticators_without_a_counter_always_send_zero() -> None:
    phone = SoftwareAuthenticator(ORIGIN, counter_step=0, backup_eligible=True)
    _, record = _register(phone)
    for _ in range(3):
        answer, challenge = _sign_in(phone, record)
        assert (
            webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=record)
            == 0
        )


def test_a_replayed_assertion_is_refused(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    answer, challenge = _sign_in(phone, registered)
    registered.counter = webauthn.verify_authentication(
        RP, answer, challenge=challenge, authenticator=registered
    )
    with pytest.raises(PasskeyRefused, match="counter did not go up"):
        webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=registered)


@pytest.mark.parametrize("sent", [0, 4, 5])
def test_a_counter_that_does_not_go_up_is_refused(
    phone: SoftwareAuthenticator, registered: Authenticator, sent: int
) -> None:
    """A cloned authenticator: the copy signs with a counter the original passed."""
    registered.counter = 5
    answer, challenge = _sign_in(phone, registered, sign_count=sent)
    with pytest.raises(PasskeyRefused, match="may have been copied"):
        webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=registered)
    answer, challenge = _sign_in(phone, registered, sign_count=6)
    assert (
        webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=registered)
        == 6
    )


def _refused_sign_in(
    phone: SoftwareAuthenticator, record: Authenticator, reason_part: str, **forge: Any
) -> None:
    answer, challenge = _sign_in(phone, record, **forge)
    with pytest.raises(PasskeyRefused) as refused:
        webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=record)
    assert reason_part in refused.value.reason


def test_an_assertion_for_another_challenge_is_refused(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    _refused_sign_in(phone, registered, "expired", challenge=b64url(b"\x01" * 32))
    answer, _ = _sign_in(phone, registered)
    for broken in ("", "not base64!", "a"):
        with pytest.raises(PasskeyRefused, match="expired"):
            webauthn.verify_authentication(RP, answer, challenge=broken, authenticator=registered)


def test_an_assertion_on_another_origin_is_refused(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    _refused_sign_in(phone, registered, "another website", origin="https://evil.example")


def test_an_assertion_for_another_relying_party_is_refused(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    _refused_sign_in(phone, registered, "belongs to another website", rp_id="evil.example")


def test_an_assertion_without_user_verification_is_refused(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    _refused_sign_in(phone, registered, "PIN, fingerprint or face", user_verified=False)


def test_an_assertion_without_user_presence_is_refused(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    _refused_sign_in(phone, registered, "not confirmed", user_present=False)


def test_a_registration_posted_as_an_assertion_is_refused(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    _refused_sign_in(phone, registered, "another request", ceremony="webauthn.create")


def test_a_passkey_of_another_user_is_refused(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    """The route looked up one record and the answer is from another passkey."""
    other_phone = SoftwareAuthenticator(ORIGIN)
    _, other = _register(other_phone)
    answer, challenge = _sign_in(other_phone, other)
    with pytest.raises(PasskeyRefused, match="another passkey"):
        webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=registered)
    # Naming the record's credential does not help: the signature is the other key's.
    answer["id"] = answer["rawId"] = b64url(base64.b64decode(registered.credential_id))
    with pytest.raises(PasskeyRefused, match="signature does not match"):
        webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=registered)


def test_an_id_that_differs_from_the_raw_id_is_refused(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    answer, challenge = _sign_in(phone, registered)
    answer["rawId"] = b64url(b"another credential")
    with pytest.raises(PasskeyRefused):
        webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=registered)


def test_stored_ids_are_read_in_any_base64_spelling(
    phone: SoftwareAuthenticator,
) -> None:
    _, record = _register(phone, credential_id=AWKWARD_ID)
    for spelling in (record.credential_id, record.credential_id.rstrip("="), b64url(AWKWARD_ID)):
        counter = phone.credentials[-1].sign_count
        stored = replace(record, credential_id=spelling, counter=counter)
        answer, challenge = _sign_in(phone, stored)
        assert (
            webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=stored)
            == counter + 1
        )


def test_a_broken_stored_record_is_refused_not_an_error(
    phone: SoftwareAuthenticator, registered: Authenticator
) -> None:
    answer, challenge = _sign_in(phone, registered)
    for broken in (
        replace(registered, credential_public_key="not a key"),
        replace(registered, credential_public_key=base64.b64encode(b"\xa0").decode()),
        replace(registered, counter=-1),
    ):
        with pytest.raises(PasskeyRefused):
            webauthn.verify_authentication(RP, answer, challenge=challenge, authenticator=broken)


# --- what the browser posts --------------------------------------------------------------


def test_credential_id_is_the_stored_spelling() -> None:
    assert (
        webauthn.credential_id({"id": b64url(AWKWARD_ID)}) == base64.b64encode(AWKWARD_ID).decode()
    )
    assert webauthn.credential_id({"id": "AAEC"}) == "AAEC"
    assert webauthn.credential_id({"id": "AA"}) == "AA=="


@pytest.mark.parametrize(
    "response",
    [
        {},
        {"id": None},
        {"id": 5},
        {"id": ""},
        {"id": "a+b/"},
        {"id": "AAE="},
        {"id": "A"},
        {"id": "\ud800"},
        {"id": "A" * 1366},
    ],
)
def test_credential_id_is_none_for_what_no_authenticator_makes(response: dict[str, Any]) -> None:
    assert webauthn.credential_id(response) is None


def test_parse_response_reads_the_form_field(phone: SoftwareAuthenticator) -> None:
    options, _ = webauthn.authentication_options(RP, allow=None)
    _register(phone)
    answer = phone.authenticate(options)
    assert webauthn.parse_response(json.dumps(answer)) == answer


@pytest.mark.parametrize(
    "data",
    [
        None,
        5,
        b'{"id": "AAEC"}',
        "",
        "not json",
        "[]",
        '"AAEC"',
        '{"id": 5}',
        '{"rawId": "AAEC"}',
        '{"id": "AAEC", "n": ' + "9" * 5000 + "}",  # more digits than int() converts
        "[" * 30_000 + "]" * 30_000,  # nesting past the recursion limit
        '{"id": "\\ud800"}',  # a lone surrogate, escaped
        '{"id": "AAEC", "x": "\ud800"}',  # and not
        '{"id": "AAEC", "pad": "' + "x" * 70_000 + '"}',
    ],
)
def test_parse_response_refuses_what_is_not_an_answer(data: object) -> None:
    with pytest.raises(PasskeyRefused) as refused:
        webauthn.parse_response(data)
    assert refused.value.error == "WebAuthnVerificationError"
    assert isinstance(refused.value, SignInError)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    return [path]


def _set(value: dict[str, Any], path: tuple[Any, ...], new: Any) -> None:
    for key in path[:-1]:
        value = value[key]
    value[path[-1]] = new


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_BYTES_IN_BASE64URL = st.binary(max_size=300).map(b64url)


@pytest.fixture(scope="module")
def good_answers() -> dict[str, Any]:
    """A registration and an assertion that verify, with what they were verified against."""
    phone = SoftwareAuthenticator(ORIGIN)
    options, register_challenge = webauthn.registration_options(
        RP, user_name=EMAIL, user_display_name=None, exclude=[]
    )
    registration = phone.register(options)
    record = webauthn.verify_registration(
        RP, registration, challenge=register_challenge
    ).authenticator(USER_ID)
    options, challenge = webauthn.authentication_options(RP, allow=None)
    assertion = phone.authenticate(options)
    return {
        "registration": (registration, register_challenge),
        "assertion": (assertion, challenge),
        "record": record,
    }


def _garble(
    good_answers: dict[str, Any], ceremony: str, data: st.DataObject
) -> tuple[dict[str, Any], str, Callable[[dict[str, Any], str], object]]:
    answer, challenge = good_answers[ceremony]
    answer = copy.deepcopy(answer)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_leaves(answer)))
        _set(answer, path, data.draw(_JSON | _BYTES_IN_BASE64URL))
    record = good_answers["record"]

    def verify(response: dict[str, Any], expected: str) -> object:
        if ceremony == "registration":
            return webauthn.verify_registration(RP, response, challenge=expected)
        return webauthn.verify_authentication(
            RP, response, challenge=expected, authenticator=record
        )

    return answer, challenge, verify


@pytest.mark.parametrize("ceremony", ["registration", "assertion"])
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_garbled_answers_are_refused_never_an_error(
    good_answers: dict[str, Any], ceremony: str, data: st.DataObject
) -> None:
    answer, challenge, verify = _garble(good_answers, ceremony, data)
    with contextlib.suppress(PasskeyRefused):
        verify(answer, challenge)


def _flip(answer: dict[str, Any], data: st.DataObject) -> None:
    """Flip bits of one byte in one of the binary fields."""
    fields = [
        name
        for name in ("attestationObject", "authenticatorData", "clientDataJSON", "signature")
        if name in answer["response"]
    ]
    name = data.draw(st.sampled_from(fields))
    raw = bytearray(base64.urlsafe_b64decode(answer["response"][name] + "=="))
    raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    answer["response"][name] = b64url(bytes(raw))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_an_assertion_changed_in_any_byte_is_refused(
    good_answers: dict[str, Any], data: st.DataObject
) -> None:
    """The signature covers the authenticator data and the client data: nothing else
    verifies, and nothing crashes."""
    answer, challenge = copy.deepcopy(good_answers["assertion"])
    _flip(answer, data)
    with pytest.raises(PasskeyRefused):
        webauthn.verify_authentication(
            RP, answer, challenge=challenge, authenticator=good_answers["record"]
        )


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_registration_changed_in_any_byte_is_refused_or_verifies(
    good_answers: dict[str, Any], data: st.DataObject
) -> None:
    """ "none" attestation signs nothing: a changed key or AAGUID still verifies (the
    next sign-in would fail); anything else is refused, and nothing crashes."""
    answer, challenge = copy.deepcopy(good_answers["registration"])
    _flip(answer, data)
    with contextlib.suppress(PasskeyRefused):
        webauthn.verify_registration(RP, answer, challenge=challenge)
