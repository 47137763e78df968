"""A small GitHub on the loopback interface: authorize, access_token, user, user/emails.

:class:`FakeGitHub` serves, over real HTTP from a thread, the parts of GitHub's OAuth
app flow that sign-in uses, GitHub's quirks included: errors from the
token endpoint come with status 200, the answer is form-encoded unless JSON is asked
for, and a private email appears only in ``/user/emails``. Expiring user tokens with
refresh tokens (GitHub's optional "user-to-server token expiration") are supported.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

from tests.support.oauth import DropConnection, LoopbackServer, Reply, Request


@dataclass
class GitHubUser:
    """A GitHub account: ``email`` is the public one (``None`` when private)."""

    id: int
    login: str
    name: str | None
    email: str | None
    emails: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "login": self.login,
            "name": self.name,
            "email": self.email,
            "avatar_url": f"https://avatars.example.com/u/{self.id}",
        }


@dataclass
class _Grant:
    login: str
    redirect_uri: str
    code_challenge: str | None


class FakeGitHub:
    """GitHub's OAuth endpoints for one OAuth app (``client_id``, ``client_secret``).

    Tests steer it: ``sign_in_as`` is the account the "browser" is signed in with,
    ``deny`` makes the user refuse, ``token_mode`` breaks the token endpoint
    (``"garbage"``, ``"error500"``, ``"drop"``, ``"hang"``: no answer until the server
    closes), ``expires_in`` makes tokens expire
    and come with refresh tokens. ``grants`` counts token requests by grant type.
    """

    def __init__(self, *, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.users: dict[str, GitHubUser] = {}
        self.sign_in_as = ""
        self.deny = False
        self.token_mode = "ok"
        self.expires_in: int | None = None
        self.grants: Counter[str] = Counter()
        #: How the app authenticated at the token endpoint, per request: basic or post.
        self.client_auth: list[str] = []
        self._codes: dict[str, _Grant] = {}
        self._access_tokens: dict[str, str] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.server = LoopbackServer(self.handle)

    def close(self) -> None:
        self._closing.set()
        self.server.close()

    @property
    def url(self) -> str:
        return self.server.url

    def add_user(
        self,
        login: str,
        *,
        id: int,
        name: str | None = None,
        email: str | None = None,
        emails: list[dict[str, Any]] | None = None,
    ) -> GitHubUser:
        if emails is None:
            emails = [{"email": email, "primary": True, "verified": True}] if email else []
        user = GitHubUser(id=id, login=login, name=name, email=email, emails=emails)
        self.users[login] = user
        return user

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self._refresh_tokens.clear()

    def handle(self, request: Request) -> Reply:
        if self.token_mode == "hang" and request.path == "/login/oauth/access_token":
            # A server that accepted the request and never answers; bounded for cleanup.
            self._closing.wait(timeout=30)
            raise DropConnection
        with self._lock:
            if request.path == "/login/oauth/authorize":
                return self._authorize(request)
            if request.path == "/login/oauth/access_token" and request.method == "POST":
                return self._token(request)
            if request.path == "/api/v3/user":
                user = self._bearer_user(request)
                return Reply(body=user.as_json()) if user else _unauthorized()
            if request.path == "/api/v3/user/emails":
                user = self._bearer_user(request)
                return Reply(body=user.emails) if user else _unauthorized()
        return Reply(404, {"message": "Not Found"})

    def _authorize(self, request: Request) -> Reply:
        query = request.query
        if query.get("client_id") != self.client_id or query.get("redirect_uri") != (
            self.redirect_uri
        ):
            return Reply(400, b"The redirect_uri is not associated with this application.")
        state = query.get("state", "")
        if self.deny:
            params = {"error": "access_denied", "error_description": "The user denied access."}
        else:
            code = secrets.token_hex(10)
            challenge = query.get("code_challenge")
            if challenge is not None and query.get("code_challenge_method") != "S256":
                return Reply(400, b"unsupported code_challenge_method")
            self._codes[code] = _Grant(self.sign_in_as, self.redirect_uri, challenge)
            params = {"code": code}
        location = f"{self.redirect_uri}?{urlencode({**params, 'state': state})}"
        return Reply(302, b"", {"Location": location})

    def _client_authenticated(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            decoded = base64.b64decode(header[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
            client_id, client_secret = unquote(client_id), unquote(client_secret)
            self.client_auth.append("basic")
        else:
            self.client_auth.append("post")
            client_id = request.form.get("client_id", "")
            client_secret = request.form.get("client_secret", "")
        return client_id == self.client_id and client_secret == self.client_secret

    def _token(self, request: Request) -> Reply:
        grant_type = request.form.get("grant_type", "authorization_code")
        self.grants[grant_type] += 1
        if self.token_mode == "drop":
            raise DropConnection
        if self.token_mode == "garbage":
            return Reply(
                200, b"<html>Unicorn! We are having trouble</html>", {"Content-Type": "text/html"}
            )
        if self.token_mode == "error500":
            return Reply(500, b"Internal Server Error", {"Content-Type": "text/plain"})
        if not self._client_authenticated(request):
            return self._token_reply(request, {"error": "incorrect_client_credentials"})
        if grant_type == "refresh_token":
            login = self._refresh_tokens.pop(request.form.get("refresh_token", ""), None)
            if login is None:
                return self._token_reply(request, {"error": "bad_refresh_token"})
            return self._token_reply(request, self._issue(login))
        grant = self._codes.pop(request.form.get("code", ""), None)
        if grant is None or request.form.get("redirect_uri") != grant.redirect_uri:
            return self._token_reply(request, {"error": "bad_verification_code"})
        if grant.code_challenge is not None:
            verifier = request.form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.code_challenge:
                return self._token_reply(request, {"error": "bad_verification_code"})
        return self._token_reply(request, self._issue(grant.login))

    def _issue(self, login: str) -> dict[str, Any]:
        access_token = "gho_" + secrets.token_hex(16)
        self._access_tokens[access_token] = login
        tokens: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "bearer",
            "scope": "read:user,user:email",
        }
        if self.expires_in is not None:
            refresh_token = "ghr_" + secrets.token_hex(16)
            self._refresh_tokens[refresh_token] = login
            tokens.update(expires_in=self.expires_in, refresh_token=refresh_token)
        return tokens

    def _token_reply(self, request: Request, data: dict[str, Any]) -> Reply:
        if "application/json" in request.headers.get("accept", ""):
            return Reply(body=data)
        body = urlencode({key: str(value) for key, value in data.items()}).encode()
        return Reply(body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})

    def _bearer_user(self, request: Request) -> GitHubUser | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        login = self._access_tokens.get(token)
        return None if login is None else self.users.get(login)


def _unauthorized() -> Reply:
    return Reply(401, {"message": "Bad credentials"})
