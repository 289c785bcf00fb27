"""The simulators behind `robustdistill verify`: they pass on the real solver and fail on a broken one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robustdistill.algorithms.query_game import solve_query_game
from robustdistill.theory import simulators
from robustdistill.theory.simulators import rad_checks
from robustdistill.theory.simulators import CheckResult, run_checks

NAMES = ["P1", "P2", "P3-exact", "P3-MC", "P4", "P5", "P6", "R1", "R2", "R3", "R4"]


@pytest.fixture(scope="module")
def quick_results():
    return run_checks(quick=True, rng=0, only=["rad"])


def test_every_check_holds(quick_results):
    assert [c.name for c in quick_results] == NAMES
    for check in quick_results:
        assert isinstance(check, CheckResult)
        assert check.holds, check
        assert check.claim and np.isfinite(check.bound) and np.isfinite(check.measured)
        low, high = check.interval
        assert low <= check.measured <= high or check.name == "P3-MC"
        assert isinstance(check.to_dict()["holds"], bool)


def test_monte_carlo_interval_contains_the_value(quick_results):
    """P3-MC: the best response's expected gain is exactly V*; its 3-SE interval must cover it (fixed
    seed; the false-failure probability of a 3-SE two-sided interval is 0.27% per seed)."""
    mc = next(c for c in quick_results if c.name == "P3-MC")
    assert mc.bound == pytest.approx(0.602631, abs=1e-6)
    assert mc.interval[0] <= mc.bound <= mc.interval[1]


def test_checks_are_deterministic_under_a_seed():
    a = run_checks(quick=True, rng=3, only=["rad"])
    b = run_checks(quick=True, rng=3, only=["rad"])
    assert [x.to_dict() for x in a] == [y.to_dict() for y in b]


def _uniform_solver(gains, budget, mistakes):
    """A suboptimal 'solver': uniform marginals."""
    sol = solve_query_game(gains, budget, mistakes)
    p = np.full(len(gains), budget / len(gains))
    q = p * np.asarray(gains)
    value = float(np.sort(q)[: max(len(q) - mistakes, 0)].sum())
    return dataclasses.replace(sol, probabilities=p, value=value)


def test_checks_fail_on_a_broken_solver(monkeypatch):
    monkeypatch.setattr(rad_checks, "solve_query_game", _uniform_solver)
    rng = np.random.default_rng(0)
    assert not rad_checks.check_p1(rng, 30).holds  # value below the LP's
    assert not rad_checks.check_p5(rng, 30).holds  # no longer beats greedy in the worst case


def test_p6_fails_on_a_reversed_adversary(monkeypatch):
    def reversed_adversary(gains, budget, mistakes):
        sol = solve_query_game(gains, budget, mistakes)
        order = np.argsort(gains, kind="stable")
        r = np.empty_like(sol.adversary)
        r[order] = np.sort(sol.adversary)[::-1]  # the largest mistake mass on the smallest gain
        return dataclasses.replace(sol, adversary=r)

    monkeypatch.setattr(rad_checks, "solve_query_game", reversed_adversary)
    assert not rad_checks.check_p6(np.random.default_rng(0), 50).holds


def test_registry_names_are_unique_and_groups_are_known():
    names = [c.name for c in simulators.CHECKS]
    assert len(names) == len(set(names))
    assert {c.group for c in simulators.CHECKS} <= set(simulators.GROUPS)
    with pytest.raises(ValueError, match="only must name groups"):
        run_checks(only=["nope"])


@pytest.mark.slow
def test_full_checks_hold():
    for check in run_checks(quick=False, rng=0):
        assert check.holds, check
