"""Weighted Distillation's data-level steps: teacher-accuracy estimation (``algorithms/teacher_quality.py``)
and the weight schemes and debiased targets (``algorithms/weighting.py``), ``docs/theory/weighted.md#weighted-schemes``.

References are computed independently in the tests (scipy's PAVA and binomial intervals, brute force over k,
closed forms written out); all randomness comes from hypothesis-drawn or fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from scipy.optimize import isotonic_regression

from robustdistill.algorithms.slam import topk_mask
from robustdistill.algorithms.teacher_quality import (
    FEATURES,
    binned_accuracy,
    choose_top_k,
    clopper_pearson,
    estimate_mistakes,
    estimate_transition,
    fit_teacher_accuracy,
    teacher_feature,
    transition_from_cleanlab,
)
from robustdistill.algorithms.weighting import (
    KAPPA,
    SCHEMES,
    debiased_targets,
    distillation_weights,
    importance_targets,
    normalize_weights,
)
from robustdistill.theory.teacher_noise import synthetic_teacher, true_accuracy

# --------------------------------------------------------------------------------------------------------
# Strategies and helpers


def random_probs(rng: np.random.Generator, n: int, k: int, *, ties: bool = False) -> np.ndarray:
    """(n, K) rows on the simplex. ``ties``: rows of small integer counts, so the features (margin,
    confidence, entropy) repeat across rows and within rows (ties of the top two classes)."""
    if ties:
        counts = rng.integers(0, 4, (n, k)).astype(float)
        counts[counts.sum(axis=1) == 0, 0] = 1.0
        return counts / counts.sum(axis=1, keepdims=True)
    return rng.dirichlet(np.full(k, float(rng.choice([0.2, 1.0, 5.0]))), n)


def validation_labels(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Labels that agree with the teacher's argmax more often where it is confident."""
    n, k = t.shape
    agree = rng.random(n) < 0.2 + 0.8 * t.max(axis=1)
    return np.where(agree, t.argmax(axis=1), rng.integers(0, k, n)).astype(np.int64)


@st.composite
def validation_sets(draw, min_n: int = 100, max_n: int = 300):
    """(teacher_probs_val, labels_val, feature): n_v >= 100 (no small-n warning), K in 2..8, with or
    without ties in the feature."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(min_n, max_n))
    k = draw(st.integers(2, 8))
    t = random_probs(rng, n, k, ties=draw(st.booleans()))
    return t, validation_labels(rng, t), draw(st.sampled_from(FEATURES))


seeds = st.integers(0, 2**32 - 1)


def reference_fit(t: np.ndarray, y: np.ndarray, feature: str):
    """docs/theory/weighted.md#weighted-accuracy-fit written out independently: pool ties, PAVA (scipy), Laplace block means, second PAVA;
    returns (unique feature values u, fitted value at every u)."""
    s = teacher_feature(t, feature)
    correct = (np.argmax(t, axis=1) == y).astype(float)
    u = np.unique(s)
    n_u = np.array([np.sum(s == v) for v in u], dtype=float)
    k_u = np.array([correct[s == v].sum() for v in u])
    first = isotonic_regression(k_u / n_u, weights=n_u, increasing=True)
    edges = list(first.blocks)
    block_means, block_weights, block_of_u = [], [], np.empty(u.size, dtype=int)
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        block_means.append((k_u[lo:hi].sum() + 1.0) / (n_u[lo:hi].sum() + 2.0))
        block_weights.append(n_u[lo:hi].sum() + 2.0)
        block_of_u[lo:hi] = b
    second = isotonic_regression(np.array(block_means), weights=np.array(block_weights), increasing=True).x
    return u, second[block_of_u]


# --------------------------------------------------------------------------------------------------------
# fit_teacher_accuracy (docs/theory/weighted.md#weighted-accuracy-fit)


@given(validation_sets())
def test_isotonic_fit_is_monotone_and_within_the_laplace_range(data):
    t, y, feature = data
    fit = fit_teacher_accuracy(t, y, feature=feature)
    n_v = t.shape[0]
    assert fit.feature == feature and fit.n_val == n_v and fit.num_classes == t.shape[1]
    assert np.all(np.diff(fit.knots_x) > 0)
    assert np.all(np.diff(fit.knots_y) >= 0)
    assert fit.knots_y.min() >= 1.0 / (n_v + 2) - 1e-15
    assert fit.knots_y.max() <= (n_v + 1.0) / (n_v + 2) + 1e-15
    # predictions on the validation points themselves and on the whole feature range
    for values in (teacher_feature(t, feature), np.linspace(-0.5, 1.5, 401)):
        order = np.argsort(values, kind="stable")
        pred = fit.predict_feature(values[order])
        assert np.all(np.diff(pred) >= 0)
        assert np.all((pred >= 1.0 / (n_v + 2) - 1e-15) & (pred <= (n_v + 1.0) / (n_v + 2) + 1e-15))


@given(validation_sets(), seeds)
def test_predict_on_arbitrary_points_is_monotone_in_the_feature(data, seed):
    t, y, feature = data
    fit = fit_teacher_accuracy(t, y, feature=feature)
    rng = np.random.default_rng(seed)
    query = random_probs(rng, 200, t.shape[1], ties=bool(rng.integers(2)))
    alpha = fit.predict(query)
    assert alpha.shape == (200,) and np.all((alpha >= 0) & (alpha <= 1))
    s = teacher_feature(query, feature)
    order = np.argsort(s, kind="stable")
    assert np.all(np.diff(alpha[order]) >= 0)
    np.testing.assert_array_equal(alpha, fit.predict_feature(s))


@given(validation_sets(), seeds)
def test_knot_compression_equals_interpolating_through_every_unique_value(data, seed):
    t, y, feature = data
    fit = fit_teacher_accuracy(t, y, feature=feature)
    u, values = reference_fit(t, y, feature)
    assert np.all(np.isin(fit.knots_x, u))
    np.testing.assert_allclose(fit.predict_feature(u), values, rtol=0, atol=1e-12)
    query = np.r_[np.random.default_rng(seed).uniform(-0.1, 1.1, 500), u, 0.0, 1.0]
    np.testing.assert_allclose(fit.predict_feature(query), np.interp(query, u, values), rtol=0, atol=1e-12)


@given(validation_sets(), seeds)
def test_fit_is_invariant_to_permuting_the_validation_set(data, seed):
    t, y, feature = data
    perm = np.random.default_rng(seed).permutation(t.shape[0])
    a, b = fit_teacher_accuracy(t, y, feature=feature), fit_teacher_accuracy(t[perm], y[perm], feature=feature)
    np.testing.assert_array_equal(a.knots_x, b.knots_x)
    np.testing.assert_allclose(a.knots_y, b.knots_y, rtol=0, atol=1e-15)


def test_fit_of_a_perfect_and_of_a_useless_teacher():
    t = np.tile([[0.7, 0.2, 0.1]], (150, 1))
    fit = fit_teacher_accuracy(t, np.zeros(150, dtype=np.int64))  # always right, one feature value
    np.testing.assert_allclose(fit.predict(t), 151 / 152)  # Laplace: (150 + 1)/(150 + 2)
    fit = fit_teacher_accuracy(t, np.ones(150, dtype=np.int64))  # always wrong
    np.testing.assert_allclose(fit.predict(t), 1 / 152)


# Prototype sanity check: the margin teacher (docs/theory/noise.md#noise-margin-teacher), alpha(s) = 0.3 + 0.65 s^0.7. Tolerances
# were set from 100 seeds (each bound holds for >= 99 of them); isotonic regression is loose at the ends of
# the range (few points in the end blocks), so the interior and the mean error carry the tight bounds.
PROTOTYPE_S = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


@pytest.mark.parametrize(
    ("n_val", "interior_tol", "end_tol", "mae_tol"),
    [(500, 0.2, 0.25, 0.075), (20_000, 0.05, 0.25, 0.018)],
)
def test_prototype_sanity_check(n_val, interior_tol, end_tol, mae_tol):
    probs, labels, _ = synthetic_teacher(np.random.default_rng(0), n_val)
    fit = fit_teacher_accuracy(probs, labels)
    err = np.abs(fit.predict_feature(PROTOTYPE_S) - true_accuracy(PROTOTYPE_S))
    assert err[1:-1].max() <= interior_tol, err
    assert err[[0, -1]].max() <= end_tol, err
    grid = (np.arange(1000) + 0.5) / 1000
    assert np.mean(np.abs(fit.predict_feature(grid) - true_accuracy(grid))) <= mae_tol
    # the fit goes through the synthetic teacher's probabilities, not only through the feature
    grid_probs, _, _ = synthetic_teacher(np.random.default_rng(1), grid.size, margins=grid)
    np.testing.assert_allclose(fit.predict(grid_probs), fit.predict_feature(grid), atol=1e-12)


def test_small_validation_set_warns():
    t = np.tile([[0.6, 0.4]], (50, 1))
    with pytest.warns(UserWarning, match="50 validation examples"):
        fit_teacher_accuracy(t, np.zeros(50, dtype=np.int64))


def test_teacher_features():
    t = np.array([[0.5, 0.3, 0.2], [1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(teacher_feature(t, "margin"), [0.2, 0.0, 1.0], atol=1e-15)
    np.testing.assert_allclose(teacher_feature(t, "confidence"), [0.5, 1 / 3, 1.0])
    h = -(t[0] * np.log(t[0])).sum()
    np.testing.assert_allclose(teacher_feature(t, "entropy"), [1 - h / np.log(3), 0.0, 1.0], atol=1e-12)


# --------------------------------------------------------------------------------------------------------
# binned_accuracy (docs/theory/weighted.md#weighted-binned-accuracy)


@given(validation_sets(max_n=400), st.sampled_from([None, 1, 3, 7]), st.sampled_from([0.05, 0.1, 0.01]))
def test_binned_accuracy_intervals(data, n_bins, delta):
    t, y, feature = data
    res = binned_accuracy(t, y, feature=feature, n_bins=n_bins, delta=delta)
    n_v = t.shape[0]
    bins = max(1, min(20, n_v // 100)) if n_bins is None else n_bins
    assert res.counts.size == bins and res.counts.sum() == n_v
    assert res.counts.max() - res.counts.min() <= 1  # equal mass
    assert np.all(res.high[:-1] <= res.low[1:]) and np.all(res.low <= res.high)  # consecutive in the feature
    assert res.successes.sum() == int((np.argmax(t, axis=1) == y).sum())
    np.testing.assert_allclose(res.accuracy, res.successes / res.counts)
    z = stats.norm.ppf(1 - delta / 2)
    for b in range(bins):
        k, n = int(res.successes[b]), int(res.counts[b])
        exact = stats.binomtest(k, n).proportion_ci(confidence_level=1 - delta, method="exact")
        np.testing.assert_allclose([res.exact_low[b], res.exact_high[b]], [exact.low, exact.high], atol=1e-12)
        wilson = stats.binomtest(k, n).proportion_ci(confidence_level=1 - delta, method="wilson")
        np.testing.assert_allclose([res.wilson_low[b], res.wilson_high[b]], [wilson.low, wilson.high], atol=1e-12)
        a = k / n  # the theory page's formula, written out
        center = (a + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * np.sqrt(a * (1 - a) / n + z**2 / (4 * n**2))
        np.testing.assert_allclose([res.wilson_low[b], res.wilson_high[b]], [center - half, center + half])
        assert res.hoeffding_radius[b] == pytest.approx(np.sqrt(np.log(2 * bins / delta) / (2 * n)), rel=1e-14)


@pytest.mark.parametrize(("n_v", "bins"), [(2, 1), (99, 1), (250, 2), (1999, 19), (2000, 20), (10_000, 20)])
def test_binned_accuracy_default_number_of_bins(n_v, bins):
    rng = np.random.default_rng(n_v)
    t = random_probs(rng, n_v, 3)
    res = binned_accuracy(t, validation_labels(rng, t))
    assert res.counts.size == bins and res.counts.max() - res.counts.min() <= 1


def test_clopper_pearson_one_sided_and_edges():
    low, high = clopper_pearson([0, 5, 10], [10, 10, 10], 0.05)
    assert low[0] == 0.0 and high[2] == 1.0
    _, upper = clopper_pearson(3, 10, 0.05, side="upper")
    ref = stats.binomtest(3, 10, alternative="less").proportion_ci(confidence_level=0.95, method="exact")
    assert float(upper) == pytest.approx(ref.high, abs=1e-12)
    with pytest.raises(ValueError, match="delta"):
        clopper_pearson(1, 2, 1.5)
    with pytest.raises(ValueError, match="side"):
        clopper_pearson(1, 2, 0.05, side="lower")


# --------------------------------------------------------------------------------------------------------
# choose_top_k (docs/theory/slam.md#slam-estimation), estimate_mistakes (docs/theory/rad.md#rad-mistakes),
# estimate_transition (docs/theory/weighted.md#weighted-baselines)


@given(seeds, st.integers(2, 7), st.integers(1, 120), st.floats(0.05, 1.0), st.booleans())
def test_choose_top_k_is_the_smallest_k_reaching_the_target(seed, k, n, target, ties):
    rng = np.random.default_rng(seed)
    t = random_probs(rng, n, k, ties=ties)
    y = rng.integers(0, k, n)
    chosen = choose_top_k(t, y, target=target)
    # brute force with slam.topk_mask: the label is in the top k iff its row of the mask is 1 there
    acc = {kk: float(np.mean(topk_mask(t, kk)[np.arange(n), y])) for kk in range(2, k + 1)}
    reaching = [kk for kk in range(2, k + 1) if acc[kk] >= target - 1e-12]
    assert chosen == (reaching[0] if reaching else k)
    if k == 2:
        assert chosen == 2


def test_choose_top_k_ties_go_to_the_lower_index():
    t = np.full((10, 4), 0.25)  # every class tied: the order is the class index
    for label in range(4):
        assert choose_top_k(t, np.full(10, label), target=0.9) == max(2, label + 1)
    t = np.tile([[0.4, 0.3, 0.2, 0.1]], (10, 1))
    assert choose_top_k(t, np.full(10, 3), target=0.9) == 4  # the label is always last: only K reaches it
    assert choose_top_k(t, np.full(10, 3), target=1.0) == 4


@given(seeds, st.integers(1, 300), st.integers(0, 10**6), st.sampled_from([0.01, 0.05, 0.2]))
def test_estimate_mistakes_formula_and_conservative_bound(seed, n, pool, delta):
    rng = np.random.default_rng(seed)
    t = random_probs(rng, n, 3)
    y = validation_labels(rng, t)
    errors = int(n - (np.argmax(t, axis=1) == y).sum())
    plain = estimate_mistakes(t, y, pool)
    assert plain == int(np.clip(np.floor((errors / n) * pool + 0.5), 0, pool))
    conservative = estimate_mistakes(t, y, pool, upper=delta)
    assert plain <= conservative <= pool
    ref = stats.binomtest(errors, n, alternative="less").proportion_ci(confidence_level=1 - delta, method="exact")
    assert conservative == int(np.clip(np.ceil(ref.high * pool - 1e-9), 0, pool))


def test_estimate_transition_orientation_and_smoothing():
    t = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])  # the teacher says 0, 1, 1
    y = np.array([0, 0, 1])
    T = estimate_transition(t, y)  # counts [[1, 1], [0, 1]] + 1
    np.testing.assert_allclose(T, [[2 / 4, 2 / 4], [1 / 3, 2 / 3]])
    np.testing.assert_allclose(estimate_transition(t, y, smoothing=0.0), [[0.5, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="labels_val has no example of classes"):
        estimate_transition(t[:2], y[:2], smoothing=0.0)


@given(seeds, st.integers(2, 6), st.integers(1, 200))
def test_estimate_transition_rows_sum_to_one(seed, k, n):
    rng = np.random.default_rng(seed)
    t = random_probs(rng, n, k)
    y = rng.integers(0, k, n)
    T = estimate_transition(t, y)
    np.testing.assert_allclose(T.sum(axis=1), 1.0, atol=1e-12)
    counts = np.zeros((k, k))
    np.add.at(counts, (y, np.argmax(t, axis=1)), 1)
    np.testing.assert_allclose(T, (counts + 1) / (counts + 1).sum(axis=1, keepdims=True))


@given(seeds, st.integers(2, 6))
def test_transition_from_cleanlab_is_the_transpose(seed, k):
    noise_matrix = np.random.default_rng(seed).dirichlet(np.ones(k), k).T  # columns sum to 1
    T = transition_from_cleanlab(noise_matrix)
    np.testing.assert_array_equal(T, noise_matrix.T)
    np.testing.assert_allclose(T.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="noise_matrix"):
        transition_from_cleanlab(np.ones((2, 3)) / 2)
    with pytest.raises(ValueError, match="noise_matrix"):
        transition_from_cleanlab(noise_matrix.T + np.eye(k))  # columns no longer sum to 1


# --------------------------------------------------------------------------------------------------------
# distillation_weights and normalize_weights (docs/theory/weighted.md#weighted-schemes)


def reference_weights(alpha: np.ndarray, k: int, scheme: str) -> np.ndarray:
    """The table of docs/theory/weighted.md#weighted-schemes written out, with the kappa floor for W2 and 0 at or below chance."""
    chance = 1.0 / k
    if scheme == "uniform":
        return np.ones_like(alpha)
    if scheme == "accuracy":
        return alpha.copy()
    out = np.zeros_like(alpha)
    for i, a in enumerate(alpha):
        if a <= chance:
            continue
        if scheme == "inverse":
            out[i] = (k - 1) / (k * max(a, chance + KAPPA) - 1)
        else:
            out[i] = (k * a - 1) / (k - 1)
    return out


alphas = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40).map(np.array)


@given(alphas, st.integers(2, 12), st.sampled_from(SCHEMES))
def test_weights_follow_the_formulas(alpha, k, scheme):
    ref = reference_weights(alpha, k, scheme)
    if not np.any(ref > 0):
        with pytest.raises(ValueError, match="alpha"):
            distillation_weights(alpha, k, scheme)
        return
    w, info = distillation_weights(alpha, k, scheme, return_info=True)
    np.testing.assert_allclose(w, ref, rtol=1e-12, atol=0)
    assert w.shape == alpha.shape and w.dtype == np.float64 and np.all(w >= 0)
    assert np.all(w <= max(1.0, (k - 1) / (k * KAPPA)) * (1 + 1e-12))  # the kappa cap
    zeroed = int(np.sum(alpha <= 1 / k)) if scheme in ("inverse", "signal") else 0
    capped = int(np.sum((alpha > 1 / k) & (alpha < 1 / k + KAPPA))) if scheme == "inverse" else 0
    assert info["zeroed"] == zeroed and info["capped"] == capped and info["scheme"] == scheme
    assert (info["min"], info["median"], info["max"]) == (w.min(), np.median(w), w.max())


@pytest.mark.parametrize(("k", "cap"), [(2, 10.0), (10, 18.0)])
def test_inverse_weights_are_capped_by_the_kappa_floor(k, cap):
    alpha = np.array([1 / k + 1e-9, 1 / k + KAPPA / 2, 1 / k + KAPPA, 1.0])
    w, info = distillation_weights(alpha, k, "inverse", return_info=True)
    np.testing.assert_allclose(w[:3], cap, rtol=1e-12)
    assert w.max() <= cap * (1 + 1e-12) and w[3] == pytest.approx(1.0)
    assert info["capped"] == 2


@pytest.mark.parametrize("scheme", ["inverse", "signal"])
@pytest.mark.parametrize("k", [2, 3, 10])
def test_zero_weight_at_or_below_chance(scheme, k):
    w, info = distillation_weights([1 / k, 0.0, 1 / k / 2, 0.9], k, scheme, return_info=True)
    np.testing.assert_array_equal(w[:3], 0.0)
    assert w[3] > 0 and info["zeroed"] == 3
    with pytest.raises(ValueError, match="alpha"):
        distillation_weights([1 / k, 0.0], k, scheme)
    with pytest.raises(ValueError, match="alpha"):
        distillation_weights([0.0, 0.0], k, "accuracy")


@given(seeds, st.integers(1, 50))
def test_uniform_weights_are_vanilla_distillation(seed, n):
    rng = np.random.default_rng(seed)
    w = distillation_weights(rng.random(n), int(rng.integers(2, 10)), "uniform")
    np.testing.assert_array_equal(w, np.ones(n))
    losses = rng.exponential(size=n)
    assert np.average(losses, weights=normalize_weights(w)) == pytest.approx(losses.mean(), rel=1e-14)
    assert np.mean(normalize_weights(w) * losses) == pytest.approx(losses.mean(), rel=1e-14)


@given(st.lists(st.one_of(st.just(0.0), st.floats(1e-300, 1e6)), min_size=1, max_size=50).filter(lambda v: sum(v) > 0))
def test_normalize_weights_mean_one(values):
    w = normalize_weights(values)
    assert w.mean() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(w * np.sum(values) / len(values), values, rtol=1e-12)


def test_normalize_weights_rejects_negative_and_zero():
    with pytest.raises(ValueError, match="non-negative"):
        normalize_weights([1.0, -1.0])
    with pytest.raises(ValueError, match="all zero"):
        normalize_weights([0.0, 0.0])


@given(seeds, st.integers(1, 60), st.sampled_from(SCHEMES))
def test_permuting_examples_permutes_weights(seed, n, scheme):
    rng = np.random.default_rng(seed)
    alpha = np.r_[0.95, rng.random(n)]  # at least one weight > 0 under every scheme
    perm = rng.permutation(alpha.size)
    np.testing.assert_array_equal(
        distillation_weights(alpha[perm], 4, scheme), distillation_weights(alpha, 4, scheme)[perm]
    )


# --------------------------------------------------------------------------------------------------------
# debiased_targets and importance_targets (docs/theory/weighted.md#weighted-debiased-targets)


def symmetric_teacher(p: np.ndarray, a: np.ndarray) -> np.ndarray:
    """t = a p + (1 - a)(1 - p)/(K - 1): symmetric noise of accuracy a applied to the clean posterior p."""
    k = p.shape[1]
    return a[:, None] * p + (1 - a[:, None]) * (1 - p) / (k - 1)


@given(seeds, st.integers(1, 50), st.integers(2, 10))
def test_debiased_targets_alpha_one_gives_the_teacher(seed, n, k):
    t = random_probs(np.random.default_rng(seed), n, k)
    # "exactly": up to the rounding of (K-1) t/(K-1) and of the renormalisation, i.e. a few ulps
    np.testing.assert_allclose(debiased_targets(t, 1.0), t, rtol=0, atol=1e-15)


@given(seeds, st.integers(1, 50), st.integers(2, 10))
def test_debiased_targets_invert_symmetric_noise(seed, n, k):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k), n)
    a = rng.uniform(1 / k + KAPPA, 1.0, n)
    p_hat = debiased_targets(symmetric_teacher(p, a), a)
    assert p_hat.dtype == np.float64
    np.testing.assert_allclose(p_hat, p, rtol=0, atol=1e-12)


@given(seeds, st.integers(1, 50), st.integers(2, 10), st.booleans())
def test_debiased_targets_rows_lie_on_the_simplex(seed, n, k, ties):
    rng = np.random.default_rng(seed)
    t = random_probs(rng, n, k, ties=ties)
    p_hat = debiased_targets(t, rng.random(n))  # any alpha, including below chance (floored)
    assert np.all(p_hat >= 0)
    np.testing.assert_allclose(p_hat.sum(axis=1), 1.0, atol=1e-12)


@given(seeds, st.integers(1, 50))
def test_binary_debiased_targets(seed, n):
    rng = np.random.default_rng(seed)
    eta = rng.uniform(0.0, 0.5 - KAPPA, n)
    t1 = rng.uniform(eta, 1 - eta)  # inside [eta, 1 - eta]: no clipping
    p_hat = debiased_targets(np.c_[1 - t1, t1], 1 - eta)
    np.testing.assert_allclose(p_hat[:, 1], (t1 - eta) / (1 - 2 * eta), rtol=0, atol=1e-12)


@given(seeds, st.integers(1, 40), st.integers(2, 8), st.floats(0.0, 1.0))
def test_importance_targets_equal_debiased_targets_under_symmetric_noise(seed, n, k, u):
    rng = np.random.default_rng(seed)
    a = 1 / k + KAPPA + u * (1 - 1 / k - KAPPA)
    T = a * np.eye(k) + (1 - a) * (np.ones((k, k)) - np.eye(k)) / (k - 1)
    t = random_probs(rng, n, k)  # arbitrary teacher rows: clipping happens in both
    np.testing.assert_allclose(importance_targets(t, T), debiased_targets(t, a), rtol=0, atol=1e-10)


@given(seeds, st.integers(1, 40), st.integers(2, 8))
def test_liu_tao_identity(seed, n, k):
    """-sum_j p^_j log f_j = E_{j ~ t}[beta_j l(f, j)] with beta = p^/t (Liu & Tao 2016)."""
    rng = np.random.default_rng(seed)
    t = rng.dirichlet(np.ones(k), n) * (1 - 1e-3) + 1e-3 / k  # t_j > 0: beta is defined
    p_hat = debiased_targets(t, rng.random(n))
    log_f = np.log(rng.dirichlet(np.ones(k), n))
    beta = p_hat / t
    np.testing.assert_allclose(-(p_hat * log_f).sum(axis=1), (t * beta * -log_f).sum(axis=1), rtol=1e-12)


@given(seeds, st.integers(1, 40), st.integers(2, 8))
def test_permuting_classes_permutes_debiased_targets(seed, n, k):
    rng = np.random.default_rng(seed)
    t = random_probs(rng, n, k)
    alpha = rng.random(n)
    perm = rng.permutation(k)
    np.testing.assert_allclose(debiased_targets(t[:, perm], alpha), debiased_targets(t, alpha)[:, perm], atol=1e-15)
    rows = rng.permutation(n)
    np.testing.assert_array_equal(debiased_targets(t[rows], alpha[rows]), debiased_targets(t, alpha)[rows])


# --------------------------------------------------------------------------------------------------------
# Bad input: ValueError / TypeError naming the argument

GOOD_T = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
GOOD_Y = np.array([0, 2])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: distillation_weights([0.5, np.nan], 2), ValueError, "alpha"),
        (lambda: distillation_weights([0.5, 1.2], 2), ValueError, "alpha"),
        (lambda: distillation_weights([-0.1, 0.9], 2), ValueError, "alpha"),
        (lambda: distillation_weights([0.9], 2, "confidence"), ValueError, "scheme"),
        (lambda: distillation_weights([0.9], 1), ValueError, "num_classes"),
        (lambda: distillation_weights([0.9], 2.0), ValueError, "num_classes"),
        (lambda: distillation_weights([0.9], "2"), TypeError, "num_classes"),
        (lambda: distillation_weights(["a"], 2), TypeError, "alpha"),
        (lambda: distillation_weights(np.ones((2, 2)), 2), ValueError, "alpha"),
        (lambda: debiased_targets(GOOD_T, [0.9]), ValueError, "alpha"),
        (lambda: debiased_targets(GOOD_T, [0.9, np.nan]), ValueError, "alpha"),
        (lambda: debiased_targets(GOOD_T + [1e-5, 0, 0], 0.9), ValueError, "teacher_probs"),
        (lambda: debiased_targets(np.array([[1.0], [1.0]]), 0.9), ValueError, "teacher_probs"),
        (lambda: debiased_targets(np.log(GOOD_T), 0.9), ValueError, "teacher_probs"),
        (lambda: importance_targets(GOOD_T, np.eye(2)), ValueError, "transition"),
        (lambda: importance_targets(GOOD_T, np.ones((3, 3)) / 3), ValueError, "transition"),
        (lambda: fit_teacher_accuracy(GOOD_T + [1e-5, 0, 0], GOOD_Y), ValueError, "teacher_probs_val"),
        (lambda: fit_teacher_accuracy(GOOD_T, [0, 3]), ValueError, "labels_val"),
        (lambda: fit_teacher_accuracy(GOOD_T, [0, -1]), ValueError, "labels_val"),
        (lambda: fit_teacher_accuracy(GOOD_T, [0, 1, 2]), ValueError, "labels_val"),
        (lambda: fit_teacher_accuracy(GOOD_T, [0.0, 1.0]), TypeError, "labels_val"),
        (lambda: fit_teacher_accuracy(GOOD_T, GOOD_Y, feature="variance"), ValueError, "feature"),
        (lambda: fit_teacher_accuracy(GOOD_T[:1], GOOD_Y[:1]), ValueError, "at least 2"),
        (lambda: teacher_feature(GOOD_T, "margins"), ValueError, "feature"),
        (lambda: binned_accuracy(GOOD_T, GOOD_Y, feature="logit"), ValueError, "feature"),
        (lambda: binned_accuracy(GOOD_T, GOOD_Y, n_bins=3), ValueError, "n_bins"),
        (lambda: binned_accuracy(GOOD_T, GOOD_Y, delta=0.0), ValueError, "delta"),
        (lambda: binned_accuracy(GOOD_T, GOOD_Y[:1]), ValueError, "labels_val"),
        (lambda: choose_top_k(GOOD_T, GOOD_Y, target=0.0), ValueError, "target"),
        (lambda: choose_top_k(GOOD_T, [5, 0]), ValueError, "labels_val"),
        (lambda: estimate_mistakes(GOOD_T, GOOD_Y, -1), ValueError, "pool_size"),
        (lambda: estimate_mistakes(GOOD_T, GOOD_Y, 10, upper=1.0), ValueError, "upper"),
        (lambda: estimate_transition(GOOD_T, GOOD_Y, smoothing=-1.0), ValueError, "smoothing"),
        (lambda: normalize_weights([1.0, np.inf]), ValueError, "weights"),
    ],
)
def test_bad_input_names_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_predict_checks_its_input():
    fit = fit_teacher_accuracy(*_big_validation_set())
    with pytest.raises(ValueError, match="classes"):
        fit.predict(np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="teacher_probs"):
        fit.predict(np.array([[0.5, 0.5, 0.1]]))


def _big_validation_set():
    rng = np.random.default_rng(0)
    t = random_probs(rng, 200, 3)
    return t, validation_labels(rng, t)
