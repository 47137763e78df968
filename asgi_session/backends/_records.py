"""What every adapter does to records before storing them and after reading them.

Input, whatever the adapter: a mapping or a record, under Python names or Auth.js's
(``userId`` next to ``user_id``), is checked and turned into a dict of Python-named
fields; ``ValueError`` says what is wrong. Datetimes are aware UTC to the millisecond
(naive ones taken as UTC), which is what MongoDB and Auth.js keep, so a record handed
back equals the same record read again. Values are copies: changing an input after
storing it changes nothing stored. Only the fields given are returned: a field left
out is left out of the store too (as Auth.js does), a field given as ``None`` is kept.

Output: :func:`user_record` and its siblings build records from stored fields under
Python names, fields they do not know going to ``extra``; :func:`from_stored` and
:func:`to_stored` translate between Python names and the names Auth.js stores.

Ids are the adapter's business: functions handling a user id take ``parse_id``, which
gives the id's one spelling as a string, or ``None`` when the value is not an id of
this adapter. :func:`hex_id` is the ObjectId shape shared by memory and MongoDB.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

from asgi_session.backends._adapter import (
    AccountInput,
    AuthenticatorInput,
    SessionInput,
    UserInput,
    VerificationTokenInput,
)
from asgi_session.models import (
    ACCOUNT_FIELDS,
    AUTHENTICATOR_FIELDS,
    SESSION_FIELDS,
    USER_FIELDS,
    VERIFICATION_FIELDS,
    Account,
    Authenticator,
    SessionRecord,
    User,
    VerificationToken,
    as_mapping,
)

__all__ = [
    "DUPLICATE_ACCOUNT",
    "DUPLICATE_AUTHENTICATOR",
    "DUPLICATE_EMAIL",
    "DUPLICATE_SESSION",
    "DUPLICATE_USER_ID",
    "DUPLICATE_VERIFICATION",
    "IdParser",
    "account_changes",
    "account_input",
    "account_record",
    "authenticator_changes",
    "authenticator_input",
    "authenticator_record",
    "counter_input",
    "from_stored",
    "hex_id",
    "revocation_input",
    "session_changes",
    "session_input",
    "session_record",
    "split_scopes",
    "to_stored",
    "user_input",
    "user_record",
    "utc",
    "verification_input",
    "verification_record",
]

#: Gives a user id's one spelling, or ``None`` when the value is not an id at all.
IdParser = Callable[[object], str | None]

# The messages of DuplicateRecordError, alike in every adapter: callers and tests may
# tell a taken email from a taken id by them.
DUPLICATE_USER_ID = "a user with this id already exists"
DUPLICATE_EMAIL = "a user with this email already exists"
DUPLICATE_ACCOUNT = "this provider account is already linked to a user"
DUPLICATE_SESSION = "a session with this token already exists"
DUPLICATE_VERIFICATION = "this verification token already exists"
DUPLICATE_AUTHENTICATOR = "an authenticator with this credential id is already registered"

# Ids are set by the adapter, never taken from the fields.
_ID_KEYS = frozenset({"id", "_id"})

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_HEX_ID_LENGTH = 24  # 12 bytes, the shape of a MongoDB ObjectId

# WebAuthn's signature counter is 32 bits unsigned; a larger one is no counter at all
# (and would not fit the 64-bit integers MongoDB stores).
_MAX_COUNTER = 2**32 - 1


@dataclass(frozen=True, slots=True)
class _Kind:
    """The rules for one kind of record, under Python names."""

    what: str  # how messages name it: "a user", "an account"...
    names: Mapping[str, str]  # Python name -> stored name
    required: tuple[str, ...] = ()  # must be given, not None; an update cannot unset them
    strings: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    counters: tuple[str, ...] = ()  # whole numbers from 0 to _MAX_COUNTER
    flags: tuple[str, ...] = ()  # booleans
    fixed: frozenset[str] = frozenset()  # an update may not name them at all
    aliases: Mapping[str, str] = field(init=False)  # stored name -> Python name

    def __post_init__(self) -> None:
        aliases = {stored: python for python, stored in self.names.items() if stored != python}
        object.__setattr__(self, "aliases", aliases)


_USER = _Kind("a user", USER_FIELDS, times=("email_verified",))
_ACCOUNT = _Kind(
    "an account",
    ACCOUNT_FIELDS,
    required=("user_id", "type", "provider", "provider_account_id"),
    strings=("provider", "provider_account_id"),
    # They name the account and its user: changing them would move the account.
    fixed=frozenset({"user_id", "provider", "provider_account_id"}),
)
_SESSION = _Kind(
    "a session",
    SESSION_FIELDS,
    required=("session_token", "user_id", "expires"),
    strings=("session_token",),
    times=("expires", "created_at", "last_seen_at"),
)
_VERIFICATION = _Kind(
    "a verification token",
    VERIFICATION_FIELDS,
    required=("identifier", "token", "expires"),
    strings=("identifier", "token"),
    times=("expires",),
)
_AUTHENTICATOR = _Kind(
    "an authenticator",
    AUTHENTICATOR_FIELDS,
    required=(
        "credential_id",
        "user_id",
        "provider_account_id",
        "credential_public_key",
        "counter",
        "credential_device_type",
        "credential_backed_up",
    ),
    strings=(
        "credential_id",
        "provider_account_id",
        "credential_public_key",
        "credential_device_type",
        "transports",
        "name",
    ),
    times=("created_at", "last_used_at"),
    counters=("counter",),
    flags=("credential_backed_up",),
    # The credential, its user and its key are what a signature is checked against;
    # the counter moves only forward, through update_authenticator_counter.
    fixed=frozenset(
        {"credential_id", "user_id", "provider_account_id", "credential_public_key", "counter"}
    ),
)


# -- ids and times -----------------------------------------------------------------------


def hex_id(value: object) -> str | None:
    """``value`` as 24 lower-case hex digits when it is an id of that shape, else ``None``."""
    if isinstance(value, str) and len(value) == _HEX_ID_LENGTH and _HEX_DIGITS.issuperset(value):
        return value.lower()
    return None


def utc(value: datetime) -> datetime:
    """Aware UTC to the millisecond, as MongoDB gives datetimes back; naive is UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# -- input -------------------------------------------------------------------------------


def user_input(user: UserInput, *, parse_id: IdParser) -> tuple[str | None, dict[str, Any]]:
    """The id ``user`` names (``None`` when it names none) and its other fields.

    For ``create_user`` (which makes an id when there is none) and ``update_user``
    (which finds no user then). Raises ``ValueError`` when ``email_verified`` is
    neither a datetime nor ``None``.
    """
    data = as_mapping(user)
    return parse_id(data.get("id")), _checked(_fields(data, _USER), _USER)


def account_input(account: AccountInput, *, parse_id: IdParser) -> dict[str, Any]:
    """The fields of an account to link, ``user_id`` parsed.

    Raises ``ValueError`` when ``user_id``, ``type``, ``provider`` or
    ``provider_account_id`` is missing, ``user_id`` is not an id, or ``provider`` and
    ``provider_account_id`` are not strings.
    """
    fields = _fields(as_mapping(account), _ACCOUNT)
    _require(fields, _ACCOUNT)
    return _with_user_id(_checked(fields, _ACCOUNT), parse_id)


def account_changes(data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields ``update_account`` sets (tokens, mostly).

    Raises ``ValueError`` when ``data`` names the account or its user (``id``,
    ``user_id``, ``provider``, ``provider_account_id``, under any name), since an update
    must not move an account, or sets ``type`` to ``None``.
    """
    forbidden = sorted(
        key for key in data if key in _ID_KEYS or _ACCOUNT.aliases.get(key, key) in _ACCOUNT.fixed
    )
    if forbidden:
        raise ValueError(f"update_account cannot change {', '.join(forbidden)}")
    return _changes(_fields(data, _ACCOUNT), _ACCOUNT)


def session_input(session: SessionInput, *, parse_id: IdParser) -> dict[str, Any]:
    """The fields of a session to create, ``user_id`` parsed.

    ``created_at`` defaults to now and ``last_seen_at`` to ``created_at``. Raises
    ``ValueError`` when ``session_token``, ``user_id`` or ``expires`` is missing or
    ``None``, ``user_id`` is not an id, the token is not a string, or a time is not a
    datetime.
    """
    fields = _fields(as_mapping(session), _SESSION)
    _require(fields, _SESSION)
    fields = _with_user_id(_checked(fields, _SESSION), parse_id)
    if fields.get("created_at") is None:
        fields["created_at"] = utc(datetime.now(UTC))
    if fields.get("last_seen_at") is None:
        fields["last_seen_at"] = fields["created_at"]
    return fields


def session_changes(
    session: SessionInput, *, parse_id: IdParser
) -> tuple[str | None, dict[str, Any]]:
    """The token naming the session to update (``None`` when it is not a string) and
    the fields to set, which never include the token: it is the session's key.

    Raises ``ValueError`` when ``user_id`` or ``expires`` is set to ``None``, ``user_id``
    is not an id, or a time is not a datetime.
    """
    fields = _fields(as_mapping(session), _SESSION)
    token = fields.pop("session_token", None)
    changes = _with_user_id(_changes(fields, _SESSION), parse_id)
    return (token if isinstance(token, str) else None), changes


def verification_input(verification_token: VerificationTokenInput) -> VerificationToken:
    """The token to store; other fields are dropped, as Auth.js keeps none.

    Raises ``ValueError`` when a field is missing, ``identifier`` or ``token`` is not a
    string, or ``expires`` is not a datetime.
    """
    data = as_mapping(verification_token)
    fields = _fields({key: data[key] for key in VERIFICATION_FIELDS if key in data}, _VERIFICATION)
    _require(fields, _VERIFICATION)
    return VerificationToken(**_checked(fields, _VERIFICATION))


def revocation_input(user_id: object, when: object) -> tuple[str, datetime]:
    """The user id and cut-off of ``revoke_tokens_issued_before``.

    Any non-empty string is a user id here: users who signed in with credentials in
    JWT mode need not be stored, nor have ids the adapter would make. Raises
    ``ValueError`` otherwise, or when ``when`` is not a datetime.
    """
    if not isinstance(user_id, str) or not user_id:
        raise ValueError("user_id must be a non-empty string")
    if not isinstance(when, datetime):
        raise ValueError("when must be a datetime")
    return user_id, utc(when)


def authenticator_input(authenticator: AuthenticatorInput, *, parse_id: IdParser) -> dict[str, Any]:
    """The fields of an authenticator (a passkey) to store, ``user_id`` parsed.

    ``created_at`` defaults to now. Raises ``ValueError`` when a field Auth.js requires
    (``credential_id``, ``user_id``, ``provider_account_id``, ``credential_public_key``,
    ``counter``, ``credential_device_type``, ``credential_backed_up``) is missing or
    ``None``, ``user_id`` is not an id, ``counter`` is not a whole number from 0 to
    2**32 - 1, ``credential_backed_up`` is not a bool, a string field is not a string, or
    a time is not a datetime.
    """
    fields = _fields(as_mapping(authenticator), _AUTHENTICATOR)
    _require(fields, _AUTHENTICATOR)
    fields = _with_user_id(_checked(fields, _AUTHENTICATOR), parse_id)
    if fields.get("created_at") is None:
        fields["created_at"] = utc(datetime.now(UTC))
    return fields


def authenticator_changes(data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields ``update_authenticator`` sets (``name``, mostly).

    Raises ``ValueError`` when ``data`` names the credential, its user, its key or its
    counter (under any name): a signature is checked against them, and the counter
    moves only forward, through ``update_authenticator_counter``. Also when a field the
    record needs is set to ``None`` or a field has the wrong type.
    """
    forbidden = sorted(
        key
        for key in data
        if key in _ID_KEYS or _AUTHENTICATOR.aliases.get(key, key) in _AUTHENTICATOR.fixed
    )
    if forbidden:
        raise ValueError(
            f"update_authenticator cannot change {', '.join(forbidden)}; "
            "use update_authenticator_counter to move the counter forward"
        )
    return _changes(_fields(data, _AUTHENTICATOR), _AUTHENTICATOR)


def counter_input(counter: object, used_at: object) -> tuple[int, datetime | None]:
    """The counter and time of ``update_authenticator_counter``, ``used_at`` in UTC.

    Raises ``ValueError`` when ``counter`` is not a whole number from 0 to 2**32 - 1 (the
    range of WebAuthn's signature counter), or ``used_at`` is neither a datetime nor
    ``None``.
    """
    if not _is_counter(counter):
        raise ValueError(f"counter must be a whole number from 0 to {_MAX_COUNTER}")
    if used_at is not None and not isinstance(used_at, datetime):
        raise ValueError("used_at must be a datetime or None")
    return counter, (utc(used_at) if used_at is not None else None)


# -- output ------------------------------------------------------------------------------


def user_record(id: str, fields: Mapping[str, Any]) -> User:
    """A user from its stored fields under Python names; absent known fields are ``None``."""
    known, extra = _split(fields, USER_FIELDS)
    return User(id=id, extra=extra, **known)


def account_record(id: str, fields: Mapping[str, Any]) -> Account:
    """A linked account from its stored fields under Python names.

    A whole-number ``expires_at`` stored as a float (JavaScript numbers, refreshed
    tokens) is an int: the field holds whole seconds.
    """
    known, extra = _split(fields, ACCOUNT_FIELDS)
    _whole_number(known, "expires_at")
    return Account(id=id, extra=extra, **known)


#: The expiry of a stored session or token whose own cannot be read: long past.
UNREADABLE_EXPIRY = datetime(1970, 1, 1, tzinfo=UTC)


def _readable_expiry(known: dict[str, Any]) -> None:
    # A record another tool left with no usable expiry (null, text, a number) has
    # expired: it stands for no session, and nothing fails on it.
    if not isinstance(known.get("expires"), datetime):
        known["expires"] = UNREADABLE_EXPIRY


def session_record(id: str, fields: Mapping[str, Any]) -> SessionRecord:
    """A database session from its stored fields under Python names."""
    known, extra = _split(fields, SESSION_FIELDS)
    _readable_expiry(known)
    return SessionRecord(id=id, extra=extra, **known)


def verification_record(fields: Mapping[str, Any]) -> VerificationToken:
    """A verification token from its stored fields; anything else stored is ignored."""
    known, _ = _split(fields, VERIFICATION_FIELDS)
    _readable_expiry(known)
    return VerificationToken(**known)


def authenticator_record(fields: Mapping[str, Any]) -> Authenticator:
    """An authenticator from its stored fields under Python names.

    A whole-number ``counter`` stored as a float (JavaScript numbers) is an int.
    """
    known, extra = _split(fields, AUTHENTICATOR_FIELDS)
    _whole_number(known, "counter")
    return Authenticator(extra=extra, **known)


def to_stored(fields: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Python-named fields under the names Auth.js stores (``names``: ``USER_FIELDS``...)."""
    return {names.get(key, key): value for key, value in fields.items()}


def from_stored(document: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Stored fields under Python names; a known field wins over an extra one of its name."""
    aliases = {stored: python for python, stored in names.items()}
    fields = {key: value for key, value in document.items() if key not in aliases}
    fields.update((aliases[key], value) for key, value in document.items() if key in aliases)
    return fields


# -- plumbing ----------------------------------------------------------------------------


def _fields(data: Mapping[str, Any], kind: _Kind) -> dict[str, Any]:
    """``data`` under Python names, copied and with times in UTC; ids left out."""
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if key in _ID_KEYS:
            continue
        name = kind.aliases.get(key, key)
        stored = _copy(value)
        if name in fields and fields[name] != stored:
            # Which one was meant cannot be guessed: both names of one field.
            raise ValueError(f"{kind.what}'s {name} is given twice, with different values")
        fields[name] = stored
    return fields


def _copy(value: Any) -> Any:
    """A private copy of an input value, shaped as a document store keeps it."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item) for item in value]
    return copy.deepcopy(value)


def _require(fields: Mapping[str, Any], kind: _Kind) -> None:
    missing = [name for name in kind.required if fields.get(name) is None]
    if missing:
        raise ValueError(f"{kind.what} needs {', '.join(missing)}")


def _changes(fields: dict[str, Any], kind: _Kind) -> dict[str, Any]:
    """Check the fields of an update: what a record needs cannot become ``None``."""
    for name in kind.required:
        if name in fields and fields[name] is None:
            raise ValueError(f"{kind.what}'s {name} cannot be None")
    return _checked(fields, kind)


def _checked(fields: dict[str, Any], kind: _Kind) -> dict[str, Any]:
    """``fields`` once their types are checked; ``None`` passes (required is checked apart)."""
    for name in kind.strings:
        if fields.get(name) is not None and not isinstance(fields[name], str):
            raise ValueError(f"{kind.what}'s {name} must be a string")
    for name in kind.times:
        if fields.get(name) is not None and not isinstance(fields[name], datetime):
            raise ValueError(f"{kind.what}'s {name} must be a datetime")
    for name in kind.counters:
        if fields.get(name) is not None and not _is_counter(fields[name]):
            raise ValueError(
                f"{kind.what}'s {name} must be a whole number from 0 to {_MAX_COUNTER}"
            )
    for name in kind.flags:
        if fields.get(name) is not None and not isinstance(fields[name], bool):
            raise ValueError(f"{kind.what}'s {name} must be True or False")
    return fields


def _is_counter(value: object) -> TypeGuard[int]:
    """Whether ``value`` is a signature counter: an int (not a bool) in 32 unsigned bits."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_COUNTER


def _whole_number(known: dict[str, Any], name: str) -> None:
    """Read a whole-number float (how JavaScript numbers may be stored) as an int."""
    value = known.get(name)
    if isinstance(value, float) and value.is_integer():
        known[name] = int(value)


def _with_user_id(fields: dict[str, Any], parse_id: IdParser) -> dict[str, Any]:
    """``fields`` with ``user_id``, when there, in the adapter's spelling of ids."""
    if "user_id" in fields:
        user_id = parse_id(fields["user_id"])
        if user_id is None:
            raise ValueError(f"user_id {fields['user_id']!r} is not a valid id")
        fields["user_id"] = user_id
    return fields


def _split(
    fields: Mapping[str, Any], names: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields a record has attributes for, and the others."""
    known = {key: value for key, value in fields.items() if key in names}
    extra = {key: value for key, value in fields.items() if key not in names}
    return known, extra


def split_scopes(value: str) -> list[str]:
    """The scopes a granted-scopes string names, whether spaces (OAuth 2) or commas
    (GitHub; Better Auth's records) separate them."""
    return value.replace(",", " ").split()
