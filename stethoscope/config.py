"""Settings: defaults, environment overrides and typed parsing, in one place.

Every setting the application reads is declared in ``SETTINGS``. The ini file
gives values, the environment overrides the ones that differ between
deployments, and each value is parsed once at start-up; a missing or bad value
stops the application with a message naming the key. Nothing reads raw
settings per request.
"""

import ipaddress
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import pyramid_jinja2
from pyramid.config import Configurator
from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.request import Request
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class StethoscopeRequest(Request):
    # pyramid_retry buffers each body to replay it; webob would spill bodies
    # over 10 KiB to a temporary file. Ours are capped well below this.
    request_body_tempfile_limit = 4 << 20


class ConfigurationError(Exception):
    """A setting is missing or has a value we cannot use."""


def string(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def boolean(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def secret(value: str) -> str:
    value = value.strip()
    if len(value) < 32:
        raise ValueError(
            "must be at least 32 characters (make one with: python3 -c "
            "'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return value


# The databases Stethoscope runs on, by SQLAlchemy's driver name.
DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
REDIS_SCHEMES = ("redis", "rediss", "unix")


def database_url(value: str) -> str:
    """A SQLite file or a PostgreSQL database reached with psycopg 3."""
    value = string(value)
    try:
        url = make_url(value)
        url.port  # noqa: B018 - a port that is not a number raises here
    except (ArgumentError, ValueError):
        raise ValueError(
            "is not a database URL (sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE)"
        ) from None
    if url.drivername not in DATABASE_DRIVERS:
        raise ValueError(
            f"names the driver {url.drivername!r}: use sqlite:///PATH or "
            "postgresql+psycopg://…"
        )
    if url.drivername.startswith("sqlite") and url.database in (None, "", ":memory:"):
        raise ValueError(
            "must name a file: an in-memory SQLite database would be one per connection"
        )
    return value


def _url(value: str, example: str) -> tuple[str, SplitResult]:
    """``value`` stripped and split; ValueError showing ``example`` when it
    is no URL."""
    value = string(value)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise ValueError(f"is not a URL ({example})") from None
    return value, parts


def redis_url(value: str) -> str:
    """redis://, rediss:// or unix:// (a socket), as redis-py takes them."""
    value, parts = _url(value, "redis://HOST:PORT/DB")
    if parts.scheme not in REDIS_SCHEMES:
        raise ValueError("must start with redis://, rediss:// or unix://")
    return value


def http_url(value: str) -> str:
    """An http:// or https:// URL with a host (a webhook)."""
    value, parts = _url(value, "https://HOST/PATH")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def _shown(setting: "Setting", value: Any) -> str:
    """The value as an error message may show it: no secret, no password."""
    if setting.parse is secret:
        return f"{len(str(value).strip())} characters"
    if setting.parse is database_url:
        try:
            return repr(make_url(str(value).strip()).render_as_string())
        except (ArgumentError, ValueError):
            return "a value that is not a URL"
    if setting.parse is redis_url:
        parts = urlsplit(str(value).strip())
        if parts.password:
            shown = parts._replace(netloc=parts.netloc.replace(parts.password, "***"))
            return repr(shown.geturl())
    return repr(value)


def networks(value: str) -> tuple:
    """Addresses or CIDRs separated by spaces, commas or newlines."""
    items = value.replace(",", " ").split()
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError as exc:
        raise ValueError(f"not an address or network: {exc}") from None


def integer(minimum: int, maximum: int) -> Callable[[Any], int]:
    return _number(int, "a whole number", minimum, maximum)


def decimal(minimum: float, maximum: float) -> Callable[[Any], float]:
    return _number(float, "a number", minimum, maximum)


def _number(convert: Callable, kind: str, minimum, maximum) -> Callable:
    def parse(value: Any):
        try:
            number = convert(str(value).strip())
        except ValueError:
            raise ValueError(f"must be {kind}") from None
        # NaN is between nothing: refused here too.
        if not minimum <= number <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return number

    return parse


def choice(*options: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        value = str(value).strip().lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[Any], Any]
    default: Any = None
    env: str | None = None
    required: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("sqlalchemy.url", database_url, env="DATABASE_URL", required=True),
    # FULL makes every 201 survive a power cut (an fsync per commit); NORMAL
    # in WAL mode survives a crash of the process but may lose the last
    # commits on power loss. See docs/architecture.md.
    Setting("stethoscope.sqlite.synchronous", choice("full", "normal"), "full"),
    Setting("stethoscope.sqlite.busy_timeout_ms", integer(0, 60_000), 5000),
    Setting("stethoscope.db.connect_timeout_s", integer(1, 60), 3),
    # How long PostgreSQL may leave what we sent unacknowledged, or go
    # without answering TCP keepalives, before the connection counts as
    # lost: a database host gone silent (a network fault, a crash) fails
    # requests with 503 instead of holding them for the kernel's ~15 min.
    Setting("stethoscope.db.tcp_timeout_s", integer(1, 600), 10),
    # PostgreSQL ends a statement that waits this long for a lock (a
    # migration's, another upload's) or runs this long: a 503 the gateway
    # retries, never a request held until the lock goes (0: no limit).
    Setting("stethoscope.db.lock_timeout_ms", integer(0, 600_000), 5000),
    Setting("stethoscope.db.statement_timeout_ms", integer(0, 3_600_000), 30_000),
    # /health answers "unavailable" when the database has not answered its
    # probe within this (a server stalled on a live host answers nothing).
    Setting("stethoscope.health.timeout_ms", integer(10, 60_000), 2000),
    Setting("stethoscope.db.pool_size", integer(1, 100), 5),
    Setting("stethoscope.db.pool_timeout_s", integer(1, 60), 5),
    Setting("stethoscope.db.retry_after_s", integer(1, 3600), 5),
    Setting("stethoscope.redis_url", redis_url, env="REDIS_URL"),
    Setting("stethoscope.redis.timeout_ms", integer(10, 5000), 250),
    Setting("stethoscope.redis.retry_interval_ms", integer(0, 600_000), 1000),
    Setting("stethoscope.dedup.backend", choice("memory", "redis"), "memory"),
    Setting("stethoscope.dedup.window_ms", integer(100, 600_000), 5500),
    # How long an uncommitted Redis claim lives (see RedisDeduplicator).
    Setting("stethoscope.dedup.pending_ms", integer(100, 600_000), 2000),
    # How long a post meeting another request's uncommitted claim waits for
    # it to be committed (409) or released (stored here) before answering
    # 503: a 409 must mean stored, and a waiting post holds a thread.
    Setting("stethoscope.dedup.pending_wait_ms", integer(0, 5000), 250),
    Setting("stethoscope.ingest.max_body_bytes", integer(256, 1 << 20), 16_384),
    Setting("stethoscope.ingest.max_batch_bytes", integer(1024, 64 << 20), 1 << 20),
    Setting("stethoscope.ingest.max_batch_items", integer(1, 100_000), 1000),
    Setting("stethoscope.ingest.max_beacons", integer(1, 1000), 32),
    Setting("stethoscope.ingest.max_age_hours", integer(1, 24 * 366), 24 * 7),
    Setting("stethoscope.ingest.max_clock_skew_s", integer(0, 86_400), 300),
    # Live originals posted together share one commit (ingest/writer.py).
    Setting("stethoscope.ingest.group_commit", boolean, True),
    Setting("stethoscope.activity.flush_seconds", integer(0, 3600), 10),
    Setting("stethoscope.activity.online_seconds", integer(1, 86_400), 120),
    Setting("stethoscope.readings.page_limit", integer(1, 10_000), 500),
    Setting("stethoscope.secret", secret, env="STETHOSCOPE_SECRET", required=True),
    Setting("stethoscope.session.secure", boolean, False),
    Setting("stethoscope.session.idle_minutes", integer(1, 24 * 60), 30),
    Setting("stethoscope.session.lifetime_hours", integer(1, 24 * 31), 12),
    Setting(
        "stethoscope.accounts.password_profile",
        choice("default", "cheapest"),
        "default",
    ),
    Setting("stethoscope.login.max_failures_per_user", integer(1, 1000), 5),
    Setting("stethoscope.login.max_failures_per_ip", integer(1, 100_000), 20),
    Setting("stethoscope.login.window_seconds", integer(1, 86_400), 900),
    # Gateways already in the field send no token: development.ini says false.
    Setting("stethoscope.ingest.require_token", boolean, True),
    Setting("stethoscope.ingest.allow_ips", networks, ()),
    Setting("stethoscope.ingest.token_cache_seconds", integer(0, 3600), 30),
    Setting("stethoscope.trusted_proxies", networks, ()),
    Setting("stethoscope.model_dir", string, "var/models", env="STETHOSCOPE_MODEL_DIR"),
    # How stale a process's idea of the active models may be: each process
    # checks the newest activation at most this often (0: on every use).
    Setting("stethoscope.models.refresh_seconds", integer(0, 3600), 2),
    # Locating: the live filter's window of readings; a badge unheard for
    # recent_seconds has no location (404); a vocabulary beacon unheard by
    # every badge for beacon_dead_seconds is dead; finished days of history
    # kept in memory: an LRU of at most history_cache_days days and
    # day_cache_mb megabytes (a full day, 17,280 readings, with its history
    # body is ~3.7 MB; 0 for either: none kept).
    Setting("stethoscope.locating.window_seconds", integer(5, 3600), 120),
    Setting("stethoscope.locating.recent_seconds", integer(1, 3600), 60),
    Setting("stethoscope.locating.beacon_dead_seconds", integer(60, 30 * 86_400), 1800),
    Setting("stethoscope.locating.history_cache_days", integer(0, 100_000), 512),
    Setting("stethoscope.locating.day_cache_mb", integer(0, 1_000_000), 128),
    # Alerts (stethoscope/alerts): conditions are evaluated at most every
    # interval_seconds per process when alerts are read (and by
    # stethoscope-alerts check). "Day" and "night" are the site's local
    # hours: the day from day_start_hour, the night from night_start_hour.
    # The silences may be fractions of a minute (tests watch one open and
    # clear in seconds).
    Setting("stethoscope.alerts.interval_seconds", integer(0, 3600), 30),
    Setting("stethoscope.alerts.gateway_silent_minutes", decimal(0.05, 10_080), 10),
    Setting("stethoscope.alerts.beacon_silent_minutes", decimal(0.05, 43_200), 60),
    Setting("stethoscope.alerts.imposter_window_minutes", integer(1, 1440), 30),
    Setting("stethoscope.alerts.imposter_min_readings", integer(1, 1_000_000), 50),
    Setting("stethoscope.alerts.badge_silent_minutes", decimal(0.05, 1440), 30),
    Setting("stethoscope.alerts.night_silent_minutes", decimal(0.05, 1440), 15),
    Setting("stethoscope.alerts.day_start_hour", integer(0, 23), 7),
    Setting("stethoscope.alerts.night_start_hour", integer(0, 23), 22),
    # A Slack-compatible incoming webhook told of each alert that opens.
    Setting("stethoscope.notify.webhook_url", http_url),
    # And of unexpected errors (500s): one message per error type and
    # route at most this often, the rest counted (0: every one).
    Setting("stethoscope.notify.error_interval_minutes", integer(0, 1440), 10),
    # GET /metrics: from these addresses, or with this bearer token.
    Setting("stethoscope.metrics.allow_ips", networks, networks("127.0.0.0/8 ::1")),
    Setting("stethoscope.metrics.token", secret, env="STETHOSCOPE_METRICS_TOKEN"),
    # Gateways named in the metrics' labels per process; the rest: "other".
    Setting("stethoscope.metrics.max_gateways", integer(1, 10_000), 200),
    # One JSON object per log line (production), or the ini's text format.
    Setting("stethoscope.logging.format", choice("text", "json"), "text"),
    # The badge history page shades the night: from night_start to
    # night_end, whole hours on the site's clock.
    Setting("stethoscope.dashboard.night_start", integer(0, 23), 22),
    Setting("stethoscope.dashboard.night_end", integer(0, 23), 7),
    Setting("stethoscope.docs_dir", string),
    # Keep the objects made at start-up out of the collector's full passes
    # (stethoscope.main): off in tests, which build hundreds of apps.
    Setting("stethoscope.gc_freeze", boolean, True),
    Setting("retry.attempts", integer(1, 10), 3),
)


def setting_defaults() -> dict[str, Any]:
    """Every declared setting's default (None where it has none)."""
    return {setting.name: setting.default for setting in SETTINGS}


def parse_settings(
    raw: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return ``raw`` with every declared setting parsed to its type.

    Environment variables win over the ini file. Raises ConfigurationError
    naming the key (and the variable) of the first missing or bad value.
    """
    environ = os.environ if environ is None else environ
    settings = dict(raw)
    for setting in SETTINGS:
        source = f"setting {setting.name}"
        value = settings.get(setting.name)
        if setting.env and environ.get(setting.env):
            value = environ[setting.env]
            source = f"environment variable {setting.env}"
        if value is None or (isinstance(value, str) and not value.strip()):
            if setting.required:
                hint = (
                    f" (or environment variable {setting.env})" if setting.env else ""
                )
                raise ConfigurationError(f"missing setting {setting.name}{hint}")
            settings[setting.name] = setting.default
            continue
        try:
            settings[setting.name] = setting.parse(value)
        except ValueError as exc:
            raise ConfigurationError(
                f"{source}: {exc} (got {_shown(setting, value)})"
            ) from None
    if settings["stethoscope.dedup.backend"] == "redis" and not settings.get(
        "stethoscope.redis_url"
    ):
        raise ConfigurationError(
            "stethoscope.dedup.backend = redis needs stethoscope.redis_url "
            "(or environment variable REDIS_URL)"
        )
    return settings


def configure(settings: Mapping[str, Any] | None = None) -> Configurator:
    """Build the Configurator with every feature included, in order."""
    config = Configurator(
        settings=parse_settings(settings or {}), request_factory=StethoscopeRequest
    )
    # Gateways retry a 5xx; pyramid_retry replays a request whose transaction
    # failed for a transient reason (see stethoscope.db) before answering.
    config.include("pyramid_retry")
    config.include("pyramid_tm")
    config.include("pyramid_services")
    _include_jinja2(config)
    config.include(".endpoints")
    config.include(".db")
    config.include(".security")
    config.include(".ops")
    config.include(".audit")
    config.include(".accounts")
    # Before the registry: routes match in the order they are added, and
    # its /sites/{site_id:.+} would take /sites/{site_id}/occupancy.
    config.include(".locating")
    config.include(".registry")
    config.include(".ingest")
    config.include(".labels")
    config.include(".learning")
    config.include(".alerts")
    config.include(".dashboard")
    config.include(".apidocs")
    config.include(".admin")
    config.commit()
    _bake_request_extensions(config)
    return config


def _include_jinja2(config: Configurator) -> None:
    """What ``config.include("pyramid_jinja2")`` does, with our package named.

    Its ``includeme`` finds the including package with ``inspect.stack()``,
    which reads the source of every frame on the stack: nothing under
    pserve, but under pytest's deep stacks a fifth of building an app.
    """
    for directive in (
        "add_jinja2_renderer",
        "add_jinja2_search_path",
        "add_jinja2_extension",
        "get_jinja2_environment",
    ):
        config.add_directive(directive, getattr(pyramid_jinja2, directive))
    config.add_jinja2_renderer(".jinja2", package=sys.modules[__package__])
    config.add_jinja2_search_path(f"{__package__}:", name=".jinja2")


def _bake_request_extensions(config: Configurator) -> None:
    """Turn request methods and properties into attributes of one class.

    Pyramid applies ``add_request_method`` extensions to every request, and
    for properties it builds a new class per request: on a duplicate POST
    that was a sizeable share of the whole request (docs/benchmarks.md).
    Built once here, a request costs nothing extra. Extensions added after
    this (none are) would still be applied the usual way.
    """
    extensions = config.registry.queryUtility(IRequestExtensions)
    if extensions is None:
        return
    factory = config.registry.queryUtility(IRequestFactory)
    attributes = {**extensions.methods, **extensions.descriptors}
    baked = type(factory.__name__, (factory,), attributes)
    config.set_request_factory(baked)
    config.commit()
    extensions.methods.clear()
    extensions.descriptors.clear()
