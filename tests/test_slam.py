"""Properties of the SLaM mixing operation (algorithms/slam.py) and of the binary theory (``docs/theory/slam.md#slam-forward-loss``).

Arrays come from hypothesis-drawn seeds (numpy Generators), scalars from hypothesis directly.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special

from robustdistill.algorithms.slam import DEFAULT_ALPHA_FLOOR, clip_alpha, mix, topk_mask
from robustdistill.theory.simulators import slam_checks as sc

seeds = st.integers(0, 2**32 - 1)
alphas_half = st.floats(0.5, 1.0, exclude_min=True, exclude_max=True)  # (1/2, 1)
logits = st.floats(-30.0, 30.0)
probabilities = st.floats(0.0, 1.0)


def _simplex(rng: np.random.Generator, n: int, num_classes: int, *, zeros: bool = True) -> np.ndarray:
    """Random rows on the simplex; with ``zeros`` about a quarter of the entries are exactly 0."""
    x = rng.exponential(size=(n, num_classes))
    if zeros:
        x *= rng.random((n, num_classes)) > 0.25
        x[np.arange(n), rng.integers(num_classes, size=n)] += 1.0  # every row keeps some mass
    return x / x.sum(axis=1, keepdims=True)


@st.composite
def instances(draw, min_k: int = 2):
    """(f (n, K), mask (n, K) with k ones per row, k) with K in 2..8, k in min_k..K."""
    rng = np.random.default_rng(draw(seeds))
    num_classes = draw(st.integers(max(2, min_k), 8))
    k = draw(st.integers(min_k, num_classes))
    n = draw(st.integers(1, 6))
    f = _simplex(rng, n, num_classes)
    mask = topk_mask(_simplex(rng, n, num_classes), k)
    return f, mask, k


# ------------------------------------------------------------------------------------------------
# topk_mask
# ------------------------------------------------------------------------------------------------


def _reference_mask(t: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Rank by (value descending, index ascending) with a lexsort: an independent reference."""
    n, num_classes = t.shape
    out = np.zeros((n, num_classes))
    for i in range(n):
        order = np.lexsort((np.arange(num_classes), -t[i]))
        out[i, order[: k[i]]] = 1.0
    return out


@given(seeds, st.integers(2, 9), st.integers(1, 8), st.booleans(), st.booleans())
def test_topk_mask_has_exactly_k_ones_and_ties_go_to_the_lower_index(seed, num_classes, n, per_example, ties):
    rng = np.random.default_rng(seed)
    if ties:  # a small alphabet: many ties, including all-equal rows
        t = rng.integers(0, 3, size=(n, num_classes)).astype(float) + 1e-3
        t /= t.sum(axis=1, keepdims=True)
    else:
        t = _simplex(rng, n, num_classes, zeros=False)
    k = rng.integers(1, num_classes + 1, size=n) if per_example else int(rng.integers(1, num_classes + 1))
    mask = topk_mask(t, k)
    kk = np.broadcast_to(k, (n,))
    assert mask.dtype == np.float64 and set(np.unique(mask)) <= {0.0, 1.0}
    np.testing.assert_array_equal(mask.sum(axis=1), kk)
    np.testing.assert_array_equal(mask, _reference_mask(t, kk))


def test_topk_mask_all_equal_row_takes_the_first_k():
    np.testing.assert_array_equal(topk_mask(np.full((1, 5), 0.2), 3), [[1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(topk_mask([[0.4, 0.2, 0.4]], 1), [[1, 0, 0]])


@given(seeds, st.integers(2, 9), st.integers(1, 9))
def test_topk_mask_permutes_with_the_classes(seed, num_classes, k):
    k = min(k, num_classes)
    rng = np.random.default_rng(seed)
    t = _simplex(rng, 4, num_classes, zeros=False)  # continuous: no ties almost surely
    assert all(np.unique(row).size == num_classes for row in t)
    perm = rng.permutation(num_classes)
    np.testing.assert_array_equal(topk_mask(t[:, perm], k), topk_mask(t, k)[:, perm])


# ------------------------------------------------------------------------------------------------
# mix: the consequences of docs/theory/slam.md#slam-forward-loss
# ------------------------------------------------------------------------------------------------


@given(instances(), st.booleans())
def test_alpha_one_gives_f_exactly(inst, normalize):
    f, mask, _ = inst
    np.testing.assert_array_equal(mix(f, 1.0, mask, normalize=normalize), f)


@given(instances(), st.floats(0.5, 1.0))
def test_unnormalised_mix_on_and_off_m(inst, alpha):
    f, mask, _ = inst
    out = mix(f, alpha, mask, normalize=False)
    on = mask > 0
    np.testing.assert_allclose(out[on], (1 - alpha) + (2 * alpha - 1) * f[on], rtol=0, atol=1e-15)
    np.testing.assert_allclose(out[~on], alpha * f[~on], rtol=0, atol=1e-15)


@given(instances(), st.floats(0.0, 1.0))
def test_normalised_mix_on_and_off_m_and_its_sum(inst, u):
    f, mask, k = inst
    alpha = 1.0 / k + (1 - 1.0 / k) * max(u, 1e-6)  # in (1/k, 1]
    out = mix(f, alpha, mask, normalize=True)
    on = mask > 0
    c = (1 - alpha) / (k - 1)
    np.testing.assert_allclose(out[on], c + f[on] * (alpha - c), rtol=0, atol=1e-15)
    np.testing.assert_allclose(out[~on], alpha * f[~on], rtol=0, atol=1e-15)
    mass_on_m = (f * mask).sum(axis=1)
    np.testing.assert_allclose(out.sum(axis=1), 1 + (1 - alpha) * (1 - mass_on_m) / (k - 1), rtol=0, atol=1e-14)
    # f supported on M: a distribution
    g = f * mask
    g[g.sum(axis=1) == 0] = mask[g.sum(axis=1) == 0]  # rows with no mass on M: uniform on M instead
    g /= g.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(mix(g, alpha, mask, normalize=True).sum(axis=1), 1.0, rtol=0, atol=1e-14)


@given(logits, alphas_half)
def test_binary_forms_coincide_and_equal_the_binary_m(t, alpha):
    f = special.expit(t)
    probs = np.array([[1 - f, f]])
    ones = np.ones((1, 2))
    a = mix(probs, alpha, ones, normalize=False)
    b = mix(probs, alpha, ones, normalize=True)
    np.testing.assert_array_equal(a, b)  # k - 1 = 1: the same arithmetic
    m, m1 = sc.binary_mix(t, alpha)
    np.testing.assert_allclose(a[0, 1], (1 - alpha) + (2 * alpha - 1) * f, rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(a[0], [m1, m], rtol=0, atol=4e-16)


@given(seeds, st.integers(2, 8), st.floats(0.0, 1.0))
def test_full_mask_normalised_mix_is_forward_correction(seed, num_classes, u):
    """k = K: mix(f) = f T with T = alpha I + (1 - alpha)(11^T - I)/(K - 1) (``docs/theory/slam.md#slam-forward-correction``, Patrini et al.)."""
    rng = np.random.default_rng(seed)
    alpha = 1.0 / num_classes + (1 - 1.0 / num_classes) * max(u, 1e-6)
    f = _simplex(rng, 5, num_classes)
    T = alpha * np.eye(num_classes) + (1 - alpha) * (np.ones((num_classes,) * 2) - np.eye(num_classes)) / (
        num_classes - 1
    )
    np.testing.assert_allclose(T.sum(axis=1), 1.0, atol=1e-15)
    out = mix(f, alpha, np.ones_like(f), normalize=True)
    np.testing.assert_allclose(out, f @ T, rtol=0, atol=1e-15)


@given(instances(), st.floats(0.0, 1.0), seeds)
def test_normalised_mix_is_injective_for_alpha_above_one_over_k(inst, u, seed):
    f, mask, k = inst
    alpha = 1.0 / k + (1 - 1.0 / k) * max(u, 1e-3)
    g = _simplex(np.random.default_rng(seed), *f.shape)
    diff = mix(f, alpha, mask, normalize=True) - mix(g, alpha, mask, normalize=True)
    # coordinate-wise affine with non-zero slopes: alpha - (1 - alpha)/(k - 1) on M, alpha off M
    slope = np.where(mask > 0, alpha - (1 - alpha) / (k - 1), alpha)
    assert np.all(slope > 0)
    np.testing.assert_allclose(diff, slope * (f - g), rtol=0, atol=1e-14)
    if np.abs(f - g).max() > 1e-9:
        assert np.abs(diff).max() > 0


@given(instances(), st.floats(0.0, 1.0))
def test_normalised_mix_rejects_alpha_at_or_below_one_over_k(inst, u):
    f, mask, k = inst
    for alpha in (1.0 / k, u / k):  # at 1/k the map is constant on M: not injective
        with pytest.raises(ValueError, match="alpha must exceed 1/k"):
            mix(f, alpha, mask, normalize=True)


# u >= 1e-6: for alpha within an ulp of 1/2 the slope 2 alpha - 1 is below float64's resolution of mix
@given(instances(), st.floats(1e-6, 1.0), st.floats(0.01, 0.5))
def test_unnormalised_entries_on_m_increase_in_f_iff_alpha_above_half(inst, u, step):
    f, mask, _ = inst
    # move mass `step` (or what there is) from another class to class i on M: the slope is 2 alpha - 1
    i = int(np.flatnonzero(mask[0])[0])
    j = (i + 1) % f.shape[1]
    delta = min(step, f[0, j])
    g = f[:1].copy()
    g[0, i] += delta
    g[0, j] -= delta
    for alpha in (0.5 + 0.5 * u, 0.5):
        change = mix(g, alpha, mask[:1])[0, i] - mix(f[:1], alpha, mask[:1])[0, i]
        np.testing.assert_allclose(change, (2 * alpha - 1) * delta, rtol=0, atol=1e-15)
        if alpha > 0.5 and delta > 0:
            assert change > 0
        if alpha == 0.5:
            assert change == 0  # constant on M: no gradient
    with pytest.raises(ValueError, match="alpha must be >= 1/2"):  # decreasing: rejected
        mix(f, 0.5 * u * (1 - 1e-9), mask)


# ------------------------------------------------------------------------------------------------
# Binary theory (docs/theory/slam.md#slam-convergence; our formulation): F1, F3, F4 as properties
# ------------------------------------------------------------------------------------------------


def _risk_via_mix(f: float, p: float, alpha: float) -> float:
    """E_y[loss | x] from the library's mix (K = k = 2), independent of the binary helpers."""
    out = mix(np.array([[1 - f, f]]), alpha, np.ones((1, 2)))[0]
    q = (1 - alpha) + (2 * alpha - 1) * p
    return float(-q * np.log(out[1]) - (1 - q) * np.log(out[0]))


@given(alphas_half, probabilities, st.floats(0.0, 1.0))
def test_f1_risk_is_minimised_at_p_with_pinsker_excess(alpha, p, f):
    beta = 2 * alpha - 1
    risk_f, risk_p = _risk_via_mix(f, p, alpha), _risk_via_mix(p, p, alpha)
    excess = risk_f - risk_p
    scale = max(1.0, abs(risk_p))
    assert excess >= -1e-13 * scale
    assert excess >= 2 * beta**2 * (p - f) ** 2 - 1e-13 * scale
    # and the exact identity excess = KL(q || m) of the module's helpers
    q = sc.noisy_posterior(p, alpha)
    m, m1 = (1 - alpha) * (1 - f) + alpha * f, alpha * (1 - f) + (1 - alpha) * f  # no cancellation
    assert excess == pytest.approx(float(sc.binary_kl(q, m, m1)), abs=1e-13 * scale)


@given(alphas_half, probabilities, logits)
def test_f1_in_logits(alpha, p, t):
    q = sc.noisy_posterior(p, alpha)
    m, m1 = sc.binary_mix(t, alpha)
    entropy = special.entr(q) + special.entr(1 - q)
    excess = float(sc.binary_risk(t, p, alpha) - entropy)
    kl = float(sc.binary_kl(q, m, m1))
    assert excess == pytest.approx(kl, abs=1e-12 * max(1.0, excess))
    assert kl >= 2 * (2 * alpha - 1) ** 2 * (p - special.expit(t)) ** 2 - 1e-14


@given(alphas_half, probabilities, logits)
def test_f3_expected_gradient_is_a_positively_reweighted_clean_gradient(alpha, p, t):
    q = sc.noisy_posterior(p, alpha)
    g1, g0 = float(sc.binary_grad(t, 1.0, alpha)), float(sc.binary_grad(t, 0.0, alpha))
    w = float(sc.omega(t, alpha))
    f = float(special.expit(t))
    assert 0.0 <= w < 1.0
    assert q * g1 + (1 - q) * g0 == pytest.approx(w * (f - p), abs=1e-14)
    # the gradient formula against a central difference of the loss (step 1e-6: error ~1e-10)
    h = 1e-6
    for y, g in ((1.0, g1), (0.0, g0)):
        numeric = (sc.binary_loss(t + h, y, alpha) - sc.binary_loss(t - h, y, alpha)) / (2 * h)
        assert g == pytest.approx(float(numeric), abs=1e-8)


@given(alphas_half, logits)
def test_f2_variance_identity(alpha, t):
    m, m1 = sc.binary_mix(t, alpha)
    f = special.expit(t)
    rhs = alpha * (1 - alpha) + (2 * alpha - 1) ** 2 * f * (1 - f)
    assert float(m * m1) == pytest.approx(float(rhs), rel=1e-12)
    assert m * m1 >= alpha * (1 - alpha) * (1 - 1e-12)


@given(alphas_half, st.floats(-1000.0, 1000.0), st.sampled_from([0.0, 1.0]))
def test_f4_bounded_loss_and_gradient(alpha, t, y):
    loss = float(sc.binary_loss(t, y, alpha))
    assert 0.0 <= loss <= -np.log1p(-alpha) * (1 + 1e-12)
    assert abs(float(sc.binary_grad(t, y, alpha))) <= float(sc.gradient_bound(alpha)) * (1 + 1e-12)


# ------------------------------------------------------------------------------------------------
# clip_alpha
# ------------------------------------------------------------------------------------------------


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20), st.sampled_from([0.5, 0.55, 0.6, 0.7]))
def test_clip_alpha_clips_to_the_lower_bound(values, lower):
    out = clip_alpha(values, lower)
    np.testing.assert_array_equal(out, np.clip(values, lower, 1.0))
    assert DEFAULT_ALPHA_FLOOR == 0.6
    np.testing.assert_array_equal(clip_alpha(values), np.clip(values, 0.6, 1.0))


def test_clip_alpha_lower_bound_rules():
    with pytest.raises(ValueError, match="lower must be >= 1/2"):
        clip_alpha([0.7], 0.49)
    clip_alpha([0.7], 0.5)
    with pytest.raises(ValueError, match="k is required"):
        clip_alpha([0.7], 0.6, normalize=True)
    # normalised: lower >= 1/k + 0.05
    np.testing.assert_array_equal(clip_alpha([0.1, 0.9], 0.3, normalize=True, k=4), [0.3, 0.9])
    with pytest.raises(ValueError, match=r"lower must be >= 1/k \+ 0.05"):
        clip_alpha([0.7], 0.29, normalize=True, k=4)
    with pytest.raises(ValueError, match="lower must lie in"):
        clip_alpha([0.7], 1.5)
    with pytest.raises(ValueError, match="alpha must lie in"):
        clip_alpha([1.2])


# ------------------------------------------------------------------------------------------------
# Bad input: ValueError / TypeError naming the argument
# ------------------------------------------------------------------------------------------------

F = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
M = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"student_probs": F + np.array([[1e-5, 0, 0], [0, 0, 0]])}, ValueError, "student_probs rows must sum to 1"),
        ({"student_probs": np.where(F == 0.5, np.nan, F)}, ValueError, "student_probs must be finite"),
        ({"student_probs": np.log(F)}, ValueError, "student_probs"),
        ({"student_probs": F[0]}, ValueError, "student_probs must be 2-D"),
        ({"student_probs": F.astype(str)}, TypeError, "student_probs"),
        ({"alpha": 1.2}, ValueError, r"alpha must lie in \[0, 1\]"),
        ({"alpha": -0.1}, ValueError, r"alpha must lie in \[0, 1\]"),
        ({"alpha": np.nan}, ValueError, "alpha must be finite"),
        ({"alpha": [0.7, 0.8, 0.9]}, ValueError, "alpha has 3 entries"),
        ({"alpha": 0.45}, ValueError, "alpha must be >= 1/2"),
        ({"alpha": 0.5, "normalize": True}, ValueError, "alpha must exceed 1/k"),
        ({"topk_mask": np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])}, ValueError, "topk_mask needs at least 2 ones"),
        ({"topk_mask": M[:, :2]}, ValueError, "topk_mask must have shape"),
        ({"topk_mask": M * 0.5 + 0.5}, ValueError, "topk_mask must hold only 0 and 1"),
    ],
)
def test_mix_rejects_bad_input(kwargs, error, match):
    args = {"student_probs": F, "alpha": 0.7, "topk_mask": M, "normalize": False} | kwargs
    with pytest.raises(error, match=match):
        mix(**args)


@pytest.mark.parametrize(
    ("k", "error", "match"),
    [
        (0, ValueError, r"k must lie in 1\.\.3"),
        (4, ValueError, r"k must lie in 1\.\.3"),
        (np.array([2, 2, 2]), ValueError, r"k must be an int or of shape \(2,\)"),
        (np.array([2, 4]), ValueError, r"k must lie in 1\.\.3"),
        (2.0, TypeError, "k must be an integer"),
        (True, TypeError, "k must be an integer"),
    ],
)
def test_topk_mask_rejects_bad_k(k, error, match):
    with pytest.raises(error, match=match):
        topk_mask(F, k)


def test_topk_mask_rejects_bad_teacher_probs():
    with pytest.raises(ValueError, match="teacher_probs rows must sum to 1"):
        topk_mask(F * 1.01, 2)
    with pytest.raises(ValueError, match="teacher_probs must be finite"):
        topk_mask(np.where(F == 0.8, np.inf, F), 2)
