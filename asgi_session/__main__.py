"""Command line: ``python -m asgi_session secret`` prints a new random secret."""

from __future__ import annotations

import argparse
import base64
import secrets
import sys


def new_secret() -> str:
    """32 random bytes, base64: a value for ``AUTH_SECRET``."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asgi_session")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("secret", help="print a new random secret for AUTH_SECRET")
    parser.parse_args(argv)
    sys.stdout.write(new_secret() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
