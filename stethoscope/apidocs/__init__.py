from pathlib import Path

import orjson
from pyramid.settings import asbool

import stethoscope

from ..config import ConfigurationError
from ..singletons import OPENAPI_DOCUMENT
from .openapi import build_openapi
from .services import DocsLibrary


def includeme(config):
    settings = config.registry.settings
    # The Markdown lives next to the package in a source checkout; an
    # installed copy must say where with stethoscope.docs_dir.
    directory = Path(
        settings.get("stethoscope.docs_dir")
        or Path(stethoscope.__file__).parent.parent / "docs" / "api"
    )
    if not directory.is_dir():
        raise ConfigurationError(
            f"setting stethoscope.docs_dir: {directory} is not a directory"
        )
    reload = asbool(settings.get("pyramid.reload_templates"))
    config.register_service(DocsLibrary(directory, reload=reload), DocsLibrary)

    def build():
        # Once every feature's views are registered (this action runs last).
        document = orjson.dumps(build_openapi(config.registry))
        config.registry[OPENAPI_DOCUMENT] = document

    config.action("stethoscope.apidocs.openapi", build, order=1_000_000)
    config.add_route("apidocs.index", "/docs")
    config.add_route("apidocs.page", "/docs/{page}")
    config.add_route("apidocs.openapi", "/openapi.json")
    config.scan(".views")
