"""Checking a guarantee: RAD's query game, the fast solver against an exact linear program.

What it shows
    RAD picks which pool points to pay the teacher for by solving a zero-sum game: the learner spreads the
    budget b over the pool as inclusion probabilities p (sum p = b), an adversary places m teacher mistakes,
    and the value V* = max_p min_mistakes sum_i g_i p_i (1 - r_i) is the expected gain guaranteed whatever
    the mistakes are. ``robustdistill.algorithms.rad.solve_query_game`` solves it in O(n log n);
    ``robustdistill.theory.query_game.solve_exact`` solves the same game as linear programs with cvxpy
    (HiGHS). On random games the script checks, per instance:

    - value gap |V_fast - V_LP| (the fast solver is exact);
    - certificate gap |worst_case_value(p_fast) - V_fast| (the adversary's best response to p reaches V);
    - the robust choice beats greedy top-b and uniform sampling in the worst case
      (``worst_case_value`` of each rule <= V_fast).

    Then it runs named simulator checks of ``robustdistill.theory.simulators`` (the claims behind
    ``robustdistill verify``) and prints each claim, the bound it is held to, the measured number and whether
    it holds. ``run_checks(quick=True, only=[group])`` runs a whole group (``--group rad``); a single check
    is run here on the child stream ``run_checks`` gives it, so its result is the one ``run_checks`` reports.

How to run
    python examples/verify_guarantee.py                         # 200 random games; checks P3-exact and P5
    python examples/verify_guarantee.py --checks P1 P4 S1-binary
    python examples/verify_guarantee.py --group rad             # every RAD check through run_checks
    python examples/verify_guarantee.py --quick                 # 20 games, a few seconds

What it prints
    A few of the games (n, b, m, the two values, the worst-case values of greedy and uniform), a summary
    line per property with its largest gap and whether it is below the tolerance 1e-9, then one row per
    simulator check: name, bound, measured, holds, and the claim.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence

import numpy as np

from robustdistill.algorithms.rad import solve_query_game
from robustdistill.theory.query_game import solve_exact, worst_case_value

TOL = 1e-9


def random_game(gen: np.random.Generator, max_n: int) -> tuple[np.ndarray, int, int]:
    """Gains in [0, 1] (sometimes rounded, so with ties, and with zeros), a budget b in [1, n], mistakes m in [0, n]."""
    n = int(gen.integers(2, max_n + 1))
    gains = gen.random(n)
    if gen.random() < 0.3:
        gains = np.round(gains, 1)  # ties and exact zeros
    return gains, int(gen.integers(1, n + 1)), int(gen.integers(0, n + 1))


def compare_solvers(instances: int, max_n: int, seed: int, show: int) -> dict[str, float]:
    gen = np.random.default_rng(seed)
    gaps = {"value": 0.0, "certificate": 0.0, "budget": 0.0, "beats_greedy": -np.inf, "beats_uniform": -np.inf}
    print(f"{'n':>3} {'b':>3} {'m':>3} {'V fast':>9} {'V LP':>9} {'|gap|':>9} {'greedy':>8} {'uniform':>8}")
    for i in range(instances):
        gains, b, m = random_game(gen, max_n)
        fast, exact = solve_query_game(gains, b, m), solve_exact(gains, b, m)
        greedy = np.zeros(gains.size)
        greedy[np.argsort(-gains, kind="stable")[:b]] = 1.0
        uniform = np.full(gains.size, b / gains.size)
        v_greedy, v_uniform = worst_case_value(greedy, gains, m), worst_case_value(uniform, gains, m)
        scale = max(1.0, abs(exact.value))
        gap = abs(fast.value - exact.value) / scale
        gaps["value"] = max(gaps["value"], gap)
        certificate = abs(worst_case_value(fast.probabilities, gains, m) - fast.value) / scale
        gaps["certificate"] = max(gaps["certificate"], certificate)
        gaps["budget"] = max(gaps["budget"], abs(fast.probabilities.sum() - b))
        # <= 0 when the robust choice is at least as good in the worst case
        gaps["beats_greedy"] = max(gaps["beats_greedy"], (v_greedy - fast.value) / scale)
        gaps["beats_uniform"] = max(gaps["beats_uniform"], (v_uniform - fast.value) / scale)
        if i < show:
            print(
                f"{gains.size:>3} {b:>3} {m:>3} {fast.value:>9.5f} {exact.value:>9.5f} {gap:>9.1e} "
                f"{v_greedy:>8.4f} {v_uniform:>8.4f}"
            )
    print(f"{instances} random games (relative gaps, tolerance {TOL:g}):")
    for label, key in (
        ("|V_fast - V_LP|", "value"),
        ("|worst_case(p_fast) - V_fast|", "certificate"),
        ("|sum p - b|", "budget"),
        ("worst_case(greedy) - V_fast", "beats_greedy"),
        ("worst_case(uniform) - V_fast", "beats_uniform"),
    ):
        print(f"  max {label:<30} {gaps[key]:>10.2e}  holds: {gaps[key] <= TOL}")
    return gaps


def run_named(names: Sequence[str], quick: bool, seed: int) -> list:
    """The named checks, each on the child stream ``run_checks(rng=seed)`` gives it (same result)."""
    from robustdistill.theory.simulators import CHECKS

    by_name = {c.name: i for i, c in enumerate(CHECKS)}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown checks {unknown}; known: {sorted(by_name)}")
    streams = np.random.default_rng(seed).spawn(len(CHECKS))
    return [
        CHECKS[by_name[n]].run(streams[by_name[n]], CHECKS[by_name[n]].quick if quick else CHECKS[by_name[n]].full)
        for n in names
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200, help="random games compared with the LP")
    parser.add_argument("--max-n", type=int, default=60, help="largest pool of a random game")
    parser.add_argument("--show", type=int, default=5, help="games printed one per line")
    parser.add_argument("--checks", nargs="*", default=["P3-exact", "P5"], help="simulator checks by name")
    parser.add_argument(
        "--group",
        choices=("rad", "weighted", "slam"),
        default=None,
        help="run a whole group through run_checks(quick=True, only=[group]) instead",
    )
    parser.add_argument("--full", action="store_true", help="the checks at their full sizes (minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a few seconds on one core")
    args = parser.parse_args(argv)
    if args.quick:
        args.instances, args.max_n, args.show, args.full = 20, 30, 3, False

    gaps = compare_solvers(args.instances, args.max_n, args.seed, args.show)

    if args.group is not None:
        from robustdistill.theory.simulators import run_checks

        checks = run_checks(quick=not args.full, rng=args.seed, only=[args.group])
    else:
        checks = run_named(args.checks, quick=not args.full, seed=args.seed)
    print(f"{'check':<16} {'bound':>12} {'measured':>12} {'holds':>6}")
    for c in checks:
        print(f"{c.name:<16} {c.bound:>12.4g} {c.measured:>12.4g} {c.holds!s:>6}")
        print(textwrap.fill(c.claim, width=100, initial_indent="    ", subsequent_indent="    "))
    return {"gaps": gaps, "checks": [c.to_dict() for c in checks]}


if __name__ == "__main__":
    main()
