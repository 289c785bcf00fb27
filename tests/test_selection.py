"""Selection (algorithms.selection, algorithms.rad.select): gains, exact budgets, seeds, RAD with m = 0 equal
to margin top-b, tie breaking, the coreset and BADGE rules, indices usable as torch indices, one calling
convention for ``mistakes``, RAD's diagnostics and NearUniformWarning, and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from robustdistill.algorithms import rad as rad_module
from robustdistill.algorithms import selection as selection_module
from robustdistill.algorithms.query_game import solve_query_game
from robustdistill.algorithms.rad import informativeness, select
from robustdistill.algorithms.selection import (
    NEAR_UNIFORM_RATIO,
    SELECTORS,
    NearUniformWarning,
    Selection,
    badge,
    coreset,
    mix_inputs,
    top_b,
    unixkd,
)


def _pool(seed: int, n: int, k: int = 5, d: int = 4):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(k), n), rng.normal(size=(n, d))


# Small random pools with b close to n make RAD's law legitimately near-uniform (e.g. n = 4, b = 3, m = 1:
# uniform sampling guarantees 98% of V*); this test is about sizes and seeds, not about that warning.
@pytest.mark.filterwarnings("ignore::robustdistill.algorithms.selection.NearUniformWarning")
@given(
    seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), frac=st.floats(0, 1), name=st.sampled_from(sorted(SELECTORS))
)
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


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 80),
    frac=st.floats(0, 1),
    kind=st.sampled_from(["margin", "entropy", "least_confidence"]),
)
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


# ----------------------------------------------------------------------------------------------------
# Selection.indices as a torch index


@pytest.mark.parametrize("name", sorted(SELECTORS))
def test_indices_are_a_torch_index_without_warnings(name):
    """torch.as_tensor refuses read-only numpy buffers with a UserWarning: indices must be writable (only
    them: probabilities stay read-only) and int64, for every selector. torch issues that warning once per
    process, so the writable flag, its cause, is asserted directly as well."""
    n, b = 50, 10
    probs, h = _pool(7, n)
    sel = SELECTORS[name](probs, b, rng=0, mistakes=1, embeddings=h, center_embeddings=h[:2])
    assert sel.indices.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        as_tensor = torch.as_tensor(sel.indices)
        picked = torch.arange(n)[sel.indices]
    assert sel.indices.dtype == np.int64 and as_tensor.dtype == torch.int64
    assert picked.tolist() == sel.indices.tolist()
    if sel.probabilities is not None:
        assert not sel.probabilities.flags.writeable


def test_selection_copies_read_only_indices_and_freezes_the_rest():
    frozen = np.array([3, 1, 2], dtype=np.int64)
    frozen.setflags(write=False)
    probs = np.full(4, 0.75)
    sel = Selection(frozen, probs)
    assert sel.indices.flags.writeable and not np.shares_memory(sel.indices, frozen)
    assert not probs.flags.writeable  # probabilities: frozen in place, as every other result array
    sol = solve_query_game(np.array([0.9, 0.5, 0.1]), 1, 1)
    assert not sol.probabilities.flags.writeable and not sol.adversary.flags.writeable


# ----------------------------------------------------------------------------------------------------
# One calling convention for mistakes: f(student_probs, budget, mistakes, *, rng=None, kind="margin")


@pytest.mark.parametrize("kind", ["margin", "entropy"])
def test_select_and_rad_take_mistakes_by_position_or_keyword(kind):
    probs, h = _pool(3, 80)
    b, m = 10, 2  # uniform_ratio 0.89 (margin) and 0.93 (entropy): no NearUniformWarning
    calls = [
        lambda: select(probs, b, m, rng=5, kind=kind),
        lambda: select(probs, b, mistakes=m, rng=5, kind=kind),
        lambda: selection_module.rad(probs, b, m, rng=5, kind=kind),
        lambda: selection_module.rad(probs, b, mistakes=m, rng=5, kind=kind),
        lambda: SELECTORS["rad"](probs, b, rng=5, mistakes=m, kind=kind, embeddings=h, center_embeddings=h[:2]),
    ]
    first = calls[0]()
    for call in calls[1:]:
        sel = call()
        np.testing.assert_array_equal(sel.indices, first.indices)
        np.testing.assert_array_equal(sel.probabilities, first.probabilities)
        assert sel.diagnostics == first.diagnostics
    with pytest.raises(ValueError, match="mistakes"):
        selection_module.rad(probs, b, None, rng=0)
    with pytest.raises(TypeError):
        selection_module.rad(probs, b, m, 5)  # rng is keyword-only, as in select


# ----------------------------------------------------------------------------------------------------
# RAD's diagnostics and NearUniformWarning


def _binary_pool(gains: np.ndarray) -> np.ndarray:
    """Two-class student probabilities whose margin gains are exactly ``gains``: (1/2 +- (1 - g)/2)."""
    d = 1.0 - gains
    return np.stack([0.5 + d / 2, 0.5 - d / 2], axis=1)


def _independent_value(p: np.ndarray, gains: np.ndarray, m: int) -> float:
    """sum(p g) minus its m largest terms, by a full sort (not the solver's partition)."""
    q = np.sort(p * gains)
    return float(q[: max(q.size - m, 0)].sum())


def test_near_uniform_warning_fires_when_mistakes_dwarf_the_budget():
    """n = 1000 gains in [0.9, 1], b = 10, m = 500: RAD spreads p* over the whole pool and uniform sampling
    guarantees > 95% of V*; the warning names m, b, n, the support size and the ratio, and points at the
    caller (select and rad alike)."""
    gains = np.random.default_rng(0).uniform(0.9, 1.0, 1000)
    probs = _binary_pool(gains)
    with pytest.warns(NearUniformWarning) as record:
        sel = select(probs, 10, 500, rng=0)
    assert len(record) == 1
    d = sel.diagnostics
    assert d["uniform_ratio"] >= NEAR_UNIFORM_RATIO and d["support_size"] == 1000
    message = str(record[0].message)
    for part in ("m = 500", "b = 10", "n = 1000", "1000 of the 1000", f"{d['uniform_ratio']:.1%}", "deterministic"):
        assert part in message
    assert record[0].filename == __file__
    with pytest.warns(NearUniformWarning) as record:
        SELECTORS["rad"](probs, 10, rng=0, mistakes=500)
    assert record[0].filename == __file__
    assert issubclass(NearUniformWarning, UserWarning)
    assert rad_module.NearUniformWarning is NearUniformWarning
    assert rad_module.NEAR_UNIFORM_RATIO == NEAR_UNIFORM_RATIO == 0.95


@pytest.mark.parametrize(("low", "budget", "mistakes"), [(0.9, 10, 0), (0.0, 100, 5), (0.0, 100, 20)])
def test_no_near_uniform_warning_without_mistakes_or_on_spread_gains(low, budget, mistakes):
    """m = 0 never warns (even on flat gains, where uniform also reaches ~95%: RAD is greedy top-b there);
    few mistakes per budget on gains spread over [0, 1] leave uniform far below V*."""
    gains = np.random.default_rng(1).uniform(low, 1.0, 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sel = select(_binary_pool(gains), budget, mistakes, rng=0)
    if low > 0:
        assert sel.diagnostics["uniform_ratio"] > 0.9  # would warn if m > 0
    else:
        assert sel.diagnostics["uniform_ratio"] < 0.7


@pytest.mark.parametrize("budget", [0, 1000])
def test_no_near_uniform_warning_when_there_is_no_choice(budget):
    """b = 0 (nothing queried, V* = 0) and b = n (every point queried): every selector gives the same set."""
    gains = np.random.default_rng(2).uniform(0.9, 1.0, 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sel = select(_binary_pool(gains), budget, 500, rng=0)
    assert sel.diagnostics["uniform_ratio"] == pytest.approx(1.0)


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 80),
    frac=st.floats(0, 1),
    m_frac=st.floats(0, 2),
    kind=st.sampled_from(["margin", "entropy", "least_confidence"]),
)
def test_rad_diagnostics_are_exact(seed, n, frac, m_frac, kind):
    """support_size = count_nonzero(p*); uniform_ratio = F(b/n) / V* (1 when V* = 0), recomputed by a full
    sort; the warning is issued exactly when m > 0, 0 < b < n and the ratio reaches the threshold."""
    probs, _ = _pool(seed, n)
    b = int(round(frac * n))
    m = int(round(m_frac * b))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sel = select(probs, b, m, rng=seed, kind=kind)
    gains = informativeness(probs, kind)
    v_star = _independent_value(sel.probabilities, gains, m)
    assert v_star == pytest.approx(solve_query_game(gains, b, m).value, rel=1e-12, abs=1e-12)
    uniform = _independent_value(np.full(n, b / n), gains, m)
    ratio = uniform / v_star if v_star > 0 else 1.0
    d = sel.diagnostics
    assert d == {
        "mistakes": m,
        "budget": b,
        "pool": n,
        "support_size": int(np.count_nonzero(sel.probabilities)),
        "uniform_ratio": pytest.approx(ratio, rel=1e-9),
    }
    assert isinstance(d["support_size"], int) and isinstance(d["uniform_ratio"], float)
    warned = [w for w in caught if issubclass(w.category, NearUniformWarning)]
    assert len(warned) == int(m > 0 and 0 < b < n and d["uniform_ratio"] >= NEAR_UNIFORM_RATIO)
    assert sel.to_dict()["diagnostics"] == d


@pytest.mark.parametrize("name", sorted(set(SELECTORS) - {"rad"}))
def test_other_selectors_have_no_diagnostics(name):
    probs, h = _pool(4, 30)
    sel = SELECTORS[name](probs, 5, rng=0, mistakes=1, embeddings=h, center_embeddings=h[:2])
    assert sel.diagnostics is None
