r"""Teacher-noise models (``docs/theory/noise.md``), as reusable generators for the simulators and the tests.

- **Top-k model** (``docs/theory/noise.md#noise-topk-model``, our formulation): the true label :math:`y^*` lies in the teacher's
  top-k set :math:`M(x)`; the teacher's label equals :math:`y^*` with probability :math:`\alpha(x)`, else it
  is uniform over the other :math:`k - 1` classes of :math:`M(x)`. Per example the transition matrix is

  .. math::

      T(x) = \alpha I + \frac{1-\alpha}{k-1}\,\bigl(M M^\top - \mathrm{diag}\, M\bigr)
      \quad\text{(rows and columns off } M \text{ are never reached)},

  so :math:`E[\text{teacher label} \mid x] = p^* T(x) = \alpha p^* + (1-\alpha)(1-p^*) \odot M/(k-1)`
  for :math:`p^*` supported on :math:`M` (``docs/theory/noise.md#noise-topk-model``). Binary with :math:`K = k = 2` is random
  classification noise at rate :math:`1 - \alpha(x)`.
  :func:`topk_transition`, :func:`topk_noise_expectation` (exact), :func:`sample_topk_noise` (labels),
  :func:`sample_topk_teacher` (clean and noisy labels from :math:`p^*`).
- **The margin teacher** of ``docs/theory/noise.md#noise-margin-teacher`` (our formulation): :func:`synthetic_teacher`, whose
  accuracy at margin s is :func:`true_accuracy`; :func:`margin_teacher_probs` is the same teacher for given
  true labels (the synthetic teacher-noise dataset with known alpha(x) of ``docs/theory/noise.md#noise-margin-teacher``).

Conventions: ``mask`` is an (n, K) 0/1 array with at least 2 ones per row
(:func:`robustdistill.algorithms.slam.topk_mask` builds it from teacher probabilities); ``alpha`` is a
scalar or (n,) in [0, 1]; ``rng`` follows the toolkit's contract (Generator, int seed or None).
"""

from __future__ import annotations

import numpy as np

from robustdistill.algorithms.slam import check_mask
from robustdistill.algorithms.typing import ArrayLike, FloatArray, IntArray, RNGLike
from robustdistill.algorithms.validation import check_alpha, check_labels, check_probs, check_rng

__all__ = [
    "margin_teacher_probs",
    "sample_topk_noise",
    "sample_topk_teacher",
    "synthetic_teacher",
    "topk_noise_expectation",
    "topk_transition",
    "true_accuracy",
]


def _alpha_and_mask(alpha: ArrayLike, mask: ArrayLike) -> tuple[FloatArray, FloatArray]:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D of shape (n, K), got shape {m.shape}")
    m = check_mask(m, m.shape, "mask")
    return check_alpha(alpha, m.shape[0]), m


def topk_transition(alpha: ArrayLike, mask: ArrayLike) -> FloatArray:
    r"""The top-k model's per-example transition matrices
    :math:`T(x)_{ij} = P(\text{teacher says } j \mid y^* = i)` (module docstring).

    Args:
        alpha: scalar or (n,) in [0, 1].
        mask: (n, K) 0/1, at least 2 ones per row.

    Returns:
        (n, K, K) float64; rows of classes in M sum to 1, rows of classes off M are
        :math:`\alpha e_i` (such a true class is outside the model).
    """
    alpha, mask = _alpha_and_mask(alpha, mask)
    k = mask.sum(axis=1)
    eye = np.eye(mask.shape[1])
    other = (mask[:, :, None] * mask[:, None, :]) * (1.0 - eye)  # the other classes of M
    return alpha[:, None, None] * eye + ((1.0 - alpha) / (k - 1.0))[:, None, None] * other


def topk_noise_expectation(p_star: ArrayLike, alpha: ArrayLike, mask: ArrayLike) -> FloatArray:
    r""":math:`E[\text{teacher label} \mid x] = p^* T(x)` under the top-k model, built from the model itself
    (not from :func:`robustdistill.algorithms.slam.mix`, which it checks).

    Args:
        p_star: (n, K) clean posteriors (rows on the simplex).
        alpha: scalar or (n,) in [0, 1].
        mask: (n, K) 0/1, at least 2 ones per row.

    Returns:
        (n, K) float64, rows on the simplex when ``p_star`` is supported on ``mask``.
    """
    p_star = check_probs(p_star, "p_star")
    T = topk_transition(alpha, mask)
    if T.shape[1:] != (p_star.shape[1],) * 2 or T.shape[0] != p_star.shape[0]:
        raise ValueError(f"mask has shape {T.shape[:2]} but p_star has shape {p_star.shape}")
    return np.einsum("ni,nij->nj", p_star, T)


def sample_topk_noise(labels: ArrayLike, alpha: ArrayLike, mask: ArrayLike, *, rng: RNGLike = None) -> IntArray:
    r"""Teacher labels drawn from the top-k model given the true labels: each label is kept with probability
    :math:`\alpha_i`, else replaced by one of the other :math:`k_i - 1` classes of :math:`M_i`, uniformly.

    Args:
        labels: (n,) true classes, each inside its row's mask (the model's assumption).
        alpha: scalar or (n,) in [0, 1].
        mask: (n, K) 0/1, at least 2 ones per row.
        rng: Generator, int seed or None.

    Returns:
        (n,) int64 noisy labels, always inside the mask.
    """
    alpha, mask = _alpha_and_mask(alpha, mask)
    n, num_classes = mask.shape
    y = check_labels(labels, n, num_classes)
    rows = np.arange(n)
    outside = mask[rows, y] == 0
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"labels must lie in their row's top-k mask (the top-k model's assumption); label {int(y[i])} at "
            f"index {i} is outside {np.flatnonzero(mask[i]).tolist()}"
        )
    gen = check_rng(rng)
    keep = gen.random(n) < alpha
    # the j-th other class of M (j uniform in 0..k-2): walk the mask's ones in order, skipping y
    k = mask.sum(axis=1).astype(np.int64)
    j = np.floor(gen.random(n) * (k - 1)).astype(np.int64)
    position = np.cumsum(mask, axis=1).astype(np.int64) - 1  # of each one among its row's ones
    target = j + (j >= position[rows, y])  # the j-th one, skipping y
    other = np.argmax((position == target[:, None]) & (mask > 0), axis=1)
    return np.where(keep, y, other).astype(np.int64)


def sample_topk_teacher(
    p_star: ArrayLike, alpha: ArrayLike, mask: ArrayLike, *, rng: RNGLike = None
) -> tuple[IntArray, IntArray]:
    r"""Clean labels :math:`y^* \sim p^*` and the teacher's labels from the top-k model
    (:func:`sample_topk_noise`); the teacher labels' law given x is :func:`topk_noise_expectation`.

    Args:
        p_star: (n, K) clean posteriors, supported on ``mask`` (checked).
        alpha: scalar or (n,) in [0, 1].
        mask: (n, K) 0/1, at least 2 ones per row.
        rng: Generator, int seed or None.

    Returns:
        ``(clean, noisy)``: two (n,) int64 label arrays.
    """
    p_star = check_probs(p_star, "p_star")
    _, m = _alpha_and_mask(alpha, mask)
    if m.shape != p_star.shape:
        raise ValueError(f"mask has shape {m.shape} but p_star has shape {p_star.shape}")
    off = (p_star * (1.0 - m)).sum(axis=1) > 0
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ValueError(f"p_star must be supported on the mask (the top-k model's assumption); row {i} is not")
    gen = check_rng(rng)
    cdf = np.cumsum(p_star, axis=1)
    u = gen.random(p_star.shape[0]) * cdf[:, -1]
    clean = np.minimum((cdf <= u[:, None]).sum(axis=1), p_star.shape[1] - 1).astype(np.int64)  # inverse cdf
    return clean, sample_topk_noise(clean, alpha, m, rng=gen)


def true_accuracy(s: ArrayLike) -> FloatArray:
    """The ``docs/theory/noise.md#noise-margin-teacher`` synthetic teacher's accuracy at margin s: 0.3 + 0.65 s^0.7 (our
    formulation)."""
    return 0.3 + 0.65 * np.asarray(s, dtype=np.float64) ** 0.7


def synthetic_teacher(
    rng: np.random.Generator, n: int, num_classes: int = 10, margins: FloatArray | None = None
) -> tuple[FloatArray, IntArray, FloatArray]:
    r"""The ``docs/theory/noise.md#noise-margin-teacher`` synthetic teacher (our formulation): margin :math:`s \sim U(0, 1)` (or
    the given ``margins``), predicted class uniform, probabilities :math:`(1-s)/K` on every class plus
    :math:`s` on the predicted one (so the margin :math:`t_{(1)} - t_{(2)}` is s); the true label equals
    the prediction with probability :func:`true_accuracy` :math:`(s) = 0.3 + 0.65 s^{0.7}`, else is
    uniform over the other classes.

    Returns ``(teacher_probs (n, K), labels (n,), margins (n,))``."""
    s = rng.uniform(0.0, 1.0, n) if margins is None else np.asarray(margins, dtype=np.float64)
    k = num_classes
    predicted = rng.integers(0, k, s.size)
    probs = np.repeat(((1.0 - s) / k)[:, None], k, axis=1)
    probs[np.arange(s.size), predicted] += s
    correct = rng.random(s.size) < true_accuracy(s)
    labels = np.where(correct, predicted, (predicted + rng.integers(1, k, s.size)) % k)
    return probs, labels.astype(np.int64), s


def margin_teacher_probs(labels: ArrayLike, num_classes: int, *, rng: RNGLike = None) -> tuple[FloatArray, FloatArray]:
    r"""The §2.1 margin teacher for given true labels (our formulation): margin :math:`s \sim U(0, 1)`; the
    predicted class is the label with probability :func:`true_accuracy` :math:`(s)`, else uniform over the
    other classes; probabilities :math:`(1-s)/K` on every class plus :math:`s` on the predicted one. So the
    teacher's accuracy given its output is known exactly: :math:`\alpha(x) = 0.3 + 0.65 s^{0.7}`.

    Args:
        labels: (n,) true classes in 0..K-1; ``num_classes``: K >= 2; ``rng``: Generator, int seed or None.

    Returns:
        ``(teacher_probs (n, K), alpha (n,))``.
    """
    k = int(num_classes)
    if k < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    y = check_labels(labels, np.asarray(labels).shape[0], k)
    gen = check_rng(rng)
    s = gen.uniform(0.0, 1.0, y.size)
    alpha = true_accuracy(s)
    predicted = np.where(gen.random(y.size) < alpha, y, (y + gen.integers(1, k, y.size)) % k)
    probs = np.repeat(((1.0 - s) / k)[:, None], k, axis=1)
    probs[np.arange(y.size), predicted] += s
    return probs, alpha
