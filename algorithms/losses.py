r"""Per-example distillation losses in torch: soft cross-entropy, KD, SLaM, forward / backward correction and
Taylor cross-entropy.

Every loss is a small pure function that returns **one value per example**, a tensor of shape ``(n,)``
(optax style): the caller weights and reduces (``docs/theory/weighted.md#weighted-normalisation``). A thin :class:`torch.nn.Module`
wrapper per loss adds ``reduction="mean" | "sum" | "none"`` and optional per-example weights.

Conventions shared by every function here (``robustdistill.algorithms.typing``):

- **Logits are never guessed.** The student's logits ``z`` are an explicit ``(n, K)`` torch tensor,
  ``K >= 2``; probabilities are separate arguments whose rows lie on the simplex (within
  :data:`~robustdistill.algorithms.validation.SIMPLEX_ATOL`, or the machine epsilon of a half-precision
  input if that is larger).
- **Inputs.** Probabilities, labels, ``alpha``, masks, class indices and transition matrices may be torch
  tensors (on the logits' device; another device is a :class:`ValueError`), numpy arrays or lists (copied
  to the logits' device). Bad values raise :class:`ValueError`, bad types :class:`TypeError`, each naming
  the argument. ``validate=False`` skips the value checks (finiteness, simplex rows, 0/1 masks, distinct
  in-range class indices, ``alpha`` bounds) that cost a reduction and, on an accelerator, a host sync each;
  shapes, dtypes and devices are always checked.
- **Precision.** The computation runs in float32, or float64 when the logits are float64, with autocast
  switched off inside: under ``torch.autocast`` (CPU bfloat16, CUDA float16 / bfloat16) low-precision
  logits are upcast and the loss comes back as float32. The same code runs on every device.
- **Stability.** Everything is computed from logits in log space (``log_softmax``, ``logsumexp``,
  ``logaddexp``), with no clamping: values and gradients stay finite for finite logits (the tests use
  ``|z|`` up to 1000 in float32 and float64). Validated logits whose range (max - min) exceeds the square
  root of float32's largest value (about 1.8e19; up to float32's own limit of 3.4e38) are computed in
  float64 and the loss returned in float32; a loss that does not fit float32 there (e.g. the target on a
  class 6e38 below the top one) is a ``ValueError`` naming the logits. float64 logits spanning more than
  :data:`MAX_FLOAT64_LOGIT_RANGE` (about 2.2e307) within a row are a ``ValueError``. ``validate=False`` skips
  these range checks with the others.
- **Noise transition matrix.** ``T[i, j] = P(teacher says j | true class i)``, rows sum to 1 (cleanlab
  stores the transpose).

Provenance tags follow the theory pages (``docs/theory/index.md#theory-provenance``): **(paper)** for what a
paper states, **(our formulation)** for this toolkit's precise choices.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .slam import check_alpha_for_mix, check_k, check_mask
from .validation import (
    MAX_TRANSITION_CONDITION,
    SIMPLEX_ATOL,
    as_numpy,
    as_real_array,
    check_alpha,
    check_choice,
    check_condition,
    check_flag,
    check_int,
    check_real,
)

__all__ = [
    "LOSSES",
    "MAX_FLOAT64_LOGIT_RANGE",
    "MAX_TAYLOR_ORDER",
    "MAX_TRANSITION_CONDITION",
    "REDUCTIONS",
    "TEMPERATURE_RANGE",
    "BackwardCorrectedLoss",
    "ForwardCorrectedLoss",
    "KDLoss",
    "SLaMLoss",
    "SoftCrossEntropy",
    "TaylorCrossEntropy",
    "backward_corrected_loss",
    "check_logits",
    "check_taylor_order",
    "check_temperature",
    "forward_corrected_loss",
    "kd_loss",
    "negative_learning_loss",
    "reduce_loss",
    "slam_binary_log_mix",
    "slam_loss",
    "soft_cross_entropy",
    "taylor_cross_entropy",
    "teacher_topk_index",
    "teacher_topk_mask",
]

#: The reductions of the ``nn.Module`` wrappers.
REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------------------------------
# Validation and conversion helpers (cheap: a few reductions per call)


def _compute_dtype(logits: torch.Tensor) -> torch.dtype:
    """float64 for float64 logits, float32 for everything else (float32, float16, bfloat16)."""
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def _autocast_off(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Switch autocast off on ``device`` for the block; a no-op (and free) when it is not on."""
    if torch.amp.is_autocast_available(device.type) and torch.is_autocast_enabled(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def _wide_range(dtype: torch.dtype) -> float:
    """The range (max - min) beyond which logits are "wide" for a compute dtype: the square root of its
    largest value. Products of their log-probabilities with targets (or with an inverted transition matrix)
    could overflow there, so wide float32 logits are computed in float64 (see :class:`_Logits`)."""
    return math.sqrt(torch.finfo(dtype).max)


#: float64 logits wider than this within a row are refused: their log-probabilities would overflow.
MAX_FLOAT64_LOGIT_RANGE = float(torch.finfo(torch.float64).max) / 8.0


class _Logits:
    """Checked logits and how to compute on them.

    Attributes:
        z: the (n, K) logits as given.
        name: the argument's name (for messages).
        dtype: the compute dtype: float64 for float64 logits, float32 for the others, except for wide logits
            (validated, with a range above :func:`_wide_range` of float32), which are computed in float64.
        out: the dtype of the returned loss (float64 for float64 logits, else float32).
        wide: whether the range is wide; :meth:`finish` then checks that the loss fits ``out``.
    """

    __slots__ = ("dtype", "name", "out", "wide", "z")

    def __init__(self, z: torch.Tensor, name: str, dtype: torch.dtype, wide: bool) -> None:
        self.z, self.name, self.dtype, self.wide = z, name, dtype, wide
        self.out = _compute_dtype(z)

    def finish(self, loss: torch.Tensor, *, infinite_ok: bool = False) -> torch.Tensor:
        """The loss in ``out``; for wide logits, a ``ValueError`` naming them when a value is NaN or does not
        fit ``out`` (``infinite_ok``: an infinite value is the loss's own, e.g. an impossible target)."""
        if not self.wide:
            return loss
        big = torch.finfo(self.out).max
        value = loss.detach()
        bad = torch.isnan(value) | (value.abs() > big)
        if infinite_ok:
            bad &= ~torch.isinf(value)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"{self.name} span too wide a range: the loss of row {i} overflows {self.out} "
                "(pass float64 logits, or rescale them)"
            )
        return loss.to(self.out)


def _check_logits(logits: object, name: str, validate: bool, *, scale: float = 1.0) -> _Logits:
    """A floating (n, K) torch tensor, n >= 1, K >= 2, finite (checked with one aminmax reduction), and its
    compute plan (:class:`_Logits`). ``scale`` multiplies the logits' range before it is compared with the
    wide threshold (1 / temperature for tempered logits)."""
    validate = check_flag(validate, "validate")
    if not isinstance(logits, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (n, K) holding logits (not probabilities), "
            f"got {type(logits).__name__}"
        )
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of logits, got dtype {logits.dtype}")
    if logits.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (n, K), got shape {tuple(logits.shape)}")
    n, k = logits.shape
    if n == 0:
        raise ValueError(f"{name} is empty: it needs at least one row")
    if k < 2:
        raise ValueError(f"{name} must have at least 2 classes (columns), got {k}")
    dtype = _compute_dtype(logits)
    if not validate:
        return _Logits(logits, name, dtype, False)
    lo, hi = (float(v) for v in torch.stack(torch.aminmax(logits.detach())).double().tolist())  # one sync
    if not (math.isfinite(lo) and math.isfinite(hi)):
        bad = (~torch.isfinite(logits.detach())).any(dim=1).nonzero().flatten()[:5].tolist()
        raise ValueError(f"{name} must be finite; found NaN or inf in row {bad}")
    if (hi - lo) * scale <= _wide_range(dtype):
        return _Logits(logits, name, dtype, False)
    if dtype == torch.float64:
        row = logits.detach().amax(dim=1) - logits.detach().amin(dim=1)  # inf where it overflows
        widest = float(row.max()) * scale
        if not widest <= MAX_FLOAT64_LOGIT_RANGE:
            i = int(row.argmax())
            what = f"{name} / temperature" if scale != 1.0 else name
            span = f"{widest:.3g}" if math.isfinite(widest) else "beyond float64's range"
            raise ValueError(
                f"{what} span {span} in row {i} (max - min), more than float64 computes a loss on "
                f"(MAX_FLOAT64_LOGIT_RANGE = {MAX_FLOAT64_LOGIT_RANGE:.3g}): rescale the logits"
            )
    return _Logits(logits, name, torch.float64, True)


def check_logits(logits: object, name: str = "logits", *, validate: bool = True) -> torch.Tensor:
    """The checks every loss makes of its logits: a floating-point (n, K) torch tensor, n >= 1, K >= 2, and
    (``validate``) finite, float64 ones spanning at most :data:`MAX_FLOAT64_LOGIT_RANGE` within a row.
    Returns the tensor; a ``TypeError`` or ``ValueError`` names ``name``."""
    return _check_logits(logits, name, validate).z


def _as_tensor(x: object, name: str, like: torch.Tensor, zname: str = "logits") -> torch.Tensor:
    """A tensor on ``like``'s device: tensors must already be there; arrays and lists are copied there.
    ``zname`` names the logits in messages."""
    if isinstance(x, torch.Tensor):
        if x.device != like.device:
            raise ValueError(
                f"{name} is on device {x.device} but {zname} is on {like.device}; move them to the same device"
            )
        return x
    arr = as_real_array(x, name)
    if arr.dtype.kind == "u" and arr.dtype.itemsize >= 4:  # torch's uint32/64 lack arithmetic: as int64
        if arr.size and arr.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{name} holds integers beyond int64")
        arr = arr.astype(np.int64)
    return torch.as_tensor(arr, device=like.device)


def _check_real(x: torch.Tensor, name: str) -> None:
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.dtype in (torch.uint16, torch.uint32, torch.uint64):
        raise TypeError(f"{name} must hold real numbers of a torch dtype with arithmetic, got dtype {x.dtype}")


def _simplex_tol(dtype: torch.dtype) -> float:
    """SIMPLEX_ATOL, widened to the machine epsilon of a half-precision input (its rounding alone
    moves a row sum by up to eps/2)."""
    if dtype.is_floating_point:
        return max(SIMPLEX_ATOL, float(torch.finfo(dtype).eps))
    return SIMPLEX_ATOL


def _check_simplex_rows(
    p: torch.Tensor, name: str, tol: float, what: str = "probabilities", sums: torch.Tensor | None = None
) -> torch.Tensor:
    """Rows on the simplex: entries >= -tol and row sums within tol of 1 (NaN and inf fail too). Returns
    the row sums.

    Two reductions: the row sums (NaN and +inf make them fail) and the global minimum (NaN and -inf)."""
    pd = p.detach()
    if sums is None:
        sums = pd.sum(dim=1)
    if not bool(((sums - 1.0).abs() <= tol).all() & (pd.amin() >= -tol)):  # one sync; NaN fails
        off = ~((sums - 1.0).abs() <= tol)
        if not bool(torch.isfinite(pd).all()):
            rows = (~torch.isfinite(pd)).any(dim=1).nonzero().flatten()[:5].tolist()
            raise ValueError(f"{name} must be finite; found NaN or inf in row {rows}")
        neg = pd.amin(dim=1) < -tol
        if bool(neg.any()):
            i = int(neg.nonzero()[0, 0])
            raise ValueError(
                f"{name} rows must lie on the simplex; row {i} has a negative entry "
                f"{float(pd[i].min())!r} (pass {what}, not logits)"
            )
        i = int(off.nonzero()[0, 0])
        raise ValueError(
            f"{name} rows must sum to 1 within {tol:g}; row {i} sums to {float(sums[i])!r} (pass {what}, not logits)"
        )
    return sums


def _probs(
    x: object, name: str, like: torch.Tensor, dtype: torch.dtype, validate: bool, zname: str = "logits"
) -> torch.Tensor:
    """(n, K) probabilities like the logits, converted to ``dtype``, rows on the simplex."""
    return _probs_and_sums(x, name, like, dtype, validate, zname)[0]


def _probs_and_sums(
    x: object, name: str, like: torch.Tensor, dtype: torch.dtype, validate: bool, zname: str = "logits"
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_probs` and the (detached) row sums, computed once."""
    p = _as_tensor(x, name, like, zname)
    _check_real(p, name)
    if p.shape != like.shape:
        raise ValueError(f"{name} must have shape {tuple(like.shape)} like {zname}, got {tuple(p.shape)}")
    tol = _simplex_tol(p.dtype)
    p = p.to(dtype)
    sums = p.detach().sum(dim=1)
    if validate:
        _check_simplex_rows(p, name, tol, sums=sums)
    return p, sums


def _labels(
    y: torch.Tensor, name: str, n: int, num_classes: int, validate: bool, zname: str = "logits"
) -> torch.Tensor:
    if y.shape != (n,):
        raise ValueError(f"{name} as labels must have shape ({n},) like the rows of {zname}, got {tuple(y.shape)}")
    y = y.long()
    if validate:
        lo, hi = torch.aminmax(y)
        if int(lo) < 0 or int(hi) >= num_classes:
            bad = int(((y < 0) | (y >= num_classes)).nonzero()[0, 0])
            raise ValueError(f"{name} must lie in 0..{num_classes - 1}; found {int(y[bad])} at index {bad}")
    return y


def _targets(
    x: object, name: str, like: torch.Tensor, dtype: torch.dtype, validate: bool, zname: str = "logits"
) -> torch.Tensor:
    """Targets as (n, K) probabilities: an (n, K) array of probabilities, or an (n,) integer array of
    labels 0..K-1 (converted to one-hot)."""
    t = _as_tensor(x, name, like, zname)
    _check_real(t, name)
    n, num_classes = like.shape
    if t.ndim == 1:
        if t.is_floating_point():
            raise TypeError(
                f"{name} of shape (n,) must hold integer labels 0..K-1, got dtype {t.dtype} "
                "(pass probabilities as an (n, K) array)"
            )
        y = _labels(t, name, n, num_classes, validate, zname)
        return nn.functional.one_hot(y, num_classes).to(dtype)
    return _probs(t, name, like, dtype, validate, zname)


def _per_example(x: object, name: str, like: torch.Tensor, dtype: torch.dtype, zname: str = "logits") -> torch.Tensor:
    """A real (n,) tensor (a scalar is broadcast) on like's device, as ``dtype``; finiteness not checked."""
    v = _as_tensor(x, name, like, zname)
    _check_real(v, name)
    n = like.shape[0]
    if v.ndim == 0:
        v = v.expand(n)
    if v.shape != (n,):
        raise ValueError(
            f"{name} must be a scalar or of shape ({n},) like the rows of {zname}, got shape {tuple(v.shape)}"
        )
    return v.to(dtype)


def _transition(x: object, name: str, like: torch.Tensor, dtype: torch.dtype | None, validate: bool) -> torch.Tensor:
    """A (K, K) row-stochastic transition matrix T[i, j] = P(teacher says j | true class i), as ``dtype``
    (None: a floating input keeps its dtype, an integer one becomes float64)."""
    t = _as_tensor(x, name, like)
    _check_real(t, name)
    k = like.shape[1]
    if t.shape != (k, k):
        raise ValueError(
            f"{name} must have shape ({k}, {k}) (K x K, K = the classes of the logits), got {tuple(t.shape)}"
        )
    tol = _simplex_tol(t.dtype)
    if dtype is None:
        dtype = t.dtype if t.is_floating_point() else torch.float64
    t = t.to(dtype)
    if validate:
        _check_simplex_rows(t, name, tol, what="a row-stochastic matrix, T[i, j] = P(teacher says j | true i)")
    return t


# ----------------------------------------------------------------------------------------------------
# Soft cross-entropy and KD


def soft_cross_entropy(logits: torch.Tensor, target_probs: object, *, validate: bool = True) -> torch.Tensor:
    r"""Soft cross-entropy per example: :math:`\ell(z, t) = -\sum_j t_j \log \mathrm{softmax}(z)_j`.

    .. math::

        \ell_i = -\sum_{j=1}^{K} t_{ij}\, \bigl(z_{ij} - \log \textstyle\sum_{l} e^{z_{il}}\bigr)

    The hard loss is the same with one-hot targets (``docs/theory/weighted.md#weighted-setting``).

    Args:
        logits: (n, K) float tensor, the student's logits ``z``.
        target_probs: (n, K) rows on the simplex, or (n,) integer labels 0..K-1 (converted to one-hot).
        validate: check values (finite logits, simplex rows, label range); shapes always.

    Returns:
        (n,) float32 tensor (float64 for float64 logits). Non-negative.

    >>> z = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    >>> soft_cross_entropy(z, [[1.0, 0.0], [0.5, 0.5]])
    tensor([0.1269, 0.6931])
    """
    zl = _check_logits(logits, "logits", validate)
    z, dtype = zl.z, zl.dtype
    t = _targets(target_probs, "target_probs", z, dtype, validate)
    with _autocast_off(z.device):
        return zl.finish(-(t * torch.log_softmax(z.to(dtype), dim=1)).sum(dim=1))


def kd_loss(
    student_logits: torch.Tensor,
    teacher_probs: object,
    temperature: float = 1.0,
    *,
    temperature_squared: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    r"""Knowledge-distillation loss per example (Hinton, Vinyals, Dean 2015): soft cross-entropy of the
    tempered student against the tempered teacher, scaled by :math:`\tau^2`.

    .. math::

        q_{ij} = \mathrm{softmax}\bigl(\log t_i / \tau\bigr)_j = \frac{t_{ij}^{1/\tau}}{\sum_l t_{il}^{1/\tau}},
        \qquad
        \ell_i = -\tau^2 \sum_j q_{ij} \log \mathrm{softmax}(z_i / \tau)_j

    The temperature applies to **both sides**, as in torch / torchdistill: ``teacher_probs`` are
    probabilities, and since :math:`\log t = z_t - \mathrm{logsumexp}(z_t)` for the teacher's logits
    :math:`z_t`, :math:`q = \mathrm{softmax}(z_t / \tau)` exactly. Zero probabilities stay zero
    (:math:`\log 0 = -\infty` is handled without NaN): a one-hot teacher row stays one-hot at every
    temperature. At :math:`\tau = 1` the teacher is used as given and the loss equals
    :func:`soft_cross_entropy` exactly; the toolkit's Vanilla KD baseline uses :math:`\tau = 1`.

    This is a cross-entropy, not a KL divergence: torchdistill's ``KDLoss`` (``kl_div(log_softmax(z/\tau),
    softmax(z_t/\tau)) \cdot \tau^2``) equals this minus :math:`\tau^2 H(q_i)`, the teacher's tempered
    entropy, a constant in the student's logits: the gradients with respect to ``student_logits`` are the
    same. (torchdistill also reduces with ``batchmean``; here the caller reduces.)

    Args:
        student_logits: (n, K) float tensor :math:`z`.
        teacher_probs: (n, K) rows on the simplex :math:`t` (entries within round-off below 0 count as 0).
        temperature: :math:`\tau`, a real number in :data:`TEMPERATURE_RANGE` = [1e-4, 1e4].
        temperature_squared: multiply by :math:`\tau^2` (default; Hinton et al.'s scaling, which keeps the
            gradient size comparable across temperatures). ``False`` gives the unscaled cross-entropy.
        validate: check values; shapes always.

    Returns:
        (n,) float32 tensor (float64 for float64 logits). Non-negative.

    >>> z = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    >>> kd_loss(z, [[0.8, 0.2]], 2.0)  # 4 * soft_cross_entropy(z / 2, softmax(log([0.8, 0.2]) / 2))
    tensor([2.5864], dtype=torch.float64)
    """
    tau = check_temperature(temperature)
    temperature_squared = check_flag(temperature_squared, "temperature_squared")
    zl = _check_logits(student_logits, "student_logits", validate, scale=1.0 / tau)
    z, dtype = zl.z, zl.dtype
    t = _probs(teacher_probs, "teacher_probs", z, dtype, validate, "student_logits")
    with _autocast_off(z.device):
        zz = z.to(dtype)
        if tau == 1.0:
            return zl.finish(-(t * torch.log_softmax(zz, dim=1)).sum(dim=1))
        positive = t > 0
        # log t with -inf where t <= 0 (never log of 0 or of a round-off negative, so no NaN, not even in
        # a gradient with respect to t); softmax then gives those entries exactly 0.
        log_t = torch.where(positive, torch.log(torch.where(positive, t, torch.ones_like(t))), -math.inf)
        q = torch.softmax(log_t / tau, dim=1)
        # the logits shifted by their row maximum before the division: z / tau itself may overflow
        shifted = (zz - zz.detach().amax(dim=1, keepdim=True)) / tau
        loss = -(q * torch.log_softmax(shifted, dim=1)).sum(dim=1)
        return zl.finish(loss * (tau * tau) if temperature_squared else loss)


#: The temperatures :func:`kd_loss` accepts, ``[low, high]``: far beyond the usual 0.5 .. 20, and small enough
#: that :math:`\tau^2` and the tempered logits stay far inside float32.
TEMPERATURE_RANGE = (1e-4, 1e4)


def check_temperature(temperature: object) -> float:
    """A KD temperature: a finite real number in :data:`TEMPERATURE_RANGE`, as a float."""
    low, high = TEMPERATURE_RANGE
    return check_real(temperature, "temperature", low=low, high=high)


# ----------------------------------------------------------------------------------------------------
# SLaM


def teacher_topk_mask(teacher_probs: torch.Tensor, k: object) -> torch.Tensor:
    r"""Torch twin of :func:`robustdistill.algorithms.slam.topk_mask`: the (n, K) **bool** indicator
    :math:`M(x) = \mathrm{top}(y_s(x); k)` of the k largest teacher probabilities, ties to the lower class
    index (our formulation, ``docs/theory/slam.md#slam-setting``), on the probabilities' device.

    The same set as a stable descending argsort, found in O(K) per row: the k-th largest value
    :math:`v_k` by ``topk``, every entry :math:`> v_k`, then the entries :math:`= v_k` in index order until
    the row has k.

    Args:
        teacher_probs: (n, K) real torch tensor, finite (the simplex is not checked here;
            :func:`slam_loss` checks it).
        k: an int in 1..K or an (n,) integer array (per-example :math:`k(x)`).
    """
    t = _check_2d_tensor(teacher_probs, "teacher_probs")
    n, num_classes = t.shape
    return _topk_mask(t, torch.as_tensor(check_k(k, n, num_classes), device=t.device))


def _topk_mask(t: torch.Tensor, kk: torch.Tensor) -> torch.Tensor:
    """:func:`teacher_topk_mask` of checked probabilities and an (n,) int64 tensor ``kk`` on their device."""
    if t.shape[0] == 0:
        return torch.zeros(t.shape, dtype=torch.bool, device=t.device)
    kmax = int(kk.max())
    top = torch.topk(t, kmax, dim=1, largest=True, sorted=True).values
    vk = top.gather(1, (kk - 1)[:, None])  # (n, 1): the k-th largest value, multiplicity counted
    greater = t > vk
    tied = t == vk
    need = kk[:, None] - greater.sum(dim=1, keepdim=True)  # >= 1 ties to take, lowest index first
    return greater | (tied & (tied.cumsum(dim=1) <= need))


def teacher_topk_index(teacher_probs: torch.Tensor, k: int) -> torch.Tensor:
    r"""The same top-k set as :func:`teacher_topk_mask` for one global ``k``, as an (n, k) int64 tensor of
    class indices, ascending in each row: the compact form of :math:`M(x)` (``n k`` integers instead of
    ``n K`` flags) that :func:`slam_loss` takes as ``topk_index`` without scanning a mask. Compute it once per
    pool (``docs/theory/slam.md#slam-procedure``) and slice it with the batch.

    ``torch.topk`` of the ``k + 1`` largest values; a row whose k-th and (k+1)-th values tie is redone by a
    stable descending sort, so ties go to the lower class index (our formulation, ``docs/theory/slam.md#slam-setting``).

    Args:
        teacher_probs: (n, K) real torch tensor, finite (the simplex is not checked here;
            :func:`slam_loss` checks it).
        k: an int in 1..K.

    >>> teacher_topk_index(torch.tensor([[0.2, 0.5, 0.3], [0.4, 0.2, 0.4]]), 2)
    tensor([[1, 2],
            [0, 2]])
    """
    t = _check_2d_tensor(teacher_probs, "teacher_probs").detach()
    num_classes = t.shape[1]
    return _topk_index(
        t, check_int(k, "k", low=1, high=num_classes, hint=f" (K = {num_classes}, the classes of teacher_probs)")
    )


def _topk_index(t: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`teacher_topk_index` of checked (detached) probabilities and a checked ``k``."""
    n, num_classes = t.shape
    if k == num_classes:
        return torch.arange(num_classes, device=t.device).expand(n, k).contiguous()
    values, index = torch.topk(t, k + 1, dim=1, largest=True, sorted=True)
    tied = (values[:, k - 1] == values[:, k]).nonzero().flatten()
    if tied.numel():  # the set is not unique there: the stable sort's first k (lower index first)
        index[tied] = torch.sort(t[tied], dim=1, descending=True, stable=True).indices[:, : k + 1]
    return index[:, :k].sort(dim=1).values


def _check_2d_tensor(x: object, name: str) -> torch.Tensor:
    """A real (n, K) torch tensor, K >= 1, with finite entries (one sync)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    _check_real(x, name)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must be 2-D of shape (n, K), K >= 1, got shape {tuple(x.shape)}")
    if x.is_floating_point() and not bool(torch.isfinite(x.detach()).all()):
        raise ValueError(f"{name} must be finite")
    return x


class _MaskEntries:
    """The ones of the top-k mask :math:`M`: ``flat`` holds their flat indices into the (n*K,) view of an
    (n, K) tensor, read with ``take`` and written with ``put_`` (on the CPU several times faster than
    ``gather`` / ``scatter_`` along dim 1, torch 2.13); ``counts`` is the number k of ones per row, an int
    when every row has the same k, else an (n,) int64 tensor.

    - **uniform** (every row has the same number k of ones): ``flat`` is (n, k) and ``rows`` is None. The
      entries are read as a contiguous (k, n) array, so a per-row (n,) constant broadcasts along dim 0 with
      a contiguous inner loop (an (n, 1) operand against (n, k) makes elementwise ops 5x slower and
      ``torch.logaddexp`` 8x slower on the CPU).
    - **ragged**: ``flat`` and ``rows`` (the row of each one) are (nnz,); per-row constants are gathered
      per entry (:meth:`spread`)."""

    __slots__ = ("counts", "flat", "rows")

    def __init__(self, flat: torch.Tensor, rows: torch.Tensor | None, counts: int | torch.Tensor) -> None:
        self.flat, self.rows, self.counts = flat, rows, counts

    def pick(self, x: torch.Tensor) -> torch.Tensor:
        """The entries of a contiguous (n, K) tensor on M: (k, n), or (nnz,) when ragged."""
        return x.view(-1).take(self.flat.t() if self.rows is None else self.flat)

    def put_(self, x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Overwrite the entries of a contiguous (n, K) tensor on M with ``values`` (as :meth:`pick` gives
        them), in place."""
        x.view(-1).put_(self.flat.t() if self.rows is None else self.flat, values)
        return x

    def row_sum(self, v: torch.Tensor) -> torch.Tensor:
        """Per-row sums (n,) of values on the entries (as :meth:`pick` gives them)."""
        if self.rows is None:
            return v.sum(dim=0)
        return v.new_zeros(self.counts.shape[0]).index_add_(0, self.rows, v)

    def spread(self, v: torch.Tensor) -> torch.Tensor:
        """A per-row (n,) tensor against the entries: itself (it broadcasts over (k, n)), or one value per
        entry when ragged."""
        return v if self.rows is None else v.index_select(0, self.rows)


class _SLaMFromLogits(torch.autograd.Function):
    r"""SLaM's loss from the student's logits ``z`` (n, K), in one autograd node: the log-softmax, the mixed
    terms evaluated only at the entries of M, and a hand-written backward that folds the log-softmax's
    backward in (one node instead of two saves a full (n, K) pass and the autograd hops).

    Other inputs: t (n, K) teacher probabilities and s_t (n,) their row sums, the :class:`_MaskEntries`,
    la (n,) = log(alpha), and (``entries.spread``) r0 = log(c / alpha) and r1 = log((alpha - c) / alpha),
    with c = (1 - alpha)/(k - 1) (normalised) or 1 - alpha (un-normalised).

    On M, log(mix / alpha) = logaddexp(r0, r1 + log f); off M, log(mix / alpha) = log f. So

        -loss = sum_j t_j log mix_j = sum_{off M} t_j log f_j + sum_M t_j log(mix_j / alpha) + s_t log alpha,

    one row sum over a single (n, K) array whose entries on M are overwritten. Its terms all have the sign
    of log mix except the bounded shift ``t_j log alpha`` on M, so the rounding error stays within a few
    ulps of ``loss + 2 |log alpha|`` (|log alpha| <= log 2); the shorter ``t . log f`` plus a correction on
    M would cancel large terms (``t_j log f_j`` for a very unlikely class in M).

    Backward: with :math:`\tilde t` = t off M and :math:`t_j r_j` on M, :math:`r_j = (\alpha - c) f_j /
    \mathrm{mix}_j \in [0, 1]`, the loss's gradient in log f is :math:`-\tilde t`, and through the
    log-softmax :math:`\partial \ell / \partial z = (\sum_j \tilde t_j) f - \tilde t`."""

    @staticmethod
    def forward(ctx, z, t, s_t, entries, la, r0, r1):  # type: ignore[override]
        # called by slam_loss with autocast already off and every input in the compute dtype
        lf = torch.log_softmax(z, dim=1)
        lf_m, t_m = entries.pick(lf), entries.pick(t)
        lr_m = torch.logaddexp(r0, r1 + lf_m)  # log(mix / alpha) on M: finite (r0 or r1 finite)
        terms = t * lf
        entries.put_(terms, t_m * lr_m)
        ctx.entries = entries
        ctx.save_for_backward(lf, t, s_t, la, r0, t_m, lr_m)
        return terms.sum(dim=1).addcmul_(la, s_t).neg_()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        lf, t, s_t, la, r0, t_m, lr_m = ctx.saved_tensors
        entries = ctx.entries
        grad_z = grad_t = None
        with _autocast_off(lf.device):
            if ctx.needs_input_grad[0]:
                # t~ = t off M and t r on M; d loss / dz = g (S f - t~) with S = sum_j t~_j, written into a
                # single new (n, K) array (each fresh large array costs page faults on the CPU)
                miss = (r0 - lr_m).exp_().mul_(t_m)  # t (1 - r) on M, 1 - r = c / mix
                scale = s_t - entries.row_sum(miss)
                scale.mul_(grad)  # g S
                grad_z = torch.exp(lf).mul_(scale[:, None]).addcmul_(t, grad[:, None], value=-1.0)
                entries.put_(grad_z, entries.pick(grad_z).addcmul_(miss, entries.spread(grad)))
            if ctx.needs_input_grad[1]:
                # d loss / d t_j = -log mix_j = -(log alpha + log f_j) off M, -(log alpha + lr_j) on M
                grad_t = entries.put_(lf.clone(), lr_m).add_(la[:, None]).mul_(grad.neg()[:, None])
        return grad_z, grad_t, None, None, None, None, None


def _flatnonzero_bool(nz: np.ndarray) -> np.ndarray:
    """``np.flatnonzero`` of a contiguous 1-D bool array, about 2x faster on sparse masks: the 8-byte words
    holding a True first, then the True bytes within those words only (same sorted int64 indices)."""
    if nz.size % 8:
        return np.flatnonzero(nz)
    words = nz.view(np.int64)
    hit = np.flatnonzero(words != 0)
    inside = np.flatnonzero(words[hit].view(np.bool_))  # a bool array's bytes are 0 or 1
    return hit[inside >> 3] * 8 + (inside & 7)


def _mask_entries(mask: torch.Tensor, n: int, num_classes: int, validate: bool, from_k: bool) -> _MaskEntries:
    """The ones of an (n, K) mask as :class:`_MaskEntries`. Checks 0/1 values and >= 2 ones per row (the
    rule of :func:`robustdistill.algorithms.slam.check_mask`, which words the error).

    On the CPU the scan is numpy's (``torch.nonzero`` is 3-9x slower there, torch 2.13)."""
    nz = mask if mask.dtype == torch.bool else mask != 0
    if nz.device.type == "cpu":
        flat_np = _flatnonzero_bool(np.ascontiguousarray(nz.numpy()).reshape(-1))
        rows_np = flat_np // num_classes
        counts_np = np.bincount(rows_np, minlength=n)
        lo, hi = int(counts_np.min()), int(counts_np.max())
        flat, rows, counts = torch.from_numpy(flat_np), torch.from_numpy(rows_np), torch.from_numpy(counts_np)
    else:
        flat = nz.reshape(-1).nonzero().flatten()
        rows = torch.div(flat, num_classes, rounding_mode="floor")
        counts = torch.bincount(rows, minlength=n)
        lo, hi = torch.stack(torch.aminmax(counts)).tolist()  # one sync
    if validate and not from_k:
        bad = lo < 2
        if not bad and mask.dtype != torch.bool:
            bad = bool((mask.reshape(-1).index_select(0, flat) != 1).any())
        if bad:
            check_mask(as_numpy(mask, "topk_mask"), (n, num_classes))  # raises with the reason
            raise ValueError("topk_mask must hold only 0 and 1 with at least 2 ones per row")
    if lo == hi:  # uniform: flat is sorted, so row i's ones are flat[i k : (i + 1) k]
        return _MaskEntries(flat.view(n, lo), None, lo)
    return _MaskEntries(flat, rows, counts)


def _index_entries(index: object, like: torch.Tensor, validate: bool, zname: str = "logits") -> _MaskEntries:
    """``topk_index`` (n, k) class indices as :class:`_MaskEntries`: integers, 2 <= k <= K, and (when
    ``validate``) each row k distinct classes in 0..K-1, checked with one sync."""
    n, num_classes = like.shape
    idx = _as_tensor(index, "topk_index", like, zname)
    if idx.dtype == torch.bool or idx.is_floating_point() or idx.is_complex():
        raise TypeError(f"topk_index must hold integer class indices, got dtype {idx.dtype}")
    _check_real(idx, "topk_index")
    if idx.ndim != 2 or idx.shape[0] != n or not 2 <= idx.shape[1] <= num_classes:
        raise ValueError(
            f"topk_index must have shape (n, k) = ({n}, k) with 2 <= k <= {num_classes} like {zname} (mixing "
            f"needs at least 2 classes), got shape {tuple(idx.shape)}"
        )
    idx = idx.long()
    k = idx.shape[1]
    if validate:
        # on the CPU numpy's reductions (about 1 us each on (n, 2)) beat torch's small-op overhead
        xp, x = (np, idx.numpy()) if idx.device.type == "cpu" else (torch, idx)
        if k == 2:
            repeated = x[:, 0] == x[:, 1]
        else:  # a repeat in the sorted row is next to its twin
            ordered = np.sort(x, axis=1) if xp is np else x.sort(dim=1).values
            repeated = (ordered[:, 1:] == ordered[:, :-1]).any(1)
        if xp is np:
            lo, hi, rep = x.min(), x.max(), repeated.any()
        else:
            lo, hi, rep = torch.stack((*torch.aminmax(x), repeated.any().long())).tolist()  # one sync
        if lo < 0 or hi >= num_classes:
            i = int(((idx < 0) | (idx >= num_classes)).any(dim=1).nonzero()[0, 0])
            raise ValueError(f"topk_index must lie in 0..{num_classes - 1}; row {i} is {idx[i].tolist()}")
        if rep:
            i = int(xp.flatnonzero(repeated)[0]) if xp is np else int(repeated.nonzero()[0, 0])
            raise ValueError(f"topk_index rows must hold {k} distinct classes; row {i} is {idx[i].tolist()}")
    flat = torch.arange(0, n * num_classes, num_classes, device=idx.device)[:, None] + idx  # (n, k)
    return _MaskEntries(flat, None, k)


def _slam_alpha(
    alpha: object, like: torch.Tensor, counts: int | torch.Tensor, normalize: bool, validate: bool, dtype: torch.dtype
) -> torch.Tensor:
    """alpha as an (n,) tensor of ``dtype`` on like's device, checked (when ``validate``, in its own dtype)
    against :func:`~robustdistill.algorithms.validation.check_alpha` and
    :func:`~robustdistill.algorithms.slam.check_alpha_for_mix` with one reduction; those word the error."""
    n = like.shape[0]
    a = _as_tensor(alpha, "alpha", like, "student_logits")
    _check_real(a, "alpha")
    if not validate:
        return _per_example(a, "alpha", like, dtype, "student_logits").detach()
    if a.is_floating_point() and (a.ndim == 0 or a.shape == (n,)):
        a = a.detach()
        if isinstance(counts, int) or not normalize:  # one bound for every row: the extremes decide
            lo, hi = torch.aminmax(a)  # NaN propagates and fails both tests
            low = 1.0 / counts if normalize else 0.5
            if bool((lo > low if normalize else lo >= low) & (hi <= 1.0)):
                return a.to(dtype).expand(n)
        elif bool(((a > 1.0 / counts.to(a.dtype)) & (a <= 1.0)).all()):
            return a.to(dtype).expand(n)
    a_np = check_alpha(as_numpy(alpha, "alpha"), n, like="student_logits")  # raises with the reason
    k = np.full(n, counts) if isinstance(counts, int) else counts.cpu().numpy()
    check_alpha_for_mix(a_np, k, normalize)
    return torch.as_tensor(a_np, device=like.device).to(dtype)


def slam_loss(
    student_logits: torch.Tensor,
    teacher_probs: object,
    alpha: object,
    topk_mask: object | None = None,
    *,
    k: object | None = None,
    topk_index: object | None = None,
    normalize: bool = False,
    validate: bool = True,
) -> torch.Tensor:
    r"""SLaM, Student-Label Mixing (Kontonis et al., NeurIPS 2023): the teacher-label cross-entropy against
    the mixed student prediction, per example.

    .. math::

        \mathrm{mix}_i(f) &= \alpha f_i + (1-\alpha)(1-f_i)\, M_i / c, \qquad
            c = k - 1 \ \text{(normalised, (2))} \ \text{or}\ 1 \ \text{(un-normalised, (2'))} \\
        \ell_{\mathrm{SLaM}} &= -\sum_i y_{s,i} \log \mathrm{mix}_i\bigl(\mathrm{softmax}(z)\bigr)   \qquad (3)

    Forms (2) and (2') are (paper); the paper's experiments use (2') (the default here). The loss (3) as
    the cross-entropy against the mixed prediction is (our formulation). ``alpha = 1`` gives ``mix = f``:
    plain distillation, :func:`kd_loss` at temperature 1.

    **Log-space computation** (our formulation, ``docs/theory/slam.md#slam-log-space``). With :math:`\log f =
    \mathrm{log\_softmax}(z)` and :math:`\bar c = (1-\alpha)/c`, on :math:`M` the mix is
    :math:`\bar c + (\alpha - \bar c) f_i` (``docs/theory/slam.md#slam-log-space``), so

    .. math::

        \log \mathrm{mix}_i = \begin{cases}
            \log\alpha + \mathrm{logaddexp}\bigl(\log (\bar c/\alpha),\ \log(1 - \bar c/\alpha) + \log f_i\bigr)
                & i \in M \\
            \log \alpha + \log f_i & i \notin M.
        \end{cases}

    This is the log-space form :math:`\mathrm{logaddexp}(\log\alpha + \log f_i,\ \log \bar c + \log(1 - f_i))`
    regrouped: both sum the same two non-negative terms, :math:`\alpha - \bar c \ge 0` under the bounds
    below, and it needs no :math:`\log(1 - f_i)` (so no special case for the row's argmax). Every
    :math:`\log \mathrm{mix}_i` is finite for finite logits, including ``alpha = 1``
    (:math:`\log \bar c = -\infty`) and ``alpha = 1/2`` un-normalised (:math:`\log(\alpha-\bar c) =
    -\infty`); no clamping. The mixed terms are evaluated only at the ``n k`` entries of :math:`M` (forward
    and a hand-written backward), so the cost stays near :func:`soft_cross_entropy`'s. ``alpha`` and the
    mask are constants (no gradient); gradients flow to the logits and the teacher probabilities; second
    derivatives are not supported.

    **The top-k set** :math:`M` is given in exactly one of three forms:

    - ``topk_index``: (n, k) integer class indices, e.g. :func:`teacher_topk_index` computed once per pool
      and sliced with the batch: the fastest form (``bench losses``: no mask scan, ``n k`` integers);
    - ``topk_mask``: an (n, K) 0/1 mask, e.g. :func:`robustdistill.algorithms.slam.topk_mask` or
      :func:`teacher_topk_mask`; the only form for a per-example :math:`k(x)`; each call scans it;
    - ``k``: an int or (n,) ints, the top-k of ``teacher_probs`` found on every call (ties to the lower
      index).

    Args:
        student_logits: (n, K) float tensor ``z``.
        teacher_probs: (n, K) rows on the simplex, :math:`y_s(x)`.
        alpha: scalar or (n,) teacher accuracy :math:`\alpha(x)` in [0, 1]; ``>= 1/2`` when
            ``normalize=False``, ``> 1/k`` (that row's ``k``) when ``normalize=True``
            (:func:`robustdistill.algorithms.slam.check_alpha_for_mix`). Clip it first with
            :func:`robustdistill.algorithms.slam.clip_alpha`.
        topk_mask: (n, K) 0/1 (bool, integer or float) with at least 2 ones per row.
        k: an int or an (n,) integer array in 2..K.
        topk_index: (n, k) integers, 2 <= k <= K, each row k distinct classes (checked when ``validate``;
            with ``validate=False`` a repeated class gives wrong numbers).
        normalize: form (2) (theory, simulators) instead of (2') (experiments; default).
        validate: check values (finite logits, simplex rows, 0/1 mask or distinct in-range indices, the
            alpha bounds); shapes always.

    Returns:
        (n,) float32 tensor (float64 for float64 logits), non-negative (each :math:`\mathrm{mix}_i \le 1`).

    Note:
        On CUDA a ragged mask (rows with different k) is summed with ``index_add_`` (atomic adds): bitwise
        reproducible only under ``torch.use_deterministic_algorithms(True)``.

    >>> z = torch.tensor([[2.0, 0.0, -1.0]])
    >>> slam_loss(z, [[0.0, 1.0, 0.0]], 0.8, topk_index=[[0, 1]])
    tensor([1.3148])
    """
    zl = _check_logits(student_logits, "student_logits", validate)
    z, dtype = zl.z, zl.dtype
    n, num_classes = z.shape
    normalize = check_flag(normalize, "normalize")
    t, s_t = _probs_and_sums(teacher_probs, "teacher_probs", z, dtype, validate, "student_logits")
    t = t.contiguous()
    if (topk_mask is not None) + (k is not None) + (topk_index is not None) != 1:
        raise ValueError(
            "pass exactly one of topk_mask (an (n, K) 0/1 mask), k (an int or (n,) ints) and topk_index "
            "(an (n, k) array of class indices)"
        )
    if isinstance(alpha, torch.Tensor) and alpha.device != z.device:
        raise ValueError(
            f"alpha is on device {alpha.device} but student_logits is on {z.device}; move them to the same device"
        )
    if topk_index is not None:
        entries = _index_entries(topk_index, z, validate, "student_logits")
    elif k is not None:
        kk = check_k(k, n, num_classes)
        if kk.min() < 2:
            i = int(np.argmin(kk))
            raise ValueError(
                f"k must be >= 2: mixing needs at least 2 classes in the top-k mask; k = {int(kk[i])} at index {i}"
            )
        if kk.min() == kk.max():
            entries = _index_entries(_topk_index(t.detach(), int(kk[0])), z, validate=False)
        else:
            mask = _topk_mask(t.detach(), torch.as_tensor(kk, device=t.device))
            entries = _mask_entries(mask, n, num_classes, validate, from_k=True)
    else:
        mask = _as_tensor(topk_mask, "topk_mask", z, "student_logits")
        if mask.is_complex():
            raise TypeError(f"topk_mask must hold 0 and 1, got dtype {mask.dtype}")
        if mask.shape != z.shape:
            raise ValueError(f"topk_mask must have shape {tuple(z.shape)} like student_logits, got {tuple(mask.shape)}")
        entries = _mask_entries(mask, n, num_classes, validate, from_k=False)
    a = _slam_alpha(alpha, z, entries.counts, normalize, validate, dtype)

    with _autocast_off(z.device):
        # log alpha, r0 = log(c / alpha) and r1 = log((alpha - c) / alpha), per row, in the compute dtype;
        # un-normalised, 1 - alpha and alpha - (1 - alpha) are exact for alpha in [1/2, 1] (Sterbenz), and
        # r1 = -inf at alpha = 1/2 (mix = 1/2 on M, no gradient); r0 = -inf at alpha = 1 (mix = f). Three
        # (n,) logs, not one log of a stacked (3, n): under CPU contention the stacked call can be off by up
        # to 4e-5 in its worker-thread chunks (MKL VML), the separate calls are not
        c = 1.0 - a if not normalize else (1.0 - a) / (entries.counts - 1)
        la = torch.log(a)
        r0 = torch.log(c).sub_(la)
        r1 = torch.log(a - c).sub_(la)
        return zl.finish(
            _SLaMFromLogits.apply(z.to(dtype), t, s_t, entries, la, entries.spread(r0), entries.spread(r1))
        )


def slam_binary_log_mix(logit: torch.Tensor, alpha: object) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Binary stable form of the SLaM mix (our formulation, ``docs/theory/slam.md#slam-log-space``): for the positive-class
    logit :math:`t` and :math:`\mathrm{mix} = (1-\alpha) + (2\alpha - 1)\sigma(t)` (forms (2) and (2')
    coincide for :math:`K = k = 2`). The theory page writes

    .. math::

        \log \mathrm{mix} &= \mathrm{logaddexp}(\log\alpha,\ \log(1-\alpha) - t) - \mathrm{softplus}(-t) \\
        \log(1 - \mathrm{mix}) &= \mathrm{logaddexp}(\log(1-\alpha),\ \log\alpha - t) - \mathrm{softplus}(-t);

    this evaluates the same expressions with the softplus moved inside,
    :math:`\log\mathrm{mix} = \mathrm{logaddexp}(\log\alpha - \mathrm{softplus}(-t),\
    \log(1-\alpha) - \mathrm{softplus}(t))` (using :math:`t = \mathrm{softplus}(t) - \mathrm{softplus}(-t)`),
    so that no two large terms cancel when :math:`|t|` is large.

    Args:
        logit: (n,) float tensor :math:`t`.
        alpha: scalar or (n,) in [1/2, 1].

    Returns:
        ``(log mix, log(1 - mix))``, two (n,) tensors (float32, or float64 for float64 logits).
    """
    if not isinstance(logit, torch.Tensor) or not logit.is_floating_point():
        raise TypeError("logit must be a floating-point torch.Tensor of shape (n,)")
    if logit.ndim != 1 or logit.shape[0] == 0:
        raise ValueError(f"logit must be 1-D of shape (n,), n >= 1, got shape {tuple(logit.shape)}")
    if not bool(torch.isfinite(logit.detach()).all()):
        raise ValueError("logit must be finite")
    n = logit.shape[0]
    dtype = _compute_dtype(logit)
    a_np = check_alpha(as_numpy(alpha, "alpha"), n, like="logit")
    check_alpha_for_mix(a_np, np.full(n, 2), False)
    with _autocast_off(logit.device):
        x = logit.to(dtype)
        a = torch.as_tensor(a_np, dtype=dtype, device=x.device)
        la, l1a = torch.log(a), torch.log1p(-a)
        log_sig, log_sig_neg = -nn.functional.softplus(-x), -nn.functional.softplus(x)  # log s(t), log s(-t)
        log_mix = torch.logaddexp(la + log_sig, l1a + log_sig_neg)
        return log_mix, torch.logaddexp(l1a + log_sig, la + log_sig_neg)


# ----------------------------------------------------------------------------------------------------
# Forward and backward correction (Patrini et al. 2017; Natarajan et al. 2013)


def _safe_log(s: torch.Tensor) -> torch.Tensor:
    """log s with log 0 = -inf and a zero (not NaN) gradient there."""
    pos = s > 0
    return torch.where(pos, torch.log(torch.where(pos, s, torch.ones_like(s))), float("-inf"))


def _log_f_times_t(lf: torch.Tensor, transition: torch.Tensor) -> torch.Tensor:
    r""":math:`\log (fT)_j = \mathrm{logsumexp}_i(\log f_i + \log T_{ij})` by matrix products, (n, K).

    Rows of ``exp(log f - max log f)`` times ``T`` scaled by its column maxima, in bands of width
    :math:`W = -\log(\text{tiny})/2` of :math:`\log f`, so that no term that matters underflows: one
    product when the log-probabilities span less than W (43.7 nats in float32, 354 in float64), one more
    per further occupied band. Entries with :math:`(fT)_j = 0` (a zero column of T) are -inf with a zero gradient.
    """
    dtype = lf.dtype
    width = -math.log(torch.finfo(dtype).tiny) / 2.0
    colmax = transition.amax(dim=0)
    colmax = torch.where(colmax > 0, colmax, torch.ones_like(colmax))
    scaled = transition / colmax
    shift = lf.amax(dim=1, keepdim=True)
    rel = lf - shift  # <= 0, max 0 per row
    if float(-rel.detach().min()) < width:  # one band: the usual case
        log_s = _safe_log(torch.exp(rel) @ scaled)
    else:
        band = torch.floor(-rel.detach() / width)
        parts = []
        for b in torch.unique(band).tolist():  # only the occupied bands
            inside = band == b
            # shifted by the band's own top value, so the exponents are exact differences of nearby numbers
            # (rel + b * width loses every digit once |rel| / width nears 2**53)
            top = torch.where(inside, rel.detach(), float("-inf")).amax()
            e = torch.exp(torch.where(inside, rel - top, float("-inf")))
            parts.append(_safe_log(e @ scaled) + top)
        stacked = torch.stack(parts)
        empty = torch.isneginf(stacked).all(dim=0)
        total = torch.logsumexp(torch.where(empty, 0.0, stacked), dim=0)
        log_s = torch.where(empty, float("-inf"), total)
    return log_s + shift + torch.log(colmax)


def _cross_entropy_with_log(t: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """-sum_j t_j log q_j with 0 log 0 = 0, +inf where t_j > 0 = q_j, and finite gradients."""
    impossible = torch.isneginf(log_q)
    loss = -(t * log_q.masked_fill(impossible, 0.0)).sum(dim=1)
    hit = (t * impossible).sum(dim=1) > 0
    return torch.where(hit, float("inf"), loss)


def forward_corrected_loss(
    logits: torch.Tensor, noisy_targets: object, transition: object, *, validate: bool = True
) -> torch.Tensor:
    r"""Forward-corrected cross-entropy (Patrini et al., CVPR 2017) per example.

    .. math::

        \ell_i = -\sum_j \tilde t_{ij} \log\bigl(f_i T\bigr)_j, \qquad f_i = \mathrm{softmax}(z_i),
        \quad (fT)_j = \sum_l f_l\, T_{lj} = P(\text{teacher says } j)

    with :math:`T_{lj} = P(\text{teacher says } j \mid \text{true } l)` row-stochastic. Computed in log space,
    :math:`\log(fT)_j = \mathrm{logsumexp}_l(\log f_l + \log T_{lj})`, by matrix products over bands of
    :math:`\log f` (no underflow of any term that matters, zero entries of T allowed, no
    :math:`O(nK^2)` intermediate). ``T = I`` gives :func:`soft_cross_entropy`. A target that puts mass on a
    class whose column of T is zero gets loss ``+inf``. The toolkit's use as a baseline is
    ``docs/theory/weighted.md#weighted-baselines`` (our formulation); SLaM's normalised mix (2) with ``k = K`` is this loss with
    :math:`T = \alpha I + (1-\alpha)(11^\top - I)/(K-1)` (``docs/theory/slam.md#slam-forward-correction``).

    Args:
        logits: (n, K) float tensor.
        noisy_targets: (n, K) rows on the simplex (the teacher's labels), or (n,) integer labels
            (converted to one-hot).
        transition: (K, K) row-stochastic T.
        validate: check values; shapes always.

    Returns:
        (n,) float32 tensor (float64 for float64 logits), non-negative.
    """
    zl = _check_logits(logits, "logits", validate)
    z, dtype = zl.z, zl.dtype
    t = _targets(noisy_targets, "noisy_targets", z, dtype, validate)
    tm = _transition(transition, "transition", z, dtype, validate)
    with _autocast_off(z.device):
        return zl.finish(_forward_corrected(z.to(dtype), t, tm), infinite_ok=True)


def _forward_corrected(z: torch.Tensor, t: torch.Tensor, transition: torch.Tensor) -> torch.Tensor:
    return _cross_entropy_with_log(t, _log_f_times_t(torch.log_softmax(z, dim=1), transition))


def _inverse_transition(transition: torch.Tensor, name: str = "transition") -> torch.Tensor:
    """T^{-1} in float64 on the CPU (numpy), after the condition-number check; same device as T."""
    t64 = transition.detach().to("cpu", torch.float64).numpy()
    check_condition(t64, name, hint="; use forward_corrected_loss")
    return torch.as_tensor(np.linalg.inv(t64), device=transition.device)


def backward_corrected_loss(
    logits: torch.Tensor, noisy_targets: object, transition: object, *, validate: bool = True
) -> torch.Tensor:
    r"""Backward-corrected cross-entropy (Natarajan et al., NeurIPS 2013; Patrini et al., CVPR 2017) per
    example.

    .. math::

        \ell^{\leftarrow}_i = \sum_j \tilde t_{ij} \bigl(T^{-1} \ell_{\mathrm{vec}}(f_i)\bigr)_j,
        \qquad \ell_{\mathrm{vec}}(f)_l = -\log f_l,

    i.e. the soft cross-entropy against the targets :math:`\tilde t\, T^{-1}`, whose rows sum to 1 but can
    have negative entries. It is unbiased: for a true label :math:`y` and :math:`\tilde y \sim T[y]`,
    :math:`E[\ell^{\leftarrow}(f, \tilde y)] = -\log f_y` (``docs/theory/weighted.md#weighted-lemma-5``, our formulation).
    **Per-example values can be negative**, and its gradients are unbounded in :math:`1/(1-2\eta)`-type
    factors; that is the price of unbiasedness.

    :math:`T^{-1}` is computed in float64 on every call (:math:`O(K^3)`, with a ``ValueError`` when
    :math:`\mathrm{cond}_2(T) >` :data:`MAX_TRANSITION_CONDITION`); :class:`BackwardCorrectedLoss` computes
    it once.

    Args:
        logits: (n, K) float tensor.
        noisy_targets: (n, K) rows on the simplex, or (n,) integer labels (converted to one-hot).
        transition: (K, K) row-stochastic T, invertible and well-conditioned. ``T = I`` gives
            :func:`soft_cross_entropy`.
        validate: check values; shapes always (the condition number is always checked).

    Returns:
        (n,) float32 tensor (float64 for float64 logits); may be negative.
    """
    zl = _check_logits(logits, "logits", validate)
    z, dtype = zl.z, zl.dtype
    t = _targets(noisy_targets, "noisy_targets", z, dtype, validate)
    tm = _transition(transition, "transition", z, None, validate)  # inverted from its own precision
    inverse = _inverse_transition(tm).to(dtype)
    with _autocast_off(z.device):
        return zl.finish(_backward_corrected(z.to(dtype), t, inverse))


def _backward_corrected(z: torch.Tensor, t: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    return -((t @ inverse) * torch.log_softmax(z, dim=1)).sum(dim=1)


# ----------------------------------------------------------------------------------------------------
# Taylor cross-entropy (Feng et al., IJCAI 2020)


def _log1m_softmax(z: torch.Tensor, lf: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(1 - f_i)` for every entry, stable (``docs/theory/slam.md#slam-log-space``): ``log1p(-f_i)`` off the row's
    argmax (there :math:`f_i \le 1/2`), and :math:`\mathrm{logsumexp}(z_{-i}) - \mathrm{logsumexp}(z)` at it."""
    top = z.detach().argmax(dim=1, keepdim=True)
    f_off = lf.exp().scatter(1, top, 0.0)  # the argmax entry would give log1p(-1) = -inf: keep it out
    out = torch.log1p(-f_off)
    zs = z - z.detach().gather(1, top)  # shifted by the row's top value: no cancellation of large logits
    others = torch.logsumexp(zs.scatter(1, top, float("-inf")), dim=1, keepdim=True)
    at_top = others - torch.logsumexp(zs, dim=1, keepdim=True)
    return out.scatter(1, top, at_top)


def negative_learning_loss(logits: torch.Tensor, negative_mask: object, *, validate: bool = True) -> torch.Tensor:
    r"""Negative learning (Kim et al., ICCV 2019; UPS, Rizve et al., ICLR 2021): the mean over an example's
    negative labels ("not class c") of :math:`-\log(1 - f_c)`, :math:`f = \mathrm{softmax}(z)`; 0 for an
    example without negative labels (``docs/theory/slam.md#slam-baselines``, our formulation of the UPS baseline).

    .. math:: \ell_i = \frac{1}{\max(1, |N_i|)} \sum_{c \in N_i} -\log(1 - f_{ic})

    :math:`\log(1 - f_c)` is computed stably (``log1p(-f)`` off the row's argmax, a log-sum-exp at it), so it
    is finite for logits up to +-100.

    Args:
        logits: (n, K) float tensor.
        negative_mask: (n, K) 0/1 (bool, integer or float): the negative labels N_i.
        validate: check values (finite logits, 0/1 mask); shapes always.

    Returns:
        (n,) float32 tensor (float64 for float64 logits), non-negative.

    >>> negative_learning_loss(torch.tensor([[2.0, 0.0, 0.0]]), [[0, 1, 1]])
    tensor([0.1126])
    """
    zl = _check_logits(logits, "logits", validate)
    z, dtype = zl.z, zl.dtype
    mask = _as_tensor(negative_mask, "negative_mask", z)
    if mask.is_complex():
        raise TypeError(f"negative_mask must hold 0 and 1, got dtype {mask.dtype}")
    if mask.shape != z.shape:
        raise ValueError(f"negative_mask must have shape {tuple(z.shape)} like the logits, got {tuple(mask.shape)}")
    if validate and mask.dtype != torch.bool and bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError("negative_mask must hold only 0 and 1")
    with _autocast_off(z.device):
        zc = z.to(dtype)
        m = mask.to(dtype)
        total = -(_log1m_softmax(zc, torch.log_softmax(zc, dim=1)) * m).sum(dim=1)
        return zl.finish(total / m.sum(dim=1).clamp_min(1.0))


def taylor_cross_entropy(
    logits: torch.Tensor, targets: object, order: int = 2, *, validate: bool = True
) -> torch.Tensor:
    r"""Taylor cross-entropy (Feng, Shu, Lin, Lv, Li, An, IJCAI 2020) per example: the order-``t``
    Taylor series of :math:`-\log f_y` around :math:`f_y = 1`.

    .. math::

        \ell_i = \sum_{m=1}^{t} \frac{(1 - f_{y})^m}{m} \quad \text{(integer labels)}, \qquad
        \ell_i = \sum_c \tilde t_c \sum_{m=1}^{t} \frac{(1 - f_c)^m}{m} \quad \text{(soft targets)}

    ``order = 1`` is the MAE-like :math:`1 - f_y`; as ``order`` grows it tends to cross-entropy. The soft
    version is the toolkit's adaptation to teacher probabilities (``docs/theory/slam.md#slam-baselines``, our formulation);
    the default order is 2. :math:`1 - f_c` is computed as :math:`\exp\log(1-f_c)` with the stable
    log form (:math:`\log(1-f_c)` = ``log1p(-f_c)`` off the argmax, a logsumexp without it at the argmax),
    so it stays accurate as :math:`f_c \to 1`.

    Args:
        logits: (n, K) float tensor.
        targets: (n,) integer labels or (n, K) rows on the simplex.
        order: an int ``t`` in 1..:data:`MAX_TAYLOR_ORDER` (1000).
        validate: check values; shapes always.

    Returns:
        (n,) float32 tensor (float64 for float64 logits), in :math:`[0, H_t]`, :math:`H_t = \sum_{m\le t} 1/m`.
    """
    order = check_taylor_order(order)
    zl = _check_logits(logits, "logits", validate)
    z, dtype = zl.z, zl.dtype
    n, num_classes = z.shape
    raw = _as_tensor(targets, "targets", z)
    _check_real(raw, "targets")
    hard = raw.ndim == 1 and not raw.is_floating_point()
    if hard:
        y = _labels(raw, "targets", n, num_classes, validate)
    else:
        t = _targets(raw, "targets", z, dtype, validate)
    with _autocast_off(z.device):
        zz = z.to(dtype)
        p = torch.exp(_log1m_softmax(zz, torch.log_softmax(zz, dim=1)))  # 1 - f, accurate near f = 1
        if hard:
            p = p.gather(1, y[:, None]).squeeze(1)
        series = torch.full_like(p, 1.0 / order)
        for m in range(order - 1, 0, -1):  # Horner: p (1 + p (1/2 + p (1/3 + ...)))
            series = series * p + 1.0 / m
        series = series * p
        return zl.finish(series if hard else (t * series).sum(dim=1))


#: The largest order of :func:`taylor_cross_entropy`: its series is evaluated term by term (the order-1000
#: series differs from cross-entropy by less than (1 - f)^1000 / 1000).
MAX_TAYLOR_ORDER = 1000


def check_taylor_order(order: object) -> int:
    """A Taylor cross-entropy order: an int in 1..:data:`MAX_TAYLOR_ORDER`."""
    return check_int(order, "order", low=1, high=MAX_TAYLOR_ORDER)


# ----------------------------------------------------------------------------------------------------
# nn.Module wrappers


def reduce_loss(loss: torch.Tensor, weight: object | None = None, reduction: str = "mean") -> torch.Tensor:
    r"""Weight and reduce per-example losses: ``"none"`` gives :math:`w_i \ell_i`, ``"sum"``
    :math:`\sum_i w_i \ell_i` and ``"mean"`` :math:`\frac{1}{n}\sum_i w_i \ell_i` (divided by the number of
    examples, **not** by :math:`\sum_i w_i`; weighted distillation normalises the weights to mean 1 over
    the pool beforehand, ``docs/theory/weighted.md#weighted-normalisation``). ``weight=None`` means :math:`w \equiv 1`.

    Args:
        loss: (n,) floating-point tensor (its values are not checked: an infinite loss stays infinite).
        weight: None, or (n,) finite real weights (tensor on the loss's device, array or list); a weighted
            loss that overflows is a ``ValueError``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    reduction = check_choice(reduction, "reduction", REDUCTIONS)
    if not isinstance(loss, torch.Tensor) or not loss.is_floating_point():
        got = f"dtype {loss.dtype}" if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise TypeError(f"loss must be a floating-point torch.Tensor of per-example losses, got {got}")
    if loss.ndim != 1:
        raise ValueError(f"loss must be 1-D of shape (n,) (per-example losses), got shape {tuple(loss.shape)}")
    if weight is None:
        return _reduce(loss, reduction)
    w = _per_example(weight, "weight", loss[:, None], loss.dtype, "loss")
    out = _reduce(loss * w, reduction)
    finite_w = torch.isfinite(w.detach()).all()
    overflow = (~torch.isfinite(out.detach())).any() & torch.isfinite(loss.detach()).all()
    finite_w, overflow = torch.stack((finite_w, overflow)).tolist()  # one sync
    if not finite_w:
        raise ValueError("weight must be finite")
    if overflow:
        raise ValueError(f"weight times loss overflows {loss.dtype} (the weights are too large for these losses)")
    return out


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _fixed_transition(transition: object) -> torch.Tensor:
    """A module's transition matrix: a float64 CPU tensor, square, K >= 2, rows on the simplex."""
    arr = as_real_array(transition, "transition")
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 2:
        raise ValueError(f"transition must be a square (K, K) matrix with K >= 2, got shape {arr.shape}")
    tm = torch.tensor(arr.astype(np.float64), dtype=torch.float64)
    _check_simplex_rows(tm, "transition", SIMPLEX_ATOL, what="a row-stochastic matrix")
    return tm


def _with_fixed_matrix(
    loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    logits: torch.Tensor,
    noisy_targets: object,
    matrix: torch.Tensor,
    validate: bool,
) -> torch.Tensor:
    """A module's per-example loss ``loss(z, t, matrix)`` with its fixed (K, K) buffer (T or its inverse),
    checked against the logits' K and moved to their device and compute dtype."""
    zl = _check_logits(logits, "logits", validate)
    z, dtype = zl.z, zl.dtype
    t = _targets(noisy_targets, "noisy_targets", z, dtype, validate)
    if matrix.shape != (z.shape[1], z.shape[1]):
        raise ValueError(f"the transition is {tuple(matrix.shape)} but the logits have {z.shape[1]} classes")
    with _autocast_off(z.device):
        return zl.finish(
            loss(z.to(dtype), t, matrix.to(device=z.device, dtype=dtype)), infinite_ok=loss is _forward_corrected
        )


class _ReducedLoss(nn.Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class SoftCrossEntropy(_ReducedLoss):
    r"""Module form of :func:`soft_cross_entropy`, with ``reduction`` and optional per-example ``weight``
    (:func:`reduce_loss`: ``"mean"`` is :math:`\sum_i w_i \ell_i / n`)."""

    def forward(self, logits: torch.Tensor, target_probs: object, weight: object | None = None) -> torch.Tensor:
        return reduce_loss(soft_cross_entropy(logits, target_probs), weight, self.reduction)


class KDLoss(_ReducedLoss):
    """:func:`kd_loss` (temperature on both sides, times :math:`\\tau^2` by default) with ``reduction`` and
    optional per-example ``weight`` (:func:`reduce_loss`)."""

    def __init__(self, temperature: float = 1.0, reduction: str = "mean", *, temperature_squared: bool = True):
        super().__init__(reduction)
        self.temperature = check_temperature(temperature)
        self.temperature_squared = check_flag(temperature_squared, "temperature_squared")

    def forward(
        self, student_logits: torch.Tensor, teacher_probs: object, weight: object | None = None
    ) -> torch.Tensor:
        loss = kd_loss(student_logits, teacher_probs, self.temperature, temperature_squared=self.temperature_squared)
        return reduce_loss(loss, weight, self.reduction)


class SLaMLoss(_ReducedLoss):
    """:func:`slam_loss` with ``reduction`` and optional per-example ``weight`` (:func:`reduce_loss`).

    ``k`` (one global k, the toolkit's default, ``docs/theory/slam.md#slam-defaults``) may be fixed here; then ``forward``
    takes no mask. Otherwise pass the batch's ``topk_mask`` to ``forward``.
    """

    def __init__(self, k: object | None = None, normalize: bool = False, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.k = None if k is None else _check_k_option(k)
        self.normalize = check_flag(normalize, "normalize")

    def extra_repr(self) -> str:
        return f"k={self.k!r}, normalize={self.normalize}, reduction={self.reduction!r}"

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher_probs: object,
        alpha: object,
        topk_mask: object | None = None,
        weight: object | None = None,
    ) -> torch.Tensor:
        loss = slam_loss(student_logits, teacher_probs, alpha, topk_mask, k=self.k, normalize=self.normalize)
        return reduce_loss(loss, weight, self.reduction)


def _check_k_option(k: object) -> int | np.ndarray:
    """A fixed k of :class:`SLaMLoss`: an int >= 2, or a 1-D integer array of per-example k's >= 2 (checked
    against K and n by :func:`slam_loss`)."""
    if isinstance(k, (np.ndarray, list, tuple, torch.Tensor)):
        arr = as_real_array(k, "k")
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"k must be an integer or an integer array, got dtype {arr.dtype}")
        if arr.ndim != 1 or arr.size == 0 or arr.min() < 2:
            raise ValueError(f"k as an array must be 1-D and non-empty, each k >= 2, got {arr.tolist()!r:.60}")
        return arr
    return check_int(k, "k", low=2)


class ForwardCorrectedLoss(_ReducedLoss):
    """:func:`forward_corrected_loss` with a fixed transition matrix (validated once, kept as a float64
    buffer and moved to the logits' device on use), ``reduction`` and optional per-example ``weight``
    (:func:`reduce_loss`); ``forward(..., validate=False)`` skips the value checks as the function does."""

    transition: torch.Tensor

    def __init__(self, transition: object, reduction: str = "mean") -> None:
        super().__init__(reduction)
        tm = _fixed_transition(transition)
        self.register_buffer("transition", tm)

    def forward(
        self, logits: torch.Tensor, noisy_targets: object, weight: object | None = None, *, validate: bool = True
    ) -> torch.Tensor:
        loss = _with_fixed_matrix(_forward_corrected, logits, noisy_targets, self.transition, validate)
        return reduce_loss(loss, weight, self.reduction)


class BackwardCorrectedLoss(_ReducedLoss):
    """:func:`backward_corrected_loss` with :math:`T^{-1}` computed once (float64, condition checked) and
    kept as a buffer, ``reduction`` and optional per-example ``weight`` (:func:`reduce_loss`). Per-example
    losses can be negative; ``forward(..., validate=False)`` skips the value checks as the function does."""

    inverse: torch.Tensor

    def __init__(self, transition: object, reduction: str = "mean") -> None:
        super().__init__(reduction)
        tm = _fixed_transition(transition)
        self.register_buffer("inverse", _inverse_transition(tm))

    def forward(
        self, logits: torch.Tensor, noisy_targets: object, weight: object | None = None, *, validate: bool = True
    ) -> torch.Tensor:
        loss = _with_fixed_matrix(_backward_corrected, logits, noisy_targets, self.inverse, validate)
        return reduce_loss(loss, weight, self.reduction)


class TaylorCrossEntropy(_ReducedLoss):
    """:func:`taylor_cross_entropy` with a fixed ``order``, ``reduction`` and optional per-example
    ``weight`` (:func:`reduce_loss`)."""

    def __init__(self, order: int = 2, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.order = check_taylor_order(order)

    def extra_repr(self) -> str:
        return f"order={self.order}, reduction={self.reduction!r}"

    def forward(self, logits: torch.Tensor, targets: object, weight: object | None = None) -> torch.Tensor:
        return reduce_loss(taylor_cross_entropy(logits, targets, self.order), weight, self.reduction)


#: The per-example losses by name (for benchmarks and configs).
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "soft_cross_entropy": soft_cross_entropy,
    "kd_loss": kd_loss,
    "slam_loss": slam_loss,
    "forward_corrected_loss": forward_corrected_loss,
    "backward_corrected_loss": backward_corrected_loss,
    "taylor_cross_entropy": taylor_cross_entropy,
    "negative_learning_loss": negative_learning_loss,
}
