"""The simulators behind `robustdistill verify`: they pass on the real solver and fail on a broken one."""

from __future__ import annotations

import dataclasses
import operator
import re

import numpy as np
import pytest

from robustdistill.algorithms.query_game import solve_query_game
from robustdistill.experiments.cli.jobs import checks_page, verify_table
from robustdistill.theory import simulators
from robustdistill.theory.simulators import CheckResult, rad_checks, run_checks
from robustdistill.theory.simulators.checks import COMPARATORS

#: Its module fixture is computed once: every test of this module runs on the same xdist worker.
pytestmark = pytest.mark.xdist_group("test_simulators")

NAMES = ["P1", "P2", "P3-exact", "P3-MC", "P4", "P5", "P6", "R1", "R2", "R3", "R4"]


@pytest.fixture(scope="module")
def all_quick_results():
    """Every registered check at its quick size (about 30 s on one core)."""
    return run_checks(quick=True, rng=0)


@pytest.fixture(scope="module")
def quick_results(all_quick_results):
    """The rad group: the same results as ``run_checks(quick=True, rng=0, only=["rad"])`` (own child streams)."""
    rad = {c.name for c in simulators.CHECKS if c.group == "rad"}
    return [c for c in all_quick_results if c.name in rad]


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


OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}
#: A free-text comparator that ends in a comparison of the measurement with the bound (``... and measured <=``,
#: ``... measured - 1e-12 <=``): that comparison is necessary for ``holds``.
TRAILING = re.compile(r"measured(?: ([+-]) ([0-9.e+-]+))? (<=|>=|<|>|==)$")


def _comparator_mismatches(results) -> list[str]:
    """Checks whose comparator does not say what ``holds`` means: an operator must give ``holds ==
    (measured OP bound)``, ``in`` must give ``holds == (low <= bound <= high)``, and a text ending in a
    comparison of the measurement must not hold when that comparison fails."""
    bad = []
    for c in results:
        if not isinstance(c.comparator, str) or not c.comparator.strip():
            bad.append(f"{c.name}: no comparator ({c.comparator!r})")
        elif c.comparator in OPERATORS:
            if OPERATORS[c.comparator](c.measured, c.bound) != c.holds:
                bad.append(f"{c.name}: measured {c.measured!r} {c.comparator} bound {c.bound!r} is not holds={c.holds}")
        elif c.comparator == "in":
            if (c.interval[0] <= c.bound <= c.interval[1]) != c.holds:
                bad.append(f"{c.name}: bound {c.bound!r} in {c.interval} is not holds={c.holds}")
        elif (m := TRAILING.search(c.comparator)) is not None:
            sign, offset, op = m.groups()
            lhs = c.measured + (float(offset) if sign == "+" else -float(offset) if sign == "-" else 0.0)
            if c.holds and not OPERATORS[op](lhs, c.bound):
                bad.append(f"{c.name}: holds although {c.comparator} {c.bound!r} fails at measured {c.measured!r}")
    return bad


def test_every_check_states_how_holds_follows_from_its_numbers(all_quick_results):
    assert [c.name for c in all_quick_results] == [c.name for c in simulators.CHECKS]
    for c in all_quick_results:
        assert c.comparator in COMPARATORS or (isinstance(c.comparator, str) and c.comparator.strip()), c.name
        assert c.to_dict()["comparator"] == c.comparator
    assert _comparator_mismatches(all_quick_results) == []


def test_a_flipped_comparator_is_caught(all_quick_results):
    flip = {"<=": ">", ">=": "<", "<": ">=", ">": "<="}
    by_op = {c.comparator: c for c in all_quick_results if c.comparator in flip}
    assert set(by_op) == set(flip)  # every direction occurs among the checks
    for op, check in by_op.items():
        wrong = dataclasses.replace(check, comparator=flip[op])
        assert _comparator_mismatches([wrong]), wrong
    inside = next(c for c in all_quick_results if c.comparator == "in")
    assert _comparator_mismatches([dataclasses.replace(inside, bound=inside.interval[1] + 1.0)])
    text = next(c for c in all_quick_results if c.name == "S0-F3-MC")
    assert _comparator_mismatches([dataclasses.replace(text, comparator=text.comparator[:-2] + ">=")])


def test_a_check_result_needs_a_comparator():
    with pytest.raises(TypeError, match="comparator"):
        CheckResult("X", "a claim", 1e-9, 0.0, (0.0, 0.0), True)  # type: ignore[call-arg]
    for missing in ("", "  ", None):
        with pytest.raises(ValueError, match="comparator must be one of"):
            CheckResult("X", "a claim", 1e-9, 0.0, (0.0, 0.0), True, comparator=missing)  # type: ignore[arg-type]


def test_verify_table_and_checks_page_put_the_comparator_between_measured_and_bound():
    records = [
        CheckResult("P1", "a claim", 1e-9, 2e-15, (0.0, 2e-15), True, comparator="<=").to_dict(),
        CheckResult("M", "a mean", 0.5, 0.49, (0.4, 0.6), True, comparator="in").to_dict(),
        CheckResult(
            "T", "two conditions", 0.05, 0.0, (0.0, 0.5), True, comparator="other >= 0.45 and measured <="
        ).to_dict(),
        {"name": "old", "claim": "no comparator", "bound": 0.25, "measured": 0.0, "interval": [0, 0], "holds": True},
    ]
    table = verify_table(records).splitlines()
    assert table[0].split() == ["check", "claim", "measured", "test", "interval", "holds"]
    assert "measured <= 1e-09" in table[2] and "0.5 in interval" in table[3]
    assert "other >= 0.45 and measured <= 0.05" in table[4] and "0.25" in table[5]
    rows = [line for line in checks_page({"checks": records}).splitlines() if line.startswith("| ")]
    assert rows[0] == "| check | claim | measured | test | interval | holds |"
    assert [r.split(" | ")[3] for r in rows[1:]] == [
        "measured <= 1e-09",
        "0.5 in interval",
        "other >= 0.45 and measured <= 0.05",
        "0.25",
    ]


@pytest.mark.slow
def test_full_checks_hold():
    for check in run_checks(quick=False, rng=0):
        assert check.holds, check
