r"""Halfspaces with margin under random classification noise (``docs/theory/halfspace.md#halfspace``): data, the
forward-adjusted (SLaM) learner and the comparison learners.

**Problem** (the standard problem the paper's halfspace result addresses (paper)). :math:`x \in
\mathbb{R}^d`, :math:`\|x\| \le 1`, an unknown unit :math:`w^*` with :math:`|\langle w^*, x\rangle| \ge
\gamma`, :math:`y = \mathrm{sign}\langle w^*, x\rangle`; the learner sees :math:`\tilde y = -y` with
probability :math:`\eta < 1/2` (RCN), independently. The noisy error of any :math:`w` is :math:`\eta +
(1-2\eta)\,\mathrm{err}(w)`, so ranking by noisy error is ranking by clean error.

**Learner** (our formulation, §6): :func:`learn_halfspace_rcn`, one pass of projected SGD on the
forward-adjusted logistic loss (SLaM's binary loss with :math:`\alpha = 1 - \eta`),

.. math::

    \ell(w; x, \tilde y) = -\tilde y_{01}\log m - (1 - \tilde y_{01})\log(1 - m), \qquad
    m = (1-\alpha) + \beta\,\sigma(\langle w, x\rangle), \quad \beta = 2\alpha - 1,

with :math:`\|w\| \le R = 4/\gamma`, step :math:`R/(G_\alpha\sqrt{n})`, :math:`G_\alpha = \min(\beta/(4(1-
\alpha)), \alpha/\beta)` (the F4 gradient bound, ``docs/theory/slam.md#slam-f4``) and the average iterate. The paper's
algorithm improves the best-known sample complexity for this problem (paper); the toolkit's target is
:math:`n = \tilde O(1/(\gamma^2\varepsilon^2))` with an unpinned :math:`\mathrm{poly}(1/(1-2\eta))` factor
(our formulation). Known context (Diakonikolas et al., COLT 2023): information-theoretic
:math:`\tilde\Theta(1/(\gamma^2\varepsilon))`, an efficient :math:`\tilde O(1/(\gamma^2\varepsilon^2))`, and an SQ
lower bound :math:`\tilde\Omega(1/(\gamma^{1/2}\varepsilon^2))` for efficient algorithms.

Every learner returns a unit vector (the zero vector only if the learned direction is exactly zero).
Labels are :math:`\pm 1` throughout; ``rng`` follows the toolkit's seed contract.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from scipy import optimize, special

from robustdistill.algorithms.results import Result
from robustdistill.algorithms.typing import FloatArray, RNGLike
from robustdistill.algorithms.validation import (
    as_real_array,
    check_array,
    check_choice,
    check_flag,
    check_int,
    check_real,
    check_rng,
)

from .binary_slam import binary_grad, binary_loss, gradient_bound

__all__ = [
    "KINDS",
    "MAX_ITERATIONS",
    "MAX_SAMPLE_ENTRIES",
    "NOISE_GRID",
    "HalfspaceData",
    "backward_corrected_grad",
    "clean_error",
    "forward_adjusted_sgd",
    "learn_averaging",
    "learn_backward_corrected",
    "learn_halfspace_rcn",
    "learn_logistic",
    "learn_sq_perceptron",
    "learn_unhinged",
    "long_servedio_error",
    "margin_halfspace_data",
    "slam_objective",
]

#: The data kinds of :func:`margin_halfspace_data`.
KINDS = ("sphere", "gaussian", "long_servedio")
#: Candidate noise rates tried when :func:`learn_halfspace_rcn` estimates the rate (``noise_rate=None``).
NOISE_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
#: Long-Servedio atoms (first two coordinates, in units of the margin except x_L) and their masses.
_LS_MASSES = (0.25, 0.5, 0.25)


@dataclass(frozen=True, eq=False)
class HalfspaceData(Result):
    """A sample of :func:`margin_halfspace_data`.

    Attributes:
        X: (n, d) points, ``||x|| <= 1``, ``|<w_star, x>| >= margin``.
        y: (n,) clean labels in {-1, +1}.
        y_noisy: (n,) observed labels in {-1, +1}.
        flip_prob: (n,) the probability with which each label was flipped (``noise_rate`` under RCN).
        w_star: (d,) the unit normal ``e_1``.
        margin, noise_rate, kind, noise: the arguments.
    """

    X: FloatArray
    y: FloatArray
    y_noisy: FloatArray
    flip_prob: FloatArray
    w_star: FloatArray
    margin: float
    noise_rate: float
    kind: str
    noise: str


# ------------------------------------------------------------------------------------------------------
# Validation


def _check_margin(margin: object) -> float:
    g = check_real(margin, "margin")
    if not (0.0 < g <= 1.0):
        raise ValueError(f"margin must lie in (0, 1], got {margin!r}")
    return g


def _check_noise_rate(noise_rate: object, name: str = "noise_rate") -> float:
    eta = check_real(noise_rate, name)
    if not (0.0 <= eta < 0.5):
        raise ValueError(f"{name} must lie in [0, 1/2) (at 1/2 the labels carry no signal), got {noise_rate!r}")
    return eta


def _check_points(X: object, name: str = "X", norm_tol: float | None = 1e-9) -> FloatArray:
    """Points (..., d), finite, non-empty, with row norms <= 1 + tol (checked without overflow; not
    checked for ``norm_tol=None``)."""
    x = as_real_array(X, name).astype(np.float64)
    if x.ndim < 2 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, d), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite")
    if norm_tol is None:
        return x
    big = np.abs(x).max(axis=-1) > 1.0 + norm_tol  # such a row's norm exceeds 1 (and its square may overflow)
    norms = np.where(big, np.inf, np.sqrt(np.einsum("...j,...j->...", np.where(big[..., None], 0.0, x), x)))
    if norms.max() > 1.0 + norm_tol:
        i = np.unravel_index(int(norms.argmax()), norms.shape)
        i = int(i[0]) if len(i) == 1 else tuple(int(j) for j in i)
        raise ValueError(f"the rows of {name} must have norm <= 1; row {i} has norm {norms[i]!r}")
    return x


def _check_labels(y: object, shape: tuple[int, ...], name: str = "y_noisy", like: str = "X") -> FloatArray:
    """Labels of ``shape`` (that of the rows of ``like``) in {-1, +1}, as float64."""
    lab = as_real_array(y, name).astype(np.float64)
    if lab.shape != shape:
        raise ValueError(f"{name} must have shape {shape} like the rows of {like}, got {lab.shape}")
    if not np.all((lab == 1.0) | (lab == -1.0)):
        bad = np.argwhere((lab != 1.0) & (lab != -1.0))[0]
        raise ValueError(f"{name}: labels must be -1 or +1; found {lab[tuple(bad)]!r} at index {bad.tolist()}")
    return lab


def _check_sample(X: object, y: object, norm_tol: float = 1e-9) -> tuple[FloatArray, FloatArray]:
    """X (n, d) finite with row norms <= 1 + tol, y (n,) in {-1, +1}."""
    x = _check_points(X, "X", norm_tol)
    if x.ndim != 2:
        raise ValueError(f"X must be a non-empty 2-D array (n, d), got shape {x.shape}")
    return x, _check_labels(y, (x.shape[0],))


# ------------------------------------------------------------------------------------------------------
# Data


#: Rejection sampling gives up (ValueError) after this many batches without enough points.
_MAX_BATCHES = 1000
#: Below this acceptance rate the sphere kind samples the margin set directly and the gaussian kind draws
#: batches sized by the rate.
_LOW_ACCEPTANCE = 0.01
#: The most standard normals the gaussian kind may draw in all (about a second of work): a margin whose
#: acceptance rate needs more is refused.
_MAX_DRAWS = 5 * 10**7
#: The largest sample, n * dim entries (2 GiB of float64); also bounds the restarts' shuffled copies of X.
MAX_SAMPLE_ENTRIES = 2**28
#: The most iterations of :func:`learn_sq_perceptron` and :func:`learn_logistic`.
MAX_ITERATIONS = 10**5


def _rejection(
    rng: np.random.Generator, n: int, dim: int, margin: float, draw: Any, kind: str, batch: int | None = None
) -> FloatArray:
    """``n`` rows of ``draw(rng, m)`` (an (m, dim) batch) with ``|x_1| >= margin`` and, for the gaussian
    kind, ``||x|| <= 1`` (sphere rows have norm 1 up to rounding and are not tested: a row of norm
    1 + 1e-16 must not be dropped)."""
    out = np.empty((0, dim))
    for _ in range(_MAX_BATCHES):
        need = n - out.shape[0]
        if need == 0:
            return out
        z = draw(rng, max(4 * need, 64) if batch is None else batch)
        keep = np.abs(z[:, 0]) >= margin
        if kind == "gaussian":
            keep &= np.einsum("ij,ij->i", z, z) <= 1.0
        out = np.concatenate([out, z[keep][:need]])
    if out.shape[0] == n:
        return out
    raise ValueError(
        f"margin = {margin} is too large for kind={kind!r} in dim = {dim}: rejection sampling accepted "
        f"{out.shape[0]} of the {n} points in {_MAX_BATCHES} batches (lower the margin)"
    )


def _sphere_with_margin(rng: np.random.Generator, n: int, dim: int, margin: float) -> FloatArray:
    r"""Uniform on the unit sphere conditioned on ``|x_1| >= margin``: by rejection in batches when at least
    :data:`_LOW_ACCEPTANCE` of the sphere has that margin, else directly (:func:`_sphere_margin_set`)."""
    if dim > 1 and special.betaincc(0.5, (dim - 1) / 2.0, margin * margin) < _LOW_ACCEPTANCE:
        return _sphere_margin_set(rng, n, dim, margin)

    def draw(gen: np.random.Generator, m: int) -> FloatArray:
        z = gen.standard_normal((m, dim))
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    return _rejection(rng, n, dim, margin, draw, "sphere")


def _sphere_margin_set(rng: np.random.Generator, n: int, dim: int, margin: float) -> FloatArray:
    r"""The sphere's margin set sampled directly, dim >= 2: on the uniform sphere :math:`x_1^2 \sim
    \mathrm{Beta}(1/2, (d-1)/2)`, so :math:`x_1^2` is drawn from that law's upper tail beyond
    :math:`\gamma^2` by inverting its survival function, the sign uniformly, and the other coordinates
    uniformly on the sphere of radius :math:`\sqrt{1 - x_1^2}`."""
    a, b = 0.5, (dim - 1) / 2.0
    tail = float(special.betaincc(a, b, margin * margin))
    if tail <= 0.0:
        raise ValueError(
            f"margin = {margin} is too large for kind='sphere' in dim = {dim}: the sphere's share with "
            "|x_1| >= margin is below float64's range (lower the margin)"
        )
    x1_sq = np.clip(special.betainccinv(a, b, tail * (1.0 - rng.random(n))), margin * margin, 1.0)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    rest = rng.standard_normal((n, dim - 1))
    rest *= (np.sqrt(1.0 - x1_sq) / np.linalg.norm(rest, axis=1))[:, None]
    return np.column_stack([sign * np.sqrt(x1_sq), rest])


def _gaussian_acceptance(dim: int, margin: float) -> float:
    r""":math:`P(|x_1| \ge \gamma,\ \|x\| \le 1)` for :math:`x \sim N(0, I_d/d)`: the integral over
    :math:`x_1` of its density times :math:`P(\chi^2_{d-1} \le d(1 - x_1^2))`."""
    from scipy import integrate, stats

    scale = 1.0 / math.sqrt(dim)
    if dim == 1:
        return float(2.0 * (stats.norm.sf(margin, scale=scale) - stats.norm.sf(1.0, scale=scale)))

    def inner(t: float) -> float:
        return float(stats.norm.pdf(t, scale=scale) * stats.chi2.cdf(dim * (1.0 - t * t), dim - 1))

    return float(2.0 * integrate.quad(inner, margin, 1.0, limit=200)[0])


def _gaussian_with_margin(rng: np.random.Generator, n: int, dim: int, margin: float) -> FloatArray:
    r""":math:`N(0, I_d/d)` conditioned on :math:`\|x\| \le 1` and :math:`|x_1| \ge \gamma`, by rejection (in
    batches sized by the acceptance rate when it is below :data:`_LOW_ACCEPTANCE`; a rate that would need
    more than :data:`_MAX_DRAWS` normals is a ``ValueError``)."""
    rate = _gaussian_acceptance(dim, margin)
    if not rate * _MAX_DRAWS >= n * dim:
        raise ValueError(
            f"margin = {margin} is too large for kind='gaussian' in dim = {dim}: only a fraction {rate:.3g} of "
            f"N(0, I/d) has |x_1| >= margin and ||x|| <= 1, too few for {n} points (lower the margin, or use "
            "kind='sphere')"
        )
    batch = None if rate >= _LOW_ACCEPTANCE else math.ceil(2.0 * n / rate)

    def draw(gen: np.random.Generator, m: int) -> FloatArray:
        return gen.standard_normal((m, dim)) / math.sqrt(dim)

    return _rejection(rng, n, dim, margin, draw, "gaussian", batch)


def _long_servedio_atoms(dim: int, margin: float) -> FloatArray:
    """The three atoms x_L = (1, 0), x_P = (g, -g), x_U = (g, 5g), zero-padded to ``dim``."""
    atoms = np.zeros((3, dim))
    atoms[0, 0] = 1.0
    atoms[1, :2] = (margin, -margin)
    atoms[2, :2] = (margin, 5.0 * margin)
    return atoms


def margin_halfspace_data(
    n: int,
    dim: int,
    margin: float,
    noise_rate: float,
    rng: RNGLike = None,
    kind: str = "sphere",
    *,
    noise: str = "rcn",
) -> HalfspaceData:
    r"""Points with margin around :math:`w^* = e_1` and noisy labels.

    Kinds (our formulation, ``docs/theory/halfspace.md#halfspace-data``):

    - ``"sphere"``: uniform on the unit sphere conditioned on :math:`|x_1| \ge \gamma` (rejection; when less
      than 1% of the sphere has the margin, sampled directly from the law of :math:`x_1^2`, so any margin the
      sphere has is reached quickly).
    - ``"gaussian"``: :math:`N(0, I_d/d)` conditioned on :math:`\|x\| \le 1` and :math:`|x_1| \ge \gamma`
      (rejection; a margin so rare that the draws would exceed about a second of work is a ``ValueError``).
    - ``"long_servedio"``: after Long & Servedio (2008/2010): three atoms :math:`x_L = (1, 0)` (mass 1/4),
      :math:`x_P = (\gamma, -\gamma)` (1/2), :math:`x_U = (\gamma, 5\gamma)` (1/4), zero-padded; every
      clean label is +1. Needs ``dim >= 2`` and :math:`\gamma \le 1/\sqrt{26}` (so that
      :math:`\|x_U\| \le 1`). Under RCN the logistic minimiser misclassifies :math:`x_P` (half the mass).

    Noise: ``"rcn"`` flips every label with probability ``noise_rate``; ``"massart"`` flips with
    :math:`\eta(x) = \eta_{\max}\,1\{x_2 > 0\}` (``noise_rate`` is :math:`\eta_{\max}`; bounded, varying
    with x, zero on half the space), the noise model of the Weighted Distillation simulators.

    Args:
        n: number of points (>= 1); ``n * dim`` at most :data:`MAX_SAMPLE_ENTRIES`.
        dim: dimension (>= 1; >= 2 for ``"long_servedio"`` and ``"massart"``).
        margin: :math:`\gamma \in (0, 1]`.
        noise_rate: :math:`\eta \in [0, 1/2)`.
        rng: seed or Generator.
        kind: one of :data:`KINDS`.
        noise: ``"rcn"`` or ``"massart"``.

    Returns:
        :class:`HalfspaceData`.
    """
    n = check_int(n, "n", low=1)
    dim = check_int(dim, "dim", low=1)
    if n * dim > MAX_SAMPLE_ENTRIES:
        raise ValueError(f"n * dim = {n} * {dim} exceeds MAX_SAMPLE_ENTRIES = 2**28 (the sample's size)")
    gamma = _check_margin(margin)
    eta = _check_noise_rate(noise_rate)
    kind = check_choice(kind, "kind", KINDS)
    noise = check_choice(noise, "noise", ("rcn", "massart"))
    if (kind == "long_servedio" or noise == "massart") and dim < 2:
        raise ValueError(f"kind={kind!r} with noise={noise!r} needs dim >= 2, got {dim}")
    gen = check_rng(rng)
    if kind == "sphere":
        x = _sphere_with_margin(gen, n, dim, gamma)
    elif kind == "gaussian":
        x = _gaussian_with_margin(gen, n, dim, gamma)
    else:
        if gamma > 1.0 / math.sqrt(26.0):
            raise ValueError(f"kind='long_servedio' needs margin <= 1/sqrt(26) = 0.196 (||x_U|| <= 1), got {gamma}")
        x = _long_servedio_atoms(dim, gamma)[gen.choice(3, size=n, p=_LS_MASSES)]
    y = np.where(x[:, 0] > 0, 1.0, -1.0)
    flip = np.full(n, eta) if noise == "rcn" else np.where(x[:, 1] > 0, eta, 0.0)
    y_noisy = np.where(gen.random(n) < flip, -y, y)
    w_star = np.zeros(dim)
    w_star[0] = 1.0
    return HalfspaceData(x, y, y_noisy, flip, w_star, gamma, eta, kind, noise)


def clean_error(w: object, X: object, y: object) -> float | FloatArray:
    r"""The fraction of points with :math:`\mathrm{sign}\langle w, x\rangle \ne y` (a point on the
    boundary, :math:`\langle w, x\rangle = 0`, counts as an error). ``w`` (d,) gives a float; (S, d),
    one vector per row, gives an (S,) array. ``X`` (n, d), ``y`` (n,) in {-1, +1}."""
    x = _check_points(X, "X", norm_tol=None)
    if x.ndim != 2:
        raise ValueError(f"X must be 2-D of shape (n, d), got shape {x.shape}")
    ww = _check_direction(w, x.shape[1], stacked=True)
    yy = _check_labels(y, (x.shape[0],), "y")
    margins = (x @ ww.T) * yy.reshape(-1, *([1] * (ww.ndim - 1)))
    errors = np.mean(margins <= 0, axis=0)
    return float(errors) if ww.ndim == 1 else errors


def _check_direction(w: object, dim: int | None, *, stacked: bool = False) -> FloatArray:
    """A finite weight vector (d,) (or, ``stacked``, one per row: (S, d)), d = ``dim`` when given (that of
    X's rows)."""
    ww = as_real_array(w, "w").astype(np.float64)
    if ww.ndim not in ((1, 2) if stacked else (1,)) or ww.size == 0:
        raise ValueError(f"w must be a non-empty vector (d,){' or (S, d)' if stacked else ''}, got shape {ww.shape}")
    if dim is not None and ww.shape[-1] != dim:
        raise ValueError(f"w has dimension {ww.shape[-1]} but the rows of X have {dim}")
    if not np.all(np.isfinite(ww)):
        raise ValueError("w must be finite")
    return ww


def long_servedio_error(w: object, margin: float) -> float:
    """The exact clean error of ``w`` on the Long-Servedio distribution: the mass of the atoms with
    ``<w, x> <= 0`` (every clean label is +1)."""
    ww = _check_direction(w, None)
    if ww.shape[0] < 2:
        raise ValueError(f"w must be a vector of dimension >= 2 (the atoms live in R^2), got shape {ww.shape}")
    atoms = _long_servedio_atoms(ww.shape[0], _check_margin(margin))
    return float(np.asarray(_LS_MASSES) @ (atoms @ ww <= 0))


# ------------------------------------------------------------------------------------------------------
# The forward-adjusted learner


def _unit(w: FloatArray) -> FloatArray:
    """w / ||w|| along the last axis; a zero vector stays zero (its error is then 1)."""
    norm = np.linalg.norm(w, axis=-1, keepdims=True)
    return np.divide(w, norm, out=np.zeros_like(w), where=norm > 0)


def _projected_sgd(
    x: FloatArray,
    y: FloatArray,
    grad_t: Any,
    radius: float,
    step: float,
    track: Sequence[int] = (),
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""One pass of projected SGD over the rows of ``x`` for ``S`` runs at once.

    ``x`` (S, n, d), ``y`` (S, n); ``grad_t(t, y)`` is the loss's derivative in the logit
    :math:`t = \langle w, x\rangle` (vectorised over S). From :math:`w_0 = 0`: :math:`w \leftarrow
    \Pi_R(w - s\,\partial_t\ell\;x)`. Returns the average iterate (S, d) (the mean of :math:`w_1..w_n`),
    the per-step gradient norms :math:`|\partial_t\ell|\,\|x\|` (S, n) and the running averages at the
    steps in ``track`` (sorted, 1..n) as (S, len(track), d). Cost O(S n d) time."""
    s_runs, n, d = x.shape
    w = np.zeros((s_runs, d))
    total = np.zeros((s_runs, d))
    norms = np.empty((s_runs, n))
    snaps = np.empty((s_runs, len(track), d))
    x_norms = np.sqrt(np.einsum("snd,snd->sn", x, x))
    j = 0
    for i in range(n):
        xi = x[:, i, :]
        g = grad_t(np.einsum("sd,sd->s", w, xi), y[:, i])
        norms[:, i] = np.abs(g) * x_norms[:, i]
        w -= (step * g)[:, None] * xi
        size = np.sqrt(np.einsum("sd,sd->s", w, w))
        over = size > radius
        if over.any():
            w[over] *= (radius / size[over])[:, None]
        total += w
        while j < len(track) and track[j] == i + 1:
            snaps[:, j, :] = total / (i + 1)
            j += 1
    return total / n, norms, snaps


def forward_adjusted_sgd(
    X: FloatArray, y_noisy: FloatArray, noise_rate: float, radius: float, track: Sequence[int] = ()
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""The core of :func:`learn_halfspace_rcn` for ``S`` runs at once: one pass in the given row order
    over ``X`` (S, n, d) with labels ``y_noisy`` (S, n) in {-1, +1} (shapes, labels, the noise rate and
    the radius are checked, and the rows must have norm <= 1 like :func:`learn_halfspace_rcn`'s); the SLaM
    derivative with :math:`\alpha = 1 - \eta` (``binary_slam.binary_grad``), step
    :math:`R/(G_\alpha\sqrt n)`, projection on :math:`\|w\| \le R`. Returns what :func:`_projected_sgd`
    returns (average iterates (S, d), gradient norms (S, n), tracked running averages)."""
    X = _check_points(X, "X")
    if X.ndim != 3:
        raise ValueError(f"X must be (S, n, d), non-empty; got shape {X.shape}")
    y_noisy = _check_labels(y_noisy, X.shape[:2], "y_noisy", like="X (S, n)")
    alpha = 1.0 - _check_noise_rate(noise_rate)
    if radius is None:
        raise ValueError("radius is required (learn_halfspace_rcn defaults it to 4/margin)")
    radius = _radius(radius, 1.0)
    track = _check_track(track, X.shape[1])
    step = radius / (float(gradient_bound(alpha)) * math.sqrt(X.shape[1]))
    return _projected_sgd(X, (y_noisy + 1.0) / 2.0, lambda t, y01: binary_grad(t, y01, alpha), radius, step, track)


def _check_track(track: object, n: int) -> list[int]:
    """The tracked steps: increasing integers in 1..n (a sequence, possibly empty)."""
    arr = as_real_array(track, "track")
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"track must be a sequence of integer steps, got shape {arr.shape} and dtype {arr.dtype}")
    steps = arr.astype(np.int64).tolist()
    if any(s < 1 or s > n for s in steps) or any(b <= a for a, b in pairwise(steps)):
        raise ValueError(f"track must hold increasing steps in 1..{n} (the rows of X), got {steps[:10]}")
    return steps


def _radius(radius: object, margin: float) -> float:
    """The projection radius: ``radius``, finite and > 0, or the default 4/margin."""
    if radius is None:
        if not math.isfinite(4.0 / margin):
            raise ValueError(f"margin = {margin!r} is too small: the default radius 4/margin overflows (pass radius)")
        return 4.0 / margin
    return check_real(radius, "radius", low=0.0, low_open=True)


def _split(gen: np.random.Generator, n: int, holdout: float) -> tuple[np.ndarray, np.ndarray]:
    order = gen.permutation(n)
    n_hold = int(round(holdout * n))
    if holdout > 0 and not (1 <= n_hold < n):
        raise ValueError(f"holdout = {holdout} leaves no hold-out or no training point of n = {n}")
    return order[n_hold:], order[:n_hold]


def learn_halfspace_rcn(
    X: object,
    y_noisy: object,
    noise_rate: float | None,
    *,
    margin: float,
    radius: float | None = None,
    holdout: float = 0.0,
    restarts: int = 1,
    rng: RNGLike = None,
    return_info: bool = False,
) -> FloatArray | tuple[FloatArray, dict[str, Any]]:
    r"""The forward-adjusted (SLaM) learner for margin halfspaces under RCN (``docs/theory/halfspace.md#halfspace-learner``, our
    formulation of the paper's learner).

    .. code-block:: text

        alpha = 1 - eta;  beta = 2 alpha - 1;  G = min(beta / (4 (1 - alpha)), alpha / beta);  R = radius or 4/gamma
        if holdout > 0: split off that fraction of the samples (rng)
        for each restart: shuffle the training samples (rng); w <- 0; step s = R / (G sqrt(n_train))
            one pass: f = sigma(<w, x>), m = (1 - alpha) + beta f,
                      w <- Pi_R(w - s beta f (1 - f)(m - y01) / (m (1 - m)) x)
            candidate <- the average iterate
        return the unit candidate with the lowest noisy hold-out error (or the single average)

    Ranking by noisy hold-out error ranks by clean error (noisy error = eta + (1 - 2 eta) clean error).
    ``noise_rate = 0`` is plain logistic projected SGD (alpha = 1, G = 1).

    **Unknown noise rate** (``noise_rate=None``, our formulation): every rate of :data:`NOISE_GRID` is
    tried with the same restarts and the candidate with the lowest noisy hold-out error wins (needs
    ``holdout > 0``; ties go to the first, lowest rate, so on easy data the chosen rate says little).
    ``info["noise_rate_estimate"]`` is the winner's noisy hold-out error, whose expectation is
    eta + (1 - 2 eta) · clean error >= eta: an estimate of eta, from above in expectation.

    Cost: O(restarts · len(grid) · n · d) time; memory O(d) per run plus one shuffled copy of the training
    data per restart.

    Args:
        X: (n, d) points with row norms <= 1 (+1e-9).
        y_noisy: (n,) labels in {-1, +1}.
        noise_rate: eta in [0, 1/2), or None to estimate it.
        margin: gamma > 0 (sets the default radius 4/gamma).
        radius: the projection radius R (default 4/gamma).
        holdout: fraction of the samples held out to choose among candidates (0: no hold-out; the single
            restart's average is returned, and ``restarts`` must be 1).
        restarts: independent shuffles (>= 1; their shuffled copies of ``X`` hold at most
            :data:`MAX_SAMPLE_ENTRIES` entries).
        rng: seed or Generator (shuffles and the hold-out split).
        return_info: also return a dict: ``noise_rate`` and ``restart`` of the chosen candidate,
            ``holdout_errors`` (one per candidate, or None), ``candidates`` (their (noise rate, restart)),
            ``noise_rate_estimate``, ``radius``, ``n_train``, ``n_holdout``.

    Returns:
        (d,) unit vector (zeros only if every candidate is zero), and the info dict if asked.
    """
    x, y = _check_sample(X, y_noisy)
    gamma = _check_margin(margin)
    restarts = check_int(restarts, "restarts", low=1)
    if restarts * x.size > MAX_SAMPLE_ENTRIES:
        raise ValueError(
            f"restarts = {restarts} shuffled copies of X {x.shape} exceed MAX_SAMPLE_ENTRIES = 2**28 entries"
        )
    holdout = check_real(holdout, "holdout", low=0.0, high=1.0, high_open=True)
    return_info = check_flag(return_info, "return_info")
    rates = NOISE_GRID if noise_rate is None else (_check_noise_rate(noise_rate),)
    if (noise_rate is None or restarts > 1) and holdout <= 0:
        raise ValueError("choosing among candidates (noise_rate=None or restarts > 1) needs holdout > 0")
    big_r = _radius(radius, gamma)
    gen = check_rng(rng)
    train, hold = _split(gen, x.shape[0], holdout)
    orders = np.stack([train[gen.permutation(train.size)] for _ in range(restarts)])  # (restarts, n_train)
    candidates, labels = [], []
    for eta in rates:
        candidates.append(forward_adjusted_sgd(x[orders], y[orders], eta, big_r)[0])
        labels += [(eta, r) for r in range(restarts)]
    cands = np.concatenate(candidates)  # (|rates| restarts, d)
    if hold.size:
        hold_err = clean_error(cands, x[hold], y[hold])  # the noisy error: y holds the noisy labels
        best = int(np.argmin(hold_err))
    else:
        hold_err, best = None, 0
    w = _unit(cands[best])
    if not return_info:
        return w
    info = {
        "noise_rate": labels[best][0],
        "restart": labels[best][1],
        "holdout_errors": None if hold_err is None else hold_err.tolist(),
        "candidates": labels,
        "noise_rate_estimate": None if hold_err is None else float(hold_err[best]),
        "radius": big_r,
        "n_train": int(train.size),
        "n_holdout": int(hold.size),
    }
    return w, info


def slam_objective(w: object, X: object, y_noisy: object, noise_rate: float) -> float:
    r"""The empirical forward-adjusted (SLaM) risk :math:`\frac1n\sum_i \ell(\langle w, x_i\rangle,
    \tilde y_i)` with :math:`\alpha = 1 - \eta` (stable log form of ``binary_slam.binary_loss``)."""
    x, y = _check_sample(X, y_noisy)
    eta = _check_noise_rate(noise_rate)
    ww = _check_direction(w, x.shape[1])
    return float(np.mean(binary_loss(x @ ww, (y + 1.0) / 2.0, 1.0 - eta)))


# ------------------------------------------------------------------------------------------------------
# Comparison learners (docs/theory/halfspace.md#halfspace-comparison; our formulation)


def learn_logistic(X: object, y_noisy: object, *, max_iter: int = 1000) -> FloatArray:
    r"""Logistic regression on the noisy labels: L-BFGS on the mean logistic loss
    :math:`\frac1n\sum_i \log(1 + e^{-\tilde y_i\langle w, x_i\rangle})`, no intercept, unregularised
    (noisy data is not separable), from 0, at most ``max_iter`` (<= :data:`MAX_ITERATIONS`) iterations. A
    convex potential: Long & Servedio's construction defeats it. Returns the unit minimiser."""
    x, y = _check_sample(X, y_noisy)
    max_iter = check_int(max_iter, "max_iter", low=1, high=MAX_ITERATIONS)
    xy = x * y[:, None]

    def fun(w: FloatArray) -> tuple[float, FloatArray]:
        margins = xy @ w
        loss = float(np.mean(np.logaddexp(0.0, -margins)))
        grad = -(special.expit(-margins) @ xy) / x.shape[0]
        return loss, grad

    res = optimize.minimize(fun, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return _unit(res.x)


def learn_averaging(X: object, y_noisy: object) -> FloatArray:
    r"""The averaging estimator :math:`w \propto \sum_i \tilde y_i x_i`: under RCN,
    :math:`E[\tilde y x] = (1 - 2\eta)E[y x]`, so the noise only scales it (a linear statistic)."""
    x, y = _check_sample(X, y_noisy)
    return _unit(y @ x)


def learn_unhinged(X: object, y_noisy: object, *, radius: float = 1.0) -> FloatArray:
    r"""The unhinged loss :math:`1 - \tilde y\langle w, x\rangle` (van Rooyen, Menon, Williamson 2015) on
    the ball :math:`\|w\| \le R`: its empirical minimiser is :math:`R\sum_i\tilde y_i x_i/\|\sum_i \tilde
    y_i x_i\|`, the averaging direction (kept as a named learner; the radius only scales it)."""
    check_real(radius, "radius", low=0.0, low_open=True)
    return learn_averaging(X, y_noisy)


def backward_corrected_grad(t: FloatArray, y: FloatArray, noise_rate: float) -> FloatArray:
    r"""Derivative in the logit of the backward-corrected logistic loss (Natarajan et al. 2013),
    labels :math:`\pm 1`:

    .. math::

        \ell_\leftarrow(t, \tilde y) = \frac{(1-\eta)\,\ell(t, \tilde y) - \eta\,\ell(t, -\tilde y)}{1 - 2\eta},
        \quad \ell(t, y) = \log(1 + e^{-yt}), \qquad
        \partial_t \ell_\leftarrow = \frac{-\tilde y\,\bigl((1-\eta)\sigma(-\tilde y t) + \eta\,\sigma(\tilde y t)\bigr)}{1 - 2\eta},

    unbiased for the clean loss's derivative; :math:`|\partial_t\ell_\leftarrow| \le 1/(1 - 2\eta)`.
    ``t`` (n,) finite logits, ``y`` (n,) labels in {-1, +1}."""
    eta = _check_noise_rate(noise_rate)
    t = check_array(t, "t", ("n",))
    y = _check_labels(y, t.shape, "y", like="t")
    yt = y * t
    return -y * ((1.0 - eta) * special.expit(-yt) + eta * special.expit(yt)) / (1.0 - 2.0 * eta)


def learn_backward_corrected(
    X: object, y_noisy: object, noise_rate: float, *, margin: float, radius: float | None = None, rng: RNGLike = None
) -> FloatArray:
    r"""Backward-corrected logistic regression by one pass of projected SGD on :math:`\|w\| \le R` (without
    the projection the empirical loss is unbounded below): :math:`R = 4/\gamma`, step
    :math:`R(1-2\eta)/\sqrt n` (the gradient bound is :math:`1/(1-2\eta)`), average iterate, from 0."""
    x, y = _check_sample(X, y_noisy)
    eta = _check_noise_rate(noise_rate)
    big_r = _radius(radius, _check_margin(margin))
    order = check_rng(rng).permutation(x.shape[0])
    step = big_r * (1.0 - 2.0 * eta) / math.sqrt(x.shape[0])
    avg, _, _ = _projected_sgd(
        x[order][None], y[order][None], lambda t, yy: backward_corrected_grad(t, yy, eta), big_r, step
    )
    return _unit(avg[0])


def learn_sq_perceptron(X: object, y_noisy: object, noise_rate: float, *, iterations: int = 100) -> FloatArray:
    r"""A perceptron-style RCN learner from statistical queries (our formulation, in the spirit of
    Bylander 1994 and Blum et al. 1996): full-batch perceptron steps on the clean-label update
    :math:`u = E[y\,x\,1\{\mathrm{sign}\langle w,x\rangle \ne y\}]`, estimated from noisy labels through

    .. math::

        y\,1\{s(x) \ne y\} = (y - s(x))/2 \ (s = \mathrm{sign}\langle w, x\rangle), \qquad
        E[y x] = E[\tilde y x]/(1 - 2\eta), \qquad
        \hat u = \tfrac12\bigl(\overline{\tilde y x}/(1-2\eta) - \overline{s(x)\,x}\bigr),

    :math:`w \leftarrow w + \hat u` from :math:`w = 0` (where :math:`s = 0`), for ``iterations`` steps (at most
    :data:`MAX_ITERATIONS`). The
    estimate :math:`\hat u` never vanishes exactly, so the iterates can keep cycling near the boundary;
    the learner keeps the iterate with the fewest noisy training mistakes (a "pocket", which ranks the
    iterates by clean error in expectation). Returns it as a unit vector."""
    x, y = _check_sample(X, y_noisy)
    eta = _check_noise_rate(noise_rate)
    iterations = check_int(iterations, "iterations", low=1, high=MAX_ITERATIONS)
    clean_mean = (y @ x) / (x.shape[0] * (1.0 - 2.0 * eta))
    w = np.zeros(x.shape[1])
    best, fewest = w, np.inf
    for _ in range(iterations):
        t = x @ w
        mistakes = int(np.count_nonzero(t * y <= 0))
        if mistakes < fewest:
            best, fewest = w, mistakes
        w = w + 0.5 * (clean_mean - np.sign(t) @ x / x.shape[0])
    return _unit(best)
