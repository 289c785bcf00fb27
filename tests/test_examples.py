"""The example scripts in ``examples/`` run (at their ``--quick`` sizes, in-process, in a temporary working
directory) and print what their docstrings promise: the expected table rows, accuracies in [0, 1], the paid
teacher's label count |V| + R*b exactly, the query game's solver gap below 1e-9, the halfspace separation.
Every example is seeded, so the numbers asserted here are deterministic."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = (
    "slam_own_loop",
    "weighted_sklearn_teacher",
    "active_callable_teacher",
    "halfspace_separation",
    "verify_guarantee",
)
NUMBER = r"-?\d+(?:\.\d+)?(?:e[+-]\d+)?"


def load(name: str):
    """Import ``examples/NAME.py`` by path (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"robustdistill_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    """``run(name, *args)``: the example's ``main(["--quick", *args])`` in an empty working directory;
    returns (its return value, its stdout lines). Nothing may be left in the working directory."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    def _run(name: str, *args: str):
        capsys.readouterr()
        value = load(name).main(["--quick", *args])
        out = capsys.readouterr().out
        assert list(cwd.iterdir()) == [], f"{name} wrote into the working directory"
        return value, out.splitlines()

    return _run


def rows(lines: list[str], first: str) -> list[float]:
    """The numbers of the one line whose first word is ``first``."""
    found = [line for line in lines if line.split()[:1] == [first]]
    assert len(found) == 1, f"expected one row {first!r}, got {found}"
    return [float(x) for x in re.findall(NUMBER, found[0].split(maxsplit=1)[1])]


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_is_documented_and_listed(name):
    module = load(name)
    doc = module.__doc__ or ""
    for part in ("What it shows", "How to run", "What it prints", f"python examples/{name}.py --quick"):
        assert part in doc, f"{name}'s docstring lacks {part!r}"
    assert f"examples/{name}.py" in (EXAMPLES / "README.md").read_text(encoding="utf-8")
    assert 'if __name__ == "__main__":\n    main()' in (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")


def test_slam_own_loop(run):
    value, lines = run("slam_own_loop")
    assert set(value) == {"teacher", "vanilla", "weighted", "slam"}
    for method in ("vanilla", "weighted", "slam"):
        acc, low, high, seconds = rows(lines, method)
        assert 0.0 <= low <= acc <= high <= 1.0 and seconds >= 0
        assert acc == pytest.approx(value[method][0], abs=5e-4)
        assert acc > 0.5  # 10 classes: far above chance with a 0.76-accurate teacher
    teacher = [line for line in lines if line.startswith("teacher test accuracy")]
    assert len(teacher) == 1 and 0.5 < value["teacher"][0] < 1.0


def test_weighted_sklearn_teacher(run, tmp_path):
    out = tmp_path / "out"
    value, lines = run("weighted_sklearn_teacher", "--out", str(out))
    # The curve: 3 equal-mass margin bins of |V| = 150, accuracies and weights in [0, 1], fit non-decreasing.
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("margin range"))
    curve = [
        [float(x) for x in re.findall(NUMBER, line.replace("-", " ", 1))] for line in lines[header + 1 : header + 4]
    ]
    assert [int(r[2]) for r in curve] == [50, 50, 50]
    fitted = [r[6] for r in curve]
    assert fitted == sorted(fitted) and all(0.0 <= x <= 1.0 for r in curve for x in r[3:])
    for name, labels in (("labeled_only", 0), ("vanilla", 650), ("weighted", 650)):  # |V| + |U| = 150 + 500
        student, std, teacher, used = rows(lines, name)
        assert 0.0 <= student <= 1.0 and 0.0 <= teacher <= 1.0 and std >= 0
        assert used == labels == value[name]["queries"]
        assert (out / f"logistic_{name}.json").is_file()
    assert lines[-1] == "the curve's V is the pipeline's V of seed 0: True"


def test_active_callable_teacher(run, tmp_path):
    out = tmp_path / "out"
    value, lines = run("active_callable_teacher", "--out", str(out))
    expected = 100 + 2 * 20  # quick: |V| = 100, R = 2 rounds of b = 20, one seed
    for selector in ("rad", "margin", "random"):
        assert value[selector]["rows"] == expected == value[selector]["teacher_queries"]
        assert value[selector]["queries"] == [100, 120, 140]
        assert all(0.0 <= a <= 1.0 for a in value[selector]["accuracy"])
        line = next(line for line in lines if line.startswith(f"{selector}: the paid callable"))
        assert f"answered {expected} rows" in line and line.endswith(f"= {expected}: True")
        assert (out / f"active_{selector}.json").is_file()  # one folder and summary per selector
    for labels in (100, 120, 140):
        accs = rows(lines, str(labels))
        assert len(accs) == 3 and all(0.0 <= a <= 1.0 for a in accs)
    assert rows(lines, "100")[0] == rows(lines, "100")[1] == rows(lines, "100")[2]  # same start for all


def test_halfspace_separation(run):
    value, lines = run("halfspace_separation")
    assert [r["eta"] for r in value["long_servedio"]] == [0.1, 0.3]
    for r in value["long_servedio"]:  # the separation: logistic regression 1/2, forward adjustment 0
        assert r["sklearn_logreg"] == r["sgd_plain"] == 0.5
        assert r["slam"] == r["slam_est_eta"] == 0.0 and r["gap"] == 0.5
    for r in value["sphere"]:
        assert all(0.0 <= r[k] <= 0.2 for k in ("sklearn_logreg", "sgd_plain", "slam", "slam_est_eta"))
    assert sum(line.split()[:1] == ["0.10"] for line in lines) == 2  # one row per kind


def test_verify_guarantee(run):
    value, lines = run("verify_guarantee")
    gaps = value["gaps"]
    assert gaps["value"] < 1e-9 and gaps["certificate"] < 1e-9 and gaps["budget"] < 1e-9
    assert gaps["beats_greedy"] <= 1e-9 and gaps["beats_uniform"] <= 1e-9
    summary = [line for line in lines if line.strip().startswith("max ")]
    assert len(summary) == 5 and all(line.endswith("holds: True") for line in summary)
    assert float(re.findall(NUMBER, summary[0])[-1]) < 1e-9
    assert "20 random games" in " ".join(lines)
    assert [c["name"] for c in value["checks"]] == ["P3-exact", "P5"]
    assert all(c["holds"] for c in value["checks"])
    for name in ("P3-exact", "P5"):  # name, bound, measured, holds; the claim on the next line
        at = [line.split()[:1] for line in lines].index([name])
        assert len(rows(lines, name)) == 2 and lines[at].split()[-1] == "True"
        assert lines[at + 1].startswith("    ") and len(lines[at + 1].strip()) > 20
