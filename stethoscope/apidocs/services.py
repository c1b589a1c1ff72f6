"""The API documentation pages: Markdown files rendered once to HTML.

The files are our own, shipped with the code, and do not change while the
application runs, so each is rendered once at start-up. With ``reload`` (in
development, following ``pyramid.reload_templates``) a page whose file
changed is rendered again when asked for, and new or removed files show up.
"""

import functools
import html
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import markdown

log = logging.getLogger(__name__)

# Page names come from the URL: only these characters, so a name can never
# climb out of the directory, and only files found in it are served.
PAGE_NAME = re.compile(r"[a-z0-9_-]+")
EXTENSIONS = ["fenced_code", "tables", "toc"]


@dataclass(frozen=True)
class DocPage:
    name: str
    title: str
    html: str
    mtime_ns: int


# Pages are immutable and their text is the key: every app built in one
# process (the test suite builds a thousand) renders each version once.
@functools.lru_cache(maxsize=128)
def render_page(name: str, text: str, mtime_ns: int = 0) -> DocPage:
    """Render Markdown ``text``; the title is its first heading (else ``name``)."""
    converter = markdown.Markdown(extensions=EXTENSIONS)
    body = converter.convert(text)
    tokens = converter.toc_tokens
    # toc gives the heading's text HTML-escaped; the template escapes again.
    title = html.unescape(tokens[0]["name"]) if tokens else name
    return DocPage(name=name, title=title, html=body, mtime_ns=mtime_ns)


class DocsLibrary:
    """The Markdown pages of one directory, by name."""

    def __init__(self, directory: Path, *, reload: bool = False):
        self.directory = Path(directory)
        self.reload = reload
        self._pages: dict[str, DocPage] = {}
        self._scan()

    def pages(self) -> list[DocPage]:
        """Every page, ordered by name."""
        if self.reload:
            self._scan()
        return [self._pages[name] for name in sorted(self._pages)]

    def page(self, name: str) -> DocPage | None:
        """The page called ``name``, or None when there is no such page."""
        if not PAGE_NAME.fullmatch(name):
            return None
        if self.reload:
            self._scan()
        return self._pages.get(name)

    def _scan(self) -> None:
        found: dict[str, DocPage] = {}
        for path in sorted(self.directory.glob("*.md")):
            name = path.stem
            if not PAGE_NAME.fullmatch(name):
                log.warning("not serving %s: page names are [a-z0-9_-]+", path)
                continue
            mtime_ns = os.stat(path).st_mtime_ns
            known = self._pages.get(name)
            if known is not None and known.mtime_ns == mtime_ns:
                found[name] = known
            else:
                found[name] = render_page(
                    name, path.read_text(encoding="utf-8"), mtime_ns
                )
        # One assignment: a concurrent request sees the old or the new set.
        self._pages = found
