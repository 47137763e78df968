"""Which ``Host`` headers and ``Origin``s a request may carry.

Absolute URLs the auth routes build (form actions, the OAuth ``redirect_uri``, where a
sign-in ends) come from the request's host unless ``AuthConfig(url=...)`` is set, so a
host nobody vouched for is refused before anything is built from it. State-changing
requests a browser marks as coming from another site are refused too: the double-submit
CSRF cookie alone cannot stop a sibling subdomain that plants its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: Hosts accepted when nothing says which are ours: the machine itself, and the host
#: Starlette's ``TestClient`` (and most ASGI test set-ups) send.
DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "[::1]", "testserver")

# RFC 3986's reg-name as browsers send it (letters, digits, '-', '.', '_'), or an IPv6
# literal in brackets; an optional port.
_HOST = re.compile(r"(?P<name>[a-z0-9_.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?\Z")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_MAX_SEEN = 256


def host_name(host: str) -> str | None:
    """The name part of a ``Host`` header (lower case, port and trailing dot dropped),
    or ``None`` when it is not a host at all."""
    match = _HOST.match(host.strip().lower())
    if match is None:
        return None
    name = match.group("name")
    if not name.startswith("["):
        name = name.rstrip(".")
    return name or None


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """``AuthConfig(allowed_hosts=...)``: exact names, ``.example.com`` for a domain and
    its subdomains, or ``*`` for any host (as Django's ``ALLOWED_HOSTS``)."""

    exact: frozenset[str]
    domains: tuple[str, ...]
    any_host: bool = False
    #: Answers by ``Host`` value: an app sees a handful, and parsing one costs more
    #: than the rest of a /session request. Bounded, as anyone can send any host.
    _seen: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, entries: Iterable[str]) -> HostPolicy:
        exact: set[str] = set()
        domains: list[str] = []
        any_host = False
        for entry in entries:
            if entry == "*":
                any_host = True
            elif entry.startswith("."):
                domains.append(entry.lower().rstrip("."))
            else:
                exact.add(entry.lower().rstrip("."))
        return cls(frozenset(exact), tuple(domains), any_host)

    def allows(self, host: str | None) -> bool:
        """Whether a ``Host`` header value names one of the allowed hosts."""
        if host is None:
            return False
        seen = self._seen
        answer = seen.get(host)
        if answer is None:
            if len(seen) >= _MAX_SEEN:
                seen.clear()
            answer = seen[host] = self._allows(host)
        return answer

    def _allows(self, host: str) -> bool:
        name = host_name(host)
        if name is None:
            return False
        if self.any_host or name in self.exact:
            return True
        return any(name == domain[1:] or name.endswith(domain) for domain in self.domains)


def check_allowed_host(entry: object) -> str:
    """One ``allowed_hosts`` entry, or ``ValueError`` saying what one looks like."""
    if isinstance(entry, str) and (
        entry == "*" or host_name(entry.removeprefix(".")) == entry.lower().removeprefix(".")
    ):
        return entry
    raise ValueError(
        f"allowed_hosts entry {entry!r} is not a host name: use names such as "
        "'app.example.com', '.example.com' (the domain and its subdomains) or '*', "
        "without scheme or port"
    )


def normalize_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case with the scheme's default port dropped,
    or ``None`` when ``origin`` is not an http(s) origin (``null`` included)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if port is not None and str(port) != _DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def check_trusted_origin(entry: object) -> str:
    """One ``trusted_origins`` entry, normalised, or ``ValueError`` saying what one is."""
    origin = normalize_origin(entry) if isinstance(entry, str) else None
    if origin is None:
        raise ValueError(
            f"trusted_origins entry {entry!r} is not an origin: use scheme and host, such "
            "as 'https://app.example.com' or 'http://localhost:3000', without a path"
        )
    return origin


def is_cross_site(
    fetch_site: str | None, origin: str | None, own_origin: str, trusted: frozenset[str]
) -> bool:
    """Whether a browser says this request comes from another site (or origin).

    ``Sec-Fetch-Site`` decides when present: only ``same-origin`` and ``none`` (the user
    typed the address) pass; a sibling subdomain is ``same-site`` and is refused too,
    since it is exactly who can plant a CSRF cookie over plain http. Without it, an
    ``Origin`` other than the app's is refused. Origins in ``trusted`` always pass.
    Requests with neither header are not from a browser that could be tricked; the
    double-submit token still guards them.
    """
    if fetch_site is not None:
        site = fetch_site.strip().lower()
        if site in ("same-origin", "none"):
            return False
        if origin is None:
            return True
        return normalize_origin(origin) not in trusted
    if origin is None:
        return False
    normalized = normalize_origin(origin)
    return normalized != normalize_origin(own_origin) and normalized not in trusted
