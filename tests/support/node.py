"""Run the JavaScript peers (Auth.js, jose, ...) that tests compare against.

A script in this directory reads one JSON document on stdin and writes one on stdout.
The packages come from ``tests/node/node_modules``; a missing ``node`` binary or
missing packages fail the test with the command that fixes it, never skip it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

SUPPORT_DIR = Path(__file__).resolve().parent
NODE_PROJECT_DIR = SUPPORT_DIR.parent / "node"
NODE_MODULES_DIR = NODE_PROJECT_DIR / "node_modules"

_INSTALL_HINT = "run `npm ci --prefix tests/node` to install the JavaScript test peers"


def node_binary() -> str:
    """Path of ``node``; fails the calling test when Node.js or the packages are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"Node.js is not installed: install Node 20+, then {_INSTALL_HINT}")
    if not NODE_MODULES_DIR.is_dir():
        pytest.fail(f"{NODE_MODULES_DIR} is missing: {_INSTALL_HINT}")
    return node


def run_node_script(script: str, request: Any, *, timeout: float = 60.0) -> Any:
    """Run ``tests/support/<script>`` with ``request`` as JSON on stdin; return its JSON output.

    Scripts load packages with ``createRequire`` pointed at ``tests/node/package.json``
    (bare ``import`` specifiers resolve next to the script, where there are none).
    """
    node = node_binary()
    completed = subprocess.run(
        [node, str(SUPPORT_DIR / script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=NODE_PROJECT_DIR,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(
            f"node {script} exited with {completed.returncode}; {_INSTALL_HINT} if packages "
            f"are missing.\nstderr:\n{completed.stderr}"
        )
    return json.loads(completed.stdout)
