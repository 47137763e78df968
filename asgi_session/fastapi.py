"""FastAPI dependencies for the session.

Example::

    from asgi_session.fastapi import OptionalSession, RequiredSession

    @app.get("/me")
    async def me(session: RequiredSession):
        return {"id": session.user.id, "email": session.user.email}
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from asgi_session._requires import get_session
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


OptionalSession = Annotated[Session | None, Depends(current_session)]
RequiredSession = Annotated[Session, Depends(require_session)]

__all__ = ["OptionalSession", "RequiredSession", "current_session", "require_session"]
