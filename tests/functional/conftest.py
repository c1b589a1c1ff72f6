import pytest

CONSOLE_INI = """\
[app:main]
use = egg:stethoscope
sqlalchemy.url = {url}
stethoscope.secret = test-secret-of-at-least-thirty-two-characters
stethoscope.accounts.password_profile = cheapest
stethoscope.dedup.backend = memory
stethoscope.activity.flush_seconds = 0
stethoscope.model_dir = {models}
stethoscope.ingest.require_token = true
"""


@pytest.fixture
def ini(db_url, tmp_path, monkeypatch):
    """An ini file for the console scripts, on the test's database.

    The environment cannot override it, and the OS user is "matron".
    """
    for name in ("DATABASE_URL", "REDIS_URL", "STETHOSCOPE_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "matron")
    path = tmp_path / "console.ini"
    path.write_text(
        CONSOLE_INI.format(
            url=db_url.replace("%", "%%"),
            models=str(tmp_path / "models").replace("%", "%%"),
        )
    )
    return str(path)
