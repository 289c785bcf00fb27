r"""Taylor cross-entropy (Feng et al., IJCAI 2020): a truncated Taylor series of cross-entropy, bounded and
so less sensitive to wrong labels."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from .. import losses as L
from ._base import Method, check_choice, check_integer, pool_targets, register

__all__ = ["TaylorCE"]


@register
class TaylorCE(Method):
    r"""Taylor cross-entropy (Feng et al., IJCAI 2020) on the teacher's labels: per pool row, with
    :math:`f = \mathrm{softmax}(z)`,

    .. math:: \ell = \sum_c t_c \sum_{m=1}^{\mathrm{order}} \frac{(1 - f_c)^m}{m}

    (:func:`~robustdistill.algorithms.losses.taylor_cross_entropy`; order 1 is the MAE-like
    :math:`\sum_c t_c (1 - f_c)`, and the series tends to cross-entropy as the order grows). Labeled rows
    get plain cross-entropy.

    Args:
        targets: ``"soft"`` (default) or ``"hard"``.
        order: the number of terms, an int >= 1 (default 2).

    Needs no validation-set estimate: :meth:`prepare` works before :meth:`fit`.
    """

    name = "taylor"

    def __init__(self, *, targets: str = "soft", order: int = 2) -> None:
        self.targets = check_choice("TaylorCE", "targets", targets, ("soft", "hard"))
        self.order = check_integer("TaylorCE", "order", order, low=1)

    def _prepare(self, teacher_probs: np.ndarray) -> dict[str, np.ndarray]:
        return {"targets": pool_targets(teacher_probs, self.targets), "weights": np.ones(teacher_probs.shape[0])}

    def loss(self, student_logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B,) cross-entropy on labeled rows, Taylor cross-entropy on pool rows (``torch.where``)."""
        self._check_loss_inputs(student_logits, batch)
        targets = batch["targets"]
        ce = L.soft_cross_entropy(student_logits, targets, validate=False)
        taylor = L.taylor_cross_entropy(student_logits, targets, self.order, validate=False)
        return torch.where(batch["labeled"], ce, taylor)
