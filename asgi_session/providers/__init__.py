"""Sign-in providers."""

from asgi_session.providers.base import Provider
from asgi_session.providers.credentials import Credentials

__all__ = ["Credentials", "Provider"]
