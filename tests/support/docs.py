"""The documentation's code samples (``docs/samples``), loaded the way a reader runs them.

Each sample is a file a page includes; a test imports it with :func:`load_sample` and
drives what it builds, so a sample that stops working fails the suite.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SAMPLES = DOCS / "samples"

_loaded = itertools.count()


def sample_path(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_file():
        raise FileNotFoundError(f"no sample {name!r} in docs/samples")
    return path


def load_sample(name: str) -> ModuleType:
    """Import ``docs/samples/<name>`` as a new module (a fresh one every call).

    The environment a sample reads (``AUTH_SECRET``, ``MONGODB_URL``, ...) is the test's:
    set it with ``monkeypatch.setenv`` before loading.
    """
    path = sample_path(name)
    module_name = f"docs_sample_{path.stem}_{next(_loaded)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


async def loaded_sample(name: str) -> AsyncIterator[ModuleType]:
    """:func:`load_sample`, then the database client the sample made (its module-level
    ``client``, if any) closed: ``async for module in loaded_sample(name): yield module``
    in a fixture."""
    module = load_sample(name)
    try:
        yield module
    finally:
        client = getattr(module, "client", None)
        if client is not None:
            await client.close()


def mongodb_url_with_database(mongodb_url: str, database: str) -> str:
    """The server's URL naming ``database``, as a reader's ``MONGODB_URL`` would."""
    base, _, query = mongodb_url.partition("?")
    return f"{base.rstrip('/')}/{database}?{query}"


def load_docs_module(name: str) -> ModuleType:
    """Import one of the documentation build's own modules (``docs/hooks.py``, ...)."""
    path = DOCS / name
    spec = importlib.util.spec_from_file_location(f"docs_build_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
