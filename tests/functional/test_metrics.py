"""GET /metrics: what real requests leave in it (the view path and the
ingest fast path alike), and who may read it."""

import datetime

import pytest

from tests.support.metrics import LOOPBACK, scrape

READING = {"badge_id": "B1", "pi_id": "G1", "beacons": {"a": -30, "b": -35}}
TOKEN = "a-metrics-token-of-at-least-32-characters"


class CountingRouter:
    """The Pyramid router behind the fast path, counting what reaches it."""

    def __init__(self, app):
        self.app = app
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.app(environ, start_response)


def requests(samples, route, status, method="POST") -> float:
    key = (
        "stethoscope_http_requests_total",
        (("method", method), ("route", route), ("status", str(status))),
    )
    return samples.get(key, 0)


def reading(badge: int, gateway="G1") -> dict:
    return {**READING, "badge_id": f"B{badge}", "pi_id": gateway}


def test_the_fast_path_is_counted_as_the_view_would_be(make_app):
    app = make_app()
    fast = app.app.app  # TestApp -> DocumentedApp -> IngestFastPath
    fast.app = router = CountingRouter(fast.app)
    n = 7
    for badge in range(n):
        app.post_json("/rssi_readings", reading(badge), status=201)
    for badge in range(3):
        app.post_json("/rssi_readings", reading(badge, "G2"), status=409)
    assert router.calls == 0  # all answered by the fast path

    samples = scrape(app)

    assert requests(samples, "ingest.readings", 201) == n
    assert requests(samples, "ingest.readings", 409) == 3
    outcome = "stethoscope_ingest_readings_total"
    assert samples[(outcome, (("outcome", "created"),))] == n
    assert samples[(outcome, (("outcome", "duplicate"),))] == 3
    gateways = "stethoscope_gateway_readings_total"
    assert samples[(gateways, (("gateway", "G1"),))] == n
    assert samples[(gateways, (("gateway", "G2"),))] == 3
    latency = "stethoscope_http_request_duration_seconds_count"
    assert samples[(latency, (("route", "ingest.readings"),))] == n + 3
    # Each original was stored by the group writer: commits of 1+ rows.
    assert samples[("stethoscope_ingest_group_commit_rows_sum", ())] == n
    assert samples[("stethoscope_ingest_group_commit_rows_count", ())] >= 1


def test_the_view_path_and_errors_are_counted(make_app):
    app = make_app()
    app.get("/health")
    app.get("/nowhere", status=404)
    late = (
        datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    ).isoformat()
    batch = [{**reading(1), "observed_at": late}, {**reading(2), "observed_at": late}]
    app.post_json("/rssi_readings", batch, status=200)
    app.post_json("/rssi_readings", batch, status=200)
    app.post_json("/rssi_readings", [{"badge_id": "B1"}], status=200)

    samples = scrape(app)

    assert requests(samples, "ops.health", 200, "GET") == 1
    assert requests(samples, "unmatched", 404, "GET") == 1
    assert requests(samples, "ingest.readings", 200) == 3
    outcome = "stethoscope_ingest_readings_total"
    assert samples[(outcome, (("outcome", "created"),))] == 2
    assert samples[(outcome, (("outcome", "duplicate"),))] == 2
    assert samples[(outcome, (("outcome", "rejected"),))] == 1
    assert samples[("stethoscope_ingest_late_readings_total", ())] == 4
    # Read at scrape time from the features' sources.
    assert samples[("stethoscope_dedup_fallbacks_total", ())] == 0
    assert samples[("stethoscope_alerts_open", (("kind", "gateway_silent"),))] == 0
    # The scrape itself is counted by the next one.
    assert requests(scrape(app), "ops.metrics", 200, "GET") == 1


def test_gateways_beyond_the_bound_are_other(make_app):
    app = make_app(**{"stethoscope.metrics.max_gateways": "2"})
    for badge, gateway in enumerate(["G1", "G2", "G3", "G4", "G1"]):
        app.post_json("/rssi_readings", reading(badge, gateway), status=201)

    samples = scrape(app)

    found = {
        labels[0][1]: value
        for (name, labels), value in samples.items()
        if name == "stethoscope_gateway_readings_total"
    }
    assert found == {"G1": 2, "G2": 1, "other": 2}


def test_only_allowed_addresses_or_the_token_may_read(make_app):
    app = make_app(**{"stethoscope.metrics.token": TOKEN})

    refused = app.get("/metrics", status=403)  # from 192.0.2.10
    assert refused.json["request_id"] == refused.headers["X-Request-ID"]
    app.get("/metrics", headers={"Authorization": "Bearer wrong"}, status=403)
    assert scrape(app)  # loopback
    token = app.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert "stethoscope_http_requests_total" in token.text


@pytest.mark.parametrize(
    ("allowed", "status"), [("192.0.2.0/24", 200), ("198.51.100.7", 403)]
)
def test_allowed_networks_are_a_setting(make_app, allowed, status):
    app = make_app(**{"stethoscope.metrics.allow_ips": allowed})

    app.get("/metrics", status=status)  # from 192.0.2.10
    app.get("/metrics", extra_environ=LOOPBACK, status=403)


def test_through_nginx_the_client_counts_not_the_proxy(make_app):
    app = make_app(**{"stethoscope.trusted_proxies": "127.0.0.1"})
    forwarded = {"X-Forwarded-For": "203.0.113.5"}

    app.get("/metrics", headers=forwarded, extra_environ=LOOPBACK, status=403)
