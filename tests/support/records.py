"""Small builders of users, sessions and accounts for the adapter tests: the adapter kit's
own (:mod:`asgi_session.testing`), so our tests and the suite it ships build the same
records."""

from __future__ import annotations

from asgi_session.testing import _MALFORMED_IDS as MALFORMED_IDS
from asgi_session.testing import _account_data as account_data
from asgi_session.testing import _later as later
from asgi_session.testing import _make_session as make_session
from asgi_session.testing import _make_user as make_user

#: A well-formed id that no test stores.
UNKNOWN_ID = "0123456789abcdef01234567"

__all__ = ["MALFORMED_IDS", "UNKNOWN_ID", "account_data", "later", "make_session", "make_user"]
