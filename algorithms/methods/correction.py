r"""Loss correction with the teacher's noise transition matrix: forward correction (Patrini et al., CVPR
2017) and backward correction (Natarajan et al., NeurIPS 2013; Patrini et al., CVPR 2017)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .. import losses as L
from ..teacher_quality import estimate_transition
from ._base import Method, check_choice, check_real, pool_targets, register

__all__ = ["BackwardCorrection", "ForwardCorrection"]


class _TransitionMethod(Method):
    """A method whose pool loss uses the transition matrix T estimated on the validation set."""

    requires_fit = True
    _fitted = ("transition_",)

    def __init__(self, *, targets: str = "soft", smoothing: float = 1.0) -> None:
        owner = type(self).__name__
        self.targets = check_choice(owner, "targets", targets, ("soft", "hard"))
        self.smoothing = check_real(owner, "smoothing", smoothing, low=0.0)

    def _fit(self, teacher_probs_val: np.ndarray, labels_val: np.ndarray) -> dict[str, Any]:
        return {"transition_": estimate_transition(teacher_probs_val, labels_val, smoothing=self.smoothing)}

    def _prepare(self, teacher_probs: np.ndarray) -> dict[str, np.ndarray]:
        return {"targets": pool_targets(teacher_probs, self.targets), "weights": np.ones(teacher_probs.shape[0])}

    def _pool_loss(self, student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, student_logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B,) cross-entropy on labeled rows, the corrected loss on pool rows (``torch.where``)."""
        self._check_fitted()
        self._check_loss_inputs(student_logits, batch)
        targets = batch["targets"]
        ce = L.soft_cross_entropy(student_logits, targets, validate=False)
        return torch.where(batch["labeled"], ce, self._pool_loss(student_logits, targets))

    def _info(self, pool: dict[str, np.ndarray]) -> dict[str, Any]:
        return {"transition_diagonal": np.diag(self.transition_).tolist()}


@register
class ForwardCorrection(_TransitionMethod):
    r"""Forward correction (Patrini et al., CVPR 2017): the student's prediction is pushed through the
    teacher's noise before it meets the teacher's labels,

    .. math::

        \ell = -\sum_j t_j \log\bigl(f T\bigr)_j, \qquad f = \mathrm{softmax}(z), \quad
        (fT)_j = \sum_l f_l T_{lj},

    with :math:`T[i, j] = P(\text{teacher says } j \mid \text{true class } i)` estimated by :meth:`fit` as
    the validation set's confusion counts with add-``smoothing`` smoothing
    (:func:`~robustdistill.algorithms.teacher_quality.estimate_transition`); computed in log space by
    :func:`~robustdistill.algorithms.losses.forward_corrected_loss`. Labeled rows get plain cross-entropy.

    Args:
        targets: ``"soft"`` (default) or ``"hard"``.
        smoothing: the add-``smoothing`` count of the confusion matrix, >= 0 (default 1).

    Attributes (after :meth:`fit`):
        transition_: (K, K) float64 row-stochastic T.
    """

    name = "forward"

    def _matrix(self, like: torch.Tensor) -> torch.Tensor:
        """T on the logits' device in their compute dtype (float64 for float64 logits, else float32), cached."""
        dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
        key = ("transition", like.device, dtype)
        cache = self._cache()
        if key not in cache:
            cache[key] = torch.as_tensor(self.transition_, dtype=dtype, device=like.device)
        return cache[key]

    def _pool_loss(self, student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return L.forward_corrected_loss(student_logits, targets, self._matrix(student_logits), validate=False)


@register
class BackwardCorrection(_TransitionMethod):
    r"""Backward correction (Natarajan et al., NeurIPS 2013; Patrini et al., CVPR 2017): the loss vector is
    multiplied by :math:`T^{-1}`, an unbiased estimate of the clean loss,

    .. math::

        \ell = \sum_j t_j \bigl(T^{-1} \ell_{\mathrm{vec}}(f)\bigr)_j
             = -\sum_j \bigl(t\, T^{-1}\bigr)_j \log f_j, \qquad f = \mathrm{softmax}(z),

    with :math:`T` as in :class:`ForwardCorrection`
    (:func:`~robustdistill.algorithms.teacher_quality.estimate_transition`), inverted once in float64
    (:class:`~robustdistill.algorithms.losses.BackwardCorrectedLoss`; an ill-conditioned T is a
    ``ValueError`` at :meth:`fit`). Per-example values can be negative. Labeled rows get plain
    cross-entropy.

    Args:
        targets: ``"soft"`` (default) or ``"hard"``.
        smoothing: the add-``smoothing`` count of the confusion matrix, >= 0 (default 1).

    Attributes (after :meth:`fit`):
        transition_: (K, K) float64 row-stochastic T.
    """

    name = "backward"

    def _fit(self, teacher_probs_val: np.ndarray, labels_val: np.ndarray) -> dict[str, Any]:
        state = super()._fit(teacher_probs_val, labels_val)
        self._cache()[torch.device("cpu")] = L.BackwardCorrectedLoss(state["transition_"], reduction="none")
        return state

    def _module(self, device: torch.device) -> L.BackwardCorrectedLoss:
        """The loss module with :math:`T^{-1}` on ``device``: one per device, built once."""
        cache = self._cache()
        if device not in cache:
            cpu = torch.device("cpu")
            if cpu not in cache:  # a state restored by from_dict
                cache[cpu] = L.BackwardCorrectedLoss(self.transition_, reduction="none")
            cache[device] = copy.deepcopy(cache[cpu]).to(device)
        return cache[device]

    def _pool_loss(self, student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self._module(student_logits.device)(student_logits, targets, validate=False)
