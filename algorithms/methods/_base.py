r"""The base of the distillation methods: the :class:`Method` protocol, the :data:`METHODS` registry and the
batch helpers (:func:`concat_batches`, :func:`to_tensors`).

A method is an estimator in the scikit-learn sense: its constructor takes keyword-only options and checks
them; :meth:`Method.fit` estimates what the method needs from a labeled validation set (the teacher's
probabilities there and the true labels) and stores it in attributes with a trailing underscore;
:meth:`Method.prepare` turns the teacher's probabilities on unlabeled pool rows into per-example numpy arrays
(a *batch*), :meth:`Method.prepare_labeled` does the same for labeled rows, and :meth:`Method.loss` maps
the student's logits and the batch's rows (as torch tensors) to one loss value per example (optax style:
the caller reduces).

Batch keys (every method; a method may add its own, on labeled and pool rows alike):

===============  ==============  ====================================================================
key              shape, dtype    meaning
===============  ==============  ====================================================================
``targets``      (n, K) float32  the rows' targets on the simplex (one-hot on labeled rows)
``weights``      (n,) float32    the per-example weight of the loss (1 on labeled rows)
``labeled``      (n,) bool       True on labeled rows, which always get plain cross-entropy
===============  ==============  ====================================================================
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from ..losses import check_logits
from ..results import to_jsonable
from ..teacher_quality import TeacherAccuracy
from ..validation import (
    as_numpy,
    as_real_array,
    check_int,
    check_labels,
    check_probs,
    describe,
)
from ..validation import check_choice as _check_choice
from ..validation import check_flag as _check_flag
from ..validation import check_real as _check_real

__all__ = ["METHODS", "Method", "NotFittedError", "concat_batches", "register", "to_tensors"]

#: The base keys of every batch, in their order.
BATCH_KEYS = ("targets", "weights", "labeled")


class NotFittedError(ValueError, AttributeError):
    """A method that needs its validation-set estimates was used before :meth:`Method.fit` (scikit-learn's
    convention: both a ``ValueError`` and an ``AttributeError``)."""


#: The distillation methods by the name used in configs, in registration order.
METHODS: dict[str, type[Method]] = {}

_M = TypeVar("_M", bound="type[Method]")


def register(cls: _M) -> _M:
    """Class decorator: add a :class:`Method` subclass to :data:`METHODS` under its ``name``."""
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"cls must be a Method subclass (register decorates one), got {describe(cls)}")
    name = cls.__dict__.get("name")
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a class attribute `name` (a non-empty str) to be registered")
    if name in METHODS and METHODS[name] is not cls:
        raise ValueError(f"a method named {name!r} is already registered ({METHODS[name].__name__})")
    METHODS[name] = cls
    return cls


# --------------------------------------------------------------------------------------------------------
# Option checks: a bad type is a TypeError, a bad value a ValueError; both name the option.


def check_choice(owner: str, name: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` as one of the strings ``choices``."""
    if isinstance(value, str) and value not in choices:
        raise ValueError(f"{owner} option {name}={value!r} is not one of {list(choices)}")
    return _check_choice(value, f"{owner} option {name}", choices)


def check_flag(owner: str, name: str, value: object) -> bool:
    """``value`` as a bool (not an int)."""
    return _check_flag(value, f"{owner} option {name}")


def check_real(
    owner: str, name: str, value: object, *, low: float, high: float = math.inf, low_open: bool = False
) -> float:
    """``value`` as a finite float in [low, high] (``(low, high]`` with ``low_open``); bools are refused."""
    if not isinstance(owner, str) or not isinstance(name, str):
        raise TypeError("owner and name must be str (they name the option in messages)")
    return _check_real(value, f"{owner} option {name}", low=low, high=high, low_open=low_open)


def check_integer(owner: str, name: str, value: object, *, low: int) -> int:
    """``value`` as an int >= low (bools and integral floats are refused)."""
    return check_int(value, f"{owner} option {name}", low=low)


# --------------------------------------------------------------------------------------------------------
# Batches


def concat_batches(*batches: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Row-wise concatenation of batches with the same keys (e.g. ``prepare_labeled(...)`` then
    ``prepare(...)``): a dict with the first batch's key order.

    Raises:
        ValueError: no batch, or batches whose keys differ (the message lists them).
    """
    if not batches:
        raise ValueError("concat_batches needs at least one batch")
    for i, b in enumerate(batches):
        if not isinstance(b, Mapping):
            raise TypeError(
                f"batch {i} must be a mapping of key -> array (from prepare / prepare_labeled), got {type(b).__name__}"
            )
    keys = list(batches[0])
    for i, b in enumerate(batches[1:], start=1):
        if set(b) != set(keys):
            raise ValueError(f"batches must have the same keys: batch 0 has {sorted(keys)}, batch {i} has {sorted(b)}")
    return {k: _concat_key(k, [as_real_array(b[k], f"batch {i}[{k!r}]") for i, b in enumerate(batches)]) for k in keys}


def _concat_key(key: str, arrays: list[np.ndarray]) -> np.ndarray:
    shapes = {a.shape[1:] for a in arrays}
    if any(a.ndim == 0 for a in arrays) or len(shapes) > 1:
        raise ValueError(
            f"the batches' {key!r} arrays must have the same shape past their rows, got {[a.shape for a in arrays]}"
        )
    return np.concatenate(arrays)


def to_tensors(batch: Mapping[str, Any], device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """A batch of numpy arrays as torch tensors on ``device`` (None: the CPU), dtypes kept (float32 targets,
    weights and alpha; int64 indices; bool flags). Read-only arrays are copied first."""
    batch = _check_mapping(batch)
    if device is not None:
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise (TypeError if not isinstance(device, str) else ValueError)(
                f"device must be a torch.device, a device string such as 'cpu' or 'cuda:0', or None; got "
                f"{describe(device)} ({exc})"
            ) from None
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.to(device) if device is not None else value
            continue
        arr = as_real_array(value, f"batch[{key!r}]")
        if arr.dtype.kind == "u":  # numpy's "unsigned long long" spelling, which torch refuses, as its twin
            arr = arr.astype(np.dtype(arr.dtype.name))
        if not arr.flags.writeable:
            arr = arr.copy()
        out[key] = torch.as_tensor(arr, device=device)
    return out


def _check_mapping(batch: object) -> Mapping[str, Any]:
    if not isinstance(batch, Mapping):
        raise TypeError(
            f"batch must be a mapping of key -> array (from prepare / prepare_labeled), got {type(batch).__name__}"
        )
    return batch


def summary(x: np.ndarray) -> dict[str, float]:
    """The quantiles (min, p10, median, p90, max) and mean of a vector (NaN when it is empty), as floats."""
    x = np.asarray(x, dtype=np.float64)
    q = np.quantile(x, [0.0, 0.1, 0.5, 0.9, 1.0]) if x.size else np.full(5, np.nan)
    return {
        "min": float(q[0]),
        "p10": float(q[1]),
        "median": float(q[2]),
        "p90": float(q[3]),
        "max": float(q[4]),
        "mean": float(x.mean()) if x.size else float("nan"),
    }


def pool_targets(teacher_probs: np.ndarray, targets: str) -> np.ndarray:
    """The teacher's soft probabilities, or for ``targets="hard"`` the one-hot of their argmax (ties to the
    lowest index), float64 (n, K)."""
    if targets == "hard":
        return np.eye(teacher_probs.shape[1])[teacher_probs.argmax(axis=1)]
    return teacher_probs


# --------------------------------------------------------------------------------------------------------
# The protocol


class Method:
    r"""Base class of the distillation methods (one subclass per method, registered with :func:`register`).

    Subclasses define ``name``, a keyword-only ``__init__`` that stores each option under its own name
    (checked), and override the hooks ``_fit``, ``_prepare``, ``_labeled_extras``, ``loss`` and ``_info``.

    Attributes set by :meth:`fit` (all methods):
        num_classes_: K of the validation set.
        teacher_val_accuracy_: the teacher's top-1 accuracy on the validation set.
    """

    #: The registry key (the method's name in configs).
    name: ClassVar[str]
    #: Whether :meth:`prepare` and :meth:`loss` need the validation-set estimates of :meth:`fit`.
    requires_fit: ClassVar[bool] = False
    #: The fitted attributes this class adds to ``num_classes_`` and ``teacher_val_accuracy_``.
    _fitted: ClassVar[tuple[str, ...]] = ()
    #: Keys this method adds to every batch, after ``targets``, ``weights``, ``labeled``.
    extra_keys: ClassVar[tuple[str, ...]] = ()

    # -- parameters ---------------------------------------------------------------------------------------

    @classmethod
    def _param_names(cls) -> tuple[str, ...]:
        sig = inspect.signature(cls.__init__)
        return tuple(p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY)

    def get_params(self) -> dict[str, Any]:
        """The options, by name, in the constructor's order (as checked: floats as float, ints as int)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({inner})"

    def _fitted_names(self) -> tuple[str, ...]:
        return ("num_classes_", "teacher_val_accuracy_", *self._fitted)

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has run (or a fitted state was restored by :meth:`from_dict`)."""
        return hasattr(self, "num_classes_")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"method": name, "options": get_params(), "fitted": {...}}``; ``fitted`` holds the
        fitted attributes as numbers and lists (empty before :meth:`fit`).
        ``METHODS[d["method"]](**d["options"])`` rebuilds the unfitted method, :meth:`from_dict` the
        fitted one."""
        fitted = {n: to_jsonable(getattr(self, n)) for n in self._fitted_names()} if self.is_fitted else {}
        return {"method": self.name, "options": dict(self.get_params()), "fitted": fitted}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Method:
        """The method of :meth:`to_dict`'s output, with its fitted state when it has one. Called on
        :class:`Method` it looks the class up in :data:`METHODS`; on a subclass the name must match."""
        name = data.get("method")
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
        target = METHODS[name]
        if cls is not Method and target is not cls:
            raise ValueError(f"{cls.__name__}.from_dict got a {name!r} method ({target.__name__})")
        method = target(**dict(data.get("options") or {}))
        fitted = dict(data.get("fitted") or {})
        if fitted:
            missing = set(method._fitted_names()) - set(fitted)
            if missing:
                raise ValueError(f"fitted state lacks {sorted(missing)}")
            for key in method._fitted_names():
                setattr(method, key, _decode(key, fitted[key]))
        return method

    # -- checks -------------------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet: call "
                "fit(teacher_probs_val, labels_val) before using it"
            )

    def _check_teacher_probs(self, teacher_probs: object) -> np.ndarray:
        if self.requires_fit:
            self._check_fitted()
        t = check_probs(teacher_probs, "teacher_probs")
        if self.is_fitted and t.shape[1] != self.num_classes_:
            raise ValueError(
                f"teacher_probs has {t.shape[1]} classes but {type(self).__name__} was fitted on {self.num_classes_}"
            )
        return t

    def _cache(self) -> dict[Any, Any]:
        """Per-instance cache of device copies (not a parameter, not fitted state); cleared by :meth:`fit`."""
        return self.__dict__.setdefault("_device_cache", {})

    # -- the protocol -------------------------------------------------------------------------------------

    def fit(self, teacher_probs_val: object, labels_val: object) -> Method:
        """Estimate what the method needs from the validation set.

        Args:
            teacher_probs_val: (n_v, K) teacher probabilities on the validation set, rows on the simplex.
            labels_val: (n_v,) true labels 0..K-1.

        Returns:
            ``self``, fitted (earlier fitted state is replaced).
        """
        t = check_probs(teacher_probs_val, "teacher_probs_val")
        y = check_labels(labels_val, t.shape[0], t.shape[1], "labels_val", like="teacher_probs_val")
        self.__dict__.pop("_device_cache", None)
        for key in self._fitted_names():
            self.__dict__.pop(key, None)
        state = {"num_classes_": int(t.shape[1]), "teacher_val_accuracy_": float(np.mean(t.argmax(axis=1) == y))}
        state.update(self._fit(t, y))
        for key, value in state.items():  # set only once everything succeeded
            setattr(self, key, value)
        return self

    def _fit(self, teacher_probs_val: np.ndarray, labels_val: np.ndarray) -> dict[str, Any]:
        """The method's own fitted attributes (float64 validated inputs)."""
        return {}

    def prepare(self, teacher_probs: object) -> dict[str, np.ndarray]:
        """Per-example arrays of unlabeled pool rows: ``targets`` (n, K) float32, ``weights`` (n,) float32,
        ``labeled`` (n,) bool (all False), then the method's :attr:`extra_keys`.

        Data-level estimates that depend on the whole set of rows (Weighted Distillation's normalisation of
        the weights to mean 1) are taken over the rows given here: prepare the whole pool at once.

        Args:
            teacher_probs: (n, K) teacher probabilities on the pool rows, rows on the simplex, K as fitted;
                ``n = 0`` gives an empty batch with the same keys (an active loop before its first query).

        Raises:
            NotFittedError: the method needs :meth:`fit` first.
            ValueError: rows off the simplex, or a K other than the fitted one.
        """
        arr = as_numpy(teacher_probs, "teacher_probs")
        if arr.ndim == 2 and arr.shape[0] == 0 and arr.shape[1] >= 2:  # no pool rows (yet): an empty batch
            if self.requires_fit:
                self._check_fitted()
            empty = self.prepare_labeled(np.empty(0, dtype=np.int64), arr.shape[1])
            empty["labeled"] = np.zeros(0, dtype=bool)
            return empty
        t = self._check_teacher_probs(teacher_probs)
        arrays = self._prepare(t)
        arrays["labeled"] = np.zeros(t.shape[0], dtype=bool)
        return _ordered(arrays, self.extra_keys)

    def _prepare(self, teacher_probs: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def prepare_labeled(self, labels: object, num_classes: int | None = None) -> dict[str, np.ndarray]:
        """Per-example arrays of labeled rows in the batch format of :meth:`prepare`: one-hot ``targets``,
        ``weights`` 1, ``labeled`` True, and the method's extra keys set so that its loss is plain
        cross-entropy there.

        Args:
            labels: (n,) true labels 0..K-1 (n may be 0).
            num_classes: K; defaults to the fitted ``num_classes_`` (must equal it when fitted).
        """
        if num_classes is None:
            if not self.is_fitted:
                raise NotFittedError(
                    f"This {type(self).__name__} instance is not fitted yet: call fit(teacher_probs_val, "
                    "labels_val) first, or pass num_classes"
                )
            num_classes = self.num_classes_
        else:
            num_classes = check_int(num_classes, "num_classes", low=2)
            if self.is_fitted and num_classes != self.num_classes_:
                raise ValueError(
                    f"num_classes = {num_classes} but {type(self).__name__} was fitted on {self.num_classes_}"
                )
        if self.requires_fit:
            self._check_fitted()
        arr = as_numpy(labels, "labels")
        if arr.ndim == 1 and arr.size == 0:
            arr = arr.astype(np.int64)
        y = check_labels(arr, arr.shape[0] if arr.ndim else -1, num_classes, "labels")
        n = y.shape[0]
        targets = np.eye(num_classes)[y]
        arrays = {"targets": targets, "weights": np.ones(n), "labeled": np.ones(n, dtype=bool)}
        arrays.update(self._labeled_extras(targets))
        return _ordered(arrays, self.extra_keys)

    def _labeled_extras(self, targets: np.ndarray) -> dict[str, np.ndarray]:
        return {}

    def loss(self, student_logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B,) per-example loss of the student's logits (B, K) on a batch's rows (torch tensors on the
        logits' device, under the keys of :meth:`prepare`); labeled rows get plain cross-entropy.

        Types, shapes and devices are checked; values are not (the batch's were checked by :meth:`prepare`,
        and the logits are not scanned on every training step: the losses run with ``validate=False``, so
        non-finite logits, or logits spanning more than about 1.8e19, give a non-finite loss)."""
        raise NotImplementedError

    def _check_batch(self, batch: Mapping[str, Any]) -> None:
        """The batch is a mapping with this method's keys."""
        batch = _check_mapping(batch)
        missing = [k for k in (*BATCH_KEYS, *self.extra_keys) if k not in batch]
        if missing:
            raise ValueError(f"batch lacks {missing} (build it with {type(self).__name__}.prepare / prepare_labeled)")

    def _check_loss_inputs(self, student_logits: object, batch: Mapping[str, Any]) -> None:
        """The arguments of :meth:`loss`: a floating-point (B, K) logits tensor (values are not checked) and a
        batch of torch tensors with B rows (and K classes of targets) on the logits' device."""
        self._check_batch(batch)
        z = check_logits(student_logits, "student_logits", validate=False)
        for key in (*BATCH_KEYS, *self.extra_keys):
            value = batch[key]
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"batch[{key!r}] must be a torch.Tensor (convert the batch with to_tensors), got {type(value).__name__}"
                )
            if value.device != z.device:
                raise ValueError(f"batch[{key!r}] is on {value.device} but student_logits is on {z.device}")
            if value.ndim == 0 or value.shape[0] != z.shape[0]:
                raise ValueError(
                    f"batch[{key!r}] has shape {tuple(value.shape)} but student_logits has {z.shape[0]} rows"
                )
        if batch["targets"].shape != z.shape:
            raise ValueError(
                f"student_logits must have shape {tuple(batch['targets'].shape)} like batch['targets'], got {tuple(z.shape)}"
            )
        if batch["labeled"].dtype != torch.bool:
            raise TypeError(f"batch['labeled'] must be a bool tensor, got dtype {batch['labeled'].dtype}")

    def info(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """JSON-ready diagnostics of a batch's pool rows (labeled rows are left out) and the fitted state:
        ``teacher_val_accuracy`` and the method's own (weight and alpha summaries as
        ``{"min", "p10", "median", "p90", "max", "mean"}``, the kept fraction, T's diagonal, k)."""
        self._check_fitted()
        self._check_batch(batch)
        arrays = {k: as_numpy(v, k) for k, v in batch.items()}
        pool = ~arrays["labeled"].astype(bool)
        out: dict[str, Any] = {"teacher_val_accuracy": float(self.teacher_val_accuracy_)}
        out.update(self._info({k: v[pool] for k, v in arrays.items()}))
        return out

    def _info(self, pool: dict[str, np.ndarray]) -> dict[str, Any]:
        return {}


def _ordered(arrays: dict[str, np.ndarray], extra_keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The batch in key order, floats as float32 (the training dtype), integers and bools as they are."""
    out = {}
    for key in (*BATCH_KEYS, *extra_keys):
        v = np.asarray(arrays[key])
        out[key] = v.astype(np.float32) if np.issubdtype(v.dtype, np.floating) else v
    return out


def _decode(key: str, value: Any) -> Any:
    """A fitted attribute from its :meth:`Method.to_dict` form."""
    if key == "accuracy_model_":
        d = dict(value)
        d["knots_x"] = np.asarray(d["knots_x"], dtype=np.float64)
        d["knots_y"] = np.asarray(d["knots_y"], dtype=np.float64)
        return TeacherAccuracy(**d)
    if key == "transition_":
        return np.asarray(value, dtype=np.float64)
    return copy.deepcopy(value)
