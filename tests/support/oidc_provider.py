"""A real OpenID provider for the tests.

:class:`OIDCProviderServer` runs ``oidc_provider.mjs`` (the certified ``oidc-provider``
npm package) on a free loopback port with the clients and signing key the tests give
it. :data:`CLIENT` is the app's registration there; its redirect URIs are the app's
callbacks for the provider ids in :data:`CALLBACK_IDS`.
"""

from __future__ import annotations

import json
import select
import subprocess
import tempfile
from typing import Any

import httpx2
import pytest
from joserfc.jwk import RSAKey

from tests.support.node import NODE_PROJECT_DIR, SUPPORT_DIR, node_binary
from tests.support.oauth import APP_ORIGIN

_START_TIMEOUT = 30.0

CLIENT_ID = "asgi-session-tests"
CLIENT_SECRET = "a-client-secret-for-the-tests-0123456789"
#: Provider ids the app may use for the test provider; each has a registered callback.
CALLBACK_IDS = ("corp", "google", "sso", "tampered")
CLIENT: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "redirect_uris": [f"{APP_ORIGIN}/auth/callback/{name}" for name in CALLBACK_IDS],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "client_secret_basic",
}


class OIDCProviderServer:
    """The ``oidc-provider`` process; ``issuer`` is ``http://127.0.0.1:<port>``."""

    def __init__(
        self,
        *,
        clients: list[dict[str, Any]],
        signing_key: RSAKey,
        access_token_ttl: int = 3600,
    ) -> None:
        self.clients = clients
        self.signing_key = signing_key
        self.access_token_ttl = access_token_ttl
        self.issuer = ""
        self._process: subprocess.Popen[str] | None = None
        # Open for the process's whole life; closed by __exit__.
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115

    def start(self) -> None:
        settings = {
            "clients": self.clients,
            "jwks": {"keys": [self.signing_key.as_dict(private=True)]},
            "accessTokenTtl": self.access_token_ttl,
        }
        process = subprocess.Popen(
            [node_binary(), str(SUPPORT_DIR / "oidc_provider.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=NODE_PROJECT_DIR,
        )
        self._process = process
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(settings))
        process.stdin.close()
        ready, _, _ = select.select([process.stdout], [], [], _START_TIMEOUT)
        line = process.stdout.readline() if ready else ""
        if not line:
            self.close()
            pytest.fail(f"oidc_provider.mjs did not start:\n{self.log()}")
        self.issuer = json.loads(line)["issuer"]

    def log(self) -> str:
        """What the provider wrote to stderr so far."""
        self._stderr.seek(0)
        return self._stderr.read()

    def stats(self) -> dict[str, Any]:
        """Grants (by outcome and type) and requests (by path) the provider served."""
        response = httpx2.get(f"{self.issuer}/_test/stats", timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def close(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None

    def __enter__(self) -> OIDCProviderServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        self._stderr.close()
