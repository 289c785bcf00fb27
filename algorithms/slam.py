r"""SLaM, Student-Label Mixing (Kontonis et al., NeurIPS 2023): the numpy reference of the mixing operation.

SLaM is a **forward loss-adjustment** method (paper): it keeps the teacher's soft label :math:`y_s(x)` and
passes the **student's own prediction** :math:`f` through a mixing operation built from its complement
:math:`1 - f`, the teacher's top-k indicator :math:`M(x)` and a per-example teacher accuracy
:math:`\alpha(x)` (paper). The two forms (``docs/theory/slam.md#slam-forward-loss``):

.. math::

    \mathrm{mix}(f)   &= \alpha f + (1-\alpha)(1-f) \odot M/(k-1)   \qquad \text{normalised, (2)} \\
    \mathrm{mix}'(f)  &= \alpha f + (1-\alpha)(1-f) \odot M         \qquad \text{un-normalised, (2')}

The paper's experiments use (2'); its appendix (Remark B.1) says that leaving out the normalisation by
:math:`k - 1` worked better overall (paper). The loss is :math:`-\sum_i y_{s,i} \log \mathrm{mix}_i(f)`
(our formulation), computed from logits in :func:`robustdistill.algorithms.losses.slam_loss`; this module
is the probability-domain reference used by the tests and the simulators.

The target :math:`y_s` (our formulation; :func:`slam_targets`). SLaM's noise model puts the teacher's label
inside :math:`M`, and for such targets the per-example minimiser of (2') keeps the target's top class. A
teacher's *soft* probabilities put mass outside :math:`M` too; there (2') rewards off-:math:`M` mass at slope
:math:`\alpha` against :math:`2\alpha - 1` on :math:`M`, and the minimiser's top class can leave :math:`M`
(:func:`robustdistill.theory.slam_risk.per_example_minimiser`). So SLaM's targets live on :math:`M`: by
default the teacher's hard label (``"hard"``, the sampled label of the theory), or its probabilities
restricted to :math:`M` and renormalised (``"topk"``); ``"soft"`` (the probabilities as they are) is an
option. The default is the winner of the Fashion-MNIST ablation (``robustdistill bench realdata``,
``docs/results/fashion_mnist.md``).

Lower bound on :math:`\alpha` (our formulation): (2') needs :math:`\alpha \ge 1/2` (below it the top-k
entries decrease in :math:`f_i`); (2) needs :math:`\alpha > 1/k`. :func:`clip_alpha` applies the toolkit's
default floor 0.6.
"""

from __future__ import annotations

import numbers

import numpy as np

from .typing import ArrayLike, FloatArray
from .validation import (
    as_real_array,
    check_alpha,
    check_choice,
    check_flag,
    check_int,
    check_probs,
    check_real,
    describe,
)

__all__ = [
    "DEFAULT_ALPHA_FLOOR",
    "DEFAULT_TARGETS",
    "TARGETS",
    "check_mask",
    "clip_alpha",
    "mix",
    "slam_targets",
    "topk_mask",
]

#: Default lower bound ``lb`` on alpha for the un-normalised mix (2') (our formulation, ``docs/theory/slam.md#slam-alpha-floor``).
DEFAULT_ALPHA_FLOOR = 0.6

#: What SLaM's loss is computed against (:func:`slam_targets`).
TARGETS = ("topk", "soft", "hard")
#: SLaM's default target (:func:`slam_targets`), chosen on the Fashion-MNIST benchmark
#: (``robustdistill bench realdata``).
DEFAULT_TARGETS = "hard"


def check_k(k: object, n: int, num_classes: int, name: str = "k") -> np.ndarray:
    """``k`` as an int64 array of shape (n,): an int or a per-example integer array (one entry per row of
    the probabilities), each in 1..num_classes."""
    if isinstance(k, (np.ndarray, list, tuple)) or hasattr(k, "detach"):
        arr = as_real_array(k, name)
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must be an integer or an integer array, got dtype {arr.dtype}")
        k = arr.item() if arr.ndim == 0 else arr
    if not isinstance(k, np.ndarray):
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
            raise TypeError(f"{name} must be an integer or an integer array, got {type(k).__name__} {describe(k)}")
        if not 1 <= k <= num_classes:
            raise ValueError(f"{name} must lie in 1..{num_classes} (K); got {describe(k)}")
        return np.full(n, int(k), dtype=np.int64)
    arr = k
    if arr.shape != (n,):
        raise ValueError(
            f"{name} must be an int or of shape ({n},), one per row of the probabilities, got shape {arr.shape}"
        )
    if np.any((arr < 1) | (arr > num_classes)):
        bad = int(np.flatnonzero((arr < 1) | (arr > num_classes))[0])
        raise ValueError(f"{name} must lie in 1..{num_classes} (K); found {arr[bad]} at index {bad}")
    return arr.astype(np.int64, copy=False)


def topk_mask(teacher_probs: ArrayLike, k: object) -> np.ndarray:
    r"""The 0/1 indicator :math:`M(x) = \mathrm{top}(y_s(x); k)` of the k largest teacher probabilities.

    Args:
        teacher_probs: (n, K) rows on the simplex.
        k: an int in 1..K, or an int array of shape (n,) (a per-example :math:`k(x)`).

    Returns:
        (n, K) float64 array of 0s and 1s with exactly ``k[i]`` ones in row ``i``. Ties go to the lower
        class index (our formulation, ``docs/theory/noise.md#noise-topk-model``).

    >>> topk_mask([[0.2, 0.5, 0.3], [0.4, 0.2, 0.4]], 2)
    array([[0., 1., 1.],
           [1., 0., 1.]])
    """
    t = check_probs(teacher_probs, "teacher_probs")
    n, num_classes = t.shape
    kk = check_k(k, n, num_classes)
    order = np.argsort(-t, axis=1, kind="stable")  # descending, ties by index
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(num_classes)[None, :].repeat(n, axis=0), axis=1)
    return (rank < kk[:, None]).astype(np.float64)


def check_mask(
    mask: ArrayLike, shape: tuple[int, int], name: str = "topk_mask", like: str = "the probabilities"
) -> FloatArray:
    """A 0/1 mask of the given (n, K) shape (that of ``like``) with at least 2 ones per row (mixing needs
    k >= 2)."""
    if not (isinstance(shape, tuple) and len(shape) == 2 and all(isinstance(s, numbers.Integral) for s in shape)):
        raise TypeError(f"shape must be a tuple of two ints (n, K), got {type(shape).__name__} {shape!r}")
    arr = as_real_array(mask, name)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} like {like}, got {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{name} must hold only 0 and 1")
    small = arr.sum(axis=1) < 2
    if small.any():
        raise ValueError(
            f"{name} needs at least 2 ones per row (k >= 2: mixing with one class is undefined); "
            f"row {int(np.flatnonzero(small)[0])} has {int(arr[np.flatnonzero(small)[0]].sum())}"
        )
    return arr


def check_alpha_for_mix(alpha: FloatArray, k: np.ndarray, normalize: bool) -> None:
    """The lower bound of ``docs/theory/slam.md#slam-alpha-floor``: ``alpha >= 1/2`` for (2'), ``alpha > 1/k`` (per row) for (2)."""
    if normalize:
        bad = alpha <= 1.0 / k
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"alpha must exceed 1/k for the normalised mix (it is not injective at 1/k); "
                f"alpha[{i}] = {alpha[i]!r} with k = {int(k[i])}"
            )
    else:
        bad = alpha < 0.5
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"alpha must be >= 1/2 for the un-normalised mix (2') (below it the loss pushes the student "
                f"away from the teacher's classes); alpha[{i}] = {alpha[i]!r}; use clip_alpha"
            )


def mix(student_probs: ArrayLike, alpha: ArrayLike, topk_mask: ArrayLike, normalize: bool = False) -> FloatArray:
    r"""The SLaM mixing operation, probability domain (numpy reference, float64).

    .. math::

        \mathrm{mix}_i(f) = \alpha f_i + (1-\alpha)(1-f_i) M_i / c, \qquad
        c = k - 1 \ \text{if normalize else}\ 1, \quad k = \textstyle\sum_i M_i.

    On :math:`M` (normalised): :math:`(1-\alpha)/(k-1) + f_i(\alpha - (1-\alpha)/(k-1))`; off :math:`M`:
    :math:`\alpha f_i`. The un-normalised result is not a distribution and is not renormalised (paper:
    the experiments' form (2')). ``alpha = 1`` gives ``f`` (plain distillation).

    Args:
        student_probs: (n, K) rows on the simplex, the student's prediction :math:`f`.
        alpha: (n,) or a scalar in [0, 1]: the teacher accuracy :math:`\alpha(x)`; >= 1/2 when
            ``normalize=False``, > 1/k when ``normalize=True``.
        topk_mask: (n, K) 0/1 with at least 2 ones per row (see :func:`topk_mask`).
        normalize: form (2) (theory) instead of (2') (experiments; default).

    Returns:
        (n, K) float64 mixed predictions.
    """
    f = check_probs(student_probs, "student_probs")
    n, _ = f.shape
    a = check_alpha(alpha, n, like="student_probs")
    m = check_mask(topk_mask, f.shape, like="student_probs")
    normalize = check_flag(normalize, "normalize")
    k = m.sum(axis=1)
    check_alpha_for_mix(a, k, normalize)
    scale = (1.0 - a) / (k - 1.0) if normalize else 1.0 - a
    return a[:, None] * f + scale[:, None] * (1.0 - f) * m


def clip_alpha(
    alpha: ArrayLike, lower: float = DEFAULT_ALPHA_FLOOR, *, normalize: bool = False, k: int | None = None
) -> FloatArray:
    r""":math:`\alpha(x) \leftarrow \mathrm{clip}(\alpha(x), lb, 1)` (our formulation, ``docs/theory/slam.md#slam-alpha-floor``).

    ``lower`` must be >= 1/2 for the un-normalised mix and >= 1/k + 0.05 for the normalised one (then
    ``k`` is required). The paper's ablation reports lb in {0.55, 0.6, 0.7}; 0.6 is the default.
    """
    a = check_alpha(alpha)
    lower = check_real(lower, "lower")
    if not 0.0 <= lower <= 1.0:
        raise ValueError(f"lower must lie in [0, 1], got {lower!r}")
    if check_flag(normalize, "normalize"):
        if k is None:
            raise ValueError("k is required to check the lower bound of the normalised mix (lower >= 1/k + 0.05)")
        k = check_int(k, "k", low=2)
        if lower < 1.0 / k + 0.05 - 1e-12:
            raise ValueError(f"lower must be >= 1/k + 0.05 = {1.0 / k + 0.05:.4g} for the normalised mix, got {lower}")
    elif lower < 0.5:
        raise ValueError(f"lower must be >= 1/2 for the un-normalised mix (2'), got {lower}")
    return np.clip(a, lower, 1.0)


def slam_targets(teacher_probs: ArrayLike, k: object, kind: str = "topk") -> FloatArray:
    r"""The label SLaM's loss is computed against, from the teacher's probabilities :math:`t`.

    - ``"topk"``: :math:`t` restricted to its top-k set :math:`M` and renormalised,
      :math:`\tilde t_j = t_j M_j / \sum_l t_l M_l`;
    - ``"soft"``: :math:`t` itself;
    - ``"hard"``: the one-hot of :math:`\arg\max t` (ties to the lowest index).

    SLaM's noise model puts the teacher's label inside :math:`M`. A soft target with mass outside
    :math:`M` leaves that model: the un-normalised mix (2') rewards mass off :math:`M` at slope
    :math:`\alpha` and on :math:`M` at the smaller slope :math:`2\alpha - 1`, so the per-example
    minimiser can put its top class outside :math:`M`: :math:`t = (0.5, 0.3, 0.1, 0.1)`, :math:`k = 2`,
    :math:`\alpha = 0.6` gives :math:`f \approx (0.143, 0, 0.429, 0.429)`
    (:func:`robustdistill.theory.slam_risk.per_example_minimiser`). ``"topk"`` and ``"hard"`` are supported on :math:`M`, where the minimiser's top class is
    the target's.

    Args:
        teacher_probs: (n, K) rows on the simplex.
        k: the top-k size, an int in 1..K or an (n,) int array.
        kind: one of :data:`TARGETS`.

    Returns:
        (n, K) float64 rows on the simplex.

    >>> slam_targets([[0.5, 0.3, 0.1, 0.1]], 2)
    array([[0.625, 0.375, 0.   , 0.   ]])
    """
    t = check_probs(teacher_probs, "teacher_probs")
    kind = check_choice(kind, "kind", TARGETS)
    check_k(k, t.shape[0], t.shape[1])
    if kind == "soft":
        return t
    if kind == "hard":
        return np.eye(t.shape[1])[t.argmax(axis=1)]
    kept = t * topk_mask(t, k)
    total = kept.sum(axis=1, keepdims=True)
    # a row whose top-k mass is 0 cannot occur on the simplex (the top-k entries are the largest)
    return kept / total
