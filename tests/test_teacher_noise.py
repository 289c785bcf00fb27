"""The teacher-noise generators (theory.teacher_noise): the top-k model's transition, expectation and
samplers; statistical checks use fixed seeds and state their false-failure probability."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from robustdistill.algorithms.slam import topk_mask
from robustdistill.theory.teacher_noise import (
    margin_teacher_probs,
    sample_topk_noise,
    sample_topk_teacher,
    topk_noise_expectation,
    topk_transition,
)


def _instance(seed: int, n: int, num_classes: int):
    """Random top-k masks (k in 2..K per row), alphas in [0, 1] and clean posteriors supported on the mask."""
    rng = np.random.default_rng(seed)
    k = rng.integers(2, num_classes + 1, n)
    mask = topk_mask(rng.dirichlet(np.ones(num_classes), n), k)
    p_star = rng.dirichlet(np.ones(num_classes), n) * mask
    p_star /= p_star.sum(axis=1, keepdims=True)
    return p_star, rng.uniform(0.0, 1.0, n), mask


@given(st.integers(0, 2**32 - 1), st.integers(2, 7))
def test_expectation_is_the_specs_formula(seed, num_classes):
    """``docs/theory/noise.md#noise-topk-model``: E[teacher label | x] = alpha p* + (1 - alpha)(1 - p*) M / (k - 1) on M."""
    p_star, alpha, mask = _instance(seed, 20, num_classes)
    k = mask.sum(axis=1, keepdims=True)
    expected = alpha[:, None] * p_star + (1 - alpha[:, None]) * (1 - p_star) * mask / (k - 1)
    q = topk_noise_expectation(p_star, alpha, mask)
    np.testing.assert_allclose(q, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_transition_rows_and_binary_rcn():
    _, alpha, mask = _instance(3, 50, 6)
    T = topk_transition(alpha, mask)
    on = mask > 0
    np.testing.assert_allclose(T.sum(axis=2)[on], 1.0, atol=1e-12)
    assert np.all(T[on[:, :, None] & ~on[:, None, :]] == 0)  # from M the teacher never leaves M
    np.testing.assert_allclose(topk_transition(0.8, np.ones((1, 2)))[0], [[0.8, 0.2], [0.2, 0.8]])


def test_sampler_frequencies_match_the_model():
    """One row, 2e5 draws: kept with probability alpha, else uniform over the other classes of M. Chi-square
    goodness of fit at level 1e-6 (false-failure probability 1e-6; the seed is fixed)."""
    n, alpha = 200_000, 0.7
    mask = np.zeros((n, 5))
    mask[:, [0, 2, 3]] = 1
    noisy = sample_topk_noise(np.full(n, 2), alpha, mask, rng=0)
    counts = np.bincount(noisy, minlength=5)
    assert counts[1] == counts[4] == 0
    expected = n * np.array([0.15, 0.7, 0.15])
    assert stats.chisquare(counts[[0, 2, 3]], expected).pvalue > 1e-6


def test_teacher_sampler_mean_matches_the_expectation():
    """Mean one-hot teacher label over 4000 repeats of 30 rows vs topk_noise_expectation: every entry within
    5 standard errors (false-failure probability <= 30 * 6 * 5.7e-7 = 1.1e-4 by the union bound)."""
    p_star, alpha, mask = _instance(7, 30, 6)
    reps = 4000
    rng = np.random.default_rng(11)
    onehot = np.zeros((30, 6))
    clean_hits = np.zeros((30, 6))
    for _ in range(reps):
        clean, noisy = sample_topk_teacher(p_star, alpha, mask, rng=rng)
        assert np.all(mask[np.arange(30), clean] == 1) and np.all(mask[np.arange(30), noisy] == 1)
        onehot[np.arange(30), noisy] += 1
        clean_hits[np.arange(30), clean] += 1
    q = topk_noise_expectation(p_star, alpha, mask)
    for target, hits in ((q, onehot), (p_star, clean_hits)):
        se = np.sqrt(target * (1 - target) / reps)
        assert np.all(np.abs(hits / reps - target) <= 5 * se + 1e-12)


def test_extremes_and_seeds():
    _, _, mask = _instance(5, 200, 5)
    y = np.argmax(mask, axis=1)  # the first class of each mask
    assert np.array_equal(sample_topk_noise(y, 1.0, mask, rng=1), y)
    flipped = sample_topk_noise(y, 0.0, mask, rng=1)
    assert np.all(flipped != y) and np.all(mask[np.arange(200), flipped] == 1)
    assert np.array_equal(sample_topk_noise(y, 0.5, mask, rng=4), sample_topk_noise(y, 0.5, mask, rng=4))
    assert not np.array_equal(sample_topk_noise(y, 0.5, mask, rng=4), sample_topk_noise(y, 0.5, mask, rng=5))


def test_bad_input():
    mask = np.array([[1.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="outside"):
        sample_topk_noise([2], 0.9, mask, rng=0)
    with pytest.raises(ValueError, match="alpha"):
        sample_topk_noise([0], 1.5, mask, rng=0)
    with pytest.raises(ValueError, match="at least 2 ones"):
        sample_topk_noise([0], 0.9, [[1.0, 0.0, 0.0]], rng=0)
    with pytest.raises(ValueError, match="supported on the mask"):
        sample_topk_teacher([[0.5, 0.25, 0.25]], 0.9, mask, rng=0)
    with pytest.raises(ValueError, match="shape"):
        topk_noise_expectation([[0.5, 0.5]], 0.9, mask)
    with pytest.raises(TypeError, match="rng"):
        sample_topk_noise([0], 0.9, mask, rng="seed")


def test_margin_teacher_for_given_labels():
    """The predicted class equals the label with probability alpha = 0.3 + 0.65 s^0.7: the mean of the
    indicator minus alpha over 1e5 draws is within 5 standard errors (false-failure probability 5.7e-7)."""
    y = np.random.default_rng(0).integers(0, 4, 100_000)
    probs, alpha = margin_teacher_probs(y, 4, rng=1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    correct = probs.argmax(axis=1) == y
    se = np.sqrt(np.mean(alpha * (1 - alpha)) / y.size)
    assert abs(np.mean(correct - alpha)) <= 5 * se
    with pytest.raises(ValueError, match="num_classes"):
        margin_teacher_probs([0], 1, rng=0)
