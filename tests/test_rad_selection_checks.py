"""RAD vs greedy top-b and uniform selection under gain-correlated mistakes (theory.rad_selection_checks):
exact expectations against brute-force enumeration, the worked example's numbers (docs/theory/rad.md#rad-worked-examples), the checks R1-R4 and their
failure on broken inputs."""

from __future__ import annotations

import dataclasses
import doctest
import json
from itertools import combinations, product
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import close, games

from robustdistill.algorithms.query_game import solve_query_game
from robustdistill.algorithms.rad import depround
from robustdistill.theory import selection_value
from robustdistill.theory.simulators import rad_selection_checks as R
from robustdistill.theory.simulators.rad_checks import random_game

#: Its module fixture is computed once: every test of this module runs on the same xdist worker.
pytestmark = pytest.mark.xdist_group("test_rad_selection_checks")

SPEC_GAINS = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
NAMES = ["R1", "R2", "R3", "R4"]

# --- brute force: distributions over batches and mistake patterns as lists of (set, probability) -------


def top_k_sets(scores: np.ndarray, k: int) -> list[tuple[frozenset, float]]:
    """Every top-k set (ties at the k-th score broken every possible way), equally likely."""
    n = scores.size
    if k >= n:
        return [(frozenset(range(n)), 1.0)]
    if k == 0:
        return [(frozenset(), 1.0)]
    kth = sorted(scores.tolist(), reverse=True)[k - 1]
    above = [i for i in range(n) if scores[i] > kth]
    tied = [i for i in range(n) if scores[i] == kth]
    picks = list(combinations(tied, k - len(above)))
    return [(frozenset(above) | frozenset(c), 1.0 / len(picks)) for c in picks]


def uniform_sets(n: int, k: int) -> list[tuple[frozenset, float]]:
    k = min(k, n)
    return [(frozenset(c), 1.0 / comb(n, k)) for c in combinations(range(n), k)]


def bernoulli_sets(pi: np.ndarray) -> list[tuple[frozenset, float]]:
    out = []
    for bits in product([0, 1], repeat=pi.size):
        wrong = np.array(bits, dtype=bool)
        out.append((frozenset(np.flatnonzero(wrong).tolist()), float(np.prod(np.where(wrong, pi, 1 - pi)))))
    return out


def expectation(batches, patterns, g) -> float:
    """E[sum_{i in S, i not wrong} g_i] with S and the mistake set W independent."""
    return sum(ps * pw * sum(g[i] for i in S if i not in W) for S, ps in batches for W, pw in patterns)


def marginals_of(sets, n: int) -> np.ndarray:
    out = np.zeros(n)
    for W, pw in sets:
        out[list(W)] += pw
    return out


def bisection_marginals(w: np.ndarray, total: float) -> np.ndarray:
    """min(1, c w) with sum = total, c by bisection: an independent reference for capped_proportional."""
    lo, hi = 0.0, 1.0
    while np.minimum(1.0, hi * w).sum() < total:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.minimum(1.0, mid * w).sum() < total else (lo, mid)
    return np.minimum(1.0, hi * w)


# --- exact expectations against enumeration ------------------------------------------------------------


@settings(max_examples=40)
@given(games(max_n=7), st.sampled_from([0.0, 1.0, 3.0, 10.0]))
def test_expected_gains_match_enumeration(game, beta):
    g, b, m = game
    n = g.size
    sol = solve_query_game(g, b, m)
    batches = {"greedy": top_k_sets(g, b), "uniform": uniform_sets(n, b)}
    patterns = {
        "uniform": uniform_sets(n, m),
        "top-m": top_k_sets(g, m),
        "best-response": top_k_sets(sol.probabilities * g, m),
    }
    for model, sets in patterns.items():
        r = R.expected_gains(g, b, m, model)
        np.testing.assert_allclose(r.mistake_marginals, marginals_of(sets, n), rtol=0, atol=1e-12)
        for name, S in batches.items():
            assert close(getattr(r, name), expectation(S, sets, g), 1e-12), (model, name)
        # RAD: DepRound's batch has marginals p*, independent of the pattern
        w = marginals_of(sets, n)
        assert close(r.rad, float(np.sum(sol.probabilities * g * (1 - w))), 1e-12)
    # independent Bernoulli mistakes pi = min(1, c g^beta), sum pi = min(m, n) (our formulation)
    r = R.expected_gains(g, b, m, "gain-correlated", beta=beta)
    pi = r.mistake_marginals
    sets = bernoulli_sets(pi)
    assert abs(sum(len(W) * pw for W, pw in sets) - min(m, n)) <= 1e-9  # m mistakes in expectation
    for name, S in batches.items():
        assert close(getattr(r, name), expectation(S, sets, g), 1e-12), name


@settings(max_examples=40)
@given(games(max_n=7))
def test_worst_cases_match_enumeration(game):
    """Each selector's worst case over every pattern with <= m mistakes, by enumeration."""
    g, b, m = game
    n = g.size
    every = [frozenset(W) for k in range(min(m, n) + 1) for W in combinations(range(n), k)]
    r = R.expected_gains(g, b, m, "uniform")
    sol = solve_query_game(g, b, m)
    for name, batches in {"greedy": top_k_sets(g, b), "uniform": uniform_sets(n, b)}.items():
        worst = min(expectation(batches, [(W, 1.0)], g) for W in every)
        assert close(getattr(r, f"{name}_worst"), worst, 1e-12), name
    # RAD: the expectation over DepRound(p*) is sum_i p*_i g_i [i not wrong]
    q = sol.probabilities * g
    worst = min(sum(q[i] for i in range(n) if i not in W) for W in every)
    assert close(r.rad_worst, worst, 1e-12)
    assert close(r.rad_worst, r.value, 1e-12)


def test_depround_batches_realise_the_rad_expectation():
    """Monte Carlo: DepRound(p*) batches against Bernoulli(beta = 3) patterns; the exact expectation lies in
    the 4-SE interval (fixed seed; false-failure probability 6e-5 under the normal approximation)."""
    g, b, m, draws = SPEC_GAINS, 2, 3, 8000
    rng = np.random.default_rng(12)
    r = R.expected_gains(g, b, m, "gain-correlated", beta=3.0)
    p = solve_query_game(g, b, m).probabilities
    values = np.empty(draws)
    for d in range(draws):
        S = depround(p, rng=rng)
        right = rng.random(g.size) >= r.mistake_marginals
        values[d] = float(np.sum(g[S] * right[S]))
    se = values.std(ddof=1) / np.sqrt(draws)
    assert abs(values.mean() - r.rad) <= 4 * se


# --- marginals ------------------------------------------------------------------------------------------


@given(st.lists(st.sampled_from([0.0, 0.01, 0.3, 0.5, 1.0, 2.0, 7.5]), min_size=1, max_size=30), st.data())
def test_capped_proportional_matches_bisection(weights, data):
    w = np.array(weights)
    total = data.draw(st.floats(0.0, float(w.size)))
    pi = R.capped_proportional(w, total)
    assert np.all((pi >= 0) & (pi <= 1)) and abs(pi.sum() - total) <= 1e-9 * max(1.0, total)
    K = np.count_nonzero(w > 0)
    if total < K:
        np.testing.assert_allclose(pi, bisection_marginals(w, total), rtol=0, atol=1e-9)
        assert np.all(pi[w == 0] == 0)
    else:
        assert np.all(pi[w > 0] == 1)


@given(games(max_n=30), st.randoms(use_true_random=False))
def test_marginals_are_in_R_m_and_permutation_equivariant(game, random):
    g, b, m = game
    perm = np.array(random.sample(range(g.size), g.size))
    sol, sol_p = solve_query_game(g, b, m), solve_query_game(g[perm], b, m)
    for model in R.NOISE_MODELS:
        pi = R.mistake_marginals(g, m, model, beta=3.0, solution=sol)
        assert np.all((pi >= 0) & (pi <= 1)) and pi.sum() <= m + 1e-9
        pi_p = R.mistake_marginals(g[perm], m, model, beta=3.0, solution=sol_p)
        np.testing.assert_allclose(pi_p, pi[perm], rtol=0, atol=1e-12)


def test_beta_limits():
    """beta = 0 is m uniform points; large beta tends to the top-m pattern (without ties)."""
    g = np.array([0.3, 0.9, 0.1, 0.7, 0.5, 0.2])
    np.testing.assert_allclose(R.mistake_marginals(g, 2, "gain-correlated", beta=0.0), np.full(6, 2 / 6))
    np.testing.assert_allclose(
        R.mistake_marginals(g, 2, "gain-correlated", beta=200.0), R.top_marginals(g, 2), atol=1e-12
    )
    # fewer positive gains than mistakes: all positives wrong, the rest spread over the zeros (sum m)
    z = np.array([0.5, 0.0, 0.2, 0.0])
    np.testing.assert_allclose(R.mistake_marginals(z, 3, "gain-correlated", beta=1.0), [1, 0.5, 1, 0.5])


def test_top_marginals_ties_and_limits():
    s = np.array([0.5, 0.9, 0.5, 0.5, 0.1])
    np.testing.assert_allclose(R.top_marginals(s, 2), [1 / 3, 1, 1 / 3, 1 / 3, 0])
    np.testing.assert_allclose(R.top_marginals(s, 0), np.zeros(5))
    np.testing.assert_allclose(R.top_marginals(s, 9), np.ones(5))


# --- the worked example (b = 2, m = 3), by hand ----------------------------------------------------------


def test_spec_instance_by_hand():
    r = R.expected_gains(SPEC_GAINS, 2, 3, "top-m")
    assert r.value == pytest.approx(0.602631, abs=1e-6)
    assert (r.greedy_worst, r.uniform_worst) == (0.0, pytest.approx(0.43, abs=1e-12))  # the worked example
    # on the top-3 gains: greedy's (0.9, 0.8) are both wrong; uniform keeps 0.2 (4.55 - 2.4); RAD's q* are all
    # equal (c = 0.200877 on 6 points) so the top gains are a best response and RAD gets V* = 3c
    assert (r.greedy, r.uniform) == (0.0, pytest.approx(0.43, abs=1e-12))
    assert r.rad == pytest.approx(0.602631, abs=1e-6)
    # m uniform points (beta = 0): every point wrong with probability 3/10
    u = R.expected_gains(SPEC_GAINS, 2, 3, "uniform")
    assert u.greedy == pytest.approx(0.7 * 1.7, abs=1e-12)
    assert u.uniform == pytest.approx(0.7 * 0.2 * 4.55, abs=1e-12)
    assert u.rad == pytest.approx(0.7 * 6 * 0.602631 / 3, abs=1e-6)  # 0.7 * sum q* = 0.7 * 6c
    # the equilibrium r* (docs/theory/rad.md#rad-certificate): RAD and greedy get V*, uniform less
    e = R.expected_gains(SPEC_GAINS, 2, 3, "equilibrium")
    np.testing.assert_allclose(e.mistake_marginals[:6], [0.6652, 0.6234, 0.5695, 0.4978, 0.3974, 0.2467], atol=1e-4)
    assert e.rad == pytest.approx(0.602631, abs=1e-6) and e.greedy <= e.rad + 1e-12 and e.uniform < e.rad


def test_worst_case_curve_on_spec_gains():
    c = R.worst_case_curve(SPEC_GAINS, 2, [0, 1, 2, 3, 10, 12])
    np.testing.assert_allclose(c.greedy, [1.7, 0.8, 0, 0, 0, 0], atol=1e-12)  # sum_{j=m+1}^{b} g_(j)
    np.testing.assert_allclose(c.uniform, 0.2 * np.array([4.55, 3.65, 2.85, 2.15, 0, 0]), atol=1e-12)
    # V*: the worked example for m = 0, 1, 3; m = 2 by the closed form b (k* - m)/S_k* with k* = 5,
    # S_5 = 1/0.9 + 1/0.8 + 1/0.7 + 1/0.6 + 1/0.5 = 7.456349 (valid: b/S_5 = 0.268 <= g_(5) = 0.5)
    s5 = 1 / 0.9 + 1 / 0.8 + 1 / 0.7 + 1 / 0.6 + 1 / 0.5
    np.testing.assert_allclose(c.rad, [1.7, 1.099636, 2 * 3 / s5, 0.602631, 0, 0], atol=1e-6)
    assert np.all(c.rad >= np.maximum(c.greedy, c.uniform) - 1e-12)
    assert json.loads(json.dumps(c.to_dict()))["mistakes"] == [0, 1, 2, 3, 10, 12]


def test_docstring_example():
    result = doctest.testmod(R, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_selector_marginals_are_in_P_b():
    p = R.selector_marginals(SPEC_GAINS, 2, 3)
    assert list(p) == list(R.SELECTORS)
    for x in p.values():
        assert np.all((x >= 0) & (x <= 1)) and x.sum() == pytest.approx(2, abs=1e-12)
    np.testing.assert_allclose(p["greedy"], [1, 1, 0, 0, 0, 0, 0, 0, 0, 0])


def test_comparison_table_shape_and_values():
    rows = R.compare_selectors(3, 8, max_n=30)
    assert len(rows) == len(R.TABLE_MODELS) * len(R.MISTAKE_RATIOS)
    json.dumps(rows)  # JSON-ready
    for row in rows:
        assert row["instances"] == 8
        if row["model"] == "beta=0":  # R4: greedy is optimal when mistakes ignore the gain
            assert row["rad_over_greedy_min"] <= 1 + 1e-12
        if row["model"] in ("top-m", "equilibrium"):  # R1, R3
            assert row["rad_over_greedy_min"] is None or row["rad_over_greedy_min"] >= 1 - 1e-12
            assert row["rad_over_uniform_min"] is None or row["rad_over_uniform_min"] >= 1 - 1e-12


# --- the registered checks -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_results():
    """R1-R4 at their quick sizes, each on its own stream (``run_checks`` runs P1-P6 too, which is slower;
    the registry is tested below and by test_simulators / test_cli)."""
    streams = np.random.default_rng(0).spawn(len(R.CHECKS))
    return {c.name: c.run(s, c.quick) for c, s in zip(R.CHECKS, streams)}


def test_checks_hold_in_quick_mode(quick_results):
    assert list(quick_results) == NAMES
    for check in quick_results.values():
        assert check.holds, check
        assert "our formulation" in check.claim
        low, high = check.interval
        assert low <= check.measured <= high
    curves = quick_results["R1"].data
    assert json.loads(json.dumps(curves))["spec_gains"]["greedy"][3] == 0.0
    table = quick_results["R4"].data["table"]
    assert {row["model"] for row in table} == {m[0] for m in R.TABLE_MODELS}


def test_new_checks_are_registered_last():
    from robustdistill.theory import simulators

    assert [c.name for c in simulators.CHECKS[-4:]] == NAMES
    assert all(c.group == "rad" for c in simulators.CHECKS[-4:])


def _uniform_solver(gains, budget, mistakes):
    """A suboptimal 'solver': uniform marginals (the real adversary and the uniform worst case)."""
    sol = solve_query_game(gains, budget, mistakes)
    g = np.asarray(gains, dtype=float)
    p = np.full(g.size, budget / g.size)
    q = p * g
    return dataclasses.replace(sol, probabilities=p, value=float(np.sort(q)[: max(q.size - mistakes, 0)].sum()))


def _greedy_solver(gains, budget, mistakes):
    sol = solve_query_game(gains, budget, mistakes)
    return dataclasses.replace(sol, probabilities=R.top_marginals(np.asarray(gains, dtype=float), budget))


def _reversed_adversary(gains, budget, mistakes):
    sol = solve_query_game(gains, budget, mistakes)
    order = np.argsort(gains, kind="stable")
    r = np.empty_like(sol.adversary)
    r[order] = np.sort(sol.adversary)[::-1]  # the most mistake mass on the smallest gains
    return dataclasses.replace(sol, adversary=r)


def _over_budget_solver(gains, budget, mistakes):
    sol = solve_query_game(gains, budget, mistakes)
    return dataclasses.replace(sol, probabilities=np.ones(len(gains)))  # sum n > b: not in P_b


@pytest.mark.parametrize(
    ("solver", "broken"),
    [
        (_uniform_solver, ["R1", "R2", "R3"]),
        (_greedy_solver, ["R1", "R2", "R3"]),
        (_reversed_adversary, ["R3"]),
        (_over_budget_solver, ["R4"]),
    ],
)
def test_checks_fail_on_a_broken_solver(monkeypatch, solver, broken):
    monkeypatch.setattr(R, "solve_query_game", solver)
    sizes = {"R1": {"instances": 40, "curve_n": 200}, "R2": 40, "R3": 40, "R4": {"instances": 10, "max_n": 40}}
    runs = {"R1": R.check_r1, "R2": R.check_r2, "R3": R.check_r3, "R4": R.check_r4}
    for name in broken:
        assert not runs[name](np.random.default_rng(0), sizes[name]).holds, name
    if "R1" in broken:  # R1's inequality itself fails on random instances, not only its worked example's numbers
        rng = np.random.default_rng(1)
        games_ = [random_game(rng) for _ in range(40)]
        assert any(r.rad < max(r.greedy, r.uniform) - 1e-9 for r in (R.expected_gains(*x, "top-m") for x in games_))


def test_r4_fails_with_a_wrong_greedy(monkeypatch):
    """Greedy replaced by the bottom-b gains: it no longer beats RAD when mistakes ignore the gain."""
    top = R.top_marginals
    wrong = lambda s, k: top(-np.asarray(s, dtype=float), k)  # noqa: E731
    monkeypatch.setattr(R, "top_marginals", wrong)
    monkeypatch.setattr(selection_value, "top_marginals", wrong)  # greedy's marginals live in the library module
    assert not R.check_r4(np.random.default_rng(0), {"instances": 10, "max_n": 40}).holds


def test_r1_fails_with_a_wrong_uniform_baseline(monkeypatch):
    """The closed-form identity of R1 is checked: a wrong baseline_worst_cases fails it."""
    monkeypatch.setattr(R, "baseline_worst_cases", lambda g, b, m: (0.0, 1e6))
    assert not R.check_r1(np.random.default_rng(0), {"instances": 10, "curve_n": 200}).holds


# --- input validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: R.mistake_marginals([0.5, 0.2], 1, "nope"), "model must be one of"),
        (lambda: R.mistake_marginals([0.5, 0.2], 1, "gain-correlated", beta=-1.0), "beta must be"),
        (lambda: R.mistake_marginals([0.5, 0.2], 1, "gain-correlated", beta=float("nan")), "beta must be"),
        (lambda: R.mistake_marginals([0.5, 0.2], 1, "best-response"), "needs the game's solution"),
        (
            lambda: R.mistake_marginals([0.5, 0.2], 1, "equilibrium", solution=solve_query_game([1.0], 1, 0)),
            "solution has 1 points",
        ),
        (lambda: R.mistake_marginals([0.5, -0.2], 1, "uniform"), "gains must be non-negative"),
        (lambda: R.mistake_marginals([0.5, 0.2], -1, "uniform"), "mistakes must be"),
        (lambda: R.expected_gains([0.5, 0.2], 3, 1, "uniform"), "budget must be"),
        (lambda: R.expected_gains([0.5, np.nan], 1, 1, "uniform"), "gains must be finite"),
        (lambda: R.capped_proportional([1.0, -1.0], 1.0), "weights must be non-negative"),
        (lambda: R.capped_proportional([1.0, 1.0], 3.0), r"total must lie in \[0, n\]"),
        (lambda: R.top_marginals([1.0, 2.0], -1), "k must be"),
        (lambda: R.expected_useful_gain([0.5, 0.5], [1.0, 1.0], [0.1]), "must have one shape"),
        (lambda: R.expected_useful_gain([0.5, 0.5], [1.0, 1.0], [0.1, 1.5]), r"mistake_marginals must lie in \[0, 1\]"),
        (lambda: R.worst_case_curve([0.5, 0.2], 1, [0, -1]), "mistakes_grid must hold non-negative integers"),
        (lambda: R.worst_case_curve([0.5, 0.2], 1, [0, 1.5]), "mistakes_grid must hold non-negative integers"),
        (lambda: R.compare_selectors(0, 0), "instances must be"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
