"""Sign-in providers."""

from asgi_session.providers.base import Provider
from asgi_session.providers.credentials import Credentials
from asgi_session.providers.email import Email
from asgi_session.providers.github import GitHub
from asgi_session.providers.google import Google
from asgi_session.providers.oauth import OAuth
from asgi_session.providers.oidc import OIDC

__all__ = ["OIDC", "Credentials", "Email", "GitHub", "Google", "OAuth", "Provider"]
