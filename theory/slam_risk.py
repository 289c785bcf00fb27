r"""The per-example minimiser of SLaM's loss over the simplex, in closed form (our formulation).

SLaM (Kontonis et al., NeurIPS 2023; :mod:`robustdistill.algorithms.slam`) trains a student
:math:`f` on the loss :math:`\ell(f) = -\sum_j y_j \log \mathrm{mix}_j(f)` with, per example, the top-k
indicator :math:`M` of the teacher's probabilities, the teacher accuracy :math:`\alpha` and

.. math::

    \mathrm{mix}_j(f) = \alpha f_j + (1-\alpha)(1-f_j) M_j / c = a_j + b_j f_j, \qquad
    c = 1\ \text{(2')} \ \text{or}\ c = k - 1\ \text{(2)},

so :math:`a_j = (1-\alpha)/c`, :math:`b_j = \alpha - (1-\alpha)/c` on :math:`M` and :math:`a_j = 0`,
:math:`b_j = \alpha` off :math:`M`. The slopes are positive (:math:`b_j > 0`) exactly when
:math:`\alpha > 1/2` for (2') and :math:`\alpha > 1/k` for (2); then :math:`\ell` is convex in :math:`f`,
strictly in every :math:`f_j` with :math:`y_j > 0`.

**The minimiser.** The KKT conditions over the simplex (multiplier :math:`\lambda = 1/s`) are
:math:`y_j b_j / (a_j + b_j f_j) = \lambda` where :math:`f_j > 0` and :math:`\le \lambda` where
:math:`f_j = 0`, that is

.. math::

    f_j = (s\,y_j - c_j)_+, \qquad c_j = a_j / b_j, \qquad \textstyle\sum_j f_j = 1

(a generalised water-filling). The map :math:`g(s) = \sum_j (s y_j - c_j)_+` is piecewise linear,
continuous and increasing, with breakpoints :math:`\tau_j = c_j / y_j` (a class with :math:`y_j = 0` is
never active: :math:`\tau_j = \infty`). With the breakpoints sorted, :math:`g(\tau_{(i)}) < 1` holds for a
prefix :math:`i \le m` (:math:`g(\tau_{(1)}) = 0`), the classes :math:`(1), \dots, (m)` are the active
set and :math:`s = (1 + \sum_{i \le m} c_{(i)}) / \sum_{i \le m} y_{(i)}`. This is exact (no bisection
tolerance) and vectorised over rows.

Since :math:`c_j` takes two values per row, :math:`(1-\alpha)/(c\alpha - (1-\alpha))` on :math:`M` and 0
off it, the active set is **not** a prefix of the classes sorted by :math:`y`:

- a target **supported on M** (the population targets of model (1), the ``"topk"`` and ``"hard"``
  targets of :func:`~robustdistill.algorithms.slam.slam_targets`) has one :math:`c_j` on its support,
  so :math:`f_j` is increasing in :math:`y_j` there and 0 elsewhere: the minimiser keeps the target's
  top class (both forms);
- a **soft target with mass off M** (the teacher's probabilities themselves) gets
  :math:`f_j = s\,y_j` off :math:`M` but :math:`s\,y_j - c_j` on it, and the top class can leave
  :math:`M`: :math:`y = (0.5, 0.3, 0.1, 0.1)`, :math:`M = \{0, 1\}`, :math:`\alpha = 0.6`, (2') gives
  :math:`c_j = 2` on :math:`M`, :math:`s = 30/7` and :math:`f = (1/7, 0, 3/7, 3/7)`. SLaM therefore
  uses targets on :math:`M` (:func:`~robustdistill.algorithms.slam.slam_targets`: the hard label by
  default, or ``"topk"``).

:func:`leaves_topk` flags the rows where that happens. The simulator ``S1-soft-targets``
(:mod:`robustdistill.theory.simulators.slam_checks`) measures it for SLaM's default configuration.
"""

from __future__ import annotations

import numpy as np

from robustdistill.algorithms.slam import check_alpha_for_mix, check_mask
from robustdistill.algorithms.typing import ArrayLike, FloatArray
from robustdistill.algorithms.validation import check_alpha, check_probs

__all__ = ["TOP_TOL", "leaves_topk", "per_example_minimiser"]

#: Absolute tolerance of the top class in :func:`leaves_topk`: the top class is the lowest index whose
#: probability is within ``TOP_TOL`` of the row's maximum (the minimiser is exact to a few ulp, so entries
#: that differ by less are ties).
TOP_TOL = 1e-12


def _coefficients(
    targets: ArrayLike, alpha: ArrayLike, mask: ArrayLike, normalize: bool
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validated ``(y, c, on_M)``: the targets, the offsets :math:`c_j = a_j / b_j` and the 0/1 mask."""
    y = check_probs(targets, "targets")
    n, _ = y.shape
    a = check_alpha(alpha, n)
    m = check_mask(mask, y.shape, "mask")
    k = m.sum(axis=1)
    check_alpha_for_mix(a, k, normalize)
    if not normalize and np.any(a == 0.5):
        i = int(np.flatnonzero(a == 0.5)[0])
        raise ValueError(
            f"alpha must exceed 1/2 for the minimiser of the un-normalised mix (2'): at 1/2 the loss does not "
            f"depend on f on M and the minimiser is not unique; alpha[{i}] = 0.5"
        )
    c = k - 1.0 if normalize else np.ones(n)
    on = (1.0 - a) / c  # a_j on M
    slope = a - on  # b_j on M (> 0 after the checks above)
    return y, np.where(m > 0, (on / slope)[:, None], 0.0), m


def per_example_minimiser(
    targets: ArrayLike, alpha: ArrayLike, mask: ArrayLike, *, normalize: bool = False
) -> FloatArray:
    r"""The exact minimiser over the simplex of :math:`-\sum_j y_j \log \mathrm{mix}_j(f)`, row by row.

    :math:`f_j = (s\,y_j - c_j)_+` with :math:`c_j = a_j/b_j` (module docstring) and :math:`s` solving
    :math:`\sum_j f_j = 1`, found exactly from the sorted breakpoints :math:`c_j / y_j`.

    Degenerate cases: a class with :math:`y_j = 0` gets :math:`f_j = 0` (it does not enter the loss, and any
    mass on it would be taken from a class that does); entries of ``targets`` down to -1e-6, which
    :func:`~robustdistill.algorithms.validation.check_probs` admits as round-off, count as 0. A row is never
    zero on every class: it lies on the simplex. ``alpha = 1`` gives :math:`f = y`.

    Args:
        targets: (n, K) rows on the simplex, the label :math:`y` the loss is computed against.
        alpha: (n,) or a scalar: the teacher accuracy, > 1/2 for (2') and > 1/k (per row) for (2), so that
            every slope :math:`b_j` is positive.
        mask: (n, K) 0/1, the top-k indicator :math:`M`, at least 2 ones per row
            (:func:`~robustdistill.algorithms.slam.topk_mask`).
        normalize: form (2) (``c = k - 1``) instead of (2') (``c = 1``, default).

    Returns:
        (n, K) float64 rows on the simplex (non-negative, summing to 1 up to rounding).

    Raises:
        ValueError: naming the argument, for targets off the simplex, alpha out of range or below the
            form's bound, or a malformed mask.

    >>> per_example_minimiser([[0.5, 0.3, 0.1, 0.1]], 0.6, [[1, 1, 0, 0]]).round(6)
    array([[0.142857, 0.      , 0.428571, 0.428571]])
    """
    y, c, _ = _coefficients(targets, alpha, mask, normalize)
    n = y.shape[0]
    live = y > 0
    tau = np.full(y.shape, np.inf)
    np.divide(c, y, out=tau, where=live)  # breakpoints; y_j <= 0: never active
    order = np.argsort(tau, axis=1, kind="stable")
    tau_s = np.take_along_axis(tau, order, axis=1)
    y_s = np.take_along_axis(np.where(live, y, 0.0), order, axis=1)
    c_s = np.take_along_axis(c, order, axis=1)
    y_cum, c_cum = np.cumsum(y_s, axis=1), np.cumsum(c_s, axis=1)
    # g at each breakpoint (the class at the breakpoint contributes 0 there); inf past the live classes
    finite = np.isfinite(tau_s)
    g = np.full(y.shape, np.inf)
    np.multiply(tau_s, y_cum, out=g, where=finite)
    np.subtract(g, c_cum, out=g, where=finite)
    active = np.count_nonzero(g < 1.0, axis=1)  # a prefix: g is increasing; >= 1 since g(tau_(1)) = 0
    rows = np.arange(n)
    s = (1.0 + c_cum[rows, active - 1]) / y_cum[rows, active - 1]
    return np.where(live, np.maximum(s[:, None] * y - c, 0.0), 0.0)


def leaves_topk(targets: ArrayLike, alpha: ArrayLike, mask: ArrayLike, *, normalize: bool = False) -> np.ndarray:
    r"""(n,) bool: whether the top class of :func:`per_example_minimiser` lies outside :math:`M`.

    The top class is the lowest index whose probability is within :data:`TOP_TOL` of the row's maximum
    (ties to the lowest index, as :func:`~robustdistill.algorithms.slam.topk_mask`). Always False for
    targets supported on :math:`M` (module docstring); arguments as :func:`per_example_minimiser`.

    >>> leaves_topk([[0.5, 0.3, 0.1, 0.1], [0.625, 0.375, 0.0, 0.0]], 0.6, [[1, 1, 0, 0]] * 2)
    array([ True, False])
    """
    f = per_example_minimiser(targets, alpha, mask, normalize=normalize)
    m = check_mask(mask, f.shape, "mask")
    top = np.argmax(f >= f.max(axis=1, keepdims=True) - TOP_TOL, axis=1)
    return m[np.arange(f.shape[0]), top] == 0
