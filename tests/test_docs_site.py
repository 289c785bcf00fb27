"""The documentation site builds offline with warnings as errors, and no internal link is broken: every
relative ``href`` and ``src`` of the built HTML points to a file of the build, and every ``#fragment`` to an
``id`` in that file."""

from __future__ import annotations

import html.parser
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

#: Its module fixture is computed once: every test of this module runs on the same xdist worker.
pytestmark = pytest.mark.xdist_group("test_docs_site")

ROOT = Path(__file__).resolve().parents[1]


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if value and (
                (tag == "a" and name == "href")
                or (tag in ("img", "script") and name == "src")
                or (tag == "link" and name == "href")
            ):
                self.links.append(value)


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def broken_links(site: Path) -> list[str]:
    """``page: link`` for every relative link of the built site whose file or fragment does not exist."""
    pages = {p: _parse(p) for p in site.rglob("*.html")}
    broken = []
    for page, parsed in pages.items():
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {link} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {link} (no such anchor)")
    return broken


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html", str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stderr[-6000:]}"
    return out


def test_the_site_builds_with_every_section(site: Path) -> None:
    for page in ("index.html", "theory/index.html", "api/index.html", "results/index.html", "examples.html"):
        assert (site / page).is_file(), page
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()  # math renders offline
    assert "solve_query_game" in (site / "api" / "algorithms.html").read_text(encoding="utf-8")


def test_no_internal_link_is_broken(site: Path) -> None:
    assert broken_links(site) == []


def test_the_link_check_finds_broken_links(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text(
        '<a href="b.html#x">b</a><a href="missing.html">m</a><a href="#top">t</a>'
        '<a href="https://example.org/x">e</a><p id="top"></p>'
    )
    (tmp_path / "b.html").write_text('<p id="y"></p>')
    assert broken_links(tmp_path) == ["a.html: b.html#x (no such anchor)", "a.html: missing.html (no such file)"]


def test_the_gallery_shows_every_example() -> None:
    gallery = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    scripts = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
    assert scripts and all(f"../examples/{name}" in gallery for name in scripts)
