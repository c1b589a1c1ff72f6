"""PostgreSQL faults for tests."""

from sqlalchemy import Engine


def drop_other_connections(engine: Engine) -> None:
    """End every other session on ``engine``'s database, as a server restart
    or a network fault would: their next statement fails."""
    with engine.connect() as connection:
        connection.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
