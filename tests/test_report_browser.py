"""The HTML report in a real headless browser: it loads without errors and every image renders.

Chromium comes from the system packages (``apt-get install chromium`` on Debian; ``chromium-browser`` or
``google-chrome`` elsewhere; ``chromium-headless-shell``; or Playwright's bundled build). Without one the tests
skip and say why. No new dependency: Chromium runs with ``--dump-dom`` after its virtual time budget, and the
report's own inline script has written, on ``load``, the images' ``naturalWidth`` to ``<body data-images>``
and every error event (script errors, resources that failed to load) and ``console.error`` call to
``<body data-errors>``; the test parses the dumped DOM.
"""

from __future__ import annotations

import glob
import html.parser
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from report_samples import synthetic_result

from robustdistill.experiments.cli import reproduce as R

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chromium-headless-shell")
PLAYWRIGHT = "~/.cache/ms-playwright/chromium*/chrome-linux*/chrome"


def find_chromium() -> tuple[str | None, str]:
    """(path of a working Chromium, or None) and what was tried."""
    candidates = [p for p in (shutil.which(n) for n in NAMES) if p]
    candidates += sorted(glob.glob(os.path.expanduser(PLAYWRIGHT)))
    tried = []
    for path in candidates:
        try:
            proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{path}: {exc}")
            continue
        if proc.returncode == 0 and "chrom" in proc.stdout.lower():
            return path, proc.stdout.strip()
        tried.append(f"{path}: --version exited {proc.returncode}")  # e.g. Ubuntu's snap stub without snapd
    return None, "; ".join(tried) or f"none of {', '.join(NAMES)} on PATH and no Playwright build ({PLAYWRIGHT})"


@pytest.fixture(scope="module")
def chromium() -> str:
    path, detail = find_chromium()
    if path is None:
        pytest.skip(f"no Chromium on this machine: {detail} (install one, e.g. `apt-get install chromium`)")
    return path


class _Body(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str | None] | None = None
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and self.body is None:
            self.body = dict(attrs)
        self.images += tag == "img"


def load_in_chromium(chromium: str, page: Path, profile: Path) -> tuple[list[int], list[str], int]:
    """Load ``page`` headless and return (the images' natural widths, the errors recorded, <img> count)."""
    headless = "--headless" if "headless-shell" in Path(chromium).name else "--headless=new"
    cmd = [
        chromium, headless, "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
        "--disable-extensions", f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom",
        page.resolve().as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    parser = _Body()
    parser.feed(proc.stdout)
    parser.close()
    body = parser.body or {}
    assert "data-images" in body, f"the report's load handler did not run; DOM starts {proc.stdout[:500]!r}"
    return json.loads(body["data-images"] or "null"), json.loads(body.get("data-errors") or "null"), parser.images


def test_report_loads_without_errors_and_every_image_renders(chromium: str, tmp_path: Path) -> None:
    result = synthetic_result(tmp_path / "reports")
    R.write_report(result, tmp_path / "reports")
    moved = tmp_path / "elsewhere" / "report.html"  # alone, away from figures/: the page must not need them
    moved.parent.mkdir()
    shutil.copy(tmp_path / "reports" / "index.html", moved)
    widths, errors, count = load_in_chromium(chromium, moved, tmp_path / "profile")
    assert errors == []
    assert count == len(result["figures"]) == len(widths) == 2
    assert all(w > 0 for w in widths), widths


def test_browser_harness_sees_a_broken_image(chromium: str, tmp_path: Path) -> None:
    """The control: a figure whose PNG is corrupt renders with natural width 0 and an error is recorded."""
    result = synthetic_result(tmp_path)
    Path(result["figures"][1]["png"]).write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    page = tmp_path / "broken.html"
    page.write_text(R.render_html(result), encoding="utf-8")
    widths, errors, _ = load_in_chromium(chromium, page, tmp_path / "profile")
    assert widths[0] > 0 and widths[1] == 0
    assert len(errors) == 1 and "failed to load" in errors[0]
