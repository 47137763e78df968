import pytest

from asgi_session._redirects import same_origin_url

BASE = "https://app.example.com"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/dashboard", BASE + "/dashboard"),
        ("/a?b=c#d", BASE + "/a?b=c#d"),
        ("https://app.example.com/x", "https://app.example.com/x"),
        ("https://APP.example.com:443/x", "https://APP.example.com:443/x"),
    ],
)
def test_same_origin_is_kept(url: str, expected: str) -> None:
    assert same_origin_url(url, BASE) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.net/",
        "http://app.example.com/",  # another scheme is another origin
        "https://app.example.com:8443/",
        "https://app.example.com.evil.net/",
        "https://app.example.com@evil.net/",
        "//evil.example.net",
        "/\\evil.example.net",
        "\\\\evil.example.net",
        "javascript:alert(1)",
        "data:text/html,hi",
        "/ok\r\nSet-Cookie: x=y",
        "/a b",
        "",
        "x" * 5000,
        None,
        42,
        "https://[::1",
    ],
)
def test_anything_else_falls_back_to_base(url: object) -> None:
    assert same_origin_url(url, BASE) == BASE
