"""paper_figures: every figure on a tiny configuration writes a non-empty PNG, PDF and JSON, and the JSON holds
exactly what was drawn (each series compared with the matplotlib artists of the rendered figure).

Stored results: tiny ``bench_*.json`` files with the benchmarks' schema and a tiny ``data/R1.json`` are written
into a temporary results folder, so the figures that read stored results take that path; the simulator
figures without a stored file run their check at its quick size (under a second each), and the benchmark
figures' quick fallback is exercised with a stand-in for the benchmark run (the real quick runs take 10-20 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer

import robustdistill.paper_figures as paper_figures
from robustdistill.experiments.cli import main
from robustdistill.experiments.pipeline.files import write_json_atomic
from robustdistill.paper_figures import FIGURES, _style, make_figures
from robustdistill.theory.simulators.rad_checks import SPEC_GAINS
from robustdistill.theory.simulators.rad_selection_checks import worst_case_curve

ROOT = Path(__file__).resolve().parents[1]
#: Figures that read the tiny stored results below; every other one computes its data ("quick").
STORED = {"rad_worst_case", "rad_active_curves", "weighted_ablation", "slam_accuracy_vs_labels", "realdata_paired"}
BENCH_FIGURES = {
    "rad_active_curves": "active",
    "weighted_ablation": "ablation",
    "slam_accuracy_vs_labels": "distill",
    "realdata_paired": "realdata",
}


# ------------------------------------------------------------------------------------------------------
# Tiny stored results with the benchmarks' and verify's schemas


def _tiny_active() -> dict[str, Any]:
    rows = []
    for loss in ("vanilla", "slam"):
        for k, selector in enumerate(("rad", "margin", "random", "entropy")):
            acc = np.array([[0.4, 0.5 + 0.01 * k, 0.6], [0.42, 0.55, 0.58 + 0.01 * k]])
            rows.append(
                {
                    "dataset": "digits",
                    "loss": loss,
                    "selector": selector,
                    "queries": [0, 10, 20],
                    "mean": acc.mean(axis=0).tolist(),
                    "std": acc.std(axis=0, ddof=1).tolist(),
                    "accuracy": acc.tolist(),
                    "teacher_accuracy": [0.7, 0.72],
                }
            )
    return {"benchmark": "active", "rows": rows, "seeds": [0, 1], "quick": False}


def _tiny_distill(methods: list[str], grid: str) -> dict[str, Any]:
    rows, cells = [], {}
    for dataset, sizes in (("digits", (50, 100)), ("mnist1d", (500, 1000))):
        for size in sizes:
            for k, method in enumerate(methods):
                acc = [0.5 + 0.01 * k + 0.001 * size / 50, 0.52 + 0.005 * k]
                student = None if method == "teacher" else float(np.mean(acc))
                rows.append(
                    {
                        "dataset": dataset,
                        "labeled": size,
                        "method": method,
                        "student_mean": student,
                        "student_std": None if student is None else float(np.std(acc, ddof=1)),
                        "teacher_mean": 0.6,
                        "teacher_std": 0.02,
                        "student_accuracy": acc,
                    }
                )
                if student is not None:
                    cells.setdefault(f"{dataset}-{size}", {})[method] = student
    out = {"benchmark": grid, "grid": grid, "rows": rows, "cells": cells, "seeds": [0, 1], "quick": False}
    if grid == "ablation":
        out["ranks"] = {m: float(len(methods) - i) for i, m in enumerate(methods)}
        out["winner"] = methods[-1]
    return out


def _tiny_realdata() -> dict[str, Any]:
    from robustdistill.experiments.benchmarks.realdata import BASELINE, paired

    cells = {}
    for student, size in (("mlp", 100), ("cnn", 100)):
        accs = {BASELINE: [0.70, 0.72, 0.71], "slam (2') top-k": [0.73, 0.74, 0.72], "forward": [0.69, 0.73, 0.70]}
        cells[f"{student}-{size}"] = {
            "student": student,
            "labeled": size,
            "teacher": [0.68, 0.7, 0.69],
            "paired": paired(accs),
        }
    return {"benchmark": "realdata", "cells": cells, "baseline": BASELINE, "seeds": [0, 1, 2], "quick": False}


def _tiny_r1() -> dict[str, Any]:
    gains = np.linspace(0.02, 1.0, 50)
    return {
        "spec_gains": worst_case_curve(SPEC_GAINS, 2, np.arange(6)).to_dict(),
        "uniform_gains_n50": worst_case_curve(gains, 2, np.arange(0, 9, 2)).to_dict(),
    }


TINY = {
    "active": _tiny_active,
    "ablation": lambda: _tiny_distill(
        ["vanilla (soft)", "vanilla (hard)", "accuracy (soft)", "debiased (soft)"], "ablation"
    ),
    "distill": lambda: _tiny_distill(["labeled_only", "teacher", "vanilla (soft)", "slam (2')", "slam (2)"], "methods"),
    "realdata": _tiny_realdata,
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("results")
    for target, build in TINY.items():
        write_json_atomic(folder / f"bench_{target}.json", build())
    write_json_atomic(folder / "data" / "R1.json", _tiny_r1())
    return folder


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The matplotlib figure rendered for each figure name (``_style.render`` wrapped)."""
    captured: dict[str, Any] = {}
    original = _style.render

    def render(spec: dict[str, Any]) -> Any:
        captured[spec["figure"]] = fig = original(spec)
        return fig

    monkeypatch.setattr(_style, "render", render)
    return captured


# ------------------------------------------------------------------------------------------------------
# What was drawn == the JSON


def _arr(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _close(a: Any, b: Any) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=float), _arr(list(b)), rtol=1e-12, atol=1e-12, equal_nan=True)


def _assert_band(ax: Any, label: str, x: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
    (band,) = [c for c in ax.collections if c.get_label() == f"_band {label}"]
    verts = np.concatenate([p.vertices for p in band.get_paths()])
    for xi, lo, hi in zip(x, low, high):
        if np.isfinite([xi, lo, hi]).all():
            for y in (lo, hi):
                assert np.min(np.hypot(verts[:, 0] - xi, verts[:, 1] - y)) < 1e-9 * max(1.0, abs(y)), (label, xi, y)


def assert_drawn_matches(fig: Any, spec: dict[str, Any]) -> None:
    """Every panel and series of the JSON spec is on the figure with the same numbers, titles and scales."""
    assert fig.get_suptitle() == spec["title"]
    assert len(fig.axes) == len(spec["panels"])
    for ax, panel in zip(fig.axes, spec["panels"]):
        assert ax.get_title() == panel["title"] and ax.get_xlabel() == panel["xlabel"]
        assert ax.get_ylabel() == panel["ylabel"]
        assert ax.get_xscale() == panel.get("xscale", "linear") and ax.get_yscale() == panel.get("yscale", "linear")
        labels = [s["label"] for s in panel["series"]]
        assert len(labels) == len(set(labels)), f"duplicate series labels in {panel['title']!r}"
        lines = {line.get_label(): line for line in ax.get_lines()}
        for s in panel["series"]:
            kind = s.get("kind", "line")
            if kind == "line":
                line = lines[s["label"]]
                _close(line.get_xdata(), s["x"])
                _close(line.get_ydata(), s["y"])
                if "low" in s:
                    _assert_band(ax, s["label"], _arr(s["x"]), _arr(s["low"]), _arr(s["high"]))
            elif kind == "errorbar":
                (container,) = [
                    c for c in ax.containers if isinstance(c, ErrorbarContainer) and c.get_label() == s["label"]
                ]
                data_line, _, (bars,) = container.lines
                _close(data_line.get_xdata(), s["x"])
                _close(data_line.get_ydata(), s["y"])
                segments = np.array(bars.get_segments())  # (n, 2, 2): (x, low), (x, high)
                _close(segments[:, 0, 1], s["low"])
                _close(segments[:, 1, 1], s["high"])
            else:
                (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
                _close([p.get_width() for p in bars.patches], s["values"])
                assert [t.get_text() for t in ax.get_yticklabels()] == s["categories"]


def _assert_files(fig: paper_figures.Figure, out: Path) -> dict[str, Any]:
    png, pdf = fig.files
    assert (
        png == out / f"{fig.name}.png" and pdf == out / f"{fig.name}.pdf" and fig.data_path == out / f"{fig.name}.json"
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2_000
    data = json.loads(fig.data_path.read_text())  # strict JSON: no NaN or Infinity
    assert data["figure"] == fig.name and data["source"] == fig.source and data["inputs"]
    assert "NaN" not in fig.data_path.read_text() and "Infinity" not in fig.data_path.read_text()
    return data


# ------------------------------------------------------------------------------------------------------
# Tests


def test_registry_order_and_modules() -> None:
    names = list(FIGURES)
    groups = [n.split("_")[0] for n in names]
    assert groups == sorted(groups, key=["rad", "weighted", "slam", "realdata"].index) and len(names) >= 10
    for name in names:
        module = __import__(f"robustdistill.paper_figures.{name}", fromlist=["make", "main"])
        assert callable(module.make) and callable(module.main) and module.__doc__ and module.NAME == name


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_files_and_data_match_the_drawing(
    name: str, results: Path, tmp_path: Path, drawn: dict[str, Any]
) -> None:
    (fig,) = make_figures([name], out=tmp_path, results=results)
    assert fig.name == name and fig.source == ("stored" if name in STORED else "quick")
    data = _assert_files(fig, tmp_path)
    assert_drawn_matches(drawn[name], data)


def test_stored_data_is_what_is_plotted(results: Path, tmp_path: Path) -> None:
    """Spot checks against the stored inputs themselves (not only the drawing)."""
    (fig,) = make_figures(["rad_active_curves"], out=tmp_path, results=results)
    data = json.loads(fig.data_path.read_text())
    stored = json.loads((results / "bench_active.json").read_text())["rows"]
    row = next(r for r in stored if r["loss"] == "slam" and r["selector"] == "rad")
    panel = next(p for p in data["panels"] if p["title"].startswith("digits, slam"))
    series = next(s for s in panel["series"] if s["label"] == "rad")
    _close(series["y"], 100 * np.asarray(row["mean"]))
    _close(series["high"], 100 * (np.asarray(row["mean"]) + np.asarray(row["std"])))
    (fig,) = make_figures(["rad_worst_case"], out=tmp_path, results=results)
    first = json.loads(fig.data_path.read_text())["panels"][0]["series"][0]
    assert first["label"].startswith("RAD")
    _close(first["y"], _tiny_r1()["spec_gains"]["rad"])


@pytest.mark.parametrize("name", sorted(BENCH_FIGURES))
def test_bench_figures_fall_back_to_the_quick_run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No stored result: the figure calls its quick run with a temporary folder (removed afterwards)."""
    module = __import__(f"robustdistill.paper_figures.{name}", fromlist=["_quick"])
    folders: list[Path] = []

    def quick(tmp: Path) -> dict[str, Any]:
        assert tmp.is_dir()
        folders.append(tmp)
        return {**TINY[BENCH_FIGURES[name]](), "quick": True}

    monkeypatch.setattr(module, "_quick", quick)
    (fig,) = make_figures([name], out=tmp_path / "out", results=tmp_path / "empty")
    assert fig.source == "quick" and len(folders) == 1 and not folders[0].exists()
    data = _assert_files(fig, tmp_path / "out")
    assert "quick" in data["title"]


def test_stored_only_fails_without_stored_results(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="robustdistill verify"):
        make_figures(["slam_convergence"], out=tmp_path, results=tmp_path / "empty", quick=False)
    with pytest.raises(FileNotFoundError, match="robustdistill bench active"):
        make_figures(["rad_active_curves"], out=tmp_path, results=tmp_path / "empty", quick=False)


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown figure.*'nope'.*rad_probabilities.*slam_convergence"):
        make_figures(["slam_mixing", "nope"], out=tmp_path)
    assert not list(tmp_path.iterdir())  # checked before anything is made


def test_cli_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figs"
    argv = ["figures", "slam_mixing", "weighted_weights", "--out", str(out), "--results", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [["slam_mixing", "quick"], ["weighted_weights", "quick"]]
    assert str(out / "slam_mixing.png") in lines[0] and str(out / "slam_mixing.json") in lines[0]
    assert main(["figures", "nope", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robustdistill: error: unknown figure(s) 'nope'") and "rad_probabilities" in err


def test_run_as_module(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "paper_figures.weighted_weights", "--out", str(tmp_path), "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "weighted_weights (quick)" in done.stdout and (tmp_path / "weighted_weights.pdf").stat().st_size > 0
