"""Sign-in providers: each vouches for someone; :class:`Identity` is what it hands back.

Write a provider of your own by subclassing :class:`Provider` and implementing
``begin_sign_in`` and ``authenticate`` against :class:`ProviderRequest`.
"""

from asgi_session.providers._base import Identity, Provider, ProviderContext, ProviderRequest
from asgi_session.providers._credentials import Credentials
from asgi_session.providers._email import Email
from asgi_session.providers._github import GitHub
from asgi_session.providers._google import Google
from asgi_session.providers._oauth import OAuth
from asgi_session.providers._oidc import OIDC
from asgi_session.providers._passkey import Passkey
from asgi_session.providers._password import Password

__all__ = [
    "OIDC",
    "Credentials",
    "Email",
    "GitHub",
    "Google",
    "Identity",
    "OAuth",
    "Passkey",
    "Password",
    "Provider",
    "ProviderContext",
    "ProviderRequest",
]
