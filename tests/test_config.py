"""AuthConfig fails at start-up, with a fix in the message, for anything that cannot work."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

import asgi_session
from asgi_session import AuthConfig, ConfigurationError
from asgi_session.backends import DatabaseStrategy, JWTStrategy, MemoryAdapter
from asgi_session.providers import Credentials


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AUTH_SECRET",
        "AUTH_SECRET_1",
        "AUTH_SECRET_2",
        "AUTH_SECRET_3",
        "AUTH_URL",
        "AUTH_TRUST_HOST",
    ):
        monkeypatch.delenv(name, raising=False)


def test_no_secret_says_how_to_fix_it() -> None:
    with pytest.raises(ConfigurationError, match=r"AUTH_SECRET.*python -m asgi_session secret"):
        AuthConfig()


@pytest.mark.parametrize("secret", ["", [], [""], ["ok", ""]])
def test_empty_secret_is_refused(secret: object) -> None:
    with pytest.raises(ConfigurationError):
        AuthConfig(secret=secret)  # type: ignore[arg-type]


def test_secret_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_SECRET", "from-env")
    monkeypatch.setenv("AUTH_SECRET_1", "older")
    assert AuthConfig().secrets == ("from-env", "older")


def test_secret_list_is_kept_in_order() -> None:
    assert AuthConfig(secret=["new", "old"]).secrets == ("new", "old")


def test_unknown_option_suggests_the_right_one() -> None:
    with pytest.raises(ConfigurationError, match=r"'max_ag'.*did you mean 'max_age'"):
        AuthConfig(secret="s", max_ag=5)


@pytest.mark.parametrize("name", ["exc", "backends"])
def test_only_current_options_are_suggested(name: str) -> None:
    # Neither a local variable of AuthConfig nor the deprecated `backend` spelling.
    options: dict[str, Any] = {name: 5}
    with pytest.raises(ConfigurationError) as raised:
        AuthConfig(secret="s", **options)
    assert "did you mean" not in str(raised.value)


def test_duplicate_provider_ids() -> None:
    authorize = lambda credentials, request: None  # noqa: E731
    with pytest.raises(ConfigurationError, match=r"id=\.\.\."):
        AuthConfig(
            secret="s",
            providers=[Credentials(authorize=authorize), Credentials(authorize=authorize)],
        )


def test_not_a_provider() -> None:
    with pytest.raises(ConfigurationError, match="not a provider"):
        AuthConfig(secret="s", providers=["github"])  # type: ignore[list-item]


def test_credentials_needs_authorize() -> None:
    with pytest.raises(ConfigurationError, match="authorize"):
        Credentials(authorize=None)  # type: ignore[arg-type]


def test_bad_provider_id() -> None:
    with pytest.raises(ConfigurationError, match="provider id"):
        Credentials(authorize=lambda c, r: None, id="Has Spaces")


@pytest.mark.parametrize("base_path", ["auth", "/auth/", "//auth", ""])
def test_bad_base_path(base_path: str) -> None:
    with pytest.raises(ConfigurationError, match="base_path"):
        AuthConfig(secret="s", base_path=base_path)


def test_update_age_beyond_max_age() -> None:
    with pytest.raises(ConfigurationError, match="update_age"):
        AuthConfig(secret="s", max_age=60, update_age=120)


def test_bad_auth_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_URL", "example.com")
    with pytest.raises(ConfigurationError, match="AUTH_URL"):
        AuthConfig(secret="s")


def test_auth_url_decides_secure_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_URL", "https://example.com/api/auth")
    config = AuthConfig(secret="s", base_path="/api/auth")
    assert config.url == "https://example.com"
    assert config.use_secure_cookies is True


def test_trust_host_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_TRUST_HOST", "true")
    assert AuthConfig(secret="s").trust_host is True


def test_database_strategy_needs_a_store() -> None:
    with pytest.raises(ConfigurationError, match="MongoDBAdapter"):
        AuthConfig(secret="s", strategy="database")


def test_unknown_strategy() -> None:
    with pytest.raises(ConfigurationError, match="strategy"):
        AuthConfig(secret="s", strategy="cookie")  # type: ignore[arg-type]


def test_adapter_that_is_nothing_we_know() -> None:
    with pytest.raises(ConfigurationError, match="not an adapter"):
        AuthConfig(secret="s", adapter=object())  # type: ignore[arg-type]


def test_default_is_jwt() -> None:
    config = AuthConfig(secret="s")
    assert config.strategy.name == "jwt"
    assert isinstance(config.strategy, JWTStrategy)
    assert config.adapter is None
    assert config.max_age == 30 * 24 * 3600
    assert config.update_age == 24 * 3600


def test_strategy_names_and_objects() -> None:
    adapter = MemoryAdapter()
    assert isinstance(AuthConfig(secret="s", adapter=adapter).strategy, DatabaseStrategy)
    jwt_config = AuthConfig(secret="s", adapter=adapter, strategy="jwt")
    assert isinstance(jwt_config.strategy, JWTStrategy)
    assert jwt_config.strategy.adapter is adapter
    tuned = JWTStrategy(revocation_check_interval=None)
    config = AuthConfig(secret="s", adapter=adapter, strategy=tuned)
    assert config.strategy is tuned
    assert tuned.adapter is adapter


def test_strategy_with_another_adapter_is_refused() -> None:
    with pytest.warns(DeprecationWarning, match=r"AuthConfig\(adapter=\.\.\.\)"):
        strategy = JWTStrategy(adapter=MemoryAdapter())
    with pytest.raises(ConfigurationError, match="another adapter"):
        AuthConfig(secret="s", adapter=MemoryAdapter(), strategy=strategy)


def test_jwt_strategy_serves_one_config() -> None:
    strategy = JWTStrategy()
    AuthConfig(secret="s", strategy=strategy)
    with pytest.raises(RuntimeError, match="one AuthConfig"):
        AuthConfig(secret="s", strategy=strategy)


# -- the spellings of earlier releases -----------------------------------------------------


def test_backend_option_still_takes_an_adapter_with_a_warning() -> None:
    adapter = MemoryAdapter()
    with pytest.warns(DeprecationWarning, match=r"adapter=MemoryAdapter\(\.\.\.\)"):
        config = AuthConfig(secret="s", backend=adapter)
    assert config.adapter is adapter
    assert isinstance(config.strategy, DatabaseStrategy)
    with pytest.warns(DeprecationWarning, match="AuthConfig.strategy"):
        assert config.backend is config.strategy


def test_backend_option_still_takes_a_strategy_with_a_warning() -> None:
    adapter = MemoryAdapter()
    with pytest.warns(DeprecationWarning, match=r"JWTStrategy\(adapter=\.\.\.\) is deprecated"):
        strategy = JWTStrategy(adapter=adapter, revocation_check_interval=None)
    with pytest.warns(DeprecationWarning, match=r"strategy=JWTStrategy\(\.\.\.\)"):
        config = AuthConfig(secret="s", backend=strategy)
    assert config.strategy is strategy
    assert config.adapter is adapter


def test_backend_option_with_a_strategy_beside_an_adapter() -> None:
    adapter = MemoryAdapter()
    strategy = JWTStrategy()
    with pytest.warns(DeprecationWarning):
        config = AuthConfig(secret="s", adapter=adapter, backend=strategy)
    assert (config.strategy, config.adapter) == (strategy, adapter)
    with pytest.raises(ConfigurationError, match="once"):
        AuthConfig(secret="s", adapter=adapter, backend=MemoryAdapter())


def test_the_strategy_still_compares_with_its_old_string_form() -> None:
    config = AuthConfig(secret="s", adapter=MemoryAdapter())
    with pytest.warns(DeprecationWarning, match=r"AuthConfig\.strategy\.name"):
        assert config.strategy == "database"  # type: ignore[comparison-overlap]
    with pytest.warns(DeprecationWarning, match=r"\.name"):
        assert config.strategy.strategy == "database"  # type: ignore[attr-defined]
    assert config.strategy == config.strategy
    assert config.strategy != JWTStrategy()


def test_backend_option_that_is_nothing_we_know() -> None:
    with pytest.raises(ConfigurationError, match="neither"):
        AuthConfig(secret="s", backend=object())


@pytest.mark.parametrize(
    ("module", "old", "new"),
    [
        ("asgi_session", "JWTBackend", "JWTStrategy"),
        ("asgi_session.backends", "JWTBackend", "JWTStrategy"),
        ("asgi_session.backends", "DatabaseBackend", "DatabaseStrategy"),
        ("asgi_session.backends", "MemoryBackend", "MemoryAdapter"),
        ("asgi_session.backends", "MongoDBBackend", "MongoDBAdapter"),
        ("asgi_session.backends", "SessionBackend", "SessionStrategy"),
        ("asgi_session.backends.mongodb", "MongoDBBackend", "MongoDBAdapter"),
    ],
)
def test_old_names_still_work_with_a_warning(module: str, old: str, new: str) -> None:
    imported = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=f"use asgi_session[.a-z]*[.]{new}"):
        value = getattr(imported, old)
    assert value is getattr(importlib.import_module("asgi_session.backends"), new)


def test_unknown_names_are_still_attribute_errors() -> None:
    with pytest.raises(AttributeError):
        _ = asgi_session.NoSuchThing


def test_bad_cookie_override() -> None:
    with pytest.raises(ConfigurationError, match="cookies="):
        AuthConfig(secret="s", cookies={"session_token": {"colour": "blue"}})


def test_auth_url_path_must_match_base_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_URL", "https://example.com/api/login")
    with pytest.raises(ConfigurationError, match="base_path='/api/login'"):
        AuthConfig(secret="s")
    # An app mounted under /api, with the routes at /auth inside it.
    monkeypatch.setenv("AUTH_URL", "https://example.com/api/auth")
    assert AuthConfig(secret="s").url == "https://example.com"
    assert AuthConfig(secret="s", url="https://example.com/").url == "https://example.com"
