"""The SLaM simulators (``docs/theory/slam.md#slam-simulators``): they hold on the real formulas and fail on broken ones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from robustdistill.algorithms.slam import mix
from robustdistill.theory.simulators import CheckResult, run_checks
from robustdistill.theory.simulators import halfspace_checks as hc
from robustdistill.theory.simulators import slam_checks as sc
from robustdistill.theory.teacher_noise import topk_noise_expectation

#: Its module fixture is computed once: every test of this module runs on the same xdist worker.
pytestmark = pytest.mark.xdist_group("test_slam_checks")

NAMES = [
    "S0-F1",
    "S0-F1-Pinsker",
    "S0-F2",
    "S0-F3",
    "S0-F3-MC",
    "S0-F4-loss",
    "S0-F4-grad",
    "S0-stable",
    "S0-torch",
    "S1-binary",
    "S1-multiclass-2",
    "S1-multiclass-2'",
    "S1-soft-targets",
    "S2-scaling",
    "S2-LS",
    "S3-convergence",
    "S3-spread",
]


@pytest.fixture(scope="module")
def quick_results():
    return run_checks(quick=True, rng=0, only=["slam"])


def _by_name(results):
    return {c.name: c for c in results}


def test_every_check_holds(quick_results):
    assert [c.name for c in quick_results] == NAMES
    for check in quick_results:
        assert isinstance(check, CheckResult)
        assert check.holds, check
        assert "(our formulation)" in check.claim
        assert np.isfinite(check.bound) and np.isfinite(check.measured)
        low, high = check.interval
        assert low <= check.measured <= high, check
        assert isinstance(check.to_dict()["holds"], bool)


def test_measured_numbers_are_where_the_theory_puts_them(quick_results):
    r = _by_name(quick_results)
    for name in ("S0-F1", "S0-F2", "S0-F3", "S0-stable"):
        assert r[name].measured <= 1e-12
    assert r["S0-F1-Pinsker"].measured >= -1e-12
    # F4: the loss bound is attained in the limit t -> -inf, the gradient bound only as alpha -> 1/2 or 1
    assert 0.999 <= r["S0-F4-loss"].measured <= 1.0 + 1e-12
    assert 0.999 <= r["S0-F4-grad"].measured <= 1.0 + 1e-12
    assert 0.34 <= r["S0-F4-grad"].interval[0] <= 0.36  # the smallest per-alpha sup, near alpha = 0.85
    for name in ("S1-binary", "S1-multiclass-2", "S1-multiclass-2'"):
        assert r[name].measured <= 1e-6
    assert r["S1-soft-targets"].measured == 0.0 and r["S1-soft-targets"].interval == (0.0, 0.0)
    mc = r["S0-F3-MC"]
    assert 4.0 < mc.bound < 7.0  # the Bonferroni threshold in SE
    assert mc.measured <= mc.bound


def test_checks_are_deterministic_under_a_seed():
    a = run_checks(quick=True, rng=3, only=["slam"])
    b = run_checks(quick=True, rng=3, only=["slam"])
    assert [x.to_dict() for x in a] == [y.to_dict() for y in b]


def test_slam_names_are_registered_once():
    names = [c.name for c in sc.CHECKS + hc.CHECKS]
    assert names == NAMES and len(set(names)) == len(names)
    assert {c.group for c in sc.CHECKS + hc.CHECKS} == {"slam"}


# ------------------------------------------------------------------------------------------------
# The checks fail when the thing they check is broken
# ------------------------------------------------------------------------------------------------


def _vanilla_mix(student_probs, alpha, topk_mask, normalize=False):
    """The alpha = 1 mix: no adjustment (plain distillation)."""
    return np.array(student_probs, dtype=float)


def test_s1_fails_with_the_vanilla_mix(monkeypatch):
    monkeypatch.setattr(sc, "mix", _vanilla_mix)
    binary = sc.check_s1_binary(np.random.default_rng(0), 12)
    normalized = sc.check_s1_multiclass_normalized(np.random.default_rng(0), (8, 5, 3))
    assert not binary.holds and binary.measured > 1e-3
    assert not normalized.holds and normalized.measured > 1e-3
    # ... because the fit then goes to q, not p
    rng = np.random.default_rng(1)
    p, alpha = rng.uniform(0, 1, 6), rng.uniform(0.55, 0.95, 6)
    q = sc.noisy_posterior(p, alpha)
    f, _ = sc.fit_slam_probs(np.c_[1 - q, q], alpha, np.ones((6, 2)), normalize=False, free=slice(1, 2))
    np.testing.assert_allclose(f[:, 1], q, atol=1e-6)
    assert np.abs(f[:, 1] - p).max() > 1e-2


def test_s1_multiclass_fails_with_a_wrong_noise_model_or_minimiser(monkeypatch):
    def unnormalised_model(p_star, alpha, mask):  # (1) without the 1/(k-1): not the model the mix inverts
        return mix(p_star, alpha, mask, normalize=False) / mix(p_star, alpha, mask, normalize=False).sum(1)[:, None]

    with monkeypatch.context() as m:
        m.setattr(sc, "topk_noise_expectation", unnormalised_model)
        assert not sc.check_s1_multiclass_normalized(np.random.default_rng(0), (8, 5, 3)).holds

    def projected_q(q, alpha, mask, *, normalize=False):  # q itself: the argmax is right but not the minimiser
        return q * mask / (q * mask).sum(1)[:, None]

    monkeypatch.setattr(sc, "per_example_minimiser", projected_q)
    assert not sc.check_s1_multiclass_unnormalized(np.random.default_rng(0), (8, 5, 3)).holds


@pytest.mark.parametrize("corruption", ["5% too large", "without beta"])
def test_f3_fails_with_a_corrupted_gradient(monkeypatch, corruption):
    original = sc.binary_grad

    def corrupted(t, y, alpha):
        g = original(t, y, alpha)
        return 1.05 * g if corruption == "5% too large" else g / (2.0 * alpha - 1.0)

    monkeypatch.setattr(sc, "binary_grad", corrupted)
    assert not sc.check_s0_f3(np.random.default_rng(0), 500).holds
    assert not sc.check_s0_f3_monte_carlo(np.random.default_rng(0), (500, 100_000)).holds


def test_f3_fails_with_a_wrong_omega(monkeypatch):
    monkeypatch.setattr(sc, "omega", lambda t, alpha: special.expit(t) * special.expit(-t))
    assert not sc.check_s0_f3(np.random.default_rng(0), 500).holds
    assert not sc.check_s0_f3_monte_carlo(np.random.default_rng(0), (500, 100_000)).holds


def test_f1_f2_fail_with_a_wrong_mix(monkeypatch):
    original = sc.binary_mix

    def wrong(t, alpha):  # m 1% too small
        m, m1 = original(t, alpha)
        return m * 0.99, m1

    monkeypatch.setattr(sc, "binary_mix", wrong)
    rng = np.random.default_rng(0)
    assert not sc.check_s0_f1(rng, 500).holds
    assert not sc.check_s0_f2(rng, 500).holds
    assert not sc.check_s0_stable(rng, 100).holds


def test_pinsker_fails_with_a_halved_kl(monkeypatch):
    original = sc.binary_kl
    monkeypatch.setattr(sc, "binary_kl", lambda q, m, m1=None: 0.5 * original(q, m, m1))
    rng = np.random.default_rng(0)
    assert not sc.check_s0_f1_pinsker(rng, 2000).holds
    assert not sc.check_s0_f1(rng, 500).holds


def test_f4_fails_with_a_smaller_bound(monkeypatch):
    original = sc.gradient_bound
    monkeypatch.setattr(sc, "gradient_bound", lambda alpha: 0.9 * original(alpha))
    assert not sc.check_s0_f4_grad(np.random.default_rng(0), (500, 20, 2001)).holds


def test_stable_check_fails_on_an_unstable_form(monkeypatch):
    def naive(t, alpha):  # log of m and 1 - m in the probability domain: 1 - m cancels as f -> 1, alpha -> 1
        with np.errstate(divide="ignore", over="ignore"):
            f = 1.0 / (1.0 + np.exp(-np.asarray(t, dtype=float)))
            return np.log((1 - alpha) + (2 * alpha - 1) * f), np.log(alpha - (2 * alpha - 1) * f)

    monkeypatch.setattr(sc, "binary_log_mix", naive)
    assert not sc.check_s0_stable(np.random.default_rng(0), 100).holds


# ------------------------------------------------------------------------------------------------
# The references the checks rely on
# ------------------------------------------------------------------------------------------------


def _random_instance(rng, bins=20, num_classes=6, k=3):
    return sc._draw_multiclass(rng, bins, num_classes, k)


def test_torch_parity_check_fails_on_a_wrong_loss(monkeypatch):
    """S0-torch must catch a torch loss that drifted from the numpy formula (here: plain KD, alpha ignored)."""
    from robustdistill.algorithms import losses

    def drifted(logits, teacher_probs, alpha, topk_mask=None, **kwargs):
        return losses.kd_loss(logits, teacher_probs)

    monkeypatch.setattr(losses, "slam_loss", drifted)
    assert not sc.check_s0_torch(np.random.default_rng(0), 200).holds


def test_noise_model_expectation_matches_sampling_and_the_normalised_mix():
    rng = np.random.default_rng(5)
    p_star, mask, alpha = _random_instance(rng)
    q = topk_noise_expectation(p_star, alpha, mask)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(q, mix(p_star, alpha, mask, normalize=True), atol=1e-12)  # (1) = (2)(p*)
    # simulate model (1) directly on one bin: keep y* w.p. alpha, else uniform over M \ {y*}
    b, draws = 0, 200_000
    classes = np.flatnonzero(mask[b])
    y_true = rng.choice(p_star.shape[1], size=draws, p=p_star[b])
    keep = rng.random(draws) < alpha[b]
    offset = rng.integers(1, classes.size, size=draws)  # a uniform other class of M
    pos = np.searchsorted(classes, y_true)
    y = np.where(keep, y_true, classes[(pos + offset) % classes.size])
    freq = np.bincount(y, minlength=p_star.shape[1]) / draws
    se = np.sqrt(q[b] * (1 - q[b]) / draws)
    # 6 classes at 4.5 SE: false-failure probability <= 6 * 6.8e-6 (normal approximation; fixed seed)
    assert np.all(np.abs(freq - q[b]) <= 4.5 * se + 1e-12)


def test_s1_unnormalised_minimiser_keeps_the_argmax_of_model_1_targets():
    """The population targets of model (1) are supported on M: the exact (2') minimiser (the library's
    per_example_minimiser, the S1-multiclass-2' reference) is 0 off M and keeps the argmax of p*."""
    rng = np.random.default_rng(2)
    p_star, mask, alpha = _random_instance(rng, bins=200, num_classes=7, k=4)
    q = topk_noise_expectation(p_star, alpha, mask)
    f = sc.per_example_minimiser(q, alpha, mask, normalize=False)
    assert np.all(f[mask == 0] == 0)
    assert np.all(np.argmax(f, axis=1) == np.argmax(p_star, axis=1))


# ------------------------------------------------------------------------------------------------
# S1-soft-targets: SLaM's default configuration keeps the top-k set; the old default (soft targets) does not
# ------------------------------------------------------------------------------------------------

#: The configuration SLaM had before the top-k targets: the teacher's soft probabilities, form (2'), floor 0.6.
OLD_DEFAULT = {"targets": "soft", "normalize": False, "alpha_floor": 0.6}


def test_soft_targets_core_fails_with_the_old_default_and_holds_with_the_default():
    from robustdistill.algorithms.methods import SLaM

    old = sc.soft_target_fractions(np.random.default_rng(0), 2_000, **OLD_DEFAULT)
    assert old.shape == (len(sc.SOFT_CONFIGS),)
    assert np.all(old > 0) and old[0] > 0.5  # K = 10, k = 2: most rows leave M (about 0.71)
    default = SLaM()
    new = sc.soft_target_fractions(
        np.random.default_rng(0),
        2_000,
        targets=default.targets,
        normalize=default.normalize,
        alpha_floor=default.alpha_floor,
    )
    np.testing.assert_array_equal(new, 0.0)


@pytest.mark.parametrize(
    "config",
    [
        {"targets": "topk", "normalize": False, "alpha_floor": 0.5},
        {"targets": "topk", "normalize": True, "alpha_floor": 0.6},
        {"targets": "hard", "normalize": False, "alpha_floor": 0.6},
        {"targets": "hard", "normalize": True, "alpha_floor": 0.55},
    ],
)
def test_targets_supported_on_m_never_leave_it(config):
    np.testing.assert_array_equal(sc.soft_target_fractions(np.random.default_rng(1), 1_000, **config), 0.0)


@pytest.mark.parametrize(
    "config",
    [
        {"targets": "soft", "normalize": False, "alpha_floor": 0.5},
        {"targets": "soft", "normalize": True, "alpha_floor": 0.55},
    ],
)
def test_soft_targets_leave_m_in_either_form(config):
    assert sc.soft_target_fractions(np.random.default_rng(1), 1_000, **config).min() > 0


def test_soft_targets_check_reads_slams_defaults_at_run_time(monkeypatch):
    from robustdistill.algorithms import methods

    original = methods.SLaM
    monkeypatch.setattr(methods, "SLaM", lambda: original(**OLD_DEFAULT))
    result = sc.check_s1_soft_targets(np.random.default_rng(0), 2_000)
    assert not result.holds and result.measured > 0.1 and result.interval[0] > 0
    assert "targets = 'soft'" in result.claim
    monkeypatch.setattr(methods, "SLaM", original)
    result = sc.check_s1_soft_targets(np.random.default_rng(0), 2_000)
    assert result.holds and result.measured == 0.0
    assert f"targets = {original().targets!r}" in result.claim


def test_the_symmetric_log_form_is_exact_where_the_spec_form_loses_ulps():
    alpha = np.array([0.6, 0.9, 1 - 1e-9])
    for t in (-1000.0, -1e6):
        ours = sc.binary_log_mix(np.full(3, t), alpha)
        spec = sc.binary_log_mix_spec(np.full(3, t), alpha)
        np.testing.assert_array_equal(ours[0], np.log1p(-alpha))
        np.testing.assert_array_equal(ours[1], np.log(alpha))
        assert np.abs(spec[0] - ours[0]).max() <= 4 * abs(t) * np.finfo(float).eps
    t = np.linspace(-30, 30, 61)
    for a, b in zip(sc.binary_log_mix(t, 0.7), sc.binary_log_mix_spec(t, 0.7)):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)


def test_gradient_bound_ends():
    assert sc.gradient_bound(1.0) == 1.0
    assert sc.gradient_bound(0.5) == 0.0
    assert sc.gradient_bound(0.75) == pytest.approx(min(0.5 / (4 * 0.25), 0.75 / 0.5))


@pytest.mark.slow
def test_full_checks_hold():
    results = run_checks(quick=False, rng=0, only=["slam"])
    assert [c.name for c in results] == NAMES
    for check in results:
        assert check.holds, check
