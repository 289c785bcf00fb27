r"""The distillation methods as the pipeline runs them: the library's methods
(:data:`robustdistill.algorithms.methods.METHODS`) plus the pipeline's own rows and baselines that need the
teacher model or the student's internals, in one registry, :data:`PIPELINE_METHODS`, and
:func:`plan_student`, which turns a method's batch into what the training loop trains on.

=========================  ==========================================================================
``labeled_only``           the student on the labeled set alone (no teacher label is used)
``teacher``                no student: the teacher's own test accuracy
library methods            ``vanilla``, ``weighted``, ``slam``, ``forward``, ``backward``, ``taylor``,
                           ``confidence_threshold`` (:mod:`robustdistill.algorithms.methods`)
``ups``                    UPS (Rizve et al., ICLR 2021): the positive pseudo-label ``argmax t`` kept
                           (cross-entropy) if ``t_c >= tau_p`` and ``u_c <= kappa_p``; negative labels for the
                           classes with ``t_c <= tau_n`` and ``u_c <= kappa_n`` (``negative_learning_loss``,
                           added); ``u`` = the per-class std over 10 MC-dropout teacher passes, 0 for a teacher
                           without dropout
``vid``                    VID (Ahn et al., CVPR 2019): vanilla soft distillation plus
                           ``weight * mean_c[log sigma_c + (t_c - mu_c(s))^2 / (2 sigma_c^2)]`` between the
                           teacher's penultimate features t and the student's s: ``mu`` a one-hidden-layer MLP,
                           ``sigma_c^2 = softplus(a_c) + 1e-6``, both learned with the student
                           (:class:`VIDStudent`; ``StudentPlan.wrap``)
=========================  ==========================================================================

Labeled rows always contribute cross-entropy with their true label, weight 1. A new library method appears
here by itself; a pipeline-only method is one class added to :data:`PIPELINE_METHODS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from robustdistill.algorithms import losses as L
from robustdistill.algorithms.methods import METHODS, Method, check_real, concat_batches
from robustdistill.algorithms.validation import check_labels, check_probs

from .models import classifier_head

__all__ = [
    "PIPELINE_METHODS",
    "UPS",
    "VID",
    "LabeledOnly",
    "StudentPlan",
    "TeacherOnly",
    "VIDStudent",
    "check_method",
    "plan_student",
]

LossFn = Callable[[torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor]


def _soft_ce(z: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return batch["weights"] * L.soft_cross_entropy(z, batch["targets"], validate=False)


class LabeledOnly(Method):
    """The student on the labeled set alone: cross-entropy on the true labels; no teacher label is used."""

    name = "labeled_only"
    uses_teacher: ClassVar[bool] = False

    def __init__(self) -> None:
        pass

    def _prepare(self, teacher_probs: np.ndarray) -> dict[str, np.ndarray]:
        raise ValueError("labeled_only trains on the labeled set alone: it prepares no pool rows")

    def loss(self, student_logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B,) cross-entropy against the one-hot targets."""
        return _soft_ce(student_logits, batch)


class TeacherOnly(LabeledOnly):
    """No student: the row of the teacher's own test accuracy."""

    name = "teacher"
    trains_student: ClassVar[bool] = False


class UPS(Method):
    """UPS (Rizve et al., ICLR 2021) as a distillation baseline (module docstring). :meth:`prepare` takes the
    teacher's per-class uncertainty ``teacher_std`` (n, K) (None: 0, a deterministic teacher); batches add
    ``negative`` (n, K) bool, the negative labels."""

    name = "ups"
    extra_keys = ("negative",)

    def __init__(
        self, *, tau_p: float = 0.7, kappa_p: float = 0.05, tau_n: float = 0.05, kappa_n: float = 0.005
    ) -> None:
        self.tau_p = check_real("ups", "tau_p", tau_p, low=0.0, high=1.0)
        self.kappa_p = check_real("ups", "kappa_p", kappa_p, low=0.0, high=1.0)
        self.tau_n = check_real("ups", "tau_n", tau_n, low=0.0, high=1.0)
        self.kappa_n = check_real("ups", "kappa_n", kappa_n, low=0.0, high=1.0)

    def prepare(self, teacher_probs: object, *, teacher_std: np.ndarray | None = None) -> dict[str, np.ndarray]:
        t = check_probs(teacher_probs, "teacher_probs")
        self._std = np.zeros_like(t) if teacher_std is None else np.asarray(teacher_std, dtype=np.float64)
        if self._std.shape != t.shape:
            raise ValueError(f"teacher_std has shape {self._std.shape} but teacher_probs has {t.shape}")
        self._uncertainty = "none (deterministic teacher)" if teacher_std is None else "mc_dropout"
        return super().prepare(t)

    def _prepare(self, teacher_probs: np.ndarray) -> dict[str, np.ndarray]:
        u, rows, top = self._std, np.arange(teacher_probs.shape[0]), teacher_probs.argmax(axis=1)
        positive = (teacher_probs[rows, top] >= self.tau_p) & (u[rows, top] <= self.kappa_p)
        negative = (teacher_probs <= self.tau_n) & (u <= self.kappa_n)
        return {
            "targets": np.eye(teacher_probs.shape[1])[top],
            "weights": positive.astype(np.float64),
            "negative": negative,
        }

    def _labeled_extras(self, targets: np.ndarray) -> dict[str, np.ndarray]:
        return {"negative": np.zeros(targets.shape, dtype=bool)}

    def loss(self, student_logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B,) weighted cross-entropy on the kept pseudo-labels plus negative learning."""
        return _soft_ce(student_logits, batch) + L.negative_learning_loss(
            student_logits, batch["negative"], validate=False
        )

    def _info(self, pool: dict[str, np.ndarray]) -> dict[str, Any]:
        return {
            "positive_fraction": float(pool["weights"].mean()) if pool["weights"].size else float("nan"),
            "negatives_per_example": float(pool["negative"].sum(1).mean()) if pool["weights"].size else 0.0,
            "uncertainty": getattr(self, "_uncertainty", "none (deterministic teacher)"),
        }


class VIDStudent(nn.Module):
    r"""A student with VID's variational feature regressor (Ahn et al., CVPR 2019; our
    formulation): ``forward`` is the student's; the input of its classifier head (the penultimate features
    s, (B, d_s)) is kept at each call, and :meth:`feature_nll` is, per example,

    .. math:: \frac{1}{d_t}\sum_c \Bigl[\log\sigma_c + \frac{(t_c - \mu_c(s))^2}{2\sigma_c^2}\Bigr],
        \qquad \sigma_c^2 = \mathrm{softplus}(a_c) + 10^{-6},

    with :math:`\mu` a one-hidden-layer MLP (``d_s -> d_t -> d_t``) and ``a`` initialised so that
    :math:`\sigma_c = 1`. Regressor weights are seeded without touching the global RNG."""

    def __init__(self, student: nn.Module, teacher_dim: int, *, seed: int = 0) -> None:
        super().__init__()
        self.student = student
        d_s = classifier_head(student).in_features
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.regressor = nn.Sequential(nn.Linear(d_s, teacher_dim), nn.ReLU(), nn.Linear(teacher_dim, teacher_dim))
        self.raw_variance = nn.Parameter(torch.full((teacher_dim,), float(np.log(np.expm1(1.0)))))
        self._features: torch.Tensor | None = None
        classifier_head(student).register_forward_pre_hook(self._keep)

    def _keep(self, _: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self._features = args[0].flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)

    def feature_nll(self, teacher_features: torch.Tensor) -> torch.Tensor:
        """(B,) the VID term of the last forward's batch against the teacher's features (B, d_t)."""
        if self._features is None:
            raise RuntimeError("feature_nll needs a forward pass first")
        mu = self.regressor(self._features.float())
        var = F.softplus(self.raw_variance) + 1e-6
        return (0.5 * torch.log(var) + (teacher_features.float() - mu) ** 2 / (2.0 * var)).mean(dim=1)


class VID(Method):
    """VID (Ahn et al., CVPR 2019) as a distillation baseline (module docstring). :meth:`prepare` takes the
    teacher's penultimate features ``teacher_features`` (n, d_t); batches add ``teacher_features``. The loss
    needs the student's features: train the model :meth:`wrap` returns, with the loss it returns."""

    name = "vid"
    extra_keys = ("teacher_features",)

    def __init__(self, *, weight: float = 1.0) -> None:
        self.weight = check_real("vid", "weight", weight, low=0.0)

    def prepare(self, teacher_probs: object, *, teacher_features: np.ndarray | None = None) -> dict[str, np.ndarray]:
        t = check_probs(teacher_probs, "teacher_probs")
        if teacher_features is None or np.asarray(teacher_features).shape[0] != t.shape[0]:
            raise ValueError("method 'vid' needs teacher_features: (n, d_t) penultimate teacher features")
        self._features = np.asarray(teacher_features, dtype=np.float64)
        return super().prepare(t)

    def _prepare(self, teacher_probs: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "targets": teacher_probs,
            "weights": np.ones(teacher_probs.shape[0]),
            "teacher_features": self._features,
        }

    def _labeled_extras(self, targets: np.ndarray) -> dict[str, np.ndarray]:
        if not hasattr(self, "_features"):
            raise ValueError("prepare the pool rows (with teacher_features) before the labeled rows")
        return {"teacher_features": np.zeros((targets.shape[0], self._features.shape[1]))}

    def loss(self, student_logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise RuntimeError("VID's loss needs the student's features: train the model and loss of VID.wrap")

    def wrap(self, student: nn.Module, seed: int) -> tuple[nn.Module, LossFn]:
        """(the student with VID's regressor, its loss): soft cross-entropy plus ``weight`` times the VID term on
        pool rows."""
        model = VIDStudent(student, self._features.shape[1], seed=seed)
        weight = self.weight

        def vid_loss(z: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
            term = model.feature_nll(batch["teacher_features"])
            return _soft_ce(z, batch) + weight * torch.where(batch["labeled"], torch.zeros_like(term), term)

        return model, vid_loss

    def _info(self, pool: dict[str, np.ndarray]) -> dict[str, Any]:
        return {"teacher_feature_dim": int(self._features.shape[1])}


#: Every method the pipeline runs, by its config name.
PIPELINE_METHODS: dict[str, type[Method]] = {
    "labeled_only": LabeledOnly,
    "teacher": TeacherOnly,
    **METHODS,
    "ups": UPS,
    "vid": VID,
}


def check_method(
    method: object, options: Mapping[str, Any] | None = None, *, keys: tuple[str, str] = ("method", "method_options")
) -> tuple[str, dict[str, Any]]:
    """The method name and its full options (defaults filled in, values checked by the method's constructor):
    an unknown method or option, or a bad value, raises ``ValueError`` (``TypeError`` for a bad type), naming
    the config key (``keys``: the names of the method and options keys, e.g. the active loop's ``loss``)."""
    if not isinstance(method, str) or method not in PIPELINE_METHODS:
        raise ValueError(f"{keys[0]}: unknown method {method!r}; choose one of {', '.join(PIPELINE_METHODS)}")
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"{keys[1]} must be a table of options, got {options!r}")
    cls = PIPELINE_METHODS[method]
    known = cls._param_names()
    unknown = sorted(set(options or {}) - set(known), key=repr)
    if unknown:
        raise ValueError(
            f"{keys[1]}: unknown option {unknown[0]!r} for method {method!r} (its options: "
            f"{', '.join(known) or 'none'})"
        )
    try:
        return method, cls(**dict(options or {})).get_params()
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{keys[1]}: {exc}") from None


@dataclass(frozen=True)
class StudentPlan:
    """What the student trains on. ``rows``: indices into the concatenation [labeled; pool] of the rows it
    trains on; ``arrays``: the method's batch over those rows (first dim ``len(rows)``); ``loss_fn``:
    ``(logits (B, K), batch) -> (B,)``; ``info``: JSON-ready diagnostics; ``wrap``: ``(student, seed) ->
    (model, loss_fn)`` for methods that train extra parameters with the student (VID)."""

    method: str
    options: dict[str, Any]
    rows: np.ndarray
    arrays: dict[str, np.ndarray]
    loss_fn: LossFn = field(repr=False)
    info: dict[str, Any] = field(default_factory=dict)
    wrap: Callable[[nn.Module, int], tuple[nn.Module, LossFn]] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Method, options, training-set size and diagnostics (no arrays)."""
        return {"method": self.method, "options": self.options, "rows": int(self.rows.size), "info": self.info}


def plan_student(
    method: str,
    options: Mapping[str, Any] | None,
    *,
    labels_labeled: np.ndarray,
    teacher_val: np.ndarray | None,
    labels_val: np.ndarray | None,
    teacher_pool: np.ndarray | None,
    num_classes: int | None = None,
    teacher_pool_std: np.ndarray | None = None,
    teacher_pool_features: np.ndarray | None = None,
) -> StudentPlan | None:
    """The :class:`StudentPlan` of ``method`` (None for ``"teacher"``: no student): the method fitted on the
    validation set, its batch of the labeled rows followed by the pool rows, its loss.

    Args:
        method, options: a name of :data:`PIPELINE_METHODS` and its options (:func:`check_method`).
        labels_labeled: (n_A,) true labels of the labeled set.
        teacher_val: (n_V, K) teacher probabilities on the validation set, ``labels_val`` (n_V,) its labels
            (None for ``labeled_only``, which uses no teacher label: then give ``num_classes``).
        teacher_pool: (n_U, K) teacher probabilities on the pool (None for ``labeled_only``).
        teacher_pool_std: (n_U, K) the teacher's uncertainty on the pool (UPS; None = 0).
        teacher_pool_features: (n_U, d_t) the teacher's penultimate features on the pool (VID; required).
    """
    name, opts = check_method(method, options)
    cls = PIPELINE_METHODS[name]
    if not getattr(cls, "trains_student", True):
        return None
    m = cls(**opts)
    if not getattr(cls, "uses_teacher", True):
        if num_classes is None:
            num_classes = check_probs(teacher_val, "teacher_val").shape[1]
        y_a = check_labels(labels_labeled, np.asarray(labels_labeled).shape[0], num_classes, "labels_labeled")
        arrays = m.prepare_labeled(y_a, num_classes)
        return StudentPlan(name, opts, np.arange(y_a.size), arrays, m.loss)
    m.fit(teacher_val, labels_val)
    t_pool = check_probs(teacher_pool, "teacher_pool")
    if t_pool.shape[1] != m.num_classes_:
        raise ValueError(f"teacher_pool has {t_pool.shape[1]} classes but teacher_val has {m.num_classes_}")
    extra = (
        {"teacher_std": teacher_pool_std}
        if name == "ups"
        else ({"teacher_features": teacher_pool_features} if name == "vid" else {})
    )
    pool = m.prepare(t_pool, **extra)
    y_a = check_labels(labels_labeled, np.asarray(labels_labeled).shape[0], m.num_classes_, "labels_labeled")
    arrays = concat_batches(m.prepare_labeled(y_a), pool)
    wrap = m.wrap if isinstance(m, VID) else None
    return StudentPlan(name, opts, np.arange(arrays["labeled"].size), arrays, m.loss, m.info(pool), wrap)
