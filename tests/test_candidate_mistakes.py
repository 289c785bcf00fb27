"""estimate_candidate_mistakes: RAD's teacher mistakes among the highest-gain pool points, from an isotonic fit of
the teacher's correctness on the student's gain over the validation set."""

from __future__ import annotations

import numpy as np
import pytest

from robustdistill.algorithms.teacher_quality import estimate_candidate_mistakes, estimate_mistakes


def _data(error_rate: float, *, n_val: int = 400, n_pool: int = 2000, seed: int = 0, slope: float = 0.0):
    """Validation gains uniform on [0, 1], the teacher wrong with probability error_rate * (1 + slope (g - 1/2))
    (slope > 0: more errors at high gain); pool gains uniform on [0, 1]."""
    gen = np.random.default_rng(seed)
    g_val = gen.random(n_val)
    u = gen.random(n_val)  # common random numbers: errors grow with error_rate point by point
    wrong = u < np.clip(error_rate * (1 + slope * (g_val - 0.5)), 0, 1)
    return g_val, ~wrong, gen.random(n_pool)


def test_zero_when_the_teacher_is_always_right():
    g_val, _, g_pool = _data(0.0)
    assert estimate_candidate_mistakes(g_val, np.ones(g_val.size, dtype=bool), g_pool, 50) == 0
    assert estimate_candidate_mistakes(g_val, np.ones(g_val.size), g_pool, 50, candidates=2000) == 0


def test_monotone_in_the_teachers_error():
    values = []
    for rate in (0.0, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0):
        g_val, correct, g_pool = _data(rate)
        values.append(estimate_candidate_mistakes(g_val, correct, g_pool, 50))
    assert values == sorted(values) and values[0] == 0 and values[-1] == 100  # always wrong: every candidate


def test_at_most_the_candidates_and_the_default_is_twice_the_budget():
    g_val, correct, g_pool = _data(1.0)  # always wrong
    assert estimate_candidate_mistakes(g_val, correct, g_pool, 30) == 60
    assert estimate_candidate_mistakes(g_val, correct, g_pool, 30, candidates=45) == 45
    assert estimate_candidate_mistakes(g_val, correct, g_pool[:40], 30) == 40  # capped at the pool
    assert estimate_candidate_mistakes(g_val, correct, g_pool, 0) == 0
    g_val, correct, g_pool = _data(0.3, seed=3)
    for budget in (1, 5, 20, 200, 1000):
        assert 0 <= estimate_candidate_mistakes(g_val, correct, g_pool, budget) <= min(2 * budget, g_pool.size)


def test_flat_errors_give_the_pool_rate_on_the_candidates():
    """Errors independent of the gain: the fit is nearly flat at the validation error rate, so m is near 2b
    times that rate (above it a little: PAVA's boundary effect at the top gains, documented); with every pool
    point a candidate it is the pool-level estimate, up to the slope that PAVA finds in the noise."""
    g_val, correct, g_pool = _data(0.2, n_val=2000, seed=1)
    rate = 1 - correct.mean()
    m = estimate_candidate_mistakes(g_val, correct, g_pool, 100)
    assert 0.8 * rate * 200 <= m <= 1.6 * rate * 200
    whole = estimate_candidate_mistakes(g_val, correct, g_pool, 1, candidates=g_pool.size)
    pool = estimate_mistakes(np.eye(2)[(~correct).astype(int)], np.zeros(correct.size, dtype=int), g_pool.size)
    assert abs(whole - pool) <= 0.1 * pool


def test_errors_on_high_gain_validation_points_raise_m():
    """The same number of validation errors, placed on the highest-gain points instead of the lowest: m rises
    (above the pool-rate share), and placed on the lowest it falls back to the validation error rate (the fit is
    non-increasing in the gain, so it pools to a constant)."""
    gen = np.random.default_rng(5)
    g_val, g_pool = gen.random(300), gen.random(3000)
    order = np.argsort(g_val)
    low, high = np.ones(300, dtype=bool), np.ones(300, dtype=bool)
    low[order[:30]] = False  # 10% errors on the lowest gains
    high[order[-30:]] = False  # the same 10% on the highest gains
    spread = np.ones(300, dtype=bool)
    spread[order[::10]] = False  # 10% spread evenly
    m_low, m_spread, m_high = (estimate_candidate_mistakes(g_val, c, g_pool, 50) for c in (low, spread, high))
    assert m_high > m_spread and m_high > m_low
    assert m_low == 10  # the constant 0.1 on 100 candidates
    assert m_high >= 90  # the top 10% of the pool (300 points) covers the 100 candidates: almost all wrong
    # and continuously: moving the errors up the gain order never lowers m
    values = []
    for shift in range(0, 271, 30):
        c = np.ones(300, dtype=bool)
        c[order[shift : shift + 30]] = False
        values.append(estimate_candidate_mistakes(g_val, c, g_pool, 50))
    assert values == sorted(values)


def test_ties_in_the_pool_gains_do_not_matter_and_inputs_are_not_modified():
    g_val = np.array([0.1, 0.5, 0.5, 0.9])
    correct = np.array([1, 1, 0, 0])
    g_pool = np.array([0.5, 0.5, 0.5, 0.2, 0.95])
    before = (g_val.copy(), correct.copy(), g_pool.copy())
    m = estimate_candidate_mistakes(g_val, correct, g_pool, 1)  # candidates 0.95 and one of the tied 0.5
    # fit (non-increasing): 1 at 0.1, 0.5 at 0.5, 0 at 0.9 -> errors 1 + 0.5 = 1.5 -> 2
    assert m == 2
    assert all(np.array_equal(a, b) for a, b in zip(before, (g_val, correct, g_pool)))
    assert estimate_candidate_mistakes(list(g_val), [True, True, False, False], list(g_pool), 1) == 2


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (([0.1, 0.2], [1, 0, 1], [0.5], 1), {}, ValueError, "teacher_correct_val"),
        (([0.1, 0.2], [1, 2], [0.5], 1), {}, ValueError, "teacher_correct_val"),
        (([0.1, 0.2], ["a", "b"], [0.5], 1), {}, TypeError, "teacher_correct_val"),
        (([[0.1, 0.2]], [1, 0], [0.5], 1), {}, ValueError, "gains_val"),
        (([], [], [0.5], 1), {}, ValueError, "gains_val"),
        (([0.1, np.nan], [1, 0], [0.5], 1), {}, ValueError, "gains_val"),
        (([0.1, 0.2], [1, 0], [np.inf], 1), {}, ValueError, "gains_pool"),
        (([0.1, 0.2], [1, 0], [], 1), {}, ValueError, "gains_pool"),
        (([0.1, 0.2], [1, 0], ["x"], 1), {}, TypeError, "gains_pool"),
        (([0.1, 0.2], [1, 0], [0.5], -1), {}, ValueError, "budget"),
        (([0.1, 0.2], [1, 0], [0.5], 1.5), {}, ValueError, "budget"),
        (([0.1, 0.2], [1, 0], [0.5], 1), {"candidates": -2}, ValueError, "candidates"),
        (([0.1, 0.2], [1, 0], [0.5], 1), {"candidates": 2.0}, ValueError, "candidates"),
    ],
)
def test_input_validation(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        estimate_candidate_mistakes(*args, **kwargs)


def test_doctest():
    import doctest

    from robustdistill.algorithms import teacher_quality

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(teacher_quality.estimate_candidate_mistakes, globs=vars(teacher_quality)):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
