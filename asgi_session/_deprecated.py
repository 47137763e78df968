"""Names of earlier releases, kept working for one release with a ``DeprecationWarning``."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping
from typing import Any

_BACKENDS = "asgi_session.backends"

#: (module that exported it, old name) -> (module holding the new one, new name).
RENAMED: Mapping[tuple[str, str], tuple[str, str]] = {
    ("asgi_session", "JWTBackend"): (_BACKENDS, "JWTStrategy"),
    (_BACKENDS, "JWTBackend"): (_BACKENDS, "JWTStrategy"),
    (_BACKENDS, "DatabaseBackend"): (_BACKENDS, "DatabaseStrategy"),
    (_BACKENDS, "SessionBackend"): (_BACKENDS, "SessionStrategy"),
    (_BACKENDS, "MemoryBackend"): (_BACKENDS, "MemoryAdapter"),
    (_BACKENDS, "MongoDBBackend"): (_BACKENDS + ".mongodb", "MongoDBAdapter"),
    (_BACKENDS + ".mongodb", "MongoDBBackend"): (_BACKENDS + ".mongodb", "MongoDBAdapter"),
}


def renamed(module: str, name: str) -> Any:
    """The new object for an old ``name`` looked up on ``module``, with a warning.

    For a module's ``__getattr__``: any name ``module`` never exported is an
    ``AttributeError``, as for any module.
    """
    found = RENAMED.get((module, name))
    if found is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    home, new = found
    warnings.warn(
        f"{module}.{name} is deprecated; use {home}.{new}",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(importlib.import_module(home), new)
