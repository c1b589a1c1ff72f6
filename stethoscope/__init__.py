"""Stethoscope: room-level location of BLE badges for care homes."""

import gc
import warnings

# Pyramid 2.1 imports pkg_resources (pyramid/asset.py, pyramid/path.py:
# whichever is imported first), which warns on every
# start of the server and of each console script that it is deprecated:
# nothing an operator can act on (setup.py pins setuptools<81 until Pyramid
# stops). Silenced here, before the first Pyramid import, because every
# console script's module imports this package first; only that warning,
# and only where Pyramid triggers it.
warnings.filterwarnings(
    "ignore",
    message="pkg_resources is deprecated as an API",
    category=UserWarning,
    module=r"pyramid\.",
)

from .config import configure  # noqa: E402 - after the filter above
from .ingest.fastpath import IngestFastPath  # noqa: E402


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
