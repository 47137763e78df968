"""A FastAPI app that used fastapi-users, on asgi-session: same users, same passwords."""

import logging
import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from starlette.requests import Request

from asgi_session import AuthConfig, AuthMiddleware, Callbacks, Session
from asgi_session.backends.sql import SQLAdapter
from asgi_session.fastapi import OptionalSession, RequiredSession
from asgi_session.providers import Password

mail = logging.getLogger("mail")

# --8<-- [start:config]
# Next to fastapi-users' own "user" table, which the import leaves alone.
adapter = SQLAdapter(os.environ["DATABASE_URL"], tables={"users": "auth_user"})


async def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    """Verification and reset links: what on_after_register and on_after_forgot_password
    mailed. Stands in for your mailer."""
    mail.info("to %s: %s %s", to, subject, url)


def sign_in(user: dict[str, Any]) -> bool:
    """current_user(active=True): an inactive user does not get in."""
    return bool(user.get("is_active", True))


def session(session: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    session["user"]["id"] = user["id"]
    session["user"]["is_superuser"] = bool(user.get("is_superuser"))
    return session


config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ["AUTH_URL"],  # https://app.example.com: the address mailed links use
    adapter=adapter,  # database sessions, as fastapi-users' DatabaseStrategy
    providers=[Password(send=send_email)],  # /auth/signup, /auth/password/*, ...
    callbacks=Callbacks(sign_in=sign_in, session=session),
    bearer_tokens=True,  # POST /auth/token, for clients of /auth/jwt/login
)
# --8<-- [end:config]

app = FastAPI()
app.add_middleware(AuthMiddleware, config=config)


# --8<-- [start:dependencies]
def superuser(session: RequiredSession) -> Session:
    """current_user(superuser=True)."""
    if not session.user["is_superuser"]:
        raise HTTPException(status_code=403, detail="Forbidden")
    return session


Superuser = Annotated[Session, Depends(superuser)]


@app.get("/users/me")
async def me(session: RequiredSession) -> dict[str, Any]:  # current_user()
    return {"id": session.user.id, "email": session.user.email}


@app.get("/greeting")
async def greeting(session: OptionalSession) -> str:  # current_user(optional=True)
    return f"Hello {session.user.email}" if session else "Hello, stranger"


@app.get("/admin/users/{user_id}")
async def read_user(user_id: str, session: Superuser) -> dict[str, Any]:
    user = await adapter.get_user(user_id)
    if user is None:
        raise HTTPException(status_code=404, detail="Not found")
    return {"id": user.id, "email": user.email, "is_active": user.extra.get("is_active")}


# --8<-- [end:dependencies]
