"""MkDocs hooks: pages whose content is generated from the code, so it cannot drift.

``<!-- configuration-reference -->`` in a page becomes the table of every ``AuthConfig``
option (its type, default, environment variable and description), read from the
signature, ``ENVIRONMENT_VARIABLES`` and the class docstring. An option without a
description fails the build.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

MARKER = "<!-- configuration-reference -->"
RENAMED_MARKER = "<!-- renamed-names -->"
_BULLET = re.compile(r"^    - ((?:``\w+``(?:, )?)+): ?(.*)$")


class UndocumentedOption(Exception):
    """An ``AuthConfig`` option the class docstring does not describe."""


def option_descriptions() -> dict[str, str]:
    """Each option's description from ``AuthConfig``'s docstring (``- ``name``: text``)."""
    from asgi_session import AuthConfig

    found: dict[str, str] = {}
    current: list[str] = []
    for line in (AuthConfig.__doc__ or "").splitlines():
        bullet = _BULLET.match(line)
        if bullet:
            current = re.findall(r"``(\w+)``", bullet.group(1))
            for name in current:
                found[name] = bullet.group(2).strip()
        elif current and line.startswith("      ") and line.strip():
            for name in current:
                found[name] += " " + line.strip()
        else:
            current = []
    return found


def _default(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return "required"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        kind = type(value)
        if value == kind():
            return f"`{kind.__name__}()`"
    if isinstance(value, int) and not isinstance(value, bool) and value % 3600 == 0 and value:
        days, hours = divmod(value // 3600, 24)
        span = f"{days} day{'s' * (days != 1)}" if not hours else f"{value // 3600} hours"
        return f"`{value}` ({span})"
    if callable(value):
        return f"`{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', value)}`"
    if value == ():
        return "`[]`"
    return f"`{value!r}`"


def _spelled_out(annotation: str) -> str:
    """A type alias of the configuration module written out (``StrategyOption`` says little)."""
    import typing

    from asgi_session import _config

    alias = getattr(_config, annotation, None)
    if alias is None or isinstance(alias, type) or not typing.get_args(alias):
        return annotation
    parts: list[str] = []
    for arg in typing.get_args(alias):
        if typing.get_origin(arg) is typing.Literal:
            parts.extend(f'"{value}"' for value in typing.get_args(arg))
        elif arg is type(None):
            parts.append("None")
        else:
            parts.append(getattr(arg, "__name__", str(arg)))
    return " | ".join(parts)


def _rst_to_markdown(text: str) -> str:
    text = re.sub(r":(?:class|func|meth|attr|exc):`~?(?:[\w.]+\.)?(\w+)`", r"`\1`", text)
    return text.replace("``", "`")


def configuration_reference() -> str:
    """The Markdown table of every ``AuthConfig`` option."""
    from asgi_session import AuthConfig
    from asgi_session._config import ENVIRONMENT_VARIABLES

    described = option_descriptions()
    parameters = [
        parameter
        for parameter in inspect.signature(AuthConfig.__init__).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    missing = [parameter.name for parameter in parameters if parameter.name not in described]
    if missing:
        raise UndocumentedOption(
            f"AuthConfig's docstring describes no {', '.join(missing)}: add a "
            "'- ``name``: ...' line for each to the Arguments list"
        )
    rows = ["| option | type | default | environment | meaning |", "|---|---|---|---|---|"]
    for parameter in parameters:
        variables = ENVIRONMENT_VARIABLES.get(parameter.name, ())
        environment = ", ".join(f"`{name}`" for name in variables) or "—"
        # A pipe inside a code span does not split a table cell.
        annotation = _spelled_out(str(parameter.annotation))
        rows.append(
            f"| `{parameter.name}` | `{annotation}` | {_default(parameter.default)} "
            f"| {environment} | {_rst_to_markdown(described[parameter.name])} |"
        )
    return "\n".join(rows)


def renamed_names() -> str:
    """The table of names earlier releases exported, from the map that keeps them working."""
    from asgi_session._deprecated import RENAMED

    rows = ["| earlier | now |", "|---|---|"]
    for (module, name), (home, new) in RENAMED.items():
        rows.append(f"| `{module}.{name}` | [`{home}.{new}`][{home}.{new}] |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, configuration_reference())
    if RENAMED_MARKER in markdown:
        markdown = markdown.replace(RENAMED_MARKER, renamed_names())
    return markdown
