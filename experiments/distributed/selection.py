r"""RAD's selection and the cheap baselines over a pool sharded across the ranks of a ``torch.distributed``
process group, or split in chunks of a memory-mapped array in one process: :func:`select_sharded`.

Every rank holds the student's probabilities on its shard of the pool (shards in rank order; rank ``r``'s row
``i`` is the pool's row ``offset_r + i``), an array or a memory-mapped one read in chunks. The selection is the
single-process one (:func:`robustdistill.algorithms.selection.select` and the registry's baselines), computed
with collectives whose traffic does not grow with the pool (``docs/theory/rad.md#rad-sharded``; how to
run it: ``docs/guide/distributed.md``).

**The query game from order statistics** (our formulation, ``docs/theory/rad.md#rad-closed-form``). The
game's optimal marginals are :math:`p^* = \mathrm{FILL}(t^*)`: in decreasing-gain order each point takes
:math:`\min(1, t^*/g_i)` until the budget ``b`` is spent, so :math:`p^*` lives on a top-gain prefix and, tie
groups being averaged, is a function of the gain alone. The exact solver
(:func:`~robustdistill.algorithms.query_game.solve_query_game`) reads only the sorted prefix it fills: its
prefix sums :math:`S_j, G_j` and its breakpoints at gains and budget levels :math:`\tau_j` for :math:`j` up to
the support are the same numbers on the prefix as on the whole pool, and the concave :math:`H(t)` of the pool
equals the prefix's wherever the fill stops inside the prefix (and is above it elsewhere). So:

1. the gains are computed shard by shard (:func:`~robustdistill.algorithms.selection.informativeness`);
2. the ``k``-th largest gain :math:`\gamma` (:func:`~robustdistill.experiments.distributed.order.kth_largest`,
   counts only) cuts a prefix: every gain :math:`\ge \gamma` (whole tie groups) is gathered, ``k`` starting at
   :math:`2(b + m) + 64`;
3. the exact solver runs on the prefix; when its fill stops before the prefix's last tie group, its
   :math:`t^*` is the pool's (a local maximum of the concave :math:`H` where the two agree) and its
   probabilities are the pool's; otherwise ``k`` grows fourfold (at most the whole positive pool, which is
   the single-process computation itself);
4. every rank maps its gains to :math:`p^*` by value.

The regimes without a fill (``b = 0``, ``b`` at least the positive gains, ``m`` at least the positive gains)
are closed forms of the pool's counts. The memory is the shard's gains plus the prefix: the prefix is about
``b + m`` values in the usual regime, and grows toward the pool only where RAD is near-uniform
(:class:`~robustdistill.algorithms.selection.NearUniformWarning`, ``m`` much larger than ``b``).

**DepRound across shards** (our formulation, ``docs/theory/rad.md#rad-depround``). Each rank runs DepRound's
pairwise steps on its own marginals with its own stream (seeded from one draw of the shared ``rng``) until at
most one fractional entry is left
(:func:`~robustdistill.algorithms.depround.depround_partial`); the ranks' remainders are then gathered and
rounded by the same steps with the shared ``rng``, identically on every rank. Every step is a martingale, so
:math:`P[i \text{ chosen}] = p^*_i` exactly and the batch has exactly ``b`` points on every draw.

**Baselines.** ``margin``, ``entropy`` and ``least_confidence`` are the exact top-``b`` of the pool with the
single-process tie-breaking (:func:`~robustdistill.experiments.distributed.order.sharded_top_b`); ``random`` is
the single-process draw of ``b`` of the ``n`` pool indices, made identically on every rank.
"""

from __future__ import annotations

import mmap
import warnings

import numpy as np

from robustdistill.algorithms.depround import SUM_TOL, depround, depround_partial
from robustdistill.algorithms.query_game import solve_query_game
from robustdistill.algorithms.selection import (
    GAINS,
    NEAR_UNIFORM_RATIO,
    NearUniformWarning,
    Selection,
    informativeness,
)
from robustdistill.algorithms.typing import ArrayLike, FloatArray, RNGLike
from robustdistill.algorithms.validation import (
    as_numpy,
    check_budget,
    check_choice,
    check_int,
    check_mistakes,
    check_probability_vector,
    check_rng,
)

from .collectives import all_gather, all_sum, is_main, shard_of, world
from .order import PASS_CHUNK, kth_largest, sharded_top_b

__all__ = ["SHARDED_SELECTORS", "depround_sharded", "select_sharded", "shard_gains"]

#: The selectors :func:`select_sharded` runs over a sharded pool.
SHARDED_SELECTORS = ("rad", "random", *GAINS)
#: Rows of the student's probabilities read at a time (about 20 MB of float64 for K = 10).
CHUNK_ROWS = 1 << 18


def _release(view: np.ndarray) -> None:
    """Drop the pages of a chunk of a shared memory-mapped array from this process's resident memory (the
    file keeps them; they are read again if touched): a pass over a mapped pool then holds one chunk, not
    the pool. Nothing for arrays in memory or copy-on-write maps."""
    mm = getattr(view, "_mmap", None)
    if not isinstance(mm, mmap.mmap) or getattr(view, "mode", "r") == "c" or view.nbytes == 0:
        return
    base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    start = view.ctypes.data - base
    page = mmap.PAGESIZE
    first, last = -(-start // page) * page, (start + view.nbytes) // page * page
    if last > first:
        mm.madvise(mmap.MADV_DONTNEED, first, last - first)


def shard_gains(student_probs: ArrayLike, kind: str = "margin", *, chunk_rows: int = CHUNK_ROWS) -> FloatArray:
    """(n_r,) float64 gains (:func:`~robustdistill.algorithms.selection.informativeness`) of this rank's
    (n_r, K) shard of the student's probabilities, read ``chunk_rows`` rows at a time (a memory-mapped
    shard is never resident whole). ``n_r`` may be 0 (an empty shard)."""
    kind = check_choice(kind, "kind", GAINS)
    chunk_rows = check_int(chunk_rows, "chunk_rows", low=1)
    probs = student_probs if isinstance(student_probs, np.ndarray) else as_numpy(student_probs, "student_probs")
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"student_probs must be this rank's (n, K) shard with K >= 2, got shape {probs.shape}")
    gains = np.empty(probs.shape[0], dtype=np.float64)
    for start in range(0, probs.shape[0], chunk_rows):
        chunk = probs[start : start + chunk_rows]
        try:
            gains[start : start + chunk.shape[0]] = informativeness(chunk, kind)
        except ValueError as exc:
            raise ValueError(
                f"student_probs (rows {start}..{start + chunk.shape[0] - 1} of this shard): {exc}"
            ) from None
        _release(chunk)
    return gains


def _classes(k: int) -> None:
    """Every rank's shard must have the same number of classes (empty shards excepted)."""
    ks = np.concatenate(all_gather(np.array([k], dtype=np.int64)))
    if np.unique(ks[ks > 0]).size > 1:
        raise ValueError(f"student_probs has a different number of classes on different ranks: {ks.tolist()}")


def _rad_probabilities(gains: FloatArray, budget: int, mistakes: int, total: int) -> tuple[FloatArray, float]:
    """This shard's :math:`p^*` of the game on the whole pool's gains, written over ``gains`` (no second
    array of the shard's size), and the game's value :math:`V^*` (module docstring). ``gains`` in [0, 1];
    ``total``: the pool's size."""
    b, m = budget, mistakes
    positive = int(all_sum([np.count_nonzero(gains)])[0])
    if b == 0:
        gains[:] = 0.0
        return gains, 0.0
    if b >= positive:  # every positive gain, the rest spread over the zeros
        value = _bottom_sum(gains, m)  # p = 1 on every positive gain: q = g
        gains[gains > 0] = 1.0
        gains[gains == 0] = (b - positive) / (total - positive) if b > positive else 0.0
        return gains, value
    if m >= positive:  # every strategy has value 0: the uniform one
        gains[:] = b / total
        return gains, 0.0
    k = min(positive, 2 * (b + m) + 64)
    while True:
        cut = kth_largest(gains, k)
        prefix = np.sort(np.concatenate(all_gather(gains[gains >= cut])))[::-1]
        solution = solve_query_game(prefix, b, m)
        if prefix.size == positive or solution.probabilities[prefix == cut].max() == 0.0:
            break
        k = min(positive, 4 * k)
    levels, first = np.unique(prefix, return_index=True)  # ascending values; p* is constant on each
    p_of_level = solution.probabilities[first]
    for start in range(0, gains.size, PASS_CHUNK):
        g = gains[start : start + PASS_CHUNK]
        inside = g >= cut
        g[inside] = p_of_level[np.searchsorted(levels, g[inside])]
        g[~inside] = 0.0
    return gains, float(solution.value)


def _bottom_sum(x: FloatArray, m: int) -> float:
    """The sum of the ``n - m`` smallest entries of the pool whose shard is ``x`` (``n``: the pool's size),
    summed directly (as the single-process game value is, with no cancellation), with ties at the ``m``-th
    largest found by the exact sharded order statistics."""
    n = int(all_sum([x.size])[0])
    if m >= n:
        return 0.0
    if m == 0:
        return float(all_sum([x.sum()])[0])
    kth = kth_largest(x, m)
    below, at_or_above = 0.0, 0
    for start in range(0, x.size, PASS_CHUNK):  # chunk by chunk: no copy of the shard
        chunk = x[start : start + PASS_CHUNK]
        below += float(chunk.sum(where=chunk < kth))
        at_or_above += int(np.count_nonzero(chunk >= kth))
    sums = all_sum([below, float(at_or_above)])
    return float(sums[0]) + (float(sums[1]) - m) * kth


def depround_sharded(probabilities: ArrayLike, *, rng: RNGLike = None) -> np.ndarray:
    r"""One DepRound draw over a pool sharded across the ranks (module docstring): this rank's part of a batch
    of exactly :math:`b = \sum_i p_i` points (the sum over every shard, an integer) with
    :math:`P[i \text{ chosen}] = p_i`.

    Args:
        probabilities: this rank's (n_r,) marginals in [0, 1] (may be empty).
        rng: a seed or Generator in the same state on every rank.

    Returns:
        The chosen **local** indices of this shard, sorted int64. Without a process group:
        :func:`~robustdistill.algorithms.depround.depround` with the same ``rng``.
    """
    gen = check_rng(rng)
    p = np.asarray(probabilities, dtype=np.float64)
    if p.size:
        p = check_probability_vector(p, "probabilities")
    rank, size = world()
    if size == 1:
        return depround(p, rng=gen) if p.size else np.empty(0, dtype=np.int64)
    own = np.random.default_rng([int(gen.integers(2**63)), rank])
    chosen, rest, value = depround_partial(p, rng=own) if p.size else (np.empty(0, dtype=np.int64), -1, 0.0)
    # one all-reduce: every rank's remainder, the total of the marginals and the points chosen so far
    local = np.zeros(size + 2)
    local[rank], local[size], local[size + 1] = value, p.sum(), chosen.size
    summed = all_sum(local)
    remainders, total, count = summed[:size], float(summed[size]), round(summed[size + 1])
    if abs(total - round(total)) > SUM_TOL * max(1.0, total):
        raise ValueError(f"probabilities must sum to an integer over the shards (the batch size), got {total!r}")
    present = np.flatnonzero(remainders > 0)
    if present.size:
        final, last, drift = depround_partial(remainders[present], rng=gen)
        final = present[final]
        if last >= 0 and drift > 0.5:  # only floating-point drift is left
            final = np.append(final, present[last])
        count += final.size
        if rank in final:
            chosen = np.sort(np.append(chosen, rest))
    if count != round(total):  # pragma: no cover - an internal invariant, not a user error
        raise RuntimeError(f"DepRound over the shards chose {count} points instead of {round(total)}")
    return chosen


def select_sharded(
    student_probs: ArrayLike,
    budget: int,
    mistakes: int | None = None,
    *,
    rng: RNGLike = None,
    kind: str = "margin",
    selector: str = "rad",
    chunk_rows: int = CHUNK_ROWS,
) -> Selection:
    r"""The selection of ``budget`` points of a pool sharded across the ranks, called on every rank of the
    default process group with that rank's shard (module docstring: the algorithm).

    Args:
        student_probs: this rank's (n_r, K) student probabilities, shards in rank order; an array or a
            memory-mapped array (``np.load(path, mmap_mode="r")``), read ``chunk_rows`` rows at a time. A rank
            may hold an empty (0, K) shard.
        budget: b, integer in [0, n] for the pool's size n; the same on every rank.
        mistakes: m >= 0 for ``selector="rad"`` (the estimated teacher mistakes on the pool; see
            :func:`~robustdistill.algorithms.teacher_quality.estimate_mistakes`); ignored by the baselines.
        rng: a seed or :class:`numpy.random.Generator`, **in the same state on every rank** (DepRound's
            shared steps, the ties of the top-b and the random draw are made identically on every rank).
        kind: the gain, one of :data:`~robustdistill.algorithms.selection.GAINS` (``rad`` only; the gain
            baselines are named by ``selector``).
        selector: one of :data:`SHARDED_SELECTORS`: ``"rad"``, ``"random"``, ``"margin"``, ``"entropy"``,
            ``"least_confidence"``.
        chunk_rows: rows of ``student_probs`` read at a time.

    Returns:
        A :class:`~robustdistill.algorithms.selection.Selection` whose ``indices`` are the **global** pool
        indices chosen on this rank (sorted; over the ranks, exactly ``b`` distinct points) and whose
        ``probabilities`` are this shard's (n_r,) marginals (RAD's :math:`p^*`, equal to the single-process
        solver's to round-off; ``b/n`` for ``random``; None for the top-b baselines). RAD's
        ``diagnostics`` are the pool's, as :func:`~robustdistill.algorithms.selection.select` reports them.
        Without a process group this is :func:`~robustdistill.algorithms.selection.select` (``rad``) or the
        registry's selector, with the same indices for the same ``rng``.

    Warns:
        NearUniformWarning: on rank 0, as :func:`~robustdistill.algorithms.selection.select`.
    """
    selector = check_choice(selector, "selector", SHARDED_SELECTORS)
    gen = check_rng(rng)
    gains = shard_gains(student_probs, kind if selector == "rad" else selector if selector in GAINS else "margin")
    _classes(int(np.shape(student_probs)[1]) if gains.size else 0)
    shard = shard_of(gains.size)
    if shard.total == 0:
        raise ValueError("student_probs: the pool is empty on every rank")
    b = check_budget(budget, shard.total, "student_probs")
    if selector in GAINS:
        return Selection(sharded_top_b(gains, b, rng=gen))
    if selector == "random":
        picked = gen.choice(shard.total, size=b, replace=False)
        mine = np.sort(picked[(picked >= shard.offset) & (picked < shard.offset + shard.size)]).astype(np.int64)
        return Selection(mine, np.full(shard.size, b / shard.total))
    if mistakes is None:
        raise ValueError("rad needs mistakes: the estimated number of teacher mistakes on the pool")
    m = check_mistakes(mistakes)
    # F(b/n) = (b/n) * (sum of the n - m smallest gains): uniform sampling's guaranteed value
    uniform = b / shard.total * _bottom_sum(gains, m)
    p, value = _rad_probabilities(gains, b, m, shard.total)
    ratio = uniform / value if value > 0 else 1.0
    support = int(all_sum([np.count_nonzero(p)])[0])
    diagnostics = {"mistakes": m, "budget": b, "pool": shard.total, "support_size": support, "uniform_ratio": ratio}
    if is_main() and m > 0 and 0 < b < shard.total and ratio >= NEAR_UNIFORM_RATIO:
        warnings.warn(
            f"RAD is effectively uniform: with m = {m} estimated teacher mistakes, budget b = {b} and pool "
            f"n = {shard.total}, uniform sampling already guarantees {ratio:.1%} of RAD's worst-case value",
            NearUniformWarning,
            stacklevel=2,
        )
    chosen = depround_sharded(p, rng=gen) + shard.offset
    p.flags.writeable = False
    return Selection(chosen.astype(np.int64), p, diagnostics=diagnostics)
