"""Reading and writing the cookies asgi-session uses, the way Auth.js names and chunks them.

A value longer than :data:`CHUNK_SIZE` is split into ``<name>.0``, ``<name>.1``, ... because
browsers drop cookies over about 4 KB; a value that fits keeps the plain name. Readers join
the chunks in numeric order, so a Python service and a Next.js app read each other's cookies.

Any other cookie named ``<name>.<something>`` (``<name>.00``, ``<name>.x``, a chunk past the
limit) is junk: never read, never an error, so a cookie tossed from a sibling subdomain
cannot break requests. Responses expire the first :data:`MAX_JUNK_EXPIRED` of them under the
app's own attributes, which removes those set for this host; one set with a parent
``Domain`` the browser keeps, but it stays ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Literal
from urllib.parse import quote, unquote

from asgi_session.errors import CookieTooLargeError

#: Browsers keep at least 4,096 bytes per cookie, name and attributes included; Auth.js
#: leaves 160 for those, and so do we, so both split a token at the same places.
CHUNK_SIZE = 4096 - 160

#: Past this many chunks, request headers outgrow what proxies and servers accept
#: (nginx rejects a header line over 8 KB by default), so we refuse to write them.
DEFAULT_MAX_CHUNKS = 4

#: Junk names a response expires at most: a header stuffed with hundreds must not make
#: every answer tens of kilobytes of ``Set-Cookie`` (proxies refuse those).
MAX_JUNK_EXPIRED = 8

SameSite = Literal["lax", "strict", "none"]

# encodeURIComponent leaves these unescaped; Auth.js writes cookie values through it.
_URI_COMPONENT_SAFE = "-_.!~*'()"


@dataclass(frozen=True, slots=True)
class CookieSpec:
    """A cookie's name and attributes."""

    name: str
    secure: bool = False
    http_only: bool = True
    same_site: SameSite = "lax"
    path: str = "/"
    domain: str | None = None


@dataclass(frozen=True, slots=True)
class CookieNames:
    """The cookies of one mode (plain http or secure), Auth.js's names by default."""

    session_token: CookieSpec
    callback_url: CookieSpec
    csrf_token: CookieSpec
    pkce_code_verifier: CookieSpec
    state: CookieSpec
    nonce: CookieSpec
    #: A passkey ceremony's challenge (Auth.js's ``webauthnChallenge``).
    webauthn_challenge: CookieSpec
    #: A sign-in waiting for its second factor.
    two_factor: CookieSpec
    #: A TOTP secret shown as a QR code, until its first code confirms it.
    totp_enrolment: CookieSpec

    @classmethod
    def default(
        cls,
        *,
        secure: bool,
        overrides: Mapping[str, CookieSpec | Mapping[str, object]] | None = None,
        prefix: str = "authjs",
    ) -> CookieNames:
        """Auth.js's cookies, ``__Secure-``/``__Host-`` prefixed when ``secure``.

        ``overrides`` maps a field name (``"session_token"``, ...) to a full
        :class:`CookieSpec` or to the attributes to change.
        """
        secure_prefix = "__Secure-" if secure else ""
        host_prefix = "__Host-" if secure else ""

        def spec(name: str, prefix_: str) -> CookieSpec:
            return CookieSpec(name=f"{prefix_}{prefix}.{name}", secure=secure)

        names = cls(
            session_token=spec("session-token", secure_prefix),
            callback_url=spec("callback-url", secure_prefix),
            csrf_token=spec("csrf-token", host_prefix),
            pkce_code_verifier=spec("pkce.code_verifier", secure_prefix),
            state=spec("state", secure_prefix),
            nonce=spec("nonce", secure_prefix),
            webauthn_challenge=spec("challenge", secure_prefix),
            two_factor=spec("two-factor", secure_prefix),
            totp_enrolment=spec("totp-enrolment", secure_prefix),
        )
        for field, override in (overrides or {}).items():
            if not hasattr(names, field):
                raise ValueError(f"unknown cookie {field!r}")
            current: CookieSpec = getattr(names, field)
            names = replace(names, **{field: _overridden(current, override)})
        for cookie in names.all():
            _check_prefix(cookie)
        return names

    def all(self) -> tuple[CookieSpec, ...]:
        """Every cookie of the mode."""
        return (
            self.session_token,
            self.callback_url,
            self.csrf_token,
            self.pkce_code_verifier,
            self.state,
            self.nonce,
            self.webauthn_challenge,
            self.two_factor,
            self.totp_enrolment,
        )


def _overridden(current: CookieSpec, override: CookieSpec | Mapping[str, object]) -> CookieSpec:
    if isinstance(override, CookieSpec):
        return override
    return replace(current, **override)  # type: ignore[arg-type]


def _check_prefix(spec: CookieSpec) -> None:
    """Browsers drop ``__Secure-``/``__Host-`` cookies that break the prefix's rules."""
    if spec.name.startswith(("__Secure-", "__Host-")) and not spec.secure:
        raise ValueError(f"{spec.name} must be Secure, or browsers reject it")
    if spec.name.startswith("__Host-") and (spec.domain or spec.path != "/"):
        raise ValueError(f"{spec.name} must have Path=/ and no Domain, or browsers reject it")


def parse_cookie_header(header: str) -> dict[str, str]:
    """Parse a ``Cookie`` request header into names and (percent-decoded) values.

    A name that comes twice keeps its first value, as the ``cookie`` parser Auth.js uses
    does: browsers send the most specific cookie first, so a cookie tossed from a sibling
    subdomain cannot override the app's own, and a Next.js app and this package never
    resolve different sessions from one request. Names and values are trimmed of spaces
    and tabs only, as that parser trims them. Otherwise Starlette's ``cookie_parser`` rules
    (a part without ``=`` is a value with an empty name, surrounding double quotes are
    dropped), inlined here because every request with a session runs it.
    """
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, separator, value = part.partition("=")
        if not separator:
            name, value = "", name
        name = name.strip(" \t")
        if name in cookies:
            continue
        value = value.strip(" \t")
        if not name and not value:
            continue
        if len(value) > 1 and value[0] == '"' == value[-1]:
            value = value[1:-1]
        if "%" in value:
            value = unquote(value)
        cookies[name] = value
    return cookies


def read_chunked(
    cookies: Mapping[str, str], name: str, max_chunks: int = DEFAULT_MAX_CHUNKS
) -> str | None:
    """The value stored under ``name``, joining ``name.0``, ``name.1``, ... if chunked.

    Only the chunk names Auth.js writes count (``name.<n>``, ``n`` in plain decimal below
    ``max_chunks``). Chunks must run from 0 without a gap; a broken set reads as absent,
    so the caller treats it as "no session" rather than decrypting a spliced value.
    """
    if len(cookies) == 1:
        return cookies.get(name)  # the common case: no chunks, no other cookies
    return _read(cookies, name, max_chunks)[0]


def read_chunked_checked(
    cookies: Mapping[str, str], name: str, max_chunks: int = DEFAULT_MAX_CHUNKS
) -> tuple[str | None, Sequence[str]]:
    """:func:`read_chunked`'s value, and the junk names the request carried under ``name``
    (in one pass over the cookies, for the path every signed-in request takes)."""
    if len(cookies) == 1:
        return cookies.get(name), ()
    return _read(cookies, name, max_chunks)


def _read(cookies: Mapping[str, str], name: str, max_chunks: int) -> tuple[str | None, list[str]]:
    chunks, junk = _scan(cookies, name, max_chunks)
    if not chunks:
        return cookies.get(name), junk
    if chunks[-1][0] != len(chunks) - 1:  # sorted and unique, so this means 0..n-1
        return None, junk
    return "".join(cookies[chunk_name] for _, chunk_name in chunks), junk


def _scan(
    cookies: Iterable[str], name: str, max_chunks: int
) -> tuple[list[tuple[int, str]], list[str]]:
    """The usable chunks under ``name`` as sorted (index, cookie name), and the first
    :data:`MAX_JUNK_EXPIRED` junk names."""
    chunks: list[tuple[int, str]] = []
    junk: list[str] = []
    prefix = name + "."
    start = len(prefix)
    for cookie_name in cookies:
        if cookie_name.startswith(prefix):
            index = _chunk_index(cookie_name[start:], max_chunks)
            if index is None:
                if len(junk) < MAX_JUNK_EXPIRED:
                    junk.append(cookie_name)
            else:
                chunks.append((index, cookie_name))
    chunks.sort()
    return chunks, junk


def _chunk_index(suffix: str, max_chunks: int) -> int | None:
    """The chunk number ``suffix`` spells as Auth.js writes it (``String(index)``), if it
    is below ``max_chunks``; ``None`` for any other spelling.

    One spelling per number, so the name read is the name joined and the name expired:
    ``00`` is not ``0``, and the non-ASCII digits ``int()`` reads are no digits here.
    The length is checked first, as ``int()`` raises for thousands of digits.
    """
    if not (suffix.isascii() and suffix.isdigit()):
        return None
    if len(suffix) > 1 and (suffix[0] == "0" or len(suffix) > len(str(max_chunks))):
        return None
    index = int(suffix)
    return index if index < max_chunks else None


def chunk_indexes(
    cookies: Iterable[str], name: str, max_chunks: int = DEFAULT_MAX_CHUNKS
) -> list[int]:
    """The sorted chunk numbers present for ``name`` (empty when not chunked)."""
    return [index for index, _ in _scan(cookies, name, max_chunks)[0]]


def present_names(
    cookies: Mapping[str, str], name: str, max_chunks: int = DEFAULT_MAX_CHUNKS
) -> list[str]:
    """Every cookie name that holds, or claims to hold, all or part of ``name``'s value:
    the plain name, its chunks and any junk under it, each as the browser sent it."""
    chunks, junk = _scan(cookies, name, max_chunks)
    found = [chunk_name for _, chunk_name in chunks]
    found.extend(junk)
    if name in cookies:
        found.insert(0, name)
    return found


def serialize(
    spec: CookieSpec,
    value: str,
    *,
    expires: datetime | None = None,
    max_age: int | None = None,
    name: str | None = None,
) -> str:
    """A ``Set-Cookie`` header value for ``spec`` (optionally under a chunk's ``name``)."""
    parts = [f"{name or spec.name}={quote(value, safe=_URI_COMPONENT_SAFE)}"]
    if spec.domain:
        parts.append(f"Domain={spec.domain}")
    parts.append(f"Path={spec.path}")
    if expires is not None:
        parts.append("Expires=" + format_datetime(expires.astimezone(UTC), usegmt=True))
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if spec.http_only:
        parts.append("HttpOnly")
    if spec.secure:
        parts.append("Secure")
    parts.append("SameSite=" + spec.same_site.capitalize())
    return "; ".join(parts)


def expire(spec: CookieSpec, name: str | None = None) -> str:
    """A ``Set-Cookie`` header value that deletes the cookie."""
    return serialize(spec, "", max_age=0, name=name)


def write_chunked(
    spec: CookieSpec,
    value: str,
    *,
    expires: datetime | None,
    present: Iterable[str] = (),
    max_chunks: int = DEFAULT_MAX_CHUNKS,
    max_age: int | None = None,
) -> list[str]:
    """``Set-Cookie`` values storing ``value`` under ``spec``, split into chunks if needed.

    ``present`` names the cookies the request carried for this value (see
    :func:`present_names`, junk included); those the new value does not use are expired,
    so a shrinking token leaves no stale chunk behind, nor a planted one.
    Raises :class:`CookieTooLargeError` when more than ``max_chunks`` would be needed.
    """
    count = max(1, -(-len(value) // CHUNK_SIZE))
    if count > max_chunks:
        raise CookieTooLargeError(
            f"the {spec.name} cookie would need {count} chunks of {CHUNK_SIZE} characters "
            f"(at most {max_chunks} are allowed): {len(value)} characters is more than "
            "browsers and proxies reliably accept. Keep less in the session (return a "
            "smaller token from the jwt callback) or use the database strategy."
        )
    if count == 1:
        written = {spec.name: value}
    else:
        written = {
            f"{spec.name}.{index}": value[index * CHUNK_SIZE : (index + 1) * CHUNK_SIZE]
            for index in range(count)
        }
    headers = [
        serialize(spec, chunk, expires=expires, max_age=max_age, name=chunk_name)
        for chunk_name, chunk in written.items()
    ]
    headers.extend(expire(spec, name=stale) for stale in present if stale not in written)
    return headers


def clear_chunked(spec: CookieSpec, present: Iterable[str]) -> list[str]:
    """``Set-Cookie`` values deleting every cookie in ``present`` (a value and its chunks)."""
    return [expire(spec, name=name) for name in present]
