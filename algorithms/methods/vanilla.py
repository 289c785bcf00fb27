r"""Vanilla distillation (Hinton, Vinyals and Dean, 2015): the student fits the teacher's labels."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from .. import losses as L
from ._base import Method, check_choice, pool_targets, register

__all__ = ["Vanilla"]


def weighted_cross_entropy(student_logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    r"""``weights * soft_cross_entropy(z, targets)`` per example, the loss of :class:`Vanilla`,
    :class:`~robustdistill.algorithms.methods.WeightedDistillation` and
    :class:`~robustdistill.algorithms.methods.ConfidenceThreshold`."""
    return batch["weights"] * L.soft_cross_entropy(student_logits, batch["targets"], validate=False)


@register
class Vanilla(Method):
    r"""Vanilla distillation: soft cross-entropy against the teacher's probabilities (or the one-hot of its
    argmax), weight 1 (Hinton, Vinyals and Dean, 2015; the baseline of Iliopoulos et al., NeurIPS 2022 and
    Kontonis et al., NeurIPS 2023).

    .. math:: \ell(z, t) = -\sum_{j=1}^K t_j \log \mathrm{softmax}(z)_j

    with :math:`t` the teacher's probabilities (``targets="soft"``), the one-hot of
    :math:`\arg\max_j t_j` (``targets="hard"``), or the true label's one-hot on labeled rows.

    Args:
        targets: ``"soft"`` (default) or ``"hard"``.

    Needs no validation-set estimate: :meth:`prepare` works before :meth:`fit` (which only records K and
    the teacher's validation accuracy for :meth:`info`).
    """

    name = "vanilla"

    def __init__(self, *, targets: str = "soft") -> None:
        self.targets = check_choice("Vanilla", "targets", targets, ("soft", "hard"))

    def _prepare(self, teacher_probs: np.ndarray) -> dict[str, np.ndarray]:
        return {"targets": pool_targets(teacher_probs, self.targets), "weights": np.ones(teacher_probs.shape[0])}

    def loss(self, student_logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B,) ``weights * soft_cross_entropy`` (the weights are 1)."""
        self._check_loss_inputs(student_logits, batch)
        return weighted_cross_entropy(student_logits, batch)
