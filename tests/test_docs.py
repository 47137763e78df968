"""The documentation site's own guarantees: generated reference, runnable samples, no drift.

The site is built by ``make docs`` (``mkdocs build --strict``); these tests pin what the
build relies on: the configuration table comes from ``AuthConfig`` itself, every Python block
on a page is a sample file the suite runs, and every public module has a reference page.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from asgi_session import AuthConfig
from asgi_session._config import ENVIRONMENT_VARIABLES
from tests.support.docs import DOCS, ROOT, SAMPLES, load_docs_module, load_sample
from tests.test_public_api import PUBLIC

hooks = load_docs_module("hooks.py")
roles = load_docs_module("griffe_roles.py")

PAGES = sorted(DOCS.rglob("*.md"))
_FENCE = re.compile(r"^([ \t]*)```(\w*)[^\n]*\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
_INCLUDE = re.compile(r'^\s*--8<-- "([^"]+)"\s*$')
_SNIPPET_PATHS = (SAMPLES, ROOT / "examples", ROOT / "tests" / "support")


def _options() -> list[inspect.Parameter]:
    return [
        parameter
        for parameter in inspect.signature(AuthConfig.__init__).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def _fences(page: Path) -> list[tuple[str, str]]:
    return [(match.group(2), match.group(3)) for match in _FENCE.finditer(page.read_text())]


def _included(page: Path) -> list[str]:
    names = []
    for _, body in _fences(page):
        for line in body.splitlines():
            include = _INCLUDE.match(line)
            if include:
                names.append(include.group(1).split(":", 1)[0])
    return names


# -- the configuration reference --------------------------------------------------------


def test_the_configuration_table_has_a_row_for_every_option() -> None:
    table = hooks.configuration_reference()
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines()[2:]}
    assert list(rows) == [parameter.name for parameter in _options()]
    assert "`AUTH_URL`" in rows["url"] and "`AUTH_TRUST_HOST`" in rows["trust_host"]
    assert all(f"`{name}`" in rows["secret"] for name in ENVIRONMENT_VARIABLES["secret"])
    assert "`2592000` (30 days)" in rows["max_age"]
    assert "`86400` (1 day)" in rows["update_age"]
    assert "`RateLimits()`" in rows["rate_limits"]
    assert '`"jwt" | "database" | SessionStrategy | None`' in rows["strategy"]
    assert "`bool`" in rows["bearer_tokens"] and "`False`" in rows["bearer_tokens"]
    # A description from the docstring, with its reST turned into Markdown.
    assert "`POST /auth/token`" in rows["bearer_tokens"] and "``" not in table


def test_the_environment_variables_listed_are_the_ones_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AUTH_SECRET", "AUTH_SECRET_1", "AUTH_SECRET_2", "AUTH_SECRET_3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENVIRONMENT_VARIABLES["secret"][-1], "s" * 32)
    monkeypatch.setenv(ENVIRONMENT_VARIABLES["url"][0], "https://app.example.com/auth")
    monkeypatch.setenv(ENVIRONMENT_VARIABLES["trust_host"][0], "true")
    config = AuthConfig()
    assert config.secrets == ("s" * 32,)
    assert config.url == "https://app.example.com" and config.trust_host is True


def test_an_option_the_docstring_does_not_describe_fails_the_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = AuthConfig.__doc__ or ""
    assert "- ``fresh_age``:" in doc
    monkeypatch.setattr(AuthConfig, "__doc__", doc.replace("- ``fresh_age``:", "- fresh age:"))
    with pytest.raises(hooks.UndocumentedOption, match="fresh_age"):
        hooks.configuration_reference()


def test_the_configuration_page_asks_for_the_generated_table() -> None:
    page = DOCS / "reference" / "configuration.md"
    assert hooks.MARKER in page.read_text()
    built = hooks.on_page_markdown(page.read_text())
    assert hooks.MARKER not in built and "| `two_factor` |" in built


def test_the_renamed_names_table_lists_every_name_kept_working() -> None:
    from asgi_session._deprecated import RENAMED

    table = hooks.renamed_names()
    assert len(table.splitlines()) == 2 + len(RENAMED)
    new = "asgi_session.backends.mongodb.MongoDBAdapter"
    assert f"| `asgi_session.backends.MongoDBBackend` | [`{new}`][{new}] |" in table
    page = (DOCS / "reference" / "configuration.md").read_text()
    assert hooks.RENAMED_MARKER in page
    assert hooks.RENAMED_MARKER not in hooks.on_page_markdown(page)


def test_the_configuration_sample_builds_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_SECRET", "x" * 32)
    config = load_sample("reference_configuration.py").config
    default = AuthConfig(secret="x" * 32)
    for name in ("base_path", "max_age", "update_age", "rate_limits", "bearer_tokens"):
        assert getattr(config, name) == getattr(default, name), name
    assert config.fresh_age == default.fresh_age


# -- docstrings rendered as Markdown -----------------------------------------------------


def test_roles_naming_public_objects_become_cross_references() -> None:
    text = roles.markdown(
        "See :class:`~asgi_session.backends.mongodb.MongoDBAdapter`, "
        ":func:`asgi_session.requires_session`, :class:`~asgi_session._signin.Flow` "
        "and :meth:`load`."
    )
    assert text == (
        "See [`MongoDBAdapter`][asgi_session.backends.mongodb.MongoDBAdapter], "
        "[`asgi_session.requires_session`][asgi_session.requires_session], `Flow` and `load`."
    )


def test_literal_blocks_and_tables_stay_readable() -> None:
    text = roles.markdown("Example::\n\n    code()\n\n====  ====\na     ``b``\n====  ====\n")
    assert text.splitlines() == [
        "Example:",
        "",
        "    code()",
        "",
        "```text",
        "====  ====",
        "a     b",
        "====  ====",
        "```",
    ]


# -- pages and samples -------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(DOCS)))
def test_python_on_a_page_is_a_sample_the_suite_runs(page: Path) -> None:
    for language, body in _fences(page):
        if language not in ("python", "py", "pycon"):
            continue
        lines = [line for line in body.splitlines() if line.strip()]
        assert lines and all(_INCLUDE.match(line) for line in lines), (
            f"{page.relative_to(ROOT)} has Python typed into the page; put it in a file in "
            f"docs/samples and include it with --8<--:\n{body}"
        )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(DOCS)))
def test_every_include_names_a_file(page: Path) -> None:
    for name in _included(page):
        assert any((base / name).is_file() for base in _SNIPPET_PATHS), (
            f"{page.relative_to(ROOT)} includes {name}, which is in none of docs/samples, "
            "examples, tests/support"
        )


def test_every_sample_is_on_a_page_and_run_by_a_test() -> None:
    shown = {name for page in PAGES for name in _included(page)}
    tests = "\n".join(path.read_text() for path in (ROOT / "tests").glob("test_*.py"))
    samples = sorted(path.name for path in SAMPLES.iterdir() if path.is_file())
    assert samples
    assert [name for name in samples if name not in shown] == [], "samples no page shows"
    assert [name for name in samples if f'"{name}"' not in tests] == [], "samples no test runs"


def test_every_public_module_has_a_reference_page() -> None:
    documented = {
        match.group(1)
        for page in (DOCS / "reference" / "api").glob("*.md")
        for match in re.finditer(r"^::: ([\w.]+)", page.read_text(), re.MULTILINE)
    }
    assert sorted(set(PUBLIC) - documented) == []


def test_every_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    assert [page for page in PAGES if str(page.relative_to(DOCS)) not in nav] == []


# -- the routes reference ----------------------------------------------------------------


def test_every_route_the_middleware_dispatches_is_on_the_routes_page() -> None:
    from asgi_session import TwoFactor
    from asgi_session._routes import AuthRoutes
    from asgi_session.backends import MemoryAdapter
    from asgi_session.providers import Passkey, Password

    config = AuthConfig(
        secret="x" * 32,
        url="https://app.example.com",
        adapter=MemoryAdapter(),
        providers=[Password(send=lambda to, subject, text, url, request: None), Passkey()],
        two_factor=TwoFactor(),
        bearer_tokens=True,
    )
    rows = [
        line
        for line in (DOCS / "reference" / "routes.md").read_text().splitlines()
        if line.startswith("| `")
    ]
    routes = AuthRoutes(config)._handlers
    assert len(routes) > 20
    for method, action in routes:
        assert any(f"`{method}`" in row and f"`/auth/{action}" in row for row in rows), (
            f"{method} /auth/{action} is served but not on docs/reference/routes.md"
        )


# -- the README's example ----------------------------------------------------------------


def test_the_readme_shows_the_example_the_suite_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = [body for language, body in _readme_fences(readme) if language == "python"]
    assert blocks == [(SAMPLES / "readme_example.py").read_text()]


def _readme_fences(text: str) -> list[tuple[str, str]]:
    return [(match.group(2), match.group(3)) for match in _FENCE.finditer(text)]


async def test_the_readme_example_signs_in_and_greets(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.apps import client_for, sign_in

    monkeypatch.setenv("AUTH_SECRET", "r" * 32)
    monkeypatch.setenv("DEMO_PASSWORD", "correct horse")
    app = load_sample("readme_example.py").app
    async with client_for(app) as client:
        signed_out = await client.get("/", headers={"accept": "text/html"})
        assert signed_out.status_code == 303
        assert signed_out.headers["location"].startswith("/auth/signin?callbackUrl=")
        refused = await sign_in(client, email="ada@example.com", password="wrong")
        assert "error=CredentialsSignin" in refused.headers["location"]
        assert (await client.get("/", headers={"accept": "text/html"})).status_code == 303
        await sign_in(client, email="ada@example.com", password="correct horse")
        page = await client.get("/")
        assert page.status_code == 200 and page.text == "Hello Ada"
