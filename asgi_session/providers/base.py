"""What every sign-in provider has in common."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from asgi_session.errors import ConfigurationError

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"
