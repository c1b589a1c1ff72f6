import os

import pytest

from stethoscope.apidocs.services import DocsLibrary, render_page


class TestRenderPage:
    def test_title_is_the_first_heading_as_text(self):
        page = render_page("x", "Intro\n\n## Tom & `Jerry` *API*\n\n# Later\n")

        assert page.title == "Tom & Jerry API"
        assert '<h2 id="tom-jerry-api">Tom &amp; <code>Jerry</code>' in page.html

    def test_title_falls_back_to_the_name(self):
        assert render_page("plain", "No heading here.\n").title == "plain"

    def test_fenced_code_and_tables(self):
        page = render_page(
            "x", '# T\n\n```json\n{"a": 1}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n'
        )

        assert '<code class="language-json">{&quot;a&quot;: 1}' in page.html
        assert "<td>1</td>" in page.html


@pytest.fixture
def docs(tmp_path):
    (tmp_path / "alpha.md").write_text("# Alpha\n")
    (tmp_path / "beta-2_x.md").write_text("# Beta\n")
    (tmp_path / "Upper.md").write_text("# Upper\n")
    (tmp_path / "dotted.name.md").write_text("# Dotted\n")
    (tmp_path / "notes.txt").write_text("# Not markdown\n")
    return tmp_path


class TestDocsLibrary:
    def test_serves_md_files_with_valid_names_only(self, docs):
        library = DocsLibrary(docs)

        assert [(p.name, p.title) for p in library.pages()] == [
            ("alpha", "Alpha"),
            ("beta-2_x", "Beta"),
        ]
        assert library.page("alpha").title == "Alpha"
        for name in ["Upper", "dotted.name", "notes", "../alpha", "alpha.md", ""]:
            assert library.page(name) is None

    def test_renders_once_without_reload(self, docs):
        library = DocsLibrary(docs)
        (docs / "alpha.md").write_text("# Changed\n")
        (docs / "gamma.md").write_text("# Gamma\n")

        assert library.page("alpha").title == "Alpha"
        assert library.page("gamma") is None

    def test_reload_picks_up_changed_new_and_removed_files(self, docs):
        library = DocsLibrary(docs, reload=True)
        beta = library.page("beta-2_x")
        path = docs / "alpha.md"
        path.write_text("# Changed\n")
        # A later mtime than the first render, whatever the clock's resolution.
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        (docs / "gamma.md").write_text("# Gamma\n")
        (docs / "beta-2_x.md").unlink()

        assert library.page("alpha").title == "Changed"
        assert library.page("gamma").title == "Gamma"
        assert library.page("beta-2_x") is None
        assert beta.title == "Beta"

    def test_reload_keeps_unchanged_pages(self, docs):
        library = DocsLibrary(docs, reload=True)
        first = library.page("alpha")

        assert library.page("alpha") is first
