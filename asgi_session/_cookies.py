"""Reading and writing the cookies asgi-session uses, the way Auth.js names and chunks them.

A value longer than :data:`CHUNK_SIZE` is split into ``<name>.0``, ``<name>.1``, ... because
browsers drop cookies over about 4 KB; a value that fits keeps the plain name. Readers join
the chunks in numeric order, so a Python service and a Next.js app read each other's cookies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
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

#: Chunk indexes read from a request; anything beyond is attacker-made and ignored.
_MAX_CHUNKS_READ = 64

SameSite = Literal["lax", "strict", "none"]

# encodeURIComponent leaves these unescaped; Auth.js writes cookie values through it.
_URI_COMPONENT_SAFE = "-_.!~*'()"
_CHUNK_NAME = re.compile(r"\.(\d{1,2})\Z")


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

    Browsers' rules, as Starlette's ``cookie_parser`` reads them (a part without ``=`` is
    a value with an empty name, surrounding double quotes are dropped), inlined here
    because every request with a session runs it.
    """
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, separator, value = part.partition("=")
        if not separator:
            name, value = "", name
        name = name.strip()
        value = value.strip()
        if not name and not value:
            continue
        if len(value) > 1 and value[0] == '"' == value[-1]:
            value = value[1:-1]
        if "%" in value:
            value = unquote(value)
        cookies[name] = value
    return cookies


def read_chunked(cookies: Mapping[str, str], name: str) -> str | None:
    """The value stored under ``name``, joining ``name.0``, ``name.1``, ... if chunked.

    Chunks must run from 0 without a gap; a broken set reads as absent, so the caller
    treats it as "no session" rather than decrypting a spliced value.
    """
    if len(cookies) == 1:
        return cookies.get(name)  # the common case: no chunks, no other cookies
    chunks = chunk_indexes(cookies, name)
    if not chunks:
        return cookies.get(name)
    if chunks != list(range(len(chunks))):
        return None
    return "".join(cookies[f"{name}.{index}"] for index in chunks)


def chunk_indexes(cookies: Iterable[str], name: str) -> list[int]:
    """The sorted chunk numbers present for ``name`` (empty when not chunked)."""
    indexes: list[int] = []
    prefix = name + "."
    for cookie_name in cookies:
        if cookie_name.startswith(prefix):
            match = _CHUNK_NAME.match(cookie_name, len(name))
            if match is not None:
                index = int(match.group(1))
                if index < _MAX_CHUNKS_READ:
                    indexes.append(index)
    indexes.sort()
    return indexes


def present_names(cookies: Mapping[str, str], name: str) -> list[str]:
    """Every cookie name that holds all or part of ``name``'s value."""
    found = [f"{name}.{index}" for index in chunk_indexes(cookies, name)]
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
) -> list[str]:
    """``Set-Cookie`` values storing ``value`` under ``spec``, split into chunks if needed.

    ``present`` names the cookies the request carried for this value; those the new
    value no longer uses are expired, so a shrinking token leaves no stale chunk behind.
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
        serialize(spec, chunk, expires=expires, name=chunk_name)
        for chunk_name, chunk in written.items()
    ]
    headers.extend(expire(spec, name=stale) for stale in present if stale not in written)
    return headers


def clear_chunked(spec: CookieSpec, present: Iterable[str]) -> list[str]:
    """``Set-Cookie`` values deleting every cookie in ``present`` (a value and its chunks)."""
    return [expire(spec, name=name) for name in present]
