"""Docstrings here are written for reading in an editor (reST roles, ``::`` literal blocks).

This griffe extension turns them into the Markdown mkdocstrings renders: a role naming a
public object becomes a cross-reference (so a renamed object breaks the strict build), one
naming a private or local object becomes code, and a reST table becomes a text block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|exc|mod|data|obj):`(~?)([^`]+)`")
_TABLE_BORDER = re.compile(r"^\s*=+(?: +=+)+\s*$")


def _role(match: re.Match[str]) -> str:
    short, target = match.group(1) == "~", match.group(2)
    shown = target.rsplit(".", 1)[-1] if short else target
    parts = target.split(".")
    if parts[0] == "asgi_session" and not any(part.startswith("_") for part in parts):
        return f"[`{shown}`][{target}]"
    return f"`{shown}`"


def _tables(lines: list[str]) -> list[str]:
    borders = [index for index, line in enumerate(lines) if _TABLE_BORDER.match(line)]
    if len(borders) < 2:
        return lines
    first, last = borders[0], borders[-1]
    # In a text block, reST's ``code`` marks would show as they are typed.
    table = [line.replace("``", "") for line in lines[first : last + 1]]
    return [*lines[:first], "```text", *table, "```", *lines[last + 1 :]]


def markdown(text: str) -> str:
    """The Markdown for one docstring."""
    text = _ROLE.sub(_role, text)
    lines = []
    for line in text.splitlines():
        if line.strip() == "::":
            continue
        lines.append(line[:-1] if line.endswith("::") else line)
    return "\n".join(_tables(lines))


class ReSTRoles(griffe.Extension):
    """Rewrites each docstring once, as the object is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
