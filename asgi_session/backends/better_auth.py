"""Better Auth's sessions: read and written as the ``better-auth`` npm package does.

A Next.js (or any Node) app signed in with Better Auth, and a Python app on the same
site, see one session::

    from asgi_session.backends.better_auth import BetterAuthStrategy

    config = AuthConfig(
        secret=os.environ["BETTER_AUTH_SECRET"],
        strategy=BetterAuthStrategy(client["app"]),  # or SQLAdapter(url, schema="better-auth")
    )

- :class:`BetterAuthStrategy`: Better Auth's signed session cookie, its ``session``
  records, its expiry rules (``backends/_better_auth.py``).
- :class:`CookieCache`: its ``session_data`` cookie cache, in each of its encodings
  (``backends/_better_auth_cookies.py``).
- :class:`MigrationStrategy` and :class:`MigratingAdapter`: moving an Auth.js app to
  Better Auth without signing anyone out (``backends/_migration.py``).
"""

from __future__ import annotations

from asgi_session.backends._better_auth import BetterAuthStrategy
from asgi_session.backends._better_auth_cookies import CookieCache
from asgi_session.backends._migration import MigratingAdapter, MigrationStrategy

__all__ = ["BetterAuthStrategy", "CookieCache", "MigratingAdapter", "MigrationStrategy"]
