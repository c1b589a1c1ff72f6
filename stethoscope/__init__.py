"""Stethoscope: room-level location of BLE badges for care homes."""

from .config import configure
from .ingest.fastpath import IngestFastPath


def main(global_config, **settings):
    """Return the WSGI application (the paste app factory): the Pyramid
    router behind the filter that answers live readings early."""
    return IngestFastPath(configure(settings).make_wsgi_app())
