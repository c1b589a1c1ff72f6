"""Alembic environment: settings come from the ini (with env overrides).

It never builds the application. Callers that already hold a connection
(tests, initialize_stethoscope_db) pass it as ``config.attributes["connection"]``.
"""

from alembic import context
from pyramid.paster import get_appsettings, setup_logging

from stethoscope.config import parse_settings
from stethoscope.db import make_engine
from stethoscope.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline():
    settings = parse_settings(get_appsettings(config.config_file_name))
    context.configure(url=settings["sqlalchemy.url"], target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection):
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        # Each migration commits on its own: one that builds an index
        # CONCURRENTLY (0008) commits what came before it anyway.
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    if config.config_file_name:
        setup_logging(config.config_file_name)
    settings = parse_settings(get_appsettings(config.config_file_name))
    engine = make_engine(settings)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
