r"""DepRound: dependent rounding of marginals to a batch of exactly ``b`` points.

Paper: Algorithm 2 (DEPROUND) of Baykal, Trinh, Iliopoulos, Menghani, Vee, "Robust Active Distillation",
ICLR 2023, after Gandhi, Khuller, Parthasarathy, Srinivasan, "Dependent rounding and its applications to
approximation algorithms", JACM 53(3), 2006, and Srinivasan, "Distributions on level-sets with
applications to approximation algorithms", FOCS 2001. The tree-vectorized variant is **our
formulation** (``docs/theory/rad.md#rad-depround``).

Pairwise step. Two fractional entries :math:`a, c \in (0, 1)` with :math:`s = a + c` become

.. math::

    (a, c) \leftarrow \begin{cases}
        (s, 0) \text{ w.p. } a/s, \quad (0, s) \text{ otherwise} & \text{if } s \le 1, \\
        (1, s - 1) \text{ w.p. } (1 - c)/(2 - s), \quad (s - 1, 1) \text{ otherwise} & \text{if } s > 1.
    \end{cases}

The second case is the first one applied to the complements :math:`(1 - a, 1 - c)`. The step keeps
:math:`a + c`, makes at least one entry integral (it is *finished*; the other *stays*), and is a
martingale: for :math:`s \le 1`, :math:`E[a'] = s \cdot a/s = a`; for :math:`s > 1`,
:math:`E[a'] = (1 - c)/(2 - s) + (s - 1)(1 - a)/(2 - s) = a`; likewise for :math:`c`. So every final entry
is 1 with probability :math:`p_i`, the number of ones is :math:`\sum_i p_i = b` on every draw, and the
selection is negatively correlated, :math:`P[i, j \in S] \le p_i p_j` (Gandhi et al. 2006).

Tree-vectorized variant (our formulation). The fractional entries are randomly permuted and paired
``F[0::2]`` with ``F[1::2]``; all pairs of a level take their step at once with one ``rng.random`` draw.
The entry that stays takes its pair's place in ``F`` (a binary tree over the permuted order; the pairing
never looks at future coins, so the guarantees above hold). At most one entry per pair stays, so there
are :math:`\lceil \log_2 n \rceil` levels and O(n) work in all; the only Python loop is over levels.
"""

from __future__ import annotations

import numpy as np

from .typing import ArrayLike, IntArray, RNGLike
from .validation import check_probability_vector, check_rng

#: Entries within this distance of 0 or 1 are integral (the rest is floating-point drift).
SNAP_TOL = 1e-12
#: Relative tolerance on the integrality of ``sum(probabilities)``.
SUM_TOL = 1e-9

__all__ = ["depround", "depround_partial"]


def depround(probabilities: ArrayLike, *, rng: RNGLike = None) -> IntArray:
    r"""Sample exactly ``b = round(sum(p))`` distinct points with :math:`P[i \in S] = p_i`.

    (paper: Algorithm 2 of Robust Active Distillation, ICLR 2023; the tree-vectorized variant is our
    formulation; the math is in the module docstring.)

    Args:
        probabilities: (n,) marginals :math:`p \in [0, 1]^n` whose sum is an integer ``b`` (to a relative
            1e-9). A numpy array, a list or a torch tensor (converted once). Not modified.
        rng: keyword-only; a :class:`numpy.random.Generator` (used and advanced), an int seed, or
            ``None`` (fresh OS entropy).

    Returns:
        (b,) sorted int64 indices of distinct points. :math:`P[i \in S] = p_i` up to float round-off;
        entries with :math:`p_i = 1` are always chosen, entries with :math:`p_i = 0` never; the
        selection is negatively correlated, :math:`P[i, j \in S] \le p_i p_j`.

    Raises:
        ValueError: ``probabilities`` is not a finite, non-empty 1-D vector in [0, 1], or its sum is not
            an integer.
        TypeError: ``rng`` is not a Generator, an int or None.

    References:
        Gandhi, Khuller, Parthasarathy, Srinivasan, "Dependent rounding and its applications to
        approximation algorithms", JACM 53(3):324-360, 2006. Srinivasan, "Distributions on level-sets
        with applications to approximation algorithms", FOCS 2001.

    Example:
        >>> depround([0.5, 0.5, 1.0, 0.0], rng=0).size
        2
    """
    p = check_probability_vector(probabilities, "probabilities")
    gen = check_rng(rng)
    total = float(p.sum())
    b = round(total)
    if abs(total - b) > SUM_TOL * max(1.0, total):
        raise ValueError(f"probabilities must sum to an integer (the batch size b), got sum={total!r}")

    chosen, rest, value = _rounds(p, gen)
    if rest >= 0 and value > 0.5:  # only floating-point drift is left
        chosen[rest] = True

    out = np.flatnonzero(chosen).astype(np.int64, copy=False)
    if out.size != b:  # pragma: no cover - an internal invariant, not a user error
        raise RuntimeError(f"depround chose {out.size} points instead of b={b}")
    return out


def _rounds(p: np.ndarray, gen: np.random.Generator) -> tuple[np.ndarray, int, float]:
    """The tree-vectorized pairing of :func:`depround` on validated marginals ``p``, until at most one
    fractional entry is left: ``(chosen (n,) bool, index of the fractional entry or -1, its value)``."""
    chosen = p > 1.0 - SNAP_TOL  # snapped to 1: always in
    frac = gen.permutation(np.flatnonzero((p >= SNAP_TOL) & ~chosen))  # the pairing order
    vals = p[frac]
    while frac.size >= 2:
        k = frac.size // 2
        i, j = frac[0 : 2 * k : 2], frac[1 : 2 * k : 2]
        a, c = vals[0 : 2 * k : 2], vals[1 : 2 * k : 2]
        s = a + c
        over = s > 1.0  # the finished entry becomes 1 (else 0); the one that stays gets s - over
        # P[a stays] = a / s if s <= 1, else (1 - a) / (2 - s) (the s <= 1 case on the complements)
        a_stays = gen.random(k) * np.where(over, 2.0 - s, s) < np.where(over, 1.0 - a, a)
        chosen[np.where(a_stays, j, i)[over]] = True
        stay, rest = np.where(a_stays, i, j), s - over
        chosen[stay[rest > 1.0 - SNAP_TOL]] = True
        keep = (rest >= SNAP_TOL) & (rest <= 1.0 - SNAP_TOL)
        frac = np.concatenate((stay[keep], frac[2 * k :]))
        vals = np.concatenate((rest[keep], vals[2 * k :]))
    if frac.size == 1:
        return chosen, int(frac[0]), float(vals[0])
    return chosen, -1, 0.0


def depround_partial(probabilities: ArrayLike, *, rng: RNGLike = None) -> tuple[IntArray, int, float]:
    r"""DepRound's pairwise steps on marginals whose sum need not be an integer, stopped when at most one
    fractional entry is left: the building block of DepRound over a pool split into parts (each part rounds
    its own entries, then the parts' remainders are rounded together).

    The steps are :func:`depround`'s (module docstring), so every entry keeps its marginal: the returned
    remainder ``v`` stands for "entry ``i`` is chosen with probability ``v``", and rounding it later by any
    further martingale step keeps :math:`P[j \in S] = p_j` for every ``j``.

    Args:
        probabilities: (n,) marginals in [0, 1] (any sum).
        rng: a :class:`numpy.random.Generator`, an int seed or None.

    Returns:
        ``(indices, i, v)``: the sorted int64 indices already chosen, and the one entry ``i`` left
        fractional with its value ``v`` in (0, 1) (``i = -1``, ``v = 0.0`` when none is left). The number of
        chosen entries plus ``v`` equals :math:`\sum_j p_j` up to round-off.
    """
    p = check_probability_vector(probabilities, "probabilities")
    chosen, rest, value = _rounds(p, check_rng(rng))
    return np.flatnonzero(chosen).astype(np.int64, copy=False), rest, value
