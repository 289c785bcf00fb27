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
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("robustdistill-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("algorithms/rad.py", "algorithms/query_game.py", "algorithms/depround.py",
                   "theory/query_game.py", "theory/simulators.py", "theory/rad_checks.py", "experiments/cli.py",
                   "experiments/configs/digits.toml", "experiments/configs/mnist1d.toml"):
        assert f"robustdistill/{module}" in names
    for module in ("__init__.py", "_style.py", "_data.py", "rad_probabilities.py", "slam_convergence.py"):
        assert f"robustdistill/paper_figures/{module}" in names  # `robustdistill figures` imports it
    top_level = {name.split("/")[0] for name in names}
    # nothing installs as a generic top-level name (`import algorithms` must never work)
    assert not top_level & {"algorithms", "theory", "experiments", "tests", "paper_figures"}
    assert "robustdistill/__init__.py" not in names  # a namespace package
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "robustdistill = robustdistill.experiments.cli:main" in zipfile.ZipFile(wheel).read(
        entry_points
    ).decode()


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
