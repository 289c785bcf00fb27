"""The active distillation benchmark (experiments.benchmarks.active): its quick grid runs every selector with both
losses, pairs the seeds, and prints and writes what it measured."""

from __future__ import annotations

import json

import numpy as np

from robustdistill.algorithms.selection import SELECTORS
from robustdistill.experiments.benchmarks import active as bench_active
from robustdistill.experiments.pipeline.files import write_json_atomic


def test_quick_grid(tmp_path):
    result = bench_active.run(quick=True, progress=False, out=str(tmp_path / "out"), cache=str(tmp_path / "cache"))
    rows = result["rows"]
    assert {(r["loss"], r["selector"]) for r in rows} == {(loss, s) for loss in bench_active.LOSSES for s in SELECTORS}
    for r in rows:
        assert r["queries"] == [0, 10, 20] and len(r["mean"]) == 3 and len(r["accuracy"]) == 2
        np.testing.assert_allclose(r["mean"], np.mean(r["accuracy"], axis=0))
        assert 0.0 <= r["teacher_wrong_share"] <= 1.0
    # the paired difference is the mean of the per-seed final-round differences
    cell = {r["selector"]: r for r in rows if r["loss"] == "vanilla"}
    diff = [a[-1] - b[-1] for a, b in zip(cell["rad"]["accuracy"], cell["margin"]["accuracy"])]
    pair = next(p for p in result["paired"] if p["loss"] == "vanilla" and p["comparison"] == "rad - margin")
    assert pair["mean"] == np.mean(diff) and pair["seeds"] == 2
    text = bench_active.table(result)
    assert all(name in text for name in SELECTORS) and "rad - random" in text
    noise = result["noise"][0]
    assert noise["dataset"] == "digits" and 0.0 <= noise["error_pool"] <= 1.0
    assert set(noise["useful_gain"]) == {"rad", "greedy", "uniform"}
    path = write_json_atomic(tmp_path / "bench_active.json", result)
    assert json.loads(path.read_text())["rows"][0]["selector"] == rows[0]["selector"]


def test_seed_count_is_validated_before_any_work():
    import pytest

    from robustdistill.experiments.benchmarks import distill as bench_distill

    with pytest.raises(ValueError, match="seeds"):
        bench_active.run(seeds=0)
    with pytest.raises(ValueError, match="seeds"):
        bench_distill.run(seeds=0)
