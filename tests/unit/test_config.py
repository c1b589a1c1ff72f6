import pytest

from stethoscope.config import ConfigurationError, parse_settings
from stethoscope.db import postgresql_connect_args

BASE = {
    "sqlalchemy.url": "sqlite:///x.sqlite",
    "stethoscope.secret": "a-test-secret-of-at-least-32-characters",
}


class TestParseSettings:
    def test_defaults_are_typed(self):
        settings = parse_settings(BASE, environ={})
        assert settings["stethoscope.dedup.window_ms"] == 5500
        assert settings["stethoscope.dedup.backend"] == "memory"
        assert settings["stethoscope.sqlite.synchronous"] == "full"
        assert settings["retry.attempts"] == 3

    def test_ini_values_are_parsed(self):
        settings = parse_settings(
            {**BASE, "stethoscope.dedup.window_ms": " 3000 "}, environ={}
        )
        assert settings["stethoscope.dedup.window_ms"] == 3000

    def test_environment_overrides_ini(self):
        settings = parse_settings(
            BASE, environ={"DATABASE_URL": "postgresql+psycopg://db/x"}
        )
        assert settings["sqlalchemy.url"] == "postgresql+psycopg://db/x"

    def test_missing_required_setting_names_key_and_variable(self):
        with pytest.raises(ConfigurationError, match="sqlalchemy.url.*DATABASE_URL"):
            parse_settings({**BASE, "sqlalchemy.url": " "}, environ={})

    def test_short_secret_is_refused(self):
        with pytest.raises(ConfigurationError, match="STETHOSCOPE_SECRET.*32"):
            parse_settings(BASE, environ={"STETHOSCOPE_SECRET": "too short"})

    def test_networks_are_parsed(self):
        settings = parse_settings(
            {**BASE, "stethoscope.trusted_proxies": "127.0.0.1, 10.0.0.0/8 ::1"},
            environ={},
        )
        assert [str(n) for n in settings["stethoscope.trusted_proxies"]] == [
            "127.0.0.1/32",
            "10.0.0.0/8",
            "::1/128",
        ]

    def test_bad_network_names_the_setting(self):
        with pytest.raises(ConfigurationError, match="allow_ips.*not an address"):
            parse_settings(
                {**BASE, "stethoscope.ingest.allow_ips": "10.0.0.300"}, environ={}
            )

    @pytest.mark.parametrize(
        ("key", "value", "message"),
        [
            ("stethoscope.dedup.window_ms", "soon", "whole number"),
            ("stethoscope.dedup.window_ms", "10", "between 100 and"),
            ("stethoscope.dedup.backend", "memcached", "one of memory, redis"),
            ("stethoscope.sqlite.synchronous", "off", "one of full, normal"),
            ("stethoscope.alerts.gateway_silent_minutes", "soon", "a number"),
            ("stethoscope.alerts.gateway_silent_minutes", "nan", "between 0.05"),
            ("stethoscope.alerts.beacon_silent_minutes", "0.01", "between 0.05"),
        ],
    )
    def test_bad_value_names_the_setting(self, key, value, message):
        with pytest.raises(ConfigurationError, match=f"{key}.*{message}"):
            parse_settings({**BASE, key: value}, environ={})

    def test_bad_environment_value_names_the_variable(self):
        with pytest.raises(ConfigurationError, match="REDIS_URL"):
            parse_settings(
                {**BASE, "stethoscope.dedup.backend": "redis"},
                environ={"REDIS_URL": "   "},
            )

    def test_redis_backend_needs_a_url(self):
        with pytest.raises(ConfigurationError, match="needs stethoscope.redis_url"):
            parse_settings({**BASE, "stethoscope.dedup.backend": "redis"}, environ={})

    def test_a_refused_secret_is_not_shown(self):
        with pytest.raises(ConfigurationError) as excinfo:
            parse_settings(BASE, environ={"STETHOSCOPE_SECRET": "my-real-secret-123"})
        assert "my-real-secret" not in str(excinfo.value)
        assert "got 18 characters" in str(excinfo.value)

    @pytest.mark.parametrize(
        ("variable", "url", "message"),
        [
            (
                "DATABASE_URL",
                "postgresql+psycopg://app:pw@db:54x32/x",
                "not a database",
            ),
            ("DATABASE_URL", "postgresql+psycopg//app:pw@db/x", "not a database"),
            ("DATABASE_URL", "postgres://app:pw@db/x", "names the driver 'postgres'"),
            ("DATABASE_URL", "mysql://app:pw@db/x", "names the driver 'mysql'"),
            ("DATABASE_URL", "sqlite://", "must name a file"),
            ("DATABASE_URL", "sqlite:///:memory:", "must name a file"),
            ("REDIS_URL", "127.0.0.1:6379", "must start with redis://"),
            ("REDIS_URL", "redis://:pw@127.0.0.1:63x9/0", "is not a URL"),
            ("REDIS_URL", "http://:pw@127.0.0.1:6379/0", "must start with redis://"),
        ],
    )
    def test_a_url_we_cannot_use_names_the_variable(self, variable, url, message):
        """Never a driver's traceback at start-up, and never the password."""
        with pytest.raises(ConfigurationError) as excinfo:
            parse_settings(BASE, environ={variable: url})
        assert str(excinfo.value).startswith(f"environment variable {variable}: ")
        assert message in str(excinfo.value)
        assert "pw" not in str(excinfo.value)

    @pytest.mark.parametrize(
        "url",
        [
            "sqlite:///var/stethoscope.sqlite",
            "postgresql+psycopg://app:pw@db:5432/stethoscope",
            "postgresql+psycopg:///stethoscope?host=/run/postgresql",
        ],
    )
    def test_database_urls_we_run_on_are_taken_as_they_are(self, url):
        settings = parse_settings(BASE, environ={"DATABASE_URL": url})
        assert settings["sqlalchemy.url"] == url

    def test_postgresql_gets_lock_and_statement_timeouts(self):
        settings = parse_settings(
            {**BASE, "stethoscope.db.lock_timeout_ms": "250"}, environ={}
        )
        options = postgresql_connect_args(settings)["options"]
        assert options == "-c lock_timeout=250 -c statement_timeout=30000"
