"""Step-up in FastAPI: an endpoint that needs a recent sign-in."""

import os
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from pymongo import AsyncMongoClient

from asgi_session import AuthConfig, AuthMiddleware, TwoFactor
from asgi_session.backends import MongoDBAdapter
from asgi_session.fastapi import FreshSession, RequiredSession
from asgi_session.providers import Password


def send_email(to: str, subject: str, text: str, url: str, request: Any) -> None:
    print(f"To: {to}\nSubject: {subject}\n\n{text}\n", flush=True)


client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ.get("AUTH_URL", "http://localhost:8000"),
    adapter=MongoDBAdapter(client.get_default_database("app")),
    providers=[Password(send=send_email)],
    two_factor=TwoFactor(),
)

app = FastAPI()
app.add_middleware(AuthMiddleware, config=config)


# --8<-- [start:endpoints]
@app.get("/api/me")
async def me(session: RequiredSession) -> dict[str, Any]:  # 401 when signed out
    return {"email": session.user.email, "signedInAt": session.auth_time}


@app.get("/account/delete", response_class=HTMLResponse)
async def confirm_deletion(session: FreshSession) -> str:
    # Signed in more than fresh_age seconds ago? A browser asking for this page goes
    # through /auth/reauthenticate first, then comes back here (303).
    return '<form method="post" action="/api/account/delete"><button>Delete</button></form>'


@app.post("/api/account/delete")
async def delete_account(session: FreshSession) -> dict[str, Any]:
    # Anything but a page (a POST, a fetch) gets 401 {"detail": "ReauthenticationRequired"}.
    return {"deleted": session.user.id}


# --8<-- [end:endpoints]
