r"""The active distillation benchmark: student accuracy against teacher queries for every selector of
:data:`~robustdistill.algorithms.selection.SELECTORS`, with the vanilla and the SLaM loss on the queried
points (``robustdistill bench active``).

Protocol: per dataset (base configs ``experiments/configs/active_digits.toml`` and ``active_mnist1d.toml``:
a teacher trained on the small labeled set A, so it is often wrong; a smaller student that starts from A)
and per (loss, selector), :func:`~robustdistill.experiments.pipeline.active.run_active_distillation` with the same
seeds. A seed fixes the splits, the teacher (trained once, weights and answers cached), the student's initial weights and
the selector's coins, so rows are paired by seed: the table's differences (RAD minus margin, RAD minus
random) are mean +- std of the per-seed differences. Reported per row: mean +- std (ddof 1) test accuracy
after each round, the area under the curve (mean accuracy over the rounds with queries), and the share of
queried points whose teacher label is wrong (an evaluation-only diagnostic against the true pool labels) and,
for RAD and random, the share of the remaining pool their sampling law covers (RAD's support size). Per
dataset and loss, on the pools the RAD runs faced (means over seeds and rounds): m / b, the teacher's error
rate among the top-b gains against the pool's, and the exact expected useful gain per query,
:math:`\sum_i p_i g_i (1 - w_i) / b` with the true mistakes w, of RAD's p*, greedy top-b and uniform
(``theory.selection_value.expected_useful_gain``: the simulators' quantity on the real pools). These pool-wide
numbers ask the teacher about the whole pool: the RAD rows run with ``pool_diagnostics`` on, and they are
labelled evaluation-only; every other number uses only the labels the loop bought.

``quick=True`` runs a seconds-long smoke version (digits, 2 seeds, 2 rounds, 2 epochs) for the tests. Run it as
``python -m robustdistill.experiments.benchmarks.active [--quick]`` or ``robustdistill bench active``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
from tqdm import tqdm

from robustdistill.algorithms.selection import SELECTORS
from robustdistill.algorithms.validation import check_int

from ..pipeline.active import run_active_distillation
from ..pipeline.config import tomllib
from ..pipeline.files import environment_info
from .reporting import bench_parser, finish_bench, format_table

__all__ = ["DATASETS", "LOSSES", "SEEDS", "run", "table"]

#: dataset -> base config in experiments/configs/.
DATASETS = {"digits": "active_digits.toml", "mnist1d": "active_mnist1d.toml"}
LOSSES = ("vanilla", "slam")
SEEDS = (0, 1, 2, 3, 4)


def _base_config(dataset: str, quick: bool) -> dict[str, Any]:
    text = resources.files("robustdistill.experiments").joinpath("configs", DATASETS[dataset]).read_text()
    cfg = tomllib.loads(text)
    if quick:
        cfg.update(epochs=2, teacher_epochs=2, rounds=2, budget=10, unlabeled=200, validation=100)
    return cfg


def _support_share(records: Sequence[dict[str, Any]]) -> float | None:
    """Mean over seeds and rounds of the sampling law's support size over the remaining pool (RAD, random)."""
    shares = [r["support"] / r["pool"] for rec in records for r in rec["rounds"] if "support" in r]
    return float(np.mean(shares)) if shares else None


def _noise_summary(dataset: str, loss: str, budget: int, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How the teacher's mistakes follow the gain on the pools RAD faced (means over seeds and rounds of the
    loop's evaluation-only diagnostics): m / b, the error rate among the top-b gains and in the pool, and the
    exact expected useful gain per query of RAD's p*, greedy top-b and uniform on those pools."""
    rounds = [r for rec in records for r in rec["rounds"]]
    diag = [r["evaluation_only"] for r in rounds]
    return {
        "dataset": dataset,
        "loss": loss,
        "m_over_b": float(np.mean([r["mistakes"] for r in rounds]) / budget),
        "error_top_b": float(np.mean([d["error_top_b"] for d in diag])),
        "error_pool": float(np.mean([d["error_pool"] for d in diag])),
        "useful_gain": {k: float(np.mean([d["useful_gain"][k] for d in diag])) for k in diag[0]["useful_gain"]},
        "near_uniform_rounds": int(sum(bool(r.get("near_uniform")) for r in rounds)),
        "rounds": len(rounds),
    }


def _paired(rows: list[dict[str, Any]], a: str, b: str) -> dict[str, float] | None:
    """Mean and std (ddof 1) over seeds of ``a``'s final accuracy minus ``b``'s (same dataset and loss)."""
    ra = next((r for r in rows if r["selector"] == a), None)
    rb = next((r for r in rows if r["selector"] == b), None)
    if ra is None or rb is None:
        return None
    d = np.array([x[-1] - y[-1] for x, y in zip(ra["accuracy"], rb["accuracy"])])
    return {
        "mean": float(d.mean()),
        "std": float(d.std(ddof=1)) if d.size > 1 else 0.0,
        "wins": int((d > 0).sum()),
        "seeds": int(d.size),
    }


def run(
    *,
    seed: int = 0,
    quick: bool = False,
    progress: bool | None = None,
    out: str = "reports/active",
    cache: str = "reports/cache",
    device: str = "auto",
    seeds: int | None = None,
) -> dict[str, Any]:
    """Run the grid (module docstring); returns a JSON-ready dict ``{"benchmark", "rows", "paired", "noise",
    "seeds", "protocol", "seconds", "environment"}``. ``seed`` offsets the seeds (0..4); ``seeds``: how many
    (default 5, quick 2; the main job's ``--full`` runs 10)."""
    if progress is None:
        progress = sys.stderr.isatty()
    count = check_int(seeds, "seeds", low=1) if seeds is not None else (2 if quick else len(SEEDS))
    seeds = [seed + s for s in range(count)]
    datasets = ["digits"] if quick else list(DATASETS)
    jobs = [(d, loss, sel) for d in datasets for loss in LOSSES for sel in SELECTORS]
    started = time.perf_counter()
    rows, noise = [], []
    for dataset, loss, selector in tqdm(jobs, desc="bench active", disable=not progress, file=sys.stderr):
        cfg = _base_config(dataset, quick)
        cfg.update(
            name=f"{dataset}-{loss}-{selector}",
            selector=selector,
            loss=loss,
            seeds=seeds,
            out=out,
            cache=cache,
            device=device,
            pool_diagnostics=selector == "rad",
            overwrite=True,
        )  # the grid owns its rows: a rerun with other settings replaces them
        result = run_active_distillation(cfg, progress=False)
        if selector == "rad":
            noise.append(_noise_summary(dataset, loss, cfg["budget"], result.per_seed))
        wrong = [sum(r["teacher_wrong"] for r in rec["rounds"]) for rec in result.per_seed]
        labels = list(result.teacher_queries)
        queried = result.queries[-1]
        rows.append(
            {
                "dataset": dataset,
                "loss": loss,
                "selector": selector,
                "queries": list(result.queries),
                "mean": list(result.mean),
                "std": list(result.std),
                "accuracy": [list(a) for a in result.accuracy],
                "auc": float(np.mean(result.mean[1:])),
                "teacher_wrong_share": float(np.mean(wrong) / queried),
                "support_share": _support_share(result.per_seed),
                "teacher_accuracy": list(result.teacher_accuracy),
                "teacher_labels": labels,
                "seconds": result.wall_time_s,
            }
        )
    paired = []
    for dataset in datasets:
        for loss in LOSSES:
            cell = [r for r in rows if r["dataset"] == dataset and r["loss"] == loss]
            for other in ("margin", "random"):
                diff = _paired(cell, "rad", other)
                if diff is not None:
                    paired.append({"dataset": dataset, "loss": loss, "comparison": f"rad - {other}", **diff})
    protocol = {
        d: {
            "config": DATASETS[d],
            **{
                k: v
                for k, v in _base_config(d, quick).items()
                if k in ("labeled", "validation", "unlabeled", "rounds", "budget", "epochs", "teacher", "student")
            },
        }
        for d in datasets
    }
    return {
        "benchmark": "active",
        "rows": rows,
        "paired": paired,
        "noise": noise,
        "seeds": seeds,
        "quick": quick,
        "protocol": protocol,
        "seconds": time.perf_counter() - started,
        "environment": environment_info(),
    }


def _pm(mean: float, std: float) -> str:
    return f"{100 * mean:.1f} +- {100 * std:.1f}"


def table(result: dict[str, Any]) -> str:
    """Per (dataset, loss): selectors down, cumulative teacher queries across (test accuracy %, mean +- std),
    then the AUC, the share of wrong teacher labels among the queried points and, for the sampling selectors
    (rad, random), the share of the remaining pool with positive probability; then the paired differences."""
    parts = []
    rows = result["rows"]
    for dataset, loss in dict.fromkeys((r["dataset"], r["loss"]) for r in rows):
        cell = [r for r in rows if r["dataset"] == dataset and r["loss"] == loss]
        lines = []
        for r in sorted(cell, key=lambda r: -r["auc"]):
            line = {"selector": r["selector"]}
            line.update({f"q={q}": _pm(m, s) for q, m, s in zip(r["queries"], r["mean"], r["std"])})
            support = "-" if r["support_share"] is None else f"{100 * r['support_share']:.0f}"
            line.update(
                {
                    "auc": f"{100 * r['auc']:.1f}",
                    "wrong labels %": f"{100 * r['teacher_wrong_share']:.1f}",
                    "support %": support,
                }
            )
            lines.append(line)
        teacher = 100 * float(np.mean(cell[0]["teacher_accuracy"]))
        parts.append(
            f"{dataset}, {loss} loss (test accuracy %, seeds {result['seeds']}; teacher {teacher:.1f}%)\n"
            + format_table(lines, list(lines[0]))
        )
    if result["paired"]:
        lines = [
            {
                "dataset": p["dataset"],
                "loss": p["loss"],
                "final accuracy": p["comparison"],
                "points": _pm(p["mean"], p["std"]),
                "seeds won": f"{p['wins']}/{p['seeds']}",
            }
            for p in result["paired"]
        ]
        parts.append("paired by seed (final round)\n" + format_table(lines, list(lines[0])))
    if result.get("noise"):
        lines = [
            {
                "dataset": d["dataset"],
                "loss": d["loss"],
                "m / b": f"{d['m_over_b']:.1f}",
                "error top-b %": f"{100 * d['error_top_b']:.1f}",
                "error pool %": f"{100 * d['error_pool']:.1f}",
                **{f"useful gain/query {k}": f"{v:.3f}" for k, v in d["useful_gain"].items()},
                "near-uniform rounds": f"{d.get('near_uniform_rounds', '-')}/{d.get('rounds', '-')}",
            }
            for d in result["noise"]
        ]
        parts.append(
            "the pools RAD faced, evaluation only (the teacher asked about the whole pool; means over seeds "
            "and rounds; exact expected useful gain per query)\n" + format_table(lines, list(lines[0]))
        )
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robustdistill.experiments.benchmarks.active [--quick] [--json F]``."""
    parser = bench_parser("active", __doc__, "seconds-long smoke run")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, progress=False if args.quiet else None)
    return finish_bench(result, table(result), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
