"""The @auth/core row: Auth.js's own handler answering GET /auth/session, timed in Node.

``authjs_session.mjs`` runs ``Auth(new Request(...), config)`` from the ``@auth/core`` the
tests install (``npm ci`` in ``tests/node``), for a token with the same claims and secret
as the Python rows, and prints its timings as JSON. The report compares them with our
``GET /auth/session`` row.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from fixtures import CLAIMS, SECRET, session_token
from harness import BenchmarkError, Settings

_HERE = Path(__file__).resolve().parent
_NODE_SCRIPT = _HERE / "authjs_session.mjs"
_AUTHJS = _HERE.parent / "tests" / "node" / "node_modules" / "@auth" / "core"


def run_authjs(settings: Settings) -> dict[str, Any]:
    """Time @auth/core's GET /auth/session in node, or say why that was skipped."""
    node = shutil.which("node")
    if node is None:
        return {"skipped": "node is not installed"}
    if not _AUTHJS.is_dir():
        return {"skipped": "@auth/core is not installed (run npm ci in tests/node)"}
    request = {
        "secret": SECRET,
        "token": session_token(),
        "email": CLAIMS["email"],
        "iterations": settings.node_iterations,
        "repeats": settings.node_rounds,
        "warmup": settings.node_warmup,
    }
    completed = subprocess.run(
        [node, "--expose-gc", str(_NODE_SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if completed.returncode != 0:
        raise BenchmarkError(f"authjs_session.mjs failed:\n{completed.stderr}")
    figures: dict[str, Any] = json.loads(completed.stdout)
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    figures["node"] = node_version.stdout.strip()
    return figures
