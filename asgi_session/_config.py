"""``AuthConfig``: everything asgi-session needs to know, checked once at start-up."""

from __future__ import annotations

import difflib
import inspect
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from asgi_session._callbacks import Callbacks, Events
from asgi_session._cookies import DEFAULT_MAX_CHUNKS, CookieNames, CookieSpec
from asgi_session._hosts import (
    DEFAULT_ALLOWED_HOSTS,
    HostPolicy,
    check_allowed_host,
    check_trusted_origin,
)
from asgi_session._ratelimit import RateLimits, RateLimitStore, choose_store, proxy_networks
from asgi_session._second_factor import TwoFactor
from asgi_session._second_factor import check_config as check_two_factor
from asgi_session.backends._adapter import Adapter
from asgi_session.backends._database import DatabaseStrategy
from asgi_session.backends._jwt import JWTStrategy
from asgi_session.backends._strategy import SessionStrategy
from asgi_session.errors import ConfigurationError
from asgi_session.providers._base import Provider

#: ``AuthConfig(strategy=...)``: a strategy's name, a strategy object, or the default.
StrategyOption = Literal["jwt", "database"] | SessionStrategy | None

DEFAULT_MAX_AGE = 30 * 24 * 60 * 60
DEFAULT_UPDATE_AGE = 24 * 60 * 60

_NO_KEY_HELP = (
    "asgi-session needs a secret to encrypt session cookies. Set the AUTH_SECRET "
    "environment variable or pass AuthConfig(secret=...); generate one with "
    "`python -m asgi_session secret`."
)
_TRUE = {"1", "true", "yes", "on"}

#: The environment variables an option falls back to when it is not passed, as Auth.js
#: names them. The options read them from here, so the configuration reference built
#: from this map says what the code does.
ENVIRONMENT_VARIABLES: Mapping[str, tuple[str, ...]] = {
    "secret": ("AUTH_SECRET", "AUTH_SECRET_1", "AUTH_SECRET_2", "AUTH_SECRET_3"),
    "url": ("AUTH_URL",),
    "trust_host": ("AUTH_TRUST_HOST",),
}


@dataclass(frozen=True, slots=True)
class Pages:
    """Paths of the app's own pages that replace the built-in ones (Auth.js's ``pages``).

    Each is a path in the app (``"/login"``); the built-in page is used where it is ``None``.
    The sign-in page receives ``callbackUrl`` and ``error`` query parameters, the error
    page ``error``. The password pages (``sign_up``, ``forgot_password``,
    ``reset_password``) receive ``error`` when a form was refused, and the reset page the
    link's ``token`` and ``email``, to post back to ``/auth/password/reset``.
    """

    sign_in: str | None = None
    sign_out: str | None = None
    error: str | None = None
    verify_request: str | None = None
    new_user: str | None = None
    sign_up: str | None = None
    forgot_password: str | None = None
    reset_password: str | None = None


def _read_secrets(secret: str | Sequence[str] | None) -> tuple[str, ...]:
    if secret is None:
        # Auth.js reads AUTH_SECRET, then AUTH_SECRET_1.. for rotation; so do we.
        found = (os.environ.get(name, "") for name in ENVIRONMENT_VARIABLES["secret"])
        secrets = tuple(value for value in found if value)
    elif isinstance(secret, str):
        secrets = (secret,)
    else:
        secrets = tuple(secret)
    if not secrets or not all(isinstance(value, str) and value for value in secrets):
        raise ConfigurationError(_NO_KEY_HELP)
    return secrets


def _env_text(option: str) -> str | None:
    """The first of ``option``'s environment variables that is set, if any."""
    found = (os.environ.get(name) for name in ENVIRONMENT_VARIABLES[option])
    return next((value for value in found if value), None)


def _env_flag(option: str) -> bool:
    return (_env_text(option) or "").strip().lower() in _TRUE


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
    - ``adapter``: where users, accounts, database sessions and verification tokens are
      stored, e.g. :class:`~asgi_session.backends.mongodb.MongoDBAdapter`. None by
      default: nothing is stored, sessions are JWTs.
    - ``strategy``: how a session is resolved: ``"jwt"`` (an encrypted token in the
      cookie), ``"database"`` (the cookie names a stored session) or a strategy object
      such as ``JWTStrategy(revocation_check_interval=30)``. Defaults to ``"database"``
      with an adapter, else ``"jwt"``; ``"jwt"`` with an adapter keeps users in the
      database and sessions in the cookie.
    - ``base_path``: where the ``/signin``, ``/callback``, ... routes live (``"/auth"``).
    - ``max_age``: seconds a session lasts without activity (30 days).
    - ``update_age``: how often, in seconds, an active session's expiry is pushed back
      (24 hours): a JWT is re-issued, a database row extended, at most this often.
    - ``cookies``: per-cookie overrides, e.g. ``{"session_token": {"domain": "example.com"}}``.
    - ``use_secure_cookies``: force ``Secure`` cookies and ``__Secure-``/``__Host-``
      names on or off; by default they follow the request's (or ``url``'s) scheme.
    - ``url``: the app's public URL (default ``AUTH_URL``), for apps behind a proxy.
      Its origin is what counts: a path in it must end with ``base_path``, and where
      the app is mounted comes from the ASGI ``root_path`` (uvicorn's ``--root-path``).
    - ``trust_host``: trust ``X-Forwarded-Host``/``-Proto``/``-For`` (default
      ``AUTH_TRUST_HOST``): the app is behind a proxy that sets them.
    - ``allowed_hosts``: the ``Host`` names the auth routes answer, as Django's
      ``ALLOWED_HOSTS``: ``"app.example.com"``, ``".example.com"`` (the domain and its
      subdomains) or ``"*"``. Without it, ``url`` or ``trust_host``, only ``localhost``,
      ``127.0.0.1``, ``[::1]`` and ``testserver`` are; other hosts get a 400.
    - ``trusted_origins``: other origins whose pages may post to the auth routes, e.g.
      ``["https://app.example.com"]`` for a front end on another subdomain; requests a
      browser marks as from any other site are refused with a 403.
    - ``trusted_proxies``: addresses or networks (``"10.0.0.0/8"``) of proxies whose
      ``X-Forwarded-For`` names the client, for rate limits; ``trust_host`` trusts any.
    - ``rate_limits``: :class:`~asgi_session.RateLimits` (on by default); ``None`` turns
      every limit off.
    - ``rate_limit_store``: where rate limit counters live; by default the adapter's
      store when it has one (so limits hold across app instances), else this process.
    - ``callbacks``, ``events``: see :class:`~asgi_session.Callbacks` and
      :class:`~asgi_session.Events`.
    - ``pages``: :class:`Pages`: paths of the app's own pages replacing built-in ones
      (sign-in, sign-out, error, "check your email", new user and the password pages).
    - ``bearer_tokens``: let clients that are not browsers (native apps, CLIs) sign in
      with ``POST /auth/token`` and send ``Authorization: Bearer <token>`` instead of
      cookies. Off by default: in a browser an HttpOnly cookie is out of scripts' reach,
      where a token a script holds is not.
    - ``two_factor``: :class:`~asgi_session.mfa.TwoFactor` (or ``True`` for its defaults)
      turns on second factors: TOTP with recovery codes, and passkeys as a second factor
      when the ``Passkey`` provider is configured. Needs an adapter. Off by default.
    - ``fresh_age``: how recent, in seconds, a session's sign-in must be for what needs a
      fresh one (changing the password, adding or removing a factor): 300. Older
      sessions are sent to ``/auth/reauthenticate`` first.
    - ``max_cookie_chunks``: the most 4 KB chunks a session cookie may take before
      issuing it fails with :class:`~asgi_session.errors.CookieTooLargeError`.
    - ``clock``: seconds since the epoch, ``time.time`` by default (tests inject one).
    - ``backend``: the spelling of earlier releases for ``adapter`` (or ``strategy``, for a
      strategy object); it still works and warns.
    """

    def __init__(
        self,
        *,
        secret: str | Sequence[str] | None = None,
        providers: Sequence[Provider] = (),
        adapter: Adapter | None = None,
        strategy: StrategyOption = None,
        base_path: str = "/auth",
        max_age: int = DEFAULT_MAX_AGE,
        update_age: int = DEFAULT_UPDATE_AGE,
        cookies: Mapping[str, CookieSpec | Mapping[str, Any]] | None = None,
        use_secure_cookies: bool | None = None,
        url: str | None = None,
        trust_host: bool | None = None,
        allowed_hosts: Sequence[str] | None = None,
        trusted_origins: Sequence[str] = (),
        trusted_proxies: Sequence[str] = (),
        rate_limits: RateLimits | None = RateLimits(),  # noqa: B008 (frozen, shared safely)
        rate_limit_store: RateLimitStore | None = None,
        callbacks: Callbacks | None = None,
        events: Events | None = None,
        pages: Pages | None = None,
        bearer_tokens: bool = False,
        two_factor: TwoFactor | bool | None = None,
        fresh_age: int = 300,
        max_cookie_chunks: int = DEFAULT_MAX_CHUNKS,
        clock: Callable[[], float] = time.time,
        backend: Any = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConfigurationError(_unknown_options(unknown))
        if backend is not None:
            adapter, strategy = _from_backend(backend, adapter, strategy)
        self.secrets = _read_secrets(secret)
        self.providers = _check_providers(providers)
        self.base_path = _check_base_path(base_path)
        if not isinstance(max_age, int) or max_age <= 0:
            raise ConfigurationError("max_age must be a positive number of seconds")
        if not isinstance(update_age, int) or not 0 <= update_age <= max_age:
            raise ConfigurationError("update_age must be between 0 and max_age seconds")
        self.max_age = max_age
        self.update_age = update_age
        self.url = _check_url(url if url is not None else _env_text("url"), self.base_path)
        self.trust_host = _env_flag("trust_host") if trust_host is None else trust_host
        #: The hosts the auth routes answer; ``None`` when any host may (``url`` is set,
        #: so no URL is built from the request, or ``trust_host`` vouches for the proxy).
        self.allowed_hosts = _host_policy(allowed_hosts, self.url, self.trust_host)
        self.trusted_origins = _origins(trusted_origins)
        self.trusted_proxies = proxy_networks(trusted_proxies)
        if rate_limits is not None and not isinstance(rate_limits, RateLimits):
            raise ConfigurationError(
                f"rate_limits={rate_limits!r} is not a RateLimits: pass "
                "RateLimits(failed_sign_in_per_ip=RateLimit(10, 60), ...) or None for none"
            )
        self.rate_limits = rate_limits
        # The adapter a strategy object brings counts too (it is checked further down).
        self.rate_limit_store = choose_store(
            rate_limit_store, adapter if adapter is not None else getattr(strategy, "adapter", None)
        )
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
        if not isinstance(bearer_tokens, bool):
            raise ConfigurationError("bearer_tokens must be True or False")
        self.bearer_tokens = bearer_tokens
        if two_factor is True:
            two_factor = TwoFactor()
        elif two_factor is False:
            two_factor = None
        if two_factor is not None and not isinstance(two_factor, TwoFactor):
            raise ConfigurationError(
                f"two_factor={two_factor!r} must be a TwoFactor(...), True or None"
            )
        #: Second factors (``None``: off).
        self.two_factor: TwoFactor | None = two_factor
        if type(fresh_age) is not int or fresh_age < 1:
            raise ConfigurationError("fresh_age must be a positive number of seconds")
        self.fresh_age = fresh_age
        if max_cookie_chunks < 1:
            raise ConfigurationError("max_cookie_chunks must be at least 1")
        self.max_cookie_chunks = max_cookie_chunks
        self.clock = clock
        #: How sessions are resolved: a :class:`~asgi_session.backends.JWTStrategy` or
        #: :class:`~asgi_session.backends.DatabaseStrategy` (``strategy.name`` says which).
        self.strategy: SessionStrategy
        #: Where users, accounts and stored sessions live, if anywhere.
        self.adapter: Adapter | None
        self.strategy, self.adapter = _choose_strategy(adapter, strategy)
        self.strategy.configure(self)
        for provider in self.providers.values():
            provider.check_config(self)
        if self.two_factor is not None:
            check_two_factor(self)

    @property
    def backend(self) -> SessionStrategy:
        """Deprecated: the session strategy, now :attr:`strategy`."""
        warnings.warn(
            "AuthConfig.backend is deprecated; use AuthConfig.strategy (and .adapter)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.strategy

    def provider(self, provider_id: str) -> Provider | None:
        return self.providers.get(provider_id)


def _unknown_options(unknown: Mapping[str, Any]) -> str:
    # The options themselves (not __init__'s locals); the deprecated spelling is never
    # suggested for a typo.
    known = [
        parameter.name
        for parameter in inspect.signature(AuthConfig.__init__).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.name != "backend"
    ]
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

    A path in it must end with ``base_path`` (Auth.js takes its base path from there).
    What comes before it is not used: the ASGI ``root_path`` says where the app is
    mounted, and a prefix taken from here as well would be counted twice.
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


def _host_policy(
    allowed_hosts: Sequence[str] | None, url: str | None, trust_host: bool
) -> HostPolicy | None:
    if allowed_hosts is None:
        return None if url is not None or trust_host else HostPolicy.of(DEFAULT_ALLOWED_HOSTS)
    if isinstance(allowed_hosts, str):
        raise ConfigurationError(
            f"allowed_hosts={allowed_hosts!r} must be a list of host names, e.g. "
            f"[{allowed_hosts!r}]"
        )
    try:
        return HostPolicy.of(check_allowed_host(entry) for entry in allowed_hosts)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _origins(trusted_origins: Sequence[str]) -> frozenset[str]:
    if isinstance(trusted_origins, str):
        raise ConfigurationError(
            f"trusted_origins={trusted_origins!r} must be a list of origins, e.g. "
            f"[{trusted_origins!r}]"
        )
    try:
        return frozenset(check_trusted_origin(entry) for entry in trusted_origins)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _from_backend(
    backend: Any, adapter: Adapter | None, strategy: StrategyOption
) -> tuple[Adapter | None, StrategyOption]:
    """Read the ``backend=`` option of earlier releases as ``adapter=`` or ``strategy=``."""
    if isinstance(backend, SessionStrategy):
        if isinstance(strategy, str) and strategy != backend.name:
            raise ConfigurationError(
                f"backend {type(backend).__name__} uses the {backend.name!r} strategy, "
                f"not {strategy!r}"
            )
        new = f"strategy={type(backend).__name__}(...)"
        strategy = backend
    elif isinstance(backend, Adapter):
        if adapter is not None:
            raise ConfigurationError(
                "backend=... is the old spelling of adapter=...; pass the adapter once"
            )
        new = f"adapter={type(backend).__name__}(...)"
        adapter = backend
    else:
        raise ConfigurationError(
            f"backend={backend!r} is neither a session strategy nor an adapter; use "
            "adapter=MongoDBAdapter(database) or strategy='jwt'"
        )
    warnings.warn(
        f"AuthConfig(backend=...) is deprecated; pass {new} instead",
        DeprecationWarning,
        stacklevel=3,
    )
    return adapter, strategy


def _choose_strategy(
    adapter: Adapter | None, strategy: StrategyOption
) -> tuple[SessionStrategy, Adapter | None]:
    """The session strategy and the adapter it works with, as Auth.js defaults them."""
    if adapter is not None and not isinstance(adapter, Adapter):
        raise ConfigurationError(
            f"adapter={adapter!r} is not an adapter; use one from asgi_session.backends, "
            "e.g. MongoDBAdapter(client['app']) or MemoryAdapter()"
        )
    if isinstance(strategy, SessionStrategy):
        own = strategy.adapter
        if own is not None and adapter is not None and own is not adapter:
            raise ConfigurationError(
                f"{type(strategy).__name__} was given another adapter than "
                "AuthConfig(adapter=...); pass the adapter to AuthConfig only"
            )
        chosen: SessionStrategy = strategy
        adapter = adapter or own
    elif strategy is None:
        chosen = DatabaseStrategy() if adapter is not None else JWTStrategy()
    elif strategy == "jwt":
        chosen = JWTStrategy()
    elif strategy == "database":
        chosen = DatabaseStrategy()
    else:
        raise ConfigurationError(
            f"strategy must be 'jwt', 'database' or a strategy object, not {strategy!r}"
        )
    if chosen.name == "database" and adapter is None:
        raise ConfigurationError(
            "strategy='database' needs an adapter that stores sessions, e.g. "
            "adapter=MongoDBAdapter(client['app'])"
        )
    return chosen, adapter
