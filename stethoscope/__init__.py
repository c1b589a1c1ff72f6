"""Stethoscope: room-level location of BLE badges for care homes."""

from .config import configure


def main(global_config, **settings):
    """Return the Pyramid WSGI application (the paste app factory)."""
    return configure(settings).make_wsgi_app()
