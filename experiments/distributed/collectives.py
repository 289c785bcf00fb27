r"""The few collective operations the sharded algorithms need, over the default ``torch.distributed`` process
group (gloo on CPUs, NCCL on GPUs; launched by ``torchrun``), and the identity without one.

Every function is called on every rank in the same order. Without an initialised process group, or with one
rank, each returns what one process would compute, so the same code runs in one process and in many.

- :func:`world`: ``(rank, world size)``; :func:`is_main`: rank 0 (the rank that writes files).
- :func:`all_sum`: element-wise sums of int64 or float64 vectors; :func:`all_gather`: every rank's vector
  (of any length) in rank order; :func:`broadcast`: rank 0's vector on every rank; :func:`barrier`.
- :func:`comm_device`: where a collective's tensors live (the rank's GPU under NCCL).
- :func:`launched_group`: the default group of a ``torchrun`` launch, initialised from its environment.
- :class:`Shard` and :func:`shard_of`: where a rank's shard sits in the pool (shards in rank order), and
  :func:`even_split`: the contiguous ``[start, stop)`` of ``n`` rows a rank holds when they are split evenly.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from robustdistill.algorithms.validation import check_int

__all__ = [
    "Shard",
    "all_gather",
    "all_sum",
    "barrier",
    "broadcast",
    "comm_device",
    "even_split",
    "is_main",
    "launched_group",
    "shard_of",
    "world",
]


def world() -> tuple[int, int]:
    """``(rank, world size)`` of the default process group; ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this is rank 0 (or the only process): the rank that writes results, checkpoints and reports."""
    return world()[0] == 0


def comm_device() -> torch.device:
    """Where a collective's tensors must live: this rank's CUDA device under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _vector(values: np.ndarray | list) -> np.ndarray:
    """``values`` as a new 1-D int64 (integers) or float64 (anything else) array (a copy: the caller's array is
    never shared with a collective)."""
    arr = np.asarray(values)
    return arr.astype(np.int64 if np.issubdtype(arr.dtype, np.integer) else np.float64).reshape(-1)


def all_sum(values: np.ndarray | list) -> np.ndarray:
    """Element-wise sum over the ranks of a 1-D int64 or float64 vector (the same length on every rank); a
    copy of ``values`` with one rank. Integers are summed exactly (int64)."""
    arr = _vector(values)
    if world()[1] == 1:
        return arr
    t = torch.from_numpy(arr).to(comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().numpy()


def all_gather(values: np.ndarray) -> list[np.ndarray]:
    """Every rank's 1-D int64 or float64 vector, in rank order (lengths may differ between ranks)."""
    arr = _vector(values)
    rank, size = world()
    if size == 1:
        return [arr]
    lengths = np.zeros(size, dtype=np.int64)
    lengths[rank] = arr.size
    lengths = all_sum(lengths)
    longest = int(lengths.max())
    device = comm_device()
    padded = torch.zeros(longest, dtype=torch.from_numpy(arr).dtype, device=device)
    padded[: arr.size] = torch.from_numpy(arr).to(device)
    parts = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded)
    return [part[: int(n)].cpu().numpy() for part, n in zip(parts, lengths, strict=True)]


def broadcast(values: np.ndarray) -> np.ndarray:
    """Rank 0's 1-D int64 or float64 vector on every rank (``values`` must have rank 0's length and dtype)."""
    arr = _vector(values)
    if world()[1] == 1:
        return arr
    t = torch.from_numpy(arr).to(comm_device())
    dist.broadcast(t, src=0)
    return t.cpu().numpy()


def barrier() -> None:
    """Wait for every rank (nothing without a process group)."""
    if world()[1] > 1:
        dist.barrier()


@dataclass(frozen=True)
class Shard:
    """Where this rank's shard sits in the pool: ``offset`` (global index of its first element), ``size``,
    and ``total`` (the pool's size)."""

    offset: int
    size: int
    total: int


def shard_of(local_size: int) -> Shard:
    """This rank's :class:`Shard`, from every rank's ``local_size`` (one all-reduce)."""
    rank, size = world()
    sizes = np.zeros(size, dtype=np.int64)
    sizes[rank] = check_int(local_size, "local_size", low=0)
    sizes = all_sum(sizes)
    return Shard(offset=int(sizes[:rank].sum()), size=int(sizes[rank]), total=int(sizes.sum()))


def even_split(n: int, rank: int | None = None, size: int | None = None) -> tuple[int, int]:
    """``[start, stop)`` of the rows of an ``n``-row set that ``rank`` of ``size`` holds when they are split
    into contiguous, nearly equal shards in rank order (sizes differ by at most one); this process's rank
    and world size by default."""
    here = world()
    rank = here[0] if rank is None else check_int(rank, "rank", low=0)
    size = here[1] if size is None else check_int(size, "size", low=1)
    n = check_int(n, "n", low=0)
    if rank >= size:
        raise ValueError(f"rank must be below size={size}, got {rank}")
    return rank * n // size, (rank + 1) * n // size


@contextlib.contextmanager
def launched_group(backend: str | None = None) -> Iterator[tuple[int, int]]:
    """Within the block, the default process group of a ``torchrun`` launch; yields ``(rank, world size)``.

    When ``torchrun`` launched this process (``WORLD_SIZE`` > 1 in the environment) and no group is
    initialised, the group is initialised from the environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``) with ``backend`` (default: ``"nccl"`` when CUDA is available, each rank on
    ``cuda:LOCAL_RANK``; else ``"gloo"``) and destroyed at the end. A group the caller initialised is used and
    kept; without a launch nothing happens and the block runs as one process."""
    created = False
    if dist.is_available() and not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
        created = True
    try:
        yield world()
    finally:
        if created:
            dist.destroy_process_group()
