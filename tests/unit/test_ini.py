"""The shipped ini files: they parse, and waitress caps what it buffers."""

from pathlib import Path

import pytest
from plaster import get_settings

from stethoscope.config import StethoscopeRequest, parse_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["development.ini", "production.ini"])
def test_ini_parses_and_caps_bodies(name):
    app = get_settings(str(ROOT / name), "app:main")
    server = get_settings(
        str(ROOT / name), "server:main", defaults={"http_port": "6543"}
    )
    environ = {
        "DATABASE_URL": "sqlite:///var/unused.sqlite",
        "REDIS_URL": "redis://x",
        "STETHOSCOPE_SECRET": "s" * 32,
    }
    settings = parse_settings(app, environ=environ)
    cap = int(server["max_request_body_size"])
    # waitress answers 413 itself above the cap, before the app buffers the
    # body for retries; a batch at its own limit must still fit.
    assert settings["stethoscope.ingest.max_batch_bytes"] < cap
    assert cap <= StethoscopeRequest.request_body_tempfile_limit


def test_production_takes_secrets_from_the_environment_and_locks_down():
    app = get_settings(str(ROOT / "production.ini"), "app:main")
    assert app["stethoscope.dedup.backend"] == "redis"
    assert not app["sqlalchemy.url"].strip()
    assert not app["stethoscope.secret"].strip()
    assert app["stethoscope.session.secure"] == "true"
    assert app["stethoscope.ingest.require_token"] == "true"


def test_development_accepts_the_gateways_in_the_field():
    app = get_settings(str(ROOT / "development.ini"), "app:main")
    assert app["stethoscope.ingest.require_token"] == "false"
