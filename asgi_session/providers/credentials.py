"""Sign-in with whatever the app checks itself: a password, a one-time code, ..."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from starlette.requests import Request

from asgi_session.errors import ConfigurationError
from asgi_session.providers.base import Provider, ProviderType

#: ``authorize(credentials, request)`` returns the user (a mapping with at least ``id``)
#: or ``None`` when the credentials are wrong. It may be a plain or an ``async`` function.
Authorize = Callable[
    [dict[str, str], Request], Awaitable[Mapping[str, Any] | None] | Mapping[str, Any] | None
]

DEFAULT_FIELDS: Mapping[str, Mapping[str, str]] = {
    "email": {"label": "Email", "type": "email"},
    "password": {"label": "Password", "type": "password"},
}


class Credentials(Provider):
    """Sign in by posting a form that ``authorize`` checks.

    Example::

        async def authorize(credentials, request):
            user = await users.check_password(credentials["email"], credentials["password"])
            return {"id": user.id, "name": user.name, "email": user.email} if user else None

        Credentials(authorize=authorize)

    ``fields`` names the form's inputs, each with a ``label`` and an HTML input ``type``;
    only these fields reach ``authorize``.
    """

    type: ClassVar[ProviderType] = "credentials"

    def __init__(
        self,
        *,
        authorize: Authorize,
        fields: Mapping[str, Mapping[str, str]] | None = None,
        id: str = "credentials",
        name: str = "Credentials",
    ) -> None:
        super().__init__(id=id, name=name)
        if not callable(authorize):
            raise ConfigurationError(
                "Credentials(authorize=...) needs a function (credentials, request) that "
                "returns the user, or None when the credentials are wrong"
            )
        self.authorize = authorize
        self.fields: dict[str, dict[str, str]] = {
            key: dict(value) for key, value in (fields or DEFAULT_FIELDS).items()
        }
        if not self.fields:
            raise ConfigurationError("Credentials(fields=...) must name at least one form field")
