"""Prometheus metrics of this process, served at GET /metrics.

One scrape per process, not prometheus_client's multiprocess mode: each
waitress process listens on a port of its own (``stethoscope@PORT``), so
Prometheus scrapes each one directly and sums over ``instance``
(docs/operations.md, "Metrics"). Nothing is shared between processes, no
directory of memory-mapped files has to be cleaned at deployment, and a
count costs one lock and a few dictionary updates, never a file write.

The request path counts into plain dictionaries under one lock, a few
updates each: prometheus_client's own counter and histogram children take
a lock per call (three for a request and its latency), and their label
lookups cost more than the counts. The ingest fast path, whose duplicate
costs some 16 us of CPU, makes one update for everything it answers
(``ingest_answer``), split into requests, latency and outcomes at scrape
time. ``collect`` turns the counts into
metric families when Prometheus asks. What is cheaper to read than to count
(a deduplicator's fallbacks, each site's model, open alerts) is read at
scrape time from the sources the features register with ``add_gauge`` and
``add_counter``: ops imports no feature, and every ``prometheus_client``
import is here.

Labels are bounded: routes are route names (``unmatched`` for a path no
route takes), methods the ones HTTP defines (``other`` for the rest),
gateways the first ``stethoscope.metrics.max_gateways`` ids this process
met (``other`` beyond: with open ingest anyone may post any ``pi_id``).
"""

import bisect
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.utils import floatToGoString

from ..singletons import METRICS

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. A duplicate is answered in well under a millisecond, an original
# in one or two, a page in tens; 503s after the database's timeouts take
# seconds.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Readings per group commit (ingest/writer.py): 1 when idle, up to the
# writer's max_rows (1,000) under load.
COMMIT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
)
OUTCOMES = ("created", "duplicate", "rejected")
OTHER = "other"


@dataclass(frozen=True)
class Source:
    """A gauge or counter read at scrape time: ``read()`` gives a value per
    tuple of label values."""

    kind: str  # "gauge" | "counter"
    name: str
    documentation: str
    labels: tuple[str, ...]
    read: Callable[[], Mapping[tuple[str, ...], float]]


class Metrics:
    """This process's counts, and the sources read at scrape time."""

    def __init__(self, max_gateways: int = 200):
        self.max_gateways = max_gateways
        self.sources: list[Source] = []
        self._lock = threading.Lock()
        # (route, method, status) -> requests
        self._requests: dict[tuple[str, str, int], int] = {}
        # route -> [count per bucket..., count above the last, sum of seconds]
        self._latency: dict[str, list] = {}
        self._outcomes = dict.fromkeys(OUTCOMES, 0)
        self._late = 0
        self._gateways: dict[str, int] = {}
        self._commits = [0] * (len(COMMIT_BUCKETS) + 2)
        # The fast path's answers: (route, status, bucket, known) -> count,
        # and route -> seconds.
        self._fast: dict[tuple[str, int, int, bool], int] = {}
        self._fast_seconds: dict[str, float] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)

    # ---- counted on the request path ----------------------------------------

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One request answered (by a view or an error view). ``method`` is
        one of METHODS or OTHER."""
        bucket = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        key = (route, method, status)
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1
            latency = self._latency.get(route) or self._new_route(route)
            latency[bucket] += 1
            latency[-1] += seconds

    def ingest_answer(
        self, route: str, status: int, seconds: float, gateway_id: str, known: bool
    ) -> None:
        """A live reading answered by the ingest fast path (``known``: a
        duplicate known here, which no service counted): ``request`` and,
        for a known duplicate, ``reading``, as one update of one dict,
        split into the metrics at scrape time (``snapshot``)."""
        key = (route, status, bisect.bisect_left(LATENCY_BUCKETS, seconds), known)
        with self._lock:
            self._fast[key] = self._fast.get(key, 0) + 1
            self._fast_seconds[route] = self._fast_seconds.get(route, 0.0) + seconds
            if known:
                self._count_gateway(gateway_id)

    def reading(self, gateway_id: str | None, outcome: str, late: bool) -> None:
        """One posted reading: ``outcome`` one of OUTCOMES; ``gateway_id``
        None for an item refused before it had one."""
        with self._lock:
            self._outcomes[outcome] += 1
            if late:
                self._late += 1
            if gateway_id is not None:
                self._count_gateway(gateway_id)

    def _count_gateway(self, gateway_id: str) -> None:
        gateways = self._gateways
        if gateway_id in gateways:
            gateways[gateway_id] += 1
        elif len(gateways) < self.max_gateways:
            gateways[gateway_id] = 1
        else:
            gateways[OTHER] = gateways.get(OTHER, 0) + 1

    def _new_route(self, route: str) -> list:
        latency = self._latency[route] = _no_latency()
        return latency

    def group_commit(self, rows: int) -> None:
        """One commit of the group writer, of ``rows`` readings."""
        bucket = bisect.bisect_left(COMMIT_BUCKETS, rows)
        with self._lock:
            self._commits[bucket] += 1
            self._commits[-1] += rows

    # ---- read at scrape time ------------------------------------------------

    def exposition(self) -> bytes:
        """Everything, in Prometheus' text format."""
        return generate_latest(self.registry)

    def snapshot(self):
        with self._lock:
            requests = dict(self._requests)
            latency = {route: list(values) for route, values in self._latency.items()}
            outcomes = dict(self._outcomes)
            for (route, status, bucket, known), count in self._fast.items():
                key = (route, "POST", status)
                requests[key] = requests.get(key, 0) + count
                latency.setdefault(route, _no_latency())[bucket] += count
                if known:
                    outcomes["duplicate"] += count
            for route, seconds in self._fast_seconds.items():
                latency[route][-1] += seconds
            return (
                requests,
                latency,
                outcomes,
                self._late,
                dict(self._gateways),
                list(self._commits),
            )


class _Collector:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self):
        requests, latency, outcomes, late, gateways, commits = self.metrics.snapshot()
        family = CounterMetricFamily(
            "stethoscope_http_requests",
            "Requests answered, by route name, method and status.",
            labels=("route", "method", "status"),
        )
        for (route, method, status), count in sorted(requests.items()):
            family.add_metric((route, method, str(status)), count)
        yield family

        family = HistogramMetricFamily(
            "stethoscope_http_request_duration_seconds",
            "Time to answer a request, by route name.",
            labels=("route",),
        )
        for route, values in sorted(latency.items()):
            family.add_metric((route,), _buckets(LATENCY_BUCKETS, values), values[-1])
        yield family

        family = CounterMetricFamily(
            "stethoscope_ingest_readings",
            "Posted readings: created (stored), duplicate (not stored again), "
            "rejected (an item of a batch, or an observed_at out of bounds).",
            labels=("outcome",),
        )
        for outcome in OUTCOMES:
            family.add_metric((outcome,), outcomes[outcome])
        yield family
        yield CounterMetricFamily(
            "stethoscope_ingest_late_readings",
            "Posted readings observed longer ago than the dedup window "
            "(a gateway's buffer uploaded late).",
            value=late,
        )
        family = CounterMetricFamily(
            "stethoscope_gateway_readings",
            "Posted readings by gateway (pi_id): the first "
            "stethoscope.metrics.max_gateways seen, 'other' beyond.",
            labels=("gateway",),
        )
        for gateway, count in sorted(gateways.items()):
            family.add_metric((gateway,), count)
        yield family
        family = HistogramMetricFamily(
            "stethoscope_ingest_group_commit_rows",
            "Readings stored per commit of the group writer.",
            labels=(),
        )
        family.add_metric((), _buckets(COMMIT_BUCKETS, commits), commits[-1])
        yield family

        for source in self.metrics.sources:
            try:
                values = source.read()
            except Exception as exc:  # a database away: the rest still served
                log.warning("metric %s not read: %s", source.name, exc)
                continue
            family_class = (
                GaugeMetricFamily if source.kind == "gauge" else CounterMetricFamily
            )
            family = family_class(
                source.name, source.documentation, labels=source.labels
            )
            for labels, value in sorted(values.items()):
                family.add_metric(labels, value)
            yield family


def _no_latency() -> list:
    """A count per latency bucket, one above the last, and the seconds."""
    return [0] * (len(LATENCY_BUCKETS) + 1) + [0.0]


def _buckets(bounds: Iterable[float], values: list) -> list[tuple[str, float]]:
    """Cumulative ``le`` buckets from counts per bucket (the last is +Inf)."""
    out, total = [], 0
    for bound, count in zip((*bounds, math.inf), values[:-1], strict=True):
        total += count
        out.append((floatToGoString(bound), total))
    return out


def add_gauge(config, name, documentation, labels, read) -> None:
    """Report ``read()`` (a value per tuple of ``labels`` values) at every
    scrape as the gauge ``name``: how a feature adds its own figures."""
    config.registry[METRICS].sources.append(
        Source("gauge", name, documentation, tuple(labels), read)
    )


def add_counter(config, name, documentation, labels, read) -> None:
    """Like ``add_gauge``, for a count that only grows (``_total`` is
    added to ``name``)."""
    config.registry[METRICS].sources.append(
        Source("counter", name, documentation, tuple(labels), read)
    )
