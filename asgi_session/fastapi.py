"""FastAPI dependencies for the session.

Example::

    from asgi_session.fastapi import FreshSession, OptionalSession, RequiredSession

    @app.get("/me")
    async def me(session: RequiredSession):
        return {"id": session.user.id, "email": session.user.email}

    @app.post("/account/delete")
    async def delete_account(session: FreshSession):   # signed in within fresh_age
        ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from asgi_session._context import request_context
from asgi_session._requires import (
    get_session,
    reauthenticate_redirect,
    session_is_fresh,
    wants_page,
)
from asgi_session._session import Session


def current_session(request: Request) -> Session | None:
    """Dependency: the session, or ``None`` when signed out."""
    return get_session(request)


def require_session(request: Request) -> Session:
    """Dependency: the session; answers ``401`` when signed out."""
    session = get_session(request)
    if session is None:
        raise HTTPException(status_code=401, detail="SessionRequired")
    return session


def require_fresh_session(max_age: float | None = None) -> Callable[[Request], Session]:
    """A dependency: the session, if its user signed in within ``max_age`` seconds
    (``AuthConfig(fresh_age=...)``, 300, by default).

    Signed out: ``401``. Signed in longer ago: browsers asking for a page are sent
    through ``/auth/reauthenticate`` and back (``303``); other clients get ``401`` with
    ``ReauthenticationRequired``.
    """

    def fresh_session(request: Request) -> Session:
        session = require_session(request)
        limit = max_age
        if limit is None:
            ctx = request_context(request.scope)
            limit = ctx.config.fresh_age if ctx is not None else 300
        if not session_is_fresh(request, session, limit):
            if wants_page(request):
                raise HTTPException(
                    status_code=303, headers={"Location": reauthenticate_redirect(request)}
                )
            raise HTTPException(status_code=401, detail="ReauthenticationRequired")
        return session

    return fresh_session


OptionalSession = Annotated[Session | None, Depends(current_session)]
"""A parameter of this type gets the request's session, or ``None`` when signed out."""
RequiredSession = Annotated[Session, Depends(require_session)]
"""A parameter of this type gets the session; a signed-out request gets ``401``."""
FreshSession = Annotated[Session, Depends(require_fresh_session())]
"""Like ``RequiredSession``, and the user must have signed in within ``fresh_age``
seconds (``AuthConfig(fresh_age=300)``): an older session is sent through
``/auth/reauthenticate`` and back when a browser asks for a page, and gets ``401``
``ReauthenticationRequired`` otherwise."""

__all__ = [
    "FreshSession",
    "OptionalSession",
    "RequiredSession",
    "current_session",
    "require_fresh_session",
    "require_session",
]
