r"""Simulators of Weighted Distillation's guarantees (``docs/theory/weighted.md#weighted-guarantees``).

The lemmas are **our formulation**: classical identities behind a debiasing reweighting of the student's
loss (the paper states only that its method is justified "in certain settings" (paper); the lemma numbers
and statements are this toolkit's, not the paper's theorems). One registered check per claim:

- **W-L1** (Lemma 1) symmetric losses: :math:`E_{\tilde y}[\ell(t,\tilde y)] = (1-2\eta)\ell(t,y) + \eta C`
  (sigmoid, 0-1, ramp), its multiclass form with MAE, W2 weights undo the factor; a 1-D threshold
  experiment with the noise integrated out exactly: the W2-weighted noisy sigmoid risk has the clean
  minimiser.
- **W-L2** (Lemma 2) :math:`E_{\tilde y}[\tilde y\,x/(1-2\eta(x))] = y\,x` (exact, noise integrated out);
  **W-L2-mean** :math:`E[w\tilde y x_1] = \sqrt{2/\pi}` (Monte Carlo, 4 SE); **W-L2-rate** the angle of the
  inverse-weighted average decays like :math:`n^{-1/2}` (Monte Carlo slope, 4 SE).
- **W-L3** (Lemma 3, Liu & Tao 2016) importance reweighting: binary logistic loss with instance-dependent
  :math:`\eta`; multiclass inversion :math:`\hat p = p` by :func:`~robustdistill.algorithms.weighting.
  debiased_targets`; :math:`-\sum_j \hat p_j \log f_j = E_{j\sim t}[\beta_j \ell(f, j)]`.
- **W-L4** (Lemma 4) deterministic hard teacher, weight = accuracy (Monte Carlo, 4 SE).
- **W-L5** (Lemma 5, Natarajan et al. 2013) backward correction is unbiased (exact); **W-L5-grad** its
  gradient noise has standard deviation :math:`\sqrt{\eta(1-\eta)}/(1-2\eta)` (Monte Carlo, 4 SE).
- **W-F6** (Fact 6) :math:`E_{\tilde y}[\log(1+e^{-\tilde y t})] = \log(2\cosh(t/2)) - (1-2\eta)yt/2`,
  and the clean/noisy ratio depends on :math:`t` (no per-example weight unbiases cross-entropy).
- **W-L7** (Lemma 7) the Hoeffding simultaneous radius of
  :func:`~robustdistill.algorithms.teacher_quality.binned_accuracy` covers all bins with probability
  :math:`\ge 1-\delta` (exact binomial test); **W-L7-iso** the isotonic estimator's error decreases in
  :math:`n_v`.
- **W-6.8** the Massart-halfspace simulator: averaging / logistic GD / sigmoid GD under the four weight
  schemes (:func:`massart_halfspace_angles` returns the 12 angles).

Formulas that have a home in ``algorithms/`` are called from there (W1-W3 weights via
:func:`~robustdistill.algorithms.weighting.distillation_weights`, debiased targets, the isotonic and
binned accuracy estimators); the simulators' own math (noise models, exact expectations) lives here.
numpy only. Every check is deterministic given ``rng``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import special, stats

from robustdistill.algorithms.teacher_quality import binned_accuracy, clopper_pearson, fit_teacher_accuracy
from robustdistill.algorithms.typing import FloatArray
from robustdistill.algorithms.weighting import KAPPA, debiased_targets, distillation_weights, normalize_weights

from ..teacher_noise import synthetic_teacher, true_accuracy
from .checks import EXACT as _EXACT
from .checks import Check, CheckResult
from .checks import interval_check as _interval_check
from .checks import rel as _rel
from .checks import summary as _summary

__all__ = [
    "CHECKS",
    "MASSART_SCHEMES",
    "check_fact6",
    "check_lemma1",
    "check_lemma2",
    "check_lemma2_mean",
    "check_lemma2_rate",
    "check_lemma3",
    "check_lemma4",
    "check_lemma5",
    "check_lemma5_gradient",
    "check_lemma7",
    "check_lemma7_isotonic",
    "check_massart_halfspace",
    "massart_data",
    "massart_halfspace_angles",
]

#: Weight schemes compared by the Massart-halfspace simulator, in table order.
MASSART_SCHEMES = ("uniform", "inverse", "signal", "accuracy")
#: The largest binary noise rate drawn by the exact checks: W2 is exactly 1/(1-2 eta) only above the
#: kappa floor, alpha >= 1/2 + KAPPA, i.e. eta <= 0.45; 0.44 keeps clear of the floor.
_ETA_MAX = 0.5 - KAPPA - 0.01
#: Points per chunk of the §6.8 gradient descent (an (8, chunk) float32 block stays in cache).
_CHUNK = 16_384
#: False-failure probability of the exact one-sided binomial test of W-L7.
_BINOM_ALPHA = 1e-4
#: W-L7's comparator: the failure rate is held to delta by a one-sided test, not compared directly.
_LEMMA7_TEST = f"one-sided exact binomial test at level {_BINOM_ALPHA:g} of measured <="


def _sigmoid(z: FloatArray) -> FloatArray:
    """sigma(z) = 1/(1+e^{-z}) via tanh (stable for any z, and exact symmetry sigma(-z) = 1 - sigma(z)
    up to one rounding)."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _logistic(z: FloatArray) -> FloatArray:
    """log(1 + e^{-z}), stably."""
    return np.logaddexp(0.0, -z)


def _w2_binary(eta: FloatArray) -> FloatArray:
    """W2 for binary noise rates: distillation_weights(1 - eta, 2, "inverse") = 1/(1 - 2 eta)."""
    return distillation_weights(1.0 - eta, 2, "inverse")


def _angle_deg(w: FloatArray, axis: int = 0) -> FloatArray:
    """Angle in degrees between w (along ``axis``) and e_1."""
    w = np.asarray(w, dtype=np.float64)
    norm = np.linalg.norm(w, axis=axis)
    first = np.take(w, 0, axis=axis)
    return np.degrees(np.arccos(np.clip(first / norm, -1.0, 1.0)))


# --------------------------------------------------------------------------------------------------------
# Lemma 1: symmetric losses


#: Binary symmetric losses l(t, y), y in {-1, +1}, each with l(t, +1) + l(t, -1) = 1.
_SYMMETRIC_LOSSES = {
    "sigmoid": lambda t, y: _sigmoid(-y * t),
    "0-1": lambda t, y: 0.5 * (1.0 - np.sign(y * t)),  # sign(0) = 0: loss 1/2 at the boundary
    "ramp": lambda t, y: np.clip(0.5 * (1.0 - y * t), 0.0, 1.0),
}


def _threshold_experiment(rng: np.random.Generator, n: int, grid: int) -> dict[str, Any]:
    r"""1-D thresholds :math:`f_\theta(x) = c(x - \theta)` under Massart noise, noise integrated out.

    :math:`x \sim N(0,1)` (a fixed sample), :math:`y = \mathrm{sign}(x - \theta^*)`, :math:`\theta^* = 0.25`,
    :math:`\eta(x) = 0.4` on :math:`(\theta^*, \theta^* + 0.8)` and 0.05 elsewhere (asymmetric, so the
    unweighted minimiser moves). Risks of the sigmoid loss :math:`\sigma(-y f)`, :math:`c = 5`, on a grid.
    """
    theta_star, c = 0.25, 5.0
    x = rng.standard_normal(n)
    y = np.where(x > theta_star, 1.0, -1.0)
    eta = np.where((x > theta_star) & (x < theta_star + 0.8), 0.4, 0.05)
    w = _w2_binary(eta)
    thetas = np.linspace(-1.5, 1.5, grid)
    clean, noisy, weighted = np.empty(grid), np.empty(grid), np.empty(grid)
    for start in range(0, grid, 64):  # (64, n) blocks of the (grid, n) loss table
        rows = slice(start, start + 64)
        t = c * (x[None, :] - thetas[rows, None])
        clean_loss = _sigmoid(-y * t)
        noisy_loss = (1.0 - eta) * clean_loss + eta * _sigmoid(y * t)  # E over the teacher's label
        clean[rows] = clean_loss.mean(axis=1)
        noisy[rows] = noisy_loss.mean(axis=1)
        weighted[rows] = (w * noisy_loss).mean(axis=1)
    constant = float(np.mean(w * eta))  # E[eta C/(1 - 2 eta)], C = 1
    return {
        "gap": float(np.max(_rel(weighted, clean + constant))),
        "clean": float(thetas[np.argmin(clean)]),
        "weighted": float(thetas[np.argmin(weighted)]),
        "unweighted": float(thetas[np.argmin(noisy)]),
        "step": float(thetas[1] - thetas[0]),
    }


def check_lemma1(rng: np.random.Generator, size: dict[str, int]) -> CheckResult:
    r"""Lemma 1 (our formulation): for symmetric losses, W2 weights make the noisy risk the clean risk
    plus a constant.

    Binary (sigmoid :math:`\sigma(-yt)`, 0-1, ramp; C = 1): per example,
    :math:`E_{\tilde y}[\ell(t,\tilde y)] = (1-2\eta)\ell(t,y) + \eta C` and
    :math:`E_{\tilde y}[w\,\ell(t,\tilde y)] = \ell(t,y) + w\eta C` with ``w`` from
    ``distillation_weights(1 - eta, 2, "inverse")``. Multiclass (MAE :math:`1 - f_y`, C = K - 1, symmetric
    noise of accuracy a): :math:`E[\ell(f,\tilde y)] = c\,\ell(f,y) + (1-a)C/(K-1)`, :math:`c =
    (Ka-1)/(K-1) = 1/w`. Threshold experiment: the W2-weighted noisy sigmoid risk equals the clean risk
    plus a constant on every grid point, so the grid minimisers coincide.

    ``measured``: the largest relative error over all identities (``inf`` if the weighted and clean
    threshold minimisers differ); ``interval``: the range of the errors.
    """
    n = int(size["n"])
    errors = []
    # binary
    t = rng.uniform(-5.0, 5.0, n)
    y = rng.choice([-1.0, 1.0], n)
    eta = rng.uniform(0.0, _ETA_MAX, n)
    w = _w2_binary(eta)
    for loss in _SYMMETRIC_LOSSES.values():
        clean, flipped = loss(t, y), loss(t, -y)
        noisy = (1.0 - eta) * clean + eta * flipped  # the noise model: y flipped with probability eta
        errors.append(_rel(noisy, (1.0 - 2.0 * eta) * clean + eta))
        errors.append(_rel(w * noisy, clean + w * eta))
    # multiclass, MAE
    for k in range(2, 11):
        m = max(n // 9, 1)
        f = rng.dirichlet(np.ones(k), m)
        yk = rng.integers(0, k, m)
        a = rng.uniform(1.0 / k + KAPPA, 1.0, m)
        loss = 1.0 - f  # loss[i, j] = l(f_i, j); rows sum to C = K - 1
        noise = np.repeat(((1.0 - a) / (k - 1.0))[:, None], k, axis=1)
        noise[np.arange(m), yk] = a  # P(teacher says j | y) of symmetric noise
        noisy = (noise * loss).sum(axis=1)
        clean = loss[np.arange(m), yk]
        c = (k * a - 1.0) / (k - 1.0)
        offset = (1.0 - a) * (k - 1.0) / (k - 1.0)  # (1 - a) C/(K - 1) with C = K - 1
        errors.append(_rel(noisy, c * clean + offset))
        wk = distillation_weights(a, k, "inverse")
        errors.append(_rel(wk * (noisy - offset), clean))
    exp = _threshold_experiment(rng, int(size["threshold_n"]), int(size["grid"]))
    errors.append(np.array([exp["gap"]]))
    stats_ = np.concatenate(errors)
    result = _summary(
        "W-L1",
        "symmetric losses (sigmoid, 0-1, ramp; multiclass MAE): E[l(t,y~)] = (1-2eta) l(t,y) + eta C and "
        f"W2-weighted noisy loss = clean loss + w eta C, exactly ({n} random binary examples, {max(n // 9, 1)} "
        f"per K = 2..10 multiclass); 1-D thresholds, noise integrated out on {size['threshold_n']} fixed x, "
        f"{size['grid']}-point grid: W2-weighted noisy sigmoid risk minimised at theta = {exp['weighted']:.4f} "
        f"= clean {exp['clean']:.4f} (unweighted moved to {exp['unweighted']:.4f}) (our formulation)",
        _EXACT,
        stats_.tolist(),
        upper=True,
    )
    if exp["weighted"] != exp["clean"]:
        return dataclasses.replace(result, measured=float("inf"), holds=False)
    return result


# --------------------------------------------------------------------------------------------------------
# Lemma 2 and the Massart halfspace data


def massart_data(
    rng: np.random.Generator, n: int, dim: int = 5
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    r"""The §6.8 data: :math:`x \sim N(0, I_d)`, :math:`y = \mathrm{sign}(x_1)` (:math:`w^* = e_1`),
    :math:`\eta(x) = 0.45` on :math:`\{x_1 > 0, x_2 > 0\}` and 0 elsewhere, :math:`\tilde y = -y` with
    probability :math:`\eta(x)`. Returns ``(x (n, d), y, eta, y_noisy)``."""
    x = rng.standard_normal((n, dim))
    y = np.where(x[:, 0] > 0, 1.0, -1.0)
    eta = np.where((x[:, 0] > 0) & (x[:, 1] > 0), 0.45, 0.0)
    y_noisy = np.where(rng.random(n) < eta, -y, y)
    return x, y, eta, y_noisy


def check_lemma2(rng: np.random.Generator, n: int) -> CheckResult:
    r"""Lemma 2 (our formulation), exact part: with the label noise integrated out,
    :math:`E_{\tilde y}[\tilde y \mid x] = (1 - \eta)y - \eta y`, and :math:`w(x)E_{\tilde y}[\tilde y
    \mid x]\,x = y\,x` per example with W2 weights; hence :math:`\frac1n\sum_i w_i E[\tilde y_i|x_i] x_i =
    \frac1n\sum_i y_i x_i` on a fixed sample. ``measured``: the largest relative error."""
    x, y, _, _ = massart_data(rng, n)
    eta = rng.uniform(0.0, _ETA_MAX, n)  # any eta(x) <= eta_max, not just the §6.8 one
    w = _w2_binary(eta)
    expected_noisy = (1.0 - eta) * y + eta * (-y)  # E[y~ | x] under the Massart noise model
    per_example = _rel(w[:, None] * expected_noisy[:, None] * x, y[:, None] * x).ravel()
    averaged = _rel((w * expected_noisy) @ x / n, y @ x / n)
    return _summary(
        "W-L2",
        "E[y~ x/(1-2eta(x))] = E[y x] with the label noise integrated out: per example and averaged over "
        f"{n} fixed x ~ N(0, I_5), eta(x) in [0, {_ETA_MAX:g}], W2 weights (our formulation)",
        _EXACT,
        np.concatenate([per_example, averaged]).tolist(),
        upper=True,
    )


def check_lemma2_mean(rng: np.random.Generator, n: int) -> CheckResult:
    r"""Lemma 2 (our formulation), population part: for :math:`x \sim N(0, I_5)`, :math:`y = \mathrm{sign}
    (x_1)` and the §6.8 noise, :math:`E[w\,\tilde y\,x_1] = E[y x_1] = \sqrt{2/\pi}` with W2 weights
    (Monte Carlo over sampled x and noisy labels, 4 SE). The claim also reports the unweighted mean, whose
    expectation :math:`\sqrt{2/\pi} - 0.9\,\phi(0)/2 \approx 0.618` is biased."""
    x, _, eta, y_noisy = massart_data(rng, n)
    w = _w2_binary(eta)
    v = w * y_noisy * x[:, 0]
    mean, se = float(v.mean()), float(v.std(ddof=1) / np.sqrt(n))
    unweighted = y_noisy @ x / n
    return _interval_check(
        "W-L2-mean",
        f"E[w y~ x_1] = sqrt(2/pi) = {np.sqrt(2 / np.pi):.4f} with W2 weights, Massart noise 0.45 on "
        f"{{x1>0, x2>0}} (Monte Carlo, n = {n}, 4 SE; the unweighted average is biased: "
        f"({unweighted[0]:.3f}, {unweighted[1]:.3f}) on (x1, x2)) (our formulation)",
        float(np.sqrt(2.0 / np.pi)),
        mean,
        se,
    )


def check_lemma2_rate(rng: np.random.Generator, size: dict[str, Any]) -> CheckResult:
    r"""Lemma 2 (our formulation), finite sample: the angle between the inverse-weighted average
    :math:`\sum_i w_i \tilde y_i x_i` and :math:`w^*` decays like :math:`n^{-1/2}`.

    For each ``n`` in ``size["ns"]``, ``size["reps"]`` independent samples of the §6.8 data; the slope of
    log(mean angle) on log n (least squares over the ``n``s) is compared with -1/2 within 4 SE (SE by the
    delta method from the per-``n`` spread of the angles). The unweighted average's angle does not decay
    (a bias of about 16°)."""
    ns = [int(v) for v in size["ns"]]
    reps = int(size["reps"])
    log_mean, log_var, biased = [], [], []
    for n in ns:
        angles = np.empty(reps)
        unweighted = np.empty(reps)
        for r in range(reps):
            x, _, eta, y_noisy = massart_data(rng, n)
            angles[r] = _angle_deg((_w2_binary(eta) * y_noisy) @ x)
            unweighted[r] = _angle_deg(y_noisy @ x)
        mean = angles.mean()
        log_mean.append(np.log(mean))
        log_var.append(angles.var(ddof=1) / reps / mean**2)
        biased.append(float(unweighted.mean()))
    u = np.log(np.asarray(ns, dtype=np.float64))
    uc = u - u.mean()
    slope = float(uc @ np.asarray(log_mean) / (uc @ uc))
    se = float(np.sqrt((uc**2) @ np.asarray(log_var)) / (uc @ uc))
    means = ", ".join(f"{np.exp(lm):.3g}°" for lm in log_mean)
    return _interval_check(
        "W-L2-rate",
        f"the inverse-weighted average's angle to w* decays like n^(-1/2): slope of log mean angle on log n "
        f"= -1/2 within 4 SE (n = {ns}, {reps} samples each; mean angles {means}; unweighted stays at "
        f"{biased[-1]:.1f}°) (our formulation)",
        -0.5,
        slope,
        se,
    )


# --------------------------------------------------------------------------------------------------------
# Lemma 3: importance reweighting (Liu & Tao 2016)


def check_lemma3(rng: np.random.Generator, n: int) -> CheckResult:
    r"""Lemma 3 (our formulation of Liu & Tao 2016): importance reweighting is exact for any loss.

    - Binary, instance-dependent :math:`\eta`, logistic loss: the noisy law
      :math:`P_{\tilde D}(+1|x) = \eta + (1-2\eta)p`; :math:`\beta = \hat p/t` from
      ``debiased_targets(t, 1 - eta)`` equals :math:`(P_{\tilde D} - \eta)/((1-2\eta)P_{\tilde D})`, and
      :math:`E_{\tilde D}[\beta\ell] = E_D[\ell]`.
    - Multiclass, symmetric noise: :math:`t = a p + (1-a)(1-p)/(K-1)` gives ``debiased_targets(t, a)``
      :math:`= p` (rows on the simplex), :math:`\beta_j t_j = \hat p_j` and :math:`-\sum_j \hat p_j\log f_j
      = E_{j\sim t}[\beta_j\ell(f,j)] = E_{j\sim p}[\ell(f,j)]`.
    """
    errors = []
    # binary: class 0 is y = -1, class 1 is y = +1
    p = rng.uniform(0.0, 1.0, n)
    eta = rng.uniform(0.0, _ETA_MAX, n)
    logit = rng.normal(0.0, 3.0, n)
    noisy_pos = eta + (1.0 - 2.0 * eta) * p  # the exact noisy law
    t = np.stack([1.0 - noisy_pos, noisy_pos], axis=1)
    beta = debiased_targets(t, 1.0 - eta) / t
    closed = (t - eta[:, None]) / ((1.0 - 2.0 * eta[:, None]) * t)  # Lemma 3's binary beta
    errors.append(_rel(beta, closed).ravel())
    loss = np.stack([_logistic(-logit), _logistic(logit)], axis=1)  # l(f, -1), l(f, +1)
    clean = (1.0 - p) * loss[:, 0] + p * loss[:, 1]
    errors.append(_rel((t * beta * loss).sum(axis=1), clean))
    # multiclass
    for k in range(2, 11):
        m = max(n // 9, 1)
        pk = rng.dirichlet(np.ones(k), m)
        a = rng.uniform(1.0 / k + KAPPA, 1.0, m)
        tk = a[:, None] * pk + (1.0 - a[:, None]) * (1.0 - pk) / (k - 1.0)
        p_hat = debiased_targets(tk, a)
        errors.append(_rel(p_hat, pk).ravel())
        errors.append(np.abs(p_hat.sum(axis=1) - 1.0))
        errors.append(np.where(p_hat.min(axis=1) >= 0.0, 0.0, np.inf))
        beta_k = p_hat / tk
        errors.append(_rel(beta_k * tk, p_hat).ravel())
        ce = -special.log_softmax(rng.normal(0.0, 2.0, (m, k)), axis=1)  # ce[i, j] = l(f_i, j)
        soft_debiased = (p_hat * ce).sum(axis=1)
        errors.append(_rel(soft_debiased, (tk * beta_k * ce).sum(axis=1)))
        errors.append(_rel(soft_debiased, (pk * ce).sum(axis=1)))
    return _summary(
        "W-L3",
        "importance reweighting (Liu & Tao 2016) is exact: binary logistic loss with instance-dependent eta, "
        "E_noisy[beta l] = E_clean[l], beta = debiased_targets/t = (P~ - eta)/((1-2eta)P~); multiclass "
        "t = a p + (1-a)(1-p)/(K-1): debiased_targets(t, a) = p on the simplex, beta_j t_j = p^_j, "
        f"-sum p^_j log f_j = E_(j~t)[beta_j l(f,j)] = clean CE ({n} binary examples, {max(n // 9, 1)} per "
        "K = 2..10) "
        "(our formulation)",
        _EXACT,
        np.concatenate(errors).tolist(),
        upper=True,
    )


# --------------------------------------------------------------------------------------------------------
# Lemma 4: deterministic hard teacher, weight = accuracy


def check_lemma4(rng: np.random.Generator, n: int) -> CheckResult:
    r"""Lemma 4 (our formulation): with a deterministic hard teacher :math:`\tilde y(x)` and W1 weights
    :math:`w = \alpha(x)`, :math:`E[\alpha(x)\,\ell(f(x),\tilde y(x))] = E[1\{y = \tilde y(x)\}\ell(f(x),
    y)]`.

    K = 5; four equally likely regions with accuracies (.95, .8, .5, .3); :math:`\tilde y(x)` uniform; the
    true label equals it with the region's accuracy, else is uniform over the other classes (so inside a
    region, correctness is independent of the loss); random student logits :math:`N(0, 1.5^2)`. Monte
    Carlo on the paired difference, 4 SE (``bound``: the exact difference 0)."""
    k = 5
    accuracies = np.array([0.95, 0.8, 0.5, 0.3])
    region = rng.integers(0, accuracies.size, n)
    alpha = accuracies[region]
    teacher = rng.integers(0, k, n)
    correct = rng.random(n) < alpha
    other = (teacher + rng.integers(1, k, n)) % k  # uniform over the other K - 1 classes
    y = np.where(correct, teacher, other)
    log_f = special.log_softmax(rng.normal(0.0, 1.5, (n, k)), axis=1)
    loss_teacher = -log_f[np.arange(n), teacher]
    loss_true = -log_f[np.arange(n), y]
    lhs = distillation_weights(alpha, k, "accuracy") * loss_teacher
    rhs = np.where(y == teacher, loss_true, 0.0)
    diff = lhs - rhs
    return _interval_check(
        "W-L4",
        f"deterministic teacher, W1 weights: E[alpha(x) l(f, y~(x))] = {lhs.mean():.4f} equals "
        f"E[1{{y = y~}} l(f, y)] = {rhs.mean():.4f} within 4 SE of the paired difference (n = {n}, K = 5, "
        "regions with accuracies .95/.8/.5/.3, random logits) (our formulation)",
        0.0,
        float(diff.mean()),
        float(diff.std(ddof=1) / np.sqrt(n)),
    )


# --------------------------------------------------------------------------------------------------------
# Lemma 5: backward correction (Natarajan et al. 2013)


def _well_conditioned_transition(rng: np.random.Generator, k: int) -> FloatArray:
    """A random row-stochastic T = (1 - eps) I + eps D (D with Dirichlet rows), eps <= 0.4: strictly
    diagonally dominant, condition number below ~10."""
    eps = rng.uniform(0.0, 0.4)
    return (1.0 - eps) * np.eye(k) + eps * rng.dirichlet(np.ones(k), k)


def check_lemma5(rng: np.random.Generator, n: int) -> CheckResult:
    r"""Lemma 5 (our formulation of Natarajan et al. 2013): backward correction is unbiased for any loss.

    Binary: :math:`\ell^\leftarrow(t,\tilde y) = [(1-\eta)\ell(t,\tilde y) - \eta\ell(t,-\tilde y)]/(1-2\eta)`
    satisfies :math:`E_{\tilde y}[\ell^\leftarrow \mid y] = \ell(t,y)` (logistic and sigmoid losses).
    Multiclass: :math:`\ell^\leftarrow(f,\tilde y) = (T^{-1}\ell_{\rm vec}(f))_{\tilde y}` and
    :math:`E_{\tilde y \sim T[y,:]}[\ell^\leftarrow] = \ell(f, y)` for random well-conditioned
    row-stochastic T, K = 2..10, cross-entropy."""
    errors = []
    t = rng.normal(0.0, 3.0, n)
    y = rng.choice([-1.0, 1.0], n)
    eta = rng.uniform(0.0, 0.49, n)
    for loss in (lambda s, lab: _logistic(lab * s), lambda s, lab: _sigmoid(-lab * s)):

        def corrected(noisy, loss=loss):
            return ((1.0 - eta) * loss(t, noisy) - eta * loss(t, -noisy)) / (1.0 - 2.0 * eta)

        expected = (1.0 - eta) * corrected(y) + eta * corrected(-y)
        errors.append(_rel(expected, loss(t, y)))
    negative = 0
    conds = []
    for k in range(2, 11):
        m = max(n // 9, 1)
        tm = _well_conditioned_transition(rng, k)
        conds.append(float(np.linalg.cond(tm)))
        loss_vec = -special.log_softmax(rng.normal(0.0, 2.0, (m, k)), axis=1)  # (m, K): l(f_i, j)
        backward = np.linalg.solve(tm, loss_vec.T).T  # row i: T^{-1} l_vec(f_i)
        negative += int((backward < 0).sum())
        expected = backward @ tm.T  # [i, y] = sum_j T[y, j] backward[i, j]
        errors.append(_rel(expected, loss_vec).ravel())
    return _summary(
        "W-L5",
        "backward correction is unbiased: binary E[l<-(t,y~)|y] = l(t,y) (logistic, sigmoid; eta < 0.49); "
        f"multiclass E_(y~~T[y,:])[(T^-1 l_vec)_y~] = l(f,y) (K = 2..10, cond(T) <= {max(conds):.2g}; "
        f"{negative} corrected losses were negative); {n} binary examples, {max(n // 9, 1)} per K "
        "(our formulation)",
        _EXACT,
        np.concatenate(errors).tolist(),
        upper=True,
    )


#: Noise rates of the gradient-variance measurement (Lemma 5, ``docs/theory/weighted.md#weighted-lemma-5``).
GRADIENT_ETAS = (0.1, 0.3, 0.4, 0.45)


def check_lemma5_gradient(rng: np.random.Generator, n: int) -> CheckResult:
    r"""Lemma 5 (our formulation): the backward-corrected gradient is unbiased but its noise grows like
    :math:`1/(1-2\eta)`.

    For the binary logistic loss, :math:`\partial_t\ell(t,+1) - \partial_t\ell(t,-1) = -1` for every t,
    so the deviation of :math:`\partial_t\ell^\leftarrow(t,\tilde y)` from the clean gradient
    :math:`\partial_t\ell(t,y)` has standard deviation exactly :math:`\sqrt{\eta(1-\eta)}/(1-2\eta)`. Monte
    Carlo at :math:`\eta \in \{0.1, 0.3, 0.4, 0.45\}` (``n`` examples each, logits N(0, 2^2)): each measured
    std within 4 SE of the exact one, and strictly increasing in :math:`\eta`. ``measured``: the largest
    |z| (``inf`` if not increasing), ``bound`` 4; ``interval``: the range of the z-scores."""

    def grad(s, lab):  # d/dt log(1 + e^{-y t}) = -y sigma(-y t)
        return -lab * _sigmoid(-lab * s)

    zs, measured, exact = [], [], []
    for eta in GRADIENT_ETAS:
        t = rng.normal(0.0, 2.0, n)
        y = rng.choice([-1.0, 1.0], n)
        noisy = np.where(rng.random(n) < eta, -y, y)
        g = ((1.0 - eta) * grad(t, noisy) - eta * grad(t, -noisy)) / (1.0 - 2.0 * eta)
        dev2 = (g - grad(t, y)) ** 2
        m2 = float(dev2.mean())
        std = np.sqrt(m2)
        se = float(dev2.std(ddof=1) / np.sqrt(n)) / (2.0 * std)
        truth = float(np.sqrt(eta * (1.0 - eta)) / (1.0 - 2.0 * eta))
        zs.append((std - truth) / se)
        measured.append(std)
        exact.append(truth)
    increasing = bool(np.all(np.diff(measured) > 0))
    worst = float(np.max(np.abs(zs))) if increasing else float("inf")
    table = ", ".join(f"{e}: {m:.3f} ({x:.3f})" for e, m, x in zip(GRADIENT_ETAS, measured, exact))
    return CheckResult(
        "W-L5-grad",
        "backward-corrected logistic gradient noise std = sqrt(eta(1-eta))/(1-2eta), increasing in eta; "
        f"measured (exact) at eta {table}; {n} examples each, 4 SE (shared with SLaM's S3) (our formulation)",
        4.0,
        worst,
        (float(np.min(zs)), float(np.max(zs))),
        bool(worst <= 4.0),
        comparator="<=",
    )


# --------------------------------------------------------------------------------------------------------
# Fact 6: cross-entropy is not unbiased by any per-example weight


def _noisy_logistic(t: FloatArray, y: FloatArray, eta: FloatArray) -> FloatArray:
    """E over y~ (flipped with probability eta) of log(1 + e^{-y~ t}), by the noise model."""
    return (1.0 - eta) * _logistic(y * t) + eta * _logistic(-y * t)


def fact6_ratio(t: FloatArray, eta: float = 0.2, y: float = 1.0) -> FloatArray:
    """The clean/noisy ratio log(1 + e^{-yt}) / E[log(1 + e^{-y~ t})]: the only weight that would map the
    noisy cross-entropy onto the clean one at logit t (our formulation, ``docs/theory/weighted.md#weighted-fact-6``)."""
    t = np.asarray(t, dtype=np.float64)
    return _logistic(y * t) / _noisy_logistic(t, np.full_like(t, y), np.full_like(t, eta))


def check_fact6(rng: np.random.Generator, n: int) -> CheckResult:
    r"""Fact 6 (our formulation): :math:`E_{\tilde y}[\log(1+e^{-\tilde y t})] = \log(2\cosh(t/2)) -
    (1-2\eta)yt/2` exactly (random t in [-10, 10], y, eta in [0, 1/2)), and the clean/noisy ratio depends on
    t (at eta = 0.2, y = 1 it is about 0.83 at t = 0.5 and 0.075 at t = 3): the check asserts that ratio
    varies by a factor > 2 (``measured`` is ``inf`` otherwise)."""
    t = rng.uniform(-10.0, 10.0, n)
    y = rng.choice([-1.0, 1.0], n)
    eta = rng.uniform(0.0, 0.5, n)
    lhs = _noisy_logistic(t, y, eta)
    rhs = np.logaddexp(0.5 * t, -0.5 * t) - (1.0 - 2.0 * eta) * y * t / 2.0  # log(2 cosh(t/2)) - ...
    errors = _rel(lhs, rhs)
    low, high = fact6_ratio(np.array([0.5, 3.0]))
    result = _summary(
        "W-F6",
        f"E[log(1+e^(-y~ t))] = log(2cosh(t/2)) - (1-2eta) y t/2 exactly ({n} random t, y, eta); the "
        f"clean/noisy ratio at eta = 0.2, y = 1 is {low:.4f} at t = 0.5 and {high:.4f} at t = 3 (not "
        "constant: no per-example weight unbiases cross-entropy) (our formulation)",
        _EXACT,
        errors.tolist(),
        upper=True,
    )
    if not low / high > 2.0:
        return dataclasses.replace(result, measured=float("inf"), holds=False)
    return result


# --------------------------------------------------------------------------------------------------------
# Lemma 7: estimation error of the accuracy


def check_lemma7(rng: np.random.Generator, size: dict[str, int]) -> CheckResult:
    r"""Lemma 7 (our formulation): the Hoeffding radius :math:`\sqrt{\log(2B/\delta)/(2n_b)}` of
    :func:`~robustdistill.algorithms.teacher_quality.binned_accuracy` holds simultaneously over the B bins
    with probability :math:`\ge 1-\delta`.

    ``trials`` validation sets of B = 10 regions x n_b = 60 points (a binary teacher whose margin places
    each region in its own equal-mass bin), per-region accuracies drawn in [0.3, 0.99] per trial. The
    simultaneous failure rate is tested against :math:`\delta = 0.05` with a one-sided exact binomial test
    (false-failure probability 1e-4 when the rate is <= delta). ``measured``: the failure rate;
    ``interval``: its two-sided Clopper-Pearson interval at level 1 - 2e-4."""
    bins, per_bin, delta = int(size["bins"]), int(size["per_bin"]), float(size["delta"])
    trials = int(size["trials"])
    n_v = bins * per_bin
    region = np.repeat(np.arange(bins), per_bin)
    margin = (region + rng.uniform(0.05, 0.95, n_v)) / bins  # region b <-> margins in (b/B, (b+1)/B)
    probs = np.stack([(1.0 + margin) / 2.0, (1.0 - margin) / 2.0], axis=1)  # the teacher says class 0
    failures = 0
    wilson_misses = 0
    bins_ok = True
    for _ in range(trials):
        acc = rng.uniform(0.3, 0.99, bins)
        correct = rng.random(n_v) < acc[region]
        res = binned_accuracy(probs, np.where(correct, 0, 1), n_bins=bins, delta=delta)
        expected = np.arange(bins)
        bins_ok &= bool(
            res.counts.shape == (bins,)
            and np.all(res.counts == per_bin)
            and np.all(np.floor(res.low * bins) == expected)
            and np.all(np.floor(res.high * bins) == expected)
        )
        if not bins_ok:  # binned_accuracy's equal-mass bins do not match the simulated regions
            break
        failures += int(np.any(np.abs(res.accuracy - acc) > res.hoeffding_radius))
        wilson_misses += int(np.sum((acc < res.wilson_low) | (acc > res.wilson_high)))
    if not bins_ok:
        return CheckResult(
            "W-L7",
            "Hoeffding + union bound: not checked: binned_accuracy's equal-mass bins did not match the "
            f"{bins} simulated regions of {per_bin} points (our formulation)",
            delta,
            float("inf"),
            (0.0, 1.0),
            False,
            comparator=_LEMMA7_TEST,
        )
    rate = failures / trials
    pvalue = float(stats.binomtest(failures, trials, delta, alternative="greater").pvalue)
    low, high = clopper_pearson(failures, trials, 2 * _BINOM_ALPHA)
    radius = float(np.sqrt(np.log(2 * bins / delta) / (2 * per_bin)))
    return CheckResult(
        "W-L7",
        f"Hoeffding + union bound: P(some |a^_b - a_b| > sqrt(log(2B/delta)/(2 n_b)) = {radius:.3f}) <= "
        f"delta = {delta:g} (B = {bins}, n_b = {per_bin}, {trials} trials; {failures} failures, one-sided "
        f"exact binomial p = {pvalue:.3g}, test level {_BINOM_ALPHA:g}; Wilson per-bin miss rate "
        f"{wilson_misses / (trials * bins):.3f} at nominal {delta:g}, diagnostics only) (our formulation)",
        delta,
        rate,
        (float(low), float(high)),
        bool(pvalue > _BINOM_ALPHA),
        comparator=_LEMMA7_TEST,
    )


def check_lemma7_isotonic(rng: np.random.Generator, size: dict[str, Any]) -> CheckResult:
    r"""Lemma 7 (our formulation), isotonic part: no finite-sample bound is claimed for
    :func:`~robustdistill.algorithms.teacher_quality.fit_teacher_accuracy`; its mean absolute error
    against the truth, averaged over the margin distribution U(0, 1) (a 1000-point midpoint grid) and over
    ``seeds`` validation sets, must decrease along ``n_vs`` (nested samples per seed).

    ``measured``: the largest step MAE(n_(i+1)) - MAE(n_i) (must be < 0 = ``bound``); ``interval``: (MAE at
    the largest n_v, MAE at the smallest)."""
    n_vs = [int(v) for v in size["n_vs"]]
    seeds = int(size["seeds"])
    grid = (np.arange(1000) + 0.5) / 1000
    grid_probs, _, _ = synthetic_teacher(rng, grid.size, margins=grid)
    truth = true_accuracy(grid)
    mae = np.zeros((seeds, len(n_vs)))
    for r in range(seeds):
        probs, labels, _ = synthetic_teacher(rng, max(n_vs))
        for j, n_v in enumerate(n_vs):
            fit = fit_teacher_accuracy(probs[:n_v], labels[:n_v])
            mae[r, j] = np.mean(np.abs(fit.predict(grid_probs) - truth))
    means = mae.mean(axis=0)
    steps = np.diff(means)
    table = ", ".join(f"{n}: {m:.4f}" for n, m in zip(n_vs, means))
    return CheckResult(
        "W-L7-iso",
        f"isotonic accuracy fit (§2.1 teacher, alpha(s) = 0.3 + 0.65 s^0.7): mean absolute error over "
        f"s ~ U(0,1) and {seeds} seeds decreases in n_v ({table}) (our formulation)",
        0.0,
        float(steps.max()),
        (float(means[-1]), float(means[0])),
        bool(np.all(steps < 0)),
        comparator="<",
    )


# --------------------------------------------------------------------------------------------------------
# §6.8: the Massart-halfspace simulator


def massart_halfspace_angles(
    rng: np.random.Generator, n: int = 400_000, *, steps: int = 300, lr: float = 1.0
) -> dict[str, dict[str, float]]:
    r"""The §6.8 Massart-halfspace simulator (our formulation): angles to :math:`w^* = e_1` in degrees.

    Data from :func:`massart_data` (d = 5, :math:`\eta = 0.45` on :math:`\{x_1>0, x_2>0\}`). Weights from
    the true :math:`\eta` via ``distillation_weights(1 - eta, 2, scheme)``, normalised to mean 1
    (:func:`~robustdistill.algorithms.weighting.normalize_weights`), for the schemes of
    :data:`MASSART_SCHEMES`. Estimators: ``"averaging"`` :math:`\sum_i w_i\tilde y_i x_i`; ``"logistic"``
    and ``"sigmoid"``: full-batch gradient descent from 0, ``steps`` steps of size ``lr`` on
    :math:`\frac1n\sum_i w_i\ell(\tilde y_i\langle\theta, x_i\rangle)` with :math:`\ell(z) =
    \log(1+e^{-z})` resp. :math:`\sigma(-z)`.

    The 8 descents run together, with the sums over the data in float32 (angles are reported to 0.1°).
    With :math:`h = \tanh(z/2)`: :math:`-\ell'(z) = (1-h)/2` (logistic) and :math:`(1-h^2)/4` (sigmoid), so
    the gradient is :math:`-(A - \sum_i w_i h_i z_i)/(2n)` resp. :math:`-(A - \sum_i w_i h_i^2 z_i)/(4n)`
    with the fixed :math:`A = \sum_i w_i z_i`, :math:`z_i = \tilde y_i x_i`.

    Returns ``{"averaging" | "logistic" | "sigmoid": {scheme: angle}}``.
    """
    x, _, eta, y_noisy = massart_data(rng, int(n))
    z = y_noisy[:, None] * x
    weights = np.stack([normalize_weights(distillation_weights(1.0 - eta, 2, s)) for s in MASSART_SCHEMES])
    averaging = weights @ z  # (4, d): A = sum_i w_i z_i
    s = len(MASSART_SCHEMES)
    # Column chunks of z^T (float32, cache-sized) inside one region each. The weights are a function of eta,
    # so each scheme's weight is one constant per region: sum_i w_i h_i z_i = sum over chunks of
    # w_chunk (h_chunk @ z_chunk). (Per-example weights are used if they are not.)
    chunks = []
    for mask in (eta > 0, eta == 0):
        if not mask.any():
            continue
        values = np.tile(weights[:, mask], (2, 1)).astype(np.float32)  # (8, m): logistic, then sigmoid rows
        constant = bool(np.all(values == values[:, :1]))
        z_t = np.ascontiguousarray(z[mask].T, dtype=np.float32)
        for i in range(0, z_t.shape[1], _CHUNK):
            chunks.append((z_t[:, i : i + _CHUNK], values[:, :1] if constant else values[:, i : i + _CHUNK]))
    a_both = np.tile(averaging, (2, 1))
    scale = np.r_[np.full(s, lr / (2.0 * n)), np.full(s, lr / (4.0 * n))][:, None]
    theta = np.zeros((2 * s, x.shape[1]))
    for _ in range(int(steps)):
        half = (0.5 * theta).astype(np.float32)
        total = np.zeros_like(theta)
        for z_chunk, w_chunk in chunks:
            h = np.tanh(half @ z_chunk)  # (8, chunk)
            h[s:] *= h[s:]  # sigmoid rows: h^2
            if w_chunk.shape[1] == 1:
                total += w_chunk * (h @ z_chunk.T)
            else:
                total += (h * w_chunk) @ z_chunk.T
        theta += scale * (a_both - total)
    names = {"averaging": averaging, "logistic": theta[:s], "sigmoid": theta[s:]}
    return {
        est: {scheme: float(_angle_deg(v, axis=0)) for scheme, v in zip(MASSART_SCHEMES, vecs)}
        for est, vecs in names.items()
    }


def massart_slacks(angles: dict[str, dict[str, float]]) -> dict[str, float]:
    """The §6.8 assertions as slacks in degrees (each must be > 0)."""
    avg, logi, sig = angles["averaging"], angles["logistic"], angles["sigmoid"]
    others = [s for s in MASSART_SCHEMES if s != "inverse"]
    return {
        "averaging: inverse < 3": 3.0 - avg["inverse"],
        "averaging: others > 10": min(avg[s] for s in others) - 10.0,
        "sigmoid: inverse < 2": 2.0 - sig["inverse"],
        "sigmoid: others > 3": min(sig[s] for s in others) - 3.0,
        "logistic: signal < accuracy": logi["accuracy"] - logi["signal"],
        "logistic: accuracy < uniform": logi["uniform"] - logi["accuracy"],
        "logistic: uniform < inverse": logi["inverse"] - logi["uniform"],
    }


def format_angles(angles: dict[str, dict[str, float]]) -> str:
    """Compact table: ``averaging u/i/s/a = 16.1/0.9/18.2/17.0°; ...``."""
    return "; ".join(
        f"{est} u/i/s/a = " + "/".join(f"{angles[est][s]:.1f}" for s in MASSART_SCHEMES) + "°"
        for est in ("averaging", "logistic", "sigmoid")
    )


def check_massart_halfspace(rng: np.random.Generator, n: int) -> CheckResult:
    r"""§6.8 (our formulation): Massart halfspace, d = 5, :math:`\eta = 0.45` on :math:`\{x_1>0, x_2>0\}`.
    Assertions: averaging: inverse < 3° and all others > 10°; sigmoid GD: inverse < 2° and all others >
    3°; logistic GD: signal < accuracy < uniform < inverse. ``measured``: the smallest slack in degrees
    (must be > 0 = ``bound``); ``interval``: the range of the slacks. The claim lists the 12 angles."""
    angles = massart_halfspace_angles(rng, n)
    slacks = massart_slacks(angles)
    values = np.array(list(slacks.values()))
    worst = min(slacks, key=slacks.get)
    return CheckResult(
        "W-6.8",
        f"Massart halfspace (d = 5, eta = 0.45 on {{x1>0, x2>0}}, n = {n}, GD 300 steps of 1.0): "
        f"{format_angles(angles)} (u/i/s/a = uniform/inverse/signal/accuracy); averaging: inverse < 3° < 10° "
        "< others; sigmoid: inverse < 2° < 3° < others; logistic: signal < accuracy < uniform < inverse "
        f"(tightest: {worst}) (our formulation)",
        0.0,
        float(values.min()),
        (float(values.min()), float(values.max())),
        bool(values.min() > 0),
        comparator=">",
    )


CHECKS = [
    Check(
        "W-L1",
        "weighted",
        check_lemma1,
        {"n": 20_000, "threshold_n": 2_000, "grid": 301},
        {"n": 200_000, "threshold_n": 20_000, "grid": 601},
    ),
    Check("W-L2", "weighted", check_lemma2, 20_000, 400_000),
    Check("W-L2-mean", "weighted", check_lemma2_mean, 100_000, 400_000),
    Check(
        "W-L2-rate",
        "weighted",
        check_lemma2_rate,
        {"ns": (4_000, 40_000, 400_000), "reps": 20},
        {"ns": (10_000, 100_000, 1_000_000), "reps": 30},
    ),
    Check("W-L3", "weighted", check_lemma3, 20_000, 200_000),
    Check("W-L4", "weighted", check_lemma4, 100_000, 400_000),
    Check("W-L5", "weighted", check_lemma5, 20_000, 200_000),
    Check("W-L5-grad", "weighted", check_lemma5_gradient, 100_000, 1_000_000),
    Check("W-F6", "weighted", check_fact6, 20_000, 200_000),
    Check(
        "W-L7",
        "weighted",
        check_lemma7,
        {"bins": 10, "per_bin": 60, "delta": 0.05, "trials": 1_000},
        {"bins": 10, "per_bin": 60, "delta": 0.05, "trials": 4_000},
    ),
    Check(
        "W-L7-iso",
        "weighted",
        check_lemma7_isotonic,
        {"n_vs": (200, 500, 5_000), "seeds": 20},
        {"n_vs": (200, 500, 5_000), "seeds": 30},
    ),
    Check("W-6.8", "weighted", check_massart_halfspace, 400_000, 400_000),
]
