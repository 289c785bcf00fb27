r"""What a selection rule gains from the teacher: the inclusion marginals of RAD, greedy top-b and uniform
sampling, and the exact expected gain of the correctly labeled queried points (our formulation of the
payoff of Baykal et al., ICLR 2023, against a mixed adversary).

A selector that queries ``b`` of ``n`` pool points is described by its marginals
:math:`p \in [0, 1]^n` with :math:`\sum_i p_i = b`; a teacher whose mistakes have marginals
:math:`\pi_i = P[\text{wrong on } i]`, independent of the selector's coins, leaves the expected useful gain
:math:`\sum_i p_i g_i (1 - \pi_i)`. Used by the active loop's evaluation diagnostics and by the simulators.
"""

from __future__ import annotations

import numpy as np

from robustdistill.algorithms.query_game import QueryGameSolution, solve_query_game
from robustdistill.algorithms.typing import ArrayLike, FloatArray
from robustdistill.algorithms.validation import (
    check_budget,
    check_gains,
    check_int,
    check_mistakes,
    check_probability_vector,
    check_vector,
)

__all__ = ["SELECTION_RULES", "expected_useful_gain", "marginals_from_solution", "selector_marginals", "top_marginals"]

#: The compared selection rules, in the order of every table.
SELECTION_RULES = ("rad", "greedy", "uniform")


def top_marginals(scores: ArrayLike, k: int) -> FloatArray:
    r"""Inclusion probabilities (n,) of the top ``k`` of ``scores`` (n,) with ties at the ``k``-th score broken
    uniformly at random (our formulation; the rule of ``selection.top_b``):

    .. math::

        P[i \in \mathrm{top}_k] = \mathbb{1}[s_i > s_{(k)}]
            + \mathbb{1}[s_i = s_{(k)}]\,\frac{k - \#\{j : s_j > s_{(k)}\}}{\#\{j : s_j = s_{(k)}\}} .

    ``k = 0`` gives zeros; ``k >= n`` gives ones (``k`` may exceed ``n``, as ``m`` may). O(n) with
    ``np.partition``. The marginals sum to :math:`\min(k, n)` and are non-decreasing in the score.
    """
    s = check_vector(scores, "scores")
    k = check_int(k, "k", low=0)
    n = s.size
    if k == 0:
        return np.zeros(n)
    if k >= n:
        return np.ones(n)
    kth = np.partition(s, n - k)[n - k]  # the k-th largest score
    above = s > kth
    tied = s == kth
    share = (k - np.count_nonzero(above)) / np.count_nonzero(tied)
    return above + share * tied


def marginals_from_solution(g: FloatArray, b: int, sol: QueryGameSolution) -> dict[str, FloatArray]:
    """The selectors' marginals (validated inputs; ``sol`` solves the game on ``g``, ``b``)."""
    return {"rad": sol.probabilities, "greedy": top_marginals(g, b), "uniform": np.full(g.size, b / g.size)}


def selector_marginals(gains: ArrayLike, budget: int, mistakes: int) -> dict[str, FloatArray]:
    r"""The marginals (n,) of the three selectors of :data:`SELECTORS` (our formulation): RAD's
    :math:`p^*` (the query game with ``m`` mistakes), greedy top-``b`` (:func:`top_marginals`; ties at the
    ``b``-th gain shared uniformly) and uniform :math:`b/n`."""
    g = check_gains(gains)
    b = check_budget(budget, g.size)
    return marginals_from_solution(g, b, solve_query_game(g, b, check_mistakes(mistakes)))


def expected_useful_gain(probabilities: ArrayLike, gains: ArrayLike, mistake_marginals: ArrayLike) -> float:
    r"""Exact expected gain of the correctly labeled queried points,
    :math:`E[\sum_{i \in S} g_i C_i] = \sum_i p_i g_i (1 - \pi_i)`, for a batch ``S`` with inclusion
    probabilities ``p`` (n,) and an independent mistake pattern with marginals ``pi`` (n,) (our
    formulation, the payoff of ``docs/theory/rad.md#rad-game`` against a mixed adversary). Exact for DepRound (its marginals are ``p``),
    for greedy and for uniform sampling."""
    p = check_probability_vector(probabilities, "probabilities")
    g = check_gains(gains)
    pi = check_probability_vector(mistake_marginals, "mistake_marginals")
    if not p.shape == g.shape == pi.shape:
        raise ValueError(
            f"probabilities {p.shape}, gains {g.shape} and mistake_marginals {pi.shape} must have one shape (n,)"
        )
    return float(np.sum(p * g * (1.0 - pi)))
