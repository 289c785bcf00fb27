"""The RAD query game: the O(n log n) solver against the LP oracle, its certificate, and its contract."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import close, games, top_sum

from robustdistill.algorithms.rad import QueryGameSolution, solve_query_game
from robustdistill.theory.query_game import closed_form, solve_exact, worst_case_value

SPEC_GAINS = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])


# --- the exact oracle --------------------------------------------------------------------------------


@settings(max_examples=150)
@given(games())
def test_value_equals_lp(game):
    g, b, m = game
    sol = solve_query_game(g, b, m)
    lp = solve_exact(g, b, m)
    assert close(sol.value, lp.value)
    # the adversary LP (min-max) reaches the same value: top_b(g (1 - r_lp)) = V*
    assert close(top_sum(g * (1 - lp.adversary), b), sol.value)


@given(games(max_n=60, min_positive=1e-12))
@example((np.r_[np.ones(12), 1e-12, 1e-12], 2, 12))  # tiny legitimate p = t*/g must not be snapped to 0
def test_solution_is_feasible_and_certified(game):
    g, b, m = game
    sol = solve_query_game(g, b, m)
    p, r = sol.probabilities, sol.adversary
    assert p.shape == r.shape == g.shape
    assert np.all((p >= 0) & (p <= 1)) and abs(p.sum() - b) <= 1e-9 * max(1, b)
    assert np.all((r >= 0) & (r <= 1)) and r.sum() <= m + 1e-9
    # the adversary's best response to p* achieves exactly V* ...
    assert close(worst_case_value(p, g, m), sol.value, 1e-12)
    # ... and the learner's best response to r* achieves exactly V*: both strategies are optimal
    assert close(top_sum(g * (1 - r), b), sol.value, 1e-12)
    assert sol.support_size == np.count_nonzero(p > 0)


@given(games(min_positive=1e-12), st.randoms(use_true_random=False))
def test_permuting_points_permutes_the_solution(game, random):
    g, b, m = game
    perm = np.array(random.sample(range(g.size), g.size))
    sol = solve_query_game(g, b, m)
    sol_p = solve_query_game(g[perm], b, m)
    np.testing.assert_allclose(sol_p.probabilities, sol.probabilities[perm], rtol=0, atol=1e-12)
    np.testing.assert_allclose(sol_p.adversary, sol.adversary[perm], rtol=0, atol=1e-12)
    assert close(sol_p.value, sol.value, 1e-12)


@given(games(min_positive=1e-12))
def test_tied_gains_get_equal_probability(game):
    g, b, m = game
    sol = solve_query_game(g, b, m)
    for value in np.unique(g):
        same = g == value
        assert np.ptp(sol.probabilities[same]) <= 1e-12
        assert np.ptp(sol.adversary[same]) <= 1e-12


@given(games(), st.floats(1e-3, 1e3))
def test_value_scales_with_gains(game, scale):
    g, b, m = game
    assert close(solve_query_game(scale * g, b, m).value, scale * solve_query_game(g, b, m).value, 1e-9)


# --- regimes ------------------------------------------------------------------------------------------


@given(games(min_positive=1e-12))
def test_no_mistakes_is_greedy_top_b(game):
    g, b, _ = game
    sol = solve_query_game(g, b, 0)
    order = np.sort(g)[::-1]
    assert close(sol.value, float(order[:b].sum()), 1e-12)
    if b:
        cut = order[b - 1]  # the b-th largest gain
        assert np.all(sol.probabilities[g > cut] == 1.0)
        assert np.all(sol.probabilities[g < cut] == 0.0)
        tied = g == cut  # the tie group at the cut shares the remaining budget equally
        np.testing.assert_allclose(sol.probabilities[tied], (b - np.count_nonzero(g > cut)) / tied.sum(), atol=1e-12)
    assert np.all(sol.adversary == 0)


@given(games(min_positive=1e-12))
def test_mistakes_at_least_positive_gains_gives_zero(game):
    g, b, _ = game
    N = int(np.count_nonzero(g > 0))
    sol = solve_query_game(g, b, N + 1)
    assert sol.value == 0.0
    if b < N:
        np.testing.assert_allclose(sol.probabilities, b / g.size)


@given(games(min_positive=1e-12))
def test_zero_gains_get_probability_only_when_forced(game):
    g, b, m = game
    N = int(np.count_nonzero(g > 0))
    sol = solve_query_game(g, b, m)
    if b <= N and m < N:
        assert np.all(sol.probabilities[g == 0] == 0.0)


def test_full_budget_and_empty_budget():
    g = np.array([0.5, 0.0, 0.2, 0.9, 0.0])
    full = solve_query_game(g, 5, 1)
    np.testing.assert_array_equal(full.probabilities, np.ones(5))
    assert full.value == pytest.approx(0.7)
    empty = solve_query_game(g, 0, 2)
    assert empty.value == 0.0 and empty.support_size == 0
    spread = solve_query_game(g, 4, 1)  # b > N = 3: one unit spread over the two zero gains
    np.testing.assert_allclose(spread.probabilities, [1, 0.5, 1, 1, 0.5])


@given(games())
def test_closed_form_is_exact_whenever_valid(game):
    g, b, m = game
    N = int(np.count_nonzero(g > 0))
    if m >= N:
        return
    info, p, r = closed_form(g, b, m)
    if info.valid:
        assert close(info.value, solve_query_game(g, b, m).value)
        assert close(worst_case_value(np.clip(p, 0, 1), g, m), info.value)
        assert close(top_sum(g * (1 - r), b), info.value)


# --- the worked test vectors of ``docs/theory/rad.md#rad-worked-examples`` ------------------------------------------------------


@pytest.mark.parametrize(
    "b, m, k_star, S, v_star, value, level, p_nonzero",
    [
        (2, 3, 6, 9.956349, 0.301315, 0.602631, 0.200877, [0.2232, 0.2511, 0.2870, 0.3348, 0.4018, 0.5022]),
        (3, 3, 6, 9.956349, 0.301315, 0.903946, 0.301315, [0.3348, 0.3766, 0.4305, 0.5022, 0.6026, 0.7533]),
        (1, 5, 8, 18.289683, 0.164027, 0.164027, 0.054676, None),
        (2, 1, 4, 5.456349, 0.549818, 1.099636, 0.366545, [0.4073, 0.4582, 0.5236, 0.6109]),
        (2, 0, None, None, None, 1.700000, 0.9, [1, 1]),
        (4, 1, None, None, None, 2.173611, 0.7, [0.7778, 0.875, 1, 1, 0.3472]),
    ],
)
def test_spec_vectors(b, m, k_star, S, v_star, value, level, p_nonzero):
    sol = solve_query_game(SPEC_GAINS, b, m)
    assert sol.value == pytest.approx(value, abs=1e-6)
    assert sol.level == pytest.approx(level, abs=1e-6)
    if p_nonzero is None:  # p = c / g over the top 8 with c = 0.054676
        p_nonzero = (0.054676 / SPEC_GAINS[:8]).tolist()
    np.testing.assert_allclose(sol.probabilities[: len(p_nonzero)], p_nonzero, atol=1e-4)
    assert np.all(sol.probabilities[len(p_nonzero) :] == 0)
    assert sol.support_size == len(p_nonzero)
    info, _, _ = closed_form(SPEC_GAINS, b, m)
    if k_star is None:  # the closed form's check must reject these
        assert not info.valid
    else:
        assert info.valid and info.k_star == k_star
        assert (info.S, info.v_star) == pytest.approx((S, v_star), abs=1e-6)


def test_spec_invalid_closed_form_claims():
    info, p, _ = closed_form(SPEC_GAINS, 2, 0)
    assert p[0] == pytest.approx(2.0) and not info.valid  # p_(1) = 2: infeasible
    info, p, _ = closed_form(SPEC_GAINS, 4, 1)
    assert info.value == pytest.approx(2.199273, abs=1e-6) and p[3] == pytest.approx(1.2218, abs=1e-4)


@pytest.mark.parametrize(
    "b, m, theta, r",
    [
        (2, 3, 0.301315, [0.6652, 0.6234, 0.5695, 0.4978, 0.3974, 0.2467, 0, 0, 0, 0]),
        (4, 1, 0.5, [0.4444, 0.375, 0.1806, 0, 0, 0, 0, 0, 0, 0]),
    ],
)
def test_spec_adversary_certificates(b, m, theta, r):
    sol = solve_query_game(SPEC_GAINS, b, m)
    assert sol.adversary_level == pytest.approx(theta, abs=1e-6)
    np.testing.assert_allclose(sol.adversary, r, atol=1e-4)
    assert top_sum(SPEC_GAINS * (1 - sol.adversary), b) == pytest.approx(sol.value, rel=1e-12)


def test_spec_worst_case_values():
    g, b, m = SPEC_GAINS, 2, 3
    greedy = np.zeros(10)
    greedy[:2] = 1
    assert worst_case_value(greedy, g, m) == pytest.approx(0.0, abs=1e-12)
    assert worst_case_value(np.full(10, 0.2), g, m) == pytest.approx(0.43, abs=1e-12)
    assert worst_case_value(solve_query_game(g, b, m).probabilities, g, m) == pytest.approx(0.602631, abs=1e-6)


# --- input contract -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gains, budget, mistakes, match",
    [
        ([0.1, np.nan], 1, 0, "gains must be finite"),
        ([0.1, np.inf], 1, 0, "gains must be finite"),
        ([0.1, -0.2], 1, 0, "gains must be non-negative"),
        ([], 0, 0, "gains is empty"),
        ([[0.1, 0.2]], 1, 0, r"gains must be 1-D"),
        ([0.1, 0.2], 3, 0, r"budget must be an integer in \[0, 2\]"),
        ([0.1, 0.2], -1, 0, r"budget must be an integer in \[0, 2\]"),
        ([0.1, 0.2], 1.5, 0, "budget must be an integer"),
        ([0.1, 0.2], 1, -1, "mistakes must be an integer"),
        ([0.1, 0.2], 1, 0.5, "mistakes must be an integer"),
    ],
)
def test_bad_input_raises_value_error(gains, budget, mistakes, match):
    with pytest.raises(ValueError, match=match):
        solve_query_game(np.array(gains, dtype=float), budget, mistakes)
    with pytest.raises(ValueError, match=match):
        solve_exact(np.array(gains, dtype=float), budget, mistakes)


@pytest.mark.parametrize("bad", ["2", None, True])
def test_bad_types_raise_type_error(bad):
    with pytest.raises(TypeError, match="budget"):
        solve_query_game(np.ones(3), bad, 0)


def test_unknown_lp_solver_is_rejected():
    with pytest.raises(ValueError, match="solver 'NOPE' is not installed"):
        solve_exact(np.ones(3), 1, 0, solver="NOPE")


def test_accepts_lists_and_torch_tensors():
    torch = pytest.importorskip("torch")
    ref = solve_query_game(SPEC_GAINS, 2, 3)
    assert solve_query_game(SPEC_GAINS.tolist(), 2, 3).value == ref.value
    assert solve_query_game(torch.tensor(SPEC_GAINS), 2, 3).value == ref.value


def test_solution_is_frozen_and_serialisable():
    sol = solve_query_game(SPEC_GAINS, 2, 3)
    assert isinstance(sol, QueryGameSolution)
    with pytest.raises(AttributeError):
        sol.value = 1.0
    with pytest.raises(ValueError):
        sol.probabilities[0] = 1.0  # read-only array
    d = sol.to_dict()
    assert d["support_size"] == 6 and len(d["probabilities"]) == 10 and isinstance(d["value"], float)


def test_large_pool_solution_matches_lp_value():
    """One larger instance (n = 2000, continuous gains) against the LP."""
    rng = np.random.default_rng(7)
    g = rng.beta(2, 5, 2000)
    for b, m in [(20, 100), (200, 5), (1000, 1500)]:
        assert close(solve_query_game(g, b, m).value, solve_exact(g, b, m).value)


def test_huge_gains_do_not_overflow():
    """Gains near the float64 maximum: the running sums would overflow (value 5e307 instead of the optimum
    1e308, with a RuntimeWarning, an error here); the game is homogeneous in the gains, so the solution is the
    rescaled one's."""
    sol = solve_query_game([1e308, 1e308, 1.0], 2, 1)
    assert sol.value == pytest.approx(1e308, rel=1e-12)
    small = solve_query_game([1.0, 1.0, 1e-308], 2, 1)
    np.testing.assert_array_equal(sol.probabilities, small.probabilities)
    assert worst_case_value(sol.probabilities, [1e308, 1e308, 1.0], 1) == pytest.approx(1e308, rel=1e-12)


def test_the_solution_does_not_depend_on_gains_the_fill_never_reaches():
    """H is flat on [1/6, 1/4] here (m = 2, b = 1: every level there has value 0.5), and the unfilled gain 0.2
    lies inside that stretch: it is no breakpoint of H and must not become the level (it did, giving p = 0.2 on
    five points instead of 0.25 on four)."""
    with_unfilled = solve_query_game([1, 1, 1, 1, 0.5, 0.2, 0.1], 1, 2)
    assert with_unfilled.value == pytest.approx(0.5, abs=1e-15)
    np.testing.assert_array_equal(with_unfilled.probabilities, [0.25, 0.25, 0.25, 0.25, 0, 0, 0])
    for rest in ([], [0.01, 0.01], [0.49, 0.3, 0.17]):
        other = solve_query_game([1, 1, 1, 1, 0.5, *rest], 1, 2)
        np.testing.assert_array_equal(other.probabilities[:5], with_unfilled.probabilities[:5])


def test_a_top_gain_prefix_that_holds_the_fill_has_the_same_solution():
    """The prefix property the sharded selection rests on (docs/theory/rad.md#rad-sharded): when the fill
    stops before the last tie group of the gains >= the k-th largest, solving on those gains alone gives the
    same probabilities, bit for bit."""
    gen = np.random.default_rng(5)
    compared = 0
    for _ in range(300):
        n = int(gen.integers(20, 400))
        gains = np.round(gen.random(n), int(gen.integers(1, 4))) if gen.random() < 0.3 else gen.random(n)
        b, m = int(gen.integers(1, n // 4 + 1)), int(gen.integers(0, n // 4 + 1))
        full = solve_query_game(gains, b, m)
        k = int(gen.integers(1, n + 1))
        cut = np.sort(gains)[::-1][k - 1]
        if cut <= 0:
            continue
        inside = gains >= cut
        prefix = solve_query_game(gains[inside], b, m) if inside.sum() > b else None
        if prefix is None or prefix.probabilities[gains[inside] == cut].max() > 0:
            continue  # the fill reaches the prefix's last tie group: no claim
        compared += 1
        np.testing.assert_array_equal(prefix.probabilities, full.probabilities[inside])
        assert not full.probabilities[~inside].any()
    assert compared >= 100
