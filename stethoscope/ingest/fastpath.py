"""Answering repeats early: most ingest POSTs never need a transaction.

Nineteen POSTs in twenty repeat an advertisement this process already knows
is claimed. This tween, above pyramid_tm, answers those 409 itself: it reads
the body, checks the permission and the gateway, and asks the service with
the very functions the view uses. Whenever anything is not certain (a batch,
an ``observed_at``, a body or caller the view would refuse, a fingerprint
only Redis knows about), it steps aside and the request takes the whole way,
so the answer is always the one the view would give. See docs/benchmarks.md
for what it saves.
"""

from pyramid.interfaces import ISecurityPolicy

from .views import duplicate_response, read_post

INGEST_PATH = "/rssi_readings"


def known_duplicate_tween_factory(handler, registry):
    from ..security import INGEST, Root

    limits = registry["stethoscope.ingest.limits"]
    policy = registry.getUtility(ISecurityPolicy)

    def known_duplicate_tween(request):
        if (
            request.method != "POST"
            or request.path_info != INGEST_PATH
            # Outside any transaction, so no database: a cookie or a token
            # not checked lately goes the whole way.
            or not policy.decidable_without_database(request)
        ):
            return handler(request)
        try:
            if not request.has_permission(INGEST, Root(request)):
                return handler(request)
            posted = read_post(request, limits)
        except Exception:
            # The view will give this request its proper answer (400, 403…).
            return handler(request)
        if isinstance(posted, list) or not request.ingest.answer_known_duplicate(
            posted, request.client_ip
        ):
            return handler(request)
        return duplicate_response()

    return known_duplicate_tween
