"""Callbacks that shape sessions, and events that report what happened.

A callback or event is a plain or ``async`` function taking keyword arguments; it is
passed only the arguments its signature names, so ``async def jwt(token, user): ...``
works as well as ``def jwt(**kwargs)``. Example::

    async def jwt(token, user, trigger):
        if trigger == "signIn":
            token["role"] = user["role"]
        return token

    def session(session, token):
        session["user"]["role"] = token.get("role")
        return session

    AuthConfig(secret=..., callbacks=Callbacks(jwt=jwt, session=session))
"""

from __future__ import annotations

import inspect
import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

logger = logging.getLogger("asgi_session")

Hook = Callable[..., Any]


def _bind(function: Hook) -> Callable[[dict[str, Any]], Any]:
    """Call ``function`` with the subset of keyword arguments its signature accepts."""
    parameters = list(inspect.signature(function).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return lambda arguments: function(**arguments)
    accepted = tuple(
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )

    def by_keyword(arguments: dict[str, Any]) -> Any:
        return function(**{name: arguments[name] for name in accepted if name in arguments})

    leading = parameters[: len(accepted)]
    if not accepted or any(
        p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD or p.name != name
        for p, name in zip(leading, accepted, strict=True)
    ):
        return by_keyword
    # The usual signature, `def session(session, token)`: its parameters come first and
    # take positions, so when every one is offered they are passed by position, picked
    # in C (a session callback runs on every request).
    pick = operator.itemgetter(*accepted)
    if len(accepted) == 1:

        def one(arguments: dict[str, Any]) -> Any:
            try:
                value = pick(arguments)
            except KeyError:
                return by_keyword(arguments)
            return function(value)

        return one

    def by_position(arguments: dict[str, Any]) -> Any:
        try:
            values = pick(arguments)
        except KeyError:
            return by_keyword(arguments)
        return function(*values)

    return by_position


async def _call(function: Callable[[dict[str, Any]], Any], arguments: dict[str, Any]) -> Any:
    result = function(arguments)
    if may_await(result):
        result = await result
    return result


def may_await(result: Any) -> bool:
    """Whether a hook's ``result`` must be awaited (it was ``async``, or returned an
    awaitable)."""
    # What hooks return most (a dict, None, a bool, a string) is answered without
    # inspect.isawaitable's three isinstance checks, one against an abstract class.
    return type(result) not in _NEVER_AWAITABLE and inspect.isawaitable(result)


_NEVER_AWAITABLE = frozenset({dict, type(None), bool, str, list})


class _Hooks:
    def __post_init__(self) -> None:
        self._bound: dict[str, Callable[[dict[str, Any]], Any]] = {}
        for field in fields(self):  # type: ignore[arg-type]
            function = getattr(self, field.name)
            if function is None:
                continue
            if not callable(function):
                raise TypeError(f"{type(self).__name__}.{field.name} must be a function")
            self._bound[field.name] = _bind(function)

    def has(self, name: str) -> bool:
        return name in self._bound


@dataclass(eq=False)
class Callbacks(_Hooks):
    """Functions asgi-session calls to decide and shape what it does (as in Auth.js).

    - ``sign_in(user, account, profile, email, credentials)``: return ``True`` to allow,
      a URL to redirect there instead; ``False`` or ``None`` (a function that forgot to
      return) denies (``AccessDenied``), as does an exception.
    - ``redirect(url, base_url)``: the URL to send the browser to; ``url`` is the one
      asked for (``callbackUrl``), or ``base_url`` when none was. The default allows
      only the app's own origin.
    - ``jwt(token, user, account, profile, trigger, is_new_user, session)``: the claims to
      encrypt into the cookie; ``trigger`` is ``"signIn"``, ``"signUp"``, ``"update"`` or
      ``None`` (a periodic re-issue). Returning ``None`` ends the session.
    - ``session(session, token, user, trigger, new_session)``: the JSON shown to the app
      and to ``GET /auth/session``.
    """

    sign_in: Hook | None = None
    redirect: Hook | None = None
    jwt: Hook | None = None
    session: Hook | None = None

    async def call(self, name: str, default: Any, **arguments: Any) -> Any:
        """The callback's answer, or ``default`` when the app set none."""
        bound = self._bound.get(name)
        if bound is None:
            return default
        result = bound(arguments)
        if may_await(result):
            result = await result
        return result

    def bound(self, name: str) -> Callable[[dict[str, Any]], Any] | None:
        """The callback as a function of one dict of arguments, or ``None`` when unset.

        Its result may need awaiting (:func:`may_await`); for code on every request's
        path, which would rather not pay for :meth:`call`'s coroutine.
        """
        return self._bound.get(name)


@dataclass(eq=False)
class Events(_Hooks):
    """Functions told what happened; their failures are logged and never break a request.

    ``sign_in(user, account, profile, is_new_user)``, ``sign_out(session, token)``,
    ``create_user(user)``, ``update_user(user)``, ``link_account(user, account, profile)``,
    ``session(session, token)``.
    """

    sign_in: Hook | None = None
    sign_out: Hook | None = None
    create_user: Hook | None = None
    update_user: Hook | None = None
    link_account: Hook | None = None
    session: Hook | None = None

    async def emit(self, name: str, **arguments: Any) -> None:
        """Run the event handler, logging (not raising) whatever it raises."""
        bound = self._bound.get(name)
        if bound is None:
            return
        try:
            await _call(bound, arguments)
        except Exception:
            logger.exception("the %s event handler failed", name)
