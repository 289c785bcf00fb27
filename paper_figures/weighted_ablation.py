r"""The Weighted Distillation ablation: every weight scheme on soft and hard teacher targets, and the
debiased soft targets; their mean rank over the (dataset, labeled-set size) cells, and per cell the student
accuracy difference to uniform weights on soft targets (vanilla distillation, the default), mean +- std of
the per-seed paired differences.

Illustrates ``docs/theory/weighted.md#weighted-default-scheme`` (our formulation of the paper's ablation of the weighting, paper). Data:
``RESULTS/bench_ablation.json`` (``robustdistill bench ablation``), else the benchmark's quick version (one
dataset and size, 2 seeds, 2 epochs: a smoke run, not a result).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import _data, _style

NAME = "weighted_ablation"
REFERENCE = "vanilla (soft)"
MARKERS = {"soft": "o", "hard": "s", "debiased": "D"}


def _quick(tmp: Path) -> dict[str, Any]:
    from robustdistill.experiments.benchmarks import distill as bench_distill

    return bench_distill.run(
        quick=True, grid="ablation", progress=False, out=str(tmp / "distill"), cache=str(tmp / "cache")
    )


def _targets(row: str) -> str:
    return row.rsplit("(", 1)[-1].rstrip(")") if "(" in row else "soft"


def _ranks_panel(result: dict[str, Any], styles: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ranks = sorted(result["ranks"].items(), key=lambda kv: kv[1])
    winner = result.get("winner")
    return {
        "title": f"mean rank over {len(result['cells'])} cell(s) (winner: {winner})",
        "xlabel": "mean rank of student test accuracy (1 = best)",
        "ylabel": "",
        "series": [
            {
                "kind": "barh",
                "label": "mean rank",
                "categories": [r for r, _ in ranks],
                "values": [v for _, v in ranks],
                "colors": [styles[r]["color"] for r, _ in ranks],
            }
        ],
    }


def _difference_panel(result: dict[str, Any], styles: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rows = result["rows"]
    cells = list(dict.fromkeys((r["dataset"], r["labeled"]) for r in rows))
    names = [n for n in dict.fromkeys(r["method"] for r in rows) if n != REFERENCE]
    by_key = {(r["dataset"], r["labeled"], r["method"]): r for r in rows}
    width = 0.8 / max(1, len(names))
    series = [
        {
            "label": f"{REFERENCE} (reference)",
            "x": [-0.5, len(cells) - 0.5],
            "y": [0.0, 0.0],
            "color": "#000000",
            "linewidth": 0.8,
        }
    ]
    for j, name in enumerate(names):
        x, mean, low, high = [], [], [], []
        for i, (dataset, labeled) in enumerate(cells):
            row, ref = by_key.get((dataset, labeled, name)), by_key.get((dataset, labeled, REFERENCE))
            if row is None or ref is None:
                continue
            diff = 100 * (np.asarray(row["student_accuracy"]) - np.asarray(ref["student_accuracy"]))
            sd = float(diff.std(ddof=1)) if diff.size > 1 else 0.0
            x.append(i - 0.4 + (j + 0.5) * width)
            mean.append(float(diff.mean()))
            low.append(float(diff.mean()) - sd)
            high.append(float(diff.mean()) + sd)
        series.append(
            {
                "kind": "errorbar",
                "label": name,
                "x": x,
                "y": mean,
                "low": low,
                "high": high,
                "color": styles[name]["color"],
                "marker": MARKERS.get(_targets(name), "o"),
            }
        )
    return {
        "title": f"student accuracy minus {REFERENCE}, per cell (mean +- std of paired seed differences)",
        "xlabel": "dataset, labeled-set size (points)",
        "ylabel": "accuracy difference (percentage points)",
        "xticks": {"positions": list(range(len(cells))), "labels": [f"{d} {n}" for d, n in cells], "rotation": 35},
        "series": series,
        "legend": False,
    }


def make(out: Path, results: Path, quick: bool = True) -> _style.Figure:
    """The ranks (bars) and the per-cell paired differences to the reference (points with std bars)."""
    result, source, origin = _data.bench_result(
        "ablation",
        results,
        quick,
        _quick,
        "robustdistill.experiments.benchmarks.distill.run(quick=True, grid='ablation')",
    )
    names = list(dict.fromkeys(r["method"] for r in result["rows"]))
    schemes = list(dict.fromkeys(n.split(" ")[0] for n in names))
    scheme_styles = _style.series_styles(schemes)
    styles = {n: scheme_styles[n.split(" ")[0]] for n in names}
    seeds = result.get("seeds", [])
    spec = {
        "title": f"Weighted Distillation ablation: weight schemes on soft and hard targets ({len(seeds)} seeds)"
        + (" [quick smoke run]" if result.get("quick") else ""),
        "panels": [_ranks_panel(result, styles), _difference_panel(result, styles)],
        "width_ratios": [1.0, 2.2],
        "figsize": [12.0, 5.2],
        "legend": "figure",
        "legend_panel": 1,
    }
    return _style.finish(NAME, spec, out, source, {"bench_ablation": origin, "seeds": seeds})


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_figures.weighted_ablation [--out DIR] [--results DIR]``."""
    return _style.main(NAME, make, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
