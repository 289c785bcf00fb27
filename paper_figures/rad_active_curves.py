r"""Student test accuracy against cumulative teacher queries, per selector, with the vanilla and the SLaM
loss on the queried points (the active distillation benchmark).

Illustrates the RAD paper's experiment (paper: RAD against margin, entropy, coreset, BADGE, cluster-margin
and UNIXKD selection under a limited teacher-query budget), run here on small CPU datasets with our
formulation of each selector (``docs/theory/rad.md#rad-baselines``). RAD is drawn thicker; RAD, margin and random carry
bands of mean +- std over seeds (the other selectors' bands, in the benchmark's JSON, would hide the lines).
Data: ``RESULTS/bench_active.json`` (``robustdistill bench active``), else the benchmark's quick version
(digits, 2 seeds, 2 rounds, 2 epochs: a smoke run, not a result).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import _data, _style

NAME = "rad_active_curves"
#: The selectors drawn with a band of mean +- std over seeds.
BANDS = ("rad", "margin", "random")


def _quick(tmp: Path) -> dict[str, Any]:
    from robustdistill.experiments.benchmarks import active as bench_active

    return bench_active.run(quick=True, progress=False, out=str(tmp / "active"), cache=str(tmp / "cache"))


def _series(row: dict[str, Any], style: dict[str, Any]) -> dict[str, Any]:
    mean, std = 100 * np.asarray(row["mean"]), 100 * np.asarray(row["std"])
    s = {"label": row["selector"], "x": row["queries"], "y": mean, "marker": "o", **style}
    if row["selector"] in BANDS:
        s.update(low=mean - std, high=mean + std)
    if row["selector"] == "rad":
        s.update(linewidth=2.6, zorder=4)
    return s


def make(out: Path, results: Path, quick: bool = True) -> _style.Figure:
    """One panel per (dataset, loss) of the benchmark's rows; one line per selector."""
    result, source, origin = _data.bench_result(
        "active", results, quick, _quick, "robustdistill.experiments.benchmarks.active.run(quick=True)"
    )
    rows = result["rows"]
    selectors = sorted(dict.fromkeys(r["selector"] for r in rows), key=lambda s: (s != "rad", s))
    styles = _style.series_styles(selectors)
    panels = []
    for dataset, loss in dict.fromkeys((r["dataset"], r["loss"]) for r in rows):
        cell = {r["selector"]: r for r in rows if r["dataset"] == dataset and r["loss"] == loss}
        accuracy = next(iter(cell.values())).get("teacher_accuracy")
        teacher = f" (teacher {100 * float(np.mean(accuracy)):.1f}%)" if accuracy else ""
        panels.append(
            {
                "title": f"{dataset}, {loss} loss{teacher}",
                "xlabel": "teacher queries (cumulative, points)",
                "ylabel": "student test accuracy (%)",
                "series": [_series(cell[s], styles[s]) for s in selectors if s in cell],
                "legend": False,
            }
        )
    seeds = result.get("seeds", [])
    spec = {
        "title": f"Active distillation: student accuracy vs teacher queries per selector ({len(seeds)} seeds; "
        f"bands: mean +- std for {', '.join(BANDS)})" + (" [quick smoke run]" if result.get("quick") else ""),
        "panels": panels,
        "ncols": 2 if len(panels) > 1 else 1,
        "legend": "figure",
    }
    return _style.finish(NAME, spec, out, source, {"bench_active": origin, "seeds": seeds})


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_figures.rad_active_curves [--out DIR] [--results DIR]``."""
    return _style.main(NAME, make, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
