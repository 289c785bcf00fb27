r"""Confidence thresholding: keep the teacher's label only where the teacher is confident."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..weighting import confidence_weights
from ._base import Method, check_choice, check_real, pool_targets, register
from .vanilla import weighted_cross_entropy

__all__ = ["ConfidenceThreshold"]


@register
class ConfidenceThreshold(Method):
    r"""Confidence thresholding, the pseudo-labelling baseline: a pool row counts only when the teacher's
    top probability reaches ``threshold``,

    .. math::

        \ell = w \Bigl(-\sum_j t_j \log \mathrm{softmax}(z)_j\Bigr), \qquad
        w = \mathbf{1}\bigl[\max_j t_j \ge \tau\bigr]

    (:func:`~robustdistill.algorithms.weighting.confidence_weights`, a 0/1 special case of the weights of
    Iliopoulos et al., NeurIPS 2022), with :math:`t` the teacher's soft probabilities or the one-hot of
    their argmax; the weight always comes from the soft probabilities. Labeled rows get cross-entropy with
    weight 1.

    Args:
        targets: ``"soft"`` (default) or ``"hard"``.
        threshold: :math:`\tau` in [0, 1] (default 0.9).

    Needs no validation-set estimate: :meth:`prepare` works before :meth:`fit`.
    """

    name = "confidence_threshold"

    def __init__(self, *, targets: str = "soft", threshold: float = 0.9) -> None:
        self.targets = check_choice("ConfidenceThreshold", "targets", targets, ("soft", "hard"))
        self.threshold = check_real("ConfidenceThreshold", "threshold", threshold, low=0.0, high=1.0)

    def _prepare(self, teacher_probs: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "targets": pool_targets(teacher_probs, self.targets),
            "weights": confidence_weights(teacher_probs, self.threshold),
        }

    def loss(self, student_logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B,) ``weights * soft_cross_entropy(z, targets)``."""
        self._check_loss_inputs(student_logits, batch)
        return weighted_cross_entropy(student_logits, batch)

    def _info(self, pool: dict[str, np.ndarray]) -> dict[str, Any]:
        return {"kept_fraction": float(np.mean(pool["weights"], dtype=np.float64))}
