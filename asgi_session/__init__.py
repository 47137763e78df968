"""Sign-in and sessions for Starlette, FastAPI and any ASGI app, compatible with Auth.js.

Example::

    from asgi_session import AuthConfig, AuthMiddleware
    from asgi_session.providers import Credentials

    config = AuthConfig(
        secret=os.environ["AUTH_SECRET"], providers=[Credentials(authorize=authorize)]
    )
    app = Starlette(routes=routes, middleware=[Middleware(AuthMiddleware, config=config)])
"""

from asgi_session.backends.jwt import JWTBackend
from asgi_session.callbacks import Callbacks, Events
from asgi_session.config import AuthConfig, Pages
from asgi_session.cookies import CookieSpec
from asgi_session.errors import (
    AuthError,
    BackendUnavailableError,
    ConfigurationError,
    CookieTooLargeError,
    DuplicateRecordError,
    SessionEndedError,
)
from asgi_session.middleware import AuthMiddleware
from asgi_session.requires import get_session, requires_session
from asgi_session.session import Session, SessionUser

__all__ = [
    "AuthConfig",
    "AuthError",
    "AuthMiddleware",
    "BackendUnavailableError",
    "Callbacks",
    "ConfigurationError",
    "CookieSpec",
    "CookieTooLargeError",
    "DuplicateRecordError",
    "Events",
    "JWTBackend",
    "Pages",
    "Session",
    "SessionEndedError",
    "SessionUser",
    "get_session",
    "requires_session",
]
