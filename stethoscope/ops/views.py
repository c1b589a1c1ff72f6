import hmac
import ipaddress

from pyramid.response import Response

from ..endpoints import endpoint
from ..errors import Refused
from ..permissions import PUBLIC
from ..security import in_networks
from .metrics import CONTENT_TYPE, METRICS
from .schemas import Health
from .services import HealthService

# Both are public GETs for the machines that watch a server (a load
# balancer's health check, the monitoring server's scrape).
OPS = {"request_method": "GET", "permission": PUBLIC, "tags": ("ops",)}


def _unavailable_is_health(operation: dict, settings) -> None:
    # A 503 here is the same report, saying what does not answer.
    operation["responses"]["503"] = {
        **operation["responses"]["503"],
        "description": "The database does not answer.",
        "content": operation["responses"]["200"]["content"],
    }


@endpoint(
    route_name="ops.health",
    summary="Whether the database and the deduplicator answer",
    response=Health,
    amend=_unavailable_is_health,
    **OPS,
)
def health(request):
    report = request.find_service(HealthService).check()
    if report.status != "ok":
        request.response.status = 503
        retry_after = request.registry.settings["stethoscope.db.retry_after_s"]
        request.response.headers["Retry-After"] = str(retry_after)
    return report


def _metrics_documented(operation: dict, settings) -> None:
    operation["responses"]["200"]["content"] = {
        "text/plain": {"schema": {"type": "string"}}
    }
    allowed = ", ".join(str(n) for n in settings["stethoscope.metrics.allow_ips"])
    operation["description"] += (
        f" Served to {allowed or 'no address'}"
        + (
            ", or with the bearer token stethoscope.metrics.token"
            if settings["stethoscope.metrics.token"]
            else ""
        )
        + "; anyone else is refused (403)."
    )


@endpoint(
    route_name="ops.metrics",
    summary="This process's metrics, in Prometheus' text format",
    description="Requests by route and status, their latency, ingest outcomes, "
    "group commits, readings per gateway, each site's model, open alerts. "
    "See /docs/metrics.",
    errors={403: "Neither an allowed address nor the metrics token."},
    amend=_metrics_documented,
    **OPS,
)
def metrics(request):
    if not _may_scrape(request):
        raise Refused("metrics are for the monitoring server only")
    return Response(
        body=request.registry[METRICS].exposition(),
        headerlist=[("Content-Type", CONTENT_TYPE)],
    )


def _may_scrape(request) -> bool:
    settings = request.registry.settings
    token = settings["stethoscope.metrics.token"]
    if token is not None:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            sent.strip().encode(), token.encode()
        ):
            return True
    try:
        address = ipaddress.ip_address(request.client_ip or "")
    except ValueError:
        return False
    return in_networks(address, settings["stethoscope.metrics.allow_ips"])
