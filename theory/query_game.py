r"""Exact references for the RAD query game: the LP (cvxpy) and the uncapped closed form.

(our formulation, ``docs/theory/rad.md#rad-lp``.) These are oracles for tests and simulators; the
selection path uses :func:`robustdistill.algorithms.rad.solve_query_game` only.

Primal LP (the learner), with :math:`\sum_i q_i - \mathrm{top}_m(q) = \max_{t \ge 0} \sum_i \min(q_i,t) - mt`:

.. math::

    \max_{p, t}\ \sum_i g_i p_i - m t - \sum_i (g_i p_i - t)_+
    \quad \text{s.t.} \quad 0 \le p \le 1,\ \sum_i p_i = b,\ t \ge 0 .

Adversary LP (solved separately, so that max-min = min-max is checked numerically, not assumed):

.. math::

    \min_{r, \theta, \mu}\ b\theta + \sum_i \mu_i
    \quad \text{s.t.} \quad \mu_i \ge g_i (1 - r_i) - \theta,\ \mu \ge 0,\ 0 \le r \le 1,\ \sum_i r_i \le m .
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robustdistill.algorithms.query_game import QueryGameSolution, top_k_sum, worst_case_value
from robustdistill.algorithms.typing import ArrayLike, FloatArray
from robustdistill.algorithms.validation import check_budget, check_gains, check_mistakes

__all__ = ["ClosedForm", "closed_form", "solve_exact", "worst_case_value", "top_k_sum"]


def _default_solver() -> str:
    import cvxpy as cp

    installed = cp.installed_solvers()
    for name in ("HIGHS", "CLARABEL"):
        if name in installed:
            return name
    raise RuntimeError(f"solve_exact needs the HIGHS or CLARABEL cvxpy solver; installed: {installed}")


def solve_exact(gains: ArrayLike, budget: int, mistakes: int, solver: str | None = None) -> QueryGameSolution:
    r"""Solve the RAD query game as two linear programs in cvxpy (our formulation, ``docs/theory/rad.md#rad-lp``).

    Args:
        gains: (n,) finite, non-negative gains.
        budget: ``b``, integer in [0, n].
        mistakes: ``m >= 0``.
        solver: any installed cvxpy solver name; default ``"HIGHS"`` (``"CLARABEL"`` if HiGHS is missing).

    Returns:
        :class:`QueryGameSolution`: ``probabilities`` and ``level`` (``t``) from the primal LP, ``adversary``
        and ``adversary_level`` (:math:`\theta`) from the adversary LP, ``value`` the primal optimum.
        Vertex solutions of the LP need not follow the tie rule of the fast solver; only values are unique.

    Raises:
        ValueError: bad gains, budget or mistakes (as :func:`solve_query_game`), or an unknown solver.
        RuntimeError: the solver did not reach an optimal status.
    """
    import cvxpy as cp

    g = check_gains(gains)
    n = g.size
    b = check_budget(budget, n, "gains")
    m = check_mistakes(mistakes)
    if solver is None:
        solver = _default_solver()
    elif not isinstance(solver, str):
        raise TypeError(f"solver must be a cvxpy solver name (str) or None, got {type(solver).__name__}")
    elif solver.upper() not in cp.installed_solvers():
        raise ValueError(f"solver {solver!r} is not installed; installed: {cp.installed_solvers()}")
    solver = solver.upper()

    # The game is positively homogeneous in g (V*, t and theta scale with it; p and r do not). Solving
    # on g / max(g) keeps the LP's coefficients in (0, 1], away from the solvers' small-value cut-offs
    # (HiGHS drops coefficients below 1e-9).
    scale = float(g.max()) if g.max() > 0 else 1.0
    g = g / scale
    p = cp.Variable(n)
    t = cp.Variable(nonneg=True)
    primal = cp.Problem(
        cp.Maximize(g @ p - m * t - cp.sum(cp.pos(cp.multiply(g, p) - t))),
        [p >= 0, p <= 1, cp.sum(p) == b],
    )
    primal.solve(solver=solver)

    r = cp.Variable(n)
    theta = cp.Variable()
    mu = cp.Variable(n, nonneg=True)
    adversary = cp.Problem(
        cp.Minimize(b * theta + cp.sum(mu)),
        [mu >= cp.multiply(g, 1 - r) - theta, r >= 0, r <= 1, cp.sum(r) <= m],
    )
    adversary.solve(solver=solver)
    for name, prob in (("primal", primal), ("adversary", adversary)):
        if prob.status != cp.OPTIMAL:
            raise RuntimeError(f"solve_exact: the {name} LP ended with status {prob.status!r} ({solver})")

    probs = np.clip(np.asarray(p.value, dtype=float), 0.0, 1.0)
    return QueryGameSolution(
        probabilities=probs,
        value=scale * float(primal.value),
        adversary=np.clip(np.asarray(r.value, dtype=float), 0.0, 1.0),
        support_size=int(np.count_nonzero(probs > 1e-9)),
        level=scale * float(t.value),
        adversary_level=scale * float(theta.value),
    )


@dataclass(frozen=True)
class ClosedForm:
    """The uncapped closed form (``docs/theory/rad.md#rad-closed-form``) on the sorted positive gains (1-based ``k_star``)."""

    k_star: int
    S: float  # S_{k*}
    v_star: float  # (k* - m) / S_{k*}
    value: float  # b v*
    level: float  # c = b / S_{k*}
    valid: bool  # c <= g_(k*): p_(k*) <= 1, the mandatory check


def closed_form(gains: ArrayLike, budget: int, mistakes: int) -> tuple[ClosedForm, FloatArray, FloatArray]:
    r"""Inverse-gain water-filling when no cap binds (our formulation, ``docs/theory/rad.md#rad-closed-form``); a test oracle.

    With :math:`S_k = \sum_{i \le k} 1/g_{(i)}` and :math:`v_k = (k - m)/S_k`, the k* scan starts at
    ``k = m + 1`` and increments while :math:`g_{(k+1)} \ge v_k`. Then :math:`p_{(j)} = c/g_{(j)}` with
    :math:`c = b/S_{k^*}` for :math:`j \le k^*`, value :math:`b v^*`, and the uncapped adversary
    :math:`r_{(j)} = 1 - v^*/g_{(j)}`. **Optimal iff** ``valid`` (:math:`c \le g_{(k^*)}`); otherwise the
    returned ``p`` is infeasible and only the capped solver is exact.

    Requires ``m`` smaller than the number N of positive gains. Returns ``(ClosedForm, p, r)`` with
    ``p`` and ``r`` of shape (n,) in the input order.
    """
    g = check_gains(gains)
    b = check_budget(budget, g.size, "gains")
    m = check_mistakes(mistakes)
    order = np.argsort(-g, kind="stable")
    pos = g[order][g[order] > 0]
    N = pos.size
    if m >= N:
        raise ValueError(f"closed_form needs mistakes < number of positive gains ({N}), got {m}")
    S = np.cumsum(1.0 / pos)
    k = m + 1  # scalar scan, as written in the theory page (an oracle, not the fast path)
    while k < N and pos[k] >= (k - m) / S[k - 1]:
        k += 1
    v = (k - m) / S[k - 1]
    c = b / S[k - 1]
    p_sorted = np.zeros(g.size)
    r_sorted = np.zeros(g.size)
    p_sorted[:k] = c / pos[:k]
    r_sorted[:k] = 1.0 - v / pos[:k]
    p, r = np.empty(g.size), np.empty(g.size)
    p[order], r[order] = p_sorted, r_sorted
    info = ClosedForm(
        k_star=k,
        S=float(S[k - 1]),
        v_star=float(v),
        value=float(b * v),
        level=float(c),
        valid=bool(c <= pos[k - 1] * (1 + 1e-12)),
    )
    return info, p, r
