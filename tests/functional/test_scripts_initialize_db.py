"""initialize_stethoscope_db on an ini file without an [alembic] section."""

from stethoscope.scripts import initialize_db


def test_an_app_only_ini_uses_the_packages_migrations(ini, capsys):
    assert initialize_db.main([ini]) == 0

    assert capsys.readouterr().out.startswith("database at revision 0004")
