"""The README's "Write your own adapter", run: its test class, taken from the README as
it is written there, runs :class:`~asgi_session.testing.AdapterContract` against the
example adapter (examples/custom_adapter.py), and the code the README quotes from that
file is in the file."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLE = ROOT / "examples" / "custom_adapter.py"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _python_blocks(section: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("custom_adapter", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _readme_tests() -> dict[str, Any]:
    """What the README's test module defines, its ``from custom_adapter import`` finding
    the example as it would next to the reader's tests."""
    (block,) = [b for b in _python_blocks(_section("Write your own adapter")) if "class Test" in b]
    namespace: dict[str, Any] = {"__name__": __name__}
    sys.modules["custom_adapter"] = _example()
    try:
        exec(compile(block, str(README), "exec"), namespace)
    finally:
        del sys.modules["custom_adapter"]
    return namespace


TestDictAdapter = _readme_tests()["TestDictAdapter"]


def test_the_readme_quotes_the_example_as_it_is() -> None:
    source = EXAMPLE.read_text(encoding="utf-8")
    quoted = [
        b for b in _python_blocks(_section("Write your own adapter")) if "class Test" not in b
    ]

    assert quoted
    for block in quoted:
        assert block in source, f"the README quotes code examples/custom_adapter.py lacks:\n{block}"
