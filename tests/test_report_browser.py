"""The HTML report in a real headless browser: it loads without errors, every image renders, and a screenshot
of the page shows it drawn, its summary banner at the top in the colour of the result.

Chromium comes from the system packages (``apt-get install chromium`` on Debian, which ``.ci/run`` does when it
runs as root; ``chromium-browser`` or ``google-chrome`` elsewhere; ``chromium-headless-shell``; or Playwright's
bundled build). Without one the tests skip and say why. No new dependency: Chromium runs with ``--dump-dom``
after its virtual time budget, and the report's own inline script has written, on ``load``, the images'
``naturalWidth`` to ``<body data-images>`` and every error event (script errors, resources that failed to load)
and ``console.error`` call to ``<body data-errors>``; the test parses the dumped DOM. The screenshot
(``--screenshot``) is read with matplotlib.
"""

from __future__ import annotations

import glob
import html.parser
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg
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


def chromium_command(chromium: str, profile: Path, *options: str) -> list[str]:
    headless = "--headless" if "headless-shell" in Path(chromium).name else "--headless=new"
    return [
        chromium,
        headless,
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        *options,
    ]


def load_in_chromium(chromium: str, page: Path, profile: Path) -> tuple[list[int], list[str], int]:
    """Load ``page`` headless and return (the images' natural widths, the errors recorded, <img> count)."""
    cmd = chromium_command(chromium, profile, "--dump-dom", page.resolve().as_uri())
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    parser = _Body()
    parser.feed(proc.stdout)
    parser.close()
    body = parser.body or {}
    assert "data-images" in body, f"the report's load handler did not run; DOM starts {proc.stdout[:500]!r}"
    return json.loads(body["data-images"] or "null"), json.loads(body.get("data-errors") or "null"), parser.images


def test_report_loads_without_errors_and_every_image_renders(chromium: str, tmp_path: Path) -> None:
    result = synthetic_result(tmp_path / "reports", skipped=True, headlines=True)
    R.write_report(result, tmp_path / "reports")
    moved = tmp_path / "elsewhere" / "report.html"  # alone, away from figures/: the page must not need them
    moved.parent.mkdir()
    shutil.copy(tmp_path / "reports" / "index.html", moved)
    widths, errors, count = load_in_chromium(chromium, moved, tmp_path / "profile")
    assert errors == []
    assert count == len(result["figures"]) == len(widths) == 5
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


WINDOW = (1280, 900)


def screenshot(chromium: str, page: Path, png: Path, profile: Path) -> np.ndarray:
    """The top ``WINDOW`` of ``page`` as rendered by Chromium: an (height, width, 3) uint8 array."""
    cmd = chromium_command(
        chromium,
        profile,
        "--hide-scrollbars",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={png}",
        page.resolve().as_uri(),
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0 and png.is_file(), f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    pixels = mpimg.imread(png)
    return np.round(pixels[..., :3] * 255).astype(np.uint8) if pixels.dtype != np.uint8 else pixels[..., :3]


def share_of(pixels: np.ndarray, colour: str, tolerance: int = 3) -> float:
    """The share of ``pixels`` within ``tolerance`` (per channel) of ``colour`` (``#rrggbb``)."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return float(np.mean(np.all(np.abs(pixels.astype(int) - rgb) <= tolerance, axis=-1)))


@pytest.mark.parametrize(
    ("level", "options"), [("fail", {"skipped": True}), ("ok", {"failing": False, "errored": False})]
)  # amber ("incomplete") shares the CSS: test_reproduce checks that its summary gets that class
def test_screenshot_shows_the_page_with_the_summary_banner_at_the_top(
    chromium: str, tmp_path: Path, level: str, options: dict[str, bool]
) -> None:
    result = synthetic_result(tmp_path / "reports", headlines=True, **options)
    paths = R.write_report(result, tmp_path / "reports")
    pixels = screenshot(chromium, paths["html"], tmp_path / "top.png", tmp_path / "profile")
    assert pixels.shape == (WINDOW[1], WINDOW[0], 3)
    drawn = np.any(pixels < 245, axis=-1)  # anything but the white background
    assert 0.05 < drawn.mean() < 0.95, f"the page looks blank or flooded: {drawn.mean():.3f} of pixels drawn"
    assert drawn[: WINDOW[1] // 10].mean() > 0.005  # the title is drawn at the very top
    top = pixels[: WINDOW[1] // 3]
    assert share_of(top, R.STATUS_COLOURS[level]) > 0.05, f"no {level} banner in the top third"
    others = [c for name, c in R.STATUS_COLOURS.items() if name != level]
    assert all(share_of(pixels, c) < 0.001 for c in others)
