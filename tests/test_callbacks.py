import logging

import pytest

from asgi_session import Callbacks, Events


async def test_callback_gets_only_the_arguments_it_names() -> None:
    callbacks = Callbacks(jwt=lambda token, trigger: {**token, "trigger": trigger})
    result = await callbacks.call("jwt", None, token={"a": 1}, user=None, trigger="signIn")
    assert result == {"a": 1, "trigger": "signIn"}


async def test_async_and_kwargs_callbacks() -> None:
    async def session(**arguments: object) -> object:
        return sorted(arguments)

    callbacks = Callbacks(session=session)
    assert await callbacks.call("session", None, session={}, token={}) == ["session", "token"]


async def test_missing_callback_returns_default() -> None:
    assert await Callbacks().call("jwt", "default", token={}) == "default"
    assert not Callbacks().has("jwt")


def test_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="must be a function"):
        Callbacks(jwt="nope")  # type: ignore[arg-type]


async def test_event_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(user: object) -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="asgi_session"):
        await Events(create_user=broken).emit("create_user", user={})
    assert "create_user event" in caplog.text


async def test_event_runs() -> None:
    seen = []
    await Events(sign_in=lambda user: seen.append(user)).emit(
        "sign_in", user={"id": 1}, account=None
    )
    assert seen == [{"id": 1}]
