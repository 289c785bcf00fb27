"""Selection (algorithms.selection, algorithms.rad.select): gains, exact budgets, seeds, RAD with m = 0 equal
to margin top-b, tie breaking, the coreset and BADGE rules, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from robustdistill.algorithms.rad import informativeness, select
from robustdistill.algorithms.selection import SELECTORS, Selection, badge, coreset, mix_inputs, top_b, unixkd


def _pool(seed: int, n: int, k: int = 5, d: int = 4):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(k), n), rng.normal(size=(n, d))


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), frac=st.floats(0, 1), name=st.sampled_from(sorted(SELECTORS)))
def test_every_selector_returns_exactly_b_distinct_pool_indices_and_is_seeded(seed, n, frac, name):
    probs, h = _pool(seed, n)
    b = int(round(frac * n))
    kwargs = {"mistakes": b // 3, "embeddings": h, "center_embeddings": h[:2]}
    sel = SELECTORS[name](probs, b, rng=seed, **kwargs)
    assert sel.indices.dtype == np.int64 and sel.indices.shape == (b,)
    assert np.unique(sel.indices).size == b and (b == 0 or 0 <= sel.indices.min() <= sel.indices.max() < n)
    again = SELECTORS[name](probs, b, rng=seed, **kwargs)
    np.testing.assert_array_equal(sel.indices, again.indices)
    if sel.probabilities is not None:
        assert sel.probabilities.sum() == pytest.approx(b, abs=1e-9)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 80), frac=st.floats(0, 1), kind=st.sampled_from(["margin", "entropy", "least_confidence"]))
def test_rad_without_mistakes_is_greedy_top_b(seed, n, frac, kind):
    probs, _ = _pool(seed, n)
    b = int(round(frac * n))
    rad = select(probs, b, 0, rng=seed, kind=kind)
    top = SELECTORS[kind](probs, b, rng=seed)
    np.testing.assert_array_equal(rad.indices, top.indices)  # continuous gains: no ties almost surely


def test_gains_match_their_formulas():
    p = np.array([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(informativeness(p, "margin"), [0.5, 1.0, 0.0])
    np.testing.assert_allclose(informativeness(p, "least_confidence"), [0.45, 1.0, 0.0])
    ent = -(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)) / np.log(3)
    np.testing.assert_allclose(informativeness(p, "entropy"), [ent, 1.0, 0.0])
    with pytest.raises(ValueError, match="kind"):
        informativeness(p, "variance")


def test_ties_at_the_bth_score_are_broken_uniformly():
    """All scores equal: each of 10 points is picked in 3 of 10 on average; over 4000 seeds every count is
    within 5 binomial standard errors of 1200 (false-failure probability <= 10 * 5.7e-7)."""
    counts = np.zeros(10)
    for seed in range(4000):
        counts[top_b(np.ones(10), 3, rng=seed)] += 1
    se = np.sqrt(4000 * 0.3 * 0.7)
    assert np.all(np.abs(counts - 1200) <= 5 * se)
    np.testing.assert_array_equal(top_b([0.1, 0.9, 0.5, 0.9], 2, rng=0), [1, 3])


def test_coreset_and_badge_rules():
    probs = np.full((5, 2), 0.5)
    h = np.array([[0.0], [1.0], [2.0], [10.0], [4.0]])
    # centers at 0: the farthest point (10) first, then the point farthest from {0, 10} (4, at distance 4)
    sel = coreset(probs, 2, embeddings=h, center_embeddings=[[0.0]], rng=0)
    np.testing.assert_array_equal(sel.indices, [3, 4])
    # BADGE: the first center has the largest gradient-embedding norm |f - onehot| |h|
    p = np.array([[0.9, 0.1], [0.6, 0.4], [0.5, 0.5], [0.99, 0.01]])
    e = np.ones((4, 3))
    assert 2 in badge(p, 1, embeddings=e, rng=0).indices


def test_cluster_margin_spreads_over_clusters():
    """Two far-apart clusters, b = 2: one point from each, both among the lowest-margin candidates."""
    rng = np.random.default_rng(0)
    h = np.concatenate([rng.normal(0, 0.1, (30, 2)), rng.normal(10, 0.1, (30, 2))])
    probs = rng.dirichlet(np.ones(3), 60)
    from robustdistill.algorithms.selection import cluster_assignments, cluster_margin

    ids = cluster_assignments(h, 2, rng=0)
    assert set(ids[:30]) != set(ids[30:]) and len(set(ids[:30])) == 1
    sel = cluster_margin(probs, 2, clusters=ids, rng=0)
    assert len({int(ids[i]) for i in sel.indices}) == 2
    candidates = top_b(informativeness(probs, "margin"), 20, rng=0)
    assert set(sel.indices) <= set(candidates)


def test_unixkd_rule():
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(10), 400)
    sel = unixkd(probs, 120, rng=3)  # chunks of 48, 48, 24
    entropy = informativeness(probs, "entropy")
    np.testing.assert_array_equal(sel.indices, np.sort(np.argsort(-entropy)[:120]))  # top-b by entropy (no ties)
    partner, mu = sel.mix
    assert partner.shape == mu.shape == (120,) and set(partner) <= set(sel.indices)
    assert np.all((mu >= 0) & (mu < 1))
    # per chunk: partner is a permutation of the chunk; the 32 most uncertain stay unmixed (mu < 1e-8), and
    # the ranks past 32 share one weight 1 - lambda (sigma(1000 (r - 32) / 48) = 1 to float precision)
    unmixed = mu < 1e-8
    assert unmixed.sum() == 32 + 32 + 24
    mixed = np.unique(np.round(mu[mu > 1e-8], 6))
    assert mixed.size == 4  # rank 32 of each full chunk at (1 - lambda) / 2, the rest at 1 - lambda
    again = unixkd(probs, 120, rng=3)
    np.testing.assert_array_equal(again.mix[0], partner)
    np.testing.assert_array_equal(again.mix[1], mu)


def test_mix_inputs():
    x = np.arange(12.0).reshape(4, 3)
    mixed = mix_inputs(x, Selection(np.array([0, 2]), None, (np.array([2, 3]), np.array([0.0, 0.25]))))
    np.testing.assert_allclose(mixed, [x[0], 0.75 * x[2] + 0.25 * x[3]])
    np.testing.assert_array_equal(mix_inputs(x, Selection(np.array([1, 3]))), x[[1, 3]])
    img = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    out = mix_inputs(img, Selection(np.array([0]), None, (np.array([1]), np.array([0.5]))))
    assert out.dtype == np.uint8 and out.tolist() == [[128, 128]]


def test_bad_input():
    probs, h = _pool(0, 10)
    with pytest.raises(ValueError, match="budget"):
        SELECTORS["margin"](probs, 11, rng=0)
    with pytest.raises(ValueError, match="mistakes"):
        SELECTORS["rad"](probs, 3, rng=0)
    with pytest.raises(ValueError, match="embeddings"):
        SELECTORS["coreset"](probs, 3, rng=0)
    with pytest.raises(ValueError, match="embeddings"):
        SELECTORS["badge"](probs, 3, rng=0, embeddings=h[:5])
    with pytest.raises(ValueError, match="finite"):
        top_b([0.1, np.nan], 1, rng=0)
    with pytest.raises(ValueError, match="budget"):
        top_b([0.1, 0.2], 3, rng=0)
    with pytest.raises(ValueError, match="sum to 1"):
        SELECTORS["random"](probs * 2, 3, rng=0)
