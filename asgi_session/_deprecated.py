"""Names of earlier releases, kept working for one release with a ``DeprecationWarning``."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from typing import Any

#: Old name -> (module holding the new one, new name).
RENAMED: Mapping[str, tuple[str, str]] = {
    "MemoryBackend": ("asgi_session.backends", "MemoryAdapter"),
    "MongoDBBackend": ("asgi_session.backends.mongodb", "MongoDBAdapter"),
    "JWTBackend": ("asgi_session.backends", "JWTStrategy"),
    "DatabaseBackend": ("asgi_session.backends", "DatabaseStrategy"),
    "SessionBackend": ("asgi_session.backends", "SessionStrategy"),
}


def renamed(module: str, name: str, available: frozenset[str]) -> Any:
    """The new object for an old ``name`` looked up on ``module``, with a warning.

    ``available`` lists the old names that ``module`` used to export; anything else is
    an ``AttributeError``, as for any module.
    """
    if name not in available:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    home, new = RENAMED[name]
    warnings.warn(
        f"{module}.{name} is deprecated; use {home}.{new}",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(importlib.import_module(home), new)
