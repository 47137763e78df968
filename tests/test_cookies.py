from datetime import UTC, datetime

import pytest

from asgi_session import _cookies as cookies
from asgi_session._cookies import CHUNK_SIZE, CookieNames, CookieSpec
from asgi_session.errors import CookieTooLargeError
from tests.support.node import run_node_script

SPEC = CookieSpec(name="authjs.session-token")


def test_default_names_plain_http() -> None:
    names = CookieNames.default(secure=False)
    assert names.session_token.name == "authjs.session-token"
    assert names.csrf_token.name == "authjs.csrf-token"
    assert names.callback_url.name == "authjs.callback-url"
    assert not names.session_token.secure


def test_default_names_secure_use_prefixes() -> None:
    names = CookieNames.default(secure=True)
    assert names.session_token.name == "__Secure-authjs.session-token"
    assert names.callback_url.name == "__Secure-authjs.callback-url"
    assert names.csrf_token.name == "__Host-authjs.csrf-token"
    assert names.state.name == "__Secure-authjs.state"
    assert all(spec.secure for spec in (names.session_token, names.csrf_token, names.nonce))


def test_overrides_change_only_what_they_name() -> None:
    names = CookieNames.default(
        secure=False, overrides={"session_token": {"domain": "example.com"}}
    )
    assert names.session_token.domain == "example.com"
    assert names.session_token.name == "authjs.session-token"
    assert names.csrf_token.domain is None


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown cookie"):
        CookieNames.default(secure=False, overrides={"sesion_token": {}})


def test_serialize_has_security_attributes() -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    header = cookies.serialize(CookieSpec(name="n", secure=True), "v", expires=expires)
    assert header == (
        "n=v; Path=/; Expires=Wed, 02 Jan 2030 03:04:05 GMT; HttpOnly; Secure; SameSite=Lax"
    )


def test_values_are_percent_encoded_and_decoded_like_authjs() -> None:
    header = cookies.serialize(SPEC, "a|b c;d")
    assert header.startswith("authjs.session-token=a%7Cb%20c%3Bd;")
    value = header.split(";")[0].split("=", 1)[1]
    assert cookies.parse_cookie_header(f"authjs.session-token={value}") == {
        "authjs.session-token": "a|b c;d"
    }


def test_small_value_keeps_plain_name() -> None:
    headers = cookies.write_chunked(SPEC, "x" * CHUNK_SIZE, expires=None)
    assert len(headers) == 1
    assert headers[0].startswith("authjs.session-token=")


def test_large_value_is_chunked_at_authjs_boundary() -> None:
    value = "a" * CHUNK_SIZE + "b" * CHUNK_SIZE + "c" * 10
    headers = cookies.write_chunked(SPEC, value, expires=None)
    names = [header.split("=", 1)[0] for header in headers]
    assert names == [f"{SPEC.name}.0", f"{SPEC.name}.1", f"{SPEC.name}.2"]
    assert CHUNK_SIZE == 3936
    jar = {h.split("=", 1)[0]: h.split(";")[0].split("=", 1)[1] for h in headers}
    assert cookies.read_chunked(jar, SPEC.name) == value


def test_chunks_are_read_in_numeric_order() -> None:
    jar = {f"{SPEC.name}.{i}": str(i) for i in range(12)}
    assert cookies.read_chunked(
        dict(reversed(list(jar.items()))), SPEC.name, max_chunks=12
    ) == "".join(str(i) for i in range(12))


def test_stale_chunks_are_expired_when_value_shrinks() -> None:
    present = [f"{SPEC.name}.0", f"{SPEC.name}.1", f"{SPEC.name}.2"]
    headers = cookies.write_chunked(SPEC, "small", expires=None, present=present)
    assert headers[0].startswith(f"{SPEC.name}=small;")
    expired = [h.split("=", 1)[0] for h in headers[1:]]
    assert expired == present
    assert all("Max-Age=0" in h for h in headers[1:])


def test_plain_cookie_is_expired_when_value_grows_into_chunks() -> None:
    headers = cookies.write_chunked(SPEC, "x" * (CHUNK_SIZE + 1), expires=None, present=[SPEC.name])
    assert [h.split("=", 1)[0] for h in headers] == [
        f"{SPEC.name}.0",
        f"{SPEC.name}.1",
        SPEC.name,
    ]
    assert "Max-Age=0" in headers[-1]


def test_too_many_chunks_is_a_clear_error() -> None:
    with pytest.raises(CookieTooLargeError, match="database strategy"):
        cookies.write_chunked(SPEC, "x" * (CHUNK_SIZE * 2 + 1), expires=None, max_chunks=2)


@pytest.mark.parametrize(
    "jar",
    [
        {f"{SPEC.name}.0": "a", f"{SPEC.name}.2": "c"},  # a gap
        {f"{SPEC.name}.1": "b"},  # no first chunk
    ],
)
def test_broken_chunk_sets_read_as_absent(jar: dict[str, str]) -> None:
    assert cookies.read_chunked(jar, SPEC.name) is None


def test_absurd_chunk_numbers_are_ignored() -> None:
    jar = {SPEC.name: "plain", f"{SPEC.name}.999999": "x", f"{SPEC.name}.x": "y"}
    assert cookies.read_chunked(jar, SPEC.name) == "plain"


# Auth.js writes String(index): one spelling per chunk, so the name read is the name
# joined and the name expired. Any other spelling is junk a sibling subdomain may toss.
_JUNK_SUFFIXES = [
    "00",
    "01",
    "000",
    "+1",
    "-0",
    " 1",
    "1 ",
    "0x1",
    "1e0",
    "\u0660",  # ARABIC-INDIC DIGIT ZERO: a digit to int(), not to Auth.js
    "\uff11",  # FULLWIDTH DIGIT ONE
    "\u00b9",  # SUPERSCRIPT ONE
    "4",  # the first past the default limit
    "10",
    "1" * 5000,  # past int()'s digit limit, which raises instead of converting
    "",
    "x",
    "0.0",
]


@pytest.mark.parametrize("suffix", _JUNK_SUFFIXES)
def test_junk_chunk_names_are_ignored_never_an_error(suffix: str) -> None:
    junk = f"{SPEC.name}.{suffix}"
    assert cookies.read_chunked({junk: "x", "other": "y"}, SPEC.name) is None
    assert cookies.read_chunked({SPEC.name: "plain", junk: "x"}, SPEC.name) == "plain"
    chunked = {f"{SPEC.name}.0": "a", junk: "x", f"{SPEC.name}.1": "b"}
    assert cookies.read_chunked(chunked, SPEC.name) == "ab"
    assert cookies.read_chunked_checked(chunked, SPEC.name) == ("ab", [junk])
    assert cookies.chunk_indexes(chunked, SPEC.name) == [0, 1]


def test_a_header_stuffed_with_junk_expires_only_a_few() -> None:
    jar = {f"{SPEC.name}.x{index}": "x" for index in range(300)}
    jar[SPEC.name] = "plain"
    value, junk = cookies.read_chunked_checked(jar, SPEC.name)
    assert value == "plain"
    assert len(junk) == cookies.MAX_JUNK_EXPIRED
    assert len(cookies.present_names(jar, SPEC.name)) == 1 + cookies.MAX_JUNK_EXPIRED


@pytest.mark.parametrize(
    "jar",
    [
        {f"{SPEC.name}.00": "x", "other": "y"},
        {f"{SPEC.name}.0": "a", f"{SPEC.name}.01": "b"},
        {f"{SPEC.name}.01": "a", f"{SPEC.name}.1": "b"},
        {f"__Secure-{SPEC.name}.00": "x", f"__Secure-{SPEC.name}.0": "y"},
    ],
)
def test_leading_zeros_never_stand_for_another_chunk(jar: dict[str, str]) -> None:
    for name in (SPEC.name, f"__Secure-{SPEC.name}"):
        value = cookies.read_chunked(jar, name)
        assert value is None or value == jar.get(f"{name}.0")
        assert set(cookies.present_names(jar, name)) == {n for n in jar if n.startswith(name)}


def test_chunk_limit_is_the_configured_one() -> None:
    jar = {f"{SPEC.name}.{i}": str(i) for i in range(6)}
    assert cookies.read_chunked(jar, SPEC.name, max_chunks=6) == "012345"
    assert cookies.read_chunked_checked(jar, SPEC.name, max_chunks=2) == (
        "01",
        [f"{SPEC.name}.{i}" for i in range(2, 6)],
    )


def test_present_names_include_junk_as_the_browser_sent_it() -> None:
    jar = {f"{SPEC.name}.00": "x"}
    assert cookies.read_chunked(jar, SPEC.name) is None
    assert cookies.present_names(jar, SPEC.name) == [f"{SPEC.name}.00"]
    [cleared] = cookies.clear_chunked(SPEC, cookies.present_names(jar, SPEC.name))
    assert cleared.startswith(f"{SPEC.name}.00=;") and "Max-Age=0" in cleared


def test_writing_a_new_value_expires_junk_names() -> None:
    jar = {SPEC.name: "old", f"{SPEC.name}.00": "x", f"{SPEC.name}.9": "y"}
    present = cookies.present_names(jar, SPEC.name)
    headers = cookies.write_chunked(SPEC, "new", expires=None, present=present)
    assert headers[0].startswith(f"{SPEC.name}=new;")
    assert [h.split("=", 1)[0] for h in headers[1:]] == [f"{SPEC.name}.00", f"{SPEC.name}.9"]
    assert all("Max-Age=0" in h for h in headers[1:])


def test_present_names_lists_plain_and_chunks() -> None:
    jar = {SPEC.name: "a", f"{SPEC.name}.0": "b", "other": "c"}
    assert cookies.present_names(jar, SPEC.name) == [SPEC.name, f"{SPEC.name}.0"]


def test_a_repeated_name_keeps_its_first_value() -> None:
    # Browsers send the most specific cookie first; one tossed from a sibling subdomain
    # comes later and must not win.
    assert cookies.parse_cookie_header("a=victim; b=1; a=tossed") == {"a": "victim", "b": "1"}
    joined = "; ".join(["authjs.session-token=first; x=1", "authjs.session-token=second"])
    assert cookies.parse_cookie_header(joined)["authjs.session-token"] == "first"
    assert cookies.parse_cookie_header("a=; a=2") == {"a": ""}


# Headers where a lenient or last-wins parser would name another session than Auth.js.
# Quoted values are left out: @auth/core 0.41 keeps the quotes, Starlette drops them.
_TRICKY_HEADERS = [
    "authjs.session-token=first; authjs.session-token=second",
    "authjs.session-token=first; other=1; authjs.session-token=second",
    "authjs.session-token=first; csrf=1; authjs.session-token=second; csrf=2",
    "  authjs.session-token = first ;authjs.session-token=second",
    "\tauthjs.session-token=first\t;\tauthjs.session-token=second",
    "authjs.session-token=; authjs.session-token=second",
    "authjs.session-token.0=a; authjs.session-token.1=b; authjs.session-token.0=c",
    "authjs.session-token=a%20b%3D; authjs.session-token=c",
    "authjs.session-token=x=y; authjs.session-token=z",
    "\x0bauthjs.session-token=tossed; authjs.session-token=victim",
    "authjs.session-token\x0c=tossed; authjs.session-token=victim",
    "a=1;;; ;b=2; =c; a=3",
]


def test_parsing_agrees_with_authjs() -> None:
    answers = run_node_script(
        "cookie_parse.mjs", {"headers": _TRICKY_HEADERS, "cookieName": SPEC.name}
    )
    compared = 0
    for header, answer in zip(_TRICKY_HEADERS, answers, strict=True):
        parsed = cookies.parse_cookie_header(header)
        assert parsed == answer["cookies"], header
        # Auth.js joins every cookie whose name merely starts with the session cookie's
        # (the one with a trailing form feed above); elsewhere both read the same cookies.
        if {name for name in parsed if name.startswith(SPEC.name)} == set(
            cookies.present_names(parsed, SPEC.name)
        ):
            token = cookies.read_chunked(parsed, SPEC.name) or None
            assert token == answer["sessionToken"], header
            compared += 1
    assert compared == len(_TRICKY_HEADERS) - 1


def test_parse_tolerates_garbage() -> None:
    parsed = cookies.parse_cookie_header('a=1; ;; =; b="2"; c=%ZZ; \x00=\x01')
    assert parsed["a"] == "1"
    assert parsed["b"] == "2"
    assert parsed["c"] == "%ZZ"


@pytest.mark.parametrize(
    "override",
    [{"domain": "example.com"}, {"path": "/app"}, {"secure": False}],
)
def test_prefixed_cookies_must_keep_their_rules(override: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="browsers reject"):
        CookieNames.default(secure=True, overrides={"csrf_token": override})


def test_plain_http_cookies_may_have_a_domain() -> None:
    names = CookieNames.default(secure=False, overrides={"csrf_token": {"domain": "example.com"}})
    assert names.csrf_token.domain == "example.com"
