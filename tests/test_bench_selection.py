"""The selection-time benchmark (``experiments.benchmarks.selection``): every selector gets a row, the times are
positive and finite, the table and the JSON carry them, and the peer's subprocess plumbing works (with this
interpreter and the snippet's numpy reference standing in for a peer environment; no venv, no download)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from robustdistill.algorithms.selection import SELECTORS
from robustdistill.experiments.benchmarks import selection as B
from robustdistill.experiments.pipeline.files import write_json_atomic

SIZES = (300, 600)
BUDGET = 12


@pytest.fixture(scope="module")
def result() -> dict:
    """One tiny quick run with the numpy reference as the 'peer', pinned to one of this process's CPUs."""
    cpu = min(os.sched_getaffinity(0))
    return B.run(
        quick=True,
        sizes=SIZES,
        budget=BUDGET,
        repeats=1,
        cpu=cpu,
        peer_python=sys.executable,
        peer_library="numpy",
        progress=False,
    )


def test_every_selector_has_a_row_per_size(result: dict) -> None:
    names = {(r["selector"], r["n"]) for r in result["rows"]}
    expected = set(SELECTORS) | {"cluster_assignments", "peer:numpy margin"}
    assert names == {(name, n) for name in expected for n in SIZES}
    for row in result["rows"]:
        assert row["b"] == BUDGET
        for key in ("best_s", "median_s", "vs_random"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["selector"], key, row[key])
        assert row["best_s"] <= row["median_s"]
    assert all(r["vs_random"] == 1.0 for r in result["rows"] if r["selector"] == "random")


def test_peer_plumbing_reports_version_and_agrees_with_margin(result: dict) -> None:
    peer_rows = [r for r in result["rows"] if r["selector"].startswith("peer:")]
    assert [r["note"] for r in peer_rows] == [f"numpy {np.__version__}; same picks as margin: yes"] * len(SIZES)
    assert result["peer"] == {"python": sys.executable, "library": "numpy", "version": np.__version__}


def test_pinning_is_recorded_and_restored(result: dict) -> None:
    assert result["pinning"]["pinned"] and result["pinning"]["cpu"] in result["pinning"]["previous"]
    assert sorted(os.sched_getaffinity(0)) == result["pinning"]["previous"]


def test_table_lists_the_rows_and_the_target(result: dict) -> None:
    text = B.table(result)
    for row in result["rows"]:
        assert row["selector"] in text
    assert "rad_select_1e6_s" in text and "peer: numpy" in text
    assert result["targets_met"] == {"rad_select_1e6_s": None}  # 10^6 was not run


def test_json_round_trip(result: dict, tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "bench_selection.json", result)
    loaded = json.loads(path.read_text())
    assert loaded["rows"] == result["rows"]
    assert loaded["targets"] == result["targets"]


def test_main_without_peer_says_how_to_get_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert (
        B.main(["--quick", "--quiet", "--cpu", str(min(os.sched_getaffinity(0))), "--repeats", "1", "--json", str(out)])
        == 0
    )
    text = capsys.readouterr().out
    assert "peer rows absent" in text and "make bench-selection" in text
    assert not any(r["selector"].startswith("peer:") for r in json.loads(out.read_text())["rows"])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="budget"):
        B.run(sizes=(10,), budget=20, cpu=None)
    with pytest.raises(ValueError, match="cpu"):
        B.run(sizes=(10,), budget=2, cpu=10**6)
    with pytest.raises(ValueError, match="library"):
        B.run_peer(sys.executable, None, 2, 1, library="modAL")
    if importlib.util.find_spec("skactiveml") is None:  # the project's venv never gets the peer
        with pytest.raises(RuntimeError, match="peer"):
            B.run_peer(sys.executable, None, 2, 1, library="scikit-activeml")


def test_one_core_restores_every_thread_count():
    """After the one-core block, torch's intra-op threads and MKL's are what they were: a later training run in
    the same process (the main job runs the distillation grid after this benchmark) is neither slower nor
    numerically different."""
    import re

    import torch

    def counts() -> tuple[int, str]:
        info = torch.__config__.parallel_info()
        mkl = re.search(r"mkl_get_max_threads\(\) : (\d+)", info)
        return torch.get_num_threads(), mkl.group(1) if mkl else "-"

    before = counts()
    if before[0] < 2:
        pytest.skip("needs at least 2 torch threads to tell a lowered count apart")
    with B.one_core(None) as info:
        assert torch.get_num_threads() == 1 and info["torch_threads"] == 1
    assert counts() == before
