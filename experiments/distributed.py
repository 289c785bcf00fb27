r"""Exact order statistics and top-b selection over a pool sharded across the ranks of a ``torch.distributed``
process group (gloo on CPUs, NCCL on GPUs; launched by ``torchrun``), without gathering the pool.

Each rank holds one shard of the pool's scores, shards in rank order (rank ``r``'s local index ``i`` is the
global index ``offset_r + i``). Only counts travel: every step is an all-reduce of a few int64 numbers, so the
traffic does not grow with the pool.

- :func:`kth_largest` finds the exact ``k``-th largest value by bisection on the float64 bit pattern (an
  order-preserving int64 key): at most 64 rounds of one all-reduce each.
- :func:`sharded_top_b` returns this rank's part of exactly the indices that
  :func:`robustdistill.algorithms.selection.top_b` picks on the whole pool, ties at the ``b``-th score broken
  by the same draw from the same ``rng``.

Without an initialised process group (or with one rank) both equal their single-process counterparts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from robustdistill.algorithms.typing import ArrayLike, IntArray, RNGLike
from robustdistill.algorithms.validation import as_real_array, check_budget, check_int, check_rng

__all__ = ["Shard", "kth_largest", "shard_of", "sharded_top_b"]


@dataclass(frozen=True)
class Shard:
    """Where this rank's shard sits in the pool: ``offset`` (global index of its first element), ``size``,
    and ``total`` (the pool's size)."""

    offset: int
    size: int
    total: int


def _world() -> tuple[int, int]:
    """(rank, world size) of the default group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_sum(values: list[int]) -> list[int]:
    """Element-wise sum of the int ``values`` over the ranks (the values themselves with one rank)."""
    if _world()[1] == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [int(v) for v in t.tolist()]


def shard_of(local_size: int) -> Shard:
    """This rank's :class:`Shard`, from every rank's ``local_size`` (one all-reduce)."""
    rank, world = _world()
    sizes = [0] * world
    sizes[rank] = check_int(local_size, "local_size", low=0)
    sizes = _all_sum(sizes)
    return Shard(offset=sum(sizes[:rank]), size=sizes[rank], total=sum(sizes))


def _shard_vector(x: ArrayLike, name: str) -> np.ndarray:
    """This rank's shard as a finite 1-D float64 array (it may be empty)."""
    arr = as_real_array(x, name).astype(np.float64, copy=False)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (this rank's shard), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _keys(values: np.ndarray) -> np.ndarray:
    """int64 keys with the order of the float64 ``values`` (``-0.0`` and ``0.0`` equal; no NaN)."""
    v = np.ascontiguousarray(values, dtype=np.float64) + 0.0  # -0.0 -> 0.0
    bits = v.view(np.int64)
    return np.where(bits < 0, np.int64(np.iinfo(np.int64).min) - bits - 1, bits)


def _value(key: int) -> float:
    bits = key if key >= 0 else np.iinfo(np.int64).min - key - 1
    return float(np.array([bits], dtype=np.int64).view(np.float64)[0])


def kth_largest(values: ArrayLike, k: int) -> float:
    """The exact ``k``-th largest of the pool whose shard on this rank is ``values`` (1 <= k <= pool size):
    the float64 ``v`` with at least ``k`` values ``>= v`` and fewer than ``k`` values ``> v``. Called on every
    rank; at most 64 all-reduces of two int64 numbers."""
    v = _shard_vector(values, "values")
    shard = shard_of(v.size)
    k = check_int(k, "k", low=1, high=max(shard.total, 1))
    if shard.total == 0:
        raise ValueError("values: the pool is empty on every rank")
    keys = _keys(v)
    info = np.iinfo(np.int64)
    low, high = _extremes([int(keys.min()) if keys.size else info.max, int(keys.max()) if keys.size else info.min])
    # invariant: count(keys >= low) >= k and count(keys >= high + 1) < k
    while low < high:
        mid = low + (high - low + 1) // 2
        if _all_sum([int(np.count_nonzero(keys >= mid))])[0] >= k:
            low = mid
        else:
            high = mid - 1
    return _value(low)


def _extremes(local: list[int]) -> tuple[int, int]:
    """The pool's smallest and largest keys from each rank's ``[min, max]`` (empty shards send the identity),
    by all-gathering them (two numbers per rank)."""
    rank, world = _world()
    if world == 1:
        return local[0], local[1]
    t = torch.tensor(local, dtype=torch.int64)
    parts = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(parts, t)
    stacked = torch.stack(parts)
    return int(stacked[:, 0].min()), int(stacked[:, 1].max())


def sharded_top_b(scores: ArrayLike, budget: int, *, rng: RNGLike = None) -> IntArray:
    """Global indices, ascending, of the points of this rank's shard among the ``budget`` largest scores of
    the whole pool: together over the ranks, exactly what
    :func:`~robustdistill.algorithms.selection.top_b` returns on the concatenated pool with the same
    ``rng`` (ties at the ``b``-th score drawn uniformly by the same draw, done identically on every rank).
    ``scores``: this rank's (n_r,) finite scores, shards in rank order; ``budget``: b in 0..pool size."""
    s = _shard_vector(scores, "scores")
    shard = shard_of(s.size)
    b = check_budget(budget, shard.total, "scores")
    gen = check_rng(rng)
    if b == 0:
        return np.empty(0, dtype=np.int64)
    if b == shard.total:
        return np.arange(shard.offset, shard.offset + shard.size, dtype=np.int64)
    kth = kth_largest(s, b)
    above = np.flatnonzero(s > kth)
    tied = np.flatnonzero(s == kth)
    rank, world = _world()
    counts = [0] * (2 * world)
    counts[rank], counts[world + rank] = above.size, tied.size
    counts = _all_sum(counts)
    n_above, tied_counts = sum(counts[:world]), counts[world:]
    # the single process draws rng.choice(global tied indices, b - above, replace=False): which positions of
    # the ascending global tie list it takes depends only on the two sizes and the generator's state
    positions = gen.choice(sum(tied_counts), size=b - n_above, replace=False)
    first = sum(tied_counts[:rank])
    mine = positions[(positions >= first) & (positions < first + tied.size)] - first
    return np.sort(np.concatenate([above, tied[mine]])).astype(np.int64) + shard.offset
