"""Reading GET /metrics in tests."""

from prometheus_client.parser import text_string_to_metric_families

LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}


def scrape(app, **kwargs) -> dict:
    """{(name, (label, value)...): value} of every sample."""
    response = app.get("/metrics", extra_environ=LOOPBACK, **kwargs)
    assert response.content_type == "text/plain"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
