r"""The distillation methods of the benchmark: what the student trains on, and with which per-example loss.

Every method turns the same inputs — the labeled set's labels, the teacher's probabilities on the
validation set (with its labels) and on the unlabeled pool — into a :class:`StudentPlan`: the training rows
(labeled rows first, then pool rows), per-example arrays (``targets`` (n, K) on the simplex, one-hot on
labeled rows; ``weights`` (n,); ``labeled`` (n,) bool; SLaM's ``alpha`` (n,) and ``topk_index`` (n, k)) and
a loss ``loss_fn(logits, batch) -> (B,)`` that the training loop (:mod:`robustdistill.experiments.training`)
averages. Every formula comes from :mod:`robustdistill.algorithms`; this module only wires them.

Labeled rows always contribute cross-entropy with their true label, weight 1 (``spec/weighted.md`` §5 step 8,
``spec/slam.md`` §4 step 5). Methods (``METHODS``; options and defaults in :data:`OPTIONS`):

=========================  ==========================================================================
``labeled_only``           the student on the labeled set alone (no teacher)
``teacher``                no student: the teacher's own test accuracy
``vanilla``                soft (``targets="soft"``) or hard (argmax) teacher labels, weight 1 (paper baseline)
``weighted``               Weighted Distillation: ``distillation_weights(alpha, K, scheme)`` normalised to mean
                           1 over the pool (``normalize_weights``), on soft or hard targets; or
                           ``targets="debiased"``: ``debiased_targets(t, alpha)`` with weight 1
``slam``                   SLaM: ``slam_loss`` with alpha = ``clip_alpha(acc.predict(t), alpha_floor)``,
                           k = ``choose_top_k`` (or given), the top-k set as ``teacher_topk_index``; labeled
                           rows use alpha = 1, where SLaM is cross-entropy
``forward`` / ``backward`` forward / backward correction with T = ``estimate_transition`` on the validation set
``taylor``                 ``taylor_cross_entropy`` of the given order
``confidence_threshold``   weight ``1[max_j t_j >= threshold]`` (``confidence_weights``)
``ups``                    UPS (Rizve et al., ICLR 2021; ``spec/slam.md`` §8): the positive pseudo-label
                           ``argmax t`` kept (cross-entropy) if ``t_c >= tau_p`` and ``u_c <= kappa_p``;
                           negative labels for the classes with ``t_c <= tau_n`` and ``u_c <= kappa_n``
                           (``negative_learning_loss``, added); ``u`` = the per-class std over 10 MC-dropout
                           teacher passes (``teacher_pool_std``), 0 for a teacher without dropout
``vid``                    VID (Ahn et al., CVPR 2019; ``spec/slam.md`` §8): vanilla soft distillation plus
                           ``weight * mean_c[log sigma_c + (t_c - mu_c(s))^2 / (2 sigma_c^2)]`` between the
                           teacher's penultimate features t (``teacher_pool_features``) and the student's s:
                           ``mu`` a one-hidden-layer MLP, ``sigma_c^2 = softplus(a_c) + 1e-6``, both learned
                           with the student (:class:`VIDStudent`; ``StudentPlan.wrap``)
=========================  ==========================================================================

alpha(x) is :func:`~robustdistill.algorithms.teacher_quality.fit_teacher_accuracy` fitted on the validation
set (``feature`` option) and predicted on the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from torch import nn
from torch.nn import functional as F

from robustdistill.algorithms import losses as L
from robustdistill.algorithms.slam import DEFAULT_ALPHA_FLOOR, clip_alpha
from robustdistill.algorithms.teacher_quality import (
    FEATURES,
    choose_top_k,
    estimate_transition,
    fit_teacher_accuracy,
)
from robustdistill.algorithms.validation import check_int, check_labels, check_probs
from robustdistill.algorithms.weighting import (
    DEFAULT_SCHEME,
    SCHEMES,
    confidence_weights,
    debiased_targets,
    distillation_weights,
    normalize_weights,
)

__all__ = ["METHODS", "OPTIONS", "StudentPlan", "VIDStudent", "check_method", "plan_student"]

LossFn = Callable[[torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor]

#: method -> {option: default}; an option's allowed values are checked by :func:`check_method`.
OPTIONS: dict[str, dict[str, Any]] = {
    "labeled_only": {},
    "teacher": {},
    "vanilla": {"targets": "soft"},
    "weighted": {"scheme": DEFAULT_SCHEME, "targets": "soft", "feature": "margin"},
    "slam": {"normalize": False, "k": "auto", "top_k_target": 0.9, "alpha_floor": DEFAULT_ALPHA_FLOOR,
             "feature": "margin"},
    "forward": {"targets": "soft", "smoothing": 1.0},
    "backward": {"targets": "soft", "smoothing": 1.0},
    "taylor": {"targets": "soft", "order": 2},
    "confidence_threshold": {"targets": "soft", "threshold": 0.9},
    "ups": {"tau_p": 0.7, "kappa_p": 0.05, "tau_n": 0.05, "kappa_n": 0.005},
    "vid": {"weight": 1.0},
}  # fmt: skip
METHODS = tuple(OPTIONS)

_CHOICES: dict[str, tuple[Any, ...]] = {
    "targets": ("soft", "hard"),
    "scheme": SCHEMES,
    "feature": FEATURES,
    "normalize": (False, True),
}


def check_method(method: object, options: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The method name and its full options (defaults filled in), checked: unknown method, unknown option
    or a value outside its choices raise ``ValueError`` naming it."""
    if not isinstance(method, str) or method not in OPTIONS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    opts = dict(OPTIONS[method])
    for key, value in dict(options or {}).items():
        if key not in opts:
            known = ", ".join(opts) or "none"
            raise ValueError(f"unknown option {key!r} for method {method!r} (its options: {known})")
        opts[key] = value
    for key, value in opts.items():
        choices = _CHOICES.get(key)
        if method == "weighted" and key == "targets":
            choices = ("soft", "hard", "debiased")
        if choices is not None and value not in choices:
            raise ValueError(f"{method} option {key}={value!r} is not one of {list(choices)}")
    if method == "slam" and opts["k"] != "auto":
        opts["k"] = check_int(opts["k"], "slam option k", low=2)
    if method == "taylor":
        opts["order"] = check_int(opts["order"], "taylor option order", low=1)
    if method == "vid" and not float(opts["weight"]) >= 0.0:
        raise ValueError(f"vid option weight must be >= 0, got {opts['weight']!r}")
    if method == "ups":
        for key in ("tau_p", "kappa_p", "tau_n", "kappa_n"):
            if not 0.0 <= float(opts[key]) <= 1.0:
                raise ValueError(f"ups option {key} must lie in [0, 1], got {opts[key]!r}")
    if method == "confidence_threshold" and not 0.0 <= float(opts["threshold"]) <= 1.0:
        raise ValueError(f"confidence_threshold option threshold must lie in [0, 1], got {opts['threshold']!r}")
    return method, opts


@dataclass(frozen=True)
class StudentPlan:
    """What the student trains on. ``rows``: indices into the concatenation [labeled; pool] of the rows it
    trains on; ``arrays``: per-example numpy arrays over those rows (first dim ``len(rows)``); ``loss_fn``:
    ``(logits (B, K), batch) -> (B,)``; ``info``: JSON-ready diagnostics (k, alpha and weight summaries,
    T)."""

    method: str
    options: dict[str, Any]
    rows: np.ndarray
    arrays: dict[str, np.ndarray]
    loss_fn: LossFn = field(repr=False)
    info: dict[str, Any] = field(default_factory=dict)
    #: ``wrap(student, seed) -> (model, loss_fn)`` for methods that train extra parameters with the student
    #: (VID); the training uses the returned model and loss.
    wrap: Callable[[nn.Module, int], tuple[nn.Module, LossFn]] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Method, options, training-set size and diagnostics (no arrays)."""
        return {"method": self.method, "options": self.options, "rows": int(self.rows.size), "info": self.info}


def _summary(x: np.ndarray) -> dict[str, float]:
    q = np.quantile(x, [0.0, 0.1, 0.5, 0.9, 1.0]) if x.size else np.full(5, np.nan)
    return {"min": float(q[0]), "p10": float(q[1]), "median": float(q[2]), "p90": float(q[3]), "max": float(q[4]),
            "mean": float(x.mean()) if x.size else float("nan")}  # fmt: skip


class VIDStudent(nn.Module):
    r"""A student with VID's variational feature regressor (Ahn et al., CVPR 2019; ``spec/slam.md`` §8, our
    formulation): ``forward`` is the student's; the input of its classifier head (the penultimate features
    s, (B, d_s)) is kept at each call, and :meth:`feature_nll` is, per example,

    .. math:: \frac{1}{d_t}\sum_c \Bigl[\log\sigma_c + \frac{(t_c - \mu_c(s))^2}{2\sigma_c^2}\Bigr],
        \qquad \sigma_c^2 = \mathrm{softplus}(a_c) + 10^{-6},

    with :math:`\mu` a one-hidden-layer MLP (``d_s -> d_t -> d_t``) and ``a`` initialised so that
    :math:`\sigma_c = 1`. Regressor weights are seeded without touching the global RNG."""

    def __init__(self, student: nn.Module, teacher_dim: int, *, seed: int = 0) -> None:
        super().__init__()
        from .models import classifier_head

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


def _soft_ce(z: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return batch["weights"] * L.soft_cross_entropy(z, batch["targets"], validate=False)


def _labeled_or(pool_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> LossFn:
    """Cross-entropy on labeled rows, ``pool_loss(z, targets)`` on pool rows."""

    def loss_fn(z: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        ce = L.soft_cross_entropy(z, batch["targets"], validate=False)
        return torch.where(batch["labeled"], ce, pool_loss(z, batch["targets"]))

    return loss_fn


def plan_student(
    method: str,
    options: Mapping[str, Any] | None,
    *,
    labels_labeled: np.ndarray,
    teacher_val: np.ndarray,
    labels_val: np.ndarray,
    teacher_pool: np.ndarray,
    teacher_pool_std: np.ndarray | None = None,
    teacher_pool_features: np.ndarray | None = None,
) -> StudentPlan | None:
    """The :class:`StudentPlan` of ``method`` (None for ``"teacher"``: no student).

    Args:
        method, options: see :data:`OPTIONS` (checked by :func:`check_method`).
        labels_labeled: (n_A,) true labels of the labeled set.
        teacher_val: (n_V, K) teacher probabilities on the validation set; ``labels_val`` (n_V,) its labels.
        teacher_pool: (n_U, K) teacher probabilities on the unlabeled pool.
        teacher_pool_std: (n_U, K) the teacher's uncertainty on the pool (UPS; None = 0, a deterministic
            teacher).
        teacher_pool_features: (n_U, d_t) the teacher's penultimate features on the pool (VID; required).
    """
    method, opts = check_method(method, options)
    if method == "teacher":
        return None
    t_val = check_probs(teacher_val, "teacher_val")
    num_classes = t_val.shape[1]
    y_val = check_labels(labels_val, t_val.shape[0], num_classes, "labels_val")
    y_a = check_labels(labels_labeled, np.asarray(labels_labeled).shape[0], num_classes, "labels_labeled")
    eye = np.eye(num_classes)
    if method == "labeled_only":
        arrays = {"targets": eye[y_a], "weights": np.ones(y_a.size), "labeled": np.ones(y_a.size, dtype=bool)}
        return StudentPlan(method, opts, np.arange(y_a.size), _as_float32(arrays), _soft_ce)
    t_pool = check_probs(teacher_pool, "teacher_pool")
    if t_pool.shape[1] != num_classes:
        raise ValueError(f"teacher_pool has {t_pool.shape[1]} classes but teacher_val has {num_classes}")
    n_a, n_u = y_a.size, t_pool.shape[0]
    rows = np.arange(n_a + n_u)
    labeled = np.r_[np.ones(n_a, dtype=bool), np.zeros(n_u, dtype=bool)]
    pool_targets = eye[t_pool.argmax(axis=1)] if opts.get("targets") == "hard" else t_pool
    pool_weights = np.ones(n_u)
    info: dict[str, Any] = {"teacher_val_accuracy": float(np.mean(t_val.argmax(axis=1) == y_val))}
    loss_fn: LossFn = _soft_ce

    if method in ("weighted", "slam"):
        acc = fit_teacher_accuracy(t_val, y_val, feature=opts["feature"])
        alpha = acc.predict(t_pool)
        info["alpha"] = _summary(alpha)
    if method == "weighted":
        if opts["targets"] == "debiased":
            pool_targets = debiased_targets(t_pool, alpha)
        else:
            pool_weights = normalize_weights(distillation_weights(alpha, num_classes, opts["scheme"]))
        info["weights"] = _summary(pool_weights)
    elif method == "confidence_threshold":
        pool_weights = confidence_weights(t_pool, float(opts["threshold"]))
        info["kept_fraction"] = float(pool_weights.mean())
    elif method in ("forward", "backward"):
        transition = estimate_transition(t_val, y_val, smoothing=float(opts["smoothing"]))
        info["transition_diagonal"] = np.diag(transition).tolist()
        if method == "forward":
            matrix = torch.as_tensor(transition, dtype=torch.float32)
            loss_fn = _labeled_or(lambda z, t: L.forward_corrected_loss(z, t, matrix.to(z.device), validate=False))
        else:
            module = L.BackwardCorrectedLoss(transition, reduction="none")
            loss_fn = _labeled_or(lambda z, t: module.to(z.device)(z, t))
    elif method == "ups":
        u = np.zeros_like(t_pool) if teacher_pool_std is None else np.asarray(teacher_pool_std, dtype=np.float64)
        if u.shape != t_pool.shape:
            raise ValueError(f"teacher_pool_std has shape {u.shape} but teacher_pool has {t_pool.shape}")
        top = t_pool.argmax(axis=1)
        rows_u = np.arange(n_u)
        positive = (t_pool[rows_u, top] >= float(opts["tau_p"])) & (u[rows_u, top] <= float(opts["kappa_p"]))
        negative = (t_pool <= float(opts["tau_n"])) & (u <= float(opts["kappa_n"]))
        pool_targets, pool_weights = eye[top], positive.astype(np.float64)
        info.update(positive_fraction=float(positive.mean()), negatives_per_example=float(negative.sum(1).mean()),
                    uncertainty="mc_dropout" if teacher_pool_std is not None else "none (deterministic teacher)")

        def loss_fn(z: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
            return _soft_ce(z, batch) + L.negative_learning_loss(z, batch["negative"], validate=False)
    elif method == "taylor":
        order = opts["order"]
        loss_fn = _labeled_or(lambda z, t: L.taylor_cross_entropy(z, t, order, validate=False))

    arrays = {
        "targets": np.concatenate([eye[y_a], pool_targets]),
        "weights": np.r_[np.ones(n_a), pool_weights],
        "labeled": labeled,
    }
    if method == "ups":
        arrays["negative"] = np.concatenate([np.zeros((n_a, num_classes), dtype=bool), negative])
    wrap = None
    if method == "vid":
        if teacher_pool_features is None or np.asarray(teacher_pool_features).shape[0] != n_u:
            raise ValueError("method 'vid' needs teacher_pool_features: (n_U, d_t) penultimate teacher features")
        feats = np.asarray(teacher_pool_features, dtype=np.float64)
        arrays["teacher_features"] = np.concatenate([np.zeros((n_a, feats.shape[1])), feats])
        weight = float(opts["weight"])
        info["teacher_feature_dim"] = int(feats.shape[1])

        def wrap(student: nn.Module, seed: int) -> tuple[nn.Module, LossFn]:
            model = VIDStudent(student, feats.shape[1], seed=seed)

            def vid_loss(z: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
                term = model.feature_nll(batch["teacher_features"])
                return _soft_ce(z, batch) + weight * torch.where(batch["labeled"], torch.zeros_like(term), term)

            return model, vid_loss
    if method == "slam":
        k = choose_top_k(t_val, y_val, float(opts["top_k_target"])) if opts["k"] == "auto" else opts["k"]
        if k > num_classes:
            raise ValueError(f"slam option k = {k} exceeds the number of classes {num_classes}")
        pool_alpha = clip_alpha(alpha, float(opts["alpha_floor"]), normalize=bool(opts["normalize"]), k=k)
        arrays["alpha"] = np.r_[np.ones(n_a), pool_alpha]  # alpha = 1: SLaM is cross-entropy on labeled rows
        arrays["topk_index"] = L.teacher_topk_index(torch.as_tensor(arrays["targets"]), k).numpy()
        info.update(k=int(k), alpha_clipped=_summary(pool_alpha))
        normalize = bool(opts["normalize"])

        def loss_fn(z: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
            return L.slam_loss(
                z, batch["targets"], batch["alpha"], topk_index=batch["topk_index"], normalize=normalize,
                validate=False,
            )  # fmt: skip

    return StudentPlan(method, opts, rows, _as_float32(arrays), loss_fn, info, wrap)


def _as_float32(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float arrays as float32 (the training dtype); integer and bool arrays as they are."""
    return {k: v.astype(np.float32) if np.issubdtype(v.dtype, np.floating) else v for k, v in arrays.items()}
