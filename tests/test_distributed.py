"""Exact order statistics and top-b over a pool sharded across ranks: in one process they equal their
single-process counterparts; under two gloo processes (spawned here) every rank's part of the top-b equals
its slice of the single-process ``top_b`` on the whole pool, ties drawn by the same ``rng``."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from robustdistill.algorithms.selection import top_b
from robustdistill.experiments.distributed import kth_largest, shard_of, sharded_top_b

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        out = []
        for pool, sizes, budgets in CASES:
            start = sum(sizes[:rank])
            shard = pool[start : start + sizes[rank]]
            for b in budgets:
                out.append((kth_largest(shard, b), sharded_top_b(shard, b, rng=11).tolist()))
        results[rank] = out
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_give_the_single_process_selection():
    world = 2
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(world, _free_port(), results), nprocs=world, join=True)
        results = dict(results)
    expected = [
        (np.sort(pool)[::-1][b - 1], top_b(pool, b, rng=11).tolist()) for pool, _, budgets in CASES for b in budgets
    ]
    for i, (kth, chosen) in enumerate(expected):
        assert results[0][i][0] == results[1][i][0] == kth
        assert sorted(results[0][i][1] + results[1][i][1]) == chosen
