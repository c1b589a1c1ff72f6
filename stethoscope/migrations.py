"""Run the alembic migrations from code (scripts and tests)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from pyramid.paster import get_appsettings, setup_logging

from .config import parse_settings
from .db import make_engine

ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"


def alembic_config(config_uri: str | None = None) -> Config:
    """Alembic's config from the ini's [alembic] section; the package's
    migrations when the ini has none (an app-only ini, as tests write)."""
    config = Config(config_uri) if config_uri else Config()
    try:
        location = config.get_main_option("script_location")
    except CommandError:  # no [alembic] section at all
        location = None
    if not location:
        config.set_main_option("script_location", str(ALEMBIC_DIR))
    return config


def upgrade(config_uri: str, revision: str = "head") -> str:
    """Upgrade the database named by ``config_uri`` (ini file, env overrides)."""
    setup_logging(config_uri)
    settings = parse_settings(get_appsettings(config_uri))
    _ensure_sqlite_directory(settings["sqlalchemy.url"])
    engine = make_engine(settings)
    try:
        upgrade_engine(engine, alembic_config(config_uri), revision)
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade_engine(
    engine, config: Config | None = None, revision: str = "head"
) -> None:
    config = config or alembic_config()
    # Not in a transaction of ours: alembic commits each migration in its
    # own, and a migration may leave it for an autocommit block (0008's
    # CREATE INDEX CONCURRENTLY).
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _ensure_sqlite_directory(url: str) -> None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix + ":memory:":
        Path(url[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
