from datetime import UTC, datetime

import pytest

from asgi_session import _cookies as cookies
from asgi_session._cookies import CHUNK_SIZE, CookieNames, CookieSpec
from asgi_session.errors import CookieTooLargeError

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
    assert cookies.read_chunked(dict(reversed(list(jar.items()))), SPEC.name) == "".join(
        str(i) for i in range(12)
    )


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


def test_present_names_lists_plain_and_chunks() -> None:
    jar = {SPEC.name: "a", f"{SPEC.name}.0": "b", "other": "c"}
    assert cookies.present_names(jar, SPEC.name) == [SPEC.name, f"{SPEC.name}.0"]


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
