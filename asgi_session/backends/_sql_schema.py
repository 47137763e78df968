"""The tables :class:`~asgi_session.backends.sql.SQLAdapter` reads and writes: Auth.js's
or Better Auth's, table for table and column for column, in one of four layouts
(presets), and a few of our own.

Where each preset comes from (names and quoting as there; the column types are the
ones each tool creates):

- ``"authjs-pg"``: ``@auth/pg-adapter``'s ``schema.sql`` (packages/adapter-pg in the
  next-auth repository): ``users``, ``accounts``, ``sessions`` with ``SERIAL`` ids,
  ``verification_token``; ``VARCHAR(255)`` and ``TIMESTAMPTZ`` columns, ``expires_at
  BIGINT``. It has no authenticator table: passkeys go to our
  ``asgi_session_authenticators``, under Auth.js's column names.
- ``"prisma"``: the PostgreSQL schema of Auth.js's Prisma adapter documentation
  (docs/pages/getting-started/adapters/prisma.mdx) as ``prisma migrate`` creates it:
  ``"User"`` (``id`` text, ``email`` ``NOT NULL UNIQUE``, ``"createdAt"`` and
  ``"updatedAt"``), ``"Account"`` (primary key ``(provider, "providerAccountId")``),
  ``"Session"`` (``"sessionToken"`` unique, no id), ``"VerificationToken"``,
  ``"Authenticator"``; ``DateTime`` is ``TIMESTAMP(3)``. Prisma's client fills ids and
  ``@updatedAt`` itself, so we do too. On SQLite the same tables (Prisma keeps
  ``DateTime`` there as integer milliseconds too).
- ``"drizzle"``: ``@auth/drizzle-adapter``'s ``defineTables`` (src/lib/pg.ts and
  sqlite.ts): ``user``, ``account``, ``session``, ``verificationToken``,
  ``authenticator`` with text ids; PostgreSQL ``timestamp`` (without time zone),
  SQLite ``integer`` milliseconds (``mode: "timestamp_ms"``) and ``integer`` booleans.
- ``"better-auth"``: the npm package better-auth 1.7.25's core tables as its own
  migration creates them for its Kysely adapter (``getMigrations`` from
  ``better-auth/db/migration``, with a ``pg`` Pool or a ``better-sqlite3`` Database; the
  tables of packages/core/src/db/get-tables.ts in its repository): ``user`` (``name``
  and ``email`` ``NOT NULL``, ``email`` unique, ``emailVerified`` a flag, ``createdAt``,
  ``updatedAt``), ``session`` (``token`` unique, ``expiresAt``, ``ipAddress``,
  ``userAgent``), ``account`` (``accountId``, ``providerId``, ``accessToken``...
  ``accessTokenExpiresAt``, ``refreshTokenExpiresAt``, ``password``) and
  ``verification`` (``identifier``, ``value``, ``expiresAt``), each with a text ``id``
  and ``createdAt``/``updatedAt``; indexes on ``userId`` and
  ``verification.identifier``. PostgreSQL ``timestamptz`` and ``boolean``; SQLite
  ``date`` columns holding the ISO text ``Date.toISOString()`` gives, which Better Auth
  writes, reads and compares as text, and ``integer`` flags (0, 1). Records are
  Auth.js's, so some fields are converted (:class:`Conversion`): ``name`` ``None`` is
  ``""``; ``email_verified`` (a time) is the flag, the time itself kept in
  ``asgi_session_extra`` (a flag Better Auth set reads as the user's ``updatedAt``);
  ``expires_at`` (seconds) is ``accessTokenExpiresAt``, an extra
  ``refresh_token_expires_at`` ``refreshTokenExpiresAt``; the Password provider's
  ``"password"`` is Better Auth's ``providerId`` ``"credential"`` (its hash, the extra
  field ``password``, the column ``password``), and an account Better Auth linked reads
  with ``type`` ``"credentials"`` for it, else ``"oauth"``; a session's ``last_seen_at``
  is ``updatedAt``, an extra ``ip_address`` ``ipAddress``; a verification token's
  ``token`` is ``value``. Ids and ``createdAt``/``updatedAt`` we fill. Better Auth
  1.7.25 has no passkey table (its passkey plugin is another package): passkeys go to
  our ``asgi_session_authenticators``, under Auth.js's column names, with an id.

Departures, each for a reason:

- User ids we make are 24 hex digits (the shape every adapter of this package gives,
  so an app moving from MongoDB keeps its ids); Prisma's cuids and Drizzle's UUIDs, as
  those tools write them, are read and found as they are.
- Tables we create declare no foreign keys: ``delete_user`` deletes a user's records
  itself, in one transaction, and the adapter contract lets an account or a session
  name a user that is not stored. Tables made by Prisma, Drizzle or Better Auth keep
  theirs. Nor column defaults (Better Auth's ``CURRENT_TIMESTAMP`` on PostgreSQL): we
  write every time.
- Better Auth's ``account`` gets a unique index on ``("providerId", "accountId")``, in
  the tables we create, and ``create_tables`` adds it to one Better Auth made: linking a
  provider account twice is an error in the adapter contract, and Better Auth, which
  looks before it links, never makes twins. Its ``verification`` gets none (values of
  its own may repeat): a twin token is refused by the insert itself (``WHERE NOT
  EXISTS``).
- Ids we make in Better Auth's tables (sessions, accounts, verification values) are
  24 hex digits that sort in the order they were made, so that records made at one
  moment list in order; Better Auth's own (32 letters and digits) are read as they
  are. A user needs an email there (``NOT NULL``): one without is a ``ValueError``.
- ``counter`` is ``BIGINT`` in the tables we create: WebAuthn's signature counter is
  32 bits unsigned, beyond a PostgreSQL ``integer``. An existing ``integer`` column is
  accepted (a counter past 2**31 - 1 is then refused).
- Lookups by ``"userId"`` get an index in the tables we create.

Our own tables, whatever the preset, under a prefix no Auth.js or Better Auth table has:
``asgi_session_extra`` (fields a record has no column for, as JSON, by record kind and
key), ``asgi_session_revocations`` and ``asgi_session_rate_limits``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine, UserDefinedType

from asgi_session.backends._records import split_scopes

__all__ = [
    "DEFAULT_PRESET",
    "EXTRA",
    "KINDS",
    "PRESETS",
    "RATE_LIMITS",
    "REVOCATIONS",
    "ColumnSpec",
    "Conversion",
    "Preset",
    "TableSpec",
    "build_metadata",
    "expected_types",
    "type_family",
]

#: The preset when none is named: Drizzle's tables are one layout on PostgreSQL and on
#: SQLite alike, and let a user have no email (Prisma's PostgreSQL ``"User".email`` is
#: ``NOT NULL``, and pg-adapter's integer ids are no ids of this package's shape).
DEFAULT_PRESET = "drizzle"

Kind = Literal["users", "accounts", "sessions", "verification_tokens", "authenticators"]
KINDS: tuple[Kind, ...] = (
    "users",
    "accounts",
    "sessions",
    "verification_tokens",
    "authenticators",
)

# What a column holds, whatever the database spells it.
Logical = Literal["serial", "text", "varchar", "int", "bigint", "bool", "time"]

EXTRA = "asgi_session_extra"
REVOCATIONS = "asgi_session_revocations"
RATE_LIMITS = "asgi_session_rate_limits"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


class Conversion:
    """How a field's values and its column's differ, both ways: Auth.js's records kept
    in Better Auth's columns. The base class converts nothing."""

    #: Whether the field's own value is kept in ``asgi_session_extra`` as well, where
    #: the column holds less of it (a flag for a time).
    keeps_aside: ClassVar[bool] = False

    def write(self, value: Any, field: str) -> Any:
        """The column's value for the field's; on insert, ``None`` for a field not given.
        Raises ``ValueError`` for a value the column cannot hold."""
        return value

    def read(self, value: Any, kept: Any, row: Mapping[str, Any], spec: TableSpec) -> Any:
        """The field's value for the column's; ``kept``: the value kept aside, if any."""
        return value


class _Blank(Conversion):
    """A required string column for an optional field: ``None`` is ``""``."""

    def write(self, value: Any, field: str) -> Any:
        return "" if value is None else value

    def read(self, value: Any, kept: Any, row: Mapping[str, Any], spec: TableSpec) -> Any:
        return None if value == "" else value


class _Verified(Conversion):
    """A time (``email_verified``) in a required flag: whether there is one. The time
    itself is kept aside; a flag set by another tool reads as the row's last write."""

    keeps_aside = True

    def write(self, value: Any, field: str) -> Any:
        return value is not None

    def read(self, value: Any, kept: Any, row: Mapping[str, Any], spec: TableSpec) -> Any:
        if not value:
            return None
        if isinstance(kept, datetime):
            return kept
        for managed in ("updated", "created"):
            for column in spec.columns:
                if column.managed == managed and isinstance(row.get(column.name), datetime):
                    return row[column.name]
        return None


class _Seconds(Conversion):
    """Whole seconds since the epoch (``expires_at``) in a time column."""

    def write(self, value: Any, field: str) -> Any:
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{field} must be a whole number of seconds since the epoch")
        try:
            return _EPOCH + timedelta(seconds=value)
        except OverflowError:
            raise ValueError(f"{field} is out of range") from None

    def read(self, value: Any, kept: Any, row: Mapping[str, Any], spec: TableSpec) -> Any:
        if not isinstance(value, datetime):
            return value
        return (_utc(value) - _EPOCH) // timedelta(seconds=1)


class _Scopes(Conversion):
    """Granted scopes as Better Auth keeps them: comma-separated (it splits on commas
    when it reads them); ours are the token response's, space-separated as OAuth 2
    spells them (GitHub's commas are read as separators too)."""

    def write(self, value: Any, field: str) -> Any:
        return ",".join(split_scopes(value)) if isinstance(value, str) else value

    def read(self, value: Any, kept: Any, row: Mapping[str, Any], spec: TableSpec) -> Any:
        return " ".join(split_scopes(value)) if isinstance(value, str) else value


@dataclass(frozen=True)
class _Renamed(Conversion):
    """One value under another name in the column (a provider id)."""

    ours: str
    theirs: str

    def write(self, value: Any, field: str) -> Any:
        return self.theirs if value == self.ours else value

    def read(self, value: Any, kept: Any, row: Mapping[str, Any], spec: TableSpec) -> Any:
        return self.ours if value == self.theirs else value


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column of a preset's table."""

    name: str
    type: Logical
    nullable: bool = True
    #: The record field it holds, under its Python name; ``None`` for ids and the
    #: columns we fill ourselves (``managed``).
    field: str | None = None
    #: ``"created"`` / ``"updated"``: a time we set on insert / on every write;
    #: ``"id"``: an id we make on insert.
    managed: Literal["created", "updated", "id"] | None = None
    unique: bool = False
    #: How the field's values are kept in the column, when not as they are.
    convert: Conversion | None = None
    #: The field is none of the record's own (it reads into ``extra``): left out of
    #: the record when the column is NULL.
    extra: bool = False


def _account_type(fields: Mapping[str, Any]) -> str:
    """The type of an account another tool linked, which keeps none."""
    return "credentials" if fields.get("provider") == "password" else "oauth"


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    #: The column naming the record's user (indexed in the tables we create).
    user_column: str | None = None
    #: Other columns indexed in the tables we create.
    indexed: tuple[str, ...] = ()
    #: Unique indexes, made in the tables we create and added to existing ones.
    unique_indexes: tuple[tuple[str, ...], ...] = ()
    #: Fields the table keeps nowhere, by name: their value in a row another tool
    #: wrote, from the record's other fields.
    derived: Mapping[str, Callable[[Mapping[str, Any]], Any]] = dataclasses.field(
        default_factory=dict
    )

    @property
    def fields(self) -> Mapping[str, str]:
        """Python field name -> column name, for the fields this table has columns for."""
        return {column.field: column.name for column in self.columns if column.field}

    def column(self, name: str) -> ColumnSpec | None:
        return next((column for column in self.columns if column.name == name), None)


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    tables: Mapping[Kind, TableSpec]
    #: How times are kept on PostgreSQL: with a time zone, and at which precision.
    timezone: bool
    precision: int | None
    #: Whether user ids are the database's integers (``SERIAL``), not text.
    integer_ids: bool
    #: How times are kept on SQLite: integer milliseconds since the epoch, or (as
    #: Better Auth's Kysely adapter writes them) ISO 8601 text in ``date`` columns,
    #: with booleans in ``integer`` columns.
    sqlite_times: Literal["milliseconds", "iso"] = "milliseconds"


def _c(name: str, type: Logical, *, null: bool = True, **more: Any) -> ColumnSpec:
    return ColumnSpec(name, type, null, **more)


def _account_columns(text: Logical, expires_at: Logical, user_id: Logical) -> list[ColumnSpec]:
    return [
        _c("userId", user_id, null=False, field="user_id"),
        _c("type", text, null=False, field="type"),
        _c("provider", text, null=False, field="provider"),
        _c("providerAccountId", text, null=False, field="provider_account_id"),
        _c("refresh_token", "text", field="refresh_token"),
        _c("access_token", "text", field="access_token"),
        _c("expires_at", expires_at, field="expires_at"),
        _c("token_type", "text", field="token_type"),
        _c("scope", "text", field="scope"),
        _c("id_token", "text", field="id_token"),
        _c("session_state", "text", field="session_state"),
    ]


def _own_authenticators(user_id: Logical, *ids: ColumnSpec) -> TableSpec:
    """Our table of passkeys, for a preset that has none: Auth.js's columns, and
    columns for the fields Auth.js's Authenticator lacks."""
    return TableSpec(
        "asgi_session_authenticators",
        (
            *ids,
            *_authenticator_columns(user_id),
            _c("name", "text", field="name"),
            _c("createdAt", "time", field="created_at"),
            _c("lastUsedAt", "time", field="last_used_at"),
        ),
        primary_key=("id",) if ids else ("userId", "credentialID"),
        user_column="userId",
    )


def _authenticator_columns(user_id: Logical) -> list[ColumnSpec]:
    return [
        _c("credentialID", "text", null=False, field="credential_id", unique=True),
        _c("userId", user_id, null=False, field="user_id"),
        _c("providerAccountId", "text", null=False, field="provider_account_id"),
        _c("credentialPublicKey", "text", null=False, field="credential_public_key"),
        _c("counter", "bigint", null=False, field="counter"),
        _c("credentialDeviceType", "text", null=False, field="credential_device_type"),
        _c("credentialBackedUp", "bool", null=False, field="credential_backed_up"),
        _c("transports", "text", field="transports"),
    ]


def _verification(name: str) -> TableSpec:
    return TableSpec(
        name,
        (
            _c("identifier", "text", null=False, field="identifier"),
            _c("expires", "time", null=False, field="expires"),
            _c("token", "text", null=False, field="token"),
        ),
        primary_key=("identifier", "token"),
    )


def _authjs_pg() -> Preset:
    users = TableSpec(
        "users",
        (
            _c("id", "serial", null=False),
            _c("name", "varchar", field="name"),
            _c("email", "varchar", field="email", unique=True),
            _c("emailVerified", "time", field="email_verified"),
            _c("image", "text", field="image"),
        ),
        primary_key=("id",),
    )
    accounts = TableSpec(
        "accounts",
        (_c("id", "serial", null=False), *_account_columns("varchar", "bigint", "int")),
        primary_key=("id",),
        unique=(("provider", "providerAccountId"),),
        user_column="userId",
    )
    sessions = TableSpec(
        "sessions",
        (
            _c("id", "serial", null=False),
            _c("userId", "int", null=False, field="user_id"),
            _c("expires", "time", null=False, field="expires"),
            _c("sessionToken", "varchar", null=False, field="session_token", unique=True),
        ),
        primary_key=("id",),
        user_column="userId",
    )
    return Preset(
        "authjs-pg",
        {
            "users": users,
            "accounts": accounts,
            "sessions": sessions,
            "verification_tokens": _verification("verification_token"),
            "authenticators": _own_authenticators("int"),
        },
        timezone=True,
        precision=None,
        integer_ids=True,
    )


def _prisma() -> Preset:
    stamps = (
        _c("createdAt", "time", null=False, managed="created"),
        _c("updatedAt", "time", null=False, managed="updated"),
    )
    users = TableSpec(
        "User",
        (
            _c("id", "text", null=False),
            _c("name", "text", field="name"),
            _c("email", "text", null=False, field="email", unique=True),
            _c("emailVerified", "time", field="email_verified"),
            _c("image", "text", field="image"),
            *stamps,
        ),
        primary_key=("id",),
    )
    accounts = TableSpec(
        "Account",
        (*_account_columns("text", "int", "text"), *stamps),
        primary_key=("provider", "providerAccountId"),
        user_column="userId",
    )
    sessions = TableSpec(
        "Session",
        (
            _c("sessionToken", "text", null=False, field="session_token", unique=True),
            _c("userId", "text", null=False, field="user_id"),
            _c("expires", "time", null=False, field="expires"),
            # Prisma's createdAt is when the session began: the record's created_at.
            _c("createdAt", "time", null=False, field="created_at"),
            _c("updatedAt", "time", null=False, managed="updated"),
        ),
        user_column="userId",
    )
    verification = TableSpec(
        "VerificationToken",
        (
            _c("identifier", "text", null=False, field="identifier"),
            _c("token", "text", null=False, field="token"),
            _c("expires", "time", null=False, field="expires"),
        ),
        primary_key=("identifier", "token"),
    )
    authenticators = TableSpec(
        "Authenticator",
        tuple(_authenticator_columns("text")),
        primary_key=("userId", "credentialID"),
        user_column="userId",
    )
    return Preset(
        "prisma",
        {
            "users": users,
            "accounts": accounts,
            "sessions": sessions,
            "verification_tokens": verification,
            "authenticators": authenticators,
        },
        timezone=False,
        precision=3,
        integer_ids=False,
    )


def _drizzle() -> Preset:
    users = TableSpec(
        "user",
        (
            _c("id", "text", null=False),
            _c("name", "text", field="name"),
            _c("email", "text", field="email", unique=True),
            _c("emailVerified", "time", field="email_verified"),
            _c("image", "text", field="image"),
        ),
        primary_key=("id",),
    )
    accounts = TableSpec(
        "account",
        tuple(_account_columns("text", "int", "text")),
        primary_key=("provider", "providerAccountId"),
        user_column="userId",
    )
    sessions = TableSpec(
        "session",
        (
            _c("sessionToken", "text", null=False, field="session_token"),
            _c("userId", "text", null=False, field="user_id"),
            _c("expires", "time", null=False, field="expires"),
        ),
        primary_key=("sessionToken",),
        user_column="userId",
    )
    authenticators = TableSpec(
        "authenticator",
        tuple(_authenticator_columns("text")),
        primary_key=("userId", "credentialID"),
        user_column="userId",
    )
    return Preset(
        "drizzle",
        {
            "users": users,
            "accounts": accounts,
            "sessions": sessions,
            "verification_tokens": _verification("verificationToken"),
            "authenticators": authenticators,
        },
        timezone=False,
        precision=None,
        integer_ids=False,
    )


def _better_auth() -> Preset:
    id_column = _c("id", "text", null=False, managed="id")
    stamps = (
        _c("createdAt", "time", null=False, managed="created"),
        _c("updatedAt", "time", null=False, managed="updated"),
    )
    users = TableSpec(
        "user",
        (
            _c("id", "text", null=False),
            _c("name", "text", null=False, field="name", convert=_Blank()),
            _c("email", "text", null=False, field="email", unique=True),
            _c("emailVerified", "bool", null=False, field="email_verified", convert=_Verified()),
            _c("image", "text", field="image"),
            *stamps,
        ),
        primary_key=("id",),
    )
    sessions = TableSpec(
        "session",
        (
            id_column,
            _c("expiresAt", "time", null=False, field="expires"),
            _c("token", "text", null=False, field="session_token", unique=True),
            # When the session began, and (Better Auth's updatedAt) when it was last seen.
            _c("createdAt", "time", null=False, field="created_at"),
            _c("updatedAt", "time", null=False, field="last_seen_at"),
            _c("ipAddress", "text", field="ip_address", extra=True),
            _c("userAgent", "text", field="user_agent"),
            _c("userId", "text", null=False, field="user_id"),
        ),
        primary_key=("id",),
        user_column="userId",
    )
    seconds = _Seconds()
    accounts = TableSpec(
        "account",
        (
            id_column,
            _c("accountId", "text", null=False, field="provider_account_id"),
            _c(
                "providerId",
                "text",
                null=False,
                field="provider",
                convert=_Renamed("password", "credential"),
            ),
            _c("userId", "text", null=False, field="user_id"),
            _c("accessToken", "text", field="access_token"),
            _c("refreshToken", "text", field="refresh_token"),
            _c("idToken", "text", field="id_token"),
            _c("accessTokenExpiresAt", "time", field="expires_at", convert=seconds),
            _c(
                "refreshTokenExpiresAt",
                "time",
                field="refresh_token_expires_at",
                convert=seconds,
                extra=True,
            ),
            _c("scope", "text", field="scope", convert=_Scopes()),
            _c("password", "text", field="password", extra=True),
            *stamps,
        ),
        primary_key=("id",),
        user_column="userId",
        unique_indexes=(("providerId", "accountId"),),
        derived=MappingProxyType({"type": _account_type}),
    )
    verification = TableSpec(
        "verification",
        (
            id_column,
            _c("identifier", "text", null=False, field="identifier"),
            _c("value", "text", null=False, field="token"),
            _c("expiresAt", "time", null=False, field="expires"),
            *stamps,
        ),
        primary_key=("id",),
        indexed=("identifier",),
    )
    return Preset(
        "better-auth",
        {
            "users": users,
            "accounts": accounts,
            "sessions": sessions,
            "verification_tokens": verification,
            "authenticators": _own_authenticators("text", id_column),
        },
        timezone=True,
        precision=None,
        integer_ids=False,
        sqlite_times="iso",
    )


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {preset.name: preset for preset in (_authjs_pg(), _prisma(), _drizzle(), _better_auth())}
)


class _SQLiteDate(UserDefinedType[Any]):
    """SQLite's ``date``, as Better Auth's migration declares its times: the values are
    ISO text :class:`Moment` writes and reads itself."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "date"


class Moment(TypeDecorator[datetime]):
    """An aware UTC datetime to the millisecond, however the column keeps it.

    PostgreSQL: ``timestamptz``, or ``timestamp`` holding UTC (Prisma, Drizzle).
    SQLite: integer milliseconds since the epoch (Drizzle's ``timestamp_ms``, Prisma's
    ``DateTime``), or with ``iso``, in a ``date`` column, the text JavaScript's
    ``Date.toISOString()`` gives (``2024-05-01T10:30:15.123Z``, what Better Auth's
    Kysely adapter writes and compares as text); either is read whichever is written.
    """

    impl = DateTime
    cache_ok = True

    def __init__(
        self, timezone: bool = True, precision: int | None = None, *, iso: bool = False
    ) -> None:
        super().__init__()
        self.timezone = timezone
        self.precision = precision
        self.iso = iso

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteDate() if self.iso else BigInteger())
        if dialect.name == "postgresql":
            return dialect.type_descriptor(
                postgresql.TIMESTAMP(timezone=self.timezone, precision=self.precision)
            )
        return dialect.type_descriptor(DateTime(timezone=self.timezone))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = _utc(value)
        if dialect.name == "sqlite":
            if self.iso:
                # Four-digit years, as toISOString writes them (strftime does not pad).
                return (
                    f"{value.year:04d}"
                    + value.strftime("-%m-%dT%H:%M:%S.")
                    + (f"{value.microsecond // 1000:03d}Z")
                )
            return (value - _EPOCH) // _MILLISECOND
        return value if self.timezone else value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        # What another tool left that is no time (text, a blob, a number out of range)
        # reads as none: a record is never unreadable for one column.
        try:
            if isinstance(value, bool):
                return None
            if isinstance(value, int | float):
                return _utc(_EPOCH + timedelta(milliseconds=value))
            if isinstance(value, str):
                return _utc(datetime.fromisoformat(value.replace(" ", "T")))
            if isinstance(value, datetime):
                return _utc(value)
        except (ValueError, OverflowError):
            return None
        return None


class Flag(TypeDecorator[bool]):
    """A boolean; with ``integer``, on SQLite in an ``integer`` column (0 or 1), as
    Better Auth's migration declares them."""

    impl = Boolean
    cache_ok = True

    def __init__(self, *, integer: bool = False) -> None:
        super().__init__()
        self.integer = integer

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if self.integer and dialect.name == "sqlite":
            return dialect.type_descriptor(Integer())
        return dialect.type_descriptor(Boolean())

    def process_bind_param(self, value: bool | None, dialect: Dialect) -> Any:
        if value is None or not (self.integer and dialect.name == "sqlite"):
            return value
        return 1 if value else 0

    def process_result_value(self, value: Any, dialect: Dialect) -> bool | None:
        if value is None:
            return None
        # Only what a boolean column or Better Auth writes counts as true: text such as
        # "false", left by another tool, is not a verified address.
        return value is True or (type(value) is int and value == 1)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _sql_type(logical: Logical, preset: Preset) -> TypeEngine[Any]:
    if logical == "serial" or logical == "int":
        return Integer()
    if logical == "bigint":
        return BigInteger()
    if logical == "varchar":
        return String(255)
    iso = preset.sqlite_times == "iso"
    if logical == "bool":
        return Flag(integer=iso)
    if logical == "time":
        return Moment(timezone=preset.timezone, precision=preset.precision, iso=iso)
    return Text()


def _table(metadata: MetaData, spec: TableSpec, preset: Preset) -> Table:
    columns = [
        Column(
            column.name,
            _sql_type(column.type, preset),
            nullable=column.nullable,
            unique=column.unique or None,
            autoincrement=column.type == "serial",
            key=column.name,
        )
        for column in spec.columns
    ]
    constraints: list[Any] = []
    if spec.primary_key:
        constraints.append(PrimaryKeyConstraint(*spec.primary_key))
    constraints.extend(UniqueConstraint(*names) for names in spec.unique)
    table = Table(spec.name, metadata, *columns, *constraints)
    for name in (spec.user_column, *spec.indexed):
        if name:
            Index(f"{spec.name}_{name}_idx", table.c[name])
    for names in spec.unique_indexes:
        Index(f"{spec.name}_{'_'.join(names)}_key", *(table.c[name] for name in names), unique=True)
    return table


def build_metadata(preset: Preset) -> tuple[MetaData, dict[str, Table]]:
    """The preset's tables and ours, as SQLAlchemy ``Table`` objects by kind.

    Kinds: those of :data:`KINDS`, and ``"extra"``, ``"revocations"``, ``"rate_limits"``.
    """
    metadata = MetaData()
    tables: dict[str, Table] = {
        kind: _table(metadata, preset.tables[kind], preset) for kind in KINDS
    }
    tables["extra"] = Table(
        EXTRA,
        metadata,
        # Insertion order, which orders records created at one moment.
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("kind", Text, nullable=False),
        Column("key", Text, nullable=False),
        # The user the record belongs to, so that delete_user finds what to delete.
        Column("user_id", Text, nullable=True, index=True),
        Column("data", Text, nullable=False),
        UniqueConstraint("kind", "key", name=f"{EXTRA}_kind_key"),
    )
    tables["revocations"] = Table(
        REVOCATIONS,
        metadata,
        Column("user_id", Text, primary_key=True),
        Column("revoked_before", Moment(timezone=True), nullable=False),
    )
    tables["rate_limits"] = Table(
        RATE_LIMITS,
        metadata,
        Column("key", Text, primary_key=True),
        Column("count", BigInteger, nullable=False),
        Column("expires", Double, nullable=False, index=True),
    )
    return metadata, tables


# -- checking existing tables ------------------------------------------------------------

#: What a reflected column type is, broadly.
Family = Literal["text", "integer", "number", "timestamp", "timestamptz", "date", "bool", "other"]


def type_family(type_: TypeEngine[Any]) -> Family:
    """The broad family of a reflected column type."""
    from sqlalchemy import types

    if isinstance(type_, types.Boolean):
        return "bool"
    if isinstance(type_, types.Integer):
        return "integer"
    if isinstance(type_, types.DateTime):
        return "timestamptz" if getattr(type_, "timezone", False) else "timestamp"
    if isinstance(type_, types.Date):
        return "date"
    if isinstance(type_, types.String):
        return "text"
    if isinstance(type_, types.Float | types.Numeric):
        return "number"
    return "other"


def expected_types(declared: TypeEngine[Any], dialect: str) -> frozenset[Family]:
    """The families an existing column may have where we declare ``declared``."""
    if isinstance(declared, Moment):
        if dialect == "sqlite":
            # SQLite keeps any value in any column: what counts is the declared affinity.
            return frozenset({"integer", "timestamp", "timestamptz", "number", "date"})
        return frozenset({"timestamptz" if declared.timezone else "timestamp"})
    family = "bool" if isinstance(declared, Flag) else type_family(declared)
    if family == "bool" and dialect == "sqlite":
        return frozenset({"bool", "integer"})
    return frozenset({family})
