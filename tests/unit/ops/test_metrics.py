from prometheus_client.parser import text_string_to_metric_families

from stethoscope.ops.metrics import Metrics, Source


def samples(metrics: Metrics) -> dict:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("stethoscope_")
    }


def test_latency_buckets_are_cumulative_with_a_sum():
    metrics = Metrics()
    for seconds in (0.0004, 0.0005, 0.003, 20.0):
        metrics.request("ops.health", "GET", 200, seconds)

    found = samples(metrics)

    def bucket(le):
        name = "stethoscope_http_request_duration_seconds_bucket"
        return found[(name, (("le", le), ("route", "ops.health")))]

    # A bucket holds what is at most its bound (Prometheus' "le").
    assert bucket("0.0005") == 2
    assert bucket("0.005") == 3
    assert bucket("10.0") == 3
    assert bucket("+Inf") == 4
    total = found[
        ("stethoscope_http_request_duration_seconds_sum", (("route", "ops.health"),))
    ]
    assert abs(total - 20.0039) < 1e-9


def test_gateways_past_the_bound_share_one_label():
    metrics = Metrics(max_gateways=1)
    for gateway in ("G1", "G2", "G3", "G1", None):
        metrics.reading(gateway, "created", late=False)

    found = samples(metrics)

    name = "stethoscope_gateway_readings_total"
    assert found[(name, (("gateway", "G1"),))] == 2
    assert found[(name, (("gateway", "other"),))] == 2
    assert found[("stethoscope_ingest_readings_total", (("outcome", "created"),))] == 5


def test_group_commit_sizes():
    metrics = Metrics()
    for rows in (1, 1, 7, 1000):
        metrics.group_commit(rows)

    found = samples(metrics)

    name = "stethoscope_ingest_group_commit_rows_bucket"
    assert found[(name, (("le", "1.0"),))] == 2
    assert found[(name, (("le", "10.0"),))] == 3
    assert found[(name, (("le", "1000.0"),))] == 4
    assert found[("stethoscope_ingest_group_commit_rows_sum", ())] == 1009


def test_a_failing_source_leaves_out_only_itself(caplog):
    metrics = Metrics()

    def broken():
        raise RuntimeError("database away")

    metrics.sources += [
        Source("gauge", "stethoscope_broken", "Fails.", (), broken),
        Source(
            "gauge",
            "stethoscope_models",
            "Per site.",
            ("site",),
            lambda: {("rose",): 3},
        ),
    ]

    found = samples(metrics)

    assert found[("stethoscope_models", (("site", "rose"),))] == 3
    assert not any(name == "stethoscope_broken" for name, _ in found)
    assert "metric stethoscope_broken not read: database away" in caplog.text
