r"""Weighted Distillation (Iliopoulos et al., NeurIPS 2022): per-example weights of the student's loss from
the teacher's estimated accuracy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..teacher_quality import FEATURES, fit_teacher_accuracy
from ..weighting import (
    DEFAULT_SCHEME,
    DEFAULT_TARGETS,
    WEIGHTED_SCHEMES,
    debiased_targets,
    distillation_weights,
    normalize_weights,
)
from ._base import Method, check_choice, pool_targets, register, summary
from .vanilla import weighted_cross_entropy

__all__ = ["WeightedDistillation"]


@register
class WeightedDistillation(Method):
    r"""Weighted Distillation (Iliopoulos et al., NeurIPS 2022): the teacher's accuracy
    :math:`\alpha(x)` is fitted on the validation set
    (:func:`~robustdistill.algorithms.teacher_quality.fit_teacher_accuracy`, isotonic in ``feature``) and
    turned into a weight of each pool row's loss,

    .. math::

        \ell_i = w_i \Bigl(-\sum_j t_{ij} \log \mathrm{softmax}(z_i)_j\Bigr), \qquad
        w_i = \frac{n\, w(\alpha(x_i))}{\sum_{l=1}^{n} w(\alpha(x_l))},

    with :math:`w(\alpha)` the ``scheme``'s map
    (:func:`~robustdistill.algorithms.weighting.distillation_weights`) normalised to mean 1 over the
    prepared rows (:func:`~robustdistill.algorithms.weighting.normalize_weights`), and :math:`t` the
    teacher's soft probabilities or the one-hot of their argmax. ``targets="debiased"`` instead keeps
    weight 1 and replaces :math:`t` by :func:`~robustdistill.algorithms.weighting.debiased_targets`
    :math:`\hat p_j = ((K-1) t_j - (1-\alpha))/(K\alpha - 1)` (clipped at 0, renormalised). Labeled rows
    get cross-entropy with weight 1.

    Args:
        scheme: one of :data:`~robustdistill.algorithms.weighting.WEIGHTED_SCHEMES` (default
            :data:`~robustdistill.algorithms.weighting.DEFAULT_SCHEME`). Uniform weights are vanilla
            distillation (:class:`~robustdistill.algorithms.methods.Vanilla`), not a scheme of this method.
        targets: ``"hard"`` (default, :data:`~robustdistill.algorithms.weighting.DEFAULT_TARGETS`), ``"soft"`` or
            ``"debiased"``.
        feature: the trust feature of the accuracy fit, one of
            :data:`~robustdistill.algorithms.teacher_quality.FEATURES` (default ``"margin"``).

    :meth:`fit` warns (``UserWarning``, from the accuracy fit) below 100 validation rows: the fit is then
    coarse.

    Attributes (after :meth:`fit`):
        accuracy_model_: the fitted :class:`~robustdistill.algorithms.teacher_quality.TeacherAccuracy`.

    Batch keys: ``targets``, ``weights``, ``labeled`` and ``teacher_accuracy`` (n,) float32, the estimate
    :math:`\alpha(x)` (1 on labeled rows; diagnostics only, the loss does not read it).
    """

    name = "weighted"
    requires_fit = True
    _fitted = ("accuracy_model_",)
    extra_keys = ("teacher_accuracy",)

    def __init__(
        self, *, scheme: str = DEFAULT_SCHEME, targets: str = DEFAULT_TARGETS, feature: str = "margin"
    ) -> None:
        if isinstance(scheme, str) and scheme == "uniform":
            raise ValueError(
                "WeightedDistillation option scheme 'uniform' gives every example weight 1, which is vanilla "
                f"distillation: use the method 'vanilla', or a weighting scheme {WEIGHTED_SCHEMES}"
            )
        self.scheme = check_choice("WeightedDistillation", "scheme", scheme, WEIGHTED_SCHEMES)
        self.targets = check_choice("WeightedDistillation", "targets", targets, ("soft", "hard", "debiased"))
        self.feature = check_choice("WeightedDistillation", "feature", feature, FEATURES)

    def _fit(self, teacher_probs_val: np.ndarray, labels_val: np.ndarray) -> dict[str, Any]:
        return {"accuracy_model_": fit_teacher_accuracy(teacher_probs_val, labels_val, feature=self.feature)}

    def _prepare(self, teacher_probs: np.ndarray) -> dict[str, np.ndarray]:
        alpha = self.accuracy_model_.predict(teacher_probs)
        if self.targets == "debiased":
            targets, weights = debiased_targets(teacher_probs, alpha), np.ones(alpha.size)
        else:
            targets = pool_targets(teacher_probs, self.targets)
            weights = normalize_weights(distillation_weights(alpha, teacher_probs.shape[1], self.scheme))
        return {"targets": targets, "weights": weights, "teacher_accuracy": alpha}

    def _labeled_extras(self, targets: np.ndarray) -> dict[str, np.ndarray]:
        return {"teacher_accuracy": np.ones(targets.shape[0])}

    def loss(self, student_logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B,) ``weights * soft_cross_entropy(z, targets)``."""
        self._check_loss_inputs(student_logits, batch)
        return weighted_cross_entropy(student_logits, batch)

    def _info(self, pool: dict[str, np.ndarray]) -> dict[str, Any]:
        return {"alpha": summary(pool["teacher_accuracy"]), "weights": summary(pool["weights"])}
