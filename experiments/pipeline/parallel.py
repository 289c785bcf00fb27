r"""Data-parallel runs under ``torchrun``: the process group, rank 0's decisions shared with every rank, and the
module-level operations :func:`~robustdistill.experiments.pipeline.training.train` needs around
:class:`torch.nn.parallel.DistributedDataParallel`.

The pipelines run the same code on every rank (``torchrun --nproc_per_node=N -m robustdistill.experiments.cli
...``): every rank loads the same data and draws from the same seeds, so they make the same decisions; what
could still differ between ranks (a file read, a teacher's answers, a floating-point prediction on another
device) is decided on rank 0 and shared. Only rank 0 writes files; the other ranks wait for it when they need
what it wrote.

- :func:`process_group`: the default process group of a ``torchrun`` launch (NCCL with ``cuda:LOCAL_RANK``
  for a CUDA run, gloo otherwise), created and destroyed around a run, unless the caller made one.
- :func:`share`: rank 0's (picklable) object on every rank; :func:`main_only` and :func:`on_main`: run a
  function on rank 0 only, its failure raised on every rank (and, for :func:`on_main`, its result shared).
- :func:`broadcast_module`: rank 0's parameters and buffers copied into the module on every rank.
- :func:`sync_batchnorm`: the BatchNorm layers of a module swapped for :class:`torch.nn.SyncBatchNorm`
  (sharing their parameters and buffers) for the length of a CUDA run, and put back afterwards.

Every function here is called on every rank, in the same order; without a process group (or with one rank)
each does what one process would.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from robustdistill.experiments.distributed.collectives import comm_device, is_main, launched_group, world

__all__ = [
    "RankZeroError",
    "broadcast_module",
    "main_only",
    "on_main",
    "process_group",
    "share",
    "sync_batchnorm",
]

T = TypeVar("T")


def _wants_cuda(device: str | torch.device | None) -> bool:
    """Whether a run on ``device`` (a config's ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:i"``, or None) uses CUDA."""
    name = "auto" if device is None else str(device).strip().lower()
    if name == "auto":
        return torch.cuda.is_available()
    return name.startswith("cuda")


@contextlib.contextmanager
def process_group(device: str | torch.device | None = "auto") -> Iterator[tuple[int, int]]:
    """The default process group of a ``torchrun`` launch for the length of the ``with`` block, with the
    backend of the run's ``device``; yields ``(rank, world size)``.

    :func:`~robustdistill.experiments.distributed.collectives.launched_group` with backend ``nccl`` when
    ``device`` is CUDA (``"auto"`` with CUDA available, ``"cuda"``, ``"cuda:i"``; each rank then on
    ``cuda:LOCAL_RANK``) and ``gloo`` otherwise (a CPU run on a CUDA machine included): created from the
    launcher's environment when ``torchrun`` started more than one process and no group exists, destroyed
    when the block ends; a group the caller created is used and kept; outside ``torchrun`` nothing is done.
    """
    with launched_group("nccl" if _wants_cuda(device) else "gloo") as here:
        yield here


def share(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (pickled; ``obj`` is ignored on the other ranks); ``obj`` itself in one
    process."""
    if world()[1] == 1:
        return obj
    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


class RankZeroError(RuntimeError):
    """Raised on the ranks other than 0 when what rank 0 ran for them failed (the message is rank 0's)."""


def main_only(fn: Callable[[], T]) -> T | None:
    """``fn()`` on rank 0 (its result there, None on the other ranks). When it raises, rank 0 re-raises the
    exception and every other rank raises it too (a :class:`RankZeroError` when it cannot be pickled), so no
    rank waits for a rank that has stopped."""
    if world()[1] == 1:
        return fn()
    failure: Exception | None = None
    payload: Exception | None = None
    result = None
    if is_main():
        try:
            result = fn()
        except Exception as exc:  # shared below, then raised on every rank
            failure = payload = exc
            try:
                pickle.dumps(exc)
            except Exception:  # an exception that does not pickle travels as its message
                payload = RankZeroError(f"rank 0: {type(exc).__name__}: {exc}")
    shared = share(payload)
    if failure is not None:
        raise failure
    if shared is not None:
        raise shared
    return result


def on_main(fn: Callable[[], T]) -> T:
    """``fn()`` run on rank 0 only, its (picklable) result on every rank; its failure raised on every rank
    (:func:`main_only`)."""
    return share(main_only(fn))  # type: ignore[return-value]


@torch.no_grad()
def broadcast_module(module: nn.Module) -> nn.Module:
    """Copy rank 0's parameters and buffers (every entry of ``module.state_dict()``) into ``module`` on every
    rank, in place; returns ``module``. Nothing is done in one process."""
    if world()[1] == 1:
        return module
    device = comm_device()
    for tensor in module.state_dict(keep_vars=False).values():
        buffer = tensor.detach().to(device).contiguous()
        dist.broadcast(buffer, src=0)
        tensor.copy_(buffer)
    return module


@contextlib.contextmanager
def sync_batchnorm(module: nn.Module) -> Iterator[nn.Module]:
    """Every BatchNorm layer below ``module`` (``nn.BatchNorm1d/2d/3d``; not ``module`` itself) replaced by an
    :class:`torch.nn.SyncBatchNorm` that shares its parameters and buffers (so the optimizer, the checkpoint
    and the running statistics see the same tensors), for the length of the ``with`` block; the original
    layers are put back when it ends. The batch statistics in training mode are then those of the global batch
    over all ranks. :class:`torch.nn.SyncBatchNorm` runs on CUDA only."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, nn.SyncBatchNorm):
                replacement = nn.SyncBatchNorm.convert_sync_batchnorm(child)
                setattr(parent, name, replacement)
                swapped.append((parent, name, child))
    try:
        yield module
    finally:
        for parent, name, child in reversed(swapped):
            setattr(parent, name, child)
