"""The alembic migrations build exactly the schema the models describe.

A database upgraded to head is compared with ``Base.metadata`` by alembic's
autogenerate (``compare_metadata``), on SQLite and on PostgreSQL: a column,
index, constraint or type in one and not the other is a migration missing
(or a model out of date), which would only show when a query met it.
"""

import pprint

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, create_engine

from stethoscope.models import Base


def differences(engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, Base.metadata)


def test_migrations_and_models_agree(engine):
    # engine: a fresh database of each kind, upgraded to head (conftest).
    found = differences(engine)
    assert found == [], pprint.pformat(found)


def test_a_column_missing_from_the_migrations_is_found(sqlite_url):
    # The comparison is not vacuous: a model column no migration adds shows.
    metadata = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    Table("readings", metadata, Column("extra", Integer), extend_existing=True)
    engine = create_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            found = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert [(d[0], d[2], d[3].name) for d in found] == [
        ("add_column", "readings", "extra")
    ]
