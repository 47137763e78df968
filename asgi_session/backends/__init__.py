"""How sessions are resolved (strategies) and where records are stored (adapters).

Strategies resolve a cookie into a session:

- :class:`JWTStrategy`: the session is an encrypted token in the cookie (the default).
- :class:`DatabaseStrategy`: the cookie holds an opaque token naming a stored session;
  the default when ``AuthConfig(adapter=...)`` is given.
- :class:`~asgi_session.backends.better_auth.BetterAuthStrategy`: Better Auth's signed
  cookie and its session records, for a Better Auth app on the same site (and
  ``MigrationStrategy`` there, for moving from Auth.js to it).

Adapters store users, accounts, database sessions and verification tokens, all keeping
the contract of :class:`Adapter`; both adapters here also keep passkeys
(:class:`AuthenticatorStore`):

- :class:`MongoDBAdapter` (``pip install asgi-session[mongodb]``), sharing Auth.js's
  MongoDB documents, or Better Auth's (``schema="better-auth"``).
- :class:`SQLAdapter` (``pip install asgi-session[sql]``): PostgreSQL or SQLite, sharing
  the tables of Auth.js's Drizzle, Prisma or pg adapters, or Better Auth's
  (``schema="better-auth"``).
- :class:`MemoryAdapter`: in this process's memory, for development and tests.

Rate limit counters live in a :class:`RateLimitStore`: :class:`MemoryRateLimitStore`
(this process), or ``MongoDBAdapter.rate_limit_store()`` and
``SQLAdapter.rate_limit_store()`` (shared by every instance).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgi_session._deprecated import renamed
from asgi_session._ratelimit import MemoryRateLimitStore, RateLimitStore, Window
from asgi_session.backends._adapter import Adapter, AuthenticatorStore, TokenSweeper
from asgi_session.backends._database import DatabaseStrategy
from asgi_session.backends._jwt import JWTStrategy
from asgi_session.backends._memory import MemoryAdapter
from asgi_session.backends._strategy import SessionStrategy

if TYPE_CHECKING:
    from asgi_session.backends.mongodb import MongoDBAdapter
    from asgi_session.backends.sql import SQLAdapter

__all__ = [
    "Adapter",
    "AuthenticatorStore",
    "DatabaseStrategy",
    "JWTStrategy",
    "MemoryAdapter",
    "MemoryRateLimitStore",
    "MongoDBAdapter",
    "RateLimitStore",
    "SQLAdapter",
    "SessionStrategy",
    "TokenSweeper",
    "Window",
]


def __getattr__(name: str) -> Any:
    if name == "MongoDBAdapter":
        # Imported on first use: it needs PyMongo, an optional dependency.
        from asgi_session.backends.mongodb import MongoDBAdapter

        return MongoDBAdapter
    if name == "SQLAdapter":
        # Likewise: it needs SQLAlchemy and a database driver.
        from asgi_session.backends.sql import SQLAdapter

        return SQLAdapter
    return renamed(__name__, name)
