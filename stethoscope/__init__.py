"""Stethoscope: room-level location of BLE badges for care homes."""

from .config import configure
from .ingest.fastpath import KnownDuplicateFilter


def main(global_config, **settings):
    """Return the WSGI application (the paste app factory): the Pyramid
    router behind the filter that answers known duplicates early."""
    return KnownDuplicateFilter(configure(settings).make_wsgi_app())
