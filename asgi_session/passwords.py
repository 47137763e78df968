"""Password hashing, and the rules a new password must pass.

:class:`PasswordHasher` makes argon2id hashes and verifies argon2, bcrypt and Better
Auth's scrypt ones, so the hashes a Node app stored (bcrypt, by ``bcrypt``, ``bcryptjs``
or a Mongoose schema; scrypt, by Better Auth) keep working; a verified old hash comes
back replaced by a new one, to store in its place::

    hasher = PasswordHasher()
    stored = await hasher.hash_async("correct horse battery staple")
    verified = await hasher.verify_async("correct horse battery staple", stored)
    if verified.ok and verified.rehashed is not None:
        ...  # store verified.rehashed instead of the old hash

An app that shares its accounts with a Better Auth app, both signing people in, makes
its new hashes in Better Auth's format instead, which both can verify:
``PasswordHasher(new_hashes="scrypt")``.

:class:`PasswordRules` are NIST SP 800-63B's: a minimum and a maximum length, no
password that is the address or one of the most common, and no composition rules
("a digit and a symbol"), which make passwords harder to remember, not to guess.

Passwords are normalised to NFKC before they are hashed or checked, as SP 800-63B
advises: "ﬁ" typed on one keyboard and "fi" on another are the same password, and so are
the two ways of writing "é".
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import importlib.resources
import inspect
import os
import re
import threading
import unicodedata
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

try:
    import anyio
    import anyio.to_thread
    import argon2
    from anyio.lowlevel import RunVar
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher
    from pwdlib.hashers.base import HasherProtocol
    from pwdlib.hashers.bcrypt import BcryptHasher
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "asgi_session.passwords needs the passwords extra: pip install 'asgi-session[passwords]'"
    ) from missing

from asgi_session.errors import ConfigurationError

__all__ = [
    "PasswordHasher",
    "PasswordProblem",
    "PasswordRule",
    "PasswordRules",
    "Verified",
]

_T = TypeVar("_T")

# The schemes PasswordHasher(new_hashes=...) can make new hashes in.
_NEW_HASHES: Final = ("argon2id", "scrypt")

# New hashes follow OWASP's Password Storage Cheat Sheet, whose first argon2id
# configuration is 19 MiB of memory, 2 passes and 1 lane. Its other configurations trade
# memory for passes at the same strength; this one keeps a hash at 20-50 ms, and the
# memory a server needs for concurrent sign-ins (bounded by ``max_threads``) modest.
# argon2id resists both GPU cracking (argon2d's memory-hard part) and side channels
# (argon2i's data-independent first pass).
_TIME_COST: Final = 2
_MEMORY_COST: Final = 19456  # KiB
_PARALLELISM: Final = 1

# What the hashers read, and nothing more: pwdlib's own patterns let through a trailing
# newline, bcrypt's $2x$ (crypt_blowfish's flawed variant, which the bcrypt package would
# verify as $2a$), and argon2 strings without a salt or a digest. The digit counts keep
# absurd numbers from reaching the C libraries.
_ARGON2_HASH: Final = re.compile(
    r"\$argon2(?:id|i|d)\$(?:v=[0-9]{1,3}\$)?m=[0-9]{1,10},t=[0-9]{1,10},p=[0-9]{1,8}"
    r"\$[A-Za-z0-9+/]{1,1024}\$[A-Za-z0-9+/]{1,1024}"
)
_BCRYPT_HASH: Final = re.compile(r"\$2[aby]\$(?:0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
# Better Auth's: 16 random bytes in hex, a colon, the 64-byte key in hex, both in the
# lower case Node's ``toString("hex")`` writes (Better Auth compares the key's hex as a
# string, so it would refuse any other).
_SCRYPT_HASH: Final = re.compile(r"([0-9a-f]{32}):([0-9a-f]{128})")

# Better Auth's scrypt parameters (``@better-auth/utils/password``), fixed: its hashes do
# not say which they used. N=2^14 and r=16 take 32 MiB of memory and 50-100 ms; its
# maxmem (twice what scrypt needs) is passed along as it is.
_SCRYPT_N: Final = 16384
_SCRYPT_R: Final = 16
_SCRYPT_P: Final = 1
_SCRYPT_KEY_LENGTH: Final = 64
_SCRYPT_SALT_LENGTH: Final = 16  # bytes, written as 32 hex digits
_SCRYPT_MAXMEM: Final = 128 * _SCRYPT_N * _SCRYPT_R * 2

# bcrypt's key schedule reads 72 bytes of the key; the C library and bcryptjs ignore the
# rest, the bcrypt package (since 5.0) refuses it.
_BCRYPT_MAX_KEY: Final = 72

# Control characters (Unicode's "Cc": C0, DEL and C1), lone surrogates (which no UTF-8
# encoder accepts) and U+FFFD, which is what a form not in UTF-8 decodes to: none of them
# comes from a keyboard, and a password that contains one would not be typed the same
# way twice.
_INVALID_CHARACTERS: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffd]")

# NFKC can make a string up to 18 times longer (U+FDFA), and composing makes one shorter
# by at most 4 to 1. No person types four times the maximum; refusing such a string
# without normalising it keeps the cost of the check proportional to the maximum.
_UNNORMALISED_SLACK: Final = 4

_COMMON_PASSWORDS_FILE: Final = "common-passwords.txt"


def _nfkc(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def _fold(text: str) -> str:
    """The form passwords are compared in: NFKC, case-folded, without surrounding spaces.

    Case folding can undo NFKC (it is not closed under it), hence the second pass.
    """
    return _nfkc(_nfkc(text).casefold()).strip()


def _key(password: object) -> bytes | None:
    """What is hashed: the NFKC form in UTF-8; ``None`` when there is none."""
    if not isinstance(password, str):
        return None
    try:
        return _nfkc(password).encode()
    except UnicodeEncodeError:  # a lone surrogate, from JSON's "\ud800"
        return None


def _decoy_key(password: object) -> bytes:
    """Something of the password's length to spend a dummy verification on."""
    if isinstance(password, str):
        return password.encode(errors="surrogatepass")
    return b""


class _Unreadable(ValueError):
    """A hash that matched its scheme's pattern, but that its library refused."""


class _Argon2(Argon2Hasher):
    """pwdlib's argon2 hasher, telling a hash it cannot read from a wrong password.

    libargon2 refuses impossible parameters (``m=1``) and undecodable salts before doing
    any work, and pwdlib answers ``False`` as for a wrong password: the difference in
    time would tell an attacker which accounts have a broken hash. This one raises
    :class:`_Unreadable` instead, for :class:`PasswordHasher` to spend a dummy
    verification of its preferred scheme on.
    """

    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int) -> None:
        super().__init__(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        # Verification reads the parameters from the hash: these only make the dummy.
        self._checker = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()

    @classmethod
    def identify(cls, hash: str | bytes) -> bool:
        return isinstance(hash, str) and _ARGON2_HASH.fullmatch(hash) is not None

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        try:
            return self._checker.verify(hash, password)
        except argon2.exceptions.VerifyMismatchError:
            return False
        except (
            argon2.exceptions.VerificationError,
            argon2.exceptions.InvalidHashError,
        ) as unreadable:
            raise _Unreadable("an argon2 hash libargon2 cannot read") from unreadable

    def verify_dummy(self, password: str | bytes) -> None:
        """Verify ``password`` against a hash of the current parameters, for its cost."""
        with contextlib.suppress(argon2.exceptions.VerifyMismatchError):
            self._checker.verify(self._dummy_hash(), password)

    def _dummy_hash(self) -> str:
        # Made on first use, not at start-up, where it would slow every process down.
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = self.hash(os.urandom(16))
            return self._dummy


class _Bcrypt(BcryptHasher):
    """pwdlib's bcrypt hasher, reading only the first 72 bytes of a password as others do.

    Node's ``bcrypt`` and ``bcryptjs`` hash a longer password's first 72 bytes, so it
    verifies with those; the bcrypt package refuses it instead. (A cut through a
    character is what they hashed too.) Only verifies: new hashes are argon2id or scrypt.
    """

    @classmethod
    def identify(cls, hash: str | bytes) -> bool:
        return isinstance(hash, str) and _BCRYPT_HASH.fullmatch(hash) is not None

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        key = password.encode() if isinstance(password, str) else password
        return super().verify(key[:_BCRYPT_MAX_KEY], hash)


def _scrypt(key: bytes, salt: bytes) -> bytes:
    return hashlib.scrypt(
        key,
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        dklen=_SCRYPT_KEY_LENGTH,
        maxmem=_SCRYPT_MAXMEM,
    )


class _Scrypt(HasherProtocol):
    """Better Auth's scrypt hashes (``@better-auth/utils/password``), made and verified.

    A hash is ``<salt>:<key>``: the salt is 16 random bytes written as 32 hex digits, and
    those 32 characters (not the bytes they spell) are scrypt's salt; the key is scrypt's
    64 bytes in hex. Better Auth hashes the password's NFKC form in UTF-8, as
    :class:`PasswordHasher` does. OpenSSL's scrypt lets go of the GIL while it works.
    """

    def __init__(self) -> None:
        # A dummy costs what a real verification does: the same derivation, then a
        # comparison of as many bytes.
        self._dummy_salt = os.urandom(_SCRYPT_SALT_LENGTH).hex().encode()
        self._dummy_key = os.urandom(_SCRYPT_KEY_LENGTH)

    @classmethod
    def identify(cls, hash: str | bytes) -> bool:
        return isinstance(hash, str) and _SCRYPT_HASH.fullmatch(hash) is not None

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        key = password.encode() if isinstance(password, str) else password
        text_salt = (salt if salt is not None else os.urandom(_SCRYPT_SALT_LENGTH)).hex()
        return f"{text_salt}:{_scrypt(key, text_salt.encode()).hex()}"

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        match = _SCRYPT_HASH.fullmatch(hash) if isinstance(hash, str) else None
        if match is None:
            raise _Unreadable("not a Better Auth scrypt hash")
        key = password.encode() if isinstance(password, str) else password
        text_salt, expected = match.groups()
        return hmac.compare_digest(_scrypt(key, text_salt.encode()), bytes.fromhex(expected))

    def check_needs_rehash(self, hash: str | bytes) -> bool:
        # Better Auth's parameters are fixed: there is nothing newer to move to.
        return False

    def verify_dummy(self, password: str | bytes) -> None:
        """Spend a verification's time on ``password``."""
        key = password.encode(errors="surrogatepass") if isinstance(password, str) else password
        hmac.compare_digest(_scrypt(key, self._dummy_salt), self._dummy_key)


@dataclass(frozen=True, slots=True)
class Verified:
    """The outcome of :meth:`PasswordHasher.verify`."""

    ok: bool
    #: A new hash of the same password (of the ``new_hashes`` scheme) when ``ok`` and the
    #: stored hash is of another scheme, or argon2id with other parameters, to store in
    #: its place; else ``None``.
    rehashed: str | None = None


class PasswordHasher:
    """Makes new hashes in one scheme, verifies those of several, and says when a verified
    hash should be replaced by one of the new kind.

    It verifies argon2 hashes of any parameters (argon2id/i/d), bcrypt ($2a$, $2b$, $2y$
    -- what Node's bcrypt/bcryptjs and Mongoose apps store) and Better Auth's scrypt
    (``<salt hex>:<key hex>``, N=16384, r=16, p=1, 64 bytes). ``new_hashes`` picks what
    new hashes are:

    - ``"argon2id"`` (the default): argon2id with ``time_cost``, ``memory_cost`` and
      ``parallelism``, by default OWASP's (t=2, m=19456 KiB, p=1). Verified bcrypt and
      scrypt hashes, and argon2 ones of other parameters, come back rehashed.
    - ``"scrypt"``: Better Auth's format and parameters, for accounts a Better Auth app
      signs in too, which verifies these as they are. Verified argon2 and bcrypt hashes
      come back rehashed as scrypt; ``time_cost``, ``memory_cost`` and ``parallelism``
      are then unused.

    A hash costs 20-50 ms of CPU and ``memory_cost`` KiB of memory (scrypt: 50-100 ms
    and 32 MiB): the ``_async`` methods run it in a worker thread, at most
    ``max_threads`` at once (by default one fewer than the CPUs, at least 1: a core stays
    free for the event loop, or hashes filling every core would delay every other
    request), so a burst of sign-ins queues instead of exhausting memory or stalling the
    event loop.

    Anything that cannot be verified (no hash, another format, a corrupt one) verifies
    as a wrong password would, after a dummy verification of the ``new_hashes`` scheme
    (the work an account with a current hash costs), and never raises: the time a
    sign-in takes does not tell which accounts have a usable password.
    """

    def __init__(
        self,
        *,
        time_cost: int = _TIME_COST,
        memory_cost: int = _MEMORY_COST,
        parallelism: int = _PARALLELISM,
        max_threads: int | None = None,
        new_hashes: Literal["argon2id", "scrypt"] = "argon2id",
    ) -> None:
        if not isinstance(new_hashes, str) or new_hashes not in _NEW_HASHES:
            raise ConfigurationError(
                f'PasswordHasher(new_hashes={new_hashes!r}) must be "argon2id" (the '
                'default) or "scrypt" (Better Auth\'s format, for accounts a Better Auth '
                "app signs in too)"
            )
        for option, value, advice in (
            ("time_cost", time_cost, f"the number of passes; OWASP's is {_TIME_COST}"),
            ("memory_cost", memory_cost, f"in KiB; OWASP's is {_MEMORY_COST}"),
            ("parallelism", parallelism, f"the number of lanes; OWASP's is {_PARALLELISM}"),
            ("max_threads", max_threads, "hashes at once; None: one fewer than the CPUs"),
        ):
            if value is None and option == "max_threads":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(
                    f"PasswordHasher({option}={value!r}) must be a positive whole number ({advice})"
                )
        if memory_cost < 8 * parallelism:
            # libargon2 needs 8 KiB per lane, and would refuse every hash.
            raise ConfigurationError(
                f"PasswordHasher(memory_cost={memory_cost}) must be at least 8 KiB per lane: "
                f"{8 * parallelism} for parallelism={parallelism}"
            )
        self._argon2 = _Argon2(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        self._bcrypt = _Bcrypt()
        self._scrypt = _Scrypt()
        # The first hasher makes new hashes; a hash of any other needs replacing.
        self._preferred: _Argon2 | _Scrypt
        if new_hashes == "scrypt":
            self._preferred = self._scrypt
            self._engine = PasswordHash((self._scrypt, self._argon2, self._bcrypt))
        else:
            self._preferred = self._argon2
            self._engine = PasswordHash((self._argon2, self._bcrypt, self._scrypt))
        self._max_threads = (
            max_threads if max_threads is not None else max(1, (os.cpu_count() or 1) - 1)
        )
        # One limiter per event loop, made in it on first use: anyio before 4.5 cannot
        # make one outside a running loop, and asyncio's primitives are not meant to be
        # shared between loops (a test suite's, or an app run twice).
        self._limiters: RunVar[anyio.CapacityLimiter] = RunVar(
            f"asgi_session.passwords.limiter.{id(self)}"
        )

    def hash(self, password: str) -> str:
        """A new hash of ``password`` (NFKC): argon2id with this hasher's parameters, or
        Better Auth's scrypt with ``new_hashes="scrypt"``.

        Raises ``TypeError`` for a non-string and ``ValueError`` for a string UTF-8
        cannot encode (a lone surrogate); :meth:`PasswordRules.check` refuses both.
        """
        if not isinstance(password, str):
            raise TypeError(f"a password is a str, not {type(password).__name__}")
        key = _key(password)
        if key is None:
            raise ValueError(
                "the password contains a lone surrogate, which UTF-8 cannot encode; "
                "PasswordRules.check refuses such passwords"
            )
        return self._engine.hash(key)

    def identifies(self, stored: object) -> bool:
        """Whether ``stored`` is a hash this hasher can verify (argon2, bcrypt or scrypt)."""
        return self._hasher_for(stored) is not None

    def verify(self, password: str, stored: str | None) -> Verified:
        """Whether ``password`` is the one ``stored`` was made from; never raises.

        A bcrypt hash, made by an app that did not normalise, is also tried with the
        password exactly as typed when its NFKC form differs and fails. A password that
        is not a string (a file in a form field) is a wrong password.
        """
        key = _key(password)
        hasher = self._hasher_for(stored)
        if key is None or hasher is None or not isinstance(stored, str):
            self._preferred.verify_dummy(_decoy_key(password))
            return Verified(ok=False)
        try:
            ok, rehashed = self._engine.verify_and_update(key, stored)
        except ValueError:  # a hash the pattern let through but the library refuses
            self._preferred.verify_dummy(key)
            return Verified(ok=False)
        if not ok and hasher is self._bcrypt:
            typed = password.encode()
            if typed != key and self._bcrypt.verify(typed, stored):
                # Rehashed in the form it will be verified in from now on.
                return Verified(ok=True, rehashed=self._engine.hash(key))
        return Verified(ok=ok, rehashed=rehashed)

    async def hash_async(self, password: str) -> str:
        """:meth:`hash`, in a worker thread."""
        return await self._in_thread(self.hash, password)

    async def verify_async(self, password: str, stored: str | None) -> Verified:
        """:meth:`verify`, in a worker thread."""
        return await self._in_thread(self.verify, password, stored)

    async def verify_nothing(self, password: str) -> None:
        """Spend a verification's time, in a worker thread, on an address no account has.

        The password is verified against a dummy of the ``new_hashes`` scheme: an argon2id
        hash of the current parameters, made on first use, or a scrypt key of Better
        Auth's, so the answer takes as long as for an account with a current hash.
        """
        await self._in_thread(self._verify_nothing, password)

    def _verify_nothing(self, password: str) -> None:
        self._preferred.verify_dummy(_key(password) or _decoy_key(password))

    def _hasher_for(self, stored: object) -> _Argon2 | _Bcrypt | _Scrypt | None:
        if not isinstance(stored, str):
            return None
        for hasher in (self._argon2, self._bcrypt, self._scrypt):
            if hasher.identify(stored):
                return hasher
        return None

    async def _in_thread(self, function: Callable[..., _T], *args: object) -> _T:
        return await anyio.to_thread.run_sync(function, *args, limiter=self._limiter())

    def _limiter(self) -> anyio.CapacityLimiter:
        # No await between the lookup and the set: two tasks cannot both make one.
        try:
            return self._limiters.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(self._max_threads)
            self._limiters.set(limiter)
            return limiter


@dataclass(frozen=True, slots=True)
class PasswordProblem:
    """Why a new password was refused."""

    #: ``PasswordInvalid``, ``PasswordTooLong``, ``PasswordTooShort``,
    #: ``PasswordMatchesEmail``, ``PasswordTooCommon`` or ``PasswordRejected``.
    code: str
    #: A sentence for the person choosing the password.
    message: str


#: An app's own rule: ``(password, user)`` -> a message when it refuses the password,
#: ``None`` when it is fine; plain or ``async``. The password is in NFKC, as it is hashed.
PasswordRule = Callable[[str, Mapping[str, Any]], Awaitable[str | None] | str | None]


@functools.cache
def _bundled_common_passwords() -> frozenset[str]:
    text = (
        importlib.resources.files("asgi_session")
        .joinpath(_COMMON_PASSWORDS_FILE)
        .read_text(encoding="utf-8")
    )
    return frozenset(
        _fold(line) for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _characters(count: int) -> str:
    return f"{count} character" if count == 1 else f"{count} characters"


class PasswordRules:
    """NIST SP 800-63B rules: no composition rules.

    A new password must be ``min_length`` to ``max_length`` characters (after NFKC), not
    be the user's email address, nor one of the most common passwords (``None``: the
    5,000 most common of at least 8 characters, from Django's list), and pass the app's
    own ``rule``, if any. Spaces and every printable character are allowed.
    """

    def __init__(
        self,
        *,
        min_length: int = 8,
        max_length: int = 256,
        common_passwords: Collection[str] | None = None,
        rule: PasswordRule | None = None,
    ) -> None:
        for option, value in (("min_length", min_length), ("max_length", max_length)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigurationError(
                    f"PasswordRules({option}={value!r}) must be a whole number of characters"
                )
        if min_length < 1:
            raise ConfigurationError(
                f"PasswordRules(min_length={min_length}) must be at least 1; NIST SP "
                "800-63B asks for 8 (15 when the password is the only factor)"
            )
        if max_length < 64:
            raise ConfigurationError(
                f"PasswordRules(max_length={max_length}) must be at least 64: NIST SP "
                "800-63B asks to allow that many, so that people can use passphrases"
            )
        if max_length > 4096:
            raise ConfigurationError(
                f"PasswordRules(max_length={max_length}) must be at most 4096: nobody types "
                "more, and every character is hashed at each sign-in"
            )
        if min_length > max_length:
            raise ConfigurationError(
                f"PasswordRules(min_length={min_length}) is more than max_length="
                f"{max_length}: no password could pass"
            )
        if isinstance(common_passwords, str | bytes) or (
            common_passwords is not None
            and not all(isinstance(entry, str) for entry in common_passwords)
        ):
            raise ConfigurationError(
                "PasswordRules(common_passwords=...) must be a collection of passwords "
                "(strings), such as a set or a list; None uses the bundled list"
            )
        if rule is not None and not callable(rule):
            raise ConfigurationError(
                "PasswordRules(rule=...) must be a function (password, user) returning a "
                "message when it refuses the password, or None"
            )
        self.min_length = min_length
        self.max_length = max_length
        self.rule = rule
        # None: the bundled list, read on first use, not when the app starts.
        self._common = None if common_passwords is None else frozenset(map(_fold, common_passwords))

    def too_long(self, password: str) -> bool:
        """Whether ``password`` is over ``max_length`` characters: the one rule checked
        before anything is hashed, at sign-in too, so that a megabyte of password costs
        nothing. (Sign-in applies no other rule: old passwords stay valid.)"""
        if len(password) > self.max_length * _UNNORMALISED_SLACK:
            return True
        return len(_nfkc(password)) > self.max_length

    async def check(self, password: object, *, user: Mapping[str, Any]) -> PasswordProblem | None:
        """The first rule ``password`` breaks, or ``None`` when it may be used.

        ``password`` is whatever the form held: a missing field (``None``) or a file is
        ``PasswordInvalid``. ``user`` is who chooses it (``email`` and ``name`` keys, both
        optional), passed on to the app's rule. An exception from the rule propagates.
        """
        if not isinstance(password, str):
            return PasswordProblem("PasswordInvalid", "Type a password.")
        if _INVALID_CHARACTERS.search(password):
            return PasswordProblem(
                "PasswordInvalid",
                "This password contains a character that cannot be used, such as a tab, a "
                "line break or one that did not arrive intact; type it again.",
            )
        if self.too_long(password):
            return PasswordProblem(
                "PasswordTooLong", f"Use at most {_characters(self.max_length)}."
            )
        normalised = _nfkc(password)
        if len(normalised) < self.min_length:
            return PasswordProblem(
                "PasswordTooShort", f"Use at least {_characters(self.min_length)}."
            )
        folded = _fold(normalised)
        if self._matches_email(folded, user.get("email")):
            return PasswordProblem(
                "PasswordMatchesEmail", "Choose a password that is not your email address."
            )
        common = self._common if self._common is not None else _bundled_common_passwords()
        if folded in common:
            return PasswordProblem(
                "PasswordTooCommon",
                "This password is one of the most common ones; choose another.",
            )
        if self.rule is not None:
            message = self.rule(normalised, user)
            if inspect.isawaitable(message):
                message = await message
            if message is not None:
                if not isinstance(message, str):
                    raise TypeError(
                        "a password rule returns a message (str) when it refuses the "
                        f"password, or None; it returned {type(message).__name__}"
                    )
                return PasswordProblem(
                    "PasswordRejected", message or "This password is not allowed; choose another."
                )
        return None

    @staticmethod
    def _matches_email(folded: str, email: object) -> bool:
        if not isinstance(email, str) or not email.strip():
            return False
        address = _fold(email)
        local = address.rpartition("@")[0]
        # A short local part ("al") is a fragment, not something an attacker would try.
        return folded == address or (len(local) >= 4 and folded == local)
