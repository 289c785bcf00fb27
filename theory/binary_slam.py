r"""SLaM's forward-adjusted loss in the binary case, as small numpy functions (our formulation of
Kontonis et al., NeurIPS 2023, for two classes; arrays broadcast, alpha in [1/2, 1]).

With the student's logit :math:`t`, :math:`f = \sigma(t)`, the teacher's accuracy :math:`\alpha(x)` and
:math:`\beta = 2\alpha - 1`, the mixed prediction is :math:`m = (1-\alpha) + \beta f` and the loss on a
(soft) label :math:`y` is :math:`\ell = -y\log m - (1-y)\log(1-m)`. The halfspace learner
(:mod:`~robustdistill.theory.halfspace`) minimises it; the simulators check its identities and bounds.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from robustdistill.algorithms.typing import FloatArray

__all__ = [
    "binary_grad",
    "binary_kl",
    "binary_log_mix",
    "binary_loss",
    "binary_mix",
    "binary_risk",
    "gradient_bound",
    "noisy_posterior",
    "omega",
]


def noisy_posterior(p: FloatArray, alpha: FloatArray) -> FloatArray:
    r"""The noisy posterior :math:`q = (1-\alpha) + \beta p` of binary instance-dependent RCN."""
    return (1.0 - alpha) + (2.0 * alpha - 1.0) * p


def binary_mix(t: FloatArray, alpha: FloatArray) -> tuple[FloatArray, FloatArray]:
    r"""``(m, 1 - m)`` with :math:`m = (1-\alpha) + \beta\sigma(t)`, each as a sum of positive terms:

    .. math:: m = (1-\alpha)\sigma(-t) + \alpha\sigma(t), \qquad 1 - m = \alpha\sigma(-t) + (1-\alpha)\sigma(t)

    (no cancellation in :math:`1 - m` when :math:`\alpha \to 1`)."""
    f, fc = special.expit(t), special.expit(-t)
    return (1.0 - alpha) * fc + alpha * f, alpha * fc + (1.0 - alpha) * f


def binary_log_mix(t: FloatArray, alpha: FloatArray) -> tuple[FloatArray, FloatArray]:
    r"""Stable ``(log m, log(1 - m))`` from the logit, for any finite :math:`t`, with
    :math:`\log\sigma(t) = -\mathrm{softplus}(-t)`:

    .. math::

        \log m &= \mathrm{logaddexp}(\log\alpha - \mathrm{softplus}(-t), \log(1-\alpha) - \mathrm{softplus}(t)) \\
        \log(1-m) &= \mathrm{logaddexp}(\log(1-\alpha) - \mathrm{softplus}(-t), \log\alpha - \mathrm{softplus}(t))

    This equals the form :math:`\log m = \mathrm{logaddexp}(\log\alpha, \log(1-\alpha) - t) -
    \mathrm{softplus}(-t)` (see :func:`binary_log_mix_spec`), which subtracts two numbers of size
    :math:`|t|` when :math:`t \to -\infty` (an absolute error of about :math:`|t|` ulp: ~5e-14 at
    :math:`t = -1000` in float64, ~6e-5 in float32); this symmetric form adds no such error."""
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore"):  # alpha = 1 gives log(1 - alpha) = -inf, which logaddexp handles
        la, lb = np.log(alpha), np.log1p(-np.asarray(alpha, dtype=float))
    log_f, log_fc = -np.logaddexp(0.0, -t), -np.logaddexp(0.0, t)  # log sigma(t), log sigma(-t)
    return np.logaddexp(la + log_f, lb + log_fc), np.logaddexp(lb + log_f, la + log_fc)


def binary_loss(t: FloatArray, y: FloatArray, alpha: FloatArray) -> FloatArray:
    r""":math:`\ell = -y\log m - (1-y)\log(1-m)`; linear in the label, so ``y = q`` gives the
    conditional risk :math:`E_{\tilde y}[\ell \mid x]`."""
    log_m, log_1m = binary_log_mix(t, alpha)
    return -y * log_m - (1.0 - y) * log_1m


def binary_risk(t: FloatArray, p: FloatArray, alpha: FloatArray) -> FloatArray:
    r"""The conditional risk :math:`E_{\tilde y}[\ell \mid x]`, :math:`\tilde y \sim \mathrm{Bernoulli}(q)`."""
    return binary_loss(t, noisy_posterior(p, alpha), alpha)


def binary_grad(t: FloatArray, y: FloatArray, alpha: FloatArray) -> FloatArray:
    r""":math:`\partial\ell/\partial t = \beta f(1-f)(m - y)/(m(1-m))` (linear in ``y``), evaluated as

    .. math::

        \frac{\partial\ell}{\partial t} = (1-y)\,\frac{\beta\,\sigma(t)}{\alpha + (1-\alpha)e^{t}}
            - y\,\frac{\beta\,\sigma(-t)}{\beta + (1-\alpha)(1 + e^{-t})}

    (the two labels' terms, :math:`f/m` and :math:`(1-f)/(1-m)` divided out), which is finite for every
    finite :math:`t` and every :math:`\alpha \in [1/2, 1]`, including :math:`\alpha = 1` (logistic:
    :math:`f - y`) where the quotient form is 0/0 once :math:`\sigma(t)` underflows."""
    t = np.asarray(t, dtype=float)
    a = np.asarray(alpha, dtype=float)
    b = 2.0 * a - 1.0
    with np.errstate(divide="ignore", over="ignore"):  # log(0) at alpha = 1; exp overflow gives 1/inf = 0
        lc = np.log1p(-a)  # (1 - alpha) e^{+-t} = exp(log(1 - alpha) +- t): 0 at alpha = 1 for finite t
        down = b * special.expit(t) / (a + np.exp(lc + t))
        up = b * special.expit(-t) / (b + (1.0 - a) + np.exp(lc - t))
    return (1.0 - y) * down - y * up


def omega(t: FloatArray, alpha: FloatArray) -> FloatArray:
    r"""The weight :math:`\omega = \beta^2 f(1-f)/(\alpha(1-\alpha) + \beta^2 f(1-f)) \in [0, 1)` of F3."""
    v = (2.0 * alpha - 1.0) ** 2 * special.expit(t) * special.expit(-t)
    return v / (alpha * (1.0 - alpha) + v)


def gradient_bound(alpha: FloatArray) -> FloatArray:
    r""":math:`G_\alpha = \min(\beta/(4(1-\alpha)), \alpha/\beta)` of F4 (``inf`` terms at the ends are
    dropped by the min; :math:`G_1 = 1`)."""
    a = np.asarray(alpha, dtype=float)
    b = 2.0 * a - 1.0
    with np.errstate(divide="ignore"):
        return np.minimum(b / (4.0 * (1.0 - a)), a / b)


def binary_kl(q: FloatArray, m: FloatArray, m1: FloatArray | None = None) -> FloatArray:
    r""":math:`\mathrm{KL}(q\|m)` of two Bernoulli laws; ``m1`` is :math:`1 - m` when it is known more
    accurately than by subtraction."""
    m1 = 1.0 - m if m1 is None else m1
    return special.rel_entr(q, m) + special.rel_entr(1.0 - q, m1)


# --------------------------------------------------------------------------------------------------
# Multiclass references (the top-k model of docs/theory/noise.md, SLaM's mix; our formulation)
# --------------------------------------------------------------------------------------------------
