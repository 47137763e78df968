"""Password hashing and password rules.

bcrypt hashes come from the real ``bcryptjs`` (``tests/support/bcryptjs_hash.mjs``), and
scrypt ones from the real ``better-auth`` (``tests/support/better_auth_hash.mjs``, which
also verifies the scrypt hashes made here), made once for the module; argon2 hashes of
other parameters from argon2-cffi directly. A hash costs 20-100 ms, so each test makes
only a few.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.resources
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, cast

import anyio
import argon2
import bcrypt
import pytest

from asgi_session.errors import ConfigurationError
from asgi_session.passwords import PasswordHasher, PasswordProblem, PasswordRules, Verified
from tests.support.node import run_node_script

CURRENT = ("argon2id", 19, 19456, 2, 1)
_ARGON2_PREFIX = re.compile(r"\$(argon2(?:id|i|d))\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)\$")

PASSWORD = "correct horse battery staple"
NON_ASCII = "Zoë Ågren 🚀 пароль"
# 100 bytes in UTF-8, cut by bcrypt's 72-byte limit in the middle of an "é".
LONG = "x" * 71 + "é" * 14 + "y"
# Not in NFKC: what a Node app that does not normalise hashed as typed.
LIGATURES = "ﬁnancial ﬂows"
BCRYPTJS_PASSWORDS = [PASSWORD, NON_ASCII, LONG, LIGATURES]
BETTER_AUTH_PASSWORDS = [PASSWORD, NON_ASCII, LIGATURES]

# Better Auth's scrypt hashes, and the parameters of @better-auth/utils/password.
_BETTER_AUTH_HASH = re.compile(r"([0-9a-f]{32}):([0-9a-f]{128})")
BETTER_AUTH_SCRYPT = {"n": 16384, "r": 16, "p": 1, "dklen": 64, "maxmem": 128 * 16384 * 16 * 2}


def _params(hashed: str) -> tuple[str, int, int, int, int]:
    """(variant, version, m, t, p) of an argon2 hash."""
    match = _ARGON2_PREFIX.match(hashed)
    assert match is not None, hashed
    variant, *numbers = match.groups()
    version, memory, time_cost, lanes = map(int, numbers)
    return variant, version, memory, time_cost, lanes


class Argon2Calls:
    """Counts what argon2-cffi is asked to do, to see that dummy verifications happen."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.verified: list[str] = []
        self.verify_threads: list[int] = []
        self.hashes = 0
        real_verify = argon2.PasswordHasher.verify
        real_hash = argon2.PasswordHasher.hash

        def verify(hasher: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> Any:
            self.verified.append(hash.decode() if isinstance(hash, bytes) else hash)
            self.verify_threads.append(threading.get_ident())
            return real_verify(hasher, hash, password)

        def make_hash(hasher: argon2.PasswordHasher, password: str | bytes, **kw: Any) -> str:
            self.hashes += 1
            return real_hash(hasher, password, **kw)

        monkeypatch.setattr(argon2.PasswordHasher, "verify", verify)
        monkeypatch.setattr(argon2.PasswordHasher, "hash", make_hash)

    def current_verifications(self) -> int:
        """Verifications against a hash of the current parameters: real or dummy ones."""
        return sum(1 for hashed in self.verified if _params(hashed) == CURRENT)


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> Argon2Calls:
    return Argon2Calls(monkeypatch)


class ScryptCalls:
    """Records what hashlib's scrypt is asked to do, and in which thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict[str, Any]] = []
        self.threads: list[int] = []
        real = hashlib.scrypt

        def scrypt(
            password: bytes,
            *,
            salt: bytes,
            n: int,
            r: int,
            p: int,
            maxmem: int = 0,
            dklen: int = 64,
        ) -> bytes:
            options = {"n": n, "r": r, "p": p, "dklen": dklen, "maxmem": maxmem}
            self.calls.append({"password": len(password), "salt": len(salt), **options})
            self.threads.append(threading.get_ident())
            return real(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)

        monkeypatch.setattr(hashlib, "scrypt", scrypt)

    def better_auths(self) -> int:
        """Derivations with Better Auth's parameters and a salt of its length."""
        return sum(
            1
            for call in self.calls
            if call["salt"] == 32
            and all(call[key] == BETTER_AUTH_SCRYPT[key] for key in BETTER_AUTH_SCRYPT)
        )


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> ScryptCalls:
    return ScryptCalls(monkeypatch)


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()


@pytest.fixture(scope="module")
def scrypt_hasher() -> PasswordHasher:
    return PasswordHasher(new_hashes="scrypt")


@pytest.fixture(scope="module")
def better_auth_hashes() -> list[str]:
    """:data:`BETTER_AUTH_PASSWORDS` hashed by better-auth, in order."""
    hashes: list[str] = run_node_script(
        "better_auth_hash.mjs", {"op": "hash", "passwords": BETTER_AUTH_PASSWORDS}
    )
    return hashes


def better_auth_verifies(checks: list[tuple[str, str]]) -> list[bool]:
    """Whether better-auth verifies each ``(hash, password)``; fails the test if it throws."""
    results = run_node_script(
        "better_auth_hash.mjs",
        {"op": "verify", "checks": [{"hash": h, "password": pw} for h, pw in checks]},
    )
    assert all(result["ok"] for result in results), results
    return [result["value"] for result in results]


@pytest.fixture(scope="module")
def bcryptjs_hashes() -> dict[str, list[str]]:
    """The same passwords hashed by bcryptjs with $2a$ and with $2b$ salts, cost 10."""
    return {
        prefix: run_node_script(
            "bcryptjs_hash.mjs", {"passwords": BCRYPTJS_PASSWORDS, "rounds": 10, "prefix": prefix}
        )
        for prefix in ("2a", "2b")
    }


# -- new hashes ---------------------------------------------------------------------


def test_new_hashes_are_argon2id_with_owasps_parameters(hasher: PasswordHasher) -> None:
    hashed = hasher.hash(PASSWORD)
    assert _params(hashed) == CURRENT
    assert hasher.verify(PASSWORD, hashed) == Verified(ok=True, rehashed=None)


def test_a_wrong_password_fails(hasher: PasswordHasher) -> None:
    hashed = hasher.hash(PASSWORD)
    assert hasher.verify(PASSWORD + "!", hashed) == Verified(ok=False)
    assert hasher.verify("", hashed) == Verified(ok=False)


def test_hashes_are_salted(hasher: PasswordHasher) -> None:
    assert hasher.hash(PASSWORD) != hasher.hash(PASSWORD)


def test_other_parameters_make_hashes_with_them() -> None:
    custom = PasswordHasher(time_cost=3, memory_cost=8192, parallelism=2)
    hashed = custom.hash(PASSWORD)
    assert _params(hashed) == ("argon2id", 19, 8192, 3, 2)
    assert custom.verify(PASSWORD, hashed) == Verified(ok=True)


def test_hash_refuses_what_is_not_a_password(hasher: PasswordHasher) -> None:
    with pytest.raises(TypeError):
        hasher.hash(cast(Any, b"bytes"))
    with pytest.raises(ValueError, match="surrogate"):
        hasher.hash("lone \ud800 surrogate")


def test_passwords_are_nfkc_normalised(hasher: PasswordHasher) -> None:
    # A ligature and a precomposed letter, typed as separate letters elsewhere.
    hashed = hasher.hash("ﬁsh and café")
    assert hasher.verify("fish and cafe\u0301", hashed).ok
    assert hasher.verify("fish and café", hashed).ok
    assert hasher.verify("ﬁsh and café", hasher.hash("fish and café")).ok
    assert not hasher.verify("fish and cafe", hashed).ok


# -- argon2 hashes made elsewhere --------------------------------------------------------


@pytest.mark.parametrize(
    "made_by",
    [
        argon2.PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4),
        argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=argon2.Type.I),
        argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=argon2.Type.D),
    ],
    ids=["argon2id-t3-m65536-p4", "argon2i", "argon2d"],
)
def test_argon2_hashes_of_other_parameters_verify_and_are_rehashed(
    hasher: PasswordHasher, made_by: argon2.PasswordHasher
) -> None:
    stored = made_by.hash(PASSWORD)
    assert hasher.identifies(stored)
    verified = hasher.verify(PASSWORD, stored)
    assert verified.ok
    assert verified.rehashed is not None
    assert _params(verified.rehashed) == CURRENT
    assert hasher.verify(PASSWORD, verified.rehashed) == Verified(ok=True, rehashed=None)
    assert hasher.verify("wrong " + PASSWORD, stored) == Verified(ok=False, rehashed=None)


def test_a_hasher_with_other_parameters_rehashes_owasps(hasher: PasswordHasher) -> None:
    stronger = PasswordHasher(time_cost=3)
    verified = stronger.verify(PASSWORD, hasher.hash(PASSWORD))
    assert verified.ok
    assert verified.rehashed is not None
    assert _params(verified.rehashed) == ("argon2id", 19, 19456, 3, 1)


# -- bcrypt hashes from Node ------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["2a", "2b"])
@pytest.mark.parametrize("index", range(len(BCRYPTJS_PASSWORDS)))
def test_bcryptjs_hashes_verify_and_are_rehashed_as_argon2id(
    hasher: PasswordHasher, bcryptjs_hashes: dict[str, list[str]], prefix: str, index: int
) -> None:
    password = BCRYPTJS_PASSWORDS[index]
    stored = bcryptjs_hashes[prefix][index]
    assert stored.startswith(f"${prefix}$10$")
    assert hasher.identifies(stored)
    verified = hasher.verify(password, stored)
    assert verified.ok
    assert verified.rehashed is not None
    assert _params(verified.rehashed) == CURRENT
    assert hasher.verify(password, verified.rehashed) == Verified(ok=True, rehashed=None)


def test_a_wrong_password_fails_on_a_bcrypt_hash(
    hasher: PasswordHasher, bcryptjs_hashes: dict[str, list[str]]
) -> None:
    stored = bcryptjs_hashes["2b"][0]
    assert hasher.verify(PASSWORD.upper(), stored) == Verified(ok=False, rehashed=None)
    assert hasher.verify("", stored) == Verified(ok=False, rehashed=None)


def test_bcrypt_reads_the_first_72_bytes_as_bcryptjs_does(
    hasher: PasswordHasher, bcryptjs_hashes: dict[str, list[str]]
) -> None:
    assert len(LONG.encode()) == 100
    stored = bcryptjs_hashes["2b"][BCRYPTJS_PASSWORDS.index(LONG)]
    # Past the 72nd byte nothing counts, before it everything does.
    assert hasher.verify(LONG[:72] + "something else", stored).ok
    assert not hasher.verify("y" + LONG[1:], stored).ok


def test_a_bcrypt_hash_of_an_unnormalised_password_verifies_as_typed(
    hasher: PasswordHasher, bcryptjs_hashes: dict[str, list[str]]
) -> None:
    stored = bcryptjs_hashes["2a"][BCRYPTJS_PASSWORDS.index(LIGATURES)]
    assert not bcrypt.checkpw(unicodedata.normalize("NFKC", LIGATURES).encode(), stored.encode())
    verified = hasher.verify(LIGATURES, stored)
    assert verified.ok
    assert verified.rehashed is not None
    # The new hash is of the NFKC form: both ways of typing it verify from now on.
    assert hasher.verify("financial flows", verified.rehashed).ok
    assert hasher.verify(LIGATURES, verified.rehashed).ok


def test_2y_bcrypt_hashes_verify(hasher: PasswordHasher) -> None:
    # PHP's label for the same algorithm: a hash imported from a PHP app.
    stored = "$2y$" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()[4:]
    assert hasher.verify(PASSWORD, stored).ok
    assert not hasher.verify(PASSWORD + ".", stored).ok


# -- Better Auth's scrypt hashes ----------------------------------------------------------


@pytest.mark.parametrize("index", range(len(BETTER_AUTH_PASSWORDS)))
def test_better_auth_hashes_verify_and_are_rehashed_as_argon2id(
    hasher: PasswordHasher, better_auth_hashes: list[str], index: int
) -> None:
    password = BETTER_AUTH_PASSWORDS[index]
    stored = better_auth_hashes[index]
    assert _BETTER_AUTH_HASH.fullmatch(stored), stored
    assert hasher.identifies(stored)
    verified = hasher.verify(password, stored)
    assert verified.ok
    assert verified.rehashed is not None
    assert _params(verified.rehashed) == CURRENT
    assert hasher.verify(password, verified.rehashed) == Verified(ok=True, rehashed=None)


def test_better_auth_hashes_are_current_when_new_hashes_are_scrypt(
    scrypt_hasher: PasswordHasher, better_auth_hashes: list[str]
) -> None:
    for password, stored in zip(BETTER_AUTH_PASSWORDS, better_auth_hashes, strict=True):
        assert scrypt_hasher.identifies(stored)
        assert scrypt_hasher.verify(password, stored) == Verified(ok=True, rehashed=None)


@pytest.mark.parametrize("new_hashes", ["argon2id", "scrypt"])
def test_a_wrong_password_fails_on_a_better_auth_hash(
    better_auth_hashes: list[str], new_hashes: Any
) -> None:
    hasher = PasswordHasher(new_hashes=new_hashes)
    stored = better_auth_hashes[0]
    assert hasher.verify(PASSWORD.upper(), stored) == Verified(ok=False)
    assert hasher.verify(PASSWORD[:-1], stored) == Verified(ok=False)
    assert hasher.verify("", stored) == Verified(ok=False)
    # Another account's hash of the same password: the salt counts.
    assert hasher.verify(PASSWORD, stored[:32] + better_auth_hashes[1][32:]) == Verified(ok=False)


def test_better_auth_hashes_the_nfkc_form_as_python_does(
    hasher: PasswordHasher, scrypt_hasher: PasswordHasher, better_auth_hashes: list[str]
) -> None:
    stored = better_auth_hashes[BETTER_AUTH_PASSWORDS.index(LIGATURES)]
    normalised = unicodedata.normalize("NFKC", LIGATURES)
    assert normalised == "financial flows"
    salt, key = stored.split(":")
    # The salt is the 32 characters, not the 16 bytes they spell; the key is of the NFKC
    # form, not of the password as typed.
    salt_bytes = salt.encode()
    assert hashlib.scrypt(normalised.encode(), salt=salt_bytes, **BETTER_AUTH_SCRYPT).hex() == key
    assert hashlib.scrypt(LIGATURES.encode(), salt=salt_bytes, **BETTER_AUTH_SCRYPT).hex() != key
    for either in (hasher, scrypt_hasher):
        assert either.verify(LIGATURES, stored).ok
        assert either.verify(normalised, stored).ok
        assert not either.verify("financial ﬂow", stored).ok


def test_new_scrypt_hashes_are_better_auths_format_and_parameters(
    scrypt_hasher: PasswordHasher,
) -> None:
    hashed = scrypt_hasher.hash("ﬁsh and cafe\u0301")
    match = _BETTER_AUTH_HASH.fullmatch(hashed)
    assert match is not None, hashed
    salt, key = match.groups()
    expected = hashlib.scrypt("fish and café".encode(), salt=salt.encode(), **BETTER_AUTH_SCRYPT)
    assert key == expected.hex()
    assert scrypt_hasher.verify("fish and café", hashed) == Verified(ok=True, rehashed=None)
    assert scrypt_hasher.hash("fish and café")[:32] != salt  # salted


def test_better_auth_verifies_the_scrypt_hashes_made_here(scrypt_hasher: PasswordHasher) -> None:
    hashes = [scrypt_hasher.hash(password) for password in BETTER_AUTH_PASSWORDS]

    def checks_of(made: list[str]) -> list[tuple[str, str]]:
        return list(zip(made, BETTER_AUTH_PASSWORDS, strict=True))

    ligatures = hashes[BETTER_AUTH_PASSWORDS.index(LIGATURES)]
    checks = [
        *checks_of(hashes),
        (ligatures, "financial flows"),
        *((hashed, f"{password}!") for hashed, password in checks_of(hashes)),
    ]
    assert better_auth_verifies(checks) == [True] * 4 + [False] * 3


def test_new_hashes_scrypt_rehashes_argon2_and_bcrypt_as_better_auths(
    hasher: PasswordHasher, scrypt_hasher: PasswordHasher, bcryptjs_hashes: dict[str, list[str]]
) -> None:
    stored = [
        (PASSWORD, hasher.hash(PASSWORD)),
        (PASSWORD, argon2.PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)),
        (PASSWORD, bcryptjs_hashes["2a"][0]),
        (NON_ASCII, bcryptjs_hashes["2b"][BCRYPTJS_PASSWORDS.index(NON_ASCII)]),
        # Hashed as typed, not normalised: the new hash is of the NFKC form.
        (LIGATURES, bcryptjs_hashes["2b"][BCRYPTJS_PASSWORDS.index(LIGATURES)]),
    ]
    rehashes: list[tuple[str, str]] = []
    for password, old in stored:
        verified = scrypt_hasher.verify(password, old)
        assert verified.ok, old
        assert verified.rehashed is not None
        assert _BETTER_AUTH_HASH.fullmatch(verified.rehashed), verified.rehashed
        assert scrypt_hasher.verify(password, verified.rehashed) == Verified(ok=True)
        rehashes.append((verified.rehashed, password))
    assert scrypt_hasher.verify(PASSWORD + "!", stored[0][1]) == Verified(ok=False)
    assert scrypt_hasher.verify(PASSWORD + "!", stored[2][1]) == Verified(ok=False)
    ligatures = rehashes[-1][0]
    assert better_auth_verifies([*rehashes, (ligatures, "financial flows")]) == [True] * 6


def test_switching_new_hashes_moves_hashes_both_ways(
    hasher: PasswordHasher, scrypt_hasher: PasswordHasher
) -> None:
    as_scrypt = scrypt_hasher.hash(PASSWORD)
    to_argon2 = hasher.verify(PASSWORD, as_scrypt)
    assert to_argon2.ok
    assert to_argon2.rehashed is not None
    assert _params(to_argon2.rehashed) == CURRENT
    back = scrypt_hasher.verify(PASSWORD, to_argon2.rehashed)
    assert back.ok
    assert back.rehashed is not None
    assert _BETTER_AUTH_HASH.fullmatch(back.rehashed)
    assert hasher.verify(PASSWORD, back.rehashed).rehashed is not None


async def test_scrypt_runs_in_a_worker_thread(
    scrypt_hasher: PasswordHasher, better_auth_hashes: list[str], scrypt_calls: ScryptCalls
) -> None:
    stored = await scrypt_hasher.hash_async(PASSWORD)
    assert (await scrypt_hasher.verify_async(PASSWORD, stored)).ok
    assert (await PasswordHasher().verify_async(PASSWORD, better_auth_hashes[0])).ok
    assert scrypt_calls.better_auths() == 3
    assert threading.get_ident() not in scrypt_calls.threads


def test_scrypt_keys_are_compared_in_constant_time(
    scrypt_hasher: PasswordHasher, better_auth_hashes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def compare_digest(a: Any, b: Any) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare_digest)
    assert scrypt_hasher.verify(PASSWORD, better_auth_hashes[0]).ok
    assert not scrypt_hasher.verify(PASSWORD + "!", better_auth_hashes[0]).ok
    assert compared == [(64, 64), (64, 64)]


# -- what cannot be verified --------------------------------------------------------------

_REAL_BCRYPT = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
# The salt's last letter carries unused bits; one with them set passes the pattern, but
# the bcrypt package refuses it.
_NON_CANONICAL_SALT = _REAL_BCRYPT[:28] + "z" + _REAL_BCRYPT[29:]
UNREADABLE: list[object] = [
    None,
    "",
    "not-a-hash",
    "$2b$garbage",
    "$argon2id$v=19$m=1",
    42,
    b"$2b$04$" + b"a" * 53,
    "$2x$04$" + _REAL_BCRYPT[7:],  # crypt_blowfish's flawed variant
    "$2b$99$" + _REAL_BCRYPT[7:],  # no such cost
    _NON_CANONICAL_SALT,
    # Well formed, but libargon2 refuses 1 KiB before doing any work.
    "$argon2id$v=19$m=1,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    "$argon2id$v=19$m=19456,t=2,p=1$!!!!$!!!!",
]


_SCRYPT_SALT = "0123456789abcdef" * 2
_SCRYPT_KEY = "89abcdef01234567" * 8
# Not what Better Auth makes: another shape, case, length or alphabet.
MALFORMED_SCRYPT = [
    "a:b",
    ":",
    f"{_SCRYPT_SALT}:",
    f":{_SCRYPT_KEY}",
    f"{_SCRYPT_SALT[:-1]}:{_SCRYPT_KEY}",
    f"{_SCRYPT_SALT}0:{_SCRYPT_KEY}",
    f"{_SCRYPT_SALT}:{_SCRYPT_KEY[:-2]}",
    f"{_SCRYPT_SALT}:{_SCRYPT_KEY}00",
    f"{_SCRYPT_SALT}:{_SCRYPT_KEY.upper()}",
    f"{_SCRYPT_SALT.upper()}:{_SCRYPT_KEY}",
    f"{_SCRYPT_SALT}:{_SCRYPT_KEY[:-1]}g",
    f"{_SCRYPT_SALT}:{_SCRYPT_KEY}:{_SCRYPT_KEY}",
    f"{_SCRYPT_SALT}:{_SCRYPT_KEY}\n",
    f" {_SCRYPT_SALT}:{_SCRYPT_KEY}",
    f"{_SCRYPT_SALT}${_SCRYPT_KEY}",
    f"{_SCRYPT_SALT}:{_SCRYPT_KEY[:-1]}\u0660",  # a digit, but not a hex one
]


@pytest.mark.parametrize("stored", UNREADABLE + MALFORMED_SCRYPT, ids=repr)
def test_an_unreadable_hash_fails_after_a_dummy_verification(
    hasher: PasswordHasher, argon2_calls: Argon2Calls, scrypt_calls: ScryptCalls, stored: object
) -> None:
    assert hasher.verify(PASSWORD, cast(Any, stored)) == Verified(ok=False)
    # The same work as a real account's: one argon2 verification of the current cost.
    assert argon2_calls.current_verifications() == 1
    assert scrypt_calls.calls == []


@pytest.mark.parametrize("stored", UNREADABLE + MALFORMED_SCRYPT, ids=repr)
def test_an_unreadable_hash_costs_a_scrypt_verification_when_new_hashes_are_scrypt(
    scrypt_hasher: PasswordHasher,
    argon2_calls: Argon2Calls,
    scrypt_calls: ScryptCalls,
    stored: object,
) -> None:
    assert scrypt_hasher.verify(PASSWORD, cast(Any, stored)) == Verified(ok=False)
    assert scrypt_calls.better_auths() == 1
    assert len(scrypt_calls.calls) == 1
    assert argon2_calls.current_verifications() == 0


@pytest.mark.parametrize("stored", MALFORMED_SCRYPT, ids=repr)
def test_malformed_scrypt_hashes_are_not_identified(
    hasher: PasswordHasher, scrypt_hasher: PasswordHasher, stored: str
) -> None:
    assert not hasher.identifies(stored)
    assert not scrypt_hasher.identifies(stored)


def test_a_well_formed_scrypt_hash_of_another_password_is_a_wrong_password(
    scrypt_hasher: PasswordHasher, scrypt_calls: ScryptCalls
) -> None:
    stored = f"{_SCRYPT_SALT}:{_SCRYPT_KEY}"
    assert scrypt_hasher.identifies(stored)
    assert scrypt_hasher.verify(PASSWORD, stored) == Verified(ok=False)
    assert better_auth_verifies([(stored, PASSWORD)]) == [False]
    assert scrypt_calls.better_auths() == 1


@pytest.mark.parametrize("stored", UNREADABLE[:9], ids=repr)
def test_unreadable_hashes_are_not_identified(hasher: PasswordHasher, stored: object) -> None:
    assert not hasher.identifies(stored)


def test_the_hashes_it_verifies_are_identified(
    hasher: PasswordHasher,
    scrypt_hasher: PasswordHasher,
    bcryptjs_hashes: dict[str, list[str]],
    better_auth_hashes: list[str],
) -> None:
    for either in (hasher, scrypt_hasher):
        assert either.identifies(hasher.hash(PASSWORD))
        assert either.identifies(bcryptjs_hashes["2a"][0])
        assert either.identifies("$2y$" + bcryptjs_hashes["2b"][0][4:])
        assert either.identifies(better_auth_hashes[0])
        assert either.identifies(scrypt_hasher.hash(PASSWORD))


@pytest.mark.parametrize("password", [None, 42, b"bytes", "lone \ud800 surrogate"], ids=repr)
def test_a_password_that_cannot_be_hashed_is_wrong_after_a_dummy_verification(
    hasher: PasswordHasher, argon2_calls: Argon2Calls, password: object
) -> None:
    stored = hasher.hash(PASSWORD)
    argon2_calls.verified.clear()
    assert hasher.verify(cast(Any, password), stored) == Verified(ok=False)
    assert argon2_calls.current_verifications() == 1


@pytest.mark.parametrize("password", [None, 42, b"bytes", "lone \ud800 surrogate"], ids=repr)
def test_a_password_that_cannot_be_hashed_costs_a_scrypt_verification_when_new_hashes_are_scrypt(
    scrypt_hasher: PasswordHasher, scrypt_calls: ScryptCalls, password: object
) -> None:
    stored = scrypt_hasher.hash(PASSWORD)
    scrypt_calls.calls.clear()
    assert scrypt_hasher.verify(cast(Any, password), stored) == Verified(ok=False)
    assert scrypt_calls.better_auths() == 1


async def test_verify_nothing_verifies_a_dummy_made_once_in_a_worker_thread(
    argon2_calls: Argon2Calls,
) -> None:
    hasher = PasswordHasher()
    assert argon2_calls.hashes == 0  # not at start-up
    await hasher.verify_nothing(PASSWORD)
    await hasher.verify_nothing("another password")
    assert argon2_calls.hashes == 1
    assert argon2_calls.current_verifications() == 2
    assert argon2_calls.verified[0] == argon2_calls.verified[1]
    assert threading.get_ident() not in argon2_calls.verify_threads
    # An unknown hash spends its time on the same dummy.
    assert hasher.verify(PASSWORD, "not-a-hash") == Verified(ok=False)
    assert argon2_calls.hashes == 1
    assert argon2_calls.verified[2] == argon2_calls.verified[0]


async def test_verify_nothing_costs_a_real_scrypt_verification_when_new_hashes_are_scrypt(
    argon2_calls: Argon2Calls, scrypt_calls: ScryptCalls
) -> None:
    hasher = PasswordHasher(new_hashes="scrypt")
    stored = hasher.hash(PASSWORD)
    scrypt_calls.calls.clear()
    scrypt_calls.threads.clear()
    await hasher.verify_nothing(PASSWORD)
    assert (await hasher.verify_async(PASSWORD, stored)).ok
    # The same derivation as a real account's: parameters, salt length, password.
    dummy, real = scrypt_calls.calls
    assert dummy == real
    assert scrypt_calls.better_auths() == 2
    assert threading.get_ident() not in scrypt_calls.threads
    assert argon2_calls.hashes == 0
    assert argon2_calls.verified == []


# -- off the event loop -------------------------------------------------------------------


class Watched(PasswordHasher):
    """Records the threads hashes run in and how many run at once."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.threads: set[int] = set()
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def _enter(self) -> None:
        with self._lock:
            self.threads.add(threading.get_ident())
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)

    def _leave(self) -> None:
        with self._lock:
            self.running -= 1

    def hash(self, password: str) -> str:
        self._enter()
        try:
            time.sleep(0.01)  # long enough for hashes that may overlap to overlap
            return super().hash(password)
        finally:
            self._leave()

    def verify(self, password: str, stored: str | None) -> Verified:
        self._enter()
        try:
            return super().verify(password, stored)
        finally:
            self._leave()


class Ticker:
    """Counts 5 ms ticks of the event loop while it runs."""

    def __init__(self) -> None:
        self.ticks = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1


async def _ticks_during(work: Callable[[], Any]) -> int:
    ticker = Ticker()
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(0)
    before = ticker.ticks
    try:
        await work()
    finally:
        task.cancel()
    return ticker.ticks - before


async def test_hash_async_and_verify_async_leave_the_event_loop_running() -> None:
    hasher = Watched()
    passwords = [f"{PASSWORD} {i}" for i in range(4)]
    hashes: list[str] = []

    async def hash_all() -> None:
        hashes.extend(await asyncio.gather(*(hasher.hash_async(p) for p in passwords)))

    async def verify_all() -> None:
        results = await asyncio.gather(
            *(hasher.verify_async(p, h) for p, h in zip(passwords, hashes, strict=True))
        )
        assert all(result.ok for result in results)

    # Four hashes take 80 ms or more: the loop ticks on meanwhile, unless they block it.
    assert await _ticks_during(hash_all) >= 3
    assert await _ticks_during(verify_all) >= 3
    assert hasher.threads
    assert threading.get_ident() not in hasher.threads


@pytest.mark.parametrize("max_threads", [1, 3])
async def test_max_threads_caps_the_hashes_running_at_once(max_threads: int) -> None:
    hasher = Watched(max_threads=max_threads)
    await asyncio.gather(*(hasher.hash_async(f"{PASSWORD} {i}") for i in range(4)))
    assert hasher.most_at_once == max_threads


async def test_one_limiter_per_hasher_made_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[float] = []
    real = anyio.CapacityLimiter

    def counting(total_tokens: float) -> anyio.CapacityLimiter:
        made.append(total_tokens)
        return real(total_tokens)

    monkeypatch.setattr(anyio, "CapacityLimiter", counting)
    hasher = PasswordHasher(max_threads=2)
    assert made == []
    stored = await hasher.hash_async(PASSWORD)
    await hasher.verify_async(PASSWORD, stored)
    await hasher.verify_nothing(PASSWORD)
    assert made == [2]


def test_a_hasher_made_outside_any_event_loop_serves_several() -> None:
    hasher = PasswordHasher(max_threads=1)

    async def two_at_once() -> list[str]:
        return list(await asyncio.gather(hasher.hash_async("one one one"), hasher.hash_async("2")))

    for _ in range(2):
        first, second = asyncio.run(two_at_once())
        assert hasher.verify("one one one", first).ok
        assert hasher.verify("2", second).ok


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"time_cost": 0}, "time_cost"),
        ({"time_cost": True}, "time_cost"),
        ({"time_cost": 2.5}, "time_cost"),
        ({"memory_cost": -1}, "memory_cost"),
        ({"parallelism": 0}, "parallelism"),
        ({"max_threads": 0}, "max_threads"),
        ({"memory_cost": 8, "parallelism": 2}, "8 KiB per lane"),
    ],
)
def test_impossible_hasher_parameters_are_refused(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        PasswordHasher(**options)


@pytest.mark.parametrize("new_hashes", ["bcrypt", "Argon2id", "argon2", "", None, 1, b"scrypt"])
def test_an_unknown_new_hashes_scheme_is_refused_with_the_choices(new_hashes: object) -> None:
    with pytest.raises(ConfigurationError, match=r'new_hashes=.*"argon2id".*"scrypt"'):
        PasswordHasher(new_hashes=cast(Any, new_hashes))


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"max_length": 63}, "at least 64"),
        ({"max_length": 4097}, "at most 4096"),
        ({"min_length": 0}, "at least 1"),
        ({"min_length": 300, "max_length": 256}, "no password could pass"),
        ({"min_length": "8"}, "whole number"),
        ({"common_passwords": "password"}, "collection of passwords"),
        ({"common_passwords": [b"password"]}, "collection of passwords"),
        ({"rule": "no"}, "must be a function"),
    ],
)
def test_impossible_rules_are_refused(options: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        PasswordRules(**options)


def test_the_extremes_of_the_lengths_are_allowed() -> None:
    PasswordRules(min_length=1, max_length=64)
    PasswordRules(min_length=4096, max_length=4096)


# -- rules ---------------------------------------------------------------------------------

RULES = PasswordRules()
NOBODY: Mapping[str, Any] = {}


def _fullwidth(text: str) -> str:
    """``text`` in the full-width forms East Asian keyboards type, which NFKC undoes."""
    return "".join(chr(ord(char) + 0xFEE0) for char in text)


def _password(length: int) -> str:
    """An uncommon password of ``length`` characters."""
    pattern = "Tk7#mQ2v pL9@wX4z "
    return (pattern * (length // len(pattern) + 1))[:length]


async def _code(password: object, rules: PasswordRules = RULES, **user: Any) -> str | None:
    problem = await rules.check(password, user=user)
    return None if problem is None else problem.code


@pytest.mark.parametrize(
    ("length", "code"),
    [
        (0, "PasswordTooShort"),
        (7, "PasswordTooShort"),
        (8, None),
        (64, None),
        (256, None),
        (257, "PasswordTooLong"),
        (100_000, "PasswordTooLong"),
    ],
)
async def test_lengths(length: int, code: str | None) -> None:
    assert await _code(_password(length)) == code


async def test_the_messages_name_the_limits() -> None:
    assert await RULES.check("short", user=NOBODY) == PasswordProblem(
        "PasswordTooShort", "Use at least 8 characters."
    )
    assert await RULES.check(_password(257), user=NOBODY) == PasswordProblem(
        "PasswordTooLong", "Use at most 256 characters."
    )
    rules = PasswordRules(min_length=12, max_length=100)
    assert (await rules.check(_password(11), user=NOBODY) or PasswordProblem("", "")).message == (
        "Use at least 12 characters."
    )
    assert (await rules.check(_password(101), user=NOBODY) or PasswordProblem("", "")).message == (
        "Use at most 100 characters."
    )


async def test_characters_are_counted_after_nfkc() -> None:
    # Three ligatures are nine letters; one Arabic ligature is eighteen characters.
    assert await _code("ﬃﬃﬃ") is None
    assert await _code("\ufdfa" * 14) is None  # 252
    assert await _code("\ufdfa" * 15) == "PasswordTooLong"  # 270


@pytest.mark.parametrize(
    "password",
    [
        f"nul\x00{PASSWORD}",
        f"bell\x07{PASSWORD}",
        f"tab\t{PASSWORD}",
        f"c1\x85{PASSWORD}",
        f"replacement\ufffd{PASSWORD}",
        f"surrogate\ud800{PASSWORD}",
        None,
        b"correct horse battery staple",
    ],
    ids=repr,
)
async def test_control_characters_and_non_strings_are_invalid(password: object) -> None:
    assert await _code(password) == "PasswordInvalid"


async def test_spaces_and_any_printable_character_are_allowed() -> None:
    assert await _code("correct horse 🐎 battery staple") is None
    assert await _code("  leading and trailing  ") is None


async def test_the_email_address_and_its_local_part_are_refused() -> None:
    email = "Ada.Lovelace@Example.com"
    assert await _code("ada.lovelace@example.com", email=email) == "PasswordMatchesEmail"
    assert await _code(" ADA.LOVELACE@EXAMPLE.COM ", email=email) == "PasswordMatchesEmail"
    assert await _code("ADA.lovelace", email=email) == "PasswordMatchesEmail"
    assert await _code("ada.lovelace!", email=email) is None
    assert await _code("ada.lovelace@example.com", email=None) is None
    assert await _code("ada.lovelace@example.com", name="Ada") is None


async def test_a_local_part_shorter_than_4_characters_is_not_compared() -> None:
    rules = PasswordRules(min_length=1)
    assert await _code("Anna", rules, email="anna@example.com") == "PasswordMatchesEmail"
    assert await _code("al", rules, email="al@example.com") is None


@pytest.mark.parametrize(
    "password", ["password123", "PassWord123", "qwerty123", _fullwidth("password123"), " football "]
)
async def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    assert await RULES.check(password, user=NOBODY) == PasswordProblem(
        "PasswordTooCommon", "This password is one of the most common ones; choose another."
    )


async def test_an_own_list_of_common_passwords_replaces_the_bundled_one() -> None:
    rules = PasswordRules(common_passwords={"Acme Corp 2024"})
    assert await _code("acme corp 2024", rules) == "PasswordTooCommon"
    assert await _code("password123", rules) is None


def _bundled_entries() -> tuple[list[str], list[str]]:
    text = (
        importlib.resources.files("asgi_session")
        .joinpath("common-passwords.txt")
        .read_text(encoding="utf-8")
    )
    lines = text.splitlines()
    comments = [line for line in lines if line.startswith("#")]
    return comments, [line for line in lines if line and not line.startswith("#")]


async def test_the_bundled_list() -> None:
    comments, entries = _bundled_entries()
    assert 4000 <= len(entries) <= 6000
    assert all(len(entry) >= 8 for entry in entries)
    assert len(set(entries)) == len(entries)
    assert all(entry == entry.lower() for entry in entries)
    assert entries[:4] == ["123456789", "password", "12345678", "password1"]  # by rank
    header = " ".join(comments)
    assert "Django" in header and "BSD-3-Clause" in header and "Royce Williams" in header
    for entry in entries:
        assert await _code(entry) == "PasswordTooCommon", entry
    # The header is not a list of passwords.
    assert await _code(comments[0].lstrip("# ")) is None


def test_too_long_is_the_cheap_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not RULES.too_long(_password(256))
    assert RULES.too_long(_password(257))
    assert RULES.too_long("\ufdfa" * 15)
    normalised: list[int] = []
    real = unicodedata.normalize

    def counting(form: Any, text: str) -> str:
        normalised.append(len(text))
        return real(form, text)

    monkeypatch.setattr(unicodedata, "normalize", counting)
    # Ten million characters are refused without being looked at.
    assert RULES.too_long("x" * 10_000_000)
    assert normalised == []


class Recorded:
    """An app rule that refuses company names, and remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Mapping[str, Any]]] = []

    def __call__(self, password: str, user: Mapping[str, Any]) -> str | None:
        self.calls.append((password, user))
        return "Do not use the company's name." if "acme" in password.casefold() else None


async def test_an_app_rule_refuses_with_its_message() -> None:
    rule = Recorded()
    rules = PasswordRules(rule=rule)
    user = {"email": "ada@example.com", "name": "Ada"}
    assert await rules.check(f"I work at {_fullwidth('ACME')}!", user=user) == PasswordProblem(
        "PasswordRejected", "Do not use the company's name."
    )
    assert await rules.check(PASSWORD, user=user) is None
    # It sees the password as it is hashed (NFKC), and the user.
    assert rule.calls == [("I work at ACME!", user), (PASSWORD, user)]


async def test_an_async_app_rule() -> None:
    async def rule(password: str, user: Mapping[str, Any]) -> str | None:
        await asyncio.sleep(0)
        return "Not your name." if user.get("name", "").casefold() in password.casefold() else None

    rules = PasswordRules(rule=rule)
    user = {"name": "Ada"}
    assert await rules.check("ada is my name", user=user) == PasswordProblem(
        "PasswordRejected", "Not your name."
    )
    assert await rules.check(PASSWORD, user=user) is None


async def test_an_app_rule_that_raises_lets_it_raise() -> None:
    def rule(password: str, user: Mapping[str, Any]) -> str | None:
        raise RuntimeError("the breach service is down")

    with pytest.raises(RuntimeError, match="breach service"):
        await PasswordRules(rule=rule).check(PASSWORD, user=NOBODY)


async def test_an_app_rule_must_return_a_message_or_none() -> None:
    assert await PasswordRules(rule=lambda password, user: "").check(
        PASSWORD, user=NOBODY
    ) == PasswordProblem("PasswordRejected", "This password is not allowed; choose another.")
    with pytest.raises(TypeError, match="returned bool"):
        await PasswordRules(rule=cast(Any, lambda password, user: False)).check(
            PASSWORD, user=NOBODY
        )


async def test_the_first_problem_is_the_one_reported() -> None:
    rule = Recorded()
    rules = PasswordRules(rule=rule)
    assert await _code("password" * 38, rules) == "PasswordTooLong"  # 304 characters
    assert await _code("\x00" + "x" * 300, rules) == "PasswordInvalid"
    assert await _code("anna", rules, email="anna@example.com") == "PasswordTooShort"
    assert await _code("password1", rules, email="password1@example.com") == (
        "PasswordMatchesEmail"
    )
    assert await _code("football", rules) == "PasswordTooCommon"
    assert rule.calls == []
