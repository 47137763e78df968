"""Users, accounts, sessions, verification tokens and passkeys in PostgreSQL or SQLite,
in the tables Auth.js's SQL adapters use, or Better Auth's.

``schema`` names the layout (see :mod:`asgi_session.backends._sql_schema` for where
each comes from): ``"drizzle"`` (the default), ``"prisma"``, ``"authjs-pg"`` or
``"better-auth"``. Rows are written as those adapters (and Better Auth's Kysely adapter)
write them, so a Next.js app and a Python app can share one database. Fields a table
has no column for (a session's ``lastSeenAt``, a passkey's ``name``, an app's own
fields) go to a side table, ``asgi_session_extra``, as JSON, and come back exactly as on
MongoDB; columns an app added to a table itself are read and written as fields of
their own name (``User.extra``).

SQLAlchemy's asynchronous Core, over asyncpg or aiosqlite
(``pip install 'asgi-session[sql]'``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeGuard, TypeVar

from asgi_session.errors import BackendUnavailableError, ConfigurationError, DuplicateRecordError

try:
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ConfigurationError(
        "SQLAdapter needs SQLAlchemy with asyncpg or aiosqlite: pip install 'asgi-session[sql]'"
    ) from missing

from asgi_session.backends import _records as records
from asgi_session.backends._adapter import (
    AccountInput,
    AuthenticatorInput,
    SessionInput,
    UserInput,
    VerificationTokenInput,
)
from asgi_session.backends._sql_schema import (
    DEFAULT_PRESET,
    KINDS,
    PRESETS,
    ColumnSpec,
    Moment,
    Preset,
    build_metadata,
    expected_types,
    type_family,
)
from asgi_session.models import Account, Authenticator, SessionRecord, User, VerificationToken

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

    from asgi_session._ratelimit import Window

__all__ = ["SQLAdapter", "SQLRateLimitStore"]

_logger = logging.getLogger("asgi_session")

_T = TypeVar("_T")
_P = ParamSpec("_P")
# A row as SQLAlchemy gives it, or a dict of its columns.
_RowData = Mapping[Any, Any]

# Ids written by Prisma (cuid, cuid2) and Drizzle (UUID): taken as they are, unchecked.
_TEXT_ID = re.compile(
    r"c[a-z0-9]{24}|[a-z][a-z0-9]{23,31}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
# The longest text id looked up (an app's own ids may have any shape, within reason).
_MAX_TEXT_ID = 255
_MAX_SERIAL = 2**31 - 1
_ID_BYTES = 12  # 24 hex digits, the shape every adapter of this package gives ids
# The execution option asking for a write transaction on SQLite.
_IMMEDIATE = "asgi_session_immediate"
# What SQLite's errors say when the file, not the statement, is wrong.
_SQLITE_OUTAGES = (
    "unable to open",
    "locked",
    "disk",
    "readonly",
    "not a database",
    "malformed",
    "corrupt",
    "no such table",
)
# Ended rate limit windows are deleted at most this often (seconds).
_RATE_LIMIT_SWEEP = 60.0
# Keys of the JSON kept in asgi_session_extra for values JSON has no type for.
_DATE = "$date"
_BYTES = "$bytes"


def _renamed(preset: Preset, tables: Mapping[str, str]) -> Preset:
    """``preset`` with the tables ``tables`` names under other names (an app's own
    ``app_users``): the same columns, wherever the rows live."""
    unknown = sorted(set(tables) - set(KINDS))
    if unknown:
        raise ConfigurationError(
            f"SQLAdapter(tables=...) names no table {unknown[0]!r}; the tables are "
            + ", ".join(repr(kind) for kind in KINDS)
        )
    for kind, name in tables.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(
                f"SQLAdapter(tables={{{kind!r}: {name!r}}}) needs a table name"
            )
    renamed = {
        kind: dataclasses.replace(spec, name=tables.get(kind, spec.name))
        for kind, spec in preset.tables.items()
    }
    return dataclasses.replace(preset, tables=MappingProxyType(renamed))


def _prepared(
    method: Callable[Concatenate[SQLAdapter, _P], Coroutine[Any, Any, _T]],
) -> Callable[Concatenate[SQLAdapter, _P], Coroutine[Any, Any, _T]]:
    """Have the tables ready (and the app's own columns known) before the first call."""

    async def prepared(self: SQLAdapter, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        if not self._ready:
            await self._first_use()
        return await method(self, *args, **kwargs)

    functools.update_wrapper(prepared, method)  # its name and docstring
    return prepared


class SQLAdapter:
    """An :class:`~asgi_session.backends.Adapter` (and
    :class:`~asgi_session.backends.AuthenticatorStore`) over PostgreSQL or SQLite.

    ``database`` is a URL (``postgresql+asyncpg://user@host/db``,
    ``sqlite+aiosqlite:///auth.db``) or an ``AsyncEngine`` of your own; ``schema`` the
    table layout: ``"drizzle"`` (default), ``"prisma"``, ``"authjs-pg"`` or
    ``"better-auth"`` (Better Auth's tables, made by its migration); ``tables``
    other names for its tables, by kind (``{"users": "app_users"}``: ``users``,
    ``accounts``, ``sessions``, ``verification_tokens``, ``authenticators``). Tables in
    another PostgreSQL schema (Drizzle's ``pgSchema("auth")``): an engine whose
    connections set ``search_path``, ``create_async_engine(url, connect_args={
    "server_settings": {"search_path": "auth"}})``.

    Tables are created on first use when missing (:meth:`create_tables`), never altered
    (but for the unique index ``"better-auth"`` adds to Better Auth's ``account``):
    an existing table whose columns do not fit the preset is a
    :class:`~asgi_session.errors.ConfigurationError` naming the table, the column and
    the preset. :attr:`metadata` holds every table, for an app's own migrations.

    Every call either finishes or raises
    :class:`~asgi_session.errors.BackendUnavailableError` within ``operation_timeout``
    seconds; the pool checks connections before use (``pool_pre_ping``, for engines
    made here), so the adapter recovers by itself once the database is back. On SQLite,
    calls of one adapter run one at a time (one writer, as SQLite allows).
    """

    def __init__(
        self,
        database: str | AsyncEngine,
        *,
        schema: str = DEFAULT_PRESET,
        tables: Mapping[str, str] | None = None,
        operation_timeout: float = 5.0,
    ) -> None:
        preset = PRESETS.get(schema) if isinstance(schema, str) else None
        if preset is None:
            known = ", ".join(repr(name) for name in PRESETS)
            raise ConfigurationError(f"SQLAdapter(schema={schema!r}) must be one of {known}")
        if tables:
            preset = _renamed(preset, tables)
        if not operation_timeout > 0:
            raise ConfigurationError("operation_timeout must be a positive number of seconds")
        self._timeout = float(operation_timeout)
        self._engine, self._owns_engine = _engine(database, self._timeout)
        self._dialect = self._engine.dialect.name
        if self._dialect == "sqlite":
            settings = functools.partial(_sqlite_settings, busy_ms=int(self._timeout * 1000))
            sa.event.listen(self._engine.sync_engine, "connect", settings)
            sa.event.listen(self._engine.sync_engine, "begin", _sqlite_begin)
        self._preset: Preset = preset
        self.metadata, self._tables = build_metadata(preset)
        # The tables as they are, the app's own columns included: set by _prepare.
        self._live: dict[str, sa.Table] = dict(self._tables)
        self._columns: dict[str, dict[str, str]] = {
            kind: dict(preset.tables[kind].fields) for kind in KINDS
        }
        # The preset's columns by kind and name: how each holds its field.
        self._specs: dict[str, dict[str, ColumnSpec]] = {
            kind: {column.name: column for column in preset.tables[kind].columns} for kind in KINDS
        }
        self._insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        self._serial = asyncio.Lock() if self._dialect == "sqlite" else None
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self._unreachable = False
        self._rate_limit_store: SQLRateLimitStore | None = None
        self._session_and_user_query: Any = None

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine the adapter runs on."""
        return self._engine

    @property
    def schema(self) -> str:
        """The name of the table layout (preset) in use."""
        return self._preset.name

    async def close(self) -> None:
        """Close the connections of an engine the adapter made from a URL."""
        if self._owns_engine:
            await self._engine.dispose()

    # -- setup -------------------------------------------------------------------------

    async def create_tables(self) -> None:
        """Create the tables that are missing (only those), then :meth:`check_tables`;
        add the preset's unique indexes an existing table lacks (Better Auth's
        ``account`` has none on ``("providerId", "accountId")``).

        Safe to call any number of times, and from several processes at start-up.
        """
        await self._prepare(create=True)

    async def check_tables(self) -> None:
        """Check that every table exists with columns of the preset's types.

        Raises :class:`~asgi_session.errors.ConfigurationError` naming the table, the
        column and the preset otherwise. Columns an app added are kept, and read.
        """
        await self._prepare(create=False)

    async def ensure_indexes(self) -> None:
        """What the adapter contract calls at start-up: :meth:`create_tables`."""
        await self.create_tables()

    def rate_limit_store(self) -> SQLRateLimitStore:
        """Rate limit counters in this database (``asgi_session_rate_limits``): what
        ``AuthConfig(adapter=...)`` counts in by default, so every app instance sharing
        the database shares the limits. The same store each time."""
        if self._rate_limit_store is None:
            self._rate_limit_store = SQLRateLimitStore(self)
        return self._rate_limit_store

    async def _prepare(self, *, create: bool) -> None:
        async with self._ready_lock:
            await self._prepare_unlocked(create)

    async def _first_use(self) -> None:
        """Create the missing tables, once, before the first call that needs them."""
        async with self._ready_lock:
            if not self._ready:
                await self._prepare_unlocked(True)

    async def _prepare_unlocked(self, create: bool) -> None:
        extra_columns = await self._guarded(lambda: self._inspect(create))
        self._adopt(extra_columns)
        self._ready = True

    async def _inspect(self, create: bool) -> dict[str, list[sa.Column[Any]]]:
        async with self._connection(write=create) as connection:
            return await connection.run_sync(self._inspect_sync, create)

    def _inspect_sync(
        self, connection: Connection, create: bool
    ) -> dict[str, list[sa.Column[Any]]]:
        if create:
            self.metadata.create_all(connection, checkfirst=True)
        inspector = sa.inspect(connection)
        existing = set(inspector.get_table_names())
        extra_columns: dict[str, list[sa.Column[Any]]] = {}
        for kind, table in self._tables.items():
            if table.name not in existing:
                raise ConfigurationError(
                    f"table {table.name!r} of the {self.schema!r} preset does not exist: "
                    "call `await adapter.create_tables()`, or create it in your migrations"
                )
            found = {column["name"]: column for column in inspector.get_columns(table.name)}
            for column in table.columns:
                self._check_column(table.name, column, found.get(column.name))
            if kind in KINDS:
                extra_columns[kind] = [
                    sa.Column(
                        name, self._own_type(info["type"]), nullable=info.get("nullable", True)
                    )
                    for name, info in found.items()
                    if name not in table.c
                ]
        if create:
            self._add_unique_indexes(connection)
        return extra_columns

    def _add_unique_indexes(self, connection: Connection) -> None:
        """Add the preset's unique indexes to the tables another tool made without them
        (Better Auth's ``account`` has none on its provider and account id)."""
        for table in self._tables.values():
            for index in sorted(table.indexes, key=lambda index: str(index.name)):
                if not index.unique:
                    continue
                try:
                    index.create(connection, checkfirst=True)
                except sa_exc.IntegrityError as exc:
                    names = ", ".join(repr(column.name) for column in index.columns)
                    raise ConfigurationError(
                        f"table {table.name!r} has rows with the same {names}, which the "
                        f"{self.schema!r} preset keeps unique (index {index.name!r}): "
                        "remove the duplicates, then start again"
                    ) from exc

    def _check_column(
        self, table: str, column: sa.Column[Any], found: Mapping[str, Any] | None
    ) -> None:
        if found is None:
            raise ConfigurationError(
                f"table {table!r} has no column {column.name!r}, which the {self.schema!r} "
                "preset needs: add it, or choose the preset the table was made for "
                f"(one of {', '.join(repr(name) for name in PRESETS)})"
            )
        allowed = expected_types(column.type, self._dialect)
        if type_family(found["type"]) not in allowed:
            raise ConfigurationError(
                f"column {column.name!r} of table {table!r} is {found['type']}, where the "
                f"{self.schema!r} preset keeps {' or '.join(sorted(allowed))}: "
                "fix the column type, or choose the preset the table was made for"
            )

    def _own_type(self, reflected: Any) -> Any:
        """The type an app's own column is used with: a time, as every other, aware UTC
        to the millisecond (read and written so, on SQLite as the preset writes times:
        a Better Auth ``date`` column holds ISO text), else the column's own type."""
        iso = self._preset.sqlite_times == "iso"
        if isinstance(reflected, sa.DateTime) or (
            iso and self._dialect == "sqlite" and isinstance(reflected, sa.Date)
        ):
            return Moment(
                timezone=bool(getattr(reflected, "timezone", True)),
                precision=getattr(reflected, "precision", None),
                iso=iso,
            )
        return reflected

    def _adopt(self, extra_columns: Mapping[str, list[sa.Column[Any]]]) -> None:
        """Read and write the app's own columns as fields of their own name."""
        self._session_and_user_query = None  # built again over the tables as they are
        for kind in KINDS:
            own = extra_columns.get(kind, [])
            spec = self._preset.tables[kind]
            fields = dict(spec.fields)
            table = self._tables[kind]
            if own:
                table = table.to_metadata(sa.MetaData())
                for column in own:
                    table.append_column(column)
                    fields.setdefault(column.name, column.name)
            self._live[kind] = table
            self._columns[kind] = fields

    # -- users -------------------------------------------------------------------------

    @_prepared
    async def create_user(self, user: UserInput) -> User:
        """Store a new user with the fields given. An ``id`` of 24 hex digits is kept
        (where ids are text), else one is made; on ``"authjs-pg"`` the database numbers
        users.

        Raises :class:`DuplicateRecordError` when another user has the same email (or
        the given id).
        """
        chosen, fields = records.user_input(user, parse_id=records.hex_id)
        row, extra = self._split("users", fields)
        if not self._preset.integer_ids:
            row["id"] = chosen or _new_id()
        self._stamp("users", row, created=True)
        self._require_user_columns(row, created=True)
        users = self._live["users"]

        async def create(connection: AsyncConnection) -> User:
            stored = (await connection.execute(users.insert().values(row).returning(users))).one()
            user_id = str(stored.id)
            if extra:
                await self._put_extra(connection, "user", user_id, user_id, extra)
            return self._user(stored._mapping, extra)

        return await self._run(
            create, duplicate={"id": records.DUPLICATE_USER_ID, "email": records.DUPLICATE_EMAIL}
        )

    @_prepared
    async def get_user(self, id: str) -> User | None:
        """The user with this id, or ``None``."""
        user_id = self._user_id(id)
        if user_id is None:
            return None
        return await self._find_user(self._live["users"].c.id == self._id_value(user_id))

    @_prepared
    async def get_user_by_email(self, email: str) -> User | None:
        """The user with exactly this email, or ``None``."""
        if not _text(email):
            return None
        return await self._find_user(self._live["users"].c.email == email)

    @_prepared
    async def get_user_by_account(self, *, provider: str, provider_account_id: str) -> User | None:
        """The user a provider account is linked to, in one round trip."""
        where = self._account_where(provider, provider_account_id)
        if where is None:
            return None
        users, accounts = self._live["users"], self._live["accounts"]
        joined = accounts.join(users, users.c.id == self._column("accounts", "user_id"))
        return await self._find_user(where, joined)

    @_prepared
    async def update_user(self, user: UserInput) -> User | None:
        """Set the given fields of the user named by ``id``; ``None`` when there is none.

        Columns the update does not name are left as they are. Raises
        :class:`DuplicateRecordError` when the new email belongs to another user.
        """
        user_id, changes = records.user_input(user, parse_id=self._user_id)
        if user_id is None:
            return None
        if not changes:
            return await self.get_user(user_id)
        users = self._live["users"]
        row, extra = self._split("users", changes)
        if row:
            self._stamp("users", row, created=False)
        self._require_user_columns(row, created=False)
        where = users.c.id == self._id_value(user_id)

        async def update(connection: AsyncConnection) -> User | None:
            stored = await self._update_row(connection, users, where, row)
            if stored is None:
                return None
            merged = await self._merge_extra(connection, "user", user_id, user_id, extra)
            return self._user(stored, merged)

        return await self._run(update, duplicate={"email": records.DUPLICATE_EMAIL})

    @_prepared
    async def delete_user(self, id: str) -> User | None:
        """Delete the user with their sessions, linked accounts, authenticators and
        extra fields, in one transaction; returns the user."""
        user_id = self._user_id(id)
        if user_id is None:
            return None
        value = self._id_value(user_id)
        users, extra = self._live["users"], self._tables["extra"]

        async def delete(connection: AsyncConnection) -> User | None:
            stored = (
                await connection.execute(users.delete().where(users.c.id == value).returning(users))
            ).first()
            if stored is None:
                return None
            extras = await connection.execute(
                extra.delete()
                .where(sa.or_(extra.c.user_id == user_id, _extra_key(extra, "user", user_id)))
                .returning(extra.c.kind, extra.c.key, extra.c.data)
            )
            fields = next(
                (_load(row.data) for row in extras if (row.kind, row.key) == ("user", user_id)),
                {},
            )
            for kind in ("accounts", "sessions", "authenticators"):
                table = self._live[kind]
                await connection.execute(
                    table.delete().where(self._column(kind, "user_id") == value)
                )
            return self._user(stored._mapping, fields)

        return await self._run(delete)

    async def _find_user(
        self, where: sa.ColumnElement[bool], source: sa.FromClause | None = None
    ) -> User | None:
        users, extra = self._live["users"], self._tables["extra"]
        joined = (source if source is not None else users).outerjoin(
            extra, sa.and_(extra.c.kind == "user", extra.c.key == self._id_text(users.c.id))
        )
        query = sa.select(users, extra.c.data.label("__extra")).select_from(joined)
        found = await self._run(lambda c: _first(c, query.where(where).limit(1)), write=False)
        if found is None:
            return None
        return self._user(found, _load(found["__extra"]))

    # -- accounts ----------------------------------------------------------------------

    @_prepared
    async def link_account(self, account: AccountInput) -> Account:
        """Link a provider account to a user.

        Raises :class:`DuplicateRecordError` when this (provider, provider account id) is
        already linked, and ``ValueError`` for invalid input (see
        :func:`~asgi_session.backends._records.account_input`).
        """
        fields = records.account_input(account, parse_id=self._user_id)
        row, extra = self._split("accounts", fields)
        if "id" not in self._live["accounts"].c:
            extra["id"] = _new_id()
        self._stamp("accounts", row, created=True)
        key = _account_key(fields["provider"], fields["provider_account_id"])
        accounts = self._live["accounts"]

        async def link(connection: AsyncConnection) -> Account:
            await self._check_owner(connection, fields["user_id"])
            stored = (
                await connection.execute(accounts.insert().values(row).returning(accounts))
            ).one()
            await self._put_extra(connection, "account", key, fields["user_id"], extra)
            return self._account(stored._mapping, dict(extra))

        return await self._run(
            link,
            duplicate={
                self._columns["accounts"]["provider"]: records.DUPLICATE_ACCOUNT,
                self._columns["accounts"]["provider_account_id"]: records.DUPLICATE_ACCOUNT,
            },
        )

    @_prepared
    async def unlink_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        """Remove a linked account; returns it, or ``None`` when it was not linked."""
        where = self._account_where(provider, provider_account_id)
        if where is None:
            return None
        accounts = self._live["accounts"]
        key = _account_key(provider, provider_account_id)

        async def unlink(connection: AsyncConnection) -> Account | None:
            found = await self._delete_row(connection, accounts, where, "account", key)
            return self._account(*found) if found is not None else None

        return await self._run(unlink)

    @_prepared
    async def get_account(self, *, provider: str, provider_account_id: str) -> Account | None:
        """The linked account, or ``None``."""
        where = self._account_where(provider, provider_account_id)
        if where is None:
            return None
        key = _account_key(provider, provider_account_id)
        found = await self._run(
            lambda c: self._find(c, "accounts", "account", key, where), write=False
        )
        return self._account(*found) if found is not None else None

    @_prepared
    async def update_account(
        self, *, provider: str, provider_account_id: str, data: Mapping[str, Any]
    ) -> Account | None:
        """Update stored token fields (``access_token``, ``refresh_token``, ``expires_at``...).

        The fields naming the account and its user cannot change, nor ``type`` become
        ``None`` (``ValueError``). Returns the updated account, or ``None`` when it is
        not linked.
        """
        changes = records.account_changes(data)
        where = self._account_where(provider, provider_account_id)
        if where is None:
            return None
        key = _account_key(provider, provider_account_id)
        row, extra = self._split("accounts", changes)
        if row:
            self._stamp("accounts", row, created=False)
        accounts = self._live["accounts"]

        async def update(connection: AsyncConnection) -> Account | None:
            stored = await self._update_row(connection, accounts, where, row)
            if stored is None:
                return None
            merged = await self._merge_extra(
                connection, "account", key, self._owner("accounts", stored), extra
            )
            return self._account(stored, merged)

        return await self._run(update)

    def _account_where(self, provider: object, provider_account_id: object) -> Any:
        """The condition finding one linked account; ``None`` when the key is not two
        strings."""
        if not _text(provider) or not _text(provider_account_id):
            return None
        return sa.and_(
            self._column("accounts", "provider") == self._value("accounts", "provider", provider),
            self._column("accounts", "provider_account_id") == provider_account_id,
        )

    # -- sessions ----------------------------------------------------------------------

    @_prepared
    async def create_session(self, session: SessionInput) -> SessionRecord:
        """Store a database session. ``created_at`` defaults to now and ``last_seen_at``
        to ``created_at``.

        Raises :class:`DuplicateRecordError` when the token exists and ``ValueError`` for
        invalid input (see :func:`~asgi_session.backends._records.session_input`).
        """
        fields = records.session_input(session, parse_id=self._user_id)
        row, extra = self._split("sessions", fields)
        sessions = self._live["sessions"]
        if "id" not in sessions.c:
            extra["id"] = _new_id()
        self._stamp("sessions", row, created=True)
        token = fields["session_token"]

        async def create(connection: AsyncConnection) -> SessionRecord:
            await self._check_owner(connection, fields["user_id"])
            stored = (
                await connection.execute(sessions.insert().values(row).returning(sessions))
            ).one()
            await self._put_extra(connection, "session", token, fields["user_id"], extra)
            return self._session(stored._mapping, dict(extra))

        return await self._run(
            create,
            duplicate={self._columns["sessions"]["session_token"]: records.DUPLICATE_SESSION},
        )

    @_prepared
    async def get_session_and_user(self, session_token: str) -> tuple[SessionRecord, User] | None:
        """The session and its user, in one round trip (one join); ``None`` when either is
        missing. Expiry is not checked: the caller decides."""
        if not _text(session_token):
            return None
        sessions, users = self._live["sessions"], self._live["users"]
        query = self._session_and_user_query
        if query is None:
            query = self._session_and_user_query = self._build_session_and_user_query()
        try:
            found = await self._run(
                lambda c: _first(c, query, {"token": session_token}), write=False
            )
        except ValueError as exc:
            # A row the driver cannot decode (PostgreSQL holds times before year 1, which
            # Python has not): another tool's, and no session; the row is left as it is.
            _logger.warning("session row not readable, taken as no session: %s", exc)
            return None
        if found is None:
            return None
        session_row = {column.name: found[f"s_{column.name}"] for column in sessions.c}
        user_row = {column.name: found[f"u_{column.name}"] for column in users.c}
        return (
            self._session(session_row, _load(found["s__extra"])),
            self._user(user_row, _load(found["u__extra"])),
        )

    def _build_session_and_user_query(self) -> Any:
        """The join :meth:`get_session_and_user` runs, built once (the tables as they are,
        the app's own columns included, are known by then): building it anew took most
        of a lookup's time."""
        sessions, users = self._live["sessions"], self._live["users"]
        session_extra = self._tables["extra"].alias("session_extra")
        user_extra = self._tables["extra"].alias("user_extra")
        token = self._column("sessions", "session_token")
        joined = (
            sessions.join(users, users.c.id == self._column("sessions", "user_id"))
            .outerjoin(session_extra, _extra_key(session_extra, "session", token))
            .outerjoin(user_extra, _extra_key(user_extra, "user", self._id_text(users.c.id)))
        )
        return (
            sa.select(
                *(column.label(f"s_{column.name}") for column in sessions.c),
                *(column.label(f"u_{column.name}") for column in users.c),
                session_extra.c.data.label("s__extra"),
                user_extra.c.data.label("u__extra"),
            )
            .select_from(joined)
            .where(token == sa.bindparam("token"))
            .limit(1)
        )

    @_prepared
    async def get_session(self, session_token: str) -> SessionRecord | None:
        """The session alone, without its user, or ``None``: what a session cache that
        holds the user already needs. Expiry is not checked."""
        if not _text(session_token):
            return None
        where = self._column("sessions", "session_token") == session_token
        found = await self._run(
            lambda c: self._find(c, "sessions", "session", session_token, where), write=False
        )
        return self._session(*found) if found is not None else None

    @_prepared
    async def update_session(self, session: SessionInput) -> SessionRecord | None:
        """Set the given fields of the session named by ``session_token``.

        Returns the updated session, or ``None`` when there is none. The token itself
        cannot change; ``expires`` and ``user_id`` cannot become ``None``.
        """
        token, changes = records.session_changes(session, parse_id=self._user_id)
        if not _text(token):
            return None
        sessions = self._live["sessions"]
        row, extra = self._split("sessions", changes)
        if row:
            self._stamp("sessions", row, created=False)
        where = self._column("sessions", "session_token") == token

        async def update(connection: AsyncConnection) -> SessionRecord | None:
            if changes.get("user_id") is not None:
                await self._check_owner(connection, changes["user_id"])
            stored = await self._update_row(connection, sessions, where, row)
            if stored is None:
                return None
            merged = await self._merge_extra(
                connection, "session", token, self._owner("sessions", stored), extra
            )
            return self._session(stored, merged)

        return await self._run(update)

    @_prepared
    async def delete_session(self, session_token: str) -> SessionRecord | None:
        """Delete a session; returns it, or ``None`` when there was none."""
        if not _text(session_token):
            return None
        sessions = self._live["sessions"]
        where = self._column("sessions", "session_token") == session_token

        async def delete(connection: AsyncConnection) -> SessionRecord | None:
            found = await self._delete_row(connection, sessions, where, "session", session_token)
            return self._session(*found) if found is not None else None

        return await self._run(delete)

    @_prepared
    async def list_sessions(self, user_id: str) -> list[SessionRecord]:
        """The user's sessions, newest first (those created at one moment, the last
        created first; any without ``created_at`` last), expired ones included."""
        wanted = self._user_id(user_id)
        if wanted is None:
            return []
        where = self._column("sessions", "user_id") == self._id_value(wanted)
        found = await self._run(
            lambda c: self._find_all(c, "sessions", "session", where), write=False
        )
        listed = [(self._session(row, fields), order) for row, fields, order in found]
        listed.sort(key=_newest_first)
        return [session for session, _ in listed]

    @_prepared
    async def delete_sessions(self, user_id: str, *, except_token: str | None = None) -> int:
        """Delete the user's sessions, except ``except_token``'s; returns how many went."""
        wanted = self._user_id(user_id)
        if wanted is None:
            return 0
        sessions, extra = self._live["sessions"], self._tables["extra"]
        token = self._column("sessions", "session_token")
        where = self._column("sessions", "user_id") == self._id_value(wanted)
        if except_token is not None and _text(str(except_token)):
            where = sa.and_(where, token != str(except_token))

        async def delete(connection: AsyncConnection) -> int:
            tokens = list(
                (
                    await connection.execute(sessions.delete().where(where).returning(token))
                ).scalars()
            )
            if tokens:
                await connection.execute(
                    extra.delete().where(extra.c.kind == "session", extra.c.key.in_(tokens))
                )
            return len(tokens)

        return await self._run(delete)

    # -- verification tokens -----------------------------------------------------------

    @_prepared
    async def create_verification_token(
        self, verification_token: VerificationTokenInput
    ) -> VerificationToken:
        """Store a single-use token (``identifier``, hashed ``token``, ``expires``).

        Other fields are dropped. Raises :class:`DuplicateRecordError` when the same
        identifier and token are stored already, and ``ValueError`` when a field is
        missing or of the wrong type.

        One ``INSERT ... SELECT ... WHERE NOT EXISTS``: Better Auth's ``verification``
        table has no unique key on the pair (its own values may repeat), so the insert
        looks for a twin itself. Where the pair is the primary key (Auth.js's tables),
        the database also refuses a twin inserted at the same moment; in Better Auth's,
        two such inserts racing on PostgreSQL may both succeed (tokens are random).
        """
        created = records.verification_input(verification_token)
        row, _ = self._split("verification_tokens", dataclasses.asdict(created))
        self._stamp("verification_tokens", row, created=True)
        tokens = self._live["verification_tokens"]
        identifier = self._column("verification_tokens", "identifier")
        token = self._column("verification_tokens", "token")
        twin = sa.exists().where(identifier == created.identifier, token == created.token)
        values = sa.select(
            *(sa.literal(value, tokens.c[name].type).label(name) for name, value in row.items())
        ).where(~twin)
        statement = tokens.insert().from_select(list(row), values).returning(identifier)
        duplicate = {
            identifier.name: records.DUPLICATE_VERIFICATION,
            token.name: records.DUPLICATE_VERIFICATION,
        }
        stored = await self._run(lambda c: _first(c, statement), duplicate=duplicate)
        if stored is None:
            raise DuplicateRecordError(records.DUPLICATE_VERIFICATION)
        return created

    @_prepared
    async def use_verification_token(
        self, *, identifier: str, token: str
    ) -> VerificationToken | None:
        """Delete and return the token, in one ``DELETE ... RETURNING``: of concurrent
        uses, one gets it. Expiry is not checked."""
        if not _text(identifier) or not _text(token):
            return None
        tokens = self._live["verification_tokens"]
        statement = (
            tokens.delete()
            .where(
                self._column("verification_tokens", "identifier") == identifier,
                self._column("verification_tokens", "token") == token,
            )
            .returning(tokens)
        )
        found = await self._run(lambda c: _first(c, statement))
        if found is None:
            return None
        return records.verification_record(self._fields("verification_tokens", found, {}))

    @_prepared
    async def delete_verification_tokens(self, identifier: str) -> int:
        """Delete every token of ``identifier``; how many there were."""
        if not _text(identifier):
            return 0
        column = self._column("verification_tokens", "identifier")
        statement = (
            self._live["verification_tokens"].delete().where(column == identifier).returning(column)
        )
        deleted = await self._run(lambda c: _all(c, statement))
        return len(deleted)

    # -- authenticators (passkeys) -----------------------------------------------------

    @_prepared
    async def create_authenticator(self, authenticator: AuthenticatorInput) -> Authenticator:
        """Register a passkey. ``created_at`` defaults to now.

        Raises :class:`DuplicateRecordError` when the credential id is registered already,
        and ``ValueError`` for invalid input (see
        :func:`~asgi_session.backends._records.authenticator_input`).
        """
        fields = records.authenticator_input(authenticator, parse_id=self._user_id)
        row, extra = self._split("authenticators", fields)
        self._stamp("authenticators", row, created=True)
        table = self._live["authenticators"]
        credential_id = fields["credential_id"]

        async def create(connection: AsyncConnection) -> Authenticator:
            await self._check_owner(connection, fields["user_id"])
            stored = (await connection.execute(table.insert().values(row).returning(table))).one()
            await self._put_extra(
                connection, "authenticator", credential_id, fields["user_id"], extra
            )
            return self._authenticator(stored._mapping, dict(extra))

        return await self._run(
            create,
            duplicate={
                "credentialID": records.DUPLICATE_AUTHENTICATOR,
                "userId": records.DUPLICATE_AUTHENTICATOR,
            },
        )

    @_prepared
    async def get_authenticator(self, credential_id: str) -> Authenticator | None:
        """The authenticator with this credential id, or ``None``."""
        if not _text(credential_id):
            return None
        where = self._live["authenticators"].c.credentialID == credential_id
        found = await self._run(
            lambda c: self._find(c, "authenticators", "authenticator", credential_id, where),
            write=False,
        )
        return self._authenticator(*found) if found is not None else None

    @_prepared
    async def list_authenticators_by_user_id(self, user_id: str) -> list[Authenticator]:
        """The user's authenticators, oldest first (any without ``created_at`` first;
        those registered at one moment in the order they were)."""
        wanted = self._user_id(user_id)
        if wanted is None:
            return []
        where = self._live["authenticators"].c.userId == self._id_value(wanted)
        found = await self._run(
            lambda c: self._find_all(c, "authenticators", "authenticator", where), write=False
        )
        listed = [(self._authenticator(row, fields), order) for row, fields, order in found]
        listed.sort(key=_oldest_first)
        return [authenticator for authenticator, _ in listed]

    @_prepared
    async def update_authenticator_counter(
        self, credential_id: str, counter: int, *, used_at: datetime | None = None
    ) -> Authenticator | None:
        """Store ``counter`` (and ``used_at`` as ``last_used_at``) if the stored counter
        is lower, or both are 0; returns the updated authenticator.

        ``None`` when there is no such credential or the counter does not go up: a
        cloned authenticator, or an assertion replayed. One ``UPDATE`` whose ``WHERE``
        holds the condition, so of concurrent calls with one counter, one wins, on any
        number of app instances. Raises ``ValueError`` for a counter or time of the
        wrong type.
        """
        counter, used_at = records.counter_input(counter, used_at)
        if not _text(credential_id):
            return None
        table = self._live["authenticators"]
        changes: dict[str, Any] = {"counter": counter}
        if used_at is not None:
            changes["last_used_at"] = used_at
        row, extra = self._split("authenticators", changes)
        where = sa.and_(
            table.c.credentialID == credential_id,
            table.c.counter < counter if counter else table.c.counter <= 0,
        )
        return await self._update_authenticator_row(credential_id, where, row, extra)

    @_prepared
    async def update_authenticator(
        self, credential_id: str, data: Mapping[str, Any]
    ) -> Authenticator | None:
        """Set the given fields (``name``, mostly); ``None`` when there is no such credential.

        The fields naming the credential, its user, its key and its counter cannot change
        (``ValueError``; see :func:`~asgi_session.backends._records.authenticator_changes`).
        """
        changes = records.authenticator_changes(data)
        if not _text(credential_id):
            return None
        table = self._live["authenticators"]
        row, extra = self._split("authenticators", changes)
        where = table.c.credentialID == credential_id
        return await self._update_authenticator_row(credential_id, where, row, extra)

    async def _update_authenticator_row(
        self, credential_id: str, where: Any, row: dict[str, Any], extra: dict[str, Any]
    ) -> Authenticator | None:
        """Update the authenticator row ``where`` selects, and its extras, in one
        transaction; ``None`` when no row matches."""
        table = self._live["authenticators"]

        async def update(connection: AsyncConnection) -> Authenticator | None:
            stored = await self._update_row(connection, table, where, row)
            if stored is None:
                return None
            merged = await self._merge_extra(
                connection, "authenticator", credential_id, str(stored["userId"]), extra
            )
            return self._authenticator(stored, merged)

        return await self._run(update)

    @_prepared
    async def delete_authenticator(self, credential_id: str) -> Authenticator | None:
        """Delete an authenticator; returns it, or ``None`` when there was none."""
        if not _text(credential_id):
            return None
        table = self._live["authenticators"]
        where = table.c.credentialID == credential_id

        async def delete(connection: AsyncConnection) -> Authenticator | None:
            found = await self._delete_row(connection, table, where, "authenticator", credential_id)
            return self._authenticator(*found) if found is not None else None

        return await self._run(delete)

    # -- JWT revocation ----------------------------------------------------------------

    @_prepared
    async def revoke_tokens_issued_before(self, user_id: str, when: datetime) -> None:
        """Revoke the user's tokens issued before ``when``. The cut-off only moves forward
        (one upsert keeping the later time).

        Any non-empty string is a user id here: users who signed in with credentials in
        JWT mode need not be stored.
        """
        user_id, cutoff = records.revocation_input(user_id, when)
        _storable({"user_id": user_id})
        table = self._tables["revocations"]
        statement = self._insert(table).values(user_id=user_id, revoked_before=cutoff)
        later = (sa.func.greatest if self._dialect == "postgresql" else sa.func.max)(
            table.c.revoked_before, statement.excluded.revoked_before
        )
        upsert = statement.on_conflict_do_update(
            index_elements=[table.c.user_id], set_={"revoked_before": later}
        )
        await self._run(lambda c: c.execute(upsert))

    @_prepared
    async def tokens_revoked_before(self, user_id: str) -> datetime | None:
        """The user's revocation cut-off, or ``None`` when nothing was revoked."""
        if not _text(user_id):
            return None
        table = self._tables["revocations"]
        query = sa.select(table.c.revoked_before).where(table.c.user_id == user_id)
        found = await self._run(lambda c: _first(c, query), write=False)
        return found["revoked_before"] if found is not None else None

    # -- rows and records --------------------------------------------------------------

    def _user_id(self, value: object) -> str | None:
        """A user id's one spelling, or ``None`` when no user of this preset can have it.

        Serial ids are canonical numbers ("00001" is not user 1). Text ids may be any
        string an app wrote (a Node app may make its own, ``usr_...``): ours and the
        ORMs' known shapes are normalised, any other is taken as it is.
        """
        if not _text(value):
            return None
        if self._preset.integer_ids:
            if value.isascii() and value.isdigit() and len(value) < 11 and value == str(int(value)):
                return value if 0 < int(value) <= _MAX_SERIAL else None
            return None
        hex_id = records.hex_id(value)
        if hex_id is not None:
            return hex_id
        if _TEXT_ID.fullmatch(value.lower()):
            return value.lower() if "-" in value else value
        return value if 0 < len(value) <= _MAX_TEXT_ID else None

    async def _check_owner(self, connection: AsyncConnection, user_id: str) -> None:
        """Refuse a record naming a user id of no known shape unless that user exists:
        a typo in an id is a ``ValueError``, not a record nobody owns."""
        if (
            self._preset.integer_ids
            or records.hex_id(user_id) is not None
            or _TEXT_ID.fullmatch(user_id.lower())
        ):
            return
        users = self._live["users"]
        query = sa.select(sa.literal(1)).where(users.c.id == user_id).limit(1)
        if (await connection.execute(query)).scalar() is None:
            raise ValueError(f"user_id {user_id!r} is not a valid id")

    def _id_value(self, user_id: str) -> Any:
        """A parsed user id as the id columns hold it."""
        return int(user_id) if self._preset.integer_ids else user_id

    def _id_text(self, column: Any) -> Any:
        """An id column as text, the type of ``asgi_session_extra.key``."""
        return sa.cast(column, sa.Text) if self._preset.integer_ids else column

    def _column(self, kind: str, field: str) -> sa.Column[Any]:
        """The column holding ``field`` (a Python name) of the records of ``kind``."""
        return self._live[kind].c[self._columns[kind][field]]

    def _value(self, kind: str, field: str, value: Any) -> Any:
        """A field's value as its column holds it, to look it up."""
        described = self._specs[kind].get(self._columns[kind][field])
        if described is None or described.convert is None:
            return value
        return described.convert.write(value, field)

    def _owner(self, kind: str, row: _RowData) -> str:
        """The user id a stored row names, as text."""
        return str(row[self._columns[kind]["user_id"]])

    def _split(self, kind: str, fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Python-named fields as column values, and the fields that have no column (or
        whose value the column keeps only in part, kept aside whole too)."""
        columns, specs = self._columns[kind], self._specs[kind]
        row: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for name, value in fields.items():
            column = columns.get(name)
            if column is None:
                extra[name] = value
                continue
            described = specs.get(column)
            if described is not None and described.type in ("int", "bigint", "serial"):
                value = _whole(value, f"{name}")
            if described is not None and described.convert is not None:
                if described.convert.keeps_aside:
                    extra[name] = value
                value = described.convert.write(value, name)
            if name == "user_id" and value is not None:
                value = self._id_value(value)
            row[column] = value
        _storable(row)
        return row, extra

    def _stamp(self, kind: str, row: dict[str, Any], *, created: bool) -> None:
        """Fill what the preset's tool fills itself: times (Prisma's and Better Auth's
        createdAt, updatedAt), ids (Better Auth's, in every table) and, on insert, what
        a required column holds for a field not given (Better Auth's ``name``, ``""``)."""
        now = records.utc(datetime.now(UTC))
        for column in self._specs[kind].values():
            if column.managed == "updated" or (column.managed == "created" and created):
                row.setdefault(column.name, now)
            elif not created or column.name in row:
                continue
            elif column.managed == "id":
                row[column.name] = _ordered_id()
            elif column.convert is not None and column.field is not None:
                default = column.convert.write(None, column.field)
                if default is not None:
                    row[column.name] = default

    def _require_user_columns(self, row: Mapping[str, Any], *, created: bool) -> None:
        """Refuse (``ValueError``) a user without a field the preset's users table
        requires: an email, in Prisma's and Better Auth's (a name is ``""`` there)."""
        for column in self._specs["users"].values():
            if column.nullable or column.field is None:
                continue
            if created and row.get(column.name) is None:
                raise ValueError(f"a user needs {column.field}")
            if not created and column.name in row and row[column.name] is None:
                raise ValueError(f"a user's {column.field} cannot be None")

    def _fields(self, kind: str, row: _RowData, extra: Mapping[str, Any]) -> dict[str, Any]:
        """A stored row's fields (and those kept aside) under Python names."""
        specs = self._specs[kind]
        fields = dict(extra)
        fields.pop("id", None)
        for name, column in self._columns[kind].items():
            if column not in row:
                continue
            value = row[column]
            described = specs.get(column)
            if described is not None:
                if value is None and described.extra:
                    continue
                if described.convert is not None:
                    spec = self._preset.tables[kind]  # type: ignore[index]
                    value = described.convert.read(value, extra.get(name), row, spec)
            fields[name] = value
        for name, derive in self._preset.tables[kind].derived.items():  # type: ignore[index]
            if fields.get(name) is None:
                fields[name] = derive(fields)
        if fields.get("user_id") is not None:
            fields["user_id"] = str(fields["user_id"])
        return fields

    def _user(self, row: _RowData, extra: _RowData) -> User:
        return records.user_record(str(row["id"]), self._fields("users", row, extra))

    def _account(self, row: _RowData, extra: Mapping[str, Any]) -> Account:
        fields = self._fields("accounts", row, extra)
        key = _account_key(fields["provider"], fields["provider_account_id"])
        return records.account_record(_record_id(row, extra, key), fields)

    def _session(self, row: _RowData, extra: Mapping[str, Any]) -> SessionRecord:
        fields = self._fields("sessions", row, extra)
        return records.session_record(_record_id(row, extra, fields["session_token"]), fields)

    def _authenticator(self, row: _RowData, extra: Mapping[str, Any]) -> Authenticator:
        return records.authenticator_record(self._fields("authenticators", row, extra))

    async def _update_row(
        self, connection: AsyncConnection, table: sa.Table, where: Any, row: _RowData
    ) -> _RowData | None:
        """The row after setting ``row`` (locked for the transaction), or ``None``."""
        if row:
            statement: Any = table.update().where(where).values(dict(row)).returning(table)
        else:
            statement = sa.select(table).where(where)
            if self._dialect == "postgresql":
                statement = statement.with_for_update()
        found = (await connection.execute(statement)).first()
        return found._mapping if found is not None else None

    async def _find(
        self, connection: AsyncConnection, kind: str, extra_kind: str, key: str, where: Any
    ) -> tuple[_RowData, dict[str, Any]] | None:
        """One record's row and extra fields, in one query."""
        table, extra = self._live[kind], self._tables["extra"]
        query = (
            sa.select(table, extra.c.data.label("__extra"))
            .select_from(table.outerjoin(extra, _extra_key(extra, extra_kind, key)))
            .where(where)
            .limit(1)
        )
        found = await _first(connection, query)
        return (found, _load(found["__extra"])) if found is not None else None

    async def _find_all(
        self, connection: AsyncConnection, kind: str, extra_kind: str, where: Any
    ) -> list[tuple[_RowData, dict[str, Any], int]]:
        """Rows, extra fields and insertion order of the records ``where`` finds: the
        order of their ids where the table has ids (serial numbers, or ids we made, which
        sort as they were made), else of their extra fields."""
        table, extra = self._live[kind], self._tables["extra"]
        key = self._column(kind, "session_token" if kind == "sessions" else "credential_id")
        query = (
            sa.select(table, extra.c.data.label("__extra"), extra.c.seq.label("__seq"))
            .select_from(table.outerjoin(extra, _extra_key(extra, extra_kind, key)))
            .where(where)
        )
        rows = await _all(connection, query)
        by_id = "id" in table.c
        made = sorted(
            range(len(rows)),
            key=lambda index: rows[index]["id"] if by_id else rows[index]["__seq"] or 0,
        )
        order = {index: rank for rank, index in enumerate(made)}
        return [(row, _load(row["__extra"]), order[index]) for index, row in enumerate(rows)]

    async def _put_extra(
        self,
        connection: AsyncConnection,
        kind: str,
        key: str,
        user_id: str,
        data: Mapping[str, Any],
    ) -> None:
        """Store a new record's extra fields, replacing any a record of the same key
        left behind (a session Auth.js deleted, an account it unlinked)."""
        extra = self._tables["extra"]
        if not data:
            await connection.execute(extra.delete().where(_extra_key(extra, kind, key)))
            return
        statement = self._insert(extra).values(
            kind=kind, key=key, user_id=str(user_id), data=_dump(data)
        )
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=[extra.c.kind, extra.c.key],
                set_={"data": statement.excluded.data, "user_id": statement.excluded.user_id},
            )
        )

    async def _merge_extra(
        self,
        connection: AsyncConnection,
        kind: str,
        key: str,
        user_id: str,
        changes: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The record's extra fields with ``changes`` set; read under a row lock."""
        extra = self._tables["extra"]
        query: Any = sa.select(extra.c.data).where(_extra_key(extra, kind, key))
        if self._dialect == "postgresql" and changes:
            query = query.with_for_update()
        found = (await connection.execute(query)).scalar()
        fields = _load(found)
        if changes:
            fields.update(changes)
            await self._put_extra(connection, kind, key, user_id, fields)
        return fields

    async def _delete_row(
        self, connection: AsyncConnection, table: sa.Table, where: Any, kind: str, key: str
    ) -> tuple[_RowData, dict[str, Any]] | None:
        """Delete the row ``where`` names and the fields kept aside for it: the row and
        those fields, or ``None`` when there was no row."""
        stored = (await connection.execute(table.delete().where(where).returning(table))).first()
        fields = await self._drop_extra(connection, kind, key)
        return None if stored is None else (stored._mapping, fields)

    async def _drop_extra(self, connection: AsyncConnection, kind: str, key: str) -> dict[str, Any]:
        extra = self._tables["extra"]
        found = (
            await connection.execute(
                extra.delete().where(_extra_key(extra, kind, key)).returning(extra.c.data)
            )
        ).scalar()
        return _load(found)

    # -- plumbing ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _connection(self, *, write: bool = True) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction; on SQLite, one at a time, and one that writes
        holding the file's write lock from its start (``BEGIN IMMEDIATE``): another
        process cannot write between what it reads and what it writes from that. A
        read (``write=False``) on SQLite is one statement, run without ``BEGIN``."""
        if self._serial is None:
            async with self._engine.begin() as connection:
                yield connection
            return
        async with self._serial, self._engine.connect() as connection:
            await connection.execution_options(**{_IMMEDIATE: write})
            async with connection.begin():
                yield connection

    async def _run(
        self,
        work: Callable[[AsyncConnection], Awaitable[_T]],
        *,
        duplicate: Mapping[str, str] | None = None,
        write: bool = True,
    ) -> _T:
        """Run ``work`` in one transaction, the tables made ready first; ``write=False``
        for one that only reads.

        ``duplicate`` gives the message of the :class:`DuplicateRecordError` raised when
        a unique key refuses the write, by the key's first column.
        """
        if not self._ready:
            await self._first_use()

        async def transaction() -> _T:
            async with self._connection(write=write) as connection:
                return await work(connection)

        try:
            return await self._guarded(transaction)
        except sa_exc.IntegrityError as exc:
            raise self._refused(exc, duplicate) from exc

    async def _guarded(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """Bound an operation by ``operation_timeout`` and turn outages into one error
        type; a value the column cannot hold is a ``ValueError``."""
        try:
            async with asyncio.timeout(self._timeout):
                result = await operation()
        except (TimeoutError, OSError, sa_exc.TimeoutError) as exc:
            raise self._outage(exc) from exc
        except OverflowError as exc:  # sqlite3 refuses an integer beyond 64 bits so
            self._reachable()
            raise ValueError(f"a value does not fit its column: {_describe(exc)}") from exc
        except sa_exc.DBAPIError as exc:
            if self._is_outage(exc):
                raise self._outage(exc) from exc
            self._reachable()
            if _is_data_error(exc):
                raise ValueError(f"a value does not fit its column: {_describe(exc.orig)}") from exc
            raise
        self._reachable()
        return result

    def _refused(
        self, exc: sa_exc.IntegrityError, duplicate: Mapping[str, str] | None
    ) -> ValueError:
        """What a constraint refusing a write means, as an error that says so."""
        text = _describe(exc.orig, lines=10)
        columns = _unique_columns(exc)
        if columns is not None:
            message = (duplicate or {}).get(columns[0], "a record with the same unique key exists")
            return DuplicateRecordError(message)
        if "NOT NULL" in text.upper() or "null value" in text:
            return ValueError(
                f"a field the {self.schema!r} preset's tables require is missing: {text}"
            )
        if "FOREIGN KEY" in text.upper():
            return ValueError(
                f"the user_id names no stored user (a foreign key requires one): {text}"
            )
        return ValueError(f"the database refused the write: {text}")

    def _is_outage(self, exc: sa_exc.DBAPIError) -> bool:
        if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
            return True
        if self._dialect != "sqlite":
            return isinstance(exc, sa_exc.OperationalError)
        if not isinstance(exc, sa_exc.DatabaseError):
            return False
        # SQLite says "operational" (or "database error") of what is wrong with the
        # file: gone, locked, full, replaced by another or broken. Tables were checked
        # at start-up, so one missing since means the file is not the one checked.
        text = str(exc.orig).lower()
        return any(word in text for word in _SQLITE_OUTAGES)

    def _outage(self, cause: BaseException) -> BackendUnavailableError:
        if not self._unreachable:
            self._unreachable = True
            _logger.warning("The SQL database is unreachable: %s", _describe(cause))
        return BackendUnavailableError(f"the SQL database is unreachable ({type(cause).__name__})")

    def _reachable(self) -> None:
        if self._unreachable:
            self._unreachable = False
            _logger.info("The SQL database is reachable again")


class SQLRateLimitStore:
    """Rate limit counters in the adapter's database, shared by every app instance on it.

    One row per limit, window and (hashed) subject in ``asgi_session_rate_limits``
    (``key``, ``count``, ``expires``), counted by an atomic upsert
    (``INSERT ... ON CONFLICT DO UPDATE SET count = count + 1 RETURNING count``), so
    concurrent instances never lose a count; ended windows are deleted as counting goes
    on (at most once a minute). Made by :meth:`SQLAdapter.rate_limit_store`: it shares
    the adapter's engine, ``operation_timeout`` and outage handling
    (:class:`~asgi_session.errors.BackendUnavailableError`).
    """

    def __init__(self, adapter: SQLAdapter) -> None:
        self._adapter = adapter
        self._table = adapter._tables["rate_limits"]
        self._next_sweep = 0.0

    async def hit(self, windows: Sequence[Window], now: float) -> list[int]:
        """Count in every window, in one transaction: the counts, this request included."""
        table, insert = self._table, self._adapter._insert
        sweep = now >= self._next_sweep
        if sweep:
            self._next_sweep = now + _RATE_LIMIT_SWEEP

        async def count(connection: AsyncConnection) -> list[int]:
            if sweep:
                await connection.execute(table.delete().where(table.c.expires <= now))
            counts = []
            for window in windows:
                statement = insert(table).values(key=window.key, count=1, expires=window.expires)
                upsert = statement.on_conflict_do_update(
                    index_elements=[table.c.key], set_={"count": table.c.count + 1}
                ).returning(table.c.count)
                counts.append(int((await connection.execute(upsert)).scalar_one()))
            return counts

        return await self._adapter._run(count)

    async def release(self, windows: Sequence[Window], now: float) -> None:
        """Take one count back from every window, in one write."""
        table = self._table
        keys = [window.key for window in windows]
        statement = (
            table.update()
            .where(table.c.key.in_(keys), table.c.count > 0)
            .values(count=table.c.count - 1)
        )
        await self._adapter._run(lambda c: c.execute(statement))

    async def peek(self, windows: Sequence[Window], now: float) -> list[int]:
        """The counts of the windows, counting nothing (one query): for inspection."""
        table = self._table
        keys = [window.key for window in windows]
        query = sa.select(table.c.key, table.c.count).where(table.c.key.in_(keys))
        rows = await self._adapter._run(lambda c: _all(c, query), write=False)
        counts = {row["key"]: int(row["count"]) for row in rows}
        return [counts.get(key, 0) for key in keys]


# -- helpers -------------------------------------------------------------------------------


def _engine(database: object, timeout: float) -> tuple[AsyncEngine, bool]:
    """The engine to run on, and whether the adapter made it."""
    if isinstance(database, AsyncEngine):
        return database, False
    if not isinstance(database, str):
        raise ConfigurationError(
            "SQLAdapter needs a database URL (postgresql+asyncpg://..., sqlite+aiosqlite:///...) "
            f"or an AsyncEngine, not {type(database).__name__}"
        )
    try:
        url = make_url(database)
    except sa_exc.ArgumentError as exc:
        raise ConfigurationError(f"SQLAdapter: {database!r} is not a database URL") from exc
    backend = url.get_backend_name()
    if backend == "postgresql":
        url = url.set(drivername="postgresql+asyncpg")
        engine = create_async_engine(url, pool_pre_ping=True, connect_args={"timeout": timeout})
    elif backend == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
        engine = create_async_engine(url, pool_pre_ping=True)
    else:
        raise ConfigurationError(
            f"SQLAdapter works with PostgreSQL and SQLite, not {backend!r}: "
            "use a postgresql+asyncpg:// or sqlite+aiosqlite:/// URL"
        )
    return engine, True


def _sqlite_settings(connection: Any, _record: Any, *, busy_ms: int) -> None:
    """Foreign keys on (tables made by Drizzle or Prisma cascade through them), and a
    wait instead of an error while another process writes, as long as a call may last
    (``operation_timeout``)."""
    connection.isolation_level = None  # transactions begun by _sqlite_begin, not pysqlite
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """Begin SQLite transactions ourselves (SQLAlchemy's recipe for pysqlite, which
    would begin at the first write only): a write transaction ``IMMEDIATE``, taking the
    write lock before it reads what it merges. Our reads are one statement each, whole
    by itself: they begin none (no extra round trip); any other use of the engine a
    deferred one, as pysqlite would."""
    immediate = connection.get_execution_options().get(_IMMEDIATE)
    if immediate is None:
        connection.exec_driver_sql("BEGIN")
    elif immediate:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


async def _first(
    connection: AsyncConnection, statement: Any, parameters: Mapping[str, Any] | None = None
) -> _RowData | None:
    found: Row[Any] | None = (await connection.execute(statement, parameters)).first()
    return found._mapping if found is not None else None


async def _all(connection: AsyncConnection, statement: Any) -> list[_RowData]:
    return [row._mapping for row in await connection.execute(statement)]


def _extra_key(extra: Any, kind: str, key: Any) -> Any:
    return sa.and_(extra.c.kind == kind, extra.c.key == key)


def _account_key(provider: str, provider_account_id: str) -> str:
    """An account's key in ``asgi_session_extra``: both parts, unambiguously."""
    return json.dumps([provider, provider_account_id], separators=(",", ":"))


def _record_id(row: _RowData, extra: Mapping[str, Any], key: str) -> str:
    """An account's or a session's id: its id column, else the one we keep with its
    extra fields, else (one written by Auth.js into a table without ids) one made of
    its key, the same at every read."""
    if row.get("id") is not None:
        return str(row["id"])
    stored = extra.get("id")
    if isinstance(stored, str):
        return stored
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=_ID_BYTES).hexdigest()


def _new_id() -> str:
    return secrets.token_hex(_ID_BYTES)


class _OrderedIds:
    """Ids of 24 hex digits that sort in the order they were made: the microsecond
    (never the same twice in one process), then random digits. The ids we put in the
    id columns of Better Auth's tables (and of our passkeys table beside them):
    records made at one moment list in the order they were made."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> str:
        self._last = max(time.time_ns() // 1000, self._last + 1)
        return f"{self._last:013x}{secrets.token_hex(6)[:11]}"


_ordered_id = _OrderedIds()


def _whole(value: Any, name: str) -> Any:
    """An integer column's value: a whole-number float (JavaScript numbers) as an int."""
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{name} must be a whole number")
        return int(value)
    return value


def _is_data_error(exc: sa_exc.DBAPIError) -> bool:
    """Whether the database refused a value (SQLSTATE class 22, "data exception"), not
    the statement: the asyncpg dialect reports those as a bare ``DBAPIError``, the
    driver's own error (a ``ValueError`` when asyncpg refused to encode the value) its
    cause."""
    if isinstance(exc, sa_exc.DataError):
        return True
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):
        if isinstance(error, ValueError | OverflowError):
            return True
        if str(getattr(error, "sqlstate", None) or "").startswith("22"):
            return True
    return False


def _text(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a string a text column can hold: neither database holds a
    lone surrogate, nor PostgreSQL a NUL. A lookup of any other finds nothing."""
    if not isinstance(value, str):
        return False
    if value.isascii():
        return "\x00" not in value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable(row: Mapping[str, Any], name: str = "a field") -> None:
    """Refuse (``ValueError``) a string no column can hold, before writing it."""
    for column, value in row.items():
        if isinstance(value, str) and not _text(value):
            raise ValueError(f"{name} {column!r} holds a NUL or a lone surrogate")


def _unique_columns(exc: sa_exc.IntegrityError) -> list[str] | None:
    """The columns of the unique key a write collided with; ``None`` when it was no
    unique key that refused it."""
    cause = getattr(exc.orig, "__cause__", None)
    sqlstate = getattr(cause, "sqlstate", None) or getattr(exc.orig, "sqlstate", None)
    text = str(exc.orig)
    if sqlstate == "23505":
        detail = str(getattr(cause, "detail", "") or "")
        match = re.search(r"Key \((.*?)\)=", detail)
        if match is None:
            return [""]
        return [name.strip().strip('"') for name in match.group(1).split(",")]
    if "UNIQUE constraint failed:" in text:
        listed = text.split("UNIQUE constraint failed:", 1)[1].strip().splitlines()[0]
        return [name.strip().rsplit(".", 1)[-1] for name in listed.split(",")]
    return None


def _describe(exc: BaseException | None, *, lines: int = 1) -> str:
    if exc is None:
        return ""
    text = " ".join(str(exc).splitlines()[:lines]) if str(exc) else ""
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _newest_first(item: tuple[SessionRecord, int]) -> tuple[bool, float, int]:
    session, order = item
    if session.created_at is None:
        return (True, 0.0, -order)
    return (False, -session.created_at.timestamp(), -order)


def _oldest_first(item: tuple[Authenticator, int]) -> tuple[bool, float, int]:
    authenticator, order = item
    if authenticator.created_at is None:
        return (False, 0.0, order)
    return (True, authenticator.created_at.timestamp(), order)


# -- extra fields as JSON ----------------------------------------------------------------


def _dump(data: Mapping[str, Any]) -> str:
    return json.dumps(_encode(data, "a field"), separators=(",", ":"), allow_nan=False)


def _load(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    loaded = json.loads(text, object_hook=_decode)
    return loaded if isinstance(loaded, dict) else {}


def _encode(value: Any, name: str) -> Any:
    """A value as JSON can hold it: datetimes and bytes tagged, as MongoDB keeps them."""
    if isinstance(value, datetime):
        return {_DATE: records.utc(value).isoformat(timespec="milliseconds")}
    if isinstance(value, bytes):
        return {_BYTES: base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        encoded = {str(key): _encode(item, str(key)) for key, item in value.items()}
        return _escaped(encoded)
    if isinstance(value, list | tuple):
        return [_encode(item, name) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"{name} of type {type(value).__name__} cannot be stored")


def _escaped(document: dict[str, Any]) -> dict[str, Any]:
    """An app's own mapping that would read as a tag (one key starting with ``$``) with
    one more ``$``, taken off again on reading: ``{"$date": "x"}`` stays a mapping."""
    if len(document) == 1:
        [(key, item)] = document.items()
        if key.startswith("$"):
            return {"$" + key: item}
    return document


def _decode(document: dict[str, Any]) -> Any:
    """A tagged value; any other mapping as it is (what does not parse as its tag says,
    written by another tool, included), an escaped one unescaped."""
    if len(document) != 1:
        return document
    [(key, item)] = document.items()
    if key.startswith("$$"):
        return {key[1:]: item}
    if key == _DATE and isinstance(item, str):
        return _decoded_date(item, document)
    if key == _BYTES and isinstance(item, str):
        try:
            return base64.b64decode(item, validate=True)
        except ValueError:
            return document
    return document


def _decoded_date(text: str, document: dict[str, Any]) -> Any:
    """A tagged time as aware UTC (naive is UTC, as everywhere), or the mapping itself
    when it holds no time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return document
    return records.utc(moment)
