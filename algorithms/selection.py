r"""Which pool points to send to the teacher: RAD's ``select`` and the active-learning baselines
(``docs/theory/rad.md#rad-baselines``; our formulation of each).

Every selector takes the current student's probabilities on the pool and a budget ``b`` in 0..n (a larger one is a
``ValueError``) and returns a :class:`Selection` of exactly ``b`` distinct pool indices:

=====================  ==============================================================================
``random``             a uniform b-subset
``margin``             top-b by ``informativeness(P, "margin")`` (likewise ``entropy``,
                       ``least_confidence``); ties at the b-th score broken uniformly with ``rng``
``rad``                RAD: gains -> the exact query game with ``mistakes`` -> DepRound (:func:`select`)
``coreset``            k-center greedy on embeddings (Sener & Savarese 2018); centers = ``center_embeddings``
``badge``              k-means++ seeding on gradient embeddings (f - onehot(argmax f)) x h (Ash et al. 2020)
``cluster_margin``     lowest-margin candidates round-robin over HAC clusters (Citovsky et al. 2021)
``unixkd``             top-b by entropy, then rank-dependent mixup within chunks of 48 (UNIXKD, Xu et al.
                       2020, adapted to pool rounds); ``Selection.mix`` holds the partners and weights and
                       :func:`mix_inputs` builds the inputs the teacher is queried on
=====================  ==============================================================================

Gains (:func:`informativeness`, higher = more informative, in [0, 1]): ``margin`` :math:`1 - (f_{(1)} -
f_{(2)})`, ``entropy`` :math:`-\sum_k f_k \log f_k / \log K`, ``least_confidence`` :math:`(1 - \max_k
f_k) K/(K-1)`. Top-b uses ``np.argpartition`` (never a full sort).

Registry: :data:`SELECTORS` maps a name to a selector called as ``fn(student_probs, budget, *, rng=None,
mistakes=None, embeddings=None, center_embeddings=None) -> Selection`` (``rng`` and the rest by keyword);
each selector uses what its rule needs (``mistakes`` for ``rad``; ``embeddings`` (n, d) for ``coreset`` and
``badge``), ignores the rest, and says so when what it needs is missing. :func:`rad` and :func:`select`
share one signature, ``f(student_probs, budget, mistakes, *, rng=None, kind="margin")``: ``mistakes`` may
be passed by position or by keyword to either.

Near-uniform RAD: when the estimated mistakes ``m`` dwarf the budget, the game's law :math:`p^*` spreads
over most of the pool and uniform sampling already guarantees nearly all of RAD's worst-case value.
:func:`select` reports this in ``Selection.diagnostics`` and, at :data:`NEAR_UNIFORM_RATIO` or above,
with a :class:`NearUniformWarning`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special

from .depround import depround
from .query_game import solve_query_game, worst_case_value
from .results import Result
from .typing import ArrayLike, FloatArray, IntArray, RNGLike
from .validation import (
    as_real_array,
    check_array,
    check_budget,
    check_choice,
    check_int,
    check_mistakes,
    check_probs,
    check_rng,
    check_vector,
)

__all__ = [
    "GAINS",
    "NEAR_UNIFORM_RATIO",
    "SELECTORS",
    "NearUniformWarning",
    "Selection",
    "badge",
    "cluster_assignments",
    "cluster_margin",
    "coreset",
    "entropy",
    "informativeness",
    "least_confidence",
    "margin",
    "mix_inputs",
    "rad",
    "random",
    "select",
    "top_b",
    "unixkd",
]

GAINS = ("margin", "entropy", "least_confidence")

#: :func:`select` warns (:class:`NearUniformWarning`) when ``m > 0``, ``0 < b < n`` and uniform sampling
#: guarantees at least this fraction of RAD's worst-case value :math:`V^*` (``diagnostics["uniform_ratio"]``).
NEAR_UNIFORM_RATIO = 0.95


class NearUniformWarning(UserWarning):
    """RAD's query law is effectively uniform: with this many estimated teacher mistakes per budget,
    uniform sampling already guarantees :data:`NEAR_UNIFORM_RATIO` or more of RAD's worst-case value."""


@dataclasses.dataclass(frozen=True)
class Selection(Result):
    """The points to query.

    Attributes:
        indices: (b,) distinct int64 pool indices, sorted. Writable (the selectors build it fresh; a
            read-only array passed in is copied), so ``torch.as_tensor(sel.indices)`` and
            ``tensor[sel.indices]`` work without a warning.
        probabilities: (n,) read-only, the marginal P[i selected] when the selector is randomized by
            design (RAD: the game's :math:`p^*`; random: b/n), else None (deterministic top-b, greedy).
        mix: only for :func:`unixkd`: ``(partner, mu)``, both (b,) and aligned with ``indices``, meaning
            the teacher is queried on ``(1 - mu) x[indices] + mu x[partner]`` (:func:`mix_inputs`).
        diagnostics: only for RAD (:func:`select`, :func:`rad`): ``{"mistakes": m, "budget": b, "pool": n,
            "support_size": #{i : p*_i > 0}, "uniform_ratio": F(b/n) / V*}``, where :math:`F` is the
            worst-case value (:func:`~robustdistill.algorithms.query_game.worst_case_value`) and
            :math:`V^*` the game's value (the ratio is 1 when :math:`V^* = 0`). A ratio near 1 means RAD is
            effectively uniform sampling.
    """

    writable_fields = ("indices",)

    indices: IntArray
    probabilities: FloatArray | None = None
    mix: tuple[IntArray, FloatArray] | None = None
    diagnostics: dict[str, Any] | None = None


def informativeness(student_probs: ArrayLike, kind: str = "margin") -> FloatArray:
    r"""Gains in [0, 1] of the pool points, higher = more informative (``docs/theory/rad.md#rad-gains``, our formulation).

    Args:
        student_probs: (n, K) student probabilities, rows on the simplex.
        kind: ``"margin"`` :math:`1 - (f_{(1)} - f_{(2)})`, ``"entropy"`` :math:`-\sum_k f_k\log f_k/\log K`
            or ``"least_confidence"`` :math:`(1 - \max_k f_k)\,K/(K-1)`.

    Returns:
        (n,) float64 in [0, 1].

    >>> informativeness([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])
    array([0.5, 1. ])
    """
    kind = check_choice(kind, "kind", GAINS)
    p = check_probs(student_probs, "student_probs")
    k = p.shape[1]
    if kind == "margin":
        top2 = np.partition(p, k - 2, axis=1)[:, -2:]
        gains = 1.0 - (top2[:, 1] - top2[:, 0])
    elif kind == "entropy":
        gains = -special.xlogy(p, p).sum(axis=1) / np.log(k)
    else:  # least_confidence
        gains = (1.0 - p.max(axis=1)) * k / (k - 1)
    return np.clip(gains, 0.0, 1.0)


def top_b(scores: ArrayLike, budget: int, *, rng: RNGLike = None) -> IntArray:
    """Indices (b,) of the ``budget`` largest of the (n,) finite ``scores``, sorted ascending, ties at the b-th
    score broken uniformly with ``rng`` (``np.partition``; O(n); our formulation, ``docs/theory/rad.md#rad-baselines``).
    ``budget`` must lie in 0..n."""
    s = check_vector(scores, "scores")
    n = s.size
    b = check_budget(budget, n, "scores")
    if b == 0:
        return np.empty(0, dtype=np.int64)
    if b == n:
        return np.arange(n, dtype=np.int64)
    kth = np.partition(s, n - b)[n - b]  # the b-th largest score
    above = np.flatnonzero(s > kth)
    tied = np.flatnonzero(s == kth)
    pick = check_rng(rng).choice(tied, size=b - above.size, replace=False)
    return np.sort(np.concatenate([above, pick])).astype(np.int64)


def select(
    student_probs: ArrayLike, budget: int, mistakes: int, *, rng: RNGLike = None, kind: str = "margin"
) -> Selection:
    r"""RAD's selection (Baykal et al., ICLR 2023): gains (:func:`informativeness`) -> the exact query game
    (:func:`~robustdistill.algorithms.query_game.solve_query_game`) with ``mistakes`` teacher mistakes ->
    DepRound (:func:`~robustdistill.algorithms.depround.depround`): exactly ``budget`` distinct points with
    P[i selected] = p*_i. With ``mistakes = 0`` the game is greedy top-b by gain.

    Args:
        student_probs: (n, K) student probabilities on the pool, rows on the simplex.
        budget: b, integer in [0, n].
        mistakes: m >= 0, the estimated number of teacher mistakes on the pool (see
            :func:`~robustdistill.algorithms.teacher_quality.estimate_mistakes`); by position or keyword.
        rng: seed or Generator for DepRound.
        kind: the gain, one of :data:`GAINS`.

    Returns:
        :class:`Selection` with ``indices`` (b,), ``probabilities`` :math:`p^*` (n,) and ``diagnostics``
        (see :class:`Selection`), where

        .. math:: \mathrm{uniform\_ratio} = \frac{F(b/n \cdot \mathbf 1)}{V^*}, \qquad
            F(p) = \sum_i p_i g_i - \mathrm{top}_m(p \odot g),

        the share of RAD's worst-case value that uniform sampling already guarantees (1 when
        :math:`V^* = 0`). Its cost is one O(n) partition, beside the O(n log n) game.

    Warns:
        NearUniformWarning: when ``m > 0``, ``0 < b < n`` and ``uniform_ratio >=``
            :data:`NEAR_UNIFORM_RATIO`: RAD then spends its randomness on a nearly uniform law (typically
            m much larger than b). Lower m (a better teacher, or a larger budget per round) or use a
            deterministic selector. Filter it with ``warnings.filterwarnings("ignore",
            category=NearUniformWarning)`` when that is intended.
    """
    return _select(student_probs, budget, mistakes, rng=rng, kind=kind, stacklevel=3)


def _select(
    student_probs: ArrayLike, budget: int, mistakes: int, *, rng: RNGLike, kind: str, stacklevel: int
) -> Selection:
    gains = informativeness(student_probs, kind)
    n = gains.size
    b = check_budget(budget, n, "student_probs")
    m = check_mistakes(mistakes)
    solution = solve_query_game(gains, b, m)
    p = np.asarray(solution.probabilities, dtype=np.float64)
    value = float(solution.value)
    uniform_value = worst_case_value(np.full(n, b / n), gains, m)
    ratio = uniform_value / value if value > 0 else 1.0
    support = int(np.count_nonzero(p))
    diagnostics = {"mistakes": m, "budget": b, "pool": n, "support_size": support, "uniform_ratio": ratio}
    if m > 0 and 0 < b < n and ratio >= NEAR_UNIFORM_RATIO:
        warnings.warn(
            f"RAD is effectively uniform: with m = {m} estimated teacher mistakes, budget b = {b} and pool "
            f"n = {n}, p* spreads over {support} of the {n} points and uniform sampling already guarantees "
            f"{ratio:.1%} of RAD's worst-case value (threshold {NEAR_UNIFORM_RATIO:.0%}). Lower the "
            "estimated mistakes (a better teacher, or a larger budget per round), or use a deterministic "
            "selector such as 'margin'.",
            NearUniformWarning,
            stacklevel=stacklevel,
        )
    return Selection(np.sort(depround(p, rng=rng)).astype(np.int64), p, diagnostics=diagnostics)


def random(student_probs: ArrayLike, budget: int, *, rng: RNGLike = None, **_: Any) -> Selection:
    """A uniform ``budget``-subset of the pool (P[i selected] = b/n)."""
    n = check_probs(student_probs, "student_probs").shape[0]
    b = check_budget(budget, n, "student_probs")
    idx = check_rng(rng).choice(n, size=b, replace=False)
    return Selection(np.sort(idx).astype(np.int64), np.full(n, b / n))


def _by_gain(kind: str) -> Callable[..., Selection]:
    def selector(student_probs: ArrayLike, budget: int, *, rng: RNGLike = None, **_: Any) -> Selection:
        gains = informativeness(student_probs, kind)
        return Selection(top_b(gains, check_budget(budget, gains.size, "student_probs"), rng=rng))

    selector.__name__ = kind
    selector.__doc__ = f"Top-b by ``informativeness(P, {kind!r})``, ties broken uniformly with ``rng``."
    return selector


def _embeddings(embeddings: ArrayLike | None, n: int | None, who: str) -> FloatArray:
    """(n, d) finite float64 embeddings, one row per pool point (``n`` rows like ``student_probs``; None:
    any number of rows)."""
    if embeddings is None:
        raise ValueError(f"{who} needs embeddings: (n, d) student penultimate features of the pool points")
    h = check_array(embeddings, "embeddings", ("n", "d"))
    if n is not None and h.shape[0] != n:
        raise ValueError(f"embeddings has {h.shape[0]} rows but student_probs has {n} (one row per pool point)")
    return h


def _centers(center_embeddings: ArrayLike | None, dim: int) -> FloatArray | None:
    """The (c, d) finite centers of :func:`coreset` (``d`` as the embeddings), or None when there are none
    (None or an empty array)."""
    if center_embeddings is None or as_real_array(center_embeddings, "center_embeddings").size == 0:
        return None
    return check_array(center_embeddings, "center_embeddings", ("c", dim))


#: Embeddings are rescaled by a power of 2 when their largest magnitude lies outside
#: [2**-SCALE_EXPONENT, 2**SCALE_EXPONENT]: squared distances of larger (smaller) values would overflow
#: (underflow). Inside, they are used as given.
SCALE_EXPONENT = 200


def _rescaled(*arrays: FloatArray) -> tuple[FloatArray, ...]:
    """The arrays divided by one power of 2 near their largest magnitude when it is extreme (exact, and
    distance comparisons are scale-invariant), else as given."""
    top = max(float(np.max(np.abs(a))) for a in arrays)
    if top == 0.0 or 2.0**-SCALE_EXPONENT <= top <= 2.0**SCALE_EXPONENT:
        return arrays
    exponent = int(np.frexp(top)[1])
    return tuple(np.ldexp(a, -exponent) for a in arrays)


def _sq_dist(h: FloatArray, c: FloatArray, h_sq: FloatArray) -> FloatArray:
    """(n,) squared distances of the rows of h to one point c (clipped at 0)."""
    return np.maximum(h_sq - 2.0 * (h @ c) + c @ c, 0.0)


def coreset(
    student_probs: ArrayLike,
    budget: int,
    *,
    rng: RNGLike = None,
    embeddings: ArrayLike | None = None,
    center_embeddings: ArrayLike | None = None,
    chunk: int = 4096,
    **_: Any,
) -> Selection:
    r"""k-center greedy (Sener & Savarese 2018; ``docs/theory/rad.md#rad-baselines``): keep :math:`d(x) = \min_c \|h(x) -
    h(c)\|^2` over the pool against the centers (``center_embeddings``, the labeled and queried points;
    computed in chunks of ``chunk`` centers, no n x n matrix); ``budget`` times add the farthest point and
    update ``d``. With no centers the first pick is uniform. O(n b d) time, O(n) memory.

    ``embeddings`` (n, d) and ``center_embeddings`` (c, d) (None or empty: no centers) must be finite real
    numbers, ``chunk`` an int >= 1. Embeddings of extreme magnitude (beyond :math:`2^{\pm 200}`, whose squared
    distances would overflow or vanish) are rescaled together by a power of 2 first: the picks are the same."""
    n = check_probs(student_probs, "student_probs").shape[0]
    b = check_budget(budget, n, "student_probs")
    h = _embeddings(embeddings, n, "coreset")
    c = _centers(center_embeddings, h.shape[1])
    chunk = check_int(chunk, "chunk", low=1)
    if c is None:
        (h,) = _rescaled(h)
    else:
        h, c = _rescaled(h, c)
    h_sq = np.einsum("nd,nd->n", h, h)
    d = np.full(n, np.inf)
    if c is not None:
        for start in range(0, c.shape[0], chunk):
            block = c[start : start + chunk]
            dist = h_sq[:, None] - 2.0 * h @ block.T + np.einsum("cd,cd->c", block, block)[None, :]
            d = np.minimum(d, np.maximum(dist, 0.0).min(axis=1))
    chosen = np.empty(b, dtype=np.int64)
    gen = check_rng(rng)
    for j in range(b):
        i = int(gen.integers(n)) if np.isinf(d).all() else int(np.argmax(d))
        chosen[j] = i
        d = np.minimum(d, _sq_dist(h, h[i], h_sq))
        d[chosen[: j + 1]] = -1.0  # never again
    return Selection(np.sort(chosen))


def badge(
    student_probs: ArrayLike, budget: int, *, rng: RNGLike = None, embeddings: ArrayLike | None = None, **_: Any
) -> Selection:
    r"""BADGE (Ash et al. 2020; ``docs/theory/rad.md#rad-baselines``): k-means++ seeding on the gradient embeddings
    :math:`e(x) = (f - \mathrm{onehot}(\arg\max f)) \otimes h(x)`, never materialised: :math:`\|a \otimes h -
    a' \otimes h'\|^2 = \|a\|^2\|h\|^2 + \|a'\|^2\|h'\|^2 - 2\langle a, a'\rangle\langle h, h'\rangle`. The
    first center is the point with the largest :math:`\|e\|`, then :math:`D^2` sampling with ``rng``.
    ``embeddings`` (n, d) finite real numbers, rescaled by a power of 2 when extreme, as in :func:`coreset`."""
    p = check_probs(student_probs, "student_probs")
    n = p.shape[0]
    b = check_budget(budget, n, "student_probs")
    (h,) = _rescaled(_embeddings(embeddings, n, "badge"))
    if b == 0:
        return Selection(np.empty(0, dtype=np.int64))
    a = p.copy()
    a[np.arange(n), p.argmax(axis=1)] -= 1.0
    a_sq, h_sq = np.einsum("nk,nk->n", a, a), np.einsum("nd,nd->n", h, h)
    e_sq = a_sq * h_sq
    gen = check_rng(rng)
    chosen = [int(np.argmax(e_sq))]
    d = np.full(n, np.inf)
    for _ in range(b - 1):
        i = chosen[-1]
        dist = e_sq + e_sq[i] - 2.0 * (a @ a[i]) * (h @ h[i])
        d = np.minimum(d, np.maximum(dist, 0.0))
        d[chosen] = 0.0
        total = d.sum()
        nxt = int(gen.choice(n, p=d / total)) if total > 0 else int(gen.choice(np.setdiff1d(np.arange(n), chosen)))
        chosen.append(nxt)
    return Selection(np.sort(np.asarray(chosen, dtype=np.int64)))


def cluster_assignments(
    embeddings: ArrayLike, n_clusters: int, *, rng: RNGLike = None, max_points: int = 5000
) -> IntArray:
    """Cluster ids (n,) for cluster-margin (``docs/theory/rad.md#rad-baselines``): average-linkage HAC
    (``scipy.cluster.hierarchy``) on a uniform subsample of at most ``max_points`` rows, cut at
    ``n_clusters``; every row goes to the nearest cluster centroid (chunked). Computed once per run.
    ``embeddings`` (n, d) finite real numbers (rescaled by a power of 2 when extreme, as in :func:`coreset`);
    ``n_clusters`` and ``max_points`` ints >= 1."""
    from scipy.cluster import hierarchy

    (h,) = _rescaled(_embeddings(embeddings, None, "cluster_assignments"))
    n = h.shape[0]
    n_clusters = check_int(n_clusters, "n_clusters", low=1)
    max_points = check_int(max_points, "max_points", low=1)
    gen = check_rng(rng)
    sub = gen.choice(n, size=min(n, max_points), replace=False)
    k = max(1, min(int(n_clusters), sub.size))
    if sub.size < 2:  # one point: one cluster (linkage needs two)
        return np.zeros(n, dtype=np.int64)
    labels = hierarchy.fcluster(hierarchy.linkage(h[sub], method="average"), t=k, criterion="maxclust") - 1
    centroids = np.stack([h[sub][labels == c].mean(axis=0) for c in np.unique(labels)])
    out = np.empty(n, dtype=np.int64)
    c_sq = np.einsum("cd,cd->c", centroids, centroids)
    for start in range(0, n, 65536):
        block = h[start : start + 65536]
        out[start : start + block.shape[0]] = np.argmin(c_sq[None, :] - 2.0 * block @ centroids.T, axis=1)
    return out


def cluster_margin(
    student_probs: ArrayLike,
    budget: int,
    *,
    rng: RNGLike = None,
    embeddings: ArrayLike | None = None,
    clusters: ArrayLike | None = None,
    **_: Any,
) -> Selection:
    """Cluster-margin (Citovsky et al. 2021; ``docs/theory/rad.md#rad-baselines``): the ``min(10 b, n)`` lowest-margin points,
    grouped by cluster (``clusters`` (n,) integer ids, from :func:`cluster_assignments` once per run; computed from
    ``embeddings`` with ``b`` clusters when not given), clusters in increasing size, round-robin one uniform
    point per cluster until ``b`` points are picked."""
    p = check_probs(student_probs, "student_probs")
    n = p.shape[0]
    b = check_budget(budget, n, "student_probs")
    gen = check_rng(rng)
    if clusters is None:
        if embeddings is None:
            raise ValueError(
                "cluster_margin needs clusters ((n,) cluster ids) or embeddings ((n, d) student penultimate "
                "features of the pool points, clustered here)"
            )
        clusters = cluster_assignments(_embeddings(embeddings, n, "cluster_margin"), max(b, 1), rng=gen)
    ids = _cluster_ids(clusters, n)
    candidates = top_b(informativeness(p, "margin"), min(10 * b, n), rng=gen)
    groups = [gen.permutation(candidates[ids[candidates] == c]).tolist() for c in np.unique(ids[candidates])]
    groups.sort(key=len)
    chosen: list[int] = []
    while len(chosen) < b:
        for g in groups:
            if g and len(chosen) < b:
                chosen.append(g.pop())
    return Selection(np.sort(np.asarray(chosen, dtype=np.int64)))


def _cluster_ids(clusters: ArrayLike, n: int) -> IntArray:
    """(n,) integer cluster ids (any integer dtype and values), relabelled 0..C-1."""
    ids = as_real_array(clusters, "clusters")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"clusters must hold integer cluster ids, got dtype {ids.dtype}")
    if ids.shape != (n,):
        raise ValueError(f"clusters must have shape ({n},) like the rows of student_probs, got {ids.shape}")
    return np.unique(ids, return_inverse=True)[1].reshape(n).astype(np.int64)


#: UNIXKD's constants (``docs/theory/rad.md#rad-baselines``): chunk size k, unmixed ranks b', sigmoid slope w.
UNIXKD_CHUNK, UNIXKD_UNMIXED, UNIXKD_SLOPE = 48, 32, 1000.0


def unixkd(student_probs: ArrayLike, budget: int, *, rng: RNGLike = None, **_: Any) -> Selection:
    r"""UNIXKD adapted to pool rounds (Xu et al. 2020; ``docs/theory/rad.md#rad-baselines``, our formulation of the adaptation).

    1. Take the top ``b`` pool points by ``informativeness(P, "entropy")`` and split them at random into
       chunks of :math:`k = 48`; within a chunk rank by entropy (:math:`r = 0` the most uncertain).
    2. Per chunk draw :math:`\lambda \sim \mathrm{Beta}(1, 1)` and a random permutation :math:`\pi` of the
       chunk; point :math:`r` is mixed with point :math:`\pi(r)` with weight

       .. math:: \mu_r = (1 - \lambda)\,\sigma\big(w (r - b') / k\big), \qquad w = 1000,\ b' = 32,

       so the :math:`b'` most uncertain points of a chunk stay (almost exactly) unmixed.
    3. The teacher is queried on :math:`\tilde x_r = (1 - \mu_r) x_r + \mu_r x_{\pi(r)}`
       (:func:`mix_inputs`).

    Args:
        student_probs: (n, K) student probabilities.
        budget: b in 0..n.
        rng: seed or Generator (chunks, lambdas, permutations, entropy ties).

    Returns:
        :class:`Selection` with ``indices`` (b,) the source points (sorted) and ``mix = (partner, mu)`` (b,)
        each, aligned with ``indices``; partners are pool indices among the selected points.
    """
    gen = check_rng(rng)
    gains = informativeness(student_probs, "entropy")
    b = check_budget(budget, gains.size, "student_probs")
    top = gen.permutation(top_b(gains, b, rng=gen))  # random chunks
    partner = np.empty(b, dtype=np.int64)
    mu = np.empty(b)
    for start in range(0, b, UNIXKD_CHUNK):
        chunk = top[start : start + UNIXKD_CHUNK]
        chunk = chunk[np.argsort(-gains[chunk], kind="stable")]  # rank r = 0: the most uncertain
        rank = np.arange(chunk.size)
        weight = (1.0 - gen.beta(1.0, 1.0)) * special.expit(UNIXKD_SLOPE * (rank - UNIXKD_UNMIXED) / UNIXKD_CHUNK)
        partner[start : start + chunk.size] = chunk[gen.permutation(chunk.size)]
        mu[start : start + chunk.size] = weight
        top[start : start + chunk.size] = chunk
    order = np.argsort(top)
    return Selection(top[order], None, (partner[order], mu[order]))


def mix_inputs(inputs: ArrayLike, selection: Selection) -> np.ndarray:
    r"""The inputs the teacher is queried on: ``inputs[indices]`` for a plain selection, and
    :math:`(1 - \mu) x_i + \mu x_{\mathrm{partner}(i)}` for a :func:`unixkd` one.

    Args:
        inputs: (n, ...) the pool's raw inputs, real numbers (any real dtype; integer inputs such as uint8
            images are mixed in float and rounded back to their dtype), finite.
        selection: a :class:`Selection` over the same n points.

    Returns:
        (b, ...) array of ``inputs``' dtype.
    """
    if not isinstance(selection, Selection):
        raise TypeError(f"selection must be a Selection (from a selector), got {type(selection).__name__}")
    x = as_real_array(inputs, "inputs")
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"inputs must have shape (n, ...) with n >= 1 pool rows, got shape {x.shape}")
    used = selection.indices if selection.mix is None else np.concatenate([selection.indices, selection.mix[0]])
    if used.size and int(used.max()) >= x.shape[0]:
        raise ValueError(
            f"inputs has {x.shape[0]} rows but selection picks pool index {int(used.max())}: pass the whole pool"
        )
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ValueError("inputs must be finite")
    if selection.mix is None:
        return x[selection.indices]
    partner, mu = selection.mix
    shape = (-1,) + (1,) * (x.ndim - 1)
    mixed = (1.0 - mu.reshape(shape)) * x[selection.indices] + mu.reshape(shape) * x[partner]
    return np.rint(mixed).astype(x.dtype) if np.issubdtype(x.dtype, np.integer) else mixed.astype(x.dtype)


margin = _by_gain("margin")
entropy = _by_gain("entropy")
least_confidence = _by_gain("least_confidence")


def rad(
    student_probs: ArrayLike,
    budget: int,
    mistakes: int | None = None,
    *,
    rng: RNGLike = None,
    kind: str = "margin",
    **_: Any,
) -> Selection:
    """RAD in the registry: :func:`select`'s signature (``mistakes`` by position or keyword, required: None
    is a ``ValueError``), ignoring the other selectors' keywords (``embeddings``, ...). Warns
    :class:`NearUniformWarning` like :func:`select`."""
    if mistakes is None:
        raise ValueError("rad needs mistakes: the estimated number of teacher mistakes on the pool")
    return _select(student_probs, budget, mistakes, rng=rng, kind=kind, stacklevel=3)


#: name -> selector (module docstring for the common signature).
SELECTORS: dict[str, Callable[..., Selection]] = {
    "random": random,
    "margin": margin,
    "entropy": entropy,
    "least_confidence": least_confidence,
    "coreset": coreset,
    "badge": badge,
    "cluster_margin": cluster_margin,
    "rad": rad,
    "unixkd": unixkd,
}
