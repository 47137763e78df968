"""The adapter's tables for your own migrations: Alembic's target metadata, or DDL.

``python sql_migrations.py`` prints the CREATE statements for the database
``DATABASE_URL`` names (PostgreSQL or SQLite), to paste into a migration.
"""

import os

from sqlalchemy.schema import CreateIndex, CreateTable

from asgi_session.backends.sql import SQLAdapter

adapter = SQLAdapter(os.environ["DATABASE_URL"], schema="drizzle")

# --8<-- [start:alembic]
# In Alembic's env.py: autogenerate compares the database with these tables.
target_metadata = adapter.metadata
# --8<-- [end:alembic]


def ddl() -> str:
    """Every table and index of the preset and of the package, as SQL statements."""
    dialect = adapter.engine.dialect
    statements = []
    for table in adapter.metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    return ";\n\n".join(statements) + ";\n"


if __name__ == "__main__":
    print(ddl())
