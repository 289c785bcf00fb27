r"""Exact order statistics and top-b selection over a pool sharded across the ranks of a ``torch.distributed``
process group (gloo on CPUs, NCCL on GPUs; launched by ``torchrun``), without gathering the pool.

Each rank holds one shard of the pool's scores, shards in rank order (rank ``r``'s local index ``i`` is the
global index ``offset_r + i``). Only counts travel: every step is an all-reduce of int64 counts, so the traffic
does not grow with the pool.

- :func:`kth_largest` finds the exact ``k``-th largest value by a radix search on the float64 bit pattern
  (an order-preserving 64-bit key): 4 passes over the shard, each ending in one all-reduce of a histogram.
- :func:`sharded_top_b` returns this rank's part of exactly the indices that
  :func:`robustdistill.algorithms.selection.top_b` picks on the whole pool, ties at the ``b``-th score broken
  by the same draw from the same ``rng``.

Without an initialised process group (or with one rank) both equal their single-process counterparts.
"""

from __future__ import annotations

import numpy as np

from robustdistill.algorithms.typing import ArrayLike, IntArray, RNGLike
from robustdistill.algorithms.validation import as_real_array, check_budget, check_int, check_rng

from .collectives import all_sum, shard_of, world

__all__ = ["PASS_CHUNK", "kth_largest", "sharded_top_b"]


def _shard_vector(x: ArrayLike, name: str) -> np.ndarray:
    """This rank's shard as a finite 1-D float64 array (it may be empty)."""
    arr = as_real_array(x, name).astype(np.float64, copy=False)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (this rank's shard), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


#: Digits of the radix search: 4 rounds of 16 bits cover the 64-bit keys.
_DIGIT_BITS = 16
#: Values per pass: the keys are computed chunk by chunk, never for the whole shard at once.
PASS_CHUNK = 1 << 22
_SIGN = np.uint64(1 << 63)


def _keys(values: np.ndarray) -> np.ndarray:
    """uint64 keys with the order of the float64 ``values`` (``-0.0`` and ``0.0`` equal; no NaN): the bit
    pattern with the sign bit set for non-negative values and every bit flipped for negative ones."""
    bits = (np.ascontiguousarray(values, dtype=np.float64) + 0.0).view(np.uint64)  # + 0.0: -0.0 -> 0.0
    return np.where(bits & _SIGN, ~bits, bits | _SIGN)


def _value(key: int) -> float:
    """The float64 whose :func:`_keys` key is ``key``."""
    k = np.array([key], dtype=np.uint64)
    bits = np.where(k & _SIGN, k & ~_SIGN, ~k)
    return float(bits.view(np.float64)[0])


def kth_largest(values: ArrayLike, k: int) -> float:
    """The exact ``k``-th largest of the pool whose shard on this rank is ``values`` (1 <= k <= pool size):
    the float64 ``v`` with at least ``k`` values ``>= v`` and fewer than ``k`` values ``> v``.

    Called on every rank. A radix search on order-preserving 64-bit keys: 4 passes over the shard (in chunks
    of 4M values, so the extra memory stays bounded), each ending in one all-reduce of a 65,536-bin
    histogram of the next 16 bits among the keys that share the digits found so far."""
    v = _shard_vector(values, "values")
    shard = shard_of(v.size)
    if shard.total == 0:
        raise ValueError("values: the pool is empty on every rank")
    k = check_int(k, "k", low=1, high=shard.total)
    prefix = 0  # the key's digits found so far
    bins = 1 << _DIGIT_BITS
    for shift in range(64 - _DIGIT_BITS, -1, -_DIGIT_BITS):
        hist = np.zeros(bins, dtype=np.int64)
        for start in range(0, v.size, PASS_CHUNK):
            keys = _keys(v[start : start + PASS_CHUNK])
            if shift < 64 - _DIGIT_BITS:
                keys = keys[(keys >> np.uint64(shift + _DIGIT_BITS)) == np.uint64(prefix)]
            hist += np.bincount(((keys >> np.uint64(shift)) & np.uint64(bins - 1)).astype(np.intp), minlength=bins)
        hist = all_sum(hist)
        at_or_above = np.cumsum(hist[::-1])[::-1]  # at_or_above[d]: keys with this digit >= d
        digit = int(np.flatnonzero(at_or_above >= k)[-1])
        k -= int(at_or_above[digit] - hist[digit])  # the keys with a larger digit come first
        prefix = (prefix << _DIGIT_BITS) | digit
    return _value(prefix)


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
    rank, size = world()
    counts = np.zeros(2 * size, dtype=np.int64)
    counts[rank], counts[size + rank] = above.size, tied.size
    counts = all_sum(counts)
    n_above, tied_counts = int(counts[:size].sum()), [int(c) for c in counts[size:]]
    # the single process draws rng.choice(global tied indices, b - above, replace=False): which positions of
    # the ascending global tie list it takes depends only on the two sizes and the generator's state
    positions = gen.choice(sum(tied_counts), size=b - n_above, replace=False)
    first = sum(tied_counts[:rank])
    mine = positions[(positions >= first) & (positions < first + tied.size)] - first
    return np.sort(np.concatenate([above, tied[mine]])).astype(np.int64) + shard.offset
