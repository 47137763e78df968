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


async def test_callbacks_taking_their_arguments_by_position_or_by_keyword() -> None:
    offered = {"session": {"s": 1}, "token": {"t": 2}, "user": None, "trigger": "update"}

    def positional(session: object, token: object) -> object:
        return ("positional", session, token)

    def reordered(token: object, session: object) -> object:
        return ("reordered", session, token)

    def keyword_only(*, trigger: object, session: object) -> object:
        return ("keyword_only", session, trigger)

    def with_default(session: object, new_session: object = "default") -> object:
        return ("with_default", session, new_session)

    def one(token: object) -> object:
        return ("one", token)

    def nothing() -> object:
        return "nothing"

    results = {}
    for function in (positional, reordered, keyword_only, with_default, one, nothing):
        results[function.__name__] = await Callbacks(session=function).call(
            "session", None, **offered
        )
    assert results == {
        "positional": ("positional", {"s": 1}, {"t": 2}),
        "reordered": ("reordered", {"s": 1}, {"t": 2}),
        "keyword_only": ("keyword_only", {"s": 1}, "update"),
        # new_session is not offered: the function's own default applies
        "with_default": ("with_default", {"s": 1}, "default"),
        "one": ("one", {"t": 2}),
        "nothing": "nothing",
    }


async def test_a_plain_callback_returning_an_awaitable_is_awaited() -> None:
    async def later(token: dict[str, int]) -> dict[str, int]:
        return {**token, "later": 1}

    def session(token: dict[str, int]) -> object:
        return later(token)

    assert await Callbacks(session=session).call("session", None, token={"a": 1}) == {
        "a": 1,
        "later": 1,
    }


def test_bound_is_the_callback_as_a_function_of_its_arguments() -> None:
    callbacks = Callbacks(session=lambda session, token: {**session, **token})
    bound = callbacks.bound("session")
    assert bound is not None
    assert bound({"session": {"a": 1}, "token": {"b": 2}, "user": None}) == {"a": 1, "b": 2}
    assert callbacks.bound("jwt") is None
