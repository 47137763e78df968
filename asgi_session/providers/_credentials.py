"""Sign-in with whatever the app checks itself: a password, a one-time code, ..."""

from __future__ import annotations

import inspect
import logging
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from starlette.requests import Request

from asgi_session.errors import ConfigurationError, CredentialsSignin, SignInError
from asgi_session.models import as_mapping
from asgi_session.providers._base import Identity, Provider, ProviderRequest, ProviderType

logger = logging.getLogger("asgi_session")

#: ``authorize(credentials, request)`` returns the user (a mapping with at least ``id``)
#: or ``None`` when the credentials are wrong; it may raise
#: :class:`~asgi_session.errors.CredentialsSignin` with a code of its own. It may be a
#: plain or an ``async`` function.
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
    only these fields reach ``authorize``. Wrong credentials send the browser to
    ``?error=CredentialsSignin&code=credentials``; raise
    :class:`~asgi_session.errors.CredentialsSignin` from ``authorize`` to give another
    code.

    Failed sign-ins are rate limited per client address and per identifier: the field
    ``identifier_field`` names (by default ``email``, else ``username``, else the first
    field), compared without regard to case or Unicode spelling.
    """

    type: ClassVar[ProviderType] = "credentials"
    posts_to_callback: ClassVar[bool] = True

    def __init__(
        self,
        *,
        authorize: Authorize,
        fields: Mapping[str, Mapping[str, str]] | None = None,
        id: str = "credentials",
        name: str = "Credentials",
        identifier_field: str | None = None,
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
        if identifier_field is None:
            identifier_field = next(
                (name for name in ("email", "username") if name in self.fields),
                next(iter(self.fields)),
            )
        elif identifier_field not in self.fields:
            raise ConfigurationError(
                f"Credentials(identifier_field={identifier_field!r}) must be one of the "
                f"fields: {', '.join(map(repr, self.fields))}"
            )
        #: The field that names the account, for the per-identifier rate limit.
        self.identifier_field = identifier_field

    @property
    def form_fields(self) -> Mapping[str, Mapping[str, str]]:
        return self.fields

    def rate_limit_identifier(self, request: ProviderRequest) -> str | None:
        """The submitted identifier, in NFKC and case folded: ``Ada@Example.com`` and
        ``ada@example.com`` are one account to count, however ``authorize`` compares."""
        value = request.field(self.identifier_field)
        if not value:
            return None
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
        return folded.strip() or None

    async def authenticate(self, request: ProviderRequest) -> Identity:
        """``POST /callback/<id>`` (CSRF already checked): ask ``authorize``."""
        credentials = {name: request.field(name) or "" for name in self.fields}
        try:
            result = self.authorize(credentials, request.request)
            user = await result if inspect.isawaitable(result) else result
        except SignInError:
            raise  # the app's own refusal: CredentialsSignin with its code, AccessDenied...
        except Exception as exc:
            logger.exception("the %s provider's authorize function failed", self.id)
            raise SignInError("Configuration", page="error") from exc
        if not user:
            raise CredentialsSignin()
        fields = as_mapping(user)
        app_id = fields.get("id")
        return Identity(
            provider=self.id,
            type="credentials",
            account_id="" if app_id is None else str(app_id),
            user=fields,
            credentials=credentials,
            callback_url=request.field("callbackUrl"),
        )
