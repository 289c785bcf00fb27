r"""SLaM, Student-Label Mixing (Kontonis et al., NeurIPS 2023): the teacher's soft labels against the
student's prediction mixed with its complement on the teacher's top-k classes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .. import losses as L
from ..slam import DEFAULT_ALPHA_FLOOR, DEFAULT_TARGETS, TARGETS, clip_alpha, slam_targets
from ..teacher_quality import FEATURES, choose_top_k, fit_teacher_accuracy
from ._base import Method, check_choice, check_flag, check_integer, check_real, register, summary

__all__ = ["SLaM"]


@register
class SLaM(Method):
    r"""SLaM, Student-Label Mixing (Kontonis et al., NeurIPS 2023).

    Per pool row, with :math:`f = \mathrm{softmax}(z)`, the teacher's probabilities :math:`t`, their top-k
    indicator :math:`M` (ties to the lower class index) and the clipped accuracy
    :math:`\alpha = \mathrm{clip}(\hat\alpha(x), \alpha_{\min}, 1)`:

    .. math::

        \mathrm{mix}_j(f) = \alpha f_j + (1-\alpha)(1-f_j) M_j / c, \qquad
        \ell = -\sum_j \tilde t_j \log \mathrm{mix}_j(f),

    with :math:`c = 1` (``normalize=False``, the paper's experiments, form (2')) or :math:`c = k - 1`
    (``normalize=True``, form (2)); computed in log space by
    :func:`~robustdistill.algorithms.losses.slam_loss`. Labeled rows get :math:`\alpha = 1`, where
    :math:`\mathrm{mix}(f) = f` and the loss is cross-entropy with the true label. The target
    :math:`\tilde t` is :func:`~robustdistill.algorithms.slam.slam_targets` of :math:`t`: by default the
    teacher's hard label, or its probabilities restricted to :math:`M` and renormalised; both keep the
    per-example minimiser's top class the teacher's (a soft target with mass off :math:`M` can push it outside
    :math:`M`).

    :meth:`fit` estimates :math:`\hat\alpha(x)` on the validation set
    (:func:`~robustdistill.algorithms.teacher_quality.fit_teacher_accuracy` in ``feature``) and, with
    ``k="auto"``, the smallest k whose top-k accuracy there reaches ``top_k_target``
    (:func:`~robustdistill.algorithms.teacher_quality.choose_top_k`).

    Args:
        normalize: form (2) instead of (2') (default False).
        targets: ``"hard"`` (default, :data:`~robustdistill.algorithms.slam.DEFAULT_TARGETS`), ``"topk"`` or
            ``"soft"``
            (:func:`~robustdistill.algorithms.slam.slam_targets`).
        k: ``"auto"`` (default) or an int >= 2 (at most K, checked by :meth:`fit`).
        top_k_target: the top-k accuracy that ``k="auto"`` asks for, in (0, 1] (default 0.9).
        alpha_floor: :math:`\alpha_{\min}`, in [1/2, 1] for (2') and at least :math:`1/k + 0.05` for (2)
            (:func:`~robustdistill.algorithms.slam.clip_alpha`; default
            :data:`~robustdistill.algorithms.slam.DEFAULT_ALPHA_FLOOR`).
        feature: the trust feature of the accuracy fit (default ``"margin"``).

    :meth:`fit` warns (``UserWarning``, from the accuracy fit) below 100 validation rows: the fit is then
    coarse.

    Attributes (after :meth:`fit`):
        accuracy_model_: the fitted :class:`~robustdistill.algorithms.teacher_quality.TeacherAccuracy`.
        k_: the top-k size used.

    Batch keys: ``targets`` (:math:`\tilde t`), ``weights`` (1), ``labeled``, ``alpha`` (n,)
    float32 (clipped; 1 on labeled rows), ``topk_index`` (n, k) int64 (the classes of :math:`M`, ascending;
    :func:`~robustdistill.algorithms.losses.teacher_topk_index`) and ``teacher_accuracy`` (n,) float32,
    :math:`\hat\alpha(x)` before clipping (1 on labeled rows; diagnostics only).
    """

    name = "slam"
    requires_fit = True
    _fitted = ("accuracy_model_", "k_")
    extra_keys = ("alpha", "topk_index", "teacher_accuracy")

    def __init__(
        self,
        *,
        normalize: bool = False,
        targets: str = DEFAULT_TARGETS,
        k: int | str = "auto",
        top_k_target: float = 0.9,
        alpha_floor: float = DEFAULT_ALPHA_FLOOR,
        feature: str = "margin",
    ) -> None:
        self.normalize = check_flag("SLaM", "normalize", normalize)
        self.targets = check_choice("SLaM", "targets", targets, TARGETS)
        if isinstance(k, str):
            if k != "auto":
                raise ValueError(f"SLaM option k must be 'auto' or an integer >= 2, got {k!r}")
            self.k: int | str = k
        else:
            self.k = check_integer("SLaM", "k", k, low=2)
        self.top_k_target = check_real("SLaM", "top_k_target", top_k_target, low=0.0, high=1.0, low_open=True)
        self.alpha_floor = check_real("SLaM", "alpha_floor", alpha_floor, low=0.0, high=1.0)
        if not self.normalize and self.alpha_floor < 0.5:
            raise ValueError(
                f"SLaM option alpha_floor must be >= 1/2 for the un-normalised mix (2'), got {alpha_floor!r}"
            )
        if self.normalize and isinstance(self.k, int):
            self._check_floor(self.k)
        self.feature = check_choice("SLaM", "feature", feature, FEATURES)

    def _check_floor(self, k: int) -> None:
        if self.normalize and self.alpha_floor < 1.0 / k + 0.05 - 1e-12:
            raise ValueError(
                f"SLaM option alpha_floor must be >= 1/k + 0.05 = {1.0 / k + 0.05:.4g} for the normalised mix "
                f"(2) with k = {k}, got {self.alpha_floor!r}"
            )

    def _fit(self, teacher_probs_val: np.ndarray, labels_val: np.ndarray) -> dict[str, Any]:
        num_classes = teacher_probs_val.shape[1]
        if self.k == "auto":
            k = choose_top_k(teacher_probs_val, labels_val, self.top_k_target)
        else:
            k = int(self.k)
            if k > num_classes:
                raise ValueError(f"SLaM option k = {k} exceeds the number of classes {num_classes}")
        self._check_floor(k)
        accuracy = fit_teacher_accuracy(teacher_probs_val, labels_val, feature=self.feature)
        return {"accuracy_model_": accuracy, "k_": int(k)}

    def _topk_index(self, targets: np.ndarray) -> np.ndarray:
        return L.teacher_topk_index(torch.from_numpy(np.ascontiguousarray(targets)), self.k_).numpy()

    def _prepare(self, teacher_probs: np.ndarray) -> dict[str, np.ndarray]:
        raw = self.accuracy_model_.predict(teacher_probs)
        alpha = clip_alpha(raw, self.alpha_floor, normalize=self.normalize, k=self.k_)
        return {
            "targets": slam_targets(teacher_probs, self.k_, self.targets),
            "weights": np.ones(raw.size),
            "alpha": alpha,
            "topk_index": self._topk_index(teacher_probs),
            "teacher_accuracy": raw,
        }

    def _labeled_extras(self, targets: np.ndarray) -> dict[str, np.ndarray]:
        n = targets.shape[0]
        return {"alpha": np.ones(n), "topk_index": self._topk_index(targets), "teacher_accuracy": np.ones(n)}

    def loss(self, student_logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B,) :func:`~robustdistill.algorithms.losses.slam_loss` with the batch's ``alpha`` and
        ``topk_index`` (cross-entropy on labeled rows, where alpha = 1)."""
        self._check_loss_inputs(student_logits, batch)
        return L.slam_loss(
            student_logits,
            batch["targets"],
            batch["alpha"],
            topk_index=batch["topk_index"],
            normalize=self.normalize,
            validate=False,
        )

    def _info(self, pool: dict[str, np.ndarray]) -> dict[str, Any]:
        return {"alpha": summary(pool["teacher_accuracy"]), "k": int(self.k_), "alpha_clipped": summary(pool["alpha"])}
