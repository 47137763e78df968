"""Sign-in and sessions for Starlette, FastAPI and any ASGI app, compatible with Auth.js
and Better Auth.

Example::

    from asgi_session import AuthConfig, AuthMiddleware
    from asgi_session.providers import Credentials

    config = AuthConfig(
        secret=os.environ["AUTH_SECRET"], providers=[Credentials(authorize=authorize)]
    )
    app = Starlette(routes=routes, middleware=[Middleware(AuthMiddleware, config=config)])

Where things are (public modules have plain names; ``_private`` ones are internal):

==============================  =========================================================
a request comes in              ``_middleware.py``: ``AuthMiddleware``, pure ASGI
its per-request state           ``_context.py``: ``RequestContext`` owns cookies, session,
                                the Set-Cookie list; the scope keys live there too
a cookie is parsed / written    ``_cookies.py`` (Auth.js names, chunking), ``_csrf.py``
a session is resolved           ``backends/_jwt.py`` (``JWTStrategy``) and
                                ``backends/_database.py`` (``DatabaseStrategy``), both
                                keeping ``backends/_strategy.py``'s contract; Better
                                Auth's in ``backends/better_auth.py`` (its cookies in
                                ``backends/_better_auth_cookies.py``, the move from
                                Auth.js in ``backends/_migration.py``)
the session handlers see        ``_session.py``: ``Session``, ``SessionUser``
the ``/auth/*`` routes          ``_routes.py`` (dispatch), ``_answers.py`` (shared HTTP
                                answers), ``_pages.py`` (HTML)
a provider vouches for someone  ``providers/``: the plug-in interface in
                                ``providers/_base.py`` (``Provider``, ``Identity``);
                                OAuth's state/PKCE/nonce cookies in ``providers/_checks.py``
every sign-in is completed      ``_signin.py``: ``complete_sign_in`` (callback, user,
                                second factor, new session, events, redirect) — the one
                                flow; ``finish_sign_in`` its end
a second factor is proven       ``_second_factor.py`` (TOTP, recovery codes, the challenge
                                between the factors), ``_totp.py`` (codes, sealed secrets),
                                routes in ``_mfa_routes.py``, pages in ``_mfa_pages.py``;
                                ``mfa.py`` for the app's own code
a passkey is checked            ``providers/_passkey.py`` (``Passkey``, Auth.js's routes),
                                ``_webauthn.py`` (the ceremonies), ``passkey.js`` (browser)
step-up (a fresh session)       ``Session.auth_time``; ``requires_session(fresh=...)`` in
                                ``_requires.py``; ``FreshSession`` in ``fastapi.py``
a password is checked or set    ``providers/_password.py`` (``Password``: sign-up, sign-in,
                                links, reset, change), its routes in ``_password_routes.py``;
                                hashing and the rules in ``passwords.py``
a bearer token is read          ``_middleware.py`` (the header), ``_context.py`` (bearer
                                mode), ``POST``/``DELETE /token`` in ``_routes.py``
a profile becomes a user        ``_accounts.py``: Auth.js's find / create / link rules
a record is stored              ``backends/_adapter.py`` (the contract); input checked and
                                records built once in ``backends/_records.py``; stored by
                                ``backends/_memory.py`` and ``backends/mongodb.py``;
                                ``models.py`` holds the record types
where the browser may go        ``_redirects.py``
which hosts and origins pass    ``_hosts.py`` (allowed hosts, cross-site requests)
rate limits                     ``_ratelimit.py``
callbacks and events            ``_callbacks.py``
configuration                   ``_config.py``: ``AuthConfig``, checked at start-up
Auth.js's JWT                   ``jwt.py``
errors                          ``errors.py``: every exception, all ``AuthError``s
==============================  =========================================================
"""

from typing import Any

from asgi_session._callbacks import Callbacks, Events
from asgi_session._config import AuthConfig, Pages
from asgi_session._cookies import CookieNames, CookieSpec
from asgi_session._deprecated import renamed
from asgi_session._middleware import AuthMiddleware
from asgi_session._ratelimit import RateLimit, RateLimits
from asgi_session._requires import get_session, requires_session
from asgi_session._second_factor import TwoFactor
from asgi_session._session import Session, SessionUser
from asgi_session.errors import (
    AuthError,
    BackendUnavailableError,
    ConfigurationError,
    CookieTooLargeError,
    CredentialsSignin,
    DuplicateRecordError,
    SessionEndedError,
    SignInError,
)

__all__ = [
    "AuthConfig",
    "AuthError",
    "AuthMiddleware",
    "BackendUnavailableError",
    "Callbacks",
    "ConfigurationError",
    "CookieNames",
    "CookieSpec",
    "CookieTooLargeError",
    "CredentialsSignin",
    "DuplicateRecordError",
    "Events",
    "Pages",
    "RateLimit",
    "RateLimits",
    "Session",
    "SessionEndedError",
    "SessionUser",
    "SignInError",
    "TwoFactor",
    "get_session",
    "requires_session",
]


def __getattr__(name: str) -> Any:
    return renamed(__name__, name)
