r"""Simulators of SLaM (``docs/theory/slam.md#slam-simulators``): S0 (identities) and S1 (consistency).

Every fact checked here (F1-F4, the stable forms, the consistency of the mixes) is **our formulation**: the
toolkit's own facts about forward loss-adjustment, never cited as the paper's theorems. The mixing forms
(2) and (2') themselves are (paper).

Binary notation (``docs/theory/slam.md#slam-convergence``): :math:`\alpha > 1/2`, :math:`\beta = 2\alpha - 1`, student :math:`f = \sigma(t)`,
mixed prediction :math:`m = (1-\alpha) + \beta f`, clean posterior :math:`p`, noisy posterior
:math:`q = (1-\alpha) + \beta p`, loss :math:`\ell = -\tilde y \log m - (1-\tilde y)\log(1-m)`.

- **S0-F1** :math:`E_{\tilde y}[\ell \mid x] - \min = \mathrm{KL}(q \| m)`; **S0-F1-Pinsker**
  :math:`\mathrm{KL}(q\|m) \ge 2\beta^2(p-f)^2`.
- **S0-F2** :math:`m(1-m) = \alpha(1-\alpha) + \beta^2 f(1-f)`.
- **S0-F3** :math:`\partial\ell/\partial t = \beta f(1-f)(m-\tilde y)/(m(1-m))` (against a complex-step
  derivative of :math:`\ell`) and :math:`E_{\tilde y}[\partial\ell/\partial t] = \omega(f-p)`,
  :math:`\omega \in [0, 1)`; **S0-F3-MC** the same expectation by Monte Carlo.
- **S0-F4-loss** :math:`\ell \le \log(1/(1-\alpha))`; **S0-F4-grad**
  :math:`|\partial\ell/\partial t| \le G_\alpha = \min(\beta/(4(1-\alpha)), \alpha/\beta)`.
- **S0-stable** the log-space forms of :math:`\log m`, :math:`\log(1-m)` against direct evaluation.
- **S0-torch** the float32 torch loss :func:`robustdistill.algorithms.losses.slam_loss` and its gradient
  against the float64 numpy reference built on :func:`robustdistill.algorithms.slam.mix`, logits up to
  ±300 (the prototype parity).
- **S1-binary**, **S1-multiclass-2**, **S1-multiclass-2'** population minimisers found by L-BFGS with exact
  expectations: SLaM recovers :math:`p`, vanilla CE :math:`q`; (2) recovers :math:`p^*`; (2') gives the
  water-filling map of :math:`q` (:func:`robustdistill.theory.slam_risk.per_example_minimiser`) and keeps
  the argmax. The argmax is kept because the population targets of model (1) are **supported on M**.
- **S1-soft-targets** a soft teacher target with mass off :math:`M` can move the per-example minimiser's top
  class outside :math:`M` (:mod:`robustdistill.theory.slam_risk`); SLaM's default configuration (read from
  :class:`robustdistill.algorithms.methods.SLaM` at run time) restricts the target to :math:`M`
  (:func:`robustdistill.algorithms.slam.slam_targets`, ``"topk"``), and the check measures the fraction of
  Dirichlet teachers whose minimiser's top class leaves the teacher's top-k set: 0. With the raw soft
  target (``targets="soft"``) it is large (about 0.7 for K = 10, k = 2).

The binary formulas live here, once, as small numpy functions; the multiclass mix is always
:func:`robustdistill.algorithms.slam.mix`, its exact per-example minimiser
:func:`robustdistill.theory.slam_risk.per_example_minimiser`. Every check is deterministic given ``rng``.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special, stats

from robustdistill.algorithms.slam import clip_alpha, mix, slam_targets, topk_mask
from robustdistill.algorithms.typing import FloatArray

from ..binary_slam import (
    binary_grad,
    binary_kl,
    binary_log_mix,
    binary_loss,
    binary_mix,
    binary_risk,
    gradient_bound,
    noisy_posterior,
    omega,
)
from ..slam_risk import leaves_topk, per_example_minimiser
from ..teacher_noise import topk_noise_expectation
from .checks import EXACT as _EXACT
from .checks import Check, CheckResult
from .checks import rel as _rel
from .checks import summary as _summary

__all__ = [
    "CHECKS",
    "binary_grad",
    "binary_kl",
    "binary_log_mix",
    "binary_log_mix_spec",
    "binary_loss",
    "binary_mix",
    "binary_risk",
    "fit_slam_probs",
    "gradient_bound",
    "noisy_posterior",
    "omega",
    "per_example_minimiser",
    "soft_target_fractions",
]

#: Tolerance of S1 on fitted probabilities (S1, ``docs/theory/slam.md#slam-s1``).
FIT_TOL = 1e-6
#: Family-wise false-failure probability of each Monte-Carlo check: that of a two-sided 4 SE interval.
MC_DELTA = float(2 * stats.norm.sf(4.0))


# --------------------------------------------------------------------------------------------------
# Binary SLaM formulas (our formulation). Arrays broadcast; alpha in [1/2, 1].
# --------------------------------------------------------------------------------------------------


def binary_log_mix_spec(t: FloatArray, alpha: FloatArray) -> tuple[FloatArray, FloatArray]:
    r"""The stable forms as written in ``docs/theory/slam.md#slam-log-space``:
    :math:`\log m = \mathrm{logaddexp}(\log\alpha, \log(1-\alpha) - t) - \mathrm{softplus}(-t)`,
    :math:`\log(1-m) = \mathrm{logaddexp}(\log(1-\alpha), \log\alpha - t) - \mathrm{softplus}(-t)`."""
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore"):
        la, lb = np.log(alpha), np.log1p(-np.asarray(alpha, dtype=float))
    sp = np.logaddexp(0.0, -t)
    return np.logaddexp(la, lb - t) - sp, np.logaddexp(lb, la - t) - sp


# --------------------------------------------------------------------------------------------------
# S0: identities
# --------------------------------------------------------------------------------------------------


def _draw_binary(rng: np.random.Generator, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """S0 (``docs/theory/slam.md#slam-s0``): alpha ~ U(1/2, 1), t ~ N(0, 16), p ~ U(0, 1)."""
    alpha = rng.uniform(0.5, 1.0, n)
    alpha = np.where(alpha == 0.5, 0.75, alpha)  # the open interval (a draw of exactly 1/2 is ~1e-16)
    return alpha, rng.normal(0.0, 4.0, n), rng.uniform(0.0, 1.0, n)


def check_s0_f1(rng: np.random.Generator, n: int) -> CheckResult:
    """F1: E[loss | x] - min_f E[loss | x] = KL(q || m); the minimum is the entropy of q, reached at m = q."""
    alpha, t, p = _draw_binary(rng, n)
    q = noisy_posterior(p, alpha)
    m, m1 = binary_mix(t, alpha)
    entropy = special.entr(q) + special.entr(1.0 - q)
    excess = binary_risk(t, p, alpha) - entropy
    kl = binary_kl(q, m, m1)
    # the risk at f = p is the entropy of q (min), and every draw's risk is >= it
    at_p = binary_risk(special.logit(p), p, alpha)
    err = np.maximum(_rel(excess, kl), _rel(at_p, entropy))
    return _summary(
        "S0-F1",
        "binary SLaM: excess conditional risk E[loss|x] - min = KL(q||m), the min (entropy of q) reached at "
        f"f = p; worst relative error over {n} draws alpha~U(1/2,1), t~N(0,16), p~U(0,1) (our formulation)",
        _EXACT,
        err.tolist(),
        upper=True,
    )


def check_s0_f1_pinsker(rng: np.random.Generator, n: int) -> CheckResult:
    """F1 (Pinsker): KL(q || m) >= 2 (q - m)^2 = 2 beta^2 (p - f)^2."""
    alpha, t, p = _draw_binary(rng, n)
    q = noisy_posterior(p, alpha)
    m, m1 = binary_mix(t, alpha)
    slack = binary_kl(q, m, m1) - 2.0 * (2.0 * alpha - 1.0) ** 2 * (p - special.expit(t)) ** 2
    return _summary(
        "S0-F1-Pinsker",
        f"binary SLaM: KL(q||m) - 2 beta^2 (p-f)^2 >= -1e-12 (Pinsker) over {n} draws alpha~U(1/2,1), "
        "t~N(0,16), p~U(0,1) (our formulation)",
        -_EXACT,
        slack.tolist(),
        upper=False,
    )


def check_s0_f2(rng: np.random.Generator, n: int) -> CheckResult:
    """F2: m(1 - m) = alpha(1 - alpha) + beta^2 f(1 - f) (>= alpha(1 - alpha) > 0)."""
    alpha, t, _ = _draw_binary(rng, n)
    m, m1 = binary_mix(t, alpha)
    rhs = alpha * (1.0 - alpha) + (2.0 * alpha - 1.0) ** 2 * special.expit(t) * special.expit(-t)
    err = np.abs(m * m1 - rhs) / rhs  # relative to m(1-m) itself (rhs >= alpha(1-alpha) > 0)
    return _summary(
        "S0-F2",
        f"binary SLaM: m(1-m) = alpha(1-alpha) + beta^2 f(1-f), worst relative error over {n} draws "
        "alpha~U(1/2,1), t~N(0,16) (our formulation)",
        _EXACT,
        err.tolist(),
        upper=True,
    )


def _complex_step_loss_derivative(t: FloatArray, y: FloatArray, alpha: FloatArray) -> FloatArray:
    """d loss/dt by the complex step Im(loss(t + ih))/h, h = 1e-30: exact to rounding (no cancellation),
    independent of the gradient formula. Uses the cancellation-free sums of :func:`binary_mix`."""
    h = 1e-30
    z = t + 1j * h
    f, fc = 1.0 / (1.0 + np.exp(-z)), 1.0 / (1.0 + np.exp(z))
    m, m1 = (1.0 - alpha) * fc + alpha * f, alpha * fc + (1.0 - alpha) * f
    return np.imag(-y * np.log(m) - (1.0 - y) * np.log(m1)) / h


def check_s0_f3(rng: np.random.Generator, n: int) -> CheckResult:
    """F3: dloss/dt = beta f(1-f)(m - y)/(m(1-m)) and E[dloss/dt] = omega (f - p), omega in [0, 1)."""
    alpha, t, p = _draw_binary(rng, n)
    q = noisy_posterior(p, alpha)
    g0, g1 = binary_grad(t, 0.0, alpha), binary_grad(t, 1.0, alpha)
    expected = q * g1 + (1.0 - q) * g0  # E over y ~ Bernoulli(q)
    w = omega(t, alpha)
    target = w * (special.expit(t) - p)
    formula = np.maximum(
        _rel(g0, _complex_step_loss_derivative(t, 0.0, alpha)),
        _rel(g1, _complex_step_loss_derivative(t, 1.0, alpha)),
    )
    out_of_range = np.where((w >= 0.0) & (w < 1.0), 0.0, 1.0)  # an omega outside [0, 1) counts as error 1
    err = np.maximum.reduce([_rel(expected, target), formula, out_of_range])
    return _summary(
        "S0-F3",
        "binary SLaM: dloss/dt = beta f(1-f)(m-y)/(m(1-m)) (vs a complex-step derivative) and "
        "E[dloss/dt] = omega (f - p) with omega in [0, 1); worst relative error over "
        f"{n} draws alpha~U(1/2,1), t~N(0,16), p~U(0,1) (our formulation)",
        _EXACT,
        err.tolist(),
        upper=True,
    )


def check_s0_f3_monte_carlo(rng: np.random.Generator, size: tuple[int, int]) -> CheckResult:
    r"""F3 by Monte Carlo: per point, the mean of dloss/dt over ``labels`` noisy labels
    :math:`\tilde y \sim \mathrm{Bernoulli}(q)` against :math:`\omega(f - p)`.

    The per-label gradient takes two values, so the mean over ``labels`` draws is
    :math:`g_0 + (g_1 - g_0) C/\mathrm{labels}` with :math:`C` the number of ones: drawing
    :math:`C \sim \mathrm{Binomial}(\mathrm{labels}, q)` is an exact simulation of the labels. Each point
    gets the exact two-sided binomial p-value of its deviation from the target, reported as the
    equivalent normal z (number of SE). The check holds when the largest z is at most the Bonferroni
    threshold for a family-wise false-failure probability of 6.3e-5 (that of one 4 SE interval), and
    the mean normal-approximation z over points lies within 4 SE of 0 (another 6.3e-5).
    """
    n, labels = size
    alpha, t, p = _draw_binary(rng, n)
    q = noisy_posterior(p, alpha)
    g0, g1 = binary_grad(t, 0.0, alpha), binary_grad(t, 1.0, alpha)
    ones = rng.binomial(labels, q)
    mean = g0 + (g1 - g0) * ones / labels  # the mean per-label gradient of the simulated labels
    target = omega(t, alpha) * (special.expit(t) - p)
    # exact tail: |C - c*| >= |ones - c*| under Binomial(labels, q), c* = the count at which mean = target
    c_star = labels * (target - g0) / (g1 - g0)
    r = np.abs(ones - c_star)
    lower = stats.binom.cdf(np.floor(c_star - r + 1e-9), labels, q)
    upper = stats.binom.sf(np.ceil(c_star + r - 1e-9) - 1, labels, q)
    pvalue = np.minimum(1.0, lower + upper)
    z = stats.norm.isf(pvalue / 2.0)
    z_bonferroni = float(stats.norm.isf(MC_DELTA / (2.0 * n)))
    se = np.abs(g1 - g0) * np.sqrt(q * (1.0 - q) / labels)
    z_normal = (mean - target) / se
    pooled = abs(float(z_normal.mean())) * np.sqrt(n)
    worst = float(z.max())
    return CheckResult(
        "S0-F3-MC",
        f"binary SLaM: Monte-Carlo mean of dloss/dt over {labels} noisy labels per point = omega (f - p) at "
        f"each of {n} points: max exact-tail z <= Bonferroni threshold (family-wise false-failure "
        "probability 6.3e-5) and pooled mean z within 4 SE of 0 (6.3e-5; 1.3e-4 in all) (our formulation)",
        z_bonferroni,
        worst,
        (float(z.min()), worst),
        bool(worst <= z_bonferroni and pooled <= 4.0),
        comparator="pooled |mean z| <= 4 and measured <=",
    )


def check_s0_f4_loss(rng: np.random.Generator, n: int) -> CheckResult:
    """F4: loss <= log(1/(1 - alpha)) for both labels."""
    alpha, t, _ = _draw_binary(rng, n)
    cap = -np.log1p(-alpha)
    ratio = np.maximum(binary_loss(t, 1.0, alpha), binary_loss(t, 0.0, alpha)) / cap
    return _summary(
        "S0-F4-loss",
        f"binary SLaM: loss / log(1/(1-alpha)) <= 1 for both labels over {n} draws alpha~U(1/2,1), "
        "t~N(0,16) (our formulation)",
        1.0 + _EXACT,
        ratio.tolist(),
        upper=True,
    )


def check_s0_f4_grad(rng: np.random.Generator, size: tuple[int, int, int]) -> CheckResult:
    r"""F4: :math:`|\partial\ell/\partial t| \le G_\alpha` on random draws and on a fine grid
    (``grid_alpha`` values of alpha in [1/2 + 1e-5, 1 - 1e-6] x ``grid_t`` values of t in [-40, 40]).

    Measured: the sup of :math:`|\partial\ell/\partial t|/G_\alpha` (it tends to 1 as
    :math:`\alpha \to 1/2` and :math:`\alpha \to 1`); the interval's low end is the smallest per-alpha
    sup on the grid (about 0.343 near alpha = 0.85: the bound is tight only at the ends)."""
    n, grid_alpha, grid_t = size
    alpha, t, _ = _draw_binary(rng, n)
    g = np.maximum(np.abs(binary_grad(t, 0.0, alpha)), np.abs(binary_grad(t, 1.0, alpha)))
    random_ratio = g / gradient_bound(alpha)
    a_grid = np.linspace(0.5 + 1e-5, 1.0 - 1e-6, grid_alpha)
    t_grid = np.linspace(-40.0, 40.0, grid_t)
    per_alpha = np.empty(grid_alpha)
    for i, a in enumerate(a_grid):  # |g(y=0)|(t) = |g(y=1)|(-t): the grid is symmetric, one label suffices
        per_alpha[i] = np.abs(binary_grad(t_grid, 1.0, a)).max() / gradient_bound(a)
    sup = float(max(random_ratio.max(), per_alpha.max()))
    return CheckResult(
        "S0-F4-grad",
        f"binary SLaM: sup |dloss/dt| / G_alpha <= 1, G_alpha = min(beta/(4(1-alpha)), alpha/beta), over {n} "
        f"draws (alpha~U(1/2,1), t~N(0,16)) and a {grid_alpha} x {grid_t} grid alpha in [0.50001, 0.999999], "
        "t in [-40, 40]; tight only as alpha -> 1/2 or 1, low end = smallest per-alpha sup (our formulation)",
        1.0 + _EXACT,
        sup,
        (float(per_alpha.min()), sup),
        bool(sup <= 1.0 + _EXACT),
        comparator="<=",
    )


#: Test points of S0-stable.
STABLE_T = np.array([0.0, 5.0, -5.0, 20.0, -20.0, 50.0, -50.0, 1000.0, -1000.0])
STABLE_ALPHA = np.array([0.5 + 1e-6, 0.51, 0.6, 0.75, 0.9, 0.99, 1.0 - 1e-6])


def check_s0_stable(rng: np.random.Generator, size: int) -> CheckResult:
    r"""The log-space forms (:func:`binary_log_mix` and the logaddexp form :func:`binary_log_mix_spec`) against
    references, at ``t`` in {0, ±5, ±20, ±50, ±1000} x 7 values of alpha in (1/2, 1), plus ``size`` random
    (alpha ~ U(1/2, 1), t ~ N(0, 16)):

    - :math:`|t| \le 50`: the direct float64 evaluation ``log((1-a)σ(-t) + aσ(t))`` and
      ``log(aσ(-t) + (1-a)σ(t))`` (sums of positive terms, so relative error ~1e-16; no overflow);
    - :math:`|t| = 1000`: :math:`\sigma(-1000)` underflows in float64, so the reference is the analytic
      limit: :math:`m = (\alpha + (1-\alpha)e^{-t})/(1 + e^{-t})`, hence :math:`\log m = \log\alpha` at
      :math:`t = +1000` and :math:`\log(1-\alpha)` at :math:`t = -1000` (the reverse for
      :math:`\log(1-m)`), each off by less than :math:`e^{-1000}/(1-\alpha) < 10^{-400}`: exact in
      float64 (no extended precision needed);
    - and the binary mix equals :func:`robustdistill.algorithms.slam.mix` with K = k = 2 (both forms) on
      the points with :math:`|t| \le 50` (probabilities).

    Measured: the worst error of both forms; the interval's low end is the worst error of
    :func:`binary_log_mix` alone (the logaddexp form loses about :math:`|t|` ulp as :math:`t \to -\infty`).
    """
    a_grid, t_grid = np.meshgrid(STABLE_ALPHA, STABLE_T, indexing="ij")
    alpha, t, _ = _draw_binary(rng, size)
    alpha = np.r_[a_grid.ravel(), alpha]
    t = np.r_[t_grid.ravel(), t]
    ref_m, ref_1m = np.empty_like(t), np.empty_like(t)
    direct = np.abs(t) <= 50.0
    m, m1 = binary_mix(t[direct], alpha[direct])
    ref_m[direct], ref_1m[direct] = np.log(m), np.log(m1)
    big = t > 50.0
    ref_m[big], ref_1m[big] = np.log(alpha[big]), np.log1p(-alpha[big])
    small = t < -50.0
    ref_m[small], ref_1m[small] = np.log1p(-alpha[small]), np.log(alpha[small])
    errs = []
    for form in (binary_log_mix, binary_log_mix_spec):
        log_m, log_1m = form(t, alpha)
        errs.append(np.maximum(_rel(log_m, ref_m), _rel(log_1m, ref_1m)))
    ours = float(errs[0].max())
    err = np.maximum(*errs)
    # the binary m against the library's mix with K = k = 2: columns (1 - m, m), both forms
    f = special.expit(t[direct])
    probs = np.c_[1.0 - f, f]
    for normalize in (False, True):
        mixed = mix(probs, alpha[direct], np.ones_like(probs), normalize=normalize)
        err[direct] = np.maximum.reduce([err[direct], _rel(mixed[:, 1], m), _rel(mixed[:, 0], m1)])
    worst = float(err.max())
    return CheckResult(
        "S0-stable",
        "binary SLaM: log m and log(1-m) in log space (the form logaddexp(log a, log(1-a) - t) - softplus(-t) "
        "and the symmetric logaddexp(log a - softplus(-t), log(1-a) - softplus(t))) match direct evaluation "
        f"(|t| <= 50) or the analytic limit (t = +-1000) at t in {{0, +-5, +-20, +-50, +-1000}} x 7 alphas and {size} "
        "random points, and the binary m equals slam.mix with K = k = 2 (both forms); worst relative error, low "
        "end = the symmetric form alone (our formulation)",
        _EXACT,
        worst,
        (ours, worst),
        bool(worst <= _EXACT),
        comparator="<=",
    )


# --------------------------------------------------------------------------------------------------
# S1: consistency (population minimisers by L-BFGS with exact expectations)
# --------------------------------------------------------------------------------------------------


def check_s0_torch(rng: np.random.Generator, n: int) -> CheckResult:
    r"""Float32 torch :func:`~robustdistill.algorithms.losses.slam_loss` (value and gradient in the logits)
    against a float64 numpy reference: :math:`\ell = -\sum_i y_{s,i}\log \mathrm{mix}_i(\mathrm{softmax}(z))`
    with :func:`~robustdistill.algorithms.slam.mix`, and :math:`\partial\ell/\partial z = g -
    f\,\mathbf 1^\top g` with :math:`g_i = -y_{s,i} r_i`, :math:`r_i = (\alpha - \bar c) f_i/\mathrm{mix}_i`
    on :math:`M` and 1 off it. ``n`` rows, K = 10, k = 3, logits uniform in ±300 scaled per row (every
    scale), alpha in [1/2, 1] with the endpoints included, both forms. The measured value is the larger of
    the loss error / 2e-6 (relative to max(1, loss)) and the gradient error / 1e-6 (absolute)."""
    import torch

    from robustdistill.algorithms.losses import slam_loss
    from robustdistill.algorithms.slam import topk_mask

    num_classes, k = 10, 3
    z = rng.uniform(-300.0, 300.0, (n, num_classes)) * rng.uniform(0.0, 1.0, (n, 1))
    z = z.astype(np.float32).astype(np.float64)  # the numbers the float32 path sees
    t = rng.dirichlet(np.full(num_classes, 0.5), n).astype(np.float32).astype(np.float64)
    t /= t.sum(axis=1, keepdims=True)
    alpha = rng.uniform(0.5, 1.0, n)
    alpha[:4] = [0.5, 1.0, 0.5, 1.0]
    alpha = alpha.astype(np.float32).astype(np.float64)
    mask = topk_mask(t, k)
    worst, loss_err, grad_err = 0.0, 0.0, 0.0
    for normalize in (False, True):
        f = special.softmax(z, axis=1)
        mixed = mix(f, alpha, mask, normalize)
        ref = -(t * np.log(mixed)).sum(axis=1)
        c_bar = (1 - alpha) / (k - 1) if normalize else 1 - alpha
        resp = np.where(mask > 0, (alpha - c_bar)[:, None] * f / mixed, 1.0)
        g = -t * resp
        ref_grad = g - f * g.sum(axis=1, keepdims=True)
        z32 = torch.tensor(z, dtype=torch.float32, requires_grad=True)
        loss = slam_loss(z32, torch.tensor(t, dtype=torch.float32), alpha.astype(np.float32), mask, normalize=normalize)
        (grad,) = torch.autograd.grad(loss.sum(), z32)
        lo, gr = loss.detach().double().numpy(), grad.double().numpy()
        if not (np.isfinite(lo).all() and np.isfinite(gr).all()):
            return CheckResult(
                "S0-torch",
                "slam_loss float32 parity: non-finite output (our formulation)",
                1.0,
                float("inf"),
                (0.0, float("inf")),
                False,
                comparator="<=",
            )
        loss_err = max(loss_err, float(np.max(np.abs(lo - ref) / np.maximum(1.0, np.abs(ref)))))
        grad_err = max(grad_err, float(np.max(np.abs(gr - ref_grad))))
    worst = max(loss_err / 2e-6, grad_err / 1e-6)
    return CheckResult(
        "S0-torch",
        f"torch float32 slam_loss vs the float64 numpy reference (slam.mix), {n} rows, K = 10, k = 3, logits "
        f"up to +-300, alpha in [1/2, 1], forms (2) and (2'): loss error {loss_err:.2g} <= 2e-6 (relative to "
        f"max(1, loss)), gradient error {grad_err:.2g} <= 1e-6 (absolute); measured = worst error / its bound "
        "(our formulation)",
        1.0,
        worst,
        (min(loss_err / 2e-6, grad_err / 1e-6), worst),
        bool(worst <= 1.0),
        comparator="<=",
    )


def _mix_slope(alpha: FloatArray, mask: FloatArray, normalize: bool) -> FloatArray:
    r"""The coefficient :math:`\partial\,\mathrm{mix}_i/\partial f_i` of the (affine, coordinate-wise)
    map :func:`mix`, read off :func:`mix` itself from two simplex points that differ in every
    coordinate (uniform, and :math:`f_i \propto 2^i`), so the fit minimises whatever :func:`mix`
    computes."""
    n, K = mask.shape
    u = np.full((n, K), 1.0 / K)
    g = np.broadcast_to(2.0 ** np.arange(K) / (2.0**K - 1.0), (n, K))
    return (mix(g, alpha, mask, normalize=normalize) - mix(u, alpha, mask, normalize=normalize)) / (g - u)


def fit_slam_probs(
    q: FloatArray,
    alpha: FloatArray,
    mask: FloatArray,
    *,
    normalize: bool,
    free: slice = slice(None),
    init: FloatArray | None = None,
) -> tuple[FloatArray, list[optimize.OptimizeResult]]:
    r"""Per bin, minimise the population SLaM risk :math:`-\sum_i q_i \log \mathrm{mix}_i(\mathrm{softmax}(z))`
    over the free logits by L-BFGS-B with the analytic gradient; ``q`` is the exact expected label of the
    bin. The constant :math:`\sum_i q_i \log q_i` is added (it does not depend on :math:`z`) so the
    objective is near 0 at the optimum and float64 resolves it (the excess is about
    :math:`\beta^2 \delta^2` at an error :math:`\delta` in f, so the fit is limited to about 1e-7 at
    alpha = 0.55 for (2'), ~1e-8 typically). ``free`` selects the free logit columns
    (the others stay 0): the binary fit frees only column 1, so :math:`f = \sigma(t)`. ``init``: the
    starting logits (default 0, the uniform student).

    The bins are separate problems, so each is fitted on its own (a joint L-BFGS over all bins would
    be only as well conditioned as the worst bin).

    Returns the fitted probabilities (n, K) and scipy's result per bin."""
    n, K = q.shape
    slope = _mix_slope(alpha, mask, normalize)
    cols = np.arange(K)[free]
    z_all = np.zeros((n, K)) if init is None else np.array(init, dtype=float)
    results = []
    for b in range(n):
        qb, ab, mb, sb, on = q[b : b + 1], alpha[b : b + 1], mask[b : b + 1], slope[b : b + 1], q[b : b + 1] > 0
        z = z_all[b : b + 1].copy()

        def objective(x: FloatArray) -> tuple[float, FloatArray]:
            z[0, cols] = x
            f = special.softmax(z, axis=1)
            mixed = mix(f, ab, mb, normalize=normalize)
            value = float(special.rel_entr(qb[on], mixed[on]).sum())
            grad_f = np.zeros((1, K))
            grad_f[on] = -qb[on] * sb[on] / mixed[on]
            grad_z = f * (grad_f - (f * grad_f).sum())
            return value, grad_z[0, cols]

        res = optimize.minimize(
            objective,
            z[0, cols].copy(),
            jac=True,
            method="L-BFGS-B",
            options={"gtol": 1e-13, "ftol": 1e-300, "maxiter": 10_000, "maxfun": 20_000},
        )
        z_all[b, cols] = res.x
        results.append(res)
    return special.softmax(z_all, axis=1), results


def check_s1_binary(rng: np.random.Generator, bins: int) -> CheckResult:
    """S1 binary: bins with p ~ U(0, 1), alpha ~ U(0.55, 0.95), labels y ~ Bernoulli(q) (exact
    expectations); the SLaM fit recovers p and the vanilla CE fit (the alpha = 1 mix) recovers q."""
    p = rng.uniform(0.0, 1.0, bins)
    alpha = rng.uniform(0.55, 0.95, bins)
    q2 = np.c_[1.0 - noisy_posterior(p, alpha), noisy_posterior(p, alpha)]  # (P[y=0], P[y=1]) per bin
    ones = np.ones((bins, 2))
    f_slam, _ = fit_slam_probs(q2, alpha, ones, normalize=False, free=slice(1, 2))
    f_vanilla, _ = fit_slam_probs(q2, np.ones(bins), ones, normalize=False, free=slice(1, 2))
    err_slam = np.abs(f_slam[:, 1] - p)
    err_vanilla = np.abs(f_vanilla[:, 1] - q2[:, 1])
    err = np.maximum(err_slam, err_vanilla)
    return _summary(
        "S1-binary",
        f"binary consistency over {bins} bins (p~U(0,1), alpha~U(0.55,0.95), y~Bernoulli(q)): one free logit "
        "per bin fitted by L-BFGS from t = 0 on the exact expected loss; SLaM f -> p and vanilla CE (alpha = 1) "
        "f -> q, max "
        f"|error| <= {FIT_TOL:g} (our formulation)",
        FIT_TOL,
        err.tolist(),
        upper=True,
    )


def _draw_multiclass(
    rng: np.random.Generator, bins: int, num_classes: int, k: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bins with a random top-k set M (k of K classes), p* ~ Dirichlet(1) on M, alpha ~ U(0.55, 0.95)."""
    mask = np.zeros((bins, num_classes))
    for b in range(bins):
        mask[b, rng.choice(num_classes, size=k, replace=False)] = 1.0
    p_star = np.zeros((bins, num_classes))
    p_star[mask > 0] = rng.dirichlet(np.ones(k), size=bins).ravel()
    return p_star, mask, rng.uniform(0.55, 0.95, bins)


def _teacher_init(q: FloatArray) -> FloatArray:
    """Start the multiclass fits at the expected teacher label, logits log(q + 1e-8) (off M: about -18).

    From the uniform student (logits 0), L-BFGS's first long steps can push a class with a small but
    positive target (p* ~ 1e-3) to f ~ 1e-11, where its softmax gradient vanishes and the fit stalls
    (seen in about 1 bin in 100); the minimiser is unique either way (the risk is convex in f)."""
    return np.log(q + 1e-8)


def check_s1_multiclass_normalized(rng: np.random.Generator, size: tuple[int, int, int]) -> CheckResult:
    """S1 multiclass, form (2): the population minimiser over free logits (all K per bin) is p*."""
    bins, num_classes, k = size
    p_star, mask, alpha = _draw_multiclass(rng, bins, num_classes, k)
    q = topk_noise_expectation(p_star, alpha, mask)
    f, _ = fit_slam_probs(q, alpha, mask, normalize=True, init=_teacher_init(q))
    err = np.abs(f - p_star).max(axis=1)
    return _summary(
        "S1-multiclass-2",
        f"multiclass consistency of the normalised mix (2) (paper form): K = {num_classes}, k = {k}, {bins} bins, "
        "p* ~ Dirichlet(1) on a random top-k set M, alpha~U(0.55,0.95), E[label] from model (1); all K "
        "logits per bin fitted by L-BFGS on the exact expected loss, started at log(q + 1e-8); max |f - p*| <= "
        f"{FIT_TOL:g} "
        "(our formulation)",
        FIT_TOL,
        err.tolist(),
        upper=True,
    )


def check_s1_multiclass_unnormalized(rng: np.random.Generator, size: tuple[int, int, int]) -> CheckResult:
    """S1 multiclass, form (2'): the minimiser is the water-filling map of q
    (:func:`~robustdistill.theory.slam_risk.per_example_minimiser`), and keeps the argmax of p*: q, the
    population target of model (1), is supported on M (a soft target with mass off M need not keep it: see
    :func:`check_s1_soft_targets`)."""
    bins, num_classes, k = size
    p_star, mask, alpha = _draw_multiclass(rng, bins, num_classes, k)
    q = topk_noise_expectation(p_star, alpha, mask)
    f, _ = fit_slam_probs(q, alpha, mask, normalize=False, init=_teacher_init(q))
    wf = per_example_minimiser(q, alpha, mask, normalize=False)
    err = np.abs(f - wf).max(axis=1)
    # argmax kept (rows whose top-2 gap in p* exceeds 1e-5, i.e. where it is well defined at this tolerance)
    top2 = -np.sort(-p_star, axis=1)[:, :2]
    clear = top2[:, 0] - top2[:, 1] > 1e-5
    kept = np.argmax(f, axis=1) == np.argmax(p_star, axis=1)
    err = np.where(clear & ~kept, np.inf, err)
    return _summary(
        "S1-multiclass-2'",
        f"multiclass fit of the un-normalised mix (2') (paper form): K = {num_classes}, k = {k}, {bins} bins, "
        "p* ~ Dirichlet(1) on M, alpha~U(0.55,0.95), E[label] from model (1); L-BFGS minimiser (all K logits, "
        "started at log(q + 1e-8)) = "
        "water-filling f_i = (s q_i - (1-alpha)/(2alpha-1))_+ on M, max |error| <= "
        f"{FIT_TOL:g}, and argmax f = argmax p* ({int(clear.sum())} bins with a clear argmax): the argmax is "
        "kept for targets supported on M (the population targets of model (1)); soft targets with mass off M "
        "need the top-k restriction (S1-soft-targets) (our formulation)",
        FIT_TOL,
        err.tolist(),
        upper=True,
    )


#: The (K, k) pairs of S1-soft-targets.
SOFT_CONFIGS = ((10, 2), (10, 3), (4, 2), (4, 3))


def soft_target_fractions(
    rng: np.random.Generator, n: int, *, targets: str, normalize: bool, alpha_floor: float
) -> FloatArray:
    r"""The core of S1-soft-targets for one SLaM configuration: per (K, k) of :data:`SOFT_CONFIGS`, ``n``
    teachers :math:`t \sim \mathrm{Dirichlet}(1)` over all K classes (mass outside their top-k set
    :math:`M`), :math:`\alpha = ` :func:`~robustdistill.algorithms.slam.clip_alpha` of U(1/2, 1) at
    ``alpha_floor``, the target ``slam_targets(t, k, targets)``; returns the fraction of rows whose exact
    per-example minimiser (form ``normalize``) has its top class outside :math:`M`
    (:func:`~robustdistill.theory.slam_risk.leaves_topk`), shape ``(len(SOFT_CONFIGS),)``."""
    fractions = np.empty(len(SOFT_CONFIGS))
    for i, (num_classes, k) in enumerate(SOFT_CONFIGS):
        t = rng.dirichlet(np.ones(num_classes), n)
        raw = rng.uniform(0.5, 1.0, n)
        raw = np.where(raw == 0.5, 0.75, raw)  # the open interval: alpha = 1/2 makes (2') flat on M
        alpha = clip_alpha(raw, alpha_floor, normalize=normalize, k=k)
        y = slam_targets(t, k, targets)
        fractions[i] = leaves_topk(y, alpha, topk_mask(t, k), normalize=normalize).mean()
    return fractions


def check_s1_soft_targets(rng: np.random.Generator, n: int) -> CheckResult:
    """S1 soft targets: with SLaM's default configuration (``targets``, ``normalize``, ``alpha_floor`` of
    ``SLaM()``, read at run time), no per-example minimiser puts its top class outside the teacher's top-k
    set. Measured: the fraction of rows where it does, over all (K, k); the interval is the range of the
    per-(K, k) fractions. The old default (raw soft targets) fails: about 0.7 of the rows at K = 10, k = 2."""
    from robustdistill.algorithms.methods import SLaM

    default = SLaM()
    targets, normalize, floor = default.targets, default.normalize, default.alpha_floor
    fractions = soft_target_fractions(rng, n, targets=targets, normalize=normalize, alpha_floor=floor)
    measured = float(fractions.mean())  # every (K, k) has n rows
    pairs = ", ".join(f"({K}, {k})" for K, k in SOFT_CONFIGS)
    return CheckResult(
        "S1-soft-targets",
        f"SLaM's default configuration (targets = {targets!r}, normalize = {normalize}, alpha_floor = {floor:g}) "
        f"keeps the teacher's top-k set: {n} teachers t ~ Dirichlet(1) over all K classes per (K, k) in {pairs}, "
        "alpha = clip(U(1/2, 1), alpha_floor, 1), target slam_targets(t, k, targets); the fraction of rows whose "
        "exact per-example minimiser has its top class outside M is 0 (range over (K, k) in the interval); soft "
        "targets with mass off M fail this, targets supported on M pass it (our formulation)",
        0.0,
        measured,
        (float(fractions.min()), float(fractions.max())),
        bool(measured <= 0.0),
        comparator="<=",
    )


#: Sizes: quick runs in about 0.5 s, full (the full sizes) in about 5 s on one core.
CHECKS = [
    Check("S0-F1", "slam", check_s0_f1, 5_000, 20_000),
    Check("S0-F1-Pinsker", "slam", check_s0_f1_pinsker, 5_000, 20_000),
    Check("S0-F2", "slam", check_s0_f2, 5_000, 20_000),
    Check("S0-F3", "slam", check_s0_f3, 5_000, 20_000),
    Check("S0-F3-MC", "slam", check_s0_f3_monte_carlo, (5_000, 100_000), (20_000, 400_000)),
    Check("S0-F4-loss", "slam", check_s0_f4_loss, 5_000, 20_000),
    Check("S0-F4-grad", "slam", check_s0_f4_grad, (5_000, 100, 20_001), (20_000, 400, 160_001)),
    Check("S0-stable", "slam", check_s0_stable, 1_000, 20_000),
    Check("S0-torch", "slam", check_s0_torch, 2_000, 20_000),
    Check("S1-binary", "slam", check_s1_binary, 40, 200),
    Check("S1-multiclass-2", "slam", check_s1_multiclass_normalized, (30, 5, 3), (200, 5, 3)),
    Check("S1-multiclass-2'", "slam", check_s1_multiclass_unnormalized, (30, 5, 3), (200, 5, 3)),
    Check("S1-soft-targets", "slam", check_s1_soft_targets, 2_000, 50_000),
]
