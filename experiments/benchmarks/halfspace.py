r"""Benchmark of the forward-adjusted halfspace learner (``theory.halfspace.learn_halfspace_rcn``): its
run time against n and d.

Protocol: for every (n, d) of the grid, sphere data with margin ``gamma = 0.5 / sqrt(d)`` (so the rejection
sampler accepts most draws at every d) and noise rate 0.3 (``margin_halfspace_data``, seeded per cell);
``learn_halfspace_rcn(X, y, 0.3, margin=gamma)`` (one pass, no hold-out, one restart) is timed
(``time.perf_counter``, best of ``repeats`` after one warm-up), and so is the peer in the same run:
``learn_logistic`` (L-BFGS on the same noisy labels, scipy). The thread count is left as it is.

The learner is one pass of SGD: n sequential steps of O(d) work each, so its time is modelled as
:math:`t(n, d) = n\,(a + b\,d)`, a per-step cost ``a`` (the Python step: a handful of numpy calls) plus a
per-coordinate cost ``b``. Least squares of t on (n, n d) gives a and b; the target is that this model,
linear in n and in n d, predicts every cell within 30% (``max_rel_residual``) — a super-linear term
(n^2, n d^2, or a cache cliff) would break it. Also reported per cell: microseconds per step and the time
relative to logistic L-BFGS (a ratio against a peer timed in the same run; the machines are noisy).

Run it as ``python -m robustdistill.experiments.benchmarks.halfspace`` or ``robustdistill bench halfspace``
(``--quick`` for a seconds-long smoke run).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from robustdistill.theory import halfspace as H

from ..pipeline.files import environment_info
from .reporting import bench_parser, evaluate_targets, finish_bench, format_table, format_targets

__all__ = ["DEFAULT_GRID", "QUICK_GRID", "TARGETS", "fit_linear_model", "run", "table"]

#: name -> (description, bound, "max" or "min").
TARGETS: dict[str, tuple[str, float, str]] = {
    "max_rel_residual": ("largest |t - n (a + b d)| / t over the grid (linear in n d)", 0.3, "max"),
}

DEFAULT_GRID: dict[str, tuple[int, ...]] = {"n": (2_000, 8_000, 32_000), "d": (10, 100, 1_000)}
QUICK_GRID: dict[str, tuple[int, ...]] = {"n": (300, 1_200), "d": (5, 50)}
NOISE_RATE = 0.3


def _best_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def fit_linear_model(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    r"""Least squares of the time on :math:`(n, n d)`, no intercept: :math:`t \approx n (a + b d)`.
    Returns ``a_us_per_step``, ``b_ns_per_coordinate`` and ``max_rel_residual``."""
    n = np.array([r["n"] for r in rows], dtype=np.float64)
    d = np.array([r["d"] for r in rows], dtype=np.float64)
    t = np.array([r["learner_s"] for r in rows], dtype=np.float64)
    design = np.stack([n, n * d], axis=1) / t[:, None]  # relative residuals: every cell weighs alike
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    predicted = n * (a + b * d)
    return {
        "a_us_per_step": float(a * 1e6),
        "b_ns_per_coordinate": float(b * 1e9),
        "max_rel_residual": float(np.max(np.abs(predicted - t) / t)),
    }


def run(
    *,
    seed: int = 0,
    quick: bool = False,
    repeats: int | None = None,
    progress: bool | None = None,
    grid: dict[str, Sequence[int]] | None = None,
) -> dict[str, Any]:
    """Time the learner and logistic L-BFGS on every cell of ``grid`` (default :data:`DEFAULT_GRID`, or
    :data:`QUICK_GRID` with ``quick``); ``progress``: a tqdm bar on stderr (``None``: only on a terminal).
    Returns a JSON-ready dict ``{"benchmark", "protocol", "rows", "fit", "targets", "targets_met",
    "seconds", "environment"}``."""
    grid = dict(grid or (QUICK_GRID if quick else DEFAULT_GRID))
    if progress is None:
        progress = sys.stderr.isatty()
    repeats = repeats if repeats is not None else (1 if quick else 3)
    cells = [(int(n), int(d)) for n in grid["n"] for d in grid["d"]]
    rows = []
    started = time.perf_counter()
    for n, d in tqdm(cells, desc="bench halfspace", unit="cell", disable=not progress, file=sys.stderr):
        gamma = 0.5 / np.sqrt(d)
        data = H.margin_halfspace_data(n, d, gamma, NOISE_RATE, np.random.default_rng([seed, n, d]))
        learner = _best_time(lambda: H.learn_halfspace_rcn(data.X, data.y_noisy, NOISE_RATE, margin=gamma), repeats)
        logistic = _best_time(lambda: H.learn_logistic(data.X, data.y_noisy), repeats)
        rows.append(
            {
                "n": n,
                "d": d,
                "margin": float(gamma),
                "learner_s": learner,
                "us_per_step": learner / n * 1e6,
                "logistic_lbfgs_s": logistic,
                "ratio_to_logistic": learner / logistic,
            }
        )
    fit = fit_linear_model(rows)
    targets, met = evaluate_targets(TARGETS, {"max_rel_residual": fit["max_rel_residual"]})
    return {
        "benchmark": "halfspace",
        "protocol": {
            "noise_rate": NOISE_RATE,
            "margin": "0.5 / sqrt(d)",
            "repeats": repeats,
            "seed": seed,
            "quick": quick,
            "grid": {k: list(v) for k, v in grid.items()},
        },
        "rows": rows,
        "fit": fit,
        "targets": targets,
        "targets_met": met,
        "seconds": time.perf_counter() - started,
        "environment": environment_info(),
    }


def table(result: dict[str, Any]) -> str:
    """The rows, the fitted model and the targets as plain-text tables."""
    rows = result["rows"]
    body = format_table(rows, ["n", "d", "learner_s", "us_per_step", "logistic_lbfgs_s", "ratio_to_logistic"])
    fit = result["fit"]
    model = (
        f"t(n, d) = n (a + b d): a = {fit['a_us_per_step']:.2f} us per step, b = {fit['b_ns_per_coordinate']:.2f} ns "
        f"per coordinate; largest relative residual {fit['max_rel_residual']:.3f}"
    )
    targets = format_table(format_targets(result), ["target", "bound", "measured", "met"])
    return "\n\n".join([body, model, targets])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robustdistill.experiments.benchmarks.halfspace [--quick] [--repeats R] [--json F]``."""
    parser = bench_parser("halfspace", __doc__, "small grid, 1 repeat (seconds)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per cell, best kept (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = run(seed=args.seed, quick=args.quick, repeats=args.repeats, progress=False if args.quiet else None)
    return finish_bench(result, table(result), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
