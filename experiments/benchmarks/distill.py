r"""The distillation benchmark and the Weighted Distillation ablation (``run_distillation`` over a grid).

Protocol: for every dataset of the grid (the base configs in ``experiments/configs/``: ``digits``,
``gaussian_mixture``, ``mnist1d``, and ``synthetic_teacher``: the Gaussian mixture with the untrained margin
teacher of known alpha(x)), every labeled-set size and every method row, ``run_distillation`` with
the grid's seeds (splits, teacher and student initialisation all follow the seed); the teacher of a (dataset,
size, seed) is trained once and its outputs are cached, so every method distills the same teacher. Reported:
mean +- std (over seeds, ddof 1) of the student's and the teacher's test accuracy. The validation and pool
sizes stay fixed across labeled-set sizes (the pool is what the teacher labels).

- ``grid="methods"`` (``robustdistill bench distill``): every method — labeled only, the teacher itself,
  vanilla soft and hard, weighted (W1 "accuracy" weights on soft targets; every scheme is in the ablation), SLaM (un-normalised (2') and normalised (2)),
  forward and backward correction, Taylor cross-entropy (order 2), confidence thresholding (0.9), UPS (the
  benchmark's teachers have no dropout, so its uncertainty is 0 and it selects by confidence alone) and VID
  (penultimate features; not on ``synthetic_teacher``, which has none).
- ``grid="ablation"`` (``robustdistill bench ablation``): vanilla distillation (uniform weights) and every
  weighting scheme on soft and hard targets, and the debiased soft targets; per (dataset, size) cell the rows are ranked by mean student
  accuracy (rank 1 = best, ties share the mean rank); the winner has the best mean rank over the cells, ties
  going to ``"accuracy"``.

``quick=True`` runs a seconds-long smoke version (one dataset, one size, 2 seeds, 2 epochs) for the tests.
Run it as ``python -m robustdistill.experiments.benchmarks.distill [--ablation] [--quick]``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
from tqdm import tqdm

from robustdistill.algorithms.validation import check_int
from robustdistill.algorithms.weighting import WEIGHTED_SCHEMES

from ..pipeline.config import tomllib
from ..pipeline.distill import run_distillation
from ..pipeline.files import environment_info
from ..pipeline.methods import PIPELINE_METHODS
from .reporting import bench_parser, finish_bench, format_table

__all__ = ["ABLATION_ROWS", "DATASETS", "METHOD_ROWS", "VARIANTS", "base_config", "rank_rows", "run", "table"]

#: row name -> (base config in experiments/configs/, labeled-set sizes, validation, unlabeled pool, config
#: overrides). ``synthetic_teacher``: the Gaussian mixture distilled from the untrained margin teacher with
#: known alpha(x) (``teacher = "synthetic"``; ``docs/theory/noise.md#noise-margin-teacher``'s synthetic teacher-noise dataset).
DATASETS: dict[str, tuple[str, tuple[int, ...], int, int, dict[str, Any]]] = {
    "digits": ("digits.toml", (50, 100, 200), 200, 900, {}),
    "gaussian_mixture": ("gaussian_mixture.toml", (50, 100, 200), 500, 10000, {}),
    "mnist1d": ("mnist1d.toml", (500, 1000, 2000), 500, 5000, {}),
    "synthetic_teacher": ("gaussian_mixture.toml", (50, 100, 200), 500, 10000, {"teacher": "synthetic"}),
}
SEEDS = (0, 1, 2)

#: Rows of a method beyond (or instead of) its default row: method -> [(row label, options)]. Every method of
#: the pipeline's registry gets one row (its name, default options) unless it is listed here, so a new method
#: joins the grid by itself.
VARIANTS: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "vanilla": (("vanilla (soft)", {"targets": "soft"}), ("vanilla (hard)", {"targets": "hard"})),
    "weighted": (("weighted (accuracy)", {"scheme": "accuracy"}),),
    "slam": (("slam (2')", {"normalize": False}), ("slam (2)", {"normalize": True})),
}
#: (row label, method, options) of the method grid, in the registry's order.
METHOD_ROWS: tuple[tuple[str, str, dict[str, Any]], ...] = tuple(
    (label, name, options) for name in PIPELINE_METHODS for label, options in VARIANTS.get(name, ((name, {}),))
)
#: The ablation rows: vanilla (uniform weights) and every weighting scheme on soft and hard targets, and the
#: debiased soft targets.
ABLATION_ROWS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("vanilla (soft)", "vanilla", {"targets": "soft"}),
    ("vanilla (hard)", "vanilla", {"targets": "hard"}),
    *(
        (f"{scheme} ({targets})", "weighted", {"scheme": scheme, "targets": targets})
        for scheme in WEIGHTED_SCHEMES
        for targets in ("soft", "hard")
    ),
    ("debiased (soft)", "weighted", {"targets": "debiased"}),
)


def base_config(dataset: str, labeled: int, quick: bool) -> dict[str, Any]:
    file, _, validation, unlabeled, overrides = DATASETS[dataset]
    cfg = tomllib.loads(resources.files("robustdistill.experiments").joinpath("configs", file).read_text())
    cfg.update(labeled=labeled, validation=validation, unlabeled=unlabeled, **overrides)
    if quick:
        cfg.update(epochs=2, teacher_epochs=20, unlabeled=min(unlabeled, 300), validation=min(validation, 100))
    return cfg


def rank_rows(cells: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean rank of every row over the cells (cell -> {row: mean accuracy}); rank 1 is the best, ties share
    the mean of their ranks."""
    from scipy.stats import rankdata

    rows = sorted({r for cell in cells.values() for r in cell})
    ranks = {r: [] for r in rows}
    for cell in cells.values():
        names = list(cell)
        for name, rank in zip(names, rankdata([-cell[n] for n in names], method="average")):
            ranks[name].append(float(rank))
    return {r: float(np.mean(v)) for r, v in ranks.items()}


def run(
    *,
    seed: int = 0,
    quick: bool = False,
    progress: bool | None = None,
    grid: str = "methods",
    out: str = "reports/distill",
    cache: str = "reports/cache",
    device: str = "auto",
    seeds: int | None = None,
) -> dict[str, Any]:
    """Run the grid (module docstring); returns a JSON-ready dict ``{"benchmark", "grid", "rows", "cells",
    "ranks" (ablation), "winner" (ablation), "seeds", "protocol", "seconds", "environment"}``. ``seed``
    offsets the grid's seeds (0, 1, 2); ``seeds``: how many (default 3, quick 2; the main job's ``--full``
    runs 10)."""
    if grid not in ("methods", "ablation"):
        raise ValueError(f"grid must be 'methods' or 'ablation', got {grid!r}")
    if progress is None:
        progress = sys.stderr.isatty()
    method_rows = METHOD_ROWS if grid == "methods" else ABLATION_ROWS
    count = check_int(seeds, "seeds", low=1) if seeds is not None else (2 if quick else len(SEEDS))
    seeds = [seed + s for s in range(count)]
    datasets = {"digits": DATASETS["digits"]} if quick else DATASETS
    jobs = [
        (name, labeled, row)
        for name, (_, sizes, _, _, _) in datasets.items()
        for labeled in (sizes[1:2] if quick else sizes)
        for row in method_rows
        if not (row[1] == "vid" and datasets[name][4].get("teacher") == "synthetic")
    ]
    started = time.perf_counter()
    rows = []
    for name, labeled, (label, method, options) in tqdm(
        jobs, desc=f"bench {grid}", disable=not progress, file=sys.stderr
    ):
        cfg = base_config(name, labeled, quick)
        cfg.update(
            name=f"{name}-{labeled}-{label}".replace(" ", "").replace("(", "_").replace(")", "").replace("'", "p"),
            method=method,
            method_options=options,
            seeds=seeds,
            out=out,
            cache=cache,
            device=device,
            overwrite=True,
        )  # the grid owns its rows: a rerun with other settings replaces them
        result = run_distillation(cfg, progress=False)
        rows.append(
            {
                "dataset": name,
                "labeled": labeled,
                "method": label,
                "student_mean": result.student_mean,
                "student_std": result.student_std,
                "teacher_mean": result.teacher_mean,
                "teacher_std": result.teacher_std,
                "student_accuracy": list(result.student_accuracy),
                "seconds": result.wall_time_s,
            }
        )
    cells: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["student_mean"] is not None:
            cells.setdefault(f"{r['dataset']}-{r['labeled']}", {})[r["method"]] = r["student_mean"]
    out_dict: dict[str, Any] = {
        "benchmark": "distill" if grid == "methods" else "ablation",
        "grid": grid,
        "rows": rows,
        "cells": cells,
        "seeds": seeds,
        "quick": quick,
        "protocol": {
            "datasets": {
                k: {"config": v[0], "labeled": list(v[1]), "validation": v[2], "unlabeled": v[3], "overrides": v[4]}
                for k, v in datasets.items()
            }
        },
        "seconds": time.perf_counter() - started,
        "environment": environment_info(),
    }
    if grid == "ablation":
        ranks = rank_rows(cells)
        best = min(ranks.values())
        winners = [r for r, v in ranks.items() if v == best]
        out_dict["ranks"] = ranks
        out_dict["winner"] = next((w for w in winners if w.startswith("accuracy")), winners[0])
    return out_dict


def _pm(mean: float | None, std: float | None) -> str:
    return "-" if mean is None else f"{100 * mean:.1f} +- {100 * std:.1f}"


def table(result: dict[str, Any]) -> str:
    """One table per dataset: methods down, labeled-set sizes across, student test accuracy (%) mean +- std;
    the teacher's accuracy in the ``teacher`` row (and, for the ablation, the mean ranks and the winner)."""
    parts = []
    for dataset in dict.fromkeys(r["dataset"] for r in result["rows"]):
        rows = [r for r in result["rows"] if r["dataset"] == dataset]
        sizes = list(dict.fromkeys(r["labeled"] for r in rows))
        methods = list(dict.fromkeys(r["method"] for r in rows))
        lines = []
        for method in methods:
            line = {"method": method}
            for size in sizes:
                r = next(x for x in rows if x["method"] == method and x["labeled"] == size)
                mean, std = (
                    (r["teacher_mean"], r["teacher_std"])
                    if method == "teacher"
                    else (r["student_mean"], r["student_std"])
                )
                line[f"labeled {size}"] = _pm(mean, std)
            lines.append(line)
        parts.append(f"{dataset} (test accuracy %, seeds {result['seeds']})\n" + format_table(lines, list(lines[0])))
    if "ranks" in result:
        ranks = sorted(result["ranks"].items(), key=lambda kv: kv[1])
        parts.append(
            format_table([{"scheme": k, "mean rank": v} for k, v in ranks], ["scheme", "mean rank"])
            + f"\nwinner: {result['winner']}"
        )
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robustdistill.experiments.benchmarks.distill [--ablation] [--quick] [--json F]``."""
    parser = bench_parser("distill", __doc__, "seconds-long smoke run")
    parser.add_argument("--ablation", action="store_true", help="the Weighted Distillation ablation grid")
    args = parser.parse_args(argv)
    result = run(
        quick=args.quick, grid="ablation" if args.ablation else "methods", progress=False if args.quiet else None
    )
    return finish_bench(result, table(result), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
