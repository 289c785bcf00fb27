"""DepRound (``docs/theory/rad.md#rad-depround``): exact batch size, exact marginals, negative correlation, the rng contract and
input validation.

Statistical tests use fixed seeds and state their false-failure probability; every count they check is
exactly Binomial(D, q) (the D draws are independent), so the acceptance bounds are exact binomial
quantiles, with Bonferroni over the coordinates or pairs checked.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from robustdistill.algorithms.rad import depround

# ----------------------------------------------------------------------------------------------------
# Strategies


def _water_fill(u: np.ndarray, b: int) -> np.ndarray:
    """clip(u + lam, 0, 1) with lam chosen by bisection so that the sum is b, then the last ulp-level
    residual moved onto the most central fractional entry: an integral sum, with exact 0s and 1s."""
    lo, hi = -1.0, 1.0  # sum(clip(u - 1)) = 0 <= b <= n = sum(clip(u + 1))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.clip(u + mid, 0.0, 1.0).sum() < b:
            lo = mid
        else:
            hi = mid
    q = np.clip(u + hi, 0.0, 1.0)
    fractional = np.flatnonzero((q > 0.0) & (q < 1.0))
    if fractional.size:
        k = fractional[np.argmin(np.abs(q[fractional] - 0.5))]
        q[k] = min(1.0, max(0.0, q[k] + (b - q.sum())))
    return q


@st.composite
def integral_sum_vectors(draw, max_size: int = 40) -> np.ndarray:
    """Marginal vectors in [0, 1] with an integral sum: a water-fill of a random vector (ties from a
    small set of shared values), plus explicit exact 0s and 1s, in a random order."""
    values = st.one_of(st.floats(0.0, 1.0, allow_nan=False), st.sampled_from([0.0, 0.25, 1 / 3, 0.5, 0.9, 1.0]))
    u = np.array(draw(st.lists(values, min_size=0, max_size=max_size)), dtype=np.float64)
    b = draw(st.integers(0, u.size))
    zeros = draw(st.integers(0, 5))
    ones = draw(st.integers(0, 5))
    p = np.concatenate([_water_fill(u, b), np.zeros(zeros), np.ones(ones)])
    if p.size == 0:
        p = np.array([draw(st.sampled_from([0.0, 1.0]))])
    order = draw(st.permutations(range(p.size)))
    return p[np.asarray(order, dtype=np.int64)]


# ----------------------------------------------------------------------------------------------------
# 1. Exact size and structure on every draw


def _check_draw(p: np.ndarray, chosen: np.ndarray) -> None:
    b = round(float(p.sum()))
    assert chosen.dtype == np.int64
    assert chosen.shape == (b,)
    assert np.all(np.diff(chosen) > 0)  # sorted and distinct
    assert chosen.size == 0 or (chosen[0] >= 0 and chosen[-1] < p.size)
    mask = np.zeros(p.size, dtype=bool)
    mask[chosen] = True
    assert np.all(mask[p == 1.0])
    assert not np.any(mask[p == 0.0])


@given(p=integral_sum_vectors(), seed=st.integers(0, 2**32 - 1))
def test_exact_size_every_draw(p: np.ndarray, seed: int) -> None:
    original = p.copy()
    rng = np.random.default_rng(seed)
    for _ in range(25):
        _check_draw(p, depround(p, rng=rng))
    np.testing.assert_array_equal(p, original)  # the input is not modified


def test_exact_size_large_pool() -> None:
    rng = np.random.default_rng(20230501)
    p = rng.permutation(np.concatenate([np.zeros(100), np.ones(100), _water_fill(rng.random(99_800), 31_237)]))
    assert round(p.sum()) == 31_337
    for seed in range(3):
        _check_draw(p, depround(p, rng=seed))


# ----------------------------------------------------------------------------------------------------
# 2. Monte-Carlo marginals


def test_marginals_match_probabilities() -> None:
    """n = 200, b = 20: 5 ones, 70 zeros, 125 fractional entries in [0.04, 0.20] summing to 15.

    Each count c_i over D independent draws is exactly Binomial(D, p_i). A coordinate fails when c_i is
    outside its central binomial interval of mass 1 - alpha, alpha = 1e-6 / 125 (two-sided), so by
    Bonferroni the false-failure probability of the whole test is <= 1e-6. The message reports the
    z-scores (freq_i - p_i) / sqrt(p_i (1 - p_i) / D) against the normal bound norm.isf(alpha / 2) ~ 5.9.
    """
    setup = np.random.default_rng(7)
    fractional = np.linspace(0.04, 0.20, 125)
    p = setup.permutation(np.concatenate([np.ones(5), np.zeros(70), fractional]))
    assert round(p.sum()) == 20

    draws = 25_000
    rng = np.random.default_rng(12345)
    counts = np.bincount(np.concatenate([depround(p, rng=rng) for _ in range(draws)]), minlength=p.size)

    frac = (p > 0) & (p < 1)
    alpha = 1e-6 / frac.sum()
    low = stats.binom.ppf(alpha / 2, draws, p[frac])
    high = stats.binom.isf(alpha / 2, draws, p[frac])
    c = counts[frac]
    z = (c / draws - p[frac]) / np.sqrt(p[frac] * (1 - p[frac]) / draws)
    assert np.all((c >= low) & (c <= high)), (
        f"max |z| = {np.abs(z).max():.2f} vs normal bound {stats.norm.isf(alpha / 2):.2f}"
    )
    np.testing.assert_array_equal(counts[p == 1.0], draws)
    np.testing.assert_array_equal(counts[p == 0.0], 0)


# ----------------------------------------------------------------------------------------------------
# 3. Pairwise negative correlation


def test_pairwise_negative_correlation() -> None:
    """p = (.3, .5, .7, .9, .6), b = 3: P[i, j in S] <= p_i p_j for all 10 pairs (the true margin is
    >= 0.018, docs/theory/rad.md#rad-depround). The joint count of a pair is exactly Binomial(D, P[i, j in S]); under the
    hypothesis P[i, j in S] <= p_i p_j it exceeds binom.isf(1e-7, D, p_i p_j) with probability <= 1e-7,
    so the false-failure probability over the 10 pairs is <= 1e-6. With D = 40 000 that tolerance is
    ~5.2 standard errors (<= 0.013), well inside the margin. The same draws check the five marginals
    (entries up to 0.9 exercise the s > 1 branch at every level) with exact binomial intervals at
    false-failure <= 1e-6, so the whole test fails by chance with probability <= 2e-6."""
    p = np.array([0.3, 0.5, 0.7, 0.9, 0.6])
    draws = 40_000
    rng = np.random.default_rng(2023)
    hits = np.zeros((draws, p.size), dtype=bool)
    for d in range(draws):
        hits[d, depround(p, rng=rng)] = True
    assert np.all(hits.sum(axis=1) == 3)

    counts = hits.sum(axis=0)
    alpha = 1e-6 / p.size
    low, high = stats.binom.ppf(alpha / 2, draws, p), stats.binom.isf(alpha / 2, draws, p)
    assert np.all((counts >= low) & (counts <= high)), (counts / draws, p)

    alpha = 1e-6 / 10
    for i, j in itertools.combinations(range(p.size), 2):
        joint = int(np.sum(hits[:, i] & hits[:, j]))
        bound = stats.binom.isf(alpha, draws, p[i] * p[j])
        assert joint <= bound, (i, j, joint / draws, p[i] * p[j])


# ----------------------------------------------------------------------------------------------------
# 4. The rng contract


def test_same_seed_same_output() -> None:
    p = np.full(50, 0.2)
    first = depround(p, rng=99)
    np.testing.assert_array_equal(first, depround(p, rng=99))
    np.testing.assert_array_equal(first, depround(p, rng=np.random.default_rng(99)))


def test_generator_is_advanced() -> None:
    p = np.full(50, 0.2)
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    draws = [depround(p, rng=rng) for _ in range(5)]
    assert rng.bit_generator.state != before
    assert any(not np.array_equal(draws[0], d) for d in draws[1:])


# ----------------------------------------------------------------------------------------------------
# 5. Bad input


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param([np.nan, 1.0], id="nan"),
        pytest.param([np.inf, 0.0], id="inf"),
        pytest.param([-0.1, 0.6, 0.5], id="negative"),
        pytest.param([1.5, 0.5], id="above-one"),
        pytest.param([0.5, 0.5, 0.5, 1.0], id="sum-2.5"),
        pytest.param([1.0, 1.0, 1e-6], id="sum-2+1e-6"),
        pytest.param([[0.5, 0.5]], id="2-D"),
        pytest.param([], id="empty"),
    ],
)
def test_bad_probabilities_raise_value_error(bad: list) -> None:
    with pytest.raises(ValueError, match="probabilities"):
        depround(np.asarray(bad, dtype=np.float64), rng=0)


@pytest.mark.parametrize("bad_rng", ["abc", 1.5, True, np.random.RandomState(0)])
def test_bad_rng_raises_type_error(bad_rng: object) -> None:
    with pytest.raises(TypeError, match="rng"):
        depround([0.5, 0.5], rng=bad_rng)


def test_rng_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        depround([0.5, 0.5], 0)  # type: ignore[misc]


def test_torch_tensor_accepted() -> None:
    torch = pytest.importorskip("torch")
    p = torch.tensor([0.25, 0.75, 1.0, 0.0, 0.5, 0.5], dtype=torch.float32)
    chosen = depround(p, rng=3)
    _check_draw(p.numpy().astype(np.float64), chosen)


# ----------------------------------------------------------------------------------------------------
# 6. Edge cases


def test_all_zeros_gives_empty_batch() -> None:
    chosen = depround(np.zeros(10), rng=0)
    assert chosen.dtype == np.int64 and chosen.shape == (0,)


def test_all_ones_gives_every_point() -> None:
    np.testing.assert_array_equal(depround(np.ones(7), rng=0), np.arange(7))


def test_single_fractional_pair_takes_both_outcomes() -> None:
    rng = np.random.default_rng(11)
    outcomes = {tuple(depround([0.3, 1.0, 0.7, 0.0], rng=rng).tolist()) for _ in range(200)}
    assert outcomes == {(0, 1), (1, 2)}  # the point with p = 1 always; one of the pair; never p = 0


@pytest.mark.parametrize(("value", "expected"), [(0.0, []), (1.0, [0])])
def test_single_point(value: float, expected: list) -> None:
    np.testing.assert_array_equal(depround([value], rng=0), np.array(expected, dtype=np.int64))


def test_float_drift_within_tolerance_is_accepted() -> None:
    # sums off an integer by far less than 1e-9 relative are floating-point drift, not user error
    p = np.array([0.1] * 10)  # sums to 0.9999999999999999
    assert depround(p, rng=0).size == 1
    assert depround([0.5, 0.5 + 1e-10, 1.0 - 1e-13], rng=0).size == 2
