r"""One training loop for teachers and students, with the inputs resident on the device.

The pieces:

- :func:`resolve_device`: ``None`` / ``"auto"`` is CUDA when available, else the CPU.
- :class:`ResidentInputs`: the whole input set copied to the device once. Tabular and sequence inputs are
  standardised there once (float32); images stay ``uint8`` and every batch is converted, normalised and,
  when asked, augmented (random crop with 4-pixel padding + horizontal flip) on the device, vectorised over
  the batch, from an explicit :class:`torch.Generator`.
- :class:`TrainConfig` (frozen, validated) and :func:`train`, which runs SGD (Nesterov) or AdamW with a
  per-step cosine or constant learning rate on a caller-given **per-example** loss, optionally under
  bfloat16 autocast and ``torch.compile``, checkpointing after every epoch and resuming where it stopped.
- :func:`predict_probs`: softmax probabilities in float32, in eval mode, batch by batch.
- :func:`cross_entropy_loss`: the teacher's loss on ``batch["labels"]``.

**The loss contract** (optax style, as the losses of ``robustdistill.algorithms.losses``): ``loss_fn(logits,
batch)`` gets the ``(B, K)`` logits and a dict holding, for every entry of ``targets``, its rows for the
batch, and returns **one value per example**, a tensor of shape ``(B,)``; the loop takes the mean and
steps. For example, weighted distillation::

    def loss_fn(logits, batch):
        return batch["weights"] * soft_cross_entropy(logits, batch["teacher_probs"], validate=False)

**Randomness.** Nothing draws from a global RNG. The order of the examples in epoch ``e`` is a
``torch.randperm`` from a CPU generator seeded from ``config.seed`` (the same order on every device); the
augmentation draws come from a second generator seeded from ``config.seed``, on the training device (so no
host-to-device copy per step). Both generator states are checkpointed.

**Image normalisation.** ``x = (u / 255 - mean_c) / std_c`` for a ``uint8`` pixel ``u`` of channel ``c``
(``mean``, ``std``: per-channel statistics of ``u / 255``). The crop pads with **zeros of the normalised
image**: a pixel that falls in the 4-pixel border is 0 after normalisation (the channel mean of the
training images), as if the normalised image had been zero-padded, which is also what the convolutions'
own zero padding sees.

**Reproducibility.** On the CPU two runs with the same seed give bit-identical weights, and a run resumed
from its checkpoint gives the same final weights, bit for bit, as one that was never interrupted (tested).
On CUDA, cuDNN and atomics make runs close but not bit-identical.

**Data-parallel training** (``torchrun``; a default ``torch.distributed`` process group of ``W > 1`` ranks,
created by the caller or by :func:`~robustdistill.experiments.pipeline.parallel.process_group`). The same
:func:`train` runs on every rank and makes exactly the single-process optimisation, with the model wrapped in
:class:`torch.nn.parallel.DistributedDataParallel`:

- *Shards.* Rank ``r`` keeps only its contiguous rows ``[start_r, stop_r)`` of the ``n`` examples
  (:func:`~robustdistill.experiments.distributed.collectives.even_split`) and their targets. Every rank may
  pass the whole set (it keeps a view of its rows), or its own shard (:meth:`ResidentInputs.shard`, normalised
  with the statistics of the **whole** set, and the targets of its rows).
- *Steps.* Epoch ``e`` draws one permutation of the ``n`` examples from the same seeded generator as in one
  process (the same on every rank); step ``s`` takes the global batch ``order[s B : (s + 1) B]`` (``B_s``
  examples). Each rank runs forward and backward on the members of that batch among its rows, with the
  local loss

  .. math:: L_r = \frac{W}{B_s} \sum_{i \in \text{batch} \cap \text{rank } r} \ell_i ,

  and DDP averages the gradients over the ranks: :math:`\frac{1}{W}\sum_r \nabla L_r = \nabla
  \frac{1}{B_s}\sum_{i \in \text{batch}} \ell_i`, the single-process gradient. A rank without a member
  in a batch runs the model on an empty batch with a zero loss (``loss_fn`` is not called on it), so it
  still takes part in the all-reduce.
  Gradient clipping, the optimizer and the schedule then act on the same gradient on every rank. The
  augmentation draws of a step are drawn for the whole global batch on every rank (the same generator
  stream) and each image takes the draw of its place in the batch, as in one process. The epoch's loss is
  all-reduced; ``examples_per_s`` counts every rank's examples. Only the summation order differs from one
  process: losses and weights agree to float32 rounding (relative ~1e-7 per step, tested with two gloo
  processes).
- *BatchNorm.* On CUDA the BatchNorm layers run as :class:`torch.nn.SyncBatchNorm` during training (the
  statistics of the whole global batch, as in one process; the original layers are put back afterwards).
  On the CPU (gloo) :class:`torch.nn.SyncBatchNorm` is not available: each rank normalises with the
  statistics of its own part of the batch, so a model with BatchNorm does **not** follow the single-process
  run exactly there, and the running statistics kept are rank 0's.
- *Dropout.* Each rank draws its own masks (rank 0 the single-process stream, rank ``r`` a stream derived
  from ``(seed, r)``), so a model with dropout follows another, equally distributed, path than one process.
- *Checkpoints.* Rank 0 writes the checkpoint (with every rank's global-generator state) and the ranks meet
  at a barrier; on resume every rank reads the same file and the ranks check that they read it alike. The
  run's hash combines the digests of the ranks' targets (gathered) and the world size: it is the same on
  every rank, and a checkpoint is resumed by a run with the same number of ranks.
- *Result.* At the end rank 0's parameters and buffers are broadcast, so the model is the same on every rank.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from robustdistill.algorithms.results import Result
from robustdistill.algorithms.validation import check_flag, check_int, check_real
from robustdistill.experiments.distributed.collectives import Shard, all_gather, all_sum, barrier, even_split
from robustdistill.experiments.distributed.collectives import world as world_info

from .files import load_torch, save_torch
from .models import classifier_head
from .parallel import broadcast_module, sync_batchnorm

__all__ = [
    "CHECKPOINT_NAME",
    "INPUT_KINDS",
    "ResidentInputs",
    "TrainConfig",
    "TrainResult",
    "cross_entropy_loss",
    "has_dropout",
    "image_stats",
    "make_optimizer",
    "mc_dropout_std",
    "predict_probs",
    "resolve_device",
    "train",
]

#: The kinds of :class:`ResidentInputs`.
INPUT_KINDS = ("tabular", "sequence", "image")
#: The checkpoint file :func:`train` writes inside ``checkpoint_dir``.
CHECKPOINT_NAME = "checkpoint.pt"
#: Zero padding of the random crop, in pixels on each side.
CROP_PADDING = 4
_CHECKPOINT_FORMAT = 1
#: The values of ``TrainResult.checkpoint_status`` (None: no checkpoint folder).
_STATUSES = (None, "new", "resumed", "finished", "config_changed", "unreadable")


# ----------------------------------------------------------------------------------------------- devices
def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train on: ``None`` or ``"auto"`` is ``cuda`` when available, else ``cpu``.

    A CUDA device without an index gets the current one (``cuda:0`` usually). Raises :class:`ValueError`
    for a name torch does not know, or for CUDA (or a CUDA index) that this machine does not have, and
    :class:`TypeError` for anything but a string, a :class:`torch.device` or None.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string, a torch.device or None, got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"device: not a device name: {device!r} ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(dev)!r} was asked for, but CUDA is not available on this machine")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        elif dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(dev)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------------------------- inputs
def _stat_array(value: Any, name: str, shape: tuple[int, ...], positive: bool) -> np.ndarray:
    """A finite float64 array broadcast to ``shape`` (std: > 0)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    try:
        arr = np.broadcast_to(arr.astype(np.float64), shape).copy()
    except ValueError:
        raise ValueError(f"{name} has shape {arr.shape}, which does not broadcast to {shape}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 everywhere, got a minimum of {arr.min()}")
    return arr


def image_stats(X: np.ndarray | torch.Tensor, *, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (float64, shape ``(C,)``) of ``X / 255`` for ``uint8`` images ``(n, C, H, W)``.

    Computed from exact integer sums, chunk by chunk, so the result does not depend on the device or the
    order; a constant channel gets ``std = 1``.
    """
    if not isinstance(X, (np.ndarray, torch.Tensor)):
        raise TypeError(f"X must be a numpy array or a torch tensor, got {type(X).__name__}")
    if X.ndim != 4 or X.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"X must be uint8 images (n, C, H, W), got dtype {X.dtype} and shape {tuple(X.shape)}")
    arr = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else X
    n, channels = arr.shape[:2]
    total = np.zeros(channels, dtype=np.int64)
    squares = np.zeros(channels, dtype=np.int64)
    for start in range(0, n, chunk):
        part = arr[start : start + chunk].astype(np.int64)
        total += part.sum(axis=(0, 2, 3))
        squares += (part * part).sum(axis=(0, 2, 3))
    count = float(n * arr.shape[2] * arr.shape[3])
    mean = total / (255.0 * count)
    var = np.maximum(squares / (255.0**2 * count) - mean**2, 0.0)
    std = np.sqrt(var)
    std[std == 0] = 1.0
    return mean, std


class ResidentInputs:
    """Inputs kept resident on the device, batched by index.

    Args:
        X: the inputs, a numpy array or a torch tensor (any device) with the examples along axis 0.
            ``kind="tabular"``: float ``(n, d)``; ``"sequence"``: float ``(n, L)`` or ``(n, C, L)``;
            ``"image"``: ``uint8`` ``(n, C, H, W)``.
        kind: ``"tabular"``, ``"sequence"`` or ``"image"``.
        device: where the inputs live (see :func:`resolve_device`; None = CUDA when available).
        mean, std: the normalisation; computed from ``X`` when not given. Tabular and sequence: per feature
            (every coordinate of ``X.shape[1:]``; a constant feature gets ``std = 1``); image: per channel,
            of the pixels scaled to [0, 1], shape ``(C,)``. Anything that broadcasts to those shapes is
            accepted. Give the training set's :attr:`stats` (or call :meth:`like`) for validation, pool and
            test inputs.
        channels_last: image batches in ``torch.channels_last`` memory format; None = on CUDA only.

    Tabular and sequence inputs are standardised once and stored as float32 ``(X - mean) / std``; images
    are stored as given (``uint8``) and every :meth:`batch` is converted, normalised and augmented on the
    device (module docstring: the formula and the padding).
    """

    def __init__(
        self,
        X: np.ndarray | torch.Tensor,
        kind: str,
        device: str | torch.device | None = None,
        *,
        mean: Any = None,
        std: Any = None,
        channels_last: bool | None = None,
    ) -> None:
        if not isinstance(kind, str):
            raise TypeError(f"kind must be a string, got {type(kind).__name__}")
        if kind not in INPUT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(INPUT_KINDS)}, got {kind!r}")
        if not isinstance(X, (np.ndarray, torch.Tensor)):
            raise TypeError(f"X must be a numpy array or a torch tensor, got {type(X).__name__}")
        if channels_last is not None and not isinstance(channels_last, bool):
            raise TypeError(f"channels_last must be a bool or None, got {type(channels_last).__name__}")
        self.kind = kind
        self.device = resolve_device(device)
        if X.ndim == 0 or X.shape[0] == 0:
            raise ValueError(f"X must hold at least one example, got shape {tuple(X.shape)}")
        if kind == "image":
            self._init_image(X, mean, std)
        else:
            self._init_float(X, mean, std)
        self._channels_last = (
            (self.device.type == "cuda") if channels_last is None else channels_last
        ) and kind == "image"
        self._shard: Shard | None = None

    # -- construction
    def _init_image(self, X: np.ndarray | torch.Tensor, mean: Any, std: Any) -> None:
        if X.ndim != 4:
            raise ValueError(f"X: image inputs must be (n, C, H, W), got shape {tuple(X.shape)}")
        if X.dtype not in (np.uint8, torch.uint8):
            raise TypeError(f"X: image inputs must be uint8 (n, C, H, W), got dtype {X.dtype}")
        channels = int(X.shape[1])
        computed = image_stats(X) if mean is None or std is None else None
        mean = computed[0] if mean is None else _stat_array(mean, "mean", (channels,), positive=False)
        std = computed[1] if std is None else _stat_array(std, "std", (channels,), positive=True)
        self._mean, self._std = mean, std
        data = torch.as_tensor(X) if isinstance(X, np.ndarray) else X.detach()
        self._data = data.to(self.device).contiguous()
        shape = (1, channels, 1, 1)
        # x = u * scale + shift with scale = 1 / (255 std), shift = -mean / std
        self._scale = torch.as_tensor(1.0 / (255.0 * std), dtype=torch.float32).reshape(shape).to(self.device)
        self._shift = torch.as_tensor(-mean / std, dtype=torch.float32).reshape(shape).to(self.device)
        height, width = int(X.shape[2]), int(X.shape[3])
        self._ar_c = torch.arange(channels, device=self.device)
        self._ar_h = torch.arange(height, device=self.device)
        self._ar_w = torch.arange(width, device=self.device)
        self._ar_w_flipped = torch.arange(width - 1, -1, -1, device=self.device)

    def _init_float(self, X: np.ndarray | torch.Tensor, mean: Any, std: Any) -> None:
        ranks = (2,) if self.kind == "tabular" else (2, 3)
        if X.ndim not in ranks:
            want = "(n, d)" if self.kind == "tabular" else "(n, L) or (n, C, L)"
            raise ValueError(f"X: {self.kind} inputs must be {want}, got shape {tuple(X.shape)}")
        is_tensor = isinstance(X, torch.Tensor)
        if (
            is_tensor
            and not (
                X.dtype.is_floating_point or X.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
            )
        ) or (not is_tensor and not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer))):
            raise TypeError(f"X: {self.kind} inputs must hold real numbers, got dtype {X.dtype}")
        x64 = X.detach().to(torch.float64) if is_tensor else torch.from_numpy(np.asarray(X, dtype=np.float64))
        if not bool(torch.isfinite(x64).all()):
            raise ValueError("X must be finite (found NaN or inf)")
        feature_shape = tuple(int(d) for d in X.shape[1:])
        if mean is None:
            mean = x64.mean(dim=0).cpu().numpy()
        else:
            mean = _stat_array(mean, "mean", feature_shape, positive=False)
        if std is None:
            std = x64.std(dim=0, correction=0).cpu().numpy()
            std[std == 0] = 1.0
        else:
            std = _stat_array(std, "std", feature_shape, positive=True)
        self._mean, self._std = mean, std
        m = torch.from_numpy(mean).to(x64.device)
        s = torch.from_numpy(std).to(x64.device)
        self._data = ((x64 - m) / s).to(device=self.device, dtype=torch.float32).contiguous()

    # -- properties
    def __len__(self) -> int:
        return int(self._data.shape[0])

    def __repr__(self) -> str:
        return (
            f"ResidentInputs(n={len(self)}, kind={self.kind!r}, input_shape={self.input_shape}, device={self.device})"
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example (without the batch dimension)."""
        return tuple(int(d) for d in self._data.shape[1:])

    @property
    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` as float64 numpy copies: pass them (or use :meth:`like`) to normalise other inputs alike."""
        return self._mean.copy(), self._std.copy()

    @property
    def channels_last(self) -> bool:
        """Whether image batches come in ``torch.channels_last`` memory format."""
        return self._channels_last

    @property
    def sharded(self) -> Shard | None:
        """Where these rows sit in the whole set when they are one rank's shard (:meth:`shard`): ``offset``
        (global index of the first row), ``size`` and ``total``; None for a whole set."""
        return self._shard

    def shard(self, rank: int | None = None, size: int | None = None) -> ResidentInputs:
        """The rows of ``rank`` of ``size`` ranks (this process's rank and world size by default): the
        contiguous ``[start, stop)`` of :func:`~robustdistill.experiments.distributed.collectives.even_split`,
        as inputs of their own (a copy, so the whole set can be dropped), normalised with the statistics of
        the **whole** set (:attr:`stats`), so every rank normalises alike. :attr:`sharded` says where they
        sit; :func:`train` takes such a shard (with the targets of its rows) on every rank."""
        if self._shard is not None:
            raise ValueError("these inputs are already a shard")
        start, stop = even_split(len(self), rank, size)
        return self._rows(start, stop, copy=True)

    def _rows(self, start: int, stop: int, *, copy: bool) -> ResidentInputs:
        """Rows ``[start, stop)`` (possibly none) with these statistics, marked as a shard of the whole set."""
        out = object.__new__(ResidentInputs)
        out.__dict__.update(self.__dict__)
        rows = self._data[start:stop]
        out._data = rows.clone() if copy else rows
        out._shard = Shard(offset=start, size=stop - start, total=len(self))
        return out

    def like(self, X: np.ndarray | torch.Tensor) -> ResidentInputs:
        """Other inputs of the same kind, on the same device, normalised with these :attr:`stats`."""
        return ResidentInputs(
            X, self.kind, self.device, mean=self._mean, std=self._std, channels_last=self._channels_last
        )

    # -- batches
    def batch(
        self, index: torch.Tensor, *, augment: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The float32 batch of the examples ``index`` (1-D integer tensor, moved to the device if needed).

        Images: normalised, ``channels_last`` on CUDA (see :attr:`channels_last`); with ``augment`` each
        image is shifted by a uniform offset in ``[-4, 4]^2`` (a random 32x32 crop of the 4-pixel padded
        image, padding = 0 after normalisation) and flipped left-right with probability 1/2; one draw of
        ``B`` integers from ``generator`` (which is required then) decides all of it. A generator on another
        device than the inputs works, at the cost of a small copy per batch. ``augment`` is only for
        images (:class:`ValueError` otherwise).
        """
        if not isinstance(index, torch.Tensor):
            raise TypeError(f"index must be a torch tensor of example indices, got {type(index).__name__}")
        if index.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"index must be an int64 or int32 tensor, got dtype {index.dtype}")
        if index.ndim != 1:
            raise ValueError(f"index must be 1-D, got shape {tuple(index.shape)}")
        if not isinstance(augment, bool):
            raise TypeError(f"augment must be a bool, got {type(augment).__name__}")
        index = index.to(self.device, torch.int64, non_blocking=True)
        if augment:
            if self.kind != "image":
                raise ValueError(f"augment: only image inputs are augmented, these are {self.kind!r}")
            if generator is None:
                raise ValueError("generator: augment=True needs an explicit torch.Generator (no global RNG)")
            if not isinstance(generator, torch.Generator):
                raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if self.kind != "image":
            return self._data.index_select(0, index)
        if not augment:
            x = self._data.index_select(0, index)
            if self._channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return torch.addcmul(self._shift, x.to(torch.float32), self._scale)
        return self._augmented(index, self._augment_draws(index.numel(), generator))  # type: ignore[arg-type]

    @staticmethod
    def _augment_draws(count: int, generator: torch.Generator) -> torch.Tensor:
        """The ``count`` integers that decide the augmentation of ``count`` images (offsets and flips)."""
        side = 2 * CROP_PADDING + 1
        return torch.randint(0, side * side * 2, (count,), generator=generator, device=generator.device)

    def _augmented(self, index: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """Random crop (zero padding in the normalised image) + horizontal flip of the images ``index``, image
        ``i`` decided by ``draws[i]`` (:meth:`_augment_draws`); one gather for both."""
        height, width = self._data.shape[2:]
        side = 2 * CROP_PADDING + 1
        draws = draws.to(self.device, non_blocking=True)
        dy = draws % side - CROP_PADDING
        dx = (draws // side) % side - CROP_PADDING
        flip = (draws // (side * side)).bool()
        rows = dy[:, None] + self._ar_h  # (B, H): source row of output row i
        cols = dx[:, None] + torch.where(flip[:, None], self._ar_w_flipped, self._ar_w)  # (B, W)
        inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
        rows = rows.clamp_(0, height - 1)
        cols = cols.clamp_(0, width - 1)
        ar_c = self._ar_c
        if self._channels_last:  # gather as (B, H, W, C) and view it as NCHW with channels-last strides
            x = self._data[
                index[:, None, None, None], ar_c[None, None, None, :], rows[:, :, None, None], cols[:, None, :, None]
            ]
            x = x.permute(0, 3, 1, 2)
        else:
            x = self._data[
                index[:, None, None, None], ar_c[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]
            ]
        out = torch.addcmul(self._shift, x.to(torch.float32), self._scale)
        return out.mul_(inside[:, None, :, :])


# ----------------------------------------------------------------------------------------------- config
_OPTIMIZERS = ("sgd", "adamw")
_SCHEDULES = ("cosine", "constant")
_AMP = ("auto", "bf16", "off")


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train (validated on construction; :class:`ValueError` / :class:`TypeError` name the field).

    Attributes:
        epochs: passes over the data, >= 1.
        batch_size: examples per step (the last, partial batch of an epoch is kept).
        optimizer: ``"sgd"`` (Nesterov momentum 0.9) or ``"adamw"`` (betas 0.9, 0.999).
        lr: the peak learning rate, > 0.
        weight_decay: L2 (SGD) or decoupled (AdamW) decay of every parameter, >= 0.
        schedule: ``"cosine"`` (``lr * (1 + cos(pi t / T)) / 2`` at step t of T, per step) or ``"constant"``.
        augment: random crop + flip of image inputs (:meth:`ResidentInputs.batch`).
        amp: ``"auto"`` (bfloat16 autocast on CUDA, none on the CPU), ``"bf16"`` (on every device) or ``"off"``.
        compile: run the forward pass through ``torch.compile`` (the weights stay in the given model).
        seed: seeds the example order and the augmentation.
        grad_clip: clip the global gradient norm to this value (None: no clipping).
    """

    epochs: int
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    augment: bool = False
    amp: str = "auto"
    compile: bool = False
    seed: int = 0
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        values = {
            "epochs": check_int(self.epochs, "epochs", low=1),
            "batch_size": check_int(self.batch_size, "batch_size", low=1),
            "optimizer": _check_choice(self.optimizer, "optimizer", _OPTIMIZERS),
            "lr": check_real(self.lr, "lr", low=0.0, low_open=True),
            "weight_decay": check_real(self.weight_decay, "weight_decay", low=0.0),
            "schedule": _check_choice(self.schedule, "schedule", _SCHEDULES),
            "augment": check_flag(self.augment, "augment"),
            "amp": _check_choice(self.amp, "amp", _AMP),
            "compile": check_flag(self.compile, "compile"),
            "seed": check_int(self.seed, "seed", low=0),
            "grad_clip": None
            if self.grad_clip is None
            else check_real(self.grad_clip, "grad_clip", low=0.0, low_open=True),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        """bfloat16 when autocast is on for ``device`` (``amp="bf16"``, or ``"auto"`` on CUDA), else None."""
        if self.amp == "bf16" or (self.amp == "auto" and torch.device(device).type == "cuda"):
            return torch.bfloat16
        return None


@dataclasses.dataclass(frozen=True)
class TrainResult(Result):
    """What :func:`train` did.

    Attributes:
        epochs_run: epochs finished in all, those of a resumed checkpoint included (``config.epochs``).
        losses: the mean per-example training loss of every finished epoch (resumed ones included).
        wall_time_s: seconds this call took, checkpoint reading and writing included.
        examples_per_s: examples trained per second in this call, over the epochs' training time
            (``epoch_times_s``; no checkpoint writes); None when no epoch ran (a finished checkpoint).
        resumed_from_epoch: epochs taken from the checkpoint (0 for a fresh start).
        device: where it trained, e.g. ``"cuda:0"``.
        peak_memory_bytes: ``torch.cuda.max_memory_allocated`` during the call on CUDA, None on the CPU.
        epoch_times_s: seconds of each epoch run in this call (synchronised on CUDA).
        steps_per_epoch: ``ceil(n / batch_size)``.
        checkpoint_status: None (no ``checkpoint_dir``), ``"new"`` (none was there), ``"resumed"``,
            ``"finished"`` (it was complete: nothing ran, the weights were loaded), ``"config_changed"``
            (a checkpoint of another run was there: started afresh and replaced it) or ``"unreadable"``
            (damaged, or failing its content digest: started afresh and replaced it).
        world_size: the number of data-parallel ranks that trained (1 in one process); ``examples_per_s``
            counts the examples of all ranks.
    """

    epochs_run: int
    losses: tuple[float, ...]
    wall_time_s: float
    examples_per_s: float | None
    resumed_from_epoch: int
    device: str
    peak_memory_bytes: int | None
    epoch_times_s: tuple[float, ...] = ()
    steps_per_epoch: int = 0
    checkpoint_status: str | None = None
    world_size: int = 1


# ----------------------------------------------------------------------------------------------- training
def cross_entropy_loss(logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Per-example cross-entropy of ``logits`` (B, K) against the integer ``batch["labels"]`` (B,), in float32."""
    if "labels" not in batch:
        raise ValueError(f"batch must hold 'labels' for cross_entropy_loss; it holds {sorted(batch)}")
    return nn.functional.cross_entropy(logits.float(), batch["labels"].long(), reduction="none")


def _prepare_targets(
    targets: Mapping[str, torch.Tensor | np.ndarray], n: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Every entry to a tensor on ``device`` with first dimension n; floating entries as float32."""
    if not isinstance(targets, Mapping):
        raise TypeError(f"targets must be a mapping of name -> per-example tensor, got {type(targets).__name__}")
    out: dict[str, torch.Tensor] = {}
    for name, value in targets.items():
        if not isinstance(name, str):
            raise TypeError(f"targets keys must be strings, got {type(name).__name__}")
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise TypeError(f"targets[{name!r}] must be numeric, got dtype object")
            value = torch.from_numpy(np.ascontiguousarray(value))
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"targets[{name!r}] must be a numpy array or a torch tensor, got {type(value).__name__}")
        if value.ndim == 0 or value.shape[0] != n:
            raise ValueError(
                f"targets[{name!r}] must have the {n} examples along its first dimension, "
                f"got shape {tuple(value.shape)}"
            )
        dtype = torch.float32 if value.dtype.is_floating_point else value.dtype
        out[name] = value.detach().to(device=device, dtype=dtype).contiguous()
    return out


def _check_per_example(loss: object, batch_size: int) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"loss_fn must return a torch tensor of per-example losses, got {type(loss).__name__}")
    if loss.shape != (batch_size,):
        raise ValueError(
            f"loss_fn must return one value per example, a tensor of shape ({batch_size},), got shape "
            f"{tuple(loss.shape)}" + (" (return the per-example losses, not their mean)" if loss.ndim == 0 else "")
        )
    if not loss.dtype.is_floating_point:
        raise TypeError(f"loss_fn must return floating-point losses, got dtype {loss.dtype}")
    if not loss.requires_grad:
        raise ValueError("loss_fn's output does not depend on the logits (it has no gradient)")
    return loss


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of ``config`` over the trainable parameters of ``model`` (SGD with Nesterov momentum
    0.9, or AdamW), at the peak learning rate ``config.lr``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def _lr_factor(schedule: str, total_steps: int) -> Callable[[int], float]:
    if schedule == "constant":
        return lambda step: 1.0
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


def _derived_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for generator ``stream`` of run ``seed`` (independent streams from one seed)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _loss_identity(loss_fn: Callable[..., Any]) -> str | None:
    """A bound method's owner as it prints (a method object's ``repr`` lists its options), so that the same
    targets under another loss are another run; None for a plain function (its targets identify the run)."""
    owner = getattr(loss_fn, "__self__", None)
    if owner is None:
        return None
    return f"{type(owner).__module__}.{type(owner).__qualname__}.{getattr(loss_fn, '__name__', '')}: {owner!r}"


def _rank_seed(seed: int, rank: int) -> int:
    """The global generators' seed of data-parallel ``rank`` > 0 (rank 0 uses the single-process stream 2)."""
    return int(np.random.SeedSequence([seed, 2, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _target_rows(
    targets: Mapping[str, torch.Tensor | np.ndarray], start: int, stop: int, n: int
) -> dict[str, torch.Tensor | np.ndarray]:
    """Rows ``[start, stop)`` of every target, after checking that each holds the ``n`` examples."""
    if not isinstance(targets, Mapping):
        raise TypeError(f"targets must be a mapping of name -> per-example tensor, got {type(targets).__name__}")
    out = {}
    for name, value in targets.items():
        if isinstance(value, (np.ndarray, torch.Tensor)) and (value.ndim == 0 or value.shape[0] != n):
            raise ValueError(
                f"targets[{name!r}] must have the {n} examples along its first dimension, "
                f"got shape {tuple(value.shape)}"
            )
        out[name] = value[start:stop] if isinstance(value, (np.ndarray, torch.Tensor)) else value
    return out


def _part(inputs: ResidentInputs, world: int) -> _Part:
    """This rank's :class:`_Part`; a shard must be one of ``world`` contiguous shards in rank order."""
    shard = inputs.sharded
    if shard is None:
        return _Part(0, len(inputs), len(inputs), 1)
    if world == 1:
        raise ValueError("inputs are one rank's shard (ResidentInputs.shard), but there is no process group")
    parts = all_gather(np.array([shard.offset, shard.size, shard.total]))
    offsets, sizes, totals = (np.array([p[i] for p in parts]) for i in range(3))
    if np.any(totals != totals[0]) or np.any(offsets != np.concatenate([[0], np.cumsum(sizes)[:-1]])):
        raise ValueError(
            "inputs: the ranks' shards must be contiguous shards of one set, in rank order; got (offset, size, "
            f"total) per rank {[tuple(int(v) for v in p) for p in parts]}"
        )
    if int(sizes.sum()) != int(totals[0]) or int(totals[0]) == 0:
        raise ValueError(f"inputs: the ranks' shards hold {int(sizes.sum())} rows of a set of {int(totals[0])}")
    return _Part(shard.offset, shard.offset + shard.size, shard.total, world)


def _run_hash(
    config: TrainConfig,
    model: nn.Module,
    inputs: ResidentInputs,
    targets: Mapping[str, torch.Tensor],
    loss_fn: Callable[..., Any],
    part: _Part,
) -> str:
    """sha256 of what identifies a run: the config, the model's state names and shapes, the data shapes, the
    targets' contents, the loss's owner (:func:`_loss_identity`) and the device type (generator states do
    not carry over between CPU and CUDA). Data-parallel, each rank digests the targets of its rows and the
    digests of all ranks (gathered) identify the contents, with the world size: the same hash on every rank,
    and a checkpoint resumes a run of the same world size."""
    content = hashlib.sha256()
    for key, value in sorted(targets.items()):
        content.update(key.encode())
        content.update(value.detach().cpu().contiguous().numpy().tobytes())
    digest = content.hexdigest()
    if part.world > 1:
        parts = all_gather(np.frombuffer(content.digest(), dtype="<i8"))
        digest = hashlib.sha256(b"".join(p.astype("<i8").tobytes() for p in parts)).hexdigest()
    fingerprint = {
        "config": config.to_dict(),
        "device_type": inputs.device.type,
        "model": [[k, list(v.shape), str(v.dtype)] for k, v in model.state_dict().items()],
        "inputs": [part.total, list(inputs.input_shape), inputs.kind],
        "targets": [[k, [part.total, *v.shape[1:]], str(v.dtype)] for k, v in sorted(targets.items())],
        "targets_sha256": digest,
        "loss": _loss_identity(loss_fn),
    }
    if part.world > 1:
        fingerprint["world_size"] = part.world
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()


def _load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (tensors on the CPU), or None when it cannot be read or fails its digest
    (a ``DamagedFileWarning``; the run starts afresh and reports it)."""
    state = load_torch(path)
    return state if state is not None and state.get("format") == _CHECKPOINT_FORMAT else None


def _get_global_rng(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_global_rng(device: torch.device, state: Mapping[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _gather_global_rng(device: torch.device) -> list[dict[str, torch.Tensor]]:
    """Every rank's :func:`_get_global_rng`, in rank order (one all-gather of the generator states' bytes)."""
    state = _get_global_rng(device)
    names = sorted(state)
    sizes = [state[k].numel() for k in names]
    flat = np.concatenate([state[k].cpu().numpy().astype(np.int64) for k in names])
    out = []
    for part in all_gather(flat):
        pieces = np.split(part, np.cumsum(sizes)[:-1])
        out.append({k: torch.from_numpy(p.astype(np.uint8)) for k, p in zip(names, pieces)})
    return out


def _seed_global_rng(device: torch.device, seed: int) -> None:
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


@dataclasses.dataclass(frozen=True)
class _Part:
    """This rank's part of a (possibly data-parallel) run: its rows ``[start, stop)`` of the ``total`` training
    examples and the world size (``start = 0, stop = total, world = 1`` in one process)."""

    start: int
    stop: int
    total: int
    world: int


def _run_epoch(
    forward: Callable[[torch.Tensor], torch.Tensor],
    model: nn.Module,
    inputs: ResidentInputs,
    targets: Mapping[str, torch.Tensor],
    loss_fn: Callable[[torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor],
    config: TrainConfig,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    order_gen: torch.Generator,
    augment_gen: torch.Generator,
    part: _Part,
) -> tuple[float, float]:
    r"""One pass over the data; returns (mean per-example loss over all ranks, seconds). One host sync (and,
    data-parallel, one all-reduce), at the end.

    The epoch's order is one permutation of the ``part.total`` examples (the same on every rank); step ``s``
    takes the global batch ``order[s B : (s + 1) B]`` of :math:`B_s` examples. Data-parallel, this rank runs
    forward and backward on the members of the batch that lie in its rows (possibly none: then the forward pass
    of an empty batch and a zero loss, without calling ``loss_fn``, so that every rank takes part in the
    gradient all-reduce) with the loss :math:`\frac{W}{B_s}\sum_{i \in
    \text{rank}} \ell_i`; DDP averages the gradients over the :math:`W` ranks, which gives the gradient of
    :math:`\frac{1}{B_s}\sum_{i \in \text{batch}} \ell_i`, the single-process step's. Augmentation draws
    :math:`B_s` integers per step on every rank (the same stream) and each image uses the draw of its place in
    the global batch, as in one process.
    """
    device = inputs.device
    n, batch_size, world = part.total, config.batch_size, part.world
    autocast_dtype = config.autocast_dtype(device)
    _sync(device)
    started = time.perf_counter()
    order = torch.randperm(n, generator=order_gen)
    if world == 1:
        local = order.to(device, non_blocking=True)
        bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
        places = None
    else:  # the members of each global batch in this rank's rows, in the epoch's order, found once on the CPU
        mine = (order >= part.start) & (order < part.stop)
        slots = torch.arange(n)[mine]  # places in the epoch's order
        local = (order[mine] - part.start).to(device, non_blocking=True)
        counts = torch.bincount(slots // batch_size, minlength=-(-n // batch_size)).tolist()
        ends = np.cumsum(counts).tolist()
        bounds = [(end - count, end) for count, end in zip(counts, ends)]
        places = (slots % batch_size).to(device, non_blocking=True)
    loss_sum = torch.zeros((), dtype=torch.float32, device=device)
    for step, (lo, hi) in enumerate(bounds):
        global_size = min(batch_size, n - step * batch_size)
        index = local[lo:hi]
        if config.augment:
            draws = ResidentInputs._augment_draws(global_size, augment_gen)
            x = inputs._augmented(index, draws if places is None else draws[places[lo:hi]])
        else:
            x = inputs.batch(index)
        batch = {name: t.index_select(0, index) for name, t in targets.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_dtype is not None):
            logits = forward(x)
            # a rank without a member of this batch still runs backward (DDP's all-reduce), on a zero loss of
            # its empty forward pass: the loss function itself is not asked about an empty batch
            per_example = (
                _check_per_example(loss_fn(logits, batch), hi - lo) if hi > lo else logits.float().sum(dim=1) * 0.0
            )
        if world == 1:
            loss = per_example.float().mean()
        else:
            loss = per_example.float().sum() * (world / global_size)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        loss_sum += per_example.detach().float().sum()
    if world == 1:
        epoch_loss = float(loss_sum.item()) / n  # synchronises
    else:
        epoch_loss = float(all_sum([float(loss_sum.item())])[0]) / n
    return epoch_loss, time.perf_counter() - started


def train(
    model: nn.Module,
    inputs: ResidentInputs,
    targets: Mapping[str, torch.Tensor | np.ndarray],
    loss_fn: Callable[[torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor],
    config: TrainConfig,
    *,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    desc: str = "train",
) -> TrainResult:
    """Train ``model`` in place on ``inputs`` with the per-example loss ``loss_fn``; see the module docstring.

    Args:
        model: moved to ``inputs.device`` (``channels_last`` for image inputs on CUDA); trained in place and
            left in training mode.
        inputs: the training inputs (:class:`ResidentInputs`), on the training device.
        targets: per-example tensors or arrays (first dimension ``len(inputs)``), e.g. ``"labels"``,
            ``"teacher_probs"``, ``"alpha"``, ``"weights"``, ``"topk_index"``; moved to the device once
            (floating ones as float32). Each step passes their rows for the batch to ``loss_fn``.
        loss_fn: ``loss_fn(logits (B, K), batch) -> (B,)`` per-example losses (called under autocast when
            it is on); the step minimises their mean.
        config: a :class:`TrainConfig`.
        checkpoint_dir: after each epoch, the model, optimizer, scheduler and generator states, the epoch
            and the losses are written atomically to ``checkpoint_dir/checkpoint.pt`` with a digest of
            their contents. A checkpoint of the same run there (same config, model shapes, data shapes,
            target contents, loss owner and device type) is resumed from the next epoch (a finished one
            just loads the weights); a checkpoint of another run, or one failing its digest, is replaced
            (see ``TrainResult.checkpoint_status``). Only tensors and plain containers are stored, and it is
            read with ``torch.load(weights_only=True)``.
        progress: a tqdm bar over epochs with the last loss; None = only when stderr is a terminal.
        desc: the bar's label.

    Data-parallel (a default process group with more than one rank): called on every rank with the same
    arguments, the whole set or this rank's shard of it (:meth:`ResidentInputs.shard`, with the targets of its
    rows); module docstring for the sharding, the loss scaling, BatchNorm and checkpoints. A progress bar is
    shown by rank 0 only, and only rank 0 writes the checkpoint.

    Raises:
        TypeError, ValueError: bad arguments; a ``loss_fn`` that does not return one value per example.
        FloatingPointError: an epoch's mean loss is not finite (the last good checkpoint is kept).
        RuntimeError: data-parallel, the ranks read the checkpoint differently.
    """
    started = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, ResidentInputs):
        raise TypeError(f"inputs must be a ResidentInputs, got {type(inputs).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if config.augment and inputs.kind != "image":
        raise ValueError(f"config.augment=True needs image inputs, these are {inputs.kind!r}")
    if progress is None:
        progress = sys.stderr.isatty()
    rank, world = world_info()
    progress = progress and rank == 0
    device = inputs.device
    if world > 1 and inputs.sharded is None:  # every rank was given the whole set: keep this rank's rows
        start, stop = even_split(len(inputs))
        inputs = inputs._rows(start, stop, copy=False)
        targets = _target_rows(targets, start, stop, inputs.sharded.total)
    part = _part(inputs, world)
    n = part.total
    batch_size = config.batch_size
    steps_per_epoch = -(-n // batch_size)
    target_tensors = _prepare_targets(targets, part.stop - part.start, device)

    model.to(device)
    if inputs.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_factor(config.schedule, config.epochs * steps_per_epoch)
    )
    order_gen = torch.Generator().manual_seed(_derived_seed(config.seed, 0))
    augment_gen = torch.Generator(device=device).manual_seed(_derived_seed(config.seed, 1))

    losses: list[float] = []
    resume_state: dict[str, Any] | None = None
    start_epoch = 0
    status: str | None = None
    path: Path | None = None
    run_hash = _run_hash(config, model, inputs, target_tensors, loss_fn, part)
    if checkpoint_dir is not None:
        path = Path(checkpoint_dir) / CHECKPOINT_NAME
        if rank == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        status = "new"
        if path.exists():
            state = _load_checkpoint(path)
            if state is None:
                status = "unreadable"
            elif state.get("run_hash") != run_hash:
                status = "config_changed"
            else:
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
                order_gen.set_state(state["order_generator"])
                augment_gen.set_state(state["augment_generator"])
                resume_state = state
                start_epoch = int(state["epoch"])
                losses = [float(v) for v in state["losses"]]
                status = "finished" if start_epoch >= config.epochs else "resumed"
        if world > 1:  # every rank read the same file: they must agree before training together
            seen = all_gather(np.array([start_epoch, _STATUSES.index(status)]))
            if any(not np.array_equal(s, seen[0]) for s in seen):
                raise RuntimeError(f"the ranks read {path} differently: (epoch, status) per rank {seen}")

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    epoch_times: list[float] = []
    model.train()
    # The model's own randomness (dropout) draws from the global generators: run it on a fork of them,
    # seeded from config.seed and checkpointed, so the caller's RNG state is untouched and a resumed run
    # draws what the uninterrupted one would have.
    with (
        torch.random.fork_rng(devices=[device.index] if device.type == "cuda" else []),
        sync_batchnorm(model) if world > 1 and device.type == "cuda" else contextlib.nullcontext(),
    ):
        forward: Callable[[torch.Tensor], torch.Tensor] = model
        if world > 1:  # broadcasts rank 0's parameters and buffers (all ranks hold the same ones already)
            forward = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        if config.compile:
            forward = torch.compile(forward)
        if resume_state is not None:
            _set_global_rng(device, resume_state["global_rng"] if world == 1 else resume_state["global_rngs"][rank])
        else:
            _seed_global_rng(device, _derived_seed(config.seed, 2) if rank == 0 else _rank_seed(config.seed, rank))
        bar = tqdm(
            total=config.epochs,
            initial=start_epoch,
            desc=desc,
            unit="epoch",
            disable=not progress,
            file=sys.stderr,
        )
        try:
            for epoch in range(start_epoch, config.epochs):
                epoch_loss, seconds = _run_epoch(
                    forward,
                    model,
                    inputs,
                    target_tensors,
                    loss_fn,
                    config,
                    optimizer,
                    scheduler,
                    order_gen,
                    augment_gen,
                    part,
                )
                epoch_times.append(seconds)
                if not math.isfinite(epoch_loss):
                    raise FloatingPointError(
                        f"the mean training loss of epoch {epoch + 1} is {epoch_loss} (lr {config.lr} too high?)"
                    )
                losses.append(epoch_loss)
                if path is not None:
                    rng_state = (
                        {"global_rng": _get_global_rng(device)}
                        if world == 1
                        else {"global_rngs": _gather_global_rng(device)}
                    )
                    if rank == 0:
                        save_torch(
                            path,
                            {
                                "format": _CHECKPOINT_FORMAT,
                                "run_hash": run_hash,
                                "config": config.to_dict(),
                                "epoch": epoch + 1,
                                "losses": list(losses),
                                "model": model.state_dict(),
                                "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(),
                                "order_generator": order_gen.get_state(),
                                "augment_generator": augment_gen.get_state(),
                                **rng_state,
                            },
                        )
                    barrier()
                bar.update(1)
                bar.set_postfix(loss=f"{epoch_loss:.4f}")
        finally:
            bar.close()
    if world > 1:  # the same weights and buffers on every rank (BatchNorm's running statistics: rank 0's)
        broadcast_module(model)
    _sync(device)
    trained = sum(epoch_times)
    examples = n * len(epoch_times)  # global examples: every rank's share of every step
    return TrainResult(
        epochs_run=len(losses),
        losses=tuple(losses),
        wall_time_s=time.perf_counter() - started,
        examples_per_s=(examples / trained) if epoch_times and trained > 0 else None,
        resumed_from_epoch=start_epoch,
        device=str(device),
        peak_memory_bytes=int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None,
        epoch_times_s=tuple(epoch_times),
        steps_per_epoch=steps_per_epoch,
        checkpoint_status=status,
        world_size=world,
    )


def predict_probs(
    model: nn.Module,
    inputs: ResidentInputs,
    *,
    batch_size: int = 1024,
    amp: str = "auto",
    mc_dropout_seed: int | None = None,
    features: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities ``(n, K)`` float32 of ``model`` on ``inputs``, in eval mode and without gradients.

    The model is moved to ``inputs.device`` (``channels_last`` for images on CUDA) and its train/eval mode
    is restored afterwards. ``amp`` as in :class:`TrainConfig` (the forward pass may run in bfloat16; the
    softmax is always computed in float32). ``mc_dropout_seed``: keep the ``nn.Dropout`` layers active (MC
    dropout; everything else, BatchNorm included, stays in eval mode), their masks drawn under
    :func:`torch.random.fork_rng` seeded with it (the global RNG state is left as it was). ``features``: also
    return the penultimate features ``(n, d)`` float32, the input of
    :func:`~robustdistill.experiments.pipeline.models.classifier_head`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, ResidentInputs):
        raise TypeError(f"inputs must be a ResidentInputs, got {type(inputs).__name__}")
    batch_size = check_int(batch_size, "batch_size", low=1)
    amp = _check_choice(amp, "amp", _AMP)
    device = inputs.device
    use_bf16 = amp == "bf16" or (amp == "auto" and device.type == "cuda")
    model.to(device)
    if inputs.channels_last:
        model.to(memory_format=torch.channels_last)
    was_training = model.training
    model.eval()
    chunks: list[torch.Tensor] = []
    feats: list[torch.Tensor] = []
    hook = (
        classifier_head(model).register_forward_pre_hook(
            lambda _, args: feats.append(args[0].detach().float().flatten(1))
        )
        if features
        else None
    )
    rng_scope = (
        contextlib.nullcontext()
        if mc_dropout_seed is None
        else torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
    )
    try:
        with torch.inference_mode(), rng_scope:
            if mc_dropout_seed is not None:
                torch.manual_seed(check_int(mc_dropout_seed, "mc_dropout_seed"))
                for module in model.modules():
                    if isinstance(module, nn.Dropout):
                        module.train()
            for start in range(0, len(inputs), batch_size):
                index = torch.arange(start, min(start + batch_size, len(inputs)), device=device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    logits = model(inputs.batch(index))
                if logits.ndim != 2 or logits.shape[0] != index.numel():
                    raise ValueError(f"model must return (B, K) logits, got shape {tuple(logits.shape)}")
                chunks.append(torch.softmax(logits.float(), dim=1))
    finally:
        model.train(was_training)
        if hook is not None:
            hook.remove()
    probs = torch.cat(chunks).cpu().numpy()
    return (probs, torch.cat(feats).cpu().numpy()) if features else probs


def has_dropout(model: nn.Module) -> bool:
    """Whether ``model`` has an ``nn.Dropout`` layer with p > 0 (so MC dropout is stochastic)."""
    return any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())


def mc_dropout_std(model: nn.Module, inputs: ResidentInputs, *, passes: int = 10, seed: int = 0) -> np.ndarray:
    """Per-class standard deviation ``(n, K)`` of the softmax over ``passes`` MC-dropout passes (seeds
    ``seed .. seed + passes - 1``; :func:`predict_probs`): the teacher uncertainty ``u`` of the UPS baseline
    (``docs/theory/slam.md#slam-baselines``). Zeros when the model has no active dropout (every pass is the same)."""
    passes = check_int(passes, "passes", low=2)
    if not has_dropout(model):
        probs = predict_probs(model, inputs)
        return np.zeros_like(probs)
    draws = np.stack([predict_probs(model, inputs, mc_dropout_seed=seed + i) for i in range(passes)])
    return draws.std(axis=0).astype(np.float32)
