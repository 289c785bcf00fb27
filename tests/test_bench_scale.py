"""The scale benchmark at a small size: its rows, the comparison with the whole-pool selection, the ratios and
targets it reports, and its command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robustdistill.experiments.benchmarks import scale

pytestmark = pytest.mark.xdist_group("test_bench_scale")  # its module fixture spawns processes once


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return scale.run(
        quick=True, sizes=(2 * scale.QUICK_PIECE,), workdir=tmp_path_factory.mktemp("scale"), labeling=False
    )


def test_rows_compare_sharded_selection_with_pieces_and_the_whole_pool(small_run):
    rows = {r["mode"]: r for r in small_run["rows"]}
    assert set(rows) == {"pieces", "sharded", "margin", "exact"}
    assert rows["exact"]["max_abs_diff"] <= 1e-12
    assert rows["sharded"]["ratio"] == pytest.approx(rows["sharded"]["seconds"] / rows["pieces"]["seconds"])
    assert rows["sharded"]["b"] == 200 and rows["sharded"]["m"] == 20 and rows["sharded"]["support"] >= 200
    for row in rows.values():
        assert 0 < row["rss_after_imports_gb"] <= row["peak_rss_gb"]
    assert small_run["targets_met"] == {"peak_rss_1e8_gb": None, "time_ratio_1e8": None}  # 10^8 not run
    assert "sharded" in scale.table(small_run)


def test_sizes_must_be_whole_pieces(tmp_path):
    with pytest.raises(ValueError, match="multiples"):
        scale.run(quick=True, sizes=(scale.QUICK_PIECE + 1,), workdir=tmp_path)


def test_write_pool_rows_lie_on_the_simplex(tmp_path):
    pool = np.load(scale.write_pool(tmp_path / "p.npy", 2500, seed=3, chunk=1000), mmap_mode="r")
    assert pool.shape == (2500, 10) and pool.dtype == np.float32
    np.testing.assert_allclose(np.asarray(pool, dtype=np.float64).sum(axis=1), 1.0, atol=1e-6)


def test_the_labeling_measurement_is_part_of_the_result(tmp_path, monkeypatch):
    protocol = {"pool": "P", "teacher": "T", "shard_rows": 8, "batch_size": 4, "torch_threads_per_process": 1}
    measured = {"protocol": protocol, "rows": [], "cases": [], "seed": 0}
    monkeypatch.setattr(scale, "labeling_run", lambda **kwargs: {**measured, "kwargs": kwargs})
    monkeypatch.setattr(scale, "labeling_table", lambda result: "LABELING TABLE")
    fake = {"seconds": 1.0, "peak_rss": 2e8, "rss_after_imports": 1e8, "support": 150, "max_abs_diff": 0.0}
    monkeypatch.setattr(scale, "_measure", lambda mode, *args: dict(fake))  # no selection runs here
    result = scale.run(quick=True, sizes=(scale.QUICK_PIECE,), workdir=tmp_path)
    assert result["labeling"]["kwargs"] == {"seed": 0, "quick": True, "progress": False}
    assert "LABELING TABLE" in scale.table(result)
    assert "Sharded teacher labeling" in scale.page(result)


def test_the_committed_results_page_is_generated_from_its_json():
    folder = Path(__file__).resolve().parents[1] / "docs" / "results"
    result = json.loads((folder / "bench_scale.json").read_text(encoding="utf-8"))
    assert (folder / "scale.md").read_text(encoding="utf-8") == scale.page(result)
    assert not result["quick"] and {r["n"] for r in result["rows"]} == {10**7, 10**8}
