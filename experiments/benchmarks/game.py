"""Benchmark of the RAD query game (``docs/theory/rad.md#rad-performance``): closed-form solver, DepRound, and the LP reference.

Protocol: one CPU core (the process is pinned with ``os.sched_setaffinity`` where available and restored
afterwards), float64, one warm-up call, then the best of ``repeats`` timed calls (``time.perf_counter``).

Instances (our choice, seeded per size so a size gives the same instance in every run):

- gains ``g ~ Beta(2, 5)`` i.i.d., values in (0, 1) like a margin informativeness of a trained student,
  drawn from ``np.random.default_rng([seed, n])``;
- budget ``b = n // 100`` (1 % of the pool per round);
- mistakes ``m = n // 20`` (a 95 %-accurate teacher), so ``m >= b``: the robust regime, where greedy
  top-``b`` has worst case 0.

Measured per size ``n``: ``solve_query_game`` (which computes its certificate), ``depround`` on its
marginals, the two together ("solve + sample"), and the certificate gap
``|top_b(g * (1 - r*)) - V*| / max(1, |V*|)``. At the LP sizes also ``solve_exact`` (cvxpy LP) on the same
instance, the speed-up ``t_LP / t_solve`` and the value gap ``|V_LP - V*| / max(1, |V*|)``.

Run it as ``robustdistill bench game`` or ``python -m robustdistill.experiments.benchmarks.game``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from robustdistill.algorithms.validation import check_int

from ..pipeline.files import environment_info
from .reporting import bench_parser, evaluate_targets, finish_bench, format_table, format_targets

__all__ = ["TARGETS", "make_instance", "pin_to_one_core", "run", "table"]

T = TypeVar("T")

#: Performance targets: name -> (description, bound, "max" or "min").
TARGETS: dict[str, tuple[str, float, str]] = {
    "solve_sample_s_at_1e6": ("solve_query_game + depround at n = 10^6, seconds", 0.5, "max"),
    "lp_speedup_at_1e4": ("solve_exact / solve_query_game time at n = 10^4", 100.0, "min"),
    "value_gap": ("max |V_LP - V*| / max(1, |V*|) over LP sizes", 1e-9, "max"),
    "certificate_gap": (
        "max |top_b(g(1 - r*)) - V*| / max(1, |V*|) over sizes (docs/theory/rad.md#rad-certificate)",
        1e-12,
        "max",
    ),
}

QUICK_SIZES = (10**3, 10**4)
QUICK_LP_SIZES = (10**3,)


def make_instance(n: int, seed: int = 0) -> tuple[np.ndarray, int, int]:
    """The instance of size ``n``: ``(gains, budget, mistakes)`` = (Beta(2, 5) draws, n // 100, n // 20)."""
    rng = np.random.default_rng([int(seed), int(n)])
    gains = rng.beta(2.0, 5.0, size=n).astype(np.float64)
    return gains, n // 100, n // 20


@contextlib.contextmanager
def pin_to_one_core() -> Iterator[dict[str, Any]]:
    """Pin this process to one CPU of its current affinity for the block; restore the affinity after.

    Yields a dict ``{"pinned": bool, "cpu": int | None, "previous": list[int] | None, "reason": str}``.
    Threads started inside the block inherit the pin; threads started before it (e.g. a BLAS pool) do not,
    but the benchmarked code calls no BLAS routine.
    """
    if not (hasattr(os, "sched_getaffinity") and hasattr(os, "sched_setaffinity")):
        yield {"pinned": False, "cpu": None, "previous": None, "reason": "os.sched_setaffinity unavailable"}
        return
    previous = os.sched_getaffinity(0)
    cpu = max(previous)  # the last one: core 0 tends to take the most interrupts
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        yield {"pinned": False, "cpu": None, "previous": sorted(previous), "reason": str(exc)}
        return
    try:
        yield {"pinned": True, "cpu": cpu, "previous": sorted(previous), "reason": "os.sched_setaffinity"}
    finally:
        os.sched_setaffinity(0, previous)


def _best_of(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    """One warm-up call, then the best wall time of ``repeats`` calls, and the last call's result."""
    result = fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _check_sizes(values: Sequence[int], name: str) -> tuple[int, ...]:
    """Pool sizes >= 100, so that the budget n // 100 is at least 1."""
    return tuple(check_int(v, name, low=100) for v in values)


def run(
    sizes: Sequence[int] = (10**4, 10**5, 10**6),
    lp_sizes: Sequence[int] = (10**3, 10**4),
    repeats: int = 3,
    seed: int = 0,
    quick: bool = False,
    *,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return a JSON-ready dict.

    Args:
        sizes: pool sizes for the closed-form solver and DepRound (each >= 100).
        lp_sizes: pool sizes at which the cvxpy LP ``solve_exact`` is also timed (keep them <= 10^4).
        repeats: timed calls after the warm-up; the best is reported.
        seed: seeds the instances (per size) and DepRound.
        quick: use sizes (10^3, 10^4), lp_sizes (10^3,), repeats 1 (for tests); overrides the others.
        progress: show a tqdm bar on stderr; ``None`` = only when stderr is a terminal.

    Returns:
        ``{"rows", "targets", "targets_met", "protocol", "instances", "pinned", "seed", "quick",
        "environment", "seconds"}``. ``targets_met[name]`` is None when the size it needs was not run.
    """
    from robustdistill.algorithms.rad import depround, solve_query_game
    from robustdistill.theory.query_game import solve_exact, top_k_sum

    if quick:
        sizes, lp_sizes, repeats = QUICK_SIZES, QUICK_LP_SIZES, 1
    sizes = _check_sizes(sizes, "sizes")
    lp_sizes = _check_sizes(lp_sizes, "lp_sizes")
    repeats = check_int(repeats, "repeats", low=1)
    seed = check_int(seed, "seed", low=0)
    if progress is None:
        progress = sys.stderr.isatty()

    all_sizes = sorted(set(sizes) | set(lp_sizes))
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with pin_to_one_core() as pinned:
        bar = tqdm(all_sizes, desc="bench game", unit="size", disable=not progress, file=sys.stderr)
        for n in bar:
            bar.set_postfix(n=n)
            g, b, m = make_instance(n, seed)
            rng = np.random.default_rng(seed)
            t_solve, sol = _best_of(lambda: solve_query_game(g, b, m), repeats)
            t_dep, batch = _best_of(lambda: depround(sol.probabilities, rng=rng), repeats)
            t_both, _ = _best_of(lambda: depround(solve_query_game(g, b, m).probabilities, rng=rng), repeats)
            scale = max(1.0, abs(sol.value))
            cert = abs(top_k_sum(g * (1.0 - sol.adversary), b) - sol.value) / scale
            row: dict[str, Any] = {
                "n": n,
                "b": b,
                "m": m,
                "value": float(sol.value),
                "support": int(sol.support_size),
                "batch": int(len(batch)),
                "solve_s": t_solve,
                "depround_s": t_dep,
                "solve_sample_s": t_both,
                "certificate_gap": cert,
                "lp_s": None,
                "speedup": None,
                "value_gap": None,
            }
            if n in lp_sizes:
                t_lp, lp = _best_of(lambda: solve_exact(g, b, m), repeats)
                row["lp_s"] = t_lp
                row["speedup"] = t_lp / t_solve
                row["value_gap"] = abs(float(lp.value) - sol.value) / scale
            rows.append(row)
        bar.close()
    seconds = time.perf_counter() - started

    by_n = {row["n"]: row for row in rows}
    measured: dict[str, float | None] = {
        "solve_sample_s_at_1e6": by_n[10**6]["solve_sample_s"] if 10**6 in by_n else None,
        "lp_speedup_at_1e4": by_n[10**4]["speedup"] if 10**4 in by_n else None,
        "value_gap": max((r["value_gap"] for r in rows if r["value_gap"] is not None), default=None),
        "certificate_gap": max((r["certificate_gap"] for r in rows), default=None),
    }
    targets, met = evaluate_targets(TARGETS, measured)
    return {
        "benchmark": "query_game",
        "rows": rows,
        "targets": targets,
        "targets_met": met,
        "protocol": {
            "dtype": "float64",
            "warmup_calls": 1,
            "repeats": int(repeats),
            "statistic": "best (minimum) wall time, time.perf_counter",
        },
        "instances": {
            "gains": "Beta(2, 5) i.i.d. from np.random.default_rng([seed, n])",
            "budget": "n // 100",
            "mistakes": "n // 20",
            "depround_rng": "np.random.default_rng(seed), per size",
        },
        "pinned": pinned,
        "seed": int(seed),
        "quick": bool(quick),
        "environment": environment_info(),
        "seconds": seconds,
    }


ROW_COLUMNS = [
    "n",
    "b",
    "m",
    "solve_s",
    "depround_s",
    "solve_sample_s",
    "certificate_gap",
    "lp_s",
    "speedup",
    "value_gap",
]


def table(result: dict[str, Any]) -> str:
    """The printed report: the per-size timings, then each target beside its measurement."""
    target_rows = format_targets(result)
    pinned = result["pinned"]
    pin_line = f"pinned to CPU {pinned['cpu']}" if pinned["pinned"] else f"not pinned ({pinned['reason']})"
    return "\n".join(
        [
            f"query game benchmark: float64, best of {result['protocol']['repeats']} after 1 warm-up, "
            f"{pin_line}; b = n//100, m = n//20, seed {result['seed']}",
            format_table(result["rows"], ROW_COLUMNS),
            "",
            format_table(target_rows, ["target", "bound", "measured", "met"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robustdistill.experiments.benchmarks.game [--quick] [--json F]``."""
    parser = bench_parser("game", __doc__, "small sizes, one repeat (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = run(seed=args.seed, quick=args.quick, progress=False if args.quiet else None)
    return finish_bench(result, table(result), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
