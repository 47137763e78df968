"""The session object handlers see as ``request.state.session``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

SessionUpdater = Callable[["Session", Mapping[str, Any]], Awaitable[None]]


def isoformat(moment: datetime) -> str:
    """Format like JavaScript's ``Date.prototype.toISOString`` (milliseconds, ``Z``)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class SessionUser(Mapping[str, Any]):
    """The signed-in user: ``id``, ``name``, ``email``, ``image`` and any field a callback adds.

    Fields read as attributes or keys: ``user.email == user["email"]``.
    """

    __slots__ = ("_data", "id")

    def __init__(self, data: Mapping[str, Any], *, id: str | None = None) -> None:
        self._data = dict(data)
        user_id = self._data.get("id", id)
        self.id: str | None = None if user_id is None else str(user_id)

    @property
    def name(self) -> str | None:
        return self._data.get("name")

    @property
    def email(self) -> str | None:
        return self._data.get("email")

    @property
    def image(self) -> str | None:
        return self._data.get("image")

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> Any:
        if key == "id" and "id" not in self._data:
            if self.id is None:
                raise KeyError(key)
            return self.id
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"SessionUser(id={self.id!r}, name={self.name!r}, email={self.email!r})"


class Session(Mapping[str, Any]):
    """A signed-in session.

    ``session.user`` is a :class:`SessionUser`, ``session.expires`` an aware datetime, and
    :meth:`to_dict` the JSON Auth.js's ``/session`` endpoint returns,
    ``{"user": {...}, "expires": "<ISO 8601>"}``, plus whatever the ``session`` callback
    added. Other top-level fields read as keys: ``session["role"]``.

    Example::

        async def profile(request):
            session = request.state.session
            if session is None:
                return RedirectResponse("/auth/signin")
            await session.update({"theme": "dark"})   # re-issues the cookie
            return JSONResponse({"hello": session.user.name})
    """

    __slots__ = ("_data", "_updater", "claims", "expires", "record", "user")

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        expires: datetime,
        user_id: str | None = None,
        claims: Mapping[str, Any] | None = None,
        record: Any = None,
        updater: SessionUpdater | None = None,
    ) -> None:
        self._data = dict(data)
        self._data["expires"] = isoformat(expires)
        self.expires = expires
        user = self._data.get("user")
        self.user = SessionUser(user if isinstance(user, Mapping) else {}, id=user_id)
        #: The decrypted JWT claims (JWT strategy), else ``None``.
        self.claims: Mapping[str, Any] | None = claims
        #: The stored :class:`~asgi_session.models.SessionRecord` (database strategy).
        self.record = record
        self._updater = updater

    def to_dict(self) -> dict[str, Any]:
        """The session's JSON form, as Auth.js's ``GET /session`` returns it."""
        return dict(self._data)

    async def update(self, data: Mapping[str, Any]) -> None:
        """Change the session from a handler; the response carries the new cookie.

        Runs the ``jwt`` callback with ``trigger="update"`` (JWT strategy) or the
        ``session`` callback with ``trigger="update"`` (database strategy), like a client
        calling Auth.js's ``update()``. Must be awaited before the response starts.
        """
        if self._updater is None:
            raise RuntimeError("this session cannot be updated outside a request")
        await self._updater(self, data)

    def _replace(self, other: Session) -> None:
        self._data = other._data
        self.expires = other.expires
        self.user = other.user
        self.claims = other.claims
        self.record = other.record

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Session(user={self.user!r}, expires={isoformat(self.expires)!r})"
