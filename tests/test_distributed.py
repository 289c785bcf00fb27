"""Exact order statistics, top-b and selection over a pool sharded across ranks: in one process they equal
their single-process counterparts; under two gloo processes (spawned here) every rank's part of the top-b
equals its slice of the single-process ``top_b`` on the whole pool (ties drawn by the same ``rng``), RAD's
probabilities equal the single-process solver's to 1e-12, the baselines pick the single-process indices, and
DepRound across the ranks keeps the marginals and the batch size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from gloo import run_ranks
from scipy import stats

from robustdistill.algorithms.selection import SELECTORS, NearUniformWarning, select, top_b
from robustdistill.experiments.distributed import (
    all_sum,
    depround_sharded,
    kth_largest,
    select_sharded,
    shard_of,
    sharded_top_b,
)

pytestmark = pytest.mark.xdist_group("test_distributed")  # its module fixture spawns processes once

#: Pools with ties at the b-th score, negative zeros and one-element shards; (pool, shard sizes, budgets).
CASES = [
    (np.array([0.3, -0.0, 0.7, 0.7, 0.0, -2.5, 0.7, 1e-300, 0.7, 5.0]), (4, 6), (1, 3, 4, 5, 9)),
    (np.repeat([1.0, 2.0], 7), (1, 13), (1, 7, 8, 13)),
    (np.random.default_rng(0).integers(0, 5, 200).astype(float), (120, 80), (1, 17, 50, 199)),
]


def test_one_process_equals_the_single_process_functions():
    for pool, _, budgets in CASES:
        assert shard_of(pool.size).offset == 0
        for b in budgets:
            assert kth_largest(pool, b) == np.sort(pool)[::-1][b - 1]
            np.testing.assert_array_equal(sharded_top_b(pool, b, rng=7), top_b(pool, b, rng=7))
    with pytest.raises(ValueError, match="k"):
        kth_largest(np.ones(3), 4)
    with pytest.raises(ValueError, match="scores must be finite"):
        sharded_top_b(np.array([1.0, np.nan]), 1)


def _worker(rank: int, world: int) -> list:
    out = []
    for pool, sizes, budgets in CASES:
        start = sum(sizes[:rank])
        shard = pool[start : start + sizes[rank]]
        for b in budgets:
            out.append((kth_largest(shard, b), sharded_top_b(shard, b, rng=11).tolist()))
    return out


def test_two_gloo_processes_give_the_single_process_selection():
    results = run_ranks(_worker, 2)
    expected = [
        (np.sort(pool)[::-1][b - 1], top_b(pool, b, rng=11).tolist()) for pool, _, budgets in CASES for b in budgets
    ]
    for i, (kth, chosen) in enumerate(expected):
        assert results[0][i][0] == results[1][i][0] == kth
        assert sorted(results[0][i][1] + results[1][i][1]) == chosen


# ---------------------------------------------------------------------------------------- select_sharded
def _pool(seed: int, n: int, k: int = 10) -> np.ndarray:
    gen = np.random.default_rng(seed)
    probs = gen.dirichlet(np.ones(k) * gen.choice([0.3, 3.0]), size=n)
    if seed % 2:  # coarse probabilities: many tied gains
        probs = np.round(probs, 2) + 1e-3
    return probs / probs.sum(axis=1, keepdims=True)


#: (pool seed, pool size, shard sizes, budget, mistakes): uneven shards, an empty shard, m = 0, m > b, m >> b
#: (a prefix that must grow), b at least the positive gains, m at least the positive gains.
RAD_CASES = [
    (0, 3000, (1800, 1200), 40, 10),
    (1, 3000, (0, 3000), 25, 0),
    (2, 3000, (2999, 1), 60, 300),
    (3, 2000, (700, 1300), 30, 1500),
    (4, 400, (150, 250), 400, 5),
    (5, 400, (200, 200), 20, 400),
]
#: DepRound's marginals: 12 points in shards of 5 and 7 (sums 1.5 and 3.5: the ranks' remainders
#: are large), 10,000 draws.
DEPROUND_P = np.array([0.4, 0.15, 0.5, 0.33, 0.12, 0.61, 0.25, 1.0, 0.0, 0.44, 0.58, 0.62])
DEPROUND_SHARDS, DEPROUND_DRAWS = (5, 7), 10_000


def _shards(array: np.ndarray, sizes: tuple[int, ...], rank: int) -> np.ndarray:
    start = sum(sizes[:rank])
    return array[start : start + sizes[rank]]


def _select_worker(rank: int, world: int, folder: str) -> dict:
    out: dict = {"rad": [], "baselines": [], "mapped": None}
    for seed, n, sizes, b, m in RAD_CASES:
        shard = _shards(_pool(seed, n), sizes, rank)
        sel = select_sharded(shard, b, m, rng=seed)
        out["rad"].append((sel.indices.tolist(), sel.probabilities.copy(), dict(sel.diagnostics)))
        out["baselines"].append(
            [select_sharded(shard, b, rng=seed, selector=name).indices.tolist() for name in BASELINES]
        )
    # a memory-mapped shard read in chunks of 7 rows gives the same probabilities
    seed, n, sizes, b, m = RAD_CASES[0]
    path = os.path.join(folder, f"shard_{rank}.npy")
    np.save(path, _shards(_pool(seed, n), sizes, rank))
    out["mapped"] = select_sharded(np.load(path, mmap_mode="r"), b, m, rng=seed, chunk_rows=7).probabilities
    gen = np.random.default_rng(123)
    local = _shards(DEPROUND_P, DEPROUND_SHARDS, rank)
    counts, sizes = np.zeros(local.size, dtype=np.int64), np.zeros(DEPROUND_DRAWS, dtype=np.int64)
    for draw in range(DEPROUND_DRAWS):
        chosen = depround_sharded(local, rng=gen)
        counts[chosen] += 1
        sizes[draw] = chosen.size
    out["depround"] = (counts, set(all_sum(sizes).tolist()))  # the batch sizes over both ranks
    return out


BASELINES = ("random", "margin", "entropy", "least_confidence")


@pytest.fixture(scope="module")
def two_rank_selection(tmp_path_factory):
    return run_ranks(_select_worker, 2, str(tmp_path_factory.mktemp("shards")))


def test_one_process_select_sharded_is_select():
    for seed, n, _, b, m in RAD_CASES:
        probs = _pool(seed, n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NearUniformWarning)
            single, sharded = select(probs, b, m, rng=seed), select_sharded(probs, b, m, rng=seed, chunk_rows=333)
        np.testing.assert_array_equal(sharded.indices, single.indices)
        assert np.abs(sharded.probabilities - single.probabilities).max() <= 1e-12
        for name in BASELINES:
            expected = SELECTORS[name](probs, b, rng=seed).indices
            np.testing.assert_array_equal(select_sharded(probs, b, rng=seed, selector=name).indices, expected)


def test_two_ranks_give_the_single_process_probabilities(two_rank_selection):
    for case, (seed, n, sizes, b, m) in enumerate(RAD_CASES):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NearUniformWarning)
            single = select(_pool(seed, n), b, m, rng=seed)
        chosen = []
        for rank in (0, 1):
            indices, probabilities, diagnostics = two_rank_selection[rank]["rad"][case]
            expected = _shards(single.probabilities, sizes, rank)
            assert probabilities.shape == expected.shape
            assert np.abs(probabilities - expected).max(initial=0.0) <= 1e-12, (case, rank)
            for key, value in single.diagnostics.items():
                assert diagnostics[key] == pytest.approx(value, rel=1e-12, abs=1e-12), (case, key)
            assert all(sum(sizes[:rank]) <= i < sum(sizes[: rank + 1]) for i in indices)
            chosen += indices
        assert len(chosen) == len(set(chosen)) == b  # exactly b distinct points
        assert all(single.probabilities[i] > 0 for i in chosen)


def test_two_ranks_give_the_single_process_baselines(two_rank_selection):
    for case, (seed, n, _, b, _) in enumerate(RAD_CASES):
        for j, name in enumerate(BASELINES):
            expected = SELECTORS[name](_pool(seed, n), b, rng=seed).indices.tolist()
            union = two_rank_selection[0]["baselines"][case][j] + two_rank_selection[1]["baselines"][case][j]
            assert sorted(union) == expected, (case, name)


def test_a_memory_mapped_shard_gives_the_same_probabilities(two_rank_selection):
    for rank in (0, 1):
        np.testing.assert_array_equal(two_rank_selection[rank]["mapped"], two_rank_selection[rank]["rad"][0][1])


def test_depround_across_two_ranks_keeps_the_marginals_and_the_batch_size(two_rank_selection):
    """Each point's count over the draws is Binomial(draws, p_i) when the marginals are exact; a two-sided
    binomial test per point at level 1e-6 / 12 (Bonferroni): the false-failure probability is at most 1e-6.
    The batch size is exactly sum(p) = 5 on every draw."""
    counts = np.concatenate([two_rank_selection[0]["depround"][0], two_rank_selection[1]["depround"][0]])
    for rank in (0, 1):
        assert two_rank_selection[rank]["depround"][1] == {round(DEPROUND_P.sum())}
    for p, count in zip(DEPROUND_P, counts, strict=True):
        if p in (0.0, 1.0):
            assert count == p * DEPROUND_DRAWS
        else:
            assert stats.binomtest(int(count), DEPROUND_DRAWS, p).pvalue > 1e-6 / DEPROUND_P.size, (p, count)


# ---------------------------------------------------------------------------------------- the command line
def _robustdistill(*args: str, launch: int = 1, cwd=None) -> subprocess.CompletedProcess:
    script = str(Path(sys.executable).with_name("robustdistill"))
    prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={launch}"]
    command = [*prefix, script] if launch > 1 else [sys.executable, script]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd, timeout=300, check=False)


def test_select_command_under_torchrun_equals_one_process(tmp_path):
    probs = _pool(6, 3001)  # an odd pool: shards of 1500 and 1501 rows
    np.save(tmp_path / "pool.npy", probs.astype(np.float32))
    options = ["--budget", "40", "--mistakes", "15", "--seed", "3", "--quiet"]
    one = _robustdistill("select", str(tmp_path / "pool.npy"), *options, "--out", str(tmp_path / "one"))
    two = _robustdistill("select", str(tmp_path / "pool.npy"), *options, "--out", str(tmp_path / "two"), launch=2)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr[-3000:]
    p_one, p_two = np.load(tmp_path / "one" / "probabilities.npy"), np.load(tmp_path / "two" / "probabilities.npy")
    assert np.abs(p_one - p_two).max() <= 1e-12
    chosen = np.load(tmp_path / "two" / "selection.npy")
    assert chosen.size == np.unique(chosen).size == 40 and (p_two[chosen] > 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NearUniformWarning)
        expected = select(np.load(tmp_path / "pool.npy"), 40, 15, rng=3)
    np.testing.assert_array_equal(np.load(tmp_path / "one" / "selection.npy"), expected.indices)
    summary = json.loads((tmp_path / "two" / "selection.json").read_text())
    assert summary["diagnostics"]["support_size"] == expected.diagnostics["support_size"]
    bad = _robustdistill("select", str(tmp_path / "missing.npy"), *options, "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "missing.npy" in bad.stderr
