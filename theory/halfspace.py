r"""Halfspaces with margin under random classification noise (``spec/slam.md`` §6): data, the
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
\alpha)), \alpha/\beta)` (the F4 gradient bound, ``slam.md`` §5) and the average iterate. The paper's
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
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special

from robustdistill.algorithms.results import Result
from robustdistill.algorithms.typing import FloatArray, RNGLike
from robustdistill.algorithms.validation import as_numpy, check_int, check_rng

from .binary_slam import binary_grad, binary_loss, gradient_bound

__all__ = [
    "KINDS",
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
    if isinstance(margin, bool) or not isinstance(margin, (int, float, np.floating, np.integer)):
        raise TypeError(f"margin must be a real number, got {type(margin).__name__}")
    g = float(margin)
    if not (0.0 < g <= 1.0):
        raise ValueError(f"margin must lie in (0, 1], got {margin!r}")
    return g


def _check_noise_rate(noise_rate: object, name: str = "noise_rate") -> float:
    if isinstance(noise_rate, bool) or not isinstance(noise_rate, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(noise_rate).__name__}")
    eta = float(noise_rate)
    if not (0.0 <= eta < 0.5):
        raise ValueError(f"{name} must lie in [0, 1/2) (at 1/2 the labels carry no signal), got {noise_rate!r}")
    return eta


def _check_sample(X: object, y: object, norm_tol: float = 1e-9) -> tuple[FloatArray, FloatArray]:
    """X (n, d) finite with row norms <= 1 + tol, y (n,) in {-1, +1}."""
    x = np.asarray(as_numpy(X, "X"), dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"X must be a non-empty 2-D array (n, d), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("X must be finite")
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    if norms.max() > 1.0 + norm_tol:
        i = int(norms.argmax())
        raise ValueError(f"the rows of X must have norm <= 1; row {i} has norm {norms[i]!r}")
    lab = np.asarray(as_numpy(y, "y_noisy"), dtype=np.float64)
    if lab.shape != (x.shape[0],):
        raise ValueError(f"y_noisy must have shape ({x.shape[0]},) like the rows of X, got {lab.shape}")
    if not np.all((lab == 1.0) | (lab == -1.0)):
        bad = int(np.flatnonzero((lab != 1.0) & (lab != -1.0))[0])
        raise ValueError(f"labels must be -1 or +1; found {lab[bad]!r} at index {bad}")
    return x, lab


# ------------------------------------------------------------------------------------------------------
# Data


#: Rejection sampling gives up (ValueError) after this many batches without enough points.
_MAX_BATCHES = 1000


def _rejection(rng: np.random.Generator, n: int, dim: int, margin: float, draw: Any, kind: str) -> FloatArray:
    """``n`` rows of ``draw(rng, m)`` (an (m, dim) batch) with ``|x_1| >= margin`` and, for the gaussian
    kind, ``||x|| <= 1`` (sphere rows have norm 1 up to rounding and are not tested: a row of norm
    1 + 1e-16 must not be dropped)."""
    out = np.empty((0, dim))
    for _ in range(_MAX_BATCHES):
        need = n - out.shape[0]
        if need == 0:
            return out
        z = draw(rng, max(4 * need, 64))
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
    """Uniform on the unit sphere conditioned on ``|x_1| >= margin``, by rejection in batches."""

    def draw(gen: np.random.Generator, m: int) -> FloatArray:
        z = gen.standard_normal((m, dim))
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    return _rejection(rng, n, dim, margin, draw, "sphere")


def _gaussian_with_margin(rng: np.random.Generator, n: int, dim: int, margin: float) -> FloatArray:
    r""":math:`N(0, I_d/d)` conditioned on :math:`\|x\| \le 1` and :math:`|x_1| \ge \gamma`, by rejection."""
    return _rejection(rng, n, dim, margin, lambda gen, m: gen.standard_normal((m, dim)) / math.sqrt(dim), "gaussian")


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

    Kinds (our formulation, ``spec/slam.md`` §6-§7):

    - ``"sphere"``: uniform on the unit sphere conditioned on :math:`|x_1| \ge \gamma` (rejection).
    - ``"gaussian"``: :math:`N(0, I_d/d)` conditioned on :math:`\|x\| \le 1` and :math:`|x_1| \ge \gamma`.
    - ``"long_servedio"``: after Long & Servedio (2008/2010): three atoms :math:`x_L = (1, 0)` (mass 1/4),
      :math:`x_P = (\gamma, -\gamma)` (1/2), :math:`x_U = (\gamma, 5\gamma)` (1/4), zero-padded; every
      clean label is +1. Needs ``dim >= 2`` and :math:`\gamma \le 1/\sqrt{26}` (so that
      :math:`\|x_U\| \le 1`). Under RCN the logistic minimiser misclassifies :math:`x_P` (half the mass).

    Noise: ``"rcn"`` flips every label with probability ``noise_rate``; ``"massart"`` flips with
    :math:`\eta(x) = \eta_{\max}\,1\{x_2 > 0\}` (``noise_rate`` is :math:`\eta_{\max}`; bounded, varying
    with x, zero on half the space), the noise model of the Weighted Distillation simulators.

    Args:
        n: number of points (>= 1).
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
    gamma = _check_margin(margin)
    eta = _check_noise_rate(noise_rate)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if noise not in ("rcn", "massart"):
        raise ValueError(f"noise must be 'rcn' or 'massart', got {noise!r}")
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
    ww = np.asarray(as_numpy(w, "w"), dtype=np.float64)
    x = np.asarray(as_numpy(X, "X"), dtype=np.float64)
    margins = (x @ ww.T) * np.asarray(as_numpy(y, "y"), dtype=np.float64).reshape(-1, *([1] * (ww.ndim - 1)))
    errors = np.mean(margins <= 0, axis=0)
    return float(errors) if ww.ndim == 1 else errors


def long_servedio_error(w: object, margin: float) -> float:
    """The exact clean error of ``w`` on the Long-Servedio distribution: the mass of the atoms with
    ``<w, x> <= 0`` (every clean label is +1)."""
    ww = np.asarray(as_numpy(w, "w"), dtype=np.float64)
    if ww.ndim != 1 or ww.shape[0] < 2:
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
    the radius are checked; the row norms are the caller's business); the SLaM
    derivative with :math:`\alpha = 1 - \eta` (``binary_slam.binary_grad``), step
    :math:`R/(G_\alpha\sqrt n)`, projection on :math:`\|w\| \le R`. Returns what :func:`_projected_sgd`
    returns (average iterates (S, d), gradient norms (S, n), tracked running averages)."""
    X, y_noisy = np.asarray(X, dtype=np.float64), np.asarray(y_noisy, dtype=np.float64)
    if X.ndim != 3 or y_noisy.shape != X.shape[:2] or 0 in X.shape:
        raise ValueError(
            f"X must be (S, n, d) and y_noisy (S, n), non-empty; got {X.shape} and {y_noisy.shape}"
        )
    if not np.all(np.abs(y_noisy) == 1.0):
        raise ValueError("labels must be -1 or +1")
    alpha = 1.0 - _check_noise_rate(noise_rate)
    if radius is None:
        raise ValueError("radius is required (learn_halfspace_rcn defaults it to 4/margin)")
    radius = _radius(radius, 1.0)
    step = radius / (float(gradient_bound(alpha)) * math.sqrt(X.shape[1]))
    return _projected_sgd(X, (y_noisy + 1.0) / 2.0, lambda t, y01: binary_grad(t, y01, alpha), radius, step, track)


def _radius(radius: object, margin: float) -> float:
    """The projection radius: ``radius``, finite and > 0, or the spec's default 4/margin."""
    if radius is None:
        return 4.0 / margin
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) or not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a finite real number > 0, got {radius!r}")
    return float(radius)


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
    r"""The forward-adjusted (SLaM) learner for margin halfspaces under RCN (``spec/slam.md`` §6, our
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

    Cost: O(restarts · |grid| · n · d) time; memory O(d) per run plus one shuffled copy of the training
    data per restart.

    Args:
        X: (n, d) points with row norms <= 1 (+1e-9).
        y_noisy: (n,) labels in {-1, +1}.
        noise_rate: eta in [0, 1/2), or None to estimate it.
        margin: gamma > 0 (sets the default radius 4/gamma).
        radius: the projection radius R (default 4/gamma).
        holdout: fraction of the samples held out to choose among candidates (0: no hold-out; the single
            restart's average is returned, and ``restarts`` must be 1).
        restarts: independent shuffles (>= 1).
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
    if isinstance(holdout, bool) or not isinstance(holdout, numbers.Real) or not 0.0 <= float(holdout) < 1.0:
        raise ValueError(f"holdout must be a fraction in [0, 1), got {holdout!r}")
    rates = NOISE_GRID if noise_rate is None else (_check_noise_rate(noise_rate),)
    if (noise_rate is None or restarts > 1) and holdout <= 0:
        raise ValueError("choosing among candidates (noise_rate=None or restarts > 1) needs holdout > 0")
    big_r = _radius(radius, gamma)
    gen = check_rng(rng)
    train, hold = _split(gen, x.shape[0], float(holdout))
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
    ww = np.asarray(as_numpy(w, "w"), dtype=np.float64)
    return float(np.mean(binary_loss(x @ ww, (y + 1.0) / 2.0, 1.0 - eta)))


# ------------------------------------------------------------------------------------------------------
# Comparison learners (spec §6 table; our formulation)


def learn_logistic(X: object, y_noisy: object, *, max_iter: int = 1000) -> FloatArray:
    r"""Logistic regression on the noisy labels: L-BFGS on the mean logistic loss
    :math:`\frac1n\sum_i \log(1 + e^{-\tilde y_i\langle w, x_i\rangle})`, no intercept, unregularised
    (noisy data is not separable), from 0. A convex potential: Long & Servedio's construction defeats it.
    Returns the unit minimiser."""
    x, y = _check_sample(X, y_noisy)
    max_iter = check_int(max_iter, "max_iter", low=1)
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
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) or not radius > 0:
        raise ValueError(f"radius must be a real number > 0, got {radius!r}")
    return learn_averaging(X, y_noisy)


def backward_corrected_grad(t: FloatArray, y: FloatArray, noise_rate: float) -> FloatArray:
    r"""Derivative in the logit of the backward-corrected logistic loss (Natarajan et al. 2013),
    labels :math:`\pm 1`:

    .. math::

        \ell_\leftarrow(t, \tilde y) = \frac{(1-\eta)\,\ell(t, \tilde y) - \eta\,\ell(t, -\tilde y)}{1 - 2\eta},
        \quad \ell(t, y) = \log(1 + e^{-yt}), \qquad
        \partial_t \ell_\leftarrow = \frac{-\tilde y\,\bigl((1-\eta)\sigma(-\tilde y t) + \eta\,\sigma(\tilde y t)\bigr)}{1 - 2\eta},

    unbiased for the clean loss's derivative; :math:`|\partial_t\ell_\leftarrow| \le 1/(1 - 2\eta)`."""
    eta = float(noise_rate)
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

    :math:`w \leftarrow w + \hat u` from :math:`w = 0` (where :math:`s = 0`), for ``iterations`` steps. The
    estimate :math:`\hat u` never vanishes exactly, so the iterates can keep cycling near the boundary;
    the learner keeps the iterate with the fewest noisy training mistakes (a "pocket", which ranks the
    iterates by clean error in expectation). Returns it as a unit vector."""
    x, y = _check_sample(X, y_noisy)
    eta = _check_noise_rate(noise_rate)
    iterations = check_int(iterations, "iterations", low=1)
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
