"""The S2/S3 simulators on margin halfspaces (robustdistill.theory.simulators.halfspace_checks): the exponent fit
recovers known exponents, the checks hold in quick mode, and they fail when the learner is broken."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robustdistill.theory import halfspace as H
from robustdistill.theory.simulators import halfspace_checks as HC


def _rows(gamma_exp: float, eps_exp: float, noise_exp: float = 0.0, etas=(0.2,), dim_exp: float = 0.0, dims=(10,)):
    """Sample-complexity rows with n = 30 gamma^-a eps^-b (1 - 2 eta)^-c d^e exactly."""
    rows = []
    for dim in dims:
        for gamma in (0.2, 0.1, 0.05):
            for eta in etas:
                med = {
                    str(eps): 30.0 * gamma**-gamma_exp * eps**-eps_exp * (1 - 2 * eta) ** -noise_exp * dim**dim_exp
                    for eps in (0.1, 0.05, 0.02)
                }
                rows.append({"dim": dim, "margin": gamma, "noise_rate": eta, "median": med})
    return rows


def test_fit_recovers_exact_exponents():
    fit = HC.fit_exponents(_rows(2.0, 1.0))
    assert fit["gamma_slope"] == pytest.approx(2.0, abs=1e-10)
    assert fit["eps_slope"] == pytest.approx(1.0, abs=1e-10)
    assert fit["cells"] == 9 and fit["censored"] == [] and "noise_slope" not in fit
    fit = HC.fit_exponents(_rows(0.5, 2.0, 3.0, etas=(0.1, 0.3)))
    assert (fit["gamma_slope"], fit["eps_slope"], fit["noise_slope"]) == pytest.approx((0.5, 2.0, 3.0), abs=1e-10)
    fit = HC.fit_exponents(_rows(1.5, 1.0, 2.0, etas=(0.1, 0.3), dim_exp=0.5, dims=(10, 50)))
    assert (fit["gamma_slope"], fit["eps_slope"], fit["noise_slope"], fit["dim_slope"]) == pytest.approx(
        (1.5, 1.0, 2.0, 0.5), abs=1e-10
    )
    assert fit["cells"] == 36


def test_censored_cells_are_reported_and_fail_the_scaling_check(monkeypatch):
    rows = _rows(1.0, 1.0)
    rows[0]["median"]["0.02"] = float("inf")
    fit = HC.fit_exponents(rows)
    assert fit["censored"] == [[0.2, 0.02, 0.2]] and fit["cells"] == 8
    monkeypatch.setattr(HC, "sample_complexity", lambda rng, **size: rows)
    result = HC.check_s2_scaling(
        np.random.default_rng(0), {"dims": (2,), "margins": (), "epsilons": (), "noise_rates": (), "seeds": 1}
    )
    assert not result.holds


@pytest.mark.parametrize("check", HC.CHECKS, ids=lambda c: c.name)
def test_quick_checks_hold_and_carry_json_data(check):
    result = check.run(np.random.default_rng(0), check.quick)
    assert result.holds, result.claim
    assert result.data is not None
    json.dumps(result.to_dict()["data"])  # JSON-ready


def test_long_servedio_check_fails_when_the_learner_is_plain_logistic(monkeypatch):
    """With the forward adjustment switched off (eta = 0 inside the learner) the separation disappears."""
    real = H.learn_halfspace_rcn
    monkeypatch.setattr(H, "learn_halfspace_rcn", lambda x, y, eta, **kw: real(x, y, 0.0, **kw))
    check = next(c for c in HC.CHECKS if c.name == "S2-LS")
    assert not check.run(np.random.default_rng(0), check.quick).holds


def test_convergence_check_fails_on_a_gradient_beyond_the_bound(monkeypatch):
    """S3 compares the recorded norms with G_alpha: a learner run with a larger step of a steeper loss
    (the logistic derivative, bound 1 > G_0.7 = 1/3) breaks it."""
    real = H.forward_adjusted_sgd
    monkeypatch.setattr(H, "forward_adjusted_sgd", lambda x, y, eta, radius, track=(): real(x, y, 0.0, radius, track))
    check = next(c for c in HC.CHECKS if c.name == "S3-convergence")
    assert not check.run(np.random.default_rng(0), check.quick).holds
