"""What every sign-in provider has in common."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar, Literal

from asgi_session.errors import ConfigurationError

if TYPE_CHECKING:
    from starlette.responses import Response

    from asgi_session.config import AuthConfig
    from asgi_session.routes import AuthRequest

ProviderType = Literal["oauth", "oidc", "email", "credentials"]

_ID = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")


class Provider:
    """A way to sign in. Subclasses set :attr:`type` and check their own settings."""

    type: ClassVar[ProviderType]

    def __init__(self, *, id: str, name: str) -> None:
        if not isinstance(id, str) or not _ID.match(id):
            raise ConfigurationError(
                f"provider id {id!r} must be lower-case letters, digits, '-' or '_' "
                "(it becomes part of the /signin/<id> and /callback/<id> URLs)"
            )
        self.id = id
        self.name = name

    def check_config(self, config: AuthConfig) -> None:
        """Fail at start-up if ``config`` lacks what this provider needs."""

    async def begin_sign_in(self, auth: AuthRequest) -> Response | None:
        """Start a sign-in (``POST /signin/<id>``, CSRF already checked).

        ``None``: the provider has no such step (credentials post to their callback).
        """
        return None

    async def handle_callback(self, auth: AuthRequest) -> Response | None:
        """Finish a sign-in (``/callback/<id>``); ``None``: the provider has no callback."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"
