"""A "where am I signed in" page: every session of the user, each with a button that
ends it, and "sign out everywhere else".

Run it with ``uvicorn sessions_app:app``, sign in from two browsers, and open
http://localhost:8000/account/sessions in one of them.
"""

import os
from html import escape
from typing import Any

from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, requires_session
from asgi_session.backends import MongoDBAdapter
from asgi_session.management import end_all_sessions, list_sessions
from asgi_session.providers import Password


def send_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    print(f"To: {to}\nSubject: {subject}\n\n{text}\n", flush=True)


client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(os.environ["MONGODB_URL"])

# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    url=os.environ.get("AUTH_URL", "http://localhost:8000"),
    adapter=MongoDBAdapter(client.get_default_database("app")),
    strategy="database",  # the default with an adapter: every session is a row
    providers=[Password(send=send_email)],
)
# --8<-- [end:config]

# The buttons post to the built-in routes, with the CSRF token they ask /auth/csrf for.
SCRIPT = """
<script>
for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", async () => {
    const { csrfToken } = await (await fetch("/auth/csrf")).json();
    const body = new URLSearchParams({ csrfToken, id: button.dataset.id || "" });
    await fetch(button.dataset.action, { method: "POST", body });
    location.reload();
  });
}
</script>
"""


@requires_session
async def sessions_page(request: Request) -> Response:
    rows = []
    for info in await list_sessions(request):  # newest first
        seen = info.last_seen_at or info.created_at
        device = escape(info.user_agent or "Unknown device")
        action = (
            "<strong>This device</strong>"
            if info.current
            else f'<button data-action="/auth/sessions/revoke" data-id="{escape(info.id)}">'
            "Sign out</button>"
        )
        rows.append(f"<tr><td>{device}</td><td>{seen:%d %b %Y %H:%M}</td><td>{action}</td></tr>")
    return HTMLResponse(
        "<h1>Where you are signed in</h1>"
        f"<table>{''.join(rows)}</table>"
        '<button data-action="/auth/sessions/revoke-others">Sign out everywhere else</button>'
        + SCRIPT
    )


async def home(request: Request) -> RedirectResponse:
    return RedirectResponse("/account/sessions")


app = Starlette(
    routes=[Route("/", home), Route("/account/sessions", sessions_page)],
    middleware=[Middleware(AuthMiddleware, config=config)],
)


# --8<-- [start:admin]
async def lock_account(user_id: str) -> None:
    """An administrator's action (a stolen laptop, a fired employee): every session ends
    at once, on every instance."""
    await end_all_sessions(config, user_id)


# --8<-- [end:admin]
