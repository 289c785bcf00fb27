r"""Weighted Distillation (Iliopoulos et al., NeurIPS 2022): per-example weights of the student's loss.

The paper (paper): the teacher's labels on the unlabeled set :math:`S_u` can be wrong; the remedy is a
**debiasing reweighting** of the student's loss, one weight per example multiplying that example's loss,
estimated from a labeled validation set :math:`S_v`; hyper-parameter free; for hard and soft distillation.

The weight maps below are **our formulation** (``docs/theory/weighted.md#weighted-schemes``), functions of the estimated teacher
accuracy :math:`\alpha(x)` (:func:`robustdistill.algorithms.teacher_quality.fit_teacher_accuracy`):

==========  ====  ===============================================  ===========================
scheme      id    multiclass :math:`w(\alpha)`                     binary (:math:`\eta = 1-\alpha`)
==========  ====  ===============================================  ===========================
uniform     --    1 (vanilla distillation)                         1
accuracy    W1    :math:`\alpha`                                   :math:`1-\eta`
inverse     W2    :math:`(K-1)/(K\alpha-1)`                        :math:`1/(1-2\eta)`
signal      W3    :math:`\max(0, (K\alpha-1)/(K-1))`               :math:`\max(0, 1-2\eta)`
==========  ====  ===============================================  ===========================

W2 and W3 are 0 where :math:`\alpha \le 1/K` (at or below chance the teacher carries no usable signal); W2
uses :math:`\alpha_{\rm eff} = \max(\alpha, 1/K + \kappa)`, :math:`\kappa = 0.05`, so
:math:`w \le (K-1)/(K\kappa)`. Which scheme debiases depends on the loss (``docs/theory/weighted.md#weighted-massart-simulator``, shown by
``robustdistill verify``): inverse weights debias symmetric and linear losses exactly but hurt
cross-entropy; down-weighting noisy regions helps cross-entropy.

**Default scheme** (of :func:`distillation_weights` and of
:class:`~robustdistill.algorithms.methods.WeightedDistillation`): :data:`DEFAULT_SCHEME`, the best-ranked
weighting scheme of the Fashion-MNIST ablation, with :data:`DEFAULT_TARGETS` the targets of its winning row (``robustdistill bench realdata``: every scheme on soft and hard
targets and the debiased targets beside vanilla distillation, each (student, labeled-set size) cell ranked by
mean test accuracy; the ranks are in the benchmark's JSON and on its results page,
``docs/results/fashion_mnist.md``). Uniform weights are vanilla distillation: they stay a scheme of this
function (the simulators compare against them) but not of the method.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .typing import ArrayLike, FloatArray
from .validation import (
    MAX_TRANSITION_CONDITION,
    as_numpy,
    check_alpha,
    check_choice,
    check_condition,
    check_flag,
    check_int,
    check_probs,
    check_real,
    check_vector,
)

__all__ = [
    "DEFAULT_SCHEME",
    "DEFAULT_TARGETS",
    "KAPPA",
    "SCHEMES",
    "WEIGHTED_SCHEMES",
    "confidence_weights",
    "debiased_targets",
    "distillation_weights",
    "importance_targets",
    "normalize_weights",
]

#: The weight schemes of ``docs/theory/weighted.md#weighted-schemes``.
SCHEMES = ("uniform", "accuracy", "inverse", "signal")
#: The schemes of :class:`~robustdistill.algorithms.methods.WeightedDistillation` (uniform weights are vanilla).
WEIGHTED_SCHEMES = SCHEMES[1:]
#: The Fashion-MNIST ablation's best-ranked scheme (module docstring): re-run ``robustdistill bench realdata`` to
#: change it.
DEFAULT_SCHEME = "signal"
#: Floor above chance for W2 and the debiased targets: alpha_eff = max(alpha, 1/K + KAPPA).
KAPPA = 0.05
#: The targets of :class:`~robustdistill.algorithms.methods.WeightedDistillation` by default: the winning row of
#: the same ablation (the scheme on the teacher's hard labels).
DEFAULT_TARGETS = "hard"


def distillation_weights(
    alpha: ArrayLike, num_classes: int, scheme: str = DEFAULT_SCHEME, *, return_info: bool = False
) -> FloatArray | tuple[FloatArray, dict[str, Any]]:
    r"""Per-example weights :math:`w(\alpha(x))` of the student's loss, before normalisation.

    Args:
        alpha: (n,) estimated teacher accuracies in [0, 1].
        num_classes: K >= 2.
        scheme: ``"accuracy"`` (W1), ``"inverse"`` (W2), ``"signal"`` (W3) or ``"uniform"`` (all 1: vanilla
            distillation); default :data:`DEFAULT_SCHEME`; see the module docstring for the formulas (our
            formulation).
        return_info: also return diagnostics ``{"zeroed", "capped", "min", "median", "max"}``: how many
            weights were set to 0 (:math:`\alpha \le 1/K`), how many W2 weights were capped by the
            :math:`\kappa` floor, and the weight range.

    Returns:
        (n,) float64 weights >= 0 (and the diagnostics dict if ``return_info``). Hard labels: weight
        :math:`-\log f_{\tilde y}`; soft labels: weight the soft loss (or use :func:`debiased_targets`
        with weight 1 instead; the two are not combined by default). Normalise with
        :func:`normalize_weights`.

    Raises:
        ValueError: alpha not finite or outside [0, 1]; unknown scheme; all weights zero.

    >>> distillation_weights([0.9, 0.52, 0.2], 2, "inverse")  # 0.52 is floored to 1/2 + 0.05
    array([ 1.25, 10.  ,  0.  ])
    """
    a = check_alpha(alpha)
    k = check_int(num_classes, "num_classes", low=2)
    scheme = check_choice(scheme, "scheme", SCHEMES)
    return_info = check_flag(return_info, "return_info")
    chance = 1.0 / k
    zeroed = np.zeros(a.shape, dtype=bool)
    capped = np.zeros(a.shape, dtype=bool)
    if scheme == "uniform":
        w = np.ones_like(a)
    elif scheme == "accuracy":
        w = a.copy()
    elif scheme == "inverse":
        zeroed = a <= chance
        capped = ~zeroed & (a < chance + KAPPA)
        a_eff = np.maximum(a, chance + KAPPA)
        w = np.where(zeroed, 0.0, (k - 1.0) / (k * a_eff - 1.0))
    else:  # signal
        zeroed = a <= chance
        w = np.where(zeroed, 0.0, (k * a - 1.0) / (k - 1.0))
    if not np.any(w > 0):
        raise ValueError(
            f"alpha gives all-zero weights under scheme {scheme!r}: every teacher accuracy is at or below "
            f"chance (1/K = {chance:.4g}) or zero; there is no usable teacher signal"
        )
    if not return_info:
        return w
    info = {
        "scheme": scheme,
        "zeroed": int(zeroed.sum()),
        "capped": int(capped.sum()),
        "min": float(w.min()),
        "median": float(np.median(w)),
        "max": float(w.max()),
    }
    return w, info


def normalize_weights(weights: ArrayLike) -> FloatArray:
    r"""The default ``"mean1"`` normalisation (our formulation, ``docs/theory/weighted.md#weighted-normalisation``): :math:`w \leftarrow w\,|S_u|/\sum
    w` once, over the whole unlabeled set, so the effective learning rate stays comparable to vanilla
    distillation (a global rescale does not move the minimiser). The per-batch alternative
    :math:`\sum_B w_i\ell_i / \sum_B w_i` is a reduction, applied by the caller. ``weights``: (n,) finite,
    >= 0, not all 0 (huge ones are summed relative to their maximum, so the sum cannot overflow)."""
    w = check_vector(weights, "weights")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative")
    if not np.any(w > 0):
        raise ValueError("weights are all zero: nothing to normalise")
    if w.max() > np.finfo(np.float64).max / w.size:  # the sum could overflow: it is taken of w / max(w)
        w = w / w.max()
    return w / w.sum() * w.size  # w/total <= 1: no overflow for tiny totals


def confidence_weights(teacher_probs: ArrayLike, threshold: float = 0.9) -> FloatArray:
    r"""The confidence-thresholding baseline (our formulation, ``docs/theory/weighted.md#weighted-baselines``): :math:`w = 1[\max_j t_j \ge \tau]`,
    a 0/1 special case of weighting. Returns (n,) float64."""
    t = check_probs(teacher_probs, "teacher_probs")
    threshold = check_real(threshold, "threshold", low=0.0, high=1.0)
    return (t.max(axis=1) >= threshold).astype(np.float64)


def _clip_renormalise(p: FloatArray) -> FloatArray:
    p = np.clip(p, 0.0, None)
    return p / p.sum(axis=1, keepdims=True)


def debiased_targets(teacher_probs: ArrayLike, alpha: ArrayLike) -> FloatArray:
    r"""Soft targets with symmetric label noise inverted (our formulation, ``docs/theory/weighted.md#weighted-debiased-targets``).

    .. math::

        \hat p_j = \frac{(K-1)\,t_j - (1 - \alpha_{\rm eff})}{K\alpha_{\rm eff} - 1}, \qquad
        \alpha_{\rm eff} = \max(\alpha, 1/K + \kappa),

    binary form :math:`\hat p = (t - \eta)/(1 - 2\eta)`. Rows sum to 1 before clipping; negative entries
    (where :math:`t_j < (1-\alpha)/(K-1)`) are clipped at 0 and the row renormalised. :math:`\alpha = 1`
    gives :math:`\hat p = t`. If the teacher's soft label is :math:`t = a p + (1-a)(1-p)/(K-1)` (symmetric
    noise of accuracy :math:`a`), then :math:`\hat p = p` and soft cross-entropy against :math:`\hat p` is
    the importance-weighted risk of Liu & Tao (2016) with per-class weights :math:`\beta_j = \hat p_j/t_j`.

    Args:
        teacher_probs: (n, K) rows on the simplex.
        alpha: (n,) accuracies in [0, 1], or a scalar.

    Returns:
        (n, K) float64 rows on the simplex.
    """
    t = check_probs(teacher_probs, "teacher_probs")
    n, k = t.shape
    a = check_alpha(alpha, n, like="teacher_probs")
    a_eff = np.maximum(a, 1.0 / k + KAPPA)[:, None]
    return _clip_renormalise(((k - 1.0) * t - (1.0 - a_eff)) / (k * a_eff - 1.0))


def importance_targets(
    teacher_probs: ArrayLike, transition: ArrayLike, *, max_condition: float = MAX_TRANSITION_CONDITION
) -> FloatArray:
    r"""The importance-reweighting baseline (Liu & Tao 2016; our formulation of the adaptation, ``docs/theory/weighted.md#weighted-baselines``):
    :math:`\hat p = (T^\top)^{-1} t` per row, clipped at 0 and renormalised. Under symmetric noise
    (:math:`T = aI + (1-a)(\mathbf{1}\mathbf{1}^\top - I)/(K-1)`) it equals :func:`debiased_targets`.

    Args:
        teacher_probs: (n, K) rows on the simplex, read as the noisy posterior.
        transition: (K, K) row-stochastic :math:`T[i, j] = P(\text{teacher says } j \mid \text{true } i)`.

    Raises:
        ValueError: ``transition`` not row-stochastic or with condition number above ``max_condition``.
    """
    t = check_probs(teacher_probs, "teacher_probs")
    max_condition = check_real(max_condition, "max_condition", low=1.0)
    tm = check_transition(transition, t.shape[1], max_condition=max_condition, like="teacher_probs")
    return _clip_renormalise(np.linalg.solve(tm.T, t.T).T)


def check_transition(
    transition: ArrayLike, num_classes: int, *, max_condition: float | None = None, like: str = "the probabilities"
) -> FloatArray:
    """A (K, K) row-stochastic matrix (rows on the simplex within 1e-6), optionally well-conditioned; ``like``
    names the argument with the K classes."""
    tm = as_numpy(transition, "transition")
    if tm.shape != (num_classes, num_classes):
        raise ValueError(
            f"transition must have shape ({num_classes}, {num_classes}) (K x K, K = the classes of {like}), "
            f"got {tm.shape}"
        )
    tm = check_probs(tm, "transition")
    if max_condition is not None:
        check_condition(tm, "transition", max_condition=max_condition)
    return tm
