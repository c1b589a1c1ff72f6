"""Stethoscope: room-level location of BLE badges for care homes."""

import gc

from .config import configure
from .ingest.fastpath import IngestFastPath


def main(global_config, **settings):
    """Return the WSGI application (the paste app factory): the Pyramid
    router behind the filter that answers live readings early."""
    app = IngestFastPath(configure(settings).make_wsgi_app())
    if app.registry.settings["stethoscope.gc_freeze"]:
        # A process holds some 220,000 objects once started (SQLAlchemy,
        # pydantic, scikit-learn, ...), and a full collection walks them all:
        # 120-140 ms here, during which every request of the process waits.
        # Frozen, they are left out of every collection; what is made later
        # is collected as ever.
        gc.collect()
        gc.freeze()
    return app
