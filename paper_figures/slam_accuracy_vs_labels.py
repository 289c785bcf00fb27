r"""Student test accuracy against the labeled-set size, per distillation method (mean +- std over seeds as
bands), one panel per dataset; the teacher's own accuracy dashed.

Illustrates the SLaM paper's main experiment (paper: SLaM against vanilla distillation, weighted
distillation and loss-correction baselines, gains largest with few labels) on our small CPU datasets
(``docs/theory/slam.md#slam-baselines``; our formulation of each method). SLaM's two mixing forms are drawn in vermillion.
Methods with an unstable spread (backward correction) and the less related baselines are left out of the
plot; ``RESULTS/bench_distill.json`` holds every method. Data: that file (``robustdistill bench distill``),
else a quick grid (digits, the benchmark's three sizes, 2 seeds, 2 epochs: a smoke run, not a result).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import _data, _style

NAME = "slam_accuracy_vs_labels"
#: The benchmark's rows that are drawn, in legend order.
METHODS = ("teacher", "labeled_only", "vanilla (soft)", "weighted (accuracy)", "forward", "slam (2')", "slam (2)")
QUICK_DATASET, QUICK_SEEDS = "digits", (0, 1)


def _quick(tmp: Path) -> dict[str, Any]:
    """The drawn methods on the quick dataset at the benchmark's three sizes (the benchmark's own quick mode
    runs one size only)."""
    from robustdistill.experiments.benchmarks import distill as bench_distill
    from robustdistill.experiments.pipeline.distill import load_config, run_distillation

    rows = []
    for labeled in bench_distill.DATASETS[QUICK_DATASET][1]:
        for label, method, options in bench_distill.METHOD_ROWS:
            if label not in METHODS:
                continue
            cfg = bench_distill.base_config(QUICK_DATASET, labeled, True)  # the benchmark's quick settings
            cfg.update(
                name=f"{labeled}-{len(rows)}",
                method=method,
                method_options=options,
                seeds=list(QUICK_SEEDS),
                out=str(tmp / "distill"),
                cache=str(tmp / "cache"),
            )
            r = run_distillation(load_config(cfg), progress=False)
            rows.append(
                {
                    "dataset": QUICK_DATASET,
                    "labeled": labeled,
                    "method": label,
                    "student_mean": r.student_mean,
                    "student_std": r.student_std,
                    "teacher_mean": r.teacher_mean,
                    "teacher_std": r.teacher_std,
                }
            )
    return {"rows": rows, "seeds": list(QUICK_SEEDS), "quick": True}


def _styles() -> dict[str, dict[str, Any]]:
    styles = _style.series_styles([m for m in METHODS if not m.startswith("slam")])
    styles["teacher"] = {"color": "#000000", "linestyle": "--"}
    styles["vanilla (soft)"] = {"color": "#0072B2", "linestyle": "-", "linewidth": 2.0, "zorder": 3}
    styles["slam (2')"] = {"color": _style.NAMED_COLORS["rad"], "linestyle": "-", "linewidth": 2.4, "zorder": 4}
    styles["slam (2)"] = {"color": _style.NAMED_COLORS["rad"], "linestyle": "--", "linewidth": 2.0, "zorder": 4}
    return styles


def make(out: Path, results: Path, quick: bool = True) -> _style.Figure:
    """One panel per dataset: accuracy vs labeled-set size, one line and band per drawn method."""
    result, source, origin = _data.bench_result(
        "distill",
        results,
        quick,
        _quick,
        f"paper_figures.{NAME}._quick: run_distillation of the drawn methods on "
        f"{QUICK_DATASET}, the benchmark's quick=True settings, seeds {list(QUICK_SEEDS)}",
    )
    styles = _styles()
    panels = []
    for dataset in dict.fromkeys(r["dataset"] for r in result["rows"]):
        rows = [r for r in result["rows"] if r["dataset"] == dataset]
        sizes = sorted({r["labeled"] for r in rows})
        series = []
        for method in METHODS:
            found = sorted((r for r in rows if r["method"] == method), key=lambda r: r["labeled"])
            key = "teacher" if method == "teacher" else "student"
            found = [r for r in found if r[f"{key}_mean"] is not None]
            if not found:
                continue
            mean = 100 * np.array([r[f"{key}_mean"] for r in found])
            std = 100 * np.array([r[f"{key}_std"] or 0.0 for r in found])
            series.append(
                {
                    "label": method,
                    "x": [r["labeled"] for r in found],
                    "y": mean,
                    "low": mean - std,
                    "high": mean + std,
                    "marker": "o",
                    **styles[method],
                }
            )
        panels.append(
            {
                "title": dataset,
                "xlabel": "labeled-set size (points, log scale)",
                "ylabel": "test accuracy (%)",
                "xscale": "log",
                "xticks": {"positions": sizes, "labels": [str(s) for s in sizes]},
                "series": series,
                "legend": False,
            }
        )
    seeds = result.get("seeds", [])
    spec = {
        "title": f"Distillation with a noisy teacher: student accuracy vs labeled-set size ({len(seeds)} seeds; "
        "bands: mean +- std)" + (" [quick smoke run]" if result.get("quick") else ""),
        "panels": panels,
        "ncols": min(len(panels), 2),
        "legend": "figure",
    }
    return _style.finish(NAME, spec, out, source, {"bench_distill": origin, "seeds": seeds, "methods": list(METHODS)})


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_figures.slam_accuracy_vs_labels [--out DIR] [--results DIR]``."""
    return _style.main(NAME, make, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
