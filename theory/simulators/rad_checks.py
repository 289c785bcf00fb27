r"""Simulators of the RAD query game (``docs/theory/rad.md#rad-guarantees``; the guarantees P1-P6 are **our formulation** of the paper's
"bounds on the expected performance that hold even in worst-case distillation instances" (paper)):

- **P1** value and minimax equality: fast solver = LP primal = LP adversary = certificate.
- **P2** the k* scan and the uncapped closed form (§3.1): the scan finds ``argmax_k V(k)``, and the closed
  form equals the exact optimum whenever its validity check passes.
- **P3** the sampled batch: for any oblivious mistake pattern with <= m mistakes,
  :math:`E_{S \sim \mathrm{DepRound}(p^*)}[\sum_{i \in S} g_i c_i] \ge V^*` (exactly, and by Monte Carlo).
- **P4** explicit lower bounds :math:`V^* \ge b(k-m)/S_k \ge b\,g_{(k)}(1 - m/k)` when
  :math:`b/S_k \le g_{(k)}`.
- **P5** RAD's worst case is at least greedy top-b's and uniform sampling's.
- **P6** the adversary's equilibrium mistakes are non-decreasing in the gain.

Every check is deterministic given ``rng`` (default seed 0).
"""

from __future__ import annotations

import numpy as np

from robustdistill.algorithms.query_game import solve_query_game, top_k_sum, worst_case_value
from robustdistill.algorithms.rad import depround
from robustdistill.algorithms.typing import FloatArray

from ..query_game import closed_form, solve_exact
from .checks import EXACT as _EXACT
from .checks import REL as _REL
from .checks import Check, CheckResult
from .checks import rel as _rel
from .checks import summary as _summary

__all__ = ["CHECKS", "SPEC_GAINS", "baseline_worst_cases", "random_game"]

#: The gains of the worked test vectors of ``docs/theory/rad.md#rad-worked-examples``.
SPEC_GAINS = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])


def random_game(rng: np.random.Generator, max_n: int = 40) -> tuple[FloatArray, int, int]:
    """A random game instance covering every regime: n <= max_n, gains with ties and zeros, any b in
    [0, n] and any m in [0, n + 1]. Returns ``(gains, budget, mistakes)``."""
    n = int(rng.integers(1, max_n + 1))
    kind = int(rng.integers(4))
    if kind == 0:  # continuous
        g = rng.random(n)
    elif kind == 1:  # few distinct values: many ties, some zeros
        g = rng.integers(0, 4, n) / 3.0
    elif kind == 2:  # one decimal: ties
        g = np.round(rng.random(n), 1)
    else:  # heavy tail towards 0, about 30% exact zeros
        g = rng.random(n) ** 3 * (rng.random(n) < 0.7)
    return g, int(rng.integers(0, n + 1)), int(rng.integers(0, n + 2))


def check_p1(rng: np.random.Generator, instances: int) -> CheckResult:
    """P1: fast value = LP primal (max-min) = LP adversary (min-max) = top_b(g(1 - r*)) (certificate)."""
    gaps = []
    for _ in range(instances):
        g, b, m = random_game(rng)
        fast = solve_query_game(g, b, m)
        lp = solve_exact(g, b, m)
        values = [
            lp.value,
            top_k_sum(g * (1.0 - lp.adversary), b),  # the adversary LP's min-max value
            top_k_sum(g * (1.0 - fast.adversary), b),  # D(theta*): the certificate
            worst_case_value(fast.probabilities, g, m),
        ]
        gaps.append(max(_rel(fast.value, v) for v in values))
    return _summary(
        "P1",
        "max-min = min-max = V*: fast solver, LP primal, LP adversary and certificate agree "
        f"(relative, {instances} random instances; our formulation)",
        _REL,
        gaps,
        upper=True,
    )


def check_p2(rng: np.random.Generator, instances: int) -> CheckResult:
    """P2: the k* scan = brute-force argmax_k V(k); the closed form equals V* whenever it is valid."""
    gaps = []
    valid = 0
    for _ in range(instances):
        g, b, m = random_game(rng)
        pos = np.sort(g[g > 0])[::-1]
        if not 1 <= b < pos.size or m >= pos.size:
            continue
        info, _, _ = closed_form(g, b, m)
        S = np.cumsum(1.0 / pos)
        k = np.arange(m + 1, pos.size + 1)
        v = (k - m) / S[k - 1]
        gaps.append(_rel(info.v_star, float(v.max())))  # the scan's v* is the largest V(k)/b
        if info.valid:
            valid += 1
            gaps.append(_rel(info.value, solve_query_game(g, b, m).value))
    return _summary(
        "P2",
        "the k* scan finds argmax_k V(k); the uncapped closed form equals V* whenever its check "
        f"c <= g_(k*) passes ({valid} valid of {instances}; our formulation)",
        _REL,
        gaps,
        upper=True,
    )


def _mistake_patterns(rng: np.random.Generator, g: FloatArray, q: FloatArray, m: int):
    """Oblivious patterns with m mistakes: best response, top-m gains, uniform, gain-correlated."""
    n = g.size
    m = min(m, n)
    w = g**3
    nz = np.flatnonzero(w > 0)
    if nz.size >= m:
        correlated = rng.choice(n, size=m, replace=False, p=w / w.sum())
    else:  # fewer positive gains than mistakes: all of them, the rest uniform among the others
        rest = np.setdiff1d(np.arange(n), nz)
        correlated = np.r_[nz, rng.choice(rest, size=m - nz.size, replace=False)]
    return {
        "best response": np.argsort(-q, kind="stable")[:m],
        "top-m gains": np.argsort(-g, kind="stable")[:m],
        "uniform": rng.choice(n, size=m, replace=False),
        "gain-correlated": correlated,
    }


def check_p3_exact(rng: np.random.Generator, instances: int) -> CheckResult:
    """P3 (exact): for oblivious patterns c, E[sum_{i in S} g_i c_i] = sum_i p_i g_i c_i >= V*."""
    slacks = []
    games = [(SPEC_GAINS, 2, 3)] + [random_game(rng) for _ in range(instances)]
    for g, b, m in games:
        sol = solve_query_game(g, b, m)
        q = sol.probabilities * g
        for wrong in _mistake_patterns(rng, g, q, m).values():
            c = np.ones(g.size)
            c[wrong] = 0.0
            slacks.append((float(q @ c) - sol.value) / max(1.0, sol.value))
    return _summary(
        "P3-exact",
        "E over DepRound(p*) of the correctly labeled gain >= V* for every oblivious pattern of <= m "
        "mistakes (best response, top-m gains, uniform, gain-correlated); our formulation",
        -_EXACT,
        slacks,
        upper=False,
    )


def check_p3_monte_carlo(rng: np.random.Generator, draws: int) -> CheckResult:
    """P3 (Monte Carlo) on the worked example (b=2, m=3): the mean of DepRound batches against each
    pattern is >= V* - 3 SE. Reports the best response (the pattern with expectation exactly V*)."""
    g, b, m = SPEC_GAINS, 2, 3
    sol = solve_query_game(g, b, m)
    q = sol.probabilities * g
    members = np.zeros((draws, g.size), dtype=bool)
    for d in range(draws):
        members[d, depround(sol.probabilities, rng=rng)] = True
    ok = True
    report = None
    for name, wrong in _mistake_patterns(rng, g, q, m).items():
        c = np.ones(g.size)
        c[wrong] = 0.0
        gain = members @ (g * c)
        mean, se = float(gain.mean()), float(gain.std(ddof=1) / np.sqrt(draws))
        ok &= mean >= sol.value - 3 * se
        if name == "best response":
            report = (mean, se)
    mean, se = report
    return CheckResult(
        "P3-MC",
        f"Monte-Carlo mean of the batch gain over {draws} DepRound draws >= V* - 3 SE for the 4 "
        "patterns (worked example b=2, m=3; best response shown; our formulation)",
        sol.value,
        mean,
        (mean - 3 * se, mean + 3 * se),
        bool(ok),
        comparator="every pattern's mean + 3 SE >=",
    )


def check_p4(rng: np.random.Generator, instances: int) -> CheckResult:
    """P4: V* >= b(k - m)/S_k >= b g_(k)(1 - m/k) for every k > m with b/S_k <= g_(k); and all-equal
    gains give V* = b(n - m)/n with uniform p."""
    slacks = []
    for _ in range(instances):
        g, b, m = random_game(rng)
        value = solve_query_game(g, b, m).value
        pos = np.sort(g[g > 0])[::-1]
        S = np.cumsum(1.0 / pos)
        k = np.arange(1, pos.size + 1)
        ok = (k > m) & (b / S <= pos)
        first = b * (k[ok] - m) / S[ok]
        second = b * pos[ok] * (1 - m / k[ok])
        scale = max(1.0, value)
        slacks.extend(((value - first) / scale).tolist())
        slacks.extend(((first - second) / scale).tolist())
    for n in (1, 7, 40):  # all gains equal to 1
        for b in range(n + 1):
            for m in (0, n // 3, n):
                sol = solve_query_game(np.ones(n), b, m)
                exact = b * (n - min(m, n)) / n
                slacks.append(-abs(sol.value - exact) - float(np.ptp(sol.probabilities)))
    return _summary(
        "P4",
        "V* >= b(k-m)/S_k >= b g_(k)(1-m/k) whenever b/S_k <= g_(k); equal gains give V* = b(n-m)/n with "
        f"uniform p ({instances} random instances; our formulation)",
        -_EXACT,
        slacks,
        upper=False,
    )


def baseline_worst_cases(gains: FloatArray, budget: int, mistakes: int) -> tuple[float, float]:
    """Worst-case values of greedy top-b, :math:`\\sum_{j=m+1}^{b} g_{(j)}`, and of uniform sampling,
    :math:`(b/n)(\\sum g - \\mathrm{top}_m(g))` (our formulation, ``docs/theory/rad.md#rad-p5``)."""
    g_sorted = np.sort(gains)[::-1]
    greedy = float(g_sorted[mistakes:budget].sum())
    uniform = budget / gains.size * (float(gains.sum()) - top_k_sum(gains, mistakes))
    return greedy, uniform


def check_p5(rng: np.random.Generator, instances: int) -> CheckResult:
    """P5: V* >= the worst case of greedy top-b and of uniform sampling; the closed forms of those worst
    cases match worst_case_value; the worked example's numbers 0 / 0.43 / 0.602631 on (b=2, m=3)."""
    slacks = []
    for _ in range(instances):
        g, b, m = random_game(rng)
        value = solve_query_game(g, b, m).value
        greedy, uniform = baseline_worst_cases(g, b, m)
        top = np.zeros(g.size)
        top[np.argsort(-g, kind="stable")[:b]] = 1.0
        closed_forms_ok = (
            _rel(greedy, worst_case_value(top, g, m)) <= _REL
            and _rel(uniform, worst_case_value(np.full(g.size, b / g.size), g, m)) <= _REL
        )
        slacks.append((value - max(greedy, uniform)) / max(1.0, value) if closed_forms_ok else -np.inf)
    greedy, uniform = baseline_worst_cases(SPEC_GAINS, 2, 3)
    spec_ok = (
        abs(greedy - 0.0) < 1e-6
        and abs(uniform - 0.43) < 1e-6
        and abs(solve_query_game(SPEC_GAINS, 2, 3).value - 0.602631) < 1e-6
    )
    slacks.append(0.0 if spec_ok else -np.inf)
    return _summary(
        "P5",
        "worst case: RAD >= greedy top-b and >= uniform (worked example b=2, m=3: 0.602631 vs 0 and 0.43; "
        f"{instances} random instances; our formulation)",
        -_EXACT,
        slacks,
        upper=False,
    )


def check_p6(rng: np.random.Generator, instances: int) -> CheckResult:
    """P6: r* is non-decreasing in the gain (the most informative points are the likeliest mistakes)."""
    violations = []
    for _ in range(instances):
        g, b, m = random_game(rng)
        r = solve_query_game(g, b, m).adversary
        r_by_gain = r[np.argsort(-g, kind="stable")]
        violations.append(float(np.max(np.diff(r_by_gain), initial=0.0)))
    return _summary(
        "P6",
        f"the adversary's equilibrium r* is non-decreasing in the gain ({instances} random instances; our formulation)",
        _EXACT,
        violations,
        upper=True,
    )


CHECKS = [
    Check("P1", "rad", check_p1, 60, 800),
    Check("P2", "rad", check_p2, 300, 3000),
    Check("P3-exact", "rad", check_p3_exact, 40, 400),
    Check("P3-MC", "rad", check_p3_monte_carlo, 20_000, 100_000),
    Check("P4", "rad", check_p4, 300, 3000),
    Check("P5", "rad", check_p5, 300, 3000),
    Check("P6", "rad", check_p6, 300, 3000),
]
