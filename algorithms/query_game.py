r"""The query game of Robust Active Distillation and its exact O(n log n) solver.

Paper: Baykal, Trinh, Iliopoulos, Menghani, Vee, "Robust Active Distillation", ICLR 2023 (arXiv 2210.01213).
The paper poses a game between the informativeness of the points to query and the correctness of the
teacher's labels on them (paper). The exact game below, its closed-form solver and the certificate are
**our formulation** (``docs/theory/rad.md#rad-game``).

The game (our formulation). A learner picks a random batch of exactly ``b`` of the ``n`` pool points; only
its marginals :math:`p \in P_b = \{p \in [0,1]^n : \sum_i p_i = b\}` matter. An adversary makes the teacher
wrong on at most ``m`` points, with marginals :math:`r \in R_m = \{r \in [0,1]^n : \sum_i r_i \le m\}`.
The payoff is the expected gain of correctly labeled queried points,

.. math::

    V^* = \max_{p \in P_b} \min_{r \in R_m} \sum_i p_i g_i (1 - r_i)
        = \max_{p \in P_b} F(p), \qquad F(p) = \sum_i q_i - \mathrm{top}_m(q), \quad q_i = p_i g_i,

and by von Neumann's theorem :math:`V^* = \min_{r \in R_m} \mathrm{top}_b(g \odot (1 - r))`.

Solver (our formulation, ``docs/theory/rad.md#rad-closed-form``). With :math:`\sum_i q_i - \mathrm{top}_m(q) =
\max_{t \ge 0} \sum_i \min(q_i, t) - m t`,

.. math::

    V^* = \max_{t \ge 0} H(t), \qquad H(t) = \max_{p \in P_b} \sum_i \min(p_i g_i, t) - m t .

For fixed ``t`` the inner problem is a fractional knapsack (FILL): in decreasing-gain order each point
takes its capacity :math:`u_i(t) = \min(1, t / g_i)` until the budget is spent. ``H`` is concave and
piecewise linear with breakpoints at the gains and at the budget levels :math:`\tau_j` (where the fill of
the top ``j`` points uses exactly ``b``); all of them are evaluated at once from prefix sums
:math:`S_j = \sum_{i \le j} 1/g_{(i)}`, :math:`G_j = \sum_{i \le j} g_{(i)}` with ``searchsorted``. The
optimal ``p`` is ``FILL(t*)``: :math:`p_{(j)} = \min(1, t^*/g_{(j)})` on a top-gain prefix plus at most
one fractional point.

Certificate (our formulation, ``docs/theory/rad.md#rad-certificate``). The adversary's equilibrium marginals ``r*`` minimise
:math:`D(\theta) = b\theta + \Phi(\theta)`, :math:`\Phi(\theta) = \min_{r \in R_m} \sum_i (g_i(1-r_i) -
\theta)_+`, evaluated at its breakpoints (0, the gains, and the uncapped levels :math:`v_K = (K-m)/S_K`).
``worst_case_value(p*) == top_b(g * (1 - r*)) == V*`` proves both strategies optimal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .results import Result
from .typing import ArrayLike, FloatArray
from .validation import (
    MAX_INT,
    check_budget,
    check_gains,
    check_int,
    check_mistakes,
    check_probability_vector,
    check_vector,
)


@dataclass(frozen=True, eq=False)
class QueryGameSolution(Result):
    r"""Solution of the RAD query game (our formulation, ``docs/theory/rad.md#rad-game``).

    Attributes:
        probabilities: (n,) the learner's optimal marginals :math:`p^*` in [0, 1], summing to ``b``.
        value: :math:`V^*`, the guaranteed expected gain of correctly labeled queried points.
        adversary: (n,) the adversary's equilibrium mistake marginals :math:`r^*` in [0, 1], summing to
            at most ``m``; :math:`\mathrm{top}_b(g \odot (1 - r^*)) = V^*` certifies optimality.
        support_size: :math:`\#\{i : p^*_i > 0\}`.
        level: :math:`t^*`, the maximiser of :math:`H`; in the main regime
            :math:`p^* = \mathrm{FILL}(t^*)`, i.e. :math:`p^*_i = \min(1, t^*/g_i)` on a top-gain prefix
            plus one marginal point (shared by its tie group).
        adversary_level: :math:`\theta^*`, the minimiser of the adversary's dual :math:`D`.
    """

    probabilities: FloatArray
    value: float
    adversary: FloatArray
    support_size: int
    level: float
    adversary_level: float


#: Gains up to this over n sum without overflow (float64 max / 4: room for the sums of the solver).
_SUM_SAFE = float(np.finfo(np.float64).max) / 4.0


def top_k_sum(x: FloatArray, k: int) -> float:
    """Sum of the ``k`` largest entries of a finite 1-D array ``x`` (0 for k <= 0), by ``np.partition`` in
    O(n)."""
    x = check_vector(x, "x")
    k = check_int(k, "k", low=-MAX_INT)
    n = x.size
    if k <= 0:
        return 0.0
    part = x if k >= n else np.partition(x, n - k)[n - k :]
    top = float(np.abs(part).max())
    total = float((part / top).sum()) * top if top > _SUM_SAFE / part.size else float(part.sum())
    if not math.isfinite(total):
        raise ValueError(f"the sum of the {k} largest entries of x overflows float64")
    return total


def _sum_without_top(q: FloatArray, m: int) -> float:
    r""":math:`\sum_i q_i - \mathrm{top}_m(q)`, summed directly over the n - m smallest entries (never
    negative for q >= 0, unlike the difference of two sums). O(n) with ``np.partition``. Entries whose sum
    could overflow are summed divided by their maximum."""
    keep = q.size - m
    if keep <= 0:
        return 0.0
    top = float(q.max())
    if top > _SUM_SAFE / q.size:
        return _sum_without_top(q / top, m) * top
    if keep >= q.size:
        return float(q.sum())
    return float(np.partition(q, keep - 1)[:keep].sum())


def worst_case_value(probabilities: ArrayLike, gains: ArrayLike, mistakes: int) -> float:
    r"""The adversary's best-response value :math:`F(p) = \sum_i q_i - \mathrm{top}_m(q)`, :math:`q = p \odot g`.

    (our formulation, ``docs/theory/rad.md#rad-game``.) The adversary facing marginals ``p`` zeroes the ``m`` largest
    expected gains ``q_i``. O(n) with ``np.partition``.

    Args:
        probabilities: (n,) marginals in [0, 1] (their sum is not checked: any query rule can be scored).
        gains: (n,) non-negative gains.
        mistakes: ``m >= 0``.
    """
    p = check_probability_vector(probabilities, "probabilities")
    g = check_gains(gains)
    if p.shape != g.shape:
        raise ValueError(f"probabilities has shape {p.shape} but gains has shape {g.shape}")
    m = check_mistakes(mistakes)
    return _checked_value(_sum_without_top(p * g, m), 1.0)


def _checked_value(value: float, scale: float) -> float:
    """``value * scale``, a ``ValueError`` naming the gains when it overflows float64."""
    out = value * scale
    if not np.isfinite(out):
        raise ValueError(f"the value of these gains overflows float64 ({value!r} * {scale!r}): rescale the gains")
    return out


class _TieGroups:
    """Tie groups (runs of equal values) of a descending array: ``start[i] = #{g > g_i}``.

    Points with equal gains are interchangeable, and both players' objectives are concave (learner) or
    convex (adversary) and symmetric in them, so averaging a strategy over each tie group keeps it
    optimal and makes the output permutation-equivariant (``docs/theory/rad.md#rad-closed-form``, "ties")."""

    def __init__(self, sorted_gains: FloatArray) -> None:
        is_start = np.r_[True, sorted_gains[1:] != sorted_gains[:-1]]
        self.starts = np.flatnonzero(is_start)
        self.has_ties = self.starts.size < sorted_gains.size
        self.start = (
            np.maximum.accumulate(np.where(is_start, np.arange(sorted_gains.size), 0))
            if self.has_ties
            else np.arange(sorted_gains.size)
        )

    def mean(self, values: FloatArray) -> FloatArray:
        """Each value replaced by the mean over its tie group."""
        if not self.has_ties:
            return values
        counts = np.diff(np.r_[self.starts, values.size])
        return np.repeat(np.add.reduceat(values, self.starts) / counts, counts)


#: The marginal point's share of the budget is a difference of two sums of size ~b; within this
#: (times max(1, b)) of 0 or 1 it is round-off and goes to 0 or 1.
MARGINAL_SNAP = 1e-14


def _fill(pos: FloatArray, budget: int, t: float) -> FloatArray:
    """FILL(t): fractional knapsack over the positive gains ``pos`` (sorted descending), caps min(1, t/g).

    Points take their caps in order until the budget is spent; the marginal point takes the remainder,
    snapped to 0 or 1 when within round-off of it (only there: the caps t/g are exact, and may be
    legitimately tiny). If the caps hold less than ``budget`` (only for large m), the rest is spread
    proportionally to ``1 - p``; F is non-decreasing in every q_i, so this never lowers the value."""
    u = np.minimum(1.0, t / pos)
    c = np.cumsum(u)
    if c[-1] < budget:
        slack = 1.0 - u
        return u + (budget - c[-1]) * slack / slack.sum()
    j = int(np.searchsorted(c, budget, side="left"))
    p = np.zeros_like(pos)
    p[:j] = u[:j]
    rest = budget - (c[j - 1] if j > 0 else 0.0)
    tol = MARGINAL_SNAP * max(1.0, float(budget))
    p[j] = 0.0 if rest < tol else (1.0 if rest > 1.0 - tol else rest)
    return p


def _level(pos: FloatArray, budget: int, mistakes: int, S: FloatArray, G: FloatArray, L: np.ndarray) -> float:
    """t* = argmax H(t) over the gain and budget breakpoints (``docs/theory/rad.md#rad-closed-form``), vectorized; 1 <= b < N.

    ``L[l] = #{g > g_(l)}`` (the start of each tie group)."""
    N, b, m = pos.size, budget, mistakes
    t = pos  # gain breakpoints t = g_(l)
    tSL = t * S[L]
    # The marginal point J: among the capped ones, or (if the level points alone spend b) the first j
    # with S_j >= b/t, searched only where needed (the queries b/t are sorted).
    J = L + np.ceil(b - tSL).astype(np.int64)
    at_level = np.flatnonzero(tSL >= b)
    J[at_level] = np.searchsorted(S, b / t[at_level], side="left")
    ell = np.minimum(L, J - 1)
    Jc = np.minimum(J, N)  # gather-safe
    H_in = ell * t + G[Jc - 1] - G[ell] + pos[Jc - 1] * (b - t * S[ell] - (Jc - 1 - ell)) - m * t
    H_out = L * t + G[N] - G[L] - m * t  # the pool is exhausted
    H_gain = np.where(J > N, H_out, H_in)
    # A gain whose tie group lies past the fill's end (ell < L: the budget is spent before it) is not a
    # breakpoint of H: H is linear through it (only the tau levels move the marginal point there). Such
    # points are left out, so that t* is a breakpoint of H itself and does not depend on where the unfilled
    # gains happen to fall in a nearly flat stretch of H.
    H_gain = np.where(ell < L, -np.inf, H_gain)
    # Budget breakpoints t = tau_j, j = b+1..N: the fill of the top j points uses exactly b.
    idx = np.arange(1, N + 1)
    phi = np.minimum.accumulate(pos * S[:-1] - (idx - 1))  # non-increasing in exact arithmetic
    j = np.arange(b + 1, N + 1)
    # l_j = min(j, #{l : phi_l >= b - j}); phi_l >= b - j <=> ceil(b - phi_l) <= j (j integer), so the
    # counts for all j are one bincount + cumsum (O(N), no searchsorted).
    first_j = np.clip(np.ceil(b - phi), 0, N + 1).astype(np.int64)
    count = np.cumsum(np.bincount(first_j, minlength=N + 2))
    lj = np.minimum(j, count[j])
    tau = np.maximum(0.0, (b - j + lj) / S[lj])
    H_tau = lj * tau + G[j] - G[lj] - m * tau
    best = max(H_gain.max(), H_tau.max() if H_tau.size else -np.inf)
    # First candidate within round-off of the maximum (gains first, then tau in order of j): among
    # (near-)maximisers, the largest gain level, i.e. the least spread (m = 0: t* = g_(1), greedy top-b).
    near = best - 1e-13 * abs(best)  # relative: the game is scale-invariant in g
    if H_gain.max() >= near:
        return float(t[int(np.argmax(H_gain >= near))])
    return float(tau[int(np.argmax(H_tau >= near))])


def _adversary(pos: FloatArray, budget: int, mistakes: int, S: FloatArray, G: FloatArray, L_gain: np.ndarray):
    """(r*, theta*) on the sorted positive gains, 1 <= m < N, 1 <= b < N (``docs/theory/rad.md#rad-certificate``).

    ``L_gain[l] = #{g > g_(l)}`` (the start of each tie group)."""
    N, b, m = pos.size, budget, mistakes
    k = np.arange(m + 1, N + 1)
    v = (k - m) / S[k]  # v_K for K = m+1..N
    # End of the non-decreasing run (the k* scan of §3.1): step k -> k+1 helps iff g_(k+1) >= v_k.
    stops = np.flatnonzero(pos[m + 1 :] < v[:-1])
    khat = m + 1 + (int(stops[0]) if stops.size else N - m - 1)
    v_run = np.maximum.accumulate(v[: khat - m])  # v_{m+1..khat}, non-decreasing
    theta = np.concatenate([[0.0], pos, v_run])
    # #{g > theta}: N at theta = 0, the tie-group start at the gains, a search for the levels v_K.
    L = np.concatenate([[N], L_gain, np.searchsorted(-pos, -v_run, side="left")])
    K = m + 1 + np.searchsorted(v_run, theta, side="left")  # first K >= m+1 with v_K >= theta
    Kc = np.minimum(K, N)
    phi = (G[L] - theta * L) - (G[Kc - 1] - theta * (Kc - 1)) - pos[Kc - 1] * (m - (Kc - 1) + theta * S[Kc - 1])
    phi = np.where((K > khat) | (K > L), 0.0, phi)  # the adversary flattens all excess above theta
    D = b * theta + phi
    theta_star = float(theta[int(np.argmin(D))])
    # ADVERSARY_FILL(theta*): m units in decreasing-gain order, point i absorbs up to (1 - theta/g_i)_+.
    a = np.maximum(0.0, 1.0 - theta_star / pos)
    spent_before = np.concatenate([[0.0], np.cumsum(a)[:-1]])
    r = np.minimum(a, np.maximum(0.0, m - spent_before))
    return r, theta_star


def solve_query_game(gains: ArrayLike, budget: int, mistakes: int) -> QueryGameSolution:
    r"""Exact optimum of the RAD query game (our formulation, ``docs/theory/rad.md#rad-game``), O(n log n).

    .. math::

        p^* \in \arg\max_{p \in [0,1]^n,\ \sum p = b}\ \Big(\sum_i p_i g_i - \mathrm{top}_m(p \odot g)\Big)

    Every regime is exact: no cap binding (inverse-gain water-filling :math:`p_i = c/g_i` over the top
    :math:`k^*`), caps :math:`p_i \le 1` binding, ``m = 0`` (greedy top-b), :math:`m \ge N` (value 0,
    uniform ``p``), :math:`b \ge N` (every positive gain, the rest spread uniformly over zero gains), ties
    (tied gains get equal probability) and zero gains (never queried unless ``b > N`` or :math:`m \ge N`).
    Here ``N`` is the number of strictly positive gains.

    Args:
        gains: (n,) finite, non-negative informativeness; higher = more informative. A torch tensor is
            accepted and converted once.
        budget: ``b``, integer in [0, n]: the number of teacher queries of this round.
        mistakes: ``m >= 0``: the number of teacher mistakes in the pool (see ``estimate_mistakes``).

    Returns:
        :class:`QueryGameSolution` with ``probabilities`` (n,), ``value`` :math:`V^*`, ``adversary``
        (n,) :math:`r^*`, ``support_size``, ``level`` :math:`t^*` and ``adversary_level`` :math:`\theta^*`.

    Raises:
        ValueError: gains not 1-D, empty, NaN, inf or negative; budget not an integer in [0, n];
            mistakes negative or not an integer.

    Accuracy: float64 round-off only; ``value`` and the certificate agree with the LP to ~1e-15 times
    :math:`\max(1, V^*)` on gains in [0, 1] (measured by ``robustdistill verify`` and the tests). Gains
    spanning many orders of magnitude (1e-14 beside 1) keep that absolute accuracy, not a relative one.

    Example:
        >>> import numpy as np
        >>> sol = solve_query_game(np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]), 2, 3)
        >>> round(sol.value, 6), sol.support_size
        (0.602631, 6)
    """
    g = check_gains(gains)
    n = g.size
    b = check_budget(budget, n, "gains")
    m = check_mistakes(mistakes)
    # The game is homogeneous in the gains (p* and r* unchanged, value and levels scaled): gains whose sums could
    # overflow are solved divided by their maximum, and the value and levels scaled back.
    scale = float(g.max())
    if scale > _SUM_SAFE / n:
        g = g / scale
    else:
        scale = 1.0

    order = np.argsort(-g)  # any order within ties: tie groups are averaged below
    gs = g[order]
    N = int(np.count_nonzero(gs > 0))
    pos = gs[:N]
    ties = _TieGroups(pos)
    p_sorted = np.zeros(n)
    r_sorted = np.zeros(n)
    level = theta = 0.0

    if b == 0:
        pass  # nothing is queried; value 0 against any adversary
    elif b >= N:
        p_sorted[:N] = 1.0
        if b > N:
            p_sorted[N:] = (b - N) / (n - N)
        r_sorted[: min(m, N)] = 1.0
        # H(t) = sum_i min(g_i, t) - m t peaks at the m-th largest gain (at g_(1) for m = 0).
        level = float(pos[max(m, 1) - 1]) if m <= N and N > 0 else 0.0
    elif m >= N:
        p_sorted[:] = b / n  # every strategy has value 0; the uniform one is chosen
        r_sorted[:N] = 1.0
    else:
        S = np.concatenate([[0.0], np.cumsum(1.0 / pos)])
        G = np.concatenate([[0.0], np.cumsum(pos)])
        level = _level(pos, b, m, S, G, ties.start)
        p_sorted[:N] = _fill(pos, b, level)
        if m == 0:
            theta = float(pos[b - 1])
        else:
            r_sorted[:N], theta = _adversary(pos, b, m, S, G, ties.start)

    if N:
        p_sorted[:N] = ties.mean(p_sorted[:N])
        r_sorted[:N] = ties.mean(r_sorted[:N])
    p = np.empty(n)
    r = np.empty(n)
    p[order] = np.clip(p_sorted, 0.0, 1.0)
    r[order] = np.clip(r_sorted, 0.0, 1.0)
    return QueryGameSolution(
        probabilities=p,
        value=_checked_value(_sum_without_top(p * g, m), scale),
        adversary=r,
        support_size=int(np.count_nonzero(p > 0)),
        level=level * scale,
        adversary_level=theta * scale,
    )
