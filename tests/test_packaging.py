"""The code folders and the figure scripts install as sub-packages of the `robustdistill` namespace, in a real
wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_maps_folders_into_the_namespace(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("robustdistill-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # every module and config of the four folders, sub-packages included, is in the wheel at its namespace path
    # (`robustdistill figures` imports the figure scripts)
    sources = [
        p.relative_to(ROOT).as_posix()
        for folder in ("algorithms", "theory", "experiments", "paper_figures")
        for p in (ROOT / folder).rglob("*")
        if p.suffix in (".py", ".toml") and "__pycache__" not in p.parts
    ]
    assert len(sources) > 60 and "experiments/configs/digits.toml" in sources
    missing = [s for s in sources if f"robustdistill/{s}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    top_level = {name.split("/")[0] for name in names}
    # nothing installs as a generic top-level name (`import algorithms` must never work)
    assert not top_level & {"algorithms", "theory", "experiments", "tests", "paper_figures"}
    assert "robustdistill/__init__.py" not in names  # a namespace package
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "robustdistill = robustdistill.experiments.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_editable_install_imports_from_this_checkout():
    import robustdistill.algorithms.rad as rad
    import robustdistill.theory.query_game as qg

    assert Path(rad.__file__).resolve().parent == ROOT / "algorithms"
    assert Path(qg.__file__).resolve().parent == ROOT / "theory"


def test_paper_figures_import_outside_the_checkout(tmp_path):
    """The editable install maps the figure scripts too: they import from a folder that is not the repo root."""
    code = "import robustdistill.paper_figures as p, pathlib; print(pathlib.Path(p.__file__).resolve().parent)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert Path(done.stdout.strip()) == ROOT / "paper_figures"
