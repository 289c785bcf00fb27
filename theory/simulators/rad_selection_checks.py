r"""RAD against margin (greedy top-b) and uniform selection under teacher mistakes correlated with the gain
(``docs/theory/rad.md#rad-selection-checks``; everything here is **our formulation**: the paper (paper) states
that the most informative points tend to be the ones the teacher gets wrong, and the exact game, the noise
models and the claims below are this toolkit's).

Three selectors, each a distribution over batches of exactly ``b`` of the ``n`` pool points, described by
its marginals :math:`p \in P_b = \{p \in [0,1]^n : \sum_i p_i = b\}`:

- **RAD**: :math:`p^*` of :func:`~robustdistill.algorithms.query_game.solve_query_game`, realised by
  DepRound, whose inclusion probabilities are exactly :math:`p^*`.
- **greedy** (the ``margin`` baseline when the gain is the margin gain): the top ``b`` gains, ties at the
  ``b``-th gain broken uniformly at random as :func:`robustdistill.algorithms.selection.top_b` does, so
  :math:`p_i = 1` above the ``b``-th gain, :math:`(b - \#\{g > g_{(b)}\})/\#\{g = g_{(b)}\}` on its tie
  group and 0 below (:func:`top_marginals`).
- **uniform**: a uniform ``b``-subset, :math:`p_i = b/n`.

Noise models (our formulation). The teacher's mistakes form a random pattern
:math:`C \in \{0,1\}^n` (:math:`C_i = 1` when the teacher is right on ``i``), independent of the selector's
coins (an oblivious adversary, ``docs/theory/rad.md#rad-p3``). By linearity and independence the expected useful gain of a
selector depends on the pattern only through its mistake marginals :math:`\pi_i = P[C_i = 0]`:

.. math::

    E\Big[\sum_{i \in S} g_i C_i\Big] = \sum_i p_i\, g_i\, (1 - \pi_i)
    \qquad (:func:`expected_useful_gain`).

The models and their exact marginals (:func:`mistake_marginals`), with :math:`M = \min(m, n)`:

- ``"uniform"``: ``m`` uniform random points without replacement; :math:`\pi_i = M/n`.
- ``"gain-correlated"`` (strength :math:`\beta \ge 0`): independent Bernoulli mistakes with
  :math:`\pi_i = \min(1, c\, g_i^\beta)` and ``c`` chosen so that :math:`\sum_i \pi_i = M` (a Poisson design;
  the "capped proportional" allocation is computed exactly from sorted prefix sums, no bisection). This is
  our exact stand-in for the theory page's "``m`` points drawn without replacement with probability
  :math:`\propto g^3`", whose inclusion probabilities have no closed form. The number of mistakes is
  random, ``m`` in expectation only. :math:`\beta = 0` has the marginals of ``"uniform"``; as
  :math:`\beta \to \infty` the marginals tend to those of ``"top-m"``. When fewer than ``M`` points have
  positive weight, those take :math:`\pi = 1` and the rest of ``M`` is spread uniformly over the others (as
  the P3 pattern does).
- ``"top-m"``: mistakes on the ``m`` highest gains (ties at the ``m``-th gain broken uniformly).
- ``"best-response"``: the adversary's best response to RAD, the ``m`` largest :math:`q^*_i = p^*_i g_i`.
- ``"equilibrium"``: the adversary's equilibrium marginals :math:`r^*` (the solver's certificate, ``docs/theory/rad.md#rad-certificate``).

Every model's marginals lie in :math:`R_m = \{r \in [0,1]^n : \sum_i r_i \le m\}`, which is what RAD's
guarantee needs: :math:`\min_{r \in R_m} \sum_i q^*_i (1 - r_i) = \sum_i q^*_i - \mathrm{top}_m(q^*) = V^*`
(a fractional knapsack whose optimum takes the ``m`` largest :math:`q^*`), so **any** pattern distribution
with at most ``m`` mistakes *in expectation* (not only pointwise) gives RAD at least :math:`V^*`.

Registered checks (group ``rad``; each a provable claim, checked exactly over random instances):

- **R1** under the top-m-gains pattern RAD's expected useful gain is >= greedy's and >= uniform's, and
  greedy and uniform get exactly their worst cases there. Data: worst-case value vs ``m`` of the three
  selectors (:func:`worst_case_curve`) on the worked example's gains and on a large random instance.
- **R2** every noise model with at most ``m`` mistakes in expectation gives RAD at least the value
  certified by the adversary, :math:`\mathrm{top}_b(g \odot (1 - r^*)) = V^*`.
- **R3** against the adversary's equilibrium :math:`r^*` (P6: it puts its mistakes on the informative
  points) RAD gets exactly :math:`V^*` and greedy and uniform at most :math:`V^*`.
- **R4** with mistakes independent of the gain (:math:`\beta = 0`, or ``m`` uniform points) greedy is optimal:
  greedy >= RAD and greedy >= uniform. It reports RAD's price of robustness there and carries the
  comparison table over :math:`\beta`, top-m, the equilibrium and :math:`m/b` (:func:`compare_selectors`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robustdistill.algorithms.query_game import QueryGameSolution, solve_query_game, top_k_sum, worst_case_value
from robustdistill.algorithms.results import Result
from robustdistill.algorithms.typing import ArrayLike, FloatArray, IntArray, RNGLike
from robustdistill.algorithms.validation import (
    check_budget,
    check_gains,
    check_int,
    check_mistakes,
    check_rng,
    check_vector,
)

from ..selection_value import (
    SELECTION_RULES,
    expected_useful_gain,
    marginals_from_solution,
    selector_marginals,
    top_marginals,
)
from .checks import EXACT as _EXACT
from .checks import REL as _REL
from .checks import Check, CheckResult
from .checks import rel as _rel
from .checks import summary as _summary
from .rad_checks import SPEC_GAINS, baseline_worst_cases, random_game

__all__ = [
    "CHECKS",
    "NOISE_MODELS",
    "SELECTORS",
    "SelectorGains",
    "WorstCaseCurve",
    "capped_proportional",
    "compare_selectors",
    "expected_gains",
    "expected_useful_gain",
    "mistake_marginals",
    "selector_marginals",
    "top_marginals",
    "worst_case_curve",
]

#: The noise models of :func:`mistake_marginals` (module docstring).
NOISE_MODELS = ("uniform", "gain-correlated", "top-m", "best-response", "equilibrium")
#: The compared selectors, in the order of every table.
SELECTORS = SELECTION_RULES


# ------------------------------------------------------------------------------------------------------
# Marginals


def capped_proportional(weights: ArrayLike, total: float) -> FloatArray:
    r"""The marginals :math:`\pi_i = \min(1, c\, w_i)` (n,) with :math:`\sum_i \pi_i = T`, for weights
    ``w >= 0`` (n,) and a total :math:`0 \le T \le n` (our formulation: the independent-Bernoulli
    "gain-correlated" mistake model with :math:`w = g^\beta`).

    Exact, from the weights sorted in decreasing order: the first ``k`` take 1 and the rest
    :math:`c\, w_{(j)}` with :math:`c = (T - k)/\sum_{j > k} w_{(j)}`, where ``k`` is the smallest index with
    :math:`(T - k)\, w_{(k+1)} \le \sum_{j > k} w_{(j)}` (that test, once true, stays true, so ``k`` is
    unique and :math:`c\, w_{(k)} \ge 1`). When fewer than ``T`` weights are positive they all take 1 and
    the remainder :math:`T - \#\{w > 0\}` is spread uniformly over the zero weights. O(n log n).
    """
    w = check_vector(weights, "weights")
    if np.any(w < 0):
        raise ValueError(f"weights must be non-negative, found {w[np.argmin(w)]!r}")
    n = w.size
    if not (math.isfinite(total) and 0 <= total <= n):
        raise ValueError(f"total must lie in [0, n] = [0, {n}], got {total!r}")
    positive = w > 0
    K = int(np.count_nonzero(positive))
    if total >= K:  # every positive weight is certainly a mistake; the rest goes to the zero weights
        rest = (total - K) / (n - K) if n > K else 0.0
        return np.where(positive, 1.0, rest)
    order = np.argsort(-w, kind="stable")
    ws = w[order][:K] / w.max()  # scale-free: c absorbs the scale; avoids overflow of w**beta
    tail = np.cumsum(ws[::-1])[::-1]  # tail[k] = sum_{j >= k} ws[j] (0-indexed), > 0 for k < K
    ks = np.arange(math.ceil(total))  # candidate numbers of capped points: 0 .. ceil(T) - 1 < K
    k = int(ks[np.argmax((total - ks) * ws[ks] <= tail[ks])]) if ks.size else 0
    pi_sorted = np.zeros(n)
    if ks.size:
        c = (total - k) / tail[k]
        pi_sorted[:k] = 1.0
        pi_sorted[k:K] = np.minimum(1.0, c * ws[k:])
    pi = np.empty(n)
    pi[order] = pi_sorted
    return pi


def _check_model(model: object, beta: float) -> None:
    if model not in NOISE_MODELS:
        raise ValueError(f"model must be one of {NOISE_MODELS}, got {model!r}")
    if not (isinstance(beta, (int, float, np.integer, np.floating)) and math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")


def mistake_marginals(
    gains: ArrayLike,
    mistakes: int,
    model: str,
    *,
    beta: float = 3.0,
    solution: QueryGameSolution | None = None,
) -> FloatArray:
    r"""The exact mistake marginals :math:`\pi_i = P[\text{teacher wrong on } i]` (n,) of a noise model
    (our formulation; the models are listed in the module docstring). Every result lies in
    :math:`R_m`: entries in [0, 1] summing to at most ``m`` (exactly :math:`\min(m, n)` except for
    ``"best-response"`` and ``"equilibrium"`` when the game leaves mistakes unused).

    Args:
        gains: (n,) non-negative gains.
        mistakes: ``m >= 0`` (may exceed ``n``).
        model: one of :data:`NOISE_MODELS`.
        beta: correlation strength of ``"gain-correlated"``, :math:`\pi \propto g^\beta` capped at 1.
        solution: the game's solution for ``"best-response"`` and ``"equilibrium"`` (solved here when
            None; pass it to avoid solving twice). Its budget is needed, so it must come from the same
            ``(gains, budget, mistakes)``.
    """
    g = check_gains(gains)
    m = check_mistakes(mistakes)
    _check_model(model, beta)
    n = g.size
    if model == "uniform":
        return np.full(n, min(m, n) / n)
    if model == "gain-correlated":
        return capped_proportional(g**beta if beta > 0 else np.ones(n), float(min(m, n)))
    if model == "top-m":
        return top_marginals(g, m)
    if solution is None:
        raise ValueError(f"model {model!r} needs the game's solution (solution=solve_query_game(gains, b, m))")
    if solution.probabilities.shape != g.shape:
        raise ValueError(f"solution has {solution.probabilities.size} points but gains has {n}")
    if model == "best-response":
        return top_marginals(solution.probabilities * g, m)
    return np.array(solution.adversary, dtype=np.float64)  # "equilibrium"


@dataclass(frozen=True, eq=False)
class SelectorGains(Result):
    r"""Expected useful gains of RAD, greedy and uniform under one noise model (our formulation).

    Attributes:
        mistake_marginals: (n,) :math:`\pi` of the noise model.
        value: :math:`V^*` of the query game (RAD's worst case).
        rad, greedy, uniform: :math:`\sum_i p_i g_i (1 - \pi_i)` for each selector's marginals.
        rad_worst, greedy_worst, uniform_worst: each selector's worst case over patterns with at most
            ``m`` mistakes, :math:`F(p) = \sum_i q_i - \mathrm{top}_m(q)` (``worst_case_value``).
    """

    mistake_marginals: FloatArray
    value: float
    rad: float
    greedy: float
    uniform: float
    rad_worst: float
    greedy_worst: float
    uniform_worst: float


def expected_gains(
    gains: ArrayLike, budget: int, mistakes: int, model: str = "gain-correlated", *, beta: float = 3.0
) -> SelectorGains:
    r"""Exact expected useful gain :math:`E[\sum_{i \in S} g_i C_i]` of RAD, greedy top-``b`` and uniform
    selection (:func:`selector_marginals`) when the teacher's mistakes follow ``model``
    (:func:`mistake_marginals`), and each selector's worst case (our formulation, ``docs/theory/rad.md#rad-p3``, ``#rad-p5``).

    Args:
        gains: (n,) non-negative gains, higher = more informative.
        budget: ``b`` in [0, n].
        mistakes: ``m >= 0``: RAD plays the game with ``m`` mistakes and the noise model makes ``m``
            mistakes (in expectation for ``"gain-correlated"``).
        model: one of :data:`NOISE_MODELS`.
        beta: correlation strength of ``"gain-correlated"``.

    Example:
        >>> r = expected_gains([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05], 2, 3, "top-m")
        >>> round(r.rad, 6), round(r.greedy, 6), round(r.uniform, 6)
        (0.602631, 0.0, 0.43)
    """
    g = check_gains(gains)
    b = check_budget(budget, g.size)
    m = check_mistakes(mistakes)
    _check_model(model, beta)
    sol = solve_query_game(g, b, m)
    pi = mistake_marginals(g, m, model, beta=beta, solution=sol)
    p = marginals_from_solution(g, b, sol)
    return SelectorGains(
        mistake_marginals=pi,
        value=sol.value,
        **{name: expected_useful_gain(x, g, pi) for name, x in p.items()},
        **{f"{name}_worst": worst_case_value(x, g, m) for name, x in p.items()},
    )


# ------------------------------------------------------------------------------------------------------
# Worst-case curve and the comparison table (data for a figure)


@dataclass(frozen=True, eq=False)
class WorstCaseCurve(Result):
    """Worst-case value (over patterns with at most ``m`` mistakes) of RAD, greedy and uniform against ``m``
    (our formulation). ``mistakes`` (k,) int; ``rad``, ``greedy``, ``uniform`` (k,) float."""

    budget: int
    mistakes: IntArray
    rad: FloatArray
    greedy: FloatArray
    uniform: FloatArray


def worst_case_curve(gains: ArrayLike, budget: int, mistakes_grid: ArrayLike) -> WorstCaseCurve:
    r"""Worst-case values vs ``m`` (our formulation, ``docs/theory/rad.md#rad-p5``): RAD's :math:`V^*(m)`, and
    :math:`F(p) = \sum_i q_i - \mathrm{top}_m(q)` (``worst_case_value``) of greedy top-``b`` (ties shared,
    :func:`top_marginals`) and of uniform :math:`b/n`. Greedy's is :math:`\sum_{j=m+1}^{b} g_{(j)}` (0 for
    ``m >= b``) when the ``b``-th gain is not tied with the next, more otherwise (a random tie-break helps
    against an oblivious adversary); uniform's is :math:`(b/n)(\sum g - \mathrm{top}_m(g))`.

    Args:
        gains: (n,) non-negative gains.
        budget: ``b`` in [0, n].
        mistakes_grid: (k,) non-negative integers ``m``.
    """
    g = check_gains(gains)
    b = check_budget(budget, g.size)
    grid = check_vector(mistakes_grid, "mistakes_grid")
    if np.any(grid < 0) or np.any(grid != np.round(grid)):
        raise ValueError(f"mistakes_grid must hold non-negative integers, got {grid[:5].tolist()}...")
    ms = grid.astype(np.int64)
    values = np.zeros((ms.size, len(SELECTORS)))
    for j, m in enumerate(ms.tolist()):
        p = marginals_from_solution(g, b, solve_query_game(g, b, m))
        values[j] = [worst_case_value(p[name], g, m) for name in SELECTORS]  # RAD's is V*(m)
    return WorstCaseCurve(b, ms, *(np.ascontiguousarray(v) for v in values.T))


#: Models of the comparison table: (label, model, beta).
TABLE_MODELS = (
    ("beta=0", "gain-correlated", 0.0),
    ("beta=1", "gain-correlated", 1.0),
    ("beta=3", "gain-correlated", 3.0),
    ("beta=10", "gain-correlated", 10.0),
    ("top-m", "top-m", 0.0),
    ("equilibrium", "equilibrium", 0.0),
)
#: The ratios m/b of the comparison table; ``m = floor(ratio * b + 1/2)``.
MISTAKE_RATIOS = (0.25, 0.5, 1.0, 2.0, 4.0)


def selector_sweep(
    rng: RNGLike,
    instances: int,
    *,
    max_n: int = 100,
    models: Sequence[tuple[str, str, float]] = TABLE_MODELS,
    mistake_ratios: Sequence[float] = MISTAKE_RATIOS,
) -> dict[tuple[str, float], FloatArray]:
    r"""Expected useful gains over random instances: for each (model label, m/b) an (instances, 3) array of
    (RAD, greedy, uniform) (our formulation).

    Instance ``j``: gains from :func:`~robustdistill.theory.simulators.rad_checks.random_game` (redrawn until
    ``max_n // 2 <= n <= max_n``; ties, zeros, heavy tails), a budget ``b`` uniform in [1, max(1, n // 10)],
    and for each ratio :math:`m = \lfloor (m/b)\, b + 1/2 \rfloor`; every model is evaluated on the same
    instances.
    """
    gen = check_rng(rng)
    check_int(instances, "instances", low=1)
    check_int(max_n, "max_n", low=2)
    out = {(label, ratio): np.zeros((instances, 3)) for label, _, _ in models for ratio in mistake_ratios}
    for j in range(instances):
        g, _, _ = random_game(gen, max_n)
        while g.size < max_n // 2:
            g, _, _ = random_game(gen, max_n)
        b = int(gen.integers(1, max(1, g.size // 10) + 1))
        for ratio in mistake_ratios:
            m = math.floor(ratio * b + 0.5)
            sol = solve_query_game(g, b, m)
            p = marginals_from_solution(g, b, sol)
            for label, model, beta in models:
                pi = mistake_marginals(g, m, model, beta=beta, solution=sol)
                out[label, ratio][j] = [expected_useful_gain(p[name], g, pi) for name in SELECTORS]
    return out


def _ratio_summary(num: FloatArray, den: FloatArray) -> dict[str, Any]:
    """mean, median and min of num/den over the instances with den > 0 (0/0 counts as 1; x/0 with x > 0 is
    counted in ``baseline_zero`` and left out of mean and min, which are None when nothing is left)."""
    both_zero = (den <= 0) & (num <= 0)
    finite = den > 0
    ratios = np.r_[num[finite] / den[finite], np.ones(int(both_zero.sum()))]
    return {
        "mean": float(ratios.mean()) if ratios.size else None,
        "median": float(np.median(ratios)) if ratios.size else None,
        "min": float(ratios.min()) if ratios.size else None,
        "baseline_zero": int(np.count_nonzero((den <= 0) & (num > 0))),
    }


def comparison_table(sweep: dict[tuple[str, float], FloatArray]) -> list[dict[str, Any]]:
    """One row per (model, m/b) of :func:`selector_sweep`: the mean, median and min over instances of RAD/greedy and
    RAD/uniform, the number of instances where the baseline got 0 and RAD more (``*_zero``), and the
    mean expected gains (our formulation)."""
    rows = []
    for (label, ratio), gains in sweep.items():
        rad, greedy, uniform = gains.T
        vs_g, vs_u = _ratio_summary(rad, greedy), _ratio_summary(rad, uniform)
        rows.append(
            {
                "model": label,
                "m_over_b": ratio,
                "instances": int(gains.shape[0]),
                "rad_over_greedy_mean": vs_g["mean"],
                "rad_over_greedy_median": vs_g["median"],
                "rad_over_greedy_min": vs_g["min"],
                "greedy_zero": vs_g["baseline_zero"],
                "rad_over_uniform_mean": vs_u["mean"],
                "rad_over_uniform_median": vs_u["median"],
                "rad_over_uniform_min": vs_u["min"],
                "uniform_zero": vs_u["baseline_zero"],
                "mean_gain": dict(zip(SELECTORS, gains.mean(axis=0).tolist())),
            }
        )
    return rows


def compare_selectors(rng: RNGLike = 0, instances: int = 200, **kwargs: Any) -> list[dict[str, Any]]:
    """The comparison table (:func:`comparison_table`) of :func:`selector_sweep` (our formulation)."""
    return comparison_table(selector_sweep(rng, instances, **kwargs))


# ------------------------------------------------------------------------------------------------------
# Checks


def _large_instance_curve(rng: np.random.Generator, n: int) -> WorstCaseCurve:
    """Worst-case curve on n uniform(0, 1) gains, b = n/100, m = 0 .. 10 b."""
    g = rng.random(n)
    b = max(1, n // 100)
    return worst_case_curve(g, b, np.unique(np.round(np.linspace(0, 10 * b, 21))).astype(np.int64))


def check_r1(rng: np.random.Generator, size: dict[str, int]) -> CheckResult:
    r"""R1: under the top-m-gains pattern RAD >= greedy and RAD >= uniform (expected useful gain).

    Proof: greedy's and uniform's :math:`q = p \odot g` are non-decreasing in ``g`` and equal on ties, so
    the top-m gains are a best response to them and they get exactly their worst cases :math:`F(p)`; RAD
    gets :math:`\ge V^*` against any pattern with <= m mistakes (P3), and :math:`V^* \ge F(p)` for every
    :math:`p \in P_b` (P5). The identities greedy = ``worst_case_value`` >= the deterministic closed form of
    ``baseline_worst_cases`` (equal without a tie at the b-th gain) and uniform = its closed form are checked
    too, and the worked example's numbers 0.602631 / 0 / 0.43 on (b=2, m=3)."""
    slacks = []
    for _ in range(size["instances"]):
        g, b, m = random_game(rng)
        r = expected_gains(g, b, m, "top-m")
        greedy_det, uniform_closed = baseline_worst_cases(g, b, m)
        g_sorted = np.sort(g)[::-1]
        untied = b == 0 or b == g.size or g_sorted[b - 1] > g_sorted[b]
        scale = max(1.0, r.rad)
        ok = (
            _rel(r.greedy, r.greedy_worst) <= _REL
            and _rel(r.uniform, r.uniform_worst) <= _REL
            and _rel(r.uniform, uniform_closed) <= _REL
            and r.greedy_worst >= greedy_det - _EXACT * scale
            and (not untied or _rel(r.greedy_worst, greedy_det) <= _REL)
        )
        slacks.append((r.rad - max(r.greedy, r.uniform)) / scale if ok else -np.inf)
    spec = expected_gains(SPEC_GAINS, 2, 3, "top-m")
    spec_ok = abs(spec.rad - 0.602631) < 1e-6 and abs(spec.greedy) < 1e-12 and abs(spec.uniform - 0.43) < 1e-12
    slacks.append(0.0 if spec_ok else -np.inf)
    curve = worst_case_curve(SPEC_GAINS, 2, np.arange(11))
    result = _summary(
        "R1",
        "mistakes on the top-m gains: RAD's expected useful gain >= greedy top-b's and >= uniform's, which get "
        f"exactly their worst cases there (worked example b=2, m=3: 0.602631 vs 0 and 0.43; {size['instances']} "
        "random instances; our formulation)",
        -_EXACT,
        slacks,
        upper=False,
    )
    large = _large_instance_curve(rng, size["curve_n"])
    data = {"spec_gains": curve.to_dict(), f"uniform_gains_n{size['curve_n']}": large.to_dict()}
    return dataclasses.replace(result, data=data)


def _rm_point(rng: np.random.Generator, n: int, m: int) -> FloatArray:
    """A random point of R_m: capped-proportional to random weights, sum min(m, n)."""
    return capped_proportional(rng.random(n) * (rng.random(n) < 0.8), float(min(m, n)))


def check_r2(rng: np.random.Generator, instances: int) -> CheckResult:
    r"""R2: for every noise model with at most ``m`` mistakes in expectation, RAD's expected useful gain is
    >= :math:`\mathrm{top}_b(g \odot (1 - r^*))` (the adversary's certified value, = :math:`V^*` by P1).

    Proof: the payoff depends on the pattern only through its marginals :math:`\pi \in R_m`, and
    :math:`\min_{r \in R_m} \sum_i q^*_i (1 - r_i) = F(p^*) = V^*` (fractional knapsack: its optimum takes
    the m largest :math:`q^*`). So independent Bernoulli mistakes, which may exceed ``m`` in a draw, still
    give RAD :math:`\ge V^*`. Models: uniform, gain-correlated beta in {1, 3, 10}, top-m, best response
    (equality), equilibrium, and a random point of :math:`R_m`."""
    slacks = []
    models = [
        ("uniform", 0.0),
        ("gain-correlated", 1.0),
        ("gain-correlated", 3.0),
        ("gain-correlated", 10.0),
        ("top-m", 0.0),
        ("best-response", 0.0),
        ("equilibrium", 0.0),
    ]
    for _ in range(instances):
        g, b, m = random_game(rng)
        sol = solve_query_game(g, b, m)
        certified = top_k_sum(g * (1.0 - sol.adversary), b)
        marginals = [mistake_marginals(g, m, model, beta=beta, solution=sol) for model, beta in models]
        marginals.append(_rm_point(rng, g.size, m))
        gains = np.array([expected_useful_gain(sol.probabilities, g, pi) for pi in marginals])
        slacks.append(float((gains.min() - certified) / max(1.0, certified)))
    return _summary(
        "R2",
        "every mistake distribution with <= m mistakes in expectation (uniform, independent Bernoulli "
        "pi = min(1, c g^beta) for beta in {1, 3, 10}, top-m, best response, equilibrium, random r in R_m) "
        f"gives RAD an expected useful gain >= top_b(g(1 - r*)) = V* ({instances} random instances; our "
        "formulation)",
        -_EXACT,
        slacks,
        upper=False,
    )


def check_r3(rng: np.random.Generator, instances: int) -> CheckResult:
    r"""R3: against the adversary's equilibrium :math:`r^*` RAD's expected useful gain is exactly
    :math:`V^* = \mathrm{top}_b(g \odot (1 - r^*))` and greedy's and uniform's are <= :math:`V^*`.

    Proof: :math:`(p^*, r^*)` is a saddle point: :math:`u(p, r^*) \le \max_{p' \in P_b} u(p', r^*) =
    \mathrm{top}_b(g \odot (1 - r^*)) = V^*` for every :math:`p \in P_b`, and
    :math:`u(p^*, r^*) \ge \min_{r \in R_m} u(p^*, r) = V^*`. Also reports how much of :math:`r^*`'s mass
    lies on the top-b gains (P6: the adversary's mistakes sit on the informative points)."""
    slacks, top_share = [], []
    for _ in range(instances):
        g, b, m = random_game(rng)
        r = expected_gains(g, b, m, "equilibrium")
        certified = top_k_sum(g * (1.0 - r.mistake_marginals), b)
        scale = max(1.0, certified)
        slacks.append(min(-abs(r.rad - certified), certified - max(r.greedy, r.uniform)) / scale + 0.0)  # no -0
        mass = float(r.mistake_marginals.sum())
        if mass > 0 and 0 < b < g.size:
            top_share.append(float(r.mistake_marginals @ top_marginals(g, b)) / mass)
    result = _summary(
        "R3",
        "against the adversary's equilibrium r* (its mistakes on the top gains, P6) RAD gets exactly V* and "
        f"greedy top-b and uniform at most V* ({instances} random instances; mean share of r*'s mass on the "
        f"top-b gains {np.mean(top_share):.2f}; our formulation)",
        -_EXACT,
        slacks,
        upper=False,
    )
    return result


def check_r4(rng: np.random.Generator, size: dict[str, int]) -> CheckResult:
    r"""R4: with mistakes independent of the gain (:math:`\beta = 0`: :math:`\pi = \min(m,n)/n`, the marginals of
    ``m`` uniform points) greedy top-b is optimal: greedy >= RAD and greedy >= uniform, and greedy's expected
    useful gain is :math:`(1 - \min(m,n)/n)\,\mathrm{top}_b(g)`.

    Proof: with constant :math:`\pi` the expected useful gain is :math:`(1 - \pi)\sum_i p_i g_i`, maximized over
    :math:`P_b` by the top b gains. Measured (not a claim): RAD's price of robustness there, and the full
    comparison table (:func:`comparison_table`) over beta, top-m, the equilibrium and m/b, in ``data``."""
    sweep = selector_sweep(rng, size["instances"], max_n=size["max_n"])
    slacks = []
    for ratio in MISTAKE_RATIOS:
        gains = sweep["beta=0", ratio]
        slacks.extend(((gains[:, 1] - gains[:, [0, 2]].max(axis=1)) / np.maximum(1.0, gains[:, 1])).tolist())
    # the identity, on fresh instances (the sweep does not keep its gains)
    for _ in range(size["instances"]):
        g, b, m = random_game(rng, size["max_n"])
        r = expected_gains(g, b, m, "uniform")
        exact = (1.0 - min(m, g.size) / g.size) * top_k_sum(g, b)
        slacks.append(0.0 if _rel(r.greedy, exact) <= _REL else -np.inf)
    table = comparison_table(sweep)
    beta0 = [row for row in table if row["model"] == "beta=0"]
    price = ", ".join(f"m/b={row['m_over_b']:g}: {row['rad_over_greedy_mean']:.3f}" for row in beta0)
    strong = {row["m_over_b"]: row for row in table if row["model"] == "beta=10"}
    strong_text = ", ".join(
        f"m/b={k:g}: "
        + ("-" if v["rad_over_greedy_median"] is None else f"{v['rad_over_greedy_median']:.3f}")
        + (f" (greedy 0 < RAD in {v['greedy_zero']})" if v["greedy_zero"] else "")
        for k, v in strong.items()
    )
    result = _summary(
        "R4",
        "mistakes independent of the gain (beta = 0 or m uniform points): greedy top-b >= RAD and >= uniform "
        f"({size['instances']} random instances x {len(MISTAKE_RATIOS)} m/b; our formulation). Measured: mean "
        f"RAD/greedy at beta = 0 (price of robustness) {price}; median RAD/greedy at beta = 10 {strong_text}",
        -_EXACT,
        slacks,
        upper=False,
    )
    data = {"table": table, "models": [m[0] for m in TABLE_MODELS], "mistake_ratios": list(MISTAKE_RATIOS)}
    return dataclasses.replace(result, data=data)


CHECKS = [
    Check("R1", "rad", check_r1, {"instances": 300, "curve_n": 2000}, {"instances": 3000, "curve_n": 100_000}),
    Check("R2", "rad", check_r2, 200, 3000),
    Check("R3", "rad", check_r3, 300, 3000),
    Check("R4", "rad", check_r4, {"instances": 60, "max_n": 100}, {"instances": 1000, "max_n": 100}),
]
