"""Static files versioned by their content, so that they can be cached for
a year: a changed file has a new URL (``/static/app.css?v=3f2a…``), and a
browser never runs new pages against an old script."""

import functools
import hashlib

from pyramid.path import AssetResolver
from pyramid.static import QueryStringCacheBuster

# A year: the longest a cache keeps anything (RFC 9111 ignores more).
CACHE_SECONDS = 365 * 24 * 3600


@functools.cache
def content_version(spec: str) -> str:
    """The first 12 hex digits of the sha256 of the asset ``spec``; read once
    per process (a deployment restarts the processes)."""
    with AssetResolver().resolve(spec).stream() as stream:
        return hashlib.sha256(stream.read()).hexdigest()[:12]


class ContentCacheBuster(QueryStringCacheBuster):
    """Adds ``?v=<content hash>`` to every static URL."""

    def __init__(self, package: str, directory: str):
        super().__init__(param="v")
        self.prefix = f"{package}:{directory}/"

    def tokenize(self, request, subpath, kw):
        return content_version(self.prefix + subpath)
