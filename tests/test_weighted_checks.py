"""The Weighted Distillation simulators (``docs/theory/weighted.md#weighted-guarantees``): they hold on the real weights and targets,
are deterministic under a seed, and fail when the thing they check is broken.

The Monte-Carlo checks run at fixed seeds; their false-failure probabilities are stated in the checks (4 SE:
6.3e-5 two-sided under the normal approximation; the W-L7 binomial test: 1e-4)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robustdistill.theory.simulators import CheckResult, run_checks
from robustdistill.theory.simulators import weighted_checks as wc

#: Its module fixture is computed once: every test of this module runs on the same xdist worker.
pytestmark = pytest.mark.xdist_group("test_weighted_checks")

NAMES = [
    "W-L1",
    "W-L2",
    "W-L2-mean",
    "W-L2-rate",
    "W-L3",
    "W-L4",
    "W-L5",
    "W-L5-grad",
    "W-F6",
    "W-L7",
    "W-L7-iso",
    "W-6.8",
]
EXACT_CHECKS = {"W-L1", "W-L2", "W-L3", "W-L5", "W-F6"}


@pytest.fixture(scope="module")
def quick_results():
    return run_checks(quick=True, rng=0, only=["weighted"])


def test_every_weighted_check_holds(quick_results):
    assert [c.name for c in quick_results] == NAMES
    for check in quick_results:
        assert isinstance(check, CheckResult)
        assert check.holds, check
        assert np.isfinite(check.bound) and np.isfinite(check.measured)
        assert "(our formulation)" in check.claim
        assert "theorem" not in check.claim.lower() and "paper's" not in check.claim
        low, high = check.interval
        assert low <= high
        if check.name in EXACT_CHECKS:  # worst case over instances, held to 1e-12
            assert check.bound == 1e-12 and low <= check.measured <= high <= 1e-12
        assert isinstance(check.to_dict()["holds"], bool)


# Smaller sizes for the checks that dominate the quick run (the determinism test runs everything twice).
SMALLER = {
    "W-L2-rate": {"ns": (1_000, 10_000), "reps": 5},
    "W-L7": {"bins": 10, "per_bin": 60, "delta": 0.05, "trials": 200},
    "W-6.8": 50_000,
}


def _run_all(seed):
    streams = np.random.default_rng(seed).spawn(len(wc.CHECKS))
    return [c.run(s, SMALLER.get(c.name, c.quick)).to_dict() for c, s in zip(wc.CHECKS, streams)]


def test_checks_are_deterministic_under_a_seed():
    first = _run_all(7)
    assert first == _run_all(7)
    other = _run_all(8)
    monte_carlo = {"W-L2-mean", "W-L2-rate", "W-L4", "W-L5-grad", "W-L7", "W-L7-iso", "W-6.8"}
    for a, b in zip(first, other):
        if a["name"] in monte_carlo:  # the seed is used
            assert a["measured"] != b["measured"], a["name"]


def test_registry():
    assert [c.name for c in wc.CHECKS] == NAMES
    assert {c.group for c in wc.CHECKS} == {"weighted"}
    full = {c.name: c.full for c in wc.CHECKS}
    assert full["W-L4"] == 400_000 and full["W-6.8"] == 400_000
    assert full["W-L7"] == {"bins": 10, "per_bin": 60, "delta": 0.05, "trials": 4_000}
    assert full["W-L7-iso"] == {"n_vs": (200, 500, 5_000), "seeds": 30}
    assert full["W-L2-rate"]["ns"] == (10_000, 100_000, 1_000_000)


def test_fact6_ratio_numbers():
    """The theory page's 0.83 (t = 0.5) and 0.075 (t = 3) at eta = 0.2, y = 1 (rounded): 0.8258 and 0.0749."""
    low, high = wc.fact6_ratio(np.array([0.5, 3.0]))
    assert low == pytest.approx(0.8258, abs=5e-5) and high == pytest.approx(0.0749, abs=5e-5)


def test_massart_angles_shape_and_slacks():
    angles = wc.massart_halfspace_angles(np.random.default_rng(0), 5_000, steps=5)
    assert set(angles) == {"averaging", "logistic", "sigmoid"}
    for row in angles.values():
        assert tuple(row) == wc.MASSART_SCHEMES
        assert all(0.0 <= v <= 180.0 for v in row.values())
    spec_table = {  # the prototype's table (W-6.8, docs/theory/weighted.md)
        "averaging": {"uniform": 16.0, "inverse": 0.9, "signal": 18.0, "accuracy": 17.0},
        "logistic": {"uniform": 16.0, "inverse": 24.0, "signal": 5.0, "accuracy": 12.0},
        "sigmoid": {"uniform": 4.3, "inverse": 0.5, "signal": 4.5, "accuracy": 4.4},
    }
    assert min(wc.massart_slacks(spec_table).values()) > 0
    swapped = {**spec_table, "logistic": {**spec_table["logistic"], "inverse": 5.0, "signal": 24.0}}
    assert min(wc.massart_slacks(swapped).values()) < 0


def _reference_angles(rng, n, steps):
    """§6.8 written out plainly: float64, per-example weights, scipy's expit, one descent at a time."""
    from scipy.special import expit

    x, _, eta, y_noisy = wc.massart_data(rng, n)
    z = y_noisy[:, None] * x
    out = {"averaging": {}, "logistic": {}, "sigmoid": {}}
    for scheme in wc.MASSART_SCHEMES:
        w = wc.normalize_weights(wc.distillation_weights(1.0 - eta, 2, scheme))
        out["averaging"][scheme] = wc._angle_deg(w @ z)
        for loss in ("logistic", "sigmoid"):
            theta = np.zeros(5)
            for _ in range(steps):
                m = z @ theta
                slope = expit(-m) if loss == "logistic" else expit(m) * expit(-m)  # -l'(m)
                theta += (w * slope) @ z / n
            out[loss][scheme] = wc._angle_deg(theta)
    return out


@pytest.mark.parametrize("per_example_weights", [False, True])
def test_massart_descent_matches_a_plain_reference(monkeypatch, per_example_weights):
    if per_example_weights:  # weights that are not constant per region: the fallback path
        real = wc.distillation_weights
        monkeypatch.setattr(
            wc,
            "distillation_weights",
            lambda alpha, k, scheme: real(alpha, k, scheme) * (1.0 + 0.5 * np.sin(np.arange(len(alpha)))),
        )
    fast = wc.massart_halfspace_angles(np.random.default_rng(5), 3_000, steps=40)
    ref = _reference_angles(np.random.default_rng(5), 3_000, steps=40)
    for est in ref:
        for scheme in wc.MASSART_SCHEMES:
            assert fast[est][scheme] == pytest.approx(ref[est][scheme], abs=2e-3), (est, scheme)


# --------------------------------------------------------------------------------------------------------
# Each check can fail


def _uniform_weights(alpha, num_classes, scheme="accuracy", *, return_info=False):
    """A broken weight map: vanilla weights whatever the scheme."""
    return np.ones(np.shape(alpha))


@pytest.fixture
def uniform_weights(monkeypatch):
    monkeypatch.setattr(wc, "distillation_weights", _uniform_weights)


def rng():
    return np.random.default_rng(0)


SMALL_L1 = {"n": 2_000, "threshold_n": 1_000, "grid": 101}


def test_lemma1_fails_without_the_inverse_weights(uniform_weights):
    result = wc.check_lemma1(rng(), SMALL_L1)
    assert not result.holds and result.measured > 1e-3


def test_lemma1_fails_on_a_non_symmetric_loss(monkeypatch):
    assert wc.check_lemma1(rng(), SMALL_L1).holds
    monkeypatch.setitem(wc._SYMMETRIC_LOSSES, "logistic", lambda t, y: np.logaddexp(0.0, -y * t))
    assert not wc.check_lemma1(rng(), SMALL_L1).holds


def test_lemma1_threshold_experiment_moves_without_weights(uniform_weights):
    exp = wc._threshold_experiment(rng(), 1_000, 101)
    assert exp["weighted"] == exp["unweighted"] != exp["clean"]


def test_lemma2_checks_fail_without_the_inverse_weights(uniform_weights):
    assert not wc.check_lemma2(rng(), 2_000).holds
    assert not wc.check_lemma2_mean(rng(), 20_000).holds
    assert not wc.check_lemma2_rate(rng(), {"ns": (1_000, 10_000), "reps": 10}).holds


def test_lemma3_fails_without_debiasing(monkeypatch):
    monkeypatch.setattr(wc, "debiased_targets", lambda t, alpha: np.asarray(t, dtype=float))
    result = wc.check_lemma3(rng(), 2_000)
    assert not result.holds and result.measured > 1e-3


def test_lemma3_fails_on_wrong_kappa_floor(monkeypatch):
    """debiased_targets with the floor applied everywhere (alpha_eff = 1/K + kappa): no longer p."""
    real = wc.debiased_targets
    monkeypatch.setattr(wc, "debiased_targets", lambda t, alpha: real(t, np.zeros(np.shape(t)[0])))
    assert not wc.check_lemma3(rng(), 2_000).holds


def test_lemma4_fails_without_the_accuracy_weights(uniform_weights):
    result = wc.check_lemma4(rng(), 20_000)
    assert not result.holds and not result.interval[0] <= 0.0 <= result.interval[1]


def test_lemma5_gradient_fails_when_not_increasing(monkeypatch):
    monkeypatch.setattr(wc, "GRADIENT_ETAS", (0.1, 0.45, 0.3))
    result = wc.check_lemma5_gradient(rng(), 10_000)
    assert not result.holds and result.measured == np.inf


def test_fact6_fails_on_a_wrong_identity_or_a_constant_ratio(monkeypatch):
    assert wc.check_fact6(rng(), 1_000).holds
    with monkeypatch.context() as m:
        m.setattr(wc, "_noisy_logistic", lambda t, y, eta: (1 - eta) * wc._logistic(y * t))  # drops a term
        assert not wc.check_fact6(rng(), 1_000).holds
    with monkeypatch.context() as m:
        m.setattr(wc, "fact6_ratio", lambda t, eta=0.2, y=1.0: np.ones_like(np.asarray(t, dtype=float)))
        result = wc.check_fact6(rng(), 1_000)
        assert not result.holds and result.measured == np.inf


L7_SMALL = {"bins": 10, "per_bin": 60, "delta": 0.05, "trials": 300}


def test_lemma7_fails_with_a_too_small_radius(monkeypatch):
    assert wc.check_lemma7(rng(), L7_SMALL).holds
    real = wc.binned_accuracy

    def shrunk(*args, **kwargs):
        res = real(*args, **kwargs)
        return dataclasses.replace(res, hoeffding_radius=res.hoeffding_radius / 3)

    monkeypatch.setattr(wc, "binned_accuracy", shrunk)
    result = wc.check_lemma7(rng(), L7_SMALL)
    assert not result.holds and result.measured > result.bound and result.interval[0] > result.bound


def test_lemma7_fails_when_the_bins_do_not_match_the_regions(monkeypatch):
    real = wc.binned_accuracy
    monkeypatch.setattr(wc, "binned_accuracy", lambda *args, **kwargs: real(*args, **{**kwargs, "n_bins": 5}))
    result = wc.check_lemma7(rng(), L7_SMALL)
    assert not result.holds and "not checked" in result.claim


def test_lemma7_isotonic_fails_when_more_data_does_not_help(monkeypatch):
    real = wc.fit_teacher_accuracy
    monkeypatch.setattr(wc, "fit_teacher_accuracy", lambda t, y, feature="margin": real(t[:100], y[:100], feature))
    result = wc.check_lemma7_isotonic(rng(), {"n_vs": (200, 500, 5_000), "seeds": 3})
    assert not result.holds and result.measured >= 0


def test_massart_fails_without_the_weights(uniform_weights):
    result = wc.check_massart_halfspace(rng(), 50_000)
    assert not result.holds and result.measured < 0
    assert "averaging u/i/s/a" in result.claim


@pytest.mark.slow
def test_full_weighted_checks_hold():
    for check in run_checks(quick=False, rng=0, only=["weighted"]):
        assert check.holds, check
