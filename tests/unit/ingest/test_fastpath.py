"""What the ingest fast path stands in for: Pyramid's tweens and subscribers.

The fast path answers live readings before the router, so no tween and no
event subscriber runs for them. It does by itself what each of these does
that a reading's answer depends on (the security headers, from
ops.headers; a transaction: the group writer's; errors: it steps aside).
When this list changes, the fast path must be taught the same thing, or
step aside where it cannot be.
"""

import pytest
from pyramid.interfaces import ITweens

from stethoscope.config import configure
from stethoscope.singletons import DATABASE

TWEENS = [
    # The request id, the access log line and the request's metrics: the
    # fast path calls the same functions (ops.access, ops.metrics).
    "stethoscope.ops.access.request_tween_factory",
    # Its headers: the fast path adds ops.headers.security_headers too.
    "stethoscope.ops.headers.security_headers_tween_factory",
    # The request's transaction: the fast path stores only through the
    # group writer, which commits itself (no session is opened).
    "pyramid_tm.tm_tween_factory",
    # Exceptions into error responses: the fast path steps aside on any.
    "pyramid.tweens.excview_tween_factory",
]
SUBSCRIBERS: list[tuple[tuple[str, ...], str]] = []

TEACH = (
    "the ingest fast path (stethoscope/ingest/fastpath.py) answers live "
    "readings without Pyramid's tweens and subscribers: teach it what the "
    "new one does (or have it step aside), then update this list"
)


@pytest.fixture
def registry(tmp_path):
    config = configure(
        {
            "sqlalchemy.url": f"sqlite:///{tmp_path}/unused.sqlite",
            "stethoscope.secret": "a-test-secret-of-at-least-32-characters",
            "stethoscope.model_dir": str(tmp_path / "models"),
            "stethoscope.gc_freeze": "false",
        }
    )
    yield config.registry
    config.registry[DATABASE].dispose()


def test_the_tweens_are_the_ones_the_fast_path_stands_in_for(registry):
    tweens = registry.queryUtility(ITweens)

    assert not tweens.explicit, TEACH
    assert [name for name, _factory in tweens.implicit()] == TWEENS, TEACH


def test_no_subscriber_the_fast_path_would_skip(registry):
    found = [
        (
            tuple(interface.__identifier__ for interface in handler.required),
            f"{handler.handler.__module__}.{handler.handler.__qualname__}",
        )
        for handler in registry.registeredHandlers()
    ]
    assert found == SUBSCRIBERS, TEACH
