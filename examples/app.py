"""A small Starlette app that signs users in with asgi-session.

Run it with::

    pip install -e ".[examples]"
    python examples/app.py            # http://127.0.0.1:8000

then sign in as the demo user:

- email: ``demo@example.com``
- password: ``demo-password``

or create an account of your own (``/auth/signup``), confirm its address, forget its
password and reset it, or ask for a sign-in link for any address: instead of emailing
them, the app prints every link on the console. Signed in, ``/auth/account/security``
sets up two-factor sign-in with an authenticator app, and passkeys when the app is
served at a host name (``--host localhost``: browsers bind passkeys to names, never to
IP addresses). GitHub and Google buttons appear when
``AUTH_GITHUB_ID`` / ``AUTH_GITHUB_SECRET`` (``AUTH_GOOGLE_ID`` / ``AUTH_GOOGLE_SECRET``)
are set.

Options: ``--host`` and ``--port`` (or the ``HOST`` and ``PORT`` environment variables),
and ``--database`` (or ``DATABASE``):

- ``memory`` (the default): sessions are JWTs in an encrypted cookie, so no database is
  needed (users, password hashes and the single-use link tokens are kept in memory, and
  go when it stops).
- ``sqlite``: everything is kept in a SQLite file, ``./auth.db`` (``--database-url``
  names another database, any URL :class:`~asgi_session.backends.sql.SQLAdapter`
  takes), and sessions are rows of its ``session`` table (``strategy="database"``): the
  cookie holds only the session's token. The tables are created at start-up when
  missing, the rate limits count in the same database, and sessions, users and accounts
  outlast a restart. It needs the ``sql`` extra::

      pip install -e ".[examples,sql]"
      python examples/app.py --database sqlite

Set ``AUTH_SECRET`` (``python -m asgi_session secret`` makes one) to keep sessions across
restarts; without it a random secret is made at start-up and a warning says so. (With
``--database sqlite`` sessions outlast a restart even without it, but the links mailed
before the restart and the authenticator apps set up do not: they depend on the secret.)

Pages:

- ``/``: whether you are signed in, and the session if you are.
- ``/protected``: only for signed-in users; others are sent to sign in, then back.
- ``/auth/signin``, ``/auth/signout``, ``/auth/session``, ``/auth/signup``,
  ``/auth/password/forgot``, ``/auth/password/change``, ``/auth/account/security``,
  ``/auth/mfa``: served by asgi-session.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from asgi_session import AuthConfig, AuthMiddleware, Session, requires_session
from asgi_session.backends import Adapter, MemoryAdapter
from asgi_session.errors import ConfigurationError
from asgi_session.passwords import PasswordHasher
from asgi_session.providers import Email, GitHub, Google, Passkey, Password, Provider

if TYPE_CHECKING:
    from asgi_session.backends.sql import SQLAdapter

logger = logging.getLogger("asgi_session.example")

DEMO_EMAIL = "demo@example.com"
# A documented demo account, shown on the home page: not a secret.
DEMO_PASSWORD = "demo-password"
DEMO_USER: Mapping[str, str] = {"name": "Demo User", "email": DEMO_EMAIL}

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DATABASES = ("memory", "sqlite")
# A file in the directory the app is started from.
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///auth.db"


# -- sign-in providers -----------------------------------------------------------------


async def add_demo_user(adapter: Adapter, hasher: PasswordHasher) -> None:
    """Store the demo user with its password, as a sign-up would."""
    if await adapter.get_user_by_email(DEMO_EMAIL) is not None:
        return
    user = await adapter.create_user({**DEMO_USER, "email_verified": datetime.now(UTC)})
    await adapter.link_account(
        {
            "user_id": user.id,
            "type": "credentials",
            "provider": "password",
            "provider_account_id": user.id,
            "password": await hasher.hash_async(DEMO_PASSWORD),
        }
    )


def print_email(to: str, subject: str, text: str, url: str, request: Request) -> None:
    """Stand in for a mailer: show the email's link on the console."""
    print(f"Email to {to} ({subject}): {url}", flush=True)


def print_sign_in_link(identifier: str, url: str, request: Request) -> None:
    """Stand in for a mailer: show the magic link on the console."""
    print(f"Sign-in link for {identifier}: {url}", flush=True)


def providers(url: str | None = None) -> list[Provider]:
    """The sign-in providers; each gets its own form or button on the sign-in page.

    GitHub and Google appear when their credentials are in the environment
    (``AUTH_GITHUB_ID`` and ``AUTH_GITHUB_SECRET``, ``AUTH_GOOGLE_ID`` and
    ``AUTH_GOOGLE_SECRET``); register ``http://127.0.0.1:8000/auth/callback/github``
    (or ``/google``) as the callback URL with them. Passkeys appear when the app's
    ``url`` names a host rather than an IP address.
    """
    found: list[Provider] = [Password(send=print_email)]
    if url is not None and _is_host_name(url):
        found.append(Passkey())
    if os.environ.get("AUTH_GITHUB_ID") and os.environ.get("AUTH_GITHUB_SECRET"):
        found.append(GitHub())
    if os.environ.get("AUTH_GOOGLE_ID") and os.environ.get("AUTH_GOOGLE_SECRET"):
        found.append(Google())
    found.append(Email(send=print_sign_in_link, name="a sign-in link"))
    return found


def _is_host_name(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(host)
    return False


# -- pages --------------------------------------------------------------------------------

_STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f5f7;
color:#1f2328;line-height:1.5}
header{background:#24292f;color:#fff}
header .bar{max-width:46rem;margin:0 auto;padding:.9rem 1.2rem;display:flex;gap:1.2rem;
align-items:center}
header a{color:#fff;text-decoration:none}header .brand{font-weight:600;margin-right:auto}
main{max-width:46rem;margin:2rem auto;padding:0 1.2rem}
.card{background:#fff;border-radius:10px;box-shadow:0 2px 10px rgba(0,0,0,.08);
padding:1.5rem 1.8rem;margin-bottom:1.2rem}
h1{font-size:1.5rem;margin:0 0 .8rem}h2{font-size:1.1rem;margin:0 0 .6rem}
.status{display:inline-block;border-radius:999px;padding:.15rem .7rem;font-size:.85rem;
font-weight:600}
.status.in{background:#dafbe1;color:#116329}.status.out{background:#eaeef2;color:#57606a}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:1rem 0}
dt{color:#57606a}dd{margin:0}
pre{background:#f6f8fa;border-radius:6px;padding:.9rem;overflow-x:auto;font-size:.85rem;margin:0}
code{background:#f6f8fa;border-radius:4px;padding:.1rem .3rem}
.button{display:inline-block;background:#24292f;color:#fff;text-decoration:none;
border-radius:6px;padding:.5rem 1rem;margin-right:.5rem}
.button.light{background:#eaeef2;color:#1f2328}
"""


class _Site:
    """The app's own pages; they link to the auth routes under ``base_path``."""

    def __init__(self, base_path: str) -> None:
        self.base_path = base_path

    def _auth_link(self, request: Request, action: str, back_to: str) -> str:
        root = request.scope.get("root_path", "")
        return f"{root}{self.base_path}/{action}?{urlencode({'callbackUrl': root + back_to})}"

    def _document(self, request: Request, title: str, body: str) -> HTMLResponse:
        session: Session | None = request.state.session
        root = escape(request.scope.get("root_path", ""))
        if session is None:
            account = f'<a href="{escape(self._auth_link(request, "signin", "/"))}">Sign in</a>'
        else:
            account = f'<a href="{escape(self._auth_link(request, "signout", "/"))}">Sign out</a>'
        html = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width,initial-scale=1">'
            f"<title>{escape(title)} · asgi-session example</title><style>{_STYLE}</style>"
            '</head><body><header><nav class=bar aria-label="Site">'
            f'<a class=brand href="{root}/">asgi-session example</a>'
            f'<a href="{root}/protected">Protected page</a>{account}</nav></header>'
            f"<main>{body}</main></body></html>"
        )
        # Pages differ per user: never let a shared cache keep one.
        return HTMLResponse(html, headers={"Cache-Control": "private, no-store"})

    async def home(self, request: Request) -> HTMLResponse:
        session: Session | None = request.state.session
        if session is None:
            sign_in = escape(self._auth_link(request, "signin", "/"))
            body = (
                "<section class=card><h1>Welcome</h1>"
                "<p><span class='status out' data-testid=status>Signed out</span></p>"
                "<p>Sign in to see your session here.</p>"
                f'<p><a class=button href="{sign_in}">Sign in</a></p></section>'
                "<section class=card><h2>Demo account</h2>"
                f"<p>Email <code>{escape(DEMO_EMAIL)}</code>, "
                f"password <code>{escape(DEMO_PASSWORD)}</code>. Or "
                f'<a href="{escape(self._auth_link(request, "signup", "/"))}">create an '
                "account</a>: the links it mails are printed on the console.</p></section>"
            )
        else:
            root = escape(request.scope.get("root_path", ""))
            sign_out = escape(self._auth_link(request, "signout", "/"))
            security = escape(f"{root}{self.base_path}/account/security")
            session_json = escape(json.dumps(session.to_dict(), indent=2))
            body = (
                "<section class=card><h1>Welcome</h1>"
                "<p><span class='status in' data-testid=status>Signed in</span></p>"
                f"{_session_summary(session)}"
                f'<p><a class=button href="{root}/protected">Protected page</a>'
                f'<a class="button light" href="{security}">Security</a>'
                f'<a class="button light" href="{sign_out}">Sign out</a></p></section>'
                "<section class=card><h2>Session JSON</h2>"
                f"<pre data-testid=session-json>{session_json}</pre>"
                f"<p>The same as <code>GET {escape(self.base_path)}/session</code> returns.</p>"
                "</section>"
            )
        return self._document(request, "Home", body)

    async def protected(self, request: Request) -> HTMLResponse:
        session: Session = request.state.session
        who = session.user.name or session.user.email or "signed-in user"
        body = (
            "<section class=card><h1>Protected page</h1>"
            f"<p>Only signed-in users see this. Hello, <strong data-testid=user-name>"
            f"{escape(who)}</strong>!</p>{_session_summary(session)}</section>"
        )
        return self._document(request, "Protected page", body)


def _session_summary(session: Session) -> str:
    user = session.user
    rows = [("Name", user.name), ("Email", user.email), ("User id", user.id)]
    items = "".join(f"<dt>{label}</dt><dd>{escape(value or '-')}</dd>" for label, value in rows)
    expires = session.expires.astimezone(UTC)
    days = round((expires - datetime.now(UTC)).total_seconds() / 86_400)
    left = f"in {days} day{'' if days == 1 else 's'}"
    items += f"<dt>Expires</dt><dd>{expires:%Y-%m-%d %H:%M} UTC ({left})</dd>"
    return f"<dl>{items}</dl>"


# -- the app ------------------------------------------------------------------------------


def _secret_or_dev_secret(secret: str | None, *, in_database: bool) -> str | None:
    if secret is not None or os.environ.get("AUTH_SECRET"):
        return secret  # AuthConfig reads AUTH_SECRET (and AUTH_SECRET_1..) itself.
    if in_database:
        lost = (
            "the links mailed in this run and the authenticator apps set up in it stop "
            "working when the app restarts (sessions, in the database, are kept)"
        )
    else:
        lost = "every session ends when the app restarts"
    logger.warning(
        f"AUTH_SECRET is not set: using a random secret for this run only, so {lost}. "
        'Set one with `export AUTH_SECRET="$(python -m asgi_session secret)"`.'
    )
    return secrets.token_urlsafe(32)


def sql_adapter(database_url: str) -> SQLAdapter:
    """A :class:`~asgi_session.backends.sql.SQLAdapter` on ``database_url``.

    Imported here: it needs the ``sql`` extra, which the in-memory example does not.
    """
    from asgi_session.backends.sql import SQLAdapter

    return SQLAdapter(database_url)


def create_app(
    secret: str | None = None,
    *,
    url: str | None = None,
    database_url: str | None = None,
    **config_options: Any,
) -> Starlette:
    """Build the example app.

    ``secret`` defaults to ``AUTH_SECRET``, else a random one for this process. ``url`` is
    where the app is served (``AUTH_URL``, else http://127.0.0.1:8000): sign-in links
    point there. ``database_url`` (``sqlite+aiosqlite:///auth.db``, or any URL
    :class:`~asgi_session.backends.sql.SQLAdapter` takes) keeps everything, sessions and
    rate limits included, in that database, its tables created at start-up; without it,
    sessions are JWTs and the rest is kept in memory. ``config_options`` go to
    :class:`~asgi_session.AuthConfig` (``providers`` defaults to :func:`providers`).
    """
    if url is not None or not os.environ.get("AUTH_URL"):
        config_options["url"] = url or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    config_options.setdefault(
        "providers", providers(config_options.get("url") or os.environ.get("AUTH_URL"))
    )
    # An authenticator app as a second factor, for whoever enrols one.
    config_options.setdefault("two_factor", True)
    database = None
    if database_url is not None:
        if "adapter" in config_options:
            raise ConfigurationError("create_app takes an adapter or a database_url, not both")
        # Users, accounts, sessions (the cookie holds only their token) and the
        # single-use email tokens in the database, and the rate limits counted there
        # too, so that every instance of the app on it shares them.
        database = config_options["adapter"] = sql_adapter(database_url)
        config_options.setdefault("strategy", "database")
        config_options.setdefault("rate_limit_store", database.rate_limit_store())
    else:
        # Sessions stay in the cookie (JWT); the users, password hashes and single-use
        # email tokens live in memory, so no database is needed.
        config_options.setdefault("adapter", MemoryAdapter())
        config_options.setdefault("strategy", "jwt")
    in_database = database is not None or config_options["strategy"] == "database"
    config = AuthConfig(
        secret=_secret_or_dev_secret(secret, in_database=in_database), **config_options
    )
    site = _Site(config.base_path)
    routes = [
        Route("/", site.home),
        Route("/protected", requires_session(site.protected)),
    ]
    password = next((p for p in config.providers.values() if isinstance(p, Password)), None)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if database is not None:
            # The tables that are missing (a first start), before anything reads them.
            await database.create_tables()
            logger.info("Users, accounts and sessions are kept in %s", database.engine.url)
        try:
            if password is not None and config.adapter is not None:
                await add_demo_user(config.adapter, password.hasher)
            yield
        finally:
            if database is not None:
                await database.close()

    return Starlette(
        routes=routes,
        middleware=[Middleware(AuthMiddleware, config=config)],
        lifespan=lifespan,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the example app with uvicorn."""
    parser = argparse.ArgumentParser(description="Serve the asgi-session example app.")
    parser.add_argument("--host", default=os.environ.get("HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", DEFAULT_PORT)))
    parser.add_argument(
        "--database",
        choices=DATABASES,
        default=os.environ.get("DATABASE", DATABASES[0]),
        help="memory: JWT sessions, the rest in memory (the default); sqlite: everything "
        "in a SQLite file, sessions included",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help=f"the database of --database sqlite (default {DEFAULT_DATABASE_URL}, in the "
        "current directory)",
    )
    args = parser.parse_args(argv)
    # argparse checks the choices given on the command line, not a default from DATABASE.
    if args.database not in DATABASES:
        parser.error(f"DATABASE={args.database!r} must be one of {', '.join(DATABASES)}")
    database_url = None
    if args.database == "sqlite":
        database_url = args.database_url or DEFAULT_DATABASE_URL
    elif args.database_url is not None:
        parser.error("--database-url is for --database sqlite")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:  %(name)s: %(message)s")
    served_at = f"http://{args.host}:{args.port}"
    try:
        app = create_app(
            url=None if os.environ.get("AUTH_URL") else served_at, database_url=database_url
        )
    except ConfigurationError as exc:
        if database_url is None:
            raise
        parser.error(f"--database {args.database}: {exc}")  # the sql extra, or the URL
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
