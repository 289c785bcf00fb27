r"""How often is the teacher right? Teacher-accuracy estimates from a small labeled validation set.

Every method of the toolkit measures the teacher on a labeled validation set :math:`S_v` that is used for
nothing else (paper: Weighted Distillation's :math:`S_v`, SLaM's :math:`V`, RAD's validation set). This
module holds all of that logic, once:

- :func:`fit_teacher_accuracy`: a per-example accuracy :math:`\alpha(x) = P(y = \tilde y(x) \mid x)` by
  isotonic regression of the teacher's correctness on its margin (our formulation, ``docs/theory/weighted.md#weighted-accuracy-fit``
  §2.1). Used by Weighted Distillation's weights and SLaM's mixing.
- :func:`binned_accuracy`: equal-mass bins with Wilson, Hoeffding and Clopper-Pearson intervals, for plots
  and diagnostics (our formulation, ``docs/theory/weighted.md#weighted-binned-accuracy``).
- :func:`choose_top_k`: SLaM's top-k set size (our formulation, ``docs/theory/slam.md#slam-estimation``).
- :func:`estimate_mistakes`: RAD's number of teacher mistakes on the pool (our formulation,
  ``docs/theory/rad.md#rad-mistakes``).
- :func:`estimate_candidate_mistakes`: RAD's teacher mistakes among the highest-gain pool points only, from
  an isotonic fit of the teacher's correctness on the student's gain (our formulation).
- :func:`estimate_transition`: the noise transition matrix for the forward/backward-correction baselines
  (our formulation, ``docs/theory/noise.md#noise-transition``).
- :func:`split_validation`: carve that validation set out of a labeled set (stratified by class).

The teacher's hard label is :math:`\tilde y = \arg\max_j t_j` with ties going to the lowest index.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.optimize import isotonic_regression

from .results import Result
from .typing import ArrayLike, FloatArray, IntArray, RNGLike
from .validation import (
    as_real_array,
    check_array,
    check_choice,
    check_flag,
    check_int,
    check_labels,
    check_probs,
    check_real,
    check_rng,
    check_vector,
    describe,
)

__all__ = [
    "FEATURES",
    "MIN_DELTA",
    "BinnedAccuracy",
    "TeacherAccuracy",
    "binned_accuracy",
    "choose_top_k",
    "clopper_pearson",
    "estimate_candidate_mistakes",
    "estimate_mistakes",
    "estimate_transition",
    "fit_teacher_accuracy",
    "split_validation",
    "teacher_feature",
    "transition_from_cleanlab",
]

#: The smallest miss probability ``delta`` of the intervals (and ``upper`` of :func:`estimate_mistakes`):
#: the Beta and normal quantiles lose float64 accuracy (and become NaN) far below it.
MIN_DELTA = 1e-12

#: The trust features, each "higher = more trusted".
FEATURES = ("margin", "confidence", "entropy")


def teacher_feature(teacher_probs: ArrayLike, feature: str = "margin") -> FloatArray:
    r"""A per-example trust score of the teacher, higher = more trusted (our formulation).

    - ``margin``: :math:`t_{(1)} - t_{(2)}`, the gap between the two largest probabilities (default);
    - ``confidence``: :math:`\max_j t_j`;
    - ``entropy``: :math:`1 - H(t)/\log K`.

    Args:
        teacher_probs: (n, K) rows on the simplex.
    Returns:
        (n,) float64 in [0, 1]. O(nK).
    """
    feature = _check_feature(feature)
    t = check_probs(teacher_probs, "teacher_probs")
    return _feature(t, feature)


def _check_feature(feature: str) -> str:
    return check_choice(feature, "feature", FEATURES)


def _feature(t: FloatArray, feature: str) -> FloatArray:
    feature = _check_feature(feature)
    if feature == "margin":
        top2 = -np.partition(-t, 1, axis=1)[:, :2]
        return np.clip(top2[:, 0] - top2[:, 1], 0.0, 1.0)
    if feature == "confidence":
        return np.clip(t.max(axis=1), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0)
    return np.clip(1.0 + plogp.sum(axis=1) / np.log(t.shape[1]), 0.0, 1.0)


def _validation_set(teacher_probs_val: ArrayLike, labels_val: ArrayLike) -> tuple[FloatArray, IntArray]:
    t = check_probs(teacher_probs_val, "teacher_probs_val")
    y = check_labels(labels_val, t.shape[0], t.shape[1], "labels_val", like="teacher_probs_val")
    return t, y


def _correct(t: FloatArray, y: IntArray) -> FloatArray:
    """1[argmax_j t_j == y] (ties to the lowest index), as float64 (n,)."""
    return (np.argmax(t, axis=1) == y).astype(np.float64)


def clopper_pearson(successes: ArrayLike, trials: ArrayLike, delta: float, *, side: str = "two-sided"):
    r"""Exact (Clopper-Pearson) confidence bounds for binomial proportions, vectorized.

    ``two-sided``: :math:`[B(\delta/2; k, n-k+1),\ B(1-\delta/2; k+1, n-k)]`, :math:`B` the Beta
    quantile, the interval of ``scipy.stats.binomtest(k, n).proportion_ci(1 - delta, "exact")``;
    ``upper``: the one-sided upper bound :math:`B(1-\delta; k+1, n-k)` (1 when k = n).

    Args:
        successes: counts k, integers >= 0 (a scalar or an array).
        trials: counts n >= k, integers >= 1, of the shape of ``successes`` (or broadcast with it).
        delta: the miss probability, in [:data:`MIN_DELTA`, 1).
        side: ``"two-sided"`` or ``"upper"``.

    Returns ``(low, high)`` float64 arrays of that shape (``upper``: ``low`` is 0).
    """
    k = _counts(successes, "successes")
    n = _counts(trials, "trials")
    try:
        k, n = np.broadcast_arrays(k, n)
    except ValueError:
        raise ValueError(f"successes and trials must have the same shape, got {k.shape} and {n.shape}") from None
    if np.any(n < 1) or np.any(k > n):
        raise ValueError("trials must be >= 1 and >= successes (k successes out of n trials)")
    delta = check_real(delta, "delta", low=MIN_DELTA, high=1.0, high_open=True)
    side = check_choice(side, "side", ("two-sided", "upper"))
    q = delta / 2 if side == "two-sided" else delta
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, stats.beta.ppf(q, k, n - k + 1), 0.0) if side == "two-sided" else np.zeros_like(k)
        high = np.where(k < n, stats.beta.ppf(1 - q, k + 1, n - k), 1.0)
    return low, high


def _counts(x: ArrayLike, name: str) -> FloatArray:
    """Non-negative integer counts (integer dtype, or floats with integral values), as float64."""
    arr = as_real_array(x, name)
    if arr.dtype == np.bool_:
        raise TypeError(f"{name} must hold integer counts, got dtype bool")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr) & (arr >= 0) & (arr == np.floor(arr)) & (arr <= 2.0**53)):
        raise ValueError(f"{name} must hold integer counts in [0, 2**53]")
    return arr


# --------------------------------------------------------------------------------------------------------
# Isotonic accuracy fit


@dataclass(frozen=True, eq=False)
class TeacherAccuracy(Result):
    r"""A fitted monotone map from the teacher's trust feature to its accuracy :math:`\alpha(x)`.

    Attributes:
        feature: the feature it was fitted on (``margin``, ``confidence`` or ``entropy``).
        knots_x: (U,) increasing feature values (the endpoints of the PAVA blocks).
        knots_y: (U,) non-decreasing accuracies at the knots, in :math:`[1/(n_v+2), (n_v+1)/(n_v+2)]`.
        n_val: number of validation examples :math:`n_v`.
        num_classes: K of the teacher's probabilities.
    """

    feature: str
    knots_x: FloatArray
    knots_y: FloatArray
    n_val: int
    num_classes: int

    def predict(self, teacher_probs: ArrayLike) -> FloatArray:
        r""":math:`\alpha(x)` for any points: linear interpolation between the knots, constant beyond the
        observed range. ``teacher_probs``: (n, K) rows on the simplex with the fitted K. Returns (n,) in
        [0, 1]; O(n (K + log U))."""
        t = check_probs(teacher_probs, "teacher_probs")
        if t.shape[1] != self.num_classes:
            raise ValueError(
                f"teacher_probs has {t.shape[1]} classes but the accuracy was fitted on {self.num_classes}"
            )
        return self.predict_feature(_feature(t, self.feature))

    def predict_feature(self, values: ArrayLike) -> FloatArray:
        """The fitted accuracy at given finite feature values (n,) (e.g. for a plot of the fit)."""
        s = as_real_array(values, "values").astype(np.float64)
        if not np.all(np.isfinite(s)):
            raise ValueError("values must be finite")
        return np.interp(s, self.knots_x, self.knots_y)


def fit_teacher_accuracy(
    teacher_probs_val: ArrayLike, labels_val: ArrayLike, feature: str = "margin"
) -> TeacherAccuracy:
    r"""Fit the teacher's accuracy as a monotone function of its trust feature (our formulation).

    Isotonic regression (PAVA) of the correctness :math:`c_i = 1[\arg\max t(x_i) = y_i]` on the feature
    :math:`s_i` (``docs/theory/weighted.md#weighted-accuracy-fit``):

    1. pool ties: unique values :math:`u_1 < \dots < u_U` with counts :math:`n_u` and successes
       :math:`k_u`; PAVA on :math:`k_u/n_u` with weights :math:`n_u`;
    2. each PAVA block :math:`B` gets the Laplace mean :math:`(k_B + 1)/(n_B + 2)` (a fixed Beta(1, 1)
       prior: never exactly 0 or 1);
    3. a second PAVA on the block means with weights :math:`n_B + 2` restores monotonicity.

    Parameter-free: no bins, no bandwidth. Monotone non-decreasing in the feature, values in
    :math:`[1/(n_v+2), (n_v+1)/(n_v+2)]`. Cost O(n_v (K + log n_v)).

    Args:
        teacher_probs_val: (n_v, K) teacher probabilities on the validation set, rows on the simplex.
        labels_val: (n_v,) true labels in 0..K-1.
        feature: ``"margin"`` (default), ``"confidence"`` or ``"entropy"``; see :func:`teacher_feature`.

    Returns:
        :class:`TeacherAccuracy` with ``.predict(teacher_probs)``.

    Raises:
        ValueError: fewer than 2 examples, rows off the simplex, labels out of range or of another length.
        A ``UserWarning`` is emitted when ``n_v < 100`` (the fit is then coarse).
    """
    feature = _check_feature(feature)
    t, y = _validation_set(teacher_probs_val, labels_val)
    n_val, num_classes = t.shape
    if n_val < 2:
        raise ValueError(f"teacher_probs_val needs at least 2 examples to fit an accuracy, got {n_val}")
    if n_val < 100:
        warnings.warn(
            f"fit_teacher_accuracy: only {n_val} validation examples; the accuracy fit is coarse "
            "(at least 100 recommended)",
            UserWarning,
            stacklevel=2,
        )
    s = _feature(t, feature)
    u, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    successes = np.bincount(inverse, weights=_correct(t, y), minlength=u.size)
    first = isotonic_regression(successes / counts, weights=counts.astype(np.float64), increasing=True)
    starts = first.blocks[:-1]
    block_n = np.add.reduceat(counts.astype(np.float64), starts)
    block_k = np.add.reduceat(successes, starts)
    laplace = (block_k + 1.0) / (block_n + 2.0)
    smoothed = isotonic_regression(laplace, weights=block_n + 2.0, increasing=True).x
    # Knots: the first and last unique value of each block (the interpolation through every unique value
    # is the same piecewise-linear function, since values are constant inside a block).
    ends = first.blocks[1:] - 1
    knots_idx = np.unique(np.concatenate([starts, ends]))
    block_of = np.repeat(np.arange(starts.size), np.diff(first.blocks))
    return TeacherAccuracy(feature, u[knots_idx], smoothed[block_of[knots_idx]], int(n_val), int(num_classes))


# --------------------------------------------------------------------------------------------------------
# Binned diagnostics


@dataclass(frozen=True, eq=False)
class BinnedAccuracy(Result):
    r"""Equal-mass bins of the validation feature with per-bin accuracy and intervals.

    Attributes (each of shape (B,)):
        low, high: the feature range of each bin; counts :math:`n_b`; successes :math:`k_b`;
        accuracy :math:`\hat a_b = k_b/n_b`;
        wilson_low, wilson_high: Wilson score interval (approximate: diagnostics only);
        hoeffding_radius: :math:`\sqrt{\log(2B/\delta)/(2 n_b)}`, simultaneous over the B bins;
        exact_low, exact_high: Clopper-Pearson interval (exact, per bin).
        feature, delta: as given.
    """

    feature: str
    delta: float
    low: FloatArray
    high: FloatArray
    counts: IntArray
    successes: IntArray
    accuracy: FloatArray
    wilson_low: FloatArray
    wilson_high: FloatArray
    hoeffding_radius: FloatArray
    exact_low: FloatArray
    exact_high: FloatArray


def binned_accuracy(
    teacher_probs_val: ArrayLike,
    labels_val: ArrayLike,
    feature: str = "margin",
    n_bins: int | None = None,
    delta: float = 0.05,
) -> BinnedAccuracy:
    r"""Teacher accuracy in equal-mass bins of the feature, with intervals (our formulation, §2.2).

    Bins: the validation points sorted by feature, cut into ``n_bins`` consecutive groups of sizes that
    differ by at most one; default ``n_bins = max(1, min(20, floor(n_v/100)))``. Per bin:

    - Wilson (:math:`z = \Phi^{-1}(1-\delta/2)`): center :math:`(\hat a + z^2/2n)/(1 + z^2/n)`,
      half-width :math:`z/(1 + z^2/n)\sqrt{\hat a(1-\hat a)/n + z^2/4n^2}`;
    - Hoeffding, simultaneous over the :math:`B` bins: :math:`|\hat a_b - a_b| \le
      \sqrt{\log(2B/\delta)/(2 n_b)}` with probability :math:`\ge 1-\delta` (Lemma 7, our formulation);
    - Clopper-Pearson (exact).

    Guarantees and statistical tests use Hoeffding or Clopper-Pearson, never Wilson: Wilson is
    approximate and under-covers for small bins.
    """
    feature = _check_feature(feature)
    t, y = _validation_set(teacher_probs_val, labels_val)
    n_val = t.shape[0]
    if n_bins is None:
        n_bins = max(1, min(20, n_val // 100))
    n_bins = check_int(n_bins, "n_bins", low=1, high=n_val, hint=" (teacher_probs_val has that many rows)")
    delta = check_real(delta, "delta", low=MIN_DELTA, high=1.0, high_open=True)
    s = _feature(t, feature)
    order = np.argsort(s, kind="stable")
    groups = np.array_split(order, n_bins)
    starts = np.cumsum([0] + [g.size for g in groups[:-1]])
    s_sorted, c_sorted = s[order], _correct(t, y)[order]
    counts = np.array([g.size for g in groups], dtype=np.int64)
    successes = np.add.reduceat(c_sorted, starts).round().astype(np.int64)
    low = s_sorted[starts]
    high = s_sorted[starts + counts - 1]
    acc = successes / counts
    z = float(stats.norm.ppf(1 - delta / 2))
    center = (acc + z**2 / (2 * counts)) / (1 + z**2 / counts)
    half = z / (1 + z**2 / counts) * np.sqrt(acc * (1 - acc) / counts + z**2 / (4 * counts**2))
    radius = np.sqrt(np.log(2 * n_bins / delta) / (2 * counts))
    exact_low, exact_high = clopper_pearson(successes, counts, delta)
    return BinnedAccuracy(
        feature,
        float(delta),
        low,
        high,
        counts,
        successes,
        acc,
        center - half,
        center + half,
        radius,
        exact_low,
        exact_high,
    )


# --------------------------------------------------------------------------------------------------------
# SLaM's k and RAD's m


def _true_label_rank(t: FloatArray, y: IntArray) -> IntArray:
    """Position of the true label in the teacher's order (0 = top), ties to the lower index as in
    ``slam.topk_mask``: #{j: t_j > t_y} + #{j < y: t_j = t_y}."""
    ty = np.take_along_axis(t, y[:, None], axis=1)
    lower = np.arange(t.shape[1])[None, :] < y[:, None]
    return ((t > ty) | ((t == ty) & lower)).sum(axis=1)


def choose_top_k(teacher_probs_val: ArrayLike, labels_val: ArrayLike, target: float = 0.9) -> int:
    r"""SLaM's k: the smallest :math:`k \in \{2, \dots, K\}` whose top-k accuracy on the validation set is
    at least ``target``, or K if none is (our formulation, ``docs/theory/slam.md#slam-estimation``). Binary tasks give 2.

    Top-k accuracy counts the true label inside the teacher's k largest probabilities, ties going to the
    lower class index exactly as :func:`robustdistill.algorithms.slam.topk_mask`.
    """
    t, y = _validation_set(teacher_probs_val, labels_val)
    target = check_real(target, "target", low=0.0, high=1.0, low_open=True)
    num_classes = t.shape[1]
    rank = _true_label_rank(t, y)
    topk_acc = np.cumsum(np.bincount(rank, minlength=num_classes)) / t.shape[0]  # [k-1] = top-k accuracy
    ok = np.flatnonzero(topk_acc[1:] >= target - 1e-12)
    return int(ok[0] + 2) if ok.size else int(num_classes)


def estimate_mistakes(
    teacher_probs_val: ArrayLike, labels_val: ArrayLike, pool_size: int, *, upper: float | None = None
) -> int:
    r"""RAD's number of teacher mistakes on a pool of ``pool_size`` points (our formulation, ``docs/theory/rad.md#rad-mistakes``
    §6; the paper estimates m from a validation set (paper)).

    :math:`m = \lfloor (1 - \widehat{acc})\,N + 1/2 \rfloor` with :math:`\widehat{acc}` the teacher's
    validation accuracy, clipped to :math:`[0, N]`. With ``upper=delta`` (in [:data:`MIN_DELTA`, 1)) the error
    rate is replaced by its one-sided Clopper-Pearson upper bound at level ``delta`` and rounded up: a
    conservative m. ``pool_size`` is an int in [0, 2**53].
    """
    t, y = _validation_set(teacher_probs_val, labels_val)
    pool_size = check_int(pool_size, "pool_size", low=0)
    errors = t.shape[0] - _correct(t, y).sum()
    if upper is None:
        m = np.floor(errors / t.shape[0] * pool_size + 0.5)
    else:
        upper = check_real(upper, "upper", low=MIN_DELTA, high=1.0, high_open=True)
        _, high = clopper_pearson(errors, t.shape[0], upper, side="upper")
        m = np.ceil(float(high) * pool_size - 1e-9)
    return int(np.clip(m, 0, pool_size))


def estimate_candidate_mistakes(
    gains_val: ArrayLike,
    teacher_correct_val: ArrayLike,
    gains_pool: ArrayLike,
    budget: int,
    *,
    candidates: int | None = None,
) -> int:
    r"""RAD's teacher mistakes among the pool points the game could pick: the expected number of teacher
    errors among the ``candidates`` highest-gain pool points (our formulation).

    **Why.** :func:`estimate_mistakes` scales the validation error rate to the whole pool, so
    :math:`m \approx (1 - \widehat{acc}) N` is often many times the budget b and RAD's law :math:`p^*` is nearly
    uniform. But the game :math:`\max_p \min_r \sum_i p_i g_i (1 - r_i)` puts its mass on a top-gain
    prefix (:math:`p^*_i = \min(1, t^*/g_i)` on the highest gains,
    :mod:`~robustdistill.algorithms.query_game`), and a mistake on a point outside the points the learner
    could pick (:math:`p_i = 0`) does not lower :math:`\sum_i p_i g_i (1 - r_i)`. What matters is the number
    of mistakes among the candidates, and the teacher's error there may differ from its pool-wide rate
    (hard points for the student are often hard for the teacher).

    **Estimate.** On the labeled validation set :math:`V` (whose teacher answers are already paid for) with
    student gains :math:`g^V_i` and teacher correctness :math:`c_i \in \{0, 1\}`, fit the teacher's accuracy
    as a non-increasing function of the student's gain by isotonic regression (PAVA, the
    ``scipy.optimize.isotonic_regression`` that :func:`fit_teacher_accuracy` uses; tied gains pooled):

    .. math:: \hat a = \arg\min_{a \text{ non-increasing}} \sum_{i \in V} (c_i - a(g^V_i))^2,

    evaluated at pool gains by linear interpolation between the fitted values at the validation gains
    (constant beyond their range). With :math:`C` the ``candidates`` pool points of highest gain,

    .. math:: m = \Big\lfloor \sum_{j \in C} \big(1 - \hat a(g_j)\big) + \tfrac12 \Big\rfloor \in [0, |C|].

    The sum does not depend on how ties at the :math:`|C|`-th gain are broken (tied gains share one
    :math:`\hat a`). The teacher's answers on the pool are not used (they are not paid for).

    Choices, and their limits:

    - **Non-increasing, fixed.** When the data contradict it (errors concentrated on low gains) PAVA pools
      everything into the validation error rate: the estimate is then :math:`|C|` times the pool-level rate
      of :func:`estimate_mistakes`, never lower. PAVA keeps the mean, so the fit averages to the validation
      accuracy.
    - **Plug-in, no smoothing** (unlike :func:`fit_teacher_accuracy`'s Laplace blocks), like
      :func:`estimate_mistakes`: a teacher with no validation error gives 0. With few validation points the
      fit at the top gains rests on few examples, and PAVA's boundary effect (the fit at the highest gains
      is the lowest mean accuracy of a top-gain tail, often a handful of points) biases m upwards: with
      errors independent of the gain, b = 20 and a pool of 2000, m averaged about 2.5x (:math:`|V| = 100`) to 1.7x
      (:math:`|V| = 1000`) the true expected errors among the 2b candidates in a simulation; conservative, and
      still far below the pool-level m.
    - **candidates = 2b by default**, capped at the pool size: the points the game could pick are the top of
      the gain order; 2b covers the b points a greedy rule would take plus as many again for the spread that
      the mistakes force. It is a heuristic cut: with the resulting m the support of :math:`p^*` can still
      exceed 2b (compare ``support_size`` in RAD's diagnostics).

    Args:
        gains_val: (n_v,) the student's gains on the validation set (higher = more informative), finite.
        teacher_correct_val: (n_v,) 1 where the teacher's hard label on the validation point is right, 0
            where it is wrong (bool, or 0/1 numbers).
        gains_pool: (n,) the student's gains on the pool (same gain kind), finite.
        budget: b >= 0, the round's budget.
        candidates: how many top-gain pool points count, >= 0 (default ``2 * budget``); capped at n.

    Returns:
        m, an int in [0, min(candidates, n)]. Cost O(n_v log n_v + n log n_v).

    Raises:
        ValueError: an argument of the wrong shape, non-finite, lengths of ``gains_val`` and
            ``teacher_correct_val`` that differ, correctness values other than 0/1, a negative ``budget``
            or ``candidates``. TypeError: non-numeric arrays, a non-integer ``budget`` or ``candidates``.

    >>> estimate_candidate_mistakes([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 1], [0.05, 0.5, 0.85, 0.95], budget=1)
    1
    """
    g_val = check_vector(gains_val, "gains_val")
    correct = as_real_array(teacher_correct_val, "teacher_correct_val")
    if correct.ndim != 1 or correct.shape[0] != g_val.size:
        raise ValueError(
            f"teacher_correct_val must be 1-D of the length of gains_val ({g_val.size},), got shape {correct.shape}"
        )
    correct = correct.astype(np.float64)
    if not np.all((correct == 0.0) | (correct == 1.0)):
        bad = int(np.flatnonzero((correct != 0.0) & (correct != 1.0))[0])
        raise ValueError(f"teacher_correct_val must hold only 0/1 (or booleans); found {correct[bad]!r} at index {bad}")
    g_pool = check_vector(gains_pool, "gains_pool")
    budget = check_int(budget, "budget", low=0)
    n = g_pool.size
    c = 2 * budget if candidates is None else check_int(candidates, "candidates", low=0)
    c = min(c, n)
    if c == 0:
        return 0
    u, inverse, counts = np.unique(g_val, return_inverse=True, return_counts=True)
    successes = np.bincount(inverse, weights=correct, minlength=u.size)
    fitted = isotonic_regression(successes / counts, weights=counts.astype(np.float64), increasing=False).x
    top = np.partition(g_pool, n - c)[n - c :]  # the c largest gains (their values: ties do not matter)
    errors = float(np.sum(1.0 - np.clip(np.interp(top, u, fitted), 0.0, 1.0)))
    return int(np.clip(np.floor(errors + 0.5), 0, c))


# --------------------------------------------------------------------------------------------------------
# Noise transition matrix


def estimate_transition(teacher_probs_val: ArrayLike, labels_val: ArrayLike, *, smoothing: float = 1.0):
    r"""The teacher's noise transition matrix :math:`T[i, j] = P(\text{teacher says } j \mid \text{true }
    i)` (row-stochastic, the Conventions' orientation), as row-normalised confusion counts of
    :math:`(y, \tilde y)` with add-``smoothing`` (default add-one; finite, >= 0) smoothing (our formulation,
    ``docs/theory/noise.md#noise-transition``). Returns (K, K) float64."""
    t, y = _validation_set(teacher_probs_val, labels_val)
    smoothing = check_real(smoothing, "smoothing", low=0.0)
    num_classes = t.shape[1]
    counts = np.zeros((num_classes, num_classes))
    np.add.at(counts, (y, np.argmax(t, axis=1)), 1.0)
    if smoothing > 1.0:  # counts / smoothing + 1 (the same ratios): a huge smoothing cannot overflow the sums
        counts = counts / smoothing + 1.0
    else:
        counts += smoothing
    totals = counts.sum(axis=1, keepdims=True)
    if np.any(totals == 0):
        missing = np.flatnonzero(totals[:, 0] == 0).tolist()
        raise ValueError(f"labels_val has no example of classes {missing} and smoothing is 0")
    return counts / totals


def transition_from_cleanlab(noise_matrix: ArrayLike) -> FloatArray:
    r"""Convert cleanlab's ``noise_matrix`` (``P(given label = i | true label = j)`` at ``[i, j]``, columns
    sum to 1) to this toolkit's row-stochastic :math:`T[i, j] = P(\text{teacher says } j \mid \text{true }
    i)`: the transpose."""
    arr = check_array(noise_matrix, "noise_matrix", ("K", "K"))
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"noise_matrix must be square (K, K), got shape {arr.shape}")
    return check_probs(arr.T, "noise_matrix (transposed: columns must sum to 1)").copy()


# --------------------------------------------------------------------------------------------------------
# Carving the validation set out of a labeled set


def _validation_size(validation: object, n: int) -> int:
    """The number of validation rows: an int count in [1, n - 1], or ceil(fraction * n) for a fraction in
    (0, 1) (the ``test_size`` convention of scikit-learn's ``train_test_split``), which must also land in
    [1, n - 1]."""
    if isinstance(validation, (bool, np.bool_)) or not isinstance(validation, numbers.Real):
        raise TypeError(
            f"validation must be an int count >= 1 or a float fraction in (0, 1), got {type(validation).__name__}"
        )
    if isinstance(validation, numbers.Integral):
        size = int(validation)
        if not 1 <= size <= n - 1:
            raise ValueError(
                f"validation must be a count in [1, n - 1] = [1, {n - 1}] (at least one row must stay for "
                f"training), got {describe(size)}"
            )
        return size
    fraction = float(validation)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation as a fraction must lie in (0, 1), got {validation!r}")
    # ceil, guarded against round-off (0.3 * 10 = 3.0000000000000004 must give 3, not 4)
    size = max(1, math.ceil(fraction * n * (1.0 - 1e-12)))
    if size > n - 1:
        raise ValueError(
            f"validation = {fraction!r} of n = {n} rows gives {size} validation rows, leaving none for "
            "training; use a smaller fraction or more labeled rows"
        )
    return size


def _stratified_counts(counts: IntArray, size: int, gen: np.random.Generator) -> IntArray:
    """Per-class validation counts: proportional allocation by largest remainders (ties in the remainder
    broken uniformly with ``gen``), then at least one for every class with >= 2 rows when ``size`` allows,
    each unit taken from the class most above its quota."""
    n = int(counts.sum())
    quota = size * counts / n
    alloc = np.floor(quota).astype(np.int64)
    extra = size - int(alloc.sum())
    if extra:
        order = np.lexsort((gen.random(counts.size), -(quota - alloc)))  # largest remainder first
        alloc[order[:extra]] += 1
    low = ((counts >= 2) & (np.count_nonzero(counts >= 2) <= size)).astype(np.int64)
    for c in np.flatnonzero(alloc < low):
        over = np.where(alloc > low, alloc - quota, -np.inf)
        donor = int(np.argmax(over))  # exists: sum(low) <= size = sum(alloc) and class c is below low
        alloc[donor] -= 1
        alloc[c] += 1
    return alloc


def split_validation(
    labels: ArrayLike, validation: int | float, *, rng: RNGLike = None, stratify: bool = True
) -> tuple[IntArray, IntArray]:
    r"""Split a labeled set into training rows and a held-out validation set (our formulation).

    **What the validation set is for.** Every teacher-quality estimate of the toolkit is measured on a
    labeled set used for nothing else: the per-example accuracy :math:`\alpha(x)` of Weighted Distillation
    and SLaM (:func:`fit_teacher_accuracy`), SLaM's top-k size (:func:`choose_top_k`), RAD's number of
    teacher mistakes on the pool (:func:`estimate_mistakes`) and the noise transition matrix of the
    forward/backward-correction baselines (:func:`estimate_transition`). Training the student (or the
    teacher) on these rows would bias all of them.

    **With very few labels.** The isotonic :math:`\alpha(x)` becomes a coarse step function (few PAVA
    blocks; :func:`fit_teacher_accuracy` warns below 100 rows), and ``k`` and ``m`` become noisy: the
    teacher's accuracy :math:`a` is estimated with binomial standard error

    .. math:: \mathrm{se}(\hat a) = \sqrt{a (1 - a) / |V|},

    e.g. about 0.045 at :math:`a = 0.8`, :math:`|V| = 80`, so an m of about :math:`(1 - \hat a) N` is
    uncertain by :math:`\pm 0.045 N` at one standard error. Keep at least a few dozen validation rows per
    class where possible, and use ``estimate_mistakes(..., upper=delta)`` (a one-sided Clopper-Pearson
    bound) for a conservative m.

    **Allocation.** ``stratify=True``: each class :math:`c` with :math:`n_c` rows gets
    :math:`\lfloor |V| n_c / n \rfloor` validation rows plus one more for the classes with the largest
    remainders (Hamilton's method; ties broken with ``rng``), then every class with :math:`n_c \ge 2` gets at
    least one when :math:`|V|` is at least the number of such classes (each unit taken from the class most
    above its quota). The rows of a class are drawn uniformly with ``rng``. ``stratify=False``: a uniform
    :math:`|V|`-subset. O(n log n).

    Args:
        labels: (n,) non-negative integer class labels (any integer dtype; the classes need not be 0..K-1),
            n >= 2.
        validation: the validation size: an int count in [1, n - 1], or a float fraction in (0, 1), giving
            :math:`\lceil \text{fraction} \cdot n \rceil` rows (scikit-learn's ``test_size`` convention),
            which must also lie in [1, n - 1].
        rng: seed or Generator (the repository's ``rng`` contract; no global RNG).
        stratify: allocate per class (default) or draw a uniform subset.

    Returns:
        ``(train_indices, validation_indices)``: sorted int64 arrays, disjoint, together covering
        0..n-1, of sizes ``n - |V|`` and ``|V|``.

    Raises:
        ValueError: labels not 1-D, with fewer than 2 rows or with negative values; ``validation`` out of
            range. TypeError: labels not integers, ``validation`` neither an int nor a float.

    >>> train, val = split_validation([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], 5, rng=0)
    >>> val.size, np.bincount(np.asarray([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])[val]).tolist()
    (5, [2, 3])
    """
    y = as_real_array(labels, "labels")
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D of shape (n,), got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) and not np.issubdtype(y.dtype, np.bool_)):
        raise TypeError(f"labels must hold non-negative integers, got dtype {y.dtype}")
    n = y.size
    if n < 2:
        raise ValueError(f"labels must have at least 2 rows (one for training, one for validation), got {n}")
    if y.min() < 0:
        bad = int(np.flatnonzero(y < 0)[0])
        raise ValueError(f"labels must be non-negative; found {int(y[bad])} at index {bad}")
    size = _validation_size(validation, n)
    stratify = check_flag(stratify, "stratify")
    gen = check_rng(rng)
    chosen = np.zeros(n, dtype=bool)
    if not stratify:
        chosen[gen.choice(n, size=size, replace=False)] = True
    else:
        classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        alloc = _stratified_counts(counts, size, gen)
        perm = gen.permutation(n)
        order = perm[np.argsort(inverse[perm], kind="stable")]  # grouped by class, random within a class
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        cls = inverse[order]
        rank = np.arange(n) - starts[cls]
        chosen[order[rank < alloc[cls]]] = True
    return np.flatnonzero(~chosen).astype(np.int64), np.flatnonzero(chosen).astype(np.int64)
