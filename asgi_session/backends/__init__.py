"""Where sessions, users and accounts live.

- :class:`JWTBackend`: sessions as encrypted tokens in the cookie (the default).
- :class:`DatabaseBackend`: sessions stored through an :class:`Adapter`; chosen
  automatically when ``AuthConfig(backend=...)`` is an adapter.
- Adapters: :class:`~asgi_session.backends.mongodb.MongoDBBackend` (``pip install
  asgi-session[mongodb]``) and :class:`MemoryBackend` (development and tests).
"""

from asgi_session.backends.base import Adapter, SessionBackend
from asgi_session.backends.database import DatabaseBackend
from asgi_session.backends.jwt import JWTBackend
from asgi_session.backends.memory import MemoryBackend

__all__ = ["Adapter", "DatabaseBackend", "JWTBackend", "MemoryBackend", "SessionBackend"]
