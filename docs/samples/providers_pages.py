"""A sign-in page of your own in place of the built-in one."""

import os
import secrets
from html import escape
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, Pages, requires_session
from asgi_session.providers import Credentials

# Stands in for your users table. Real apps store password hashes: see the passwords guide.
USERS = {"ada@example.com": {"id": "1", "name": "Ada", "password": "correct horse"}}


def authorize(credentials: dict[str, str], request: Request) -> dict[str, Any] | None:
    user = USERS.get(credentials["email"])
    if user is None or not secrets.compare_digest(
        user["password"].encode(), credentials["password"].encode()
    ):
        return None
    return {"id": user["id"], "name": user["name"], "email": credentials["email"]}


# --8<-- [start:page]
ERRORS = {"CredentialsSignin": "Wrong email or password."}

# The CSRF token comes from GET /auth/csrf, which also sets its cookie, as next-auth's
# signIn() does it.
FILL_IN_CSRF = """
fetch("/auth/csrf").then((answer) => answer.json()).then(({csrfToken}) => {
  document.querySelector("input[name=csrfToken]").value = csrfToken;
});
"""


async def login(request: Request) -> Response:
    """GET /login?callbackUrl=...&error=...: the form posts to asgi-session's route."""
    error = request.query_params.get("error")
    message = ERRORS.get(error, "Could not sign in.") if error else ""
    # Without it (after a refused attempt), the callback URL kept in a cookie is used.
    callback_url = request.query_params.get("callbackUrl")
    back_to = (
        f'<input type="hidden" name="callbackUrl" value="{escape(callback_url)}">'
        if callback_url
        else ""
    )
    return HTMLResponse(
        f"""<!doctype html><title>Sign in</title><h1>Sign in</h1>
        <p role="alert">{escape(message)}</p>
        <form method="post" action="/auth/callback/credentials">
          <input type="hidden" name="csrfToken">{back_to}
          <label>Email <input name="email" type="email" required></label>
          <label>Password <input name="password" type="password" required></label>
          <button>Sign in</button>
        </form>
        <script>{FILL_IN_CSRF}</script>"""
    )


# --8<-- [end:page]


@requires_session
async def home(request: Request) -> Response:
    return PlainTextResponse(f"Hello {request.state.session.user.name}")


# --8<-- [start:config]
config = AuthConfig(
    secret=os.environ["AUTH_SECRET"],
    providers=[Credentials(authorize=authorize)],
    pages=Pages(sign_in="/login"),  # also where refused sign-ins land, with ?error=
)
# --8<-- [end:config]
app = Starlette(
    routes=[Route("/", home), Route("/login", login)],
    middleware=[Middleware(AuthMiddleware, config=config)],
)
