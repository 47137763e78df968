"""The Python service on the Next.js app's MongoDB: database sessions either app can read."""

import os
from typing import Any

from fastapi import FastAPI
from pymongo import AsyncMongoClient

from asgi_session import AuthConfig, AuthMiddleware
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.fastapi import RequiredSession
from asgi_session.providers import GitHub

# The same MONGODB_URL, database name included, as the Next.js app's.
database = AsyncMongoClient[dict[str, Any]](os.environ["MONGODB_URL"]).get_default_database()
cookie_domain = os.environ.get("AUTH_COOKIE_DOMAIN")

config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ.get("AUTH_URL", "https://api.example.com"),
    adapter=MongoDBAdapter(database),  # database sessions, as the Next.js app's
    cookies={"session_token": {"domain": cookie_domain}} if cookie_domain else None,
    providers=[GitHub()],  # AUTH_GITHUB_ID and AUTH_GITHUB_SECRET, as in the Next.js app
)

app = FastAPI()
app.add_middleware(AuthMiddleware, config=config)


@app.get("/api/me")
async def me(session: RequiredSession) -> dict[str, Any]:
    return {"id": session.user.id, "name": session.user.name, "email": session.user.email}
