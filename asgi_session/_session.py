"""The session object handlers see as ``request.state.session``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from asgi_session.models import SessionRecord


class SessionUpdater(Protocol):
    """What carries out ``session.update()``: the request context it belongs to."""

    async def update_session(self, session: Session, data: Mapping[str, Any]) -> None: ...


#: Why ``session.update()`` fails once nothing can carry the new cookie.
NO_LONGER_UPDATABLE = (
    "this session can no longer be updated: update it in an HTTP handler, before the "
    "response starts (a WebSocket has no response to carry a cookie)"
)


def isoformat(moment: datetime) -> str:
    """Format like JavaScript's ``Date.prototype.toISOString`` (milliseconds, ``Z``)."""
    # %-formatting the fields takes a third less time than isoformat(timespec=...).
    moment = moment.astimezone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond // 1000,
    )


def copy_json(value: Any) -> Any:
    """A copy of JSON-like data, so callers never change what a session shares.

    Dicts and lists are copied all the way down; anything else is kept (strings and
    numbers cannot change). Flat dicts, the common case, cost one C-level copy and a
    scan of their values.
    """
    if type(value) is dict:
        copied = value.copy()
        for key, item in copied.items():
            if type(item) is dict or type(item) is list:
                copied[key] = copy_json(item)
        return copied
    if type(value) is list:
        return [
            copy_json(item) if type(item) is dict or type(item) is list else item for item in value
        ]
    return value


class SessionUser(Mapping[str, Any]):
    """The signed-in user: ``id``, ``name``, ``email``, ``image`` and any field a callback adds.

    Fields read as attributes or keys: ``user.email == user["email"]``. A field holding a
    list or an object reads as a copy: a user may be shared by every request sending the
    same cookie.
    """

    __slots__ = ("_data", "id")

    def __init__(self, data: Mapping[str, Any], *, id: str | None = None) -> None:
        self._data = dict(data)
        user_id = self._data.get("id", id)
        self.id: str | None = None if user_id is None else str(user_id)

    # Each read spelt out, without a helper to call: handlers read these on every request.
    @property
    def name(self) -> str | None:
        value = self._data.get("name")
        if type(value) is dict or type(value) is list:
            return copy_json(value)  # type: ignore[no-any-return]
        return value

    @property
    def email(self) -> str | None:
        value = self._data.get("email")
        if type(value) is dict or type(value) is list:
            return copy_json(value)  # type: ignore[no-any-return]
        return value

    @property
    def image(self) -> str | None:
        value = self._data.get("image")
        if type(value) is dict or type(value) is list:
            return copy_json(value)  # type: ignore[no-any-return]
        return value

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._data[name]
        except KeyError:
            raise AttributeError(name) from None
        if type(value) is dict or type(value) is list:
            return copy_json(value)
        return value

    def __getitem__(self, key: str) -> Any:
        if key == "id" and "id" not in self._data:
            if self.id is None:
                raise KeyError(key)
            return self.id
        value = self._data[key]
        if type(value) is dict or type(value) is list:
            return copy_json(value)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"SessionUser(id={self.id!r}, name={self.name!r}, email={self.email!r})"


def own_user(data: dict[str, Any], user_id: str | None) -> SessionUser:
    """``SessionUser(data, id=user_id)`` for a dict the caller hands over: no copy."""
    user = SessionUser.__new__(SessionUser)
    user._data = data
    found = data.get("id", user_id)
    user.id = None if found is None else str(found)
    return user


class SessionParts(Protocol):
    """Something that builds a session's user, and its JSON and expiry, when first asked.

    Handlers mostly read the user alone; :meth:`user` need not build the JSON.
    """

    def user(self) -> SessionUser: ...

    def parts(self) -> tuple[dict[str, Any], datetime, SessionUser]: ...


class Session(Mapping[str, Any]):
    """A signed-in session.

    ``session.user`` is a :class:`SessionUser`, ``session.expires`` an aware datetime, and
    :meth:`to_dict` the JSON Auth.js's ``/session`` endpoint returns,
    ``{"user": {...}, "expires": "<ISO 8601>"}``, plus whatever the ``session`` callback
    added. Other top-level fields read as keys: ``session["role"]``. A session is
    read-only; :meth:`update` changes it.

    Example::

        async def profile(request):
            session = request.state.session
            if session is None:
                return RedirectResponse("/auth/signin")
            await session.update({"theme": "dark"})   # re-issues the cookie
            return JSONResponse({"hello": session.user.name})
    """

    __slots__ = ("_parts", "_source", "_updater", "claims", "record")

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        expires: datetime,
        user_id: str | None = None,
        claims: Mapping[str, Any] | None = None,
        record: SessionRecord | None = None,
        updater: SessionUpdater | None = None,
    ) -> None:
        self._parts: tuple[dict[str, Any], datetime, SessionUser] | None = _shape(
            data, expires, isoformat(expires), user_id
        )
        self._source: SessionParts | None = None
        #: The decrypted JWT claims (JWT strategy), or data stored with the session.
        self.claims: Mapping[str, Any] | None = (
            None if claims is None else MappingProxyType(dict(claims))
        )
        #: The stored :class:`~asgi_session.models.SessionRecord` (database strategy).
        self.record: SessionRecord | None = record
        self._updater = updater

    def _get(self) -> tuple[dict[str, Any], datetime, SessionUser]:
        parts = self._parts
        if parts is None:
            assert self._source is not None
            parts = self._parts = self._source.parts()
        return parts

    @property
    def user(self) -> SessionUser:
        """The signed-in user."""
        # Nearly every handler reads this, often alone: no JSON is built for it.
        parts = self._parts
        if parts is not None:
            return parts[2]
        assert self._source is not None
        return self._source.user()

    @property
    def expires(self) -> datetime:
        """When the session ends unless it is used again (aware, UTC)."""
        return self._get()[1]

    def to_dict(self) -> dict[str, Any]:
        """The session's JSON form, as Auth.js's ``GET /session`` returns it."""
        copied: dict[str, Any] = copy_json(self._get()[0])
        return copied

    @property
    def auth_time(self) -> float | None:
        """When the user last proved who they are (seconds since the epoch): the sign-in
        that started this session. ``None`` when unknown (a token issued elsewhere)."""
        record = self.record
        if record is not None:
            # Every sign-in starts a new stored session: its creation is the sign-in.
            created = record.created_at
            return None if created is None else created.timestamp()
        claims = self.claims
        value = None if claims is None else claims.get("auth_time")
        if type(value) is int or type(value) is float:
            return float(value)
        return None

    def is_fresh(self, max_age: float, now: float) -> bool:
        """Whether the user proved who they are at most ``max_age`` seconds before ``now``."""
        auth_time = self.auth_time
        return auth_time is not None and now - auth_time <= max_age

    async def update(self, data: Mapping[str, Any]) -> None:
        """Change the session from a handler; the response carries the new cookie.

        Runs the ``jwt`` callback with ``trigger="update"`` (JWT strategy) or the
        ``session`` callback with ``trigger="update"`` (database strategy), like a client
        calling Auth.js's ``update()``. Must be awaited before the response starts.
        """
        if self._updater is None:
            raise RuntimeError(NO_LONGER_UPDATABLE)
        await self._updater.update_session(self, data)

    def __getitem__(self, key: str) -> Any:
        return copy_json(self._get()[0][key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._get()[0])

    def __len__(self) -> int:
        return len(self._get()[0])

    def __repr__(self) -> str:
        return f"Session(user={self.user!r}, expires={isoformat(self.expires)!r})"


def _shape(
    data: Mapping[str, Any], expires: datetime, expires_text: str, user_id: str | None
) -> tuple[dict[str, Any], datetime, SessionUser]:
    """A session's parts from its JSON: copied, so nobody else can change them."""
    copied: dict[str, Any] = copy_json(data if type(data) is dict else dict(data))
    copied["expires"] = expires_text
    user = copied.get("user")
    if type(user) is dict:
        # The copy's own: the user and the JSON may share it, neither changes it.
        return copied, expires, own_user(user, user_id)
    return copied, expires, SessionUser(user if isinstance(user, Mapping) else {}, id=user_id)


def shaped_session(
    data: Mapping[str, Any],
    *,
    expires: datetime,
    expires_text: str,
    user_id: str | None,
    claims: Mapping[str, Any],
    updater: SessionUpdater,
) -> Session:
    """``Session(data, expires=..., ...)`` for what a ``session`` callback returned.

    ``expires_text`` is ``isoformat(expires)``, worked out once per token rather than
    per request; ``claims`` must already be read-only (it is kept, not copied). Only the
    JSON and its user are copied (the callback might keep them): the session copies
    anything deeper when it is read.
    """
    # Enough where nothing deeper can be shared: every read of a list or an object in a
    # session (session["x"], to_dict(), session.user.x) returns a copy.
    copied = dict(data)
    copied["expires"] = expires_text
    user = copied.get("user")
    if type(user) is dict:
        user = copied["user"] = user.copy()
        shaped_user = own_user(user, user_id)
    else:
        shaped_user = SessionUser(user if isinstance(user, Mapping) else {}, id=user_id)
    session = Session.__new__(Session)
    session._parts = (copied, expires, shaped_user)
    session._source = None
    session.claims = claims
    session.record = None
    session._updater = updater
    return session


def lazy_session(
    source: SessionParts,
    claims: Mapping[str, Any] | None,
    updater: SessionUpdater | None,
) -> Session:
    """A session whose parts ``source`` builds on first use (and shares, read-only).

    Most requests never look at the session's JSON or expiry; they cost nothing.
    ``claims`` must already be read-only (it is kept, not copied).
    """
    session = Session.__new__(Session)
    session._parts = None
    session._source = source
    session.claims = claims
    session.record = None
    session._updater = updater
    return session


def replace_contents(session: Session, other: Session) -> None:
    """Make ``session`` show what ``other`` holds, keeping its link to the request.

    The request context calls this when a session changes under a handler that holds
    it (``session.update()``, "sign out everywhere else"): the handler sees the change.
    """
    session._parts = other._get()
    session._source = None
    session.claims = other.claims
    session.record = other.record
