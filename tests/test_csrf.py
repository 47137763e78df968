from asgi_session import _csrf as csrf

SECRET = "secret-one"


def test_issued_token_verifies_against_its_cookie() -> None:
    token, cookie = csrf.issue(SECRET)
    assert len(token) == 64
    assert cookie.startswith(token + "|")
    assert csrf.verify(cookie, token, [SECRET])


def test_cookie_format_matches_authjs() -> None:
    import hashlib

    token, cookie = csrf.issue(SECRET)
    assert cookie == f"{token}|{hashlib.sha256((token + SECRET).encode()).hexdigest()}"


def test_wrong_token_fails() -> None:
    token, cookie = csrf.issue(SECRET)
    other, _ = csrf.issue(SECRET)
    assert not csrf.verify(cookie, other, [SECRET])
    assert not csrf.verify(cookie, None, [SECRET])
    assert not csrf.verify(cookie, ["list"], [SECRET])
    assert not csrf.verify(None, token, [SECRET])


def test_forged_cookie_fails() -> None:
    token = "a" * 64
    assert not csrf.verify(f"{token}|{'0' * 64}", token, [SECRET])
    assert not csrf.verify(f"{token}|{'0' * 64}|x", token, [SECRET])
    assert not csrf.verify("garbage", "garbage", [SECRET])


def test_cookie_from_another_secret_fails() -> None:
    token, cookie = csrf.issue("another-secret")
    assert not csrf.verify(cookie, token, [SECRET])


def test_rotated_secret_still_verifies() -> None:
    token, cookie = csrf.issue("old-secret")
    assert csrf.verify(cookie, token, ["new-secret", "old-secret"])
    assert csrf.token_from_cookie(cookie, ["new-secret", "old-secret"]) == token


def test_non_ascii_submission_is_rejected_not_raised() -> None:
    _, cookie = csrf.issue(SECRET)
    assert not csrf.verify(cookie, "é" * 64, [SECRET])
