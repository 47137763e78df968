"""An app's own user model and asgi-session's users are one table (one collection).

The app maps a model of its own onto the table or collection the adapter keeps users
in, with a ``role`` of its own: a SQLAlchemy ORM model on the Drizzle preset's ``user``
table (SQLite and PostgreSQL), a Beanie document on MongoDB's ``users``. Signing up and
in through the real routes (email and password, database sessions) leaves the app's
column alone; the adapter shows it in ``User.extra`` and to the ``session`` callback;
``update_user`` sets only the fields it is given.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

import pytest
from beanie import Document, init_beanie
from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy import BigInteger, DateTime, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette

from asgi_session import Callbacks
from asgi_session.backends import Adapter
from asgi_session.backends.mongodb import MongoDBAdapter
from asgi_session.backends.sql import SQLAdapter
from tests.support.apps import client_for
from tests.support.passwords import Outbox, password_app, sign_in, sign_up, signed_in

EMAIL = "ada@example.com"


def with_role(session: dict[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """The app's ``session`` callback: the user's role, from the app's own column."""
    return {**session, "user": {**session["user"], "role": user["role"]}}


def with_role_or_member(session: dict[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """The same, for documents: one written before the app gave it a role has none."""
    return {**session, "user": {**session["user"], "role": user.get("role", "member")}}


def app_for(adapter: Adapter, session: Callable[..., Any]) -> Starlette:
    """The app: email and password accounts, database sessions, ``session`` callback."""
    return password_app(
        Outbox(), adapter=adapter, strategy="database", config_callbacks=Callbacks(session=session)
    )


async def sign_up_ada(app: Starlette) -> None:
    async with client_for(app) as client:
        assert signed_in(await sign_up(client))


async def session_of_a_new_sign_in(app: Starlette) -> dict[str, Any]:
    """Sign in on a browser of its own, and give the session JSON it sees."""
    async with client_for(app) as client:
        assert signed_in(await sign_in(client))
        session: dict[str, Any] = (await client.get("/auth/session")).json()
    return session


# -- SQLAlchemy ------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class AppUser(Base):
    """The app's users: the Drizzle preset's ``user`` table, plus the app's ``role``."""

    __tablename__ = "user"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text, unique=True)
    # Drizzle keeps times as milliseconds on SQLite, as `timestamp` on PostgreSQL.
    email_verified: Mapped[Any] = mapped_column(
        "emailVerified", DateTime().with_variant(BigInteger(), "sqlite"), nullable=True
    )
    image: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text, server_default="member")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """A SQLite file of the test's own, or an empty PostgreSQL database (synchronous, so
    that it may ask for the asynchronous PostgreSQL fixture)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The app's engine, its own tables made by its own metadata (as its migrations do)."""
    made = create_async_engine(database_url)
    async with made.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield made
    await made.dispose()


async def app_user(engine: AsyncEngine) -> AppUser:
    async with AsyncSession(engine) as orm:
        return (await orm.scalars(select(AppUser).where(AppUser.email == EMAIL))).one()


async def set_role(engine: AsyncEngine, role: str) -> None:
    async with AsyncSession(engine) as orm, orm.begin():
        user = (await orm.scalars(select(AppUser).where(AppUser.email == EMAIL))).one()
        user.role = role


async def test_an_orm_model_and_the_sql_adapter_share_the_user_table(
    engine: AsyncEngine,
) -> None:
    adapter = SQLAdapter(engine, schema="drizzle")
    app = app_for(adapter, with_role)

    await sign_up_ada(app)
    session = await session_of_a_new_sign_in(app)

    made = await app_user(engine)
    assert (made.email, made.role) == (EMAIL, "member"), "the column's default, as the app set it"
    assert session["user"] == {"email": EMAIL, "role": "member"}

    await set_role(engine, "admin")
    session = await session_of_a_new_sign_in(app)

    assert session["user"] == {"email": EMAIL, "role": "admin"}
    assert (await app_user(engine)).role == "admin", "signing in left the role alone"
    user = await adapter.get_user(made.id)
    assert user is not None and user.extra == {"role": "admin"}

    renamed = await adapter.update_user({"id": made.id, "name": "Ada L."})
    assert renamed is not None and renamed.extra == {"role": "admin"}
    seen = await app_user(engine)
    assert (seen.name, seen.email, seen.role) == ("Ada L.", EMAIL, "admin")

    await adapter.update_user({"id": made.id, "role": "owner"})
    assert (await app_user(engine)).role == "owner", "the app's column, not a side table"
    await adapter.close()


# -- Beanie ----------------------------------------------------------------------------


class MongoUser(Document):
    """The app's users: Auth.js's ``users`` documents, plus the app's ``role``."""

    name: str | None = None
    email: str | None = None
    emailVerified: datetime | None = None  # the name Auth.js stores
    image: str | None = None
    role: str = "member"

    class Settings:
        name = "users"


async def test_a_beanie_document_and_the_mongodb_adapter_share_the_users_collection(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    await init_beanie(database=mongo_db, document_models=[MongoUser])
    adapter = MongoDBAdapter(mongo_db)
    app = app_for(adapter, with_role_or_member)

    await sign_up_ada(app)
    assert (await session_of_a_new_sign_in(app))["user"]["role"] == "member"
    made = await MongoUser.find_one(MongoUser.email == EMAIL)
    assert made is not None and made.role == "member", "the model's default: no field yet"

    await made.set({MongoUser.role: "admin"})
    session = await session_of_a_new_sign_in(app)

    assert session["user"] == {"email": EMAIL, "role": "admin"}
    stored = await MongoUser.get(made.id)
    assert stored is not None and stored.role == "admin", "signing in left the role alone"
    user = await adapter.get_user(str(made.id))
    assert user is not None and user.extra == {"role": "admin"}

    renamed = await adapter.update_user({"id": str(made.id), "name": "Ada L."})
    assert renamed is not None and renamed.extra == {"role": "admin"}
    seen = await MongoUser.get(made.id)
    assert seen is not None and (seen.name, seen.email, seen.role) == ("Ada L.", EMAIL, "admin")
