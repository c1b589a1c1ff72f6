"""initialize_stethoscope_db on an ini file without an [alembic] section."""

from alembic.script import ScriptDirectory

from stethoscope.migrations import alembic_config
from stethoscope.scripts import initialize_db


def test_an_app_only_ini_uses_the_packages_migrations(ini, capsys):
    assert initialize_db.main([ini]) == 0

    # The package's own migrations, all of them: the database is at their head.
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert capsys.readouterr().out == f"database at revision {head}\n"
