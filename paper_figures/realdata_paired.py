r"""Fashion-MNIST: every method's student test accuracy minus vanilla distillation's (soft targets), paired by
seed, with its 95% Student-t interval; one panel per (student, labeled-set size) cell, the teacher's accuracy
in the panel's title.

Data: ``RESULTS/bench_realdata.json`` (``robustdistill bench realdata``), else the benchmark's quick version
(tiny sizes, one epoch: a smoke run, not a result; it needs the Fashion-MNIST files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import _data, _style

NAME = "realdata_paired"


def _quick(tmp: Path) -> dict[str, Any]:
    """The smoke run; without the Fashion-MNIST files, an empty result whose ``skipped`` says why."""
    from robustdistill.experiments.benchmarks import BenchmarkSkipped, realdata

    try:
        return realdata.run(quick=True, progress=False, active=False, out=str(tmp / "runs"), cache=str(tmp / "cache"))
    except BenchmarkSkipped as exc:
        return {"cells": {}, "baseline": realdata.BASELINE, "seeds": [], "quick": True, "skipped": str(exc)}


def _panel(cell: dict[str, Any], baseline: str, styles: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rows = [m for m in cell["paired"] if m != baseline]
    series: list[dict[str, Any]] = [
        {
            "label": f"{baseline} (reference)",
            "x": [-0.5, len(rows) - 0.5],
            "y": [0.0, 0.0],
            "color": "#000000",
            "linewidth": 0.8,
        }
    ]
    for i, row in enumerate(rows):
        p = cell["paired"][row]
        series.append(
            {
                "kind": "errorbar",
                "label": row,
                "x": [i],
                "y": [100 * p["mean"]],
                "low": [100 * p["low"]],
                "high": [100 * p["high"]],
                "color": styles[row]["color"],
                "marker": "o",
            }
        )
    teacher = cell.get("teacher")
    title = f"{cell['student']} student, {cell['labeled']} labels"
    if teacher:
        title += f" (teacher {100 * float(np.mean(teacher)):.1f}%)"
    return {
        "title": title,
        "xlabel": "",
        "ylabel": "accuracy minus vanilla (soft), points",
        "xticks": {"positions": list(range(len(rows))), "labels": rows, "rotation": 55},
        "series": series,
        "legend": False,
    }


def make(out: Path, results: Path, quick: bool = True) -> _style.Figure:
    """One panel per cell: paired differences to the baseline (points) with their 95% intervals (bars)."""
    result, source, origin = _data.bench_result(
        "realdata", results, quick, _quick, "robustdistill.experiments.benchmarks.realdata.run(quick=True)"
    )
    cells = [c for c in result["cells"].values() if "paired" in c]
    if not cells:  # no data: one empty panel that says why
        note = result.get("skipped") or "no cell with a vanilla (soft) baseline"
        spec = {"title": "Fashion-MNIST: no results", "panels": [{"title": "", "series": [], "text": note[:300]}]}
        return _style.finish(NAME, spec, out, source, {"bench_realdata": origin, "seeds": []})
    names = list(dict.fromkeys(m for c in cells for m in c["paired"]))
    styles = _style.series_styles(names)
    seeds = result.get("seeds", [])
    spec = {
        "title": f"Fashion-MNIST: paired difference to {result['baseline']} with 95% intervals ({len(seeds)} seeds)"
        + (" [quick smoke run]" if result.get("quick") else ""),
        "panels": [_panel(c, result["baseline"], styles) for c in cells],
        "ncols": min(2, len(cells)),
        "figsize": [13.0, 5.4 * ((len(cells) + 1) // 2)],
    }
    return _style.finish(NAME, spec, out, source, {"bench_realdata": origin, "seeds": seeds})


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_figures.realdata_paired [--out DIR] [--results DIR]``."""
    return _style.main(NAME, make, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
