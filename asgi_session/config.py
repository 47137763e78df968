"""``AuthConfig``: everything asgi-session needs to know, checked once at start-up."""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from asgi_session.callbacks import Callbacks, Events
from asgi_session.cookies import DEFAULT_MAX_CHUNKS, CookieNames, CookieSpec
from asgi_session.errors import ConfigurationError
from asgi_session.providers.base import Provider

if TYPE_CHECKING:
    from asgi_session.backends.base import SessionBackend

DEFAULT_MAX_AGE = 30 * 24 * 60 * 60
DEFAULT_UPDATE_AGE = 24 * 60 * 60

_NO_KEY_HELP = (
    "asgi-session needs a secret to encrypt session cookies. Set the AUTH_SECRET "
    "environment variable or pass AuthConfig(secret=...); generate one with "
    "`python -m asgi_session secret`."
)
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Pages:
    """Paths of the app's own pages that replace the built-in ones (Auth.js's ``pages``).

    Each is a path in the app (``"/login"``); the built-in page is used where it is ``None``.
    The sign-in page receives ``callbackUrl`` and ``error`` query parameters, the error
    page ``error``.
    """

    sign_in: str | None = None
    sign_out: str | None = None
    error: str | None = None
    verify_request: str | None = None
    new_user: str | None = None


def _read_secrets(secret: str | Sequence[str] | None) -> tuple[str, ...]:
    if secret is None:
        # Auth.js reads AUTH_SECRET, then AUTH_SECRET_1.. for rotation; so do we.
        found = [os.environ.get("AUTH_SECRET", "")]
        found += [os.environ.get(f"AUTH_SECRET_{index}", "") for index in (1, 2, 3)]
        secrets = tuple(value for value in found if value)
    elif isinstance(secret, str):
        secrets = (secret,)
    else:
        secrets = tuple(secret)
    if not secrets or not all(isinstance(value, str) and value for value in secrets):
        raise ConfigurationError(_NO_KEY_HELP)
    return secrets


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


class AuthConfig:
    """How sign-in and sessions work for an app.

    Example::

        config = AuthConfig(
            secret=os.environ["AUTH_SECRET"],
            providers=[Credentials(authorize=authorize)],
        )
        app = Starlette(routes=routes, middleware=[Middleware(AuthMiddleware, config=config)])

    Arguments (all keyword-only):

    - ``secret``: a string, or a list whose first entry encrypts and every entry decrypts
      (rotation). Defaults to ``AUTH_SECRET`` (then ``AUTH_SECRET_1``..``_3``).
    - ``providers``: the sign-in providers.
    - ``backend``: where sessions live. Defaults to :class:`~asgi_session.backends.jwt.JWTBackend`
      (an encrypted token in the cookie). An adapter such as
      :class:`~asgi_session.backends.mongodb.MongoDBBackend` gives database sessions.
    - ``strategy``: ``"jwt"`` or ``"database"``; defaults to ``"database"`` for an
      adapter, else ``"jwt"``. ``strategy="jwt"`` with an adapter keeps users in the
      database and sessions in the cookie.
    - ``base_path``: where the ``/signin``, ``/callback``, ... routes live (``"/auth"``).
    - ``max_age``: seconds a session lasts without activity (30 days).
    - ``update_age``: how often, in seconds, an active session's expiry is pushed back
      (24 hours): a JWT is re-issued, a database row extended, at most this often.
    - ``cookies``: per-cookie overrides, e.g. ``{"session_token": {"domain": "example.com"}}``.
    - ``use_secure_cookies``: force ``Secure`` cookies and ``__Secure-``/``__Host-``
      names on or off; by default they follow the request's (or ``url``'s) scheme.
    - ``url``: the app's public URL (default ``AUTH_URL``), for apps behind a proxy.
    - ``trust_host``: trust ``X-Forwarded-Host``/``-Proto`` (default ``AUTH_TRUST_HOST``).
    - ``callbacks``, ``events``: see :class:`~asgi_session.callbacks.Callbacks` and
      :class:`~asgi_session.callbacks.Events`.
    - ``pages``: :class:`Pages` replacing the built-in sign-in, sign-out and error pages.
    - ``max_cookie_chunks``: the most 4 KB chunks a session cookie may take before
      issuing it fails with :class:`~asgi_session.errors.CookieTooLargeError`.
    - ``clock``: seconds since the epoch, ``time.time`` by default (tests inject one).
    """

    def __init__(
        self,
        *,
        secret: str | Sequence[str] | None = None,
        providers: Sequence[Provider] = (),
        backend: Any = None,
        strategy: Literal["jwt", "database"] | None = None,
        base_path: str = "/auth",
        max_age: int = DEFAULT_MAX_AGE,
        update_age: int = DEFAULT_UPDATE_AGE,
        cookies: Mapping[str, CookieSpec | Mapping[str, Any]] | None = None,
        use_secure_cookies: bool | None = None,
        url: str | None = None,
        trust_host: bool | None = None,
        callbacks: Callbacks | None = None,
        events: Events | None = None,
        pages: Pages | None = None,
        max_cookie_chunks: int = DEFAULT_MAX_CHUNKS,
        clock: Callable[[], float] = time.time,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConfigurationError(_unknown_options(unknown))
        self.secrets = _read_secrets(secret)
        self.providers = _check_providers(providers)
        self.base_path = _check_base_path(base_path)
        if not isinstance(max_age, int) or max_age <= 0:
            raise ConfigurationError("max_age must be a positive number of seconds")
        if not isinstance(update_age, int) or not 0 <= update_age <= max_age:
            raise ConfigurationError("update_age must be between 0 and max_age seconds")
        self.max_age = max_age
        self.update_age = update_age
        self.url = _check_url(
            url if url is not None else os.environ.get("AUTH_URL") or None, self.base_path
        )
        self.trust_host = _env_flag("AUTH_TRUST_HOST") if trust_host is None else trust_host
        if use_secure_cookies is None and self.url is not None:
            use_secure_cookies = self.url.startswith("https://")
        self.use_secure_cookies = use_secure_cookies
        try:
            self.cookie_names = {
                secure: CookieNames.default(secure=secure, overrides=cookies)
                for secure in (False, True)
            }
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"cookies={cookies!r} is not valid ({exc}); use field names such as "
                "'session_token' mapped to CookieSpec attributes such as {'domain': ...}"
            ) from None
        self.callbacks = callbacks if callbacks is not None else Callbacks()
        self.events = events if events is not None else Events()
        self.pages = pages if pages is not None else Pages()
        if max_cookie_chunks < 1:
            raise ConfigurationError("max_cookie_chunks must be at least 1")
        self.max_cookie_chunks = max_cookie_chunks
        self.clock = clock
        self.backend: SessionBackend = _choose_backend(backend, strategy)
        self.backend.configure(self)
        for provider in self.providers.values():
            provider.check_config(self)

    @property
    def strategy(self) -> str:
        """``"jwt"`` or ``"database"``."""
        return self.backend.strategy

    def provider(self, provider_id: str) -> Provider | None:
        return self.providers.get(provider_id)


def _unknown_options(unknown: Mapping[str, Any]) -> str:
    known = [name for name in AuthConfig.__init__.__code__.co_varnames if not name.startswith("_")]
    messages = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        messages.append(f"{name!r}{hint}")
    return "AuthConfig got unknown option " + ", ".join(messages)


def _check_providers(providers: Sequence[Provider]) -> dict[str, Provider]:
    found: dict[str, Provider] = {}
    for provider in providers:
        if not isinstance(provider, Provider):
            raise ConfigurationError(
                f"{provider!r} is not a provider; use one from asgi_session.providers, "
                "e.g. Credentials(authorize=...)"
            )
        if provider.id in found:
            raise ConfigurationError(
                f"two providers have the id {provider.id!r}; pass id=... to tell them apart"
            )
        found[provider.id] = provider
    return found


def _check_base_path(base_path: str) -> str:
    if not base_path.startswith("/") or base_path.endswith("/") or "//" in base_path:
        raise ConfigurationError(
            f"base_path {base_path!r} must start with '/' and not end with one, e.g. '/auth'"
        )
    return base_path


def _check_url(url: str | None, base_path: str) -> str | None:
    """The origin of ``url``.

    A path in it must end with ``base_path`` (Auth.js takes its base path from there);
    what comes before is where the app is mounted.
    """
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"url / AUTH_URL {url!r} must be an absolute http(s) URL such as https://example.com"
        )
    path = parts.path.rstrip("/")
    if path and not path.endswith(base_path):
        # Next.js apps often set AUTH_URL to ".../api/auth": keep the two in step.
        raise ConfigurationError(
            f"url / AUTH_URL {url!r} names the path {path!r}, but base_path is {base_path!r}: "
            f"pass base_path={path!r} or give the URL without a path"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _choose_backend(backend: Any, strategy: str | None) -> SessionBackend:
    from asgi_session.backends.base import Adapter, SessionBackend
    from asgi_session.backends.database import DatabaseBackend
    from asgi_session.backends.jwt import JWTBackend

    if strategy not in (None, "jwt", "database"):
        raise ConfigurationError(f"strategy must be 'jwt' or 'database', not {strategy!r}")
    if backend is None:
        if strategy == "database":
            raise ConfigurationError(
                "strategy='database' needs a backend that stores sessions, e.g. "
                "backend=MongoDBBackend(client['app'])"
            )
        return JWTBackend()
    if isinstance(backend, SessionBackend):
        if strategy is not None and strategy != backend.strategy:
            raise ConfigurationError(
                f"backend {type(backend).__name__} uses the {backend.strategy!r} strategy, "
                f"not {strategy!r}"
            )
        return backend
    if isinstance(backend, Adapter):
        if strategy == "jwt":
            return JWTBackend(adapter=backend)
        return DatabaseBackend(backend)
    raise ConfigurationError(
        f"backend={backend!r} is neither a session backend nor an adapter; use "
        "JWTBackend() or MongoDBBackend(database)"
    )
