"""The Fashion-MNIST benchmark: its smoke run on tiny IDX files, the paired statistics, and the skip when the
files are missing (in the benchmark, the command line and the main job)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from idx_files import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, write_idx

from robustdistill.experiments.benchmarks import BENCHMARKS, BenchmarkSkipped
from robustdistill.experiments.benchmarks import realdata as R
from robustdistill.experiments.cli import main
from robustdistill.experiments.cli.reproduce import reproduce
from robustdistill.experiments.pipeline import data as data_module

#: Its module fixture is computed once: every test of this module runs on the same xdist worker.
pytestmark = pytest.mark.xdist_group("test_bench_realdata")


def _fashion(folder, rng, m=900, m_test=200):
    """Four IDX files of class-dependent noise images (a learnable toy, 10 classes)."""
    for images, labels, n in ((TRAIN_IMAGES, TRAIN_LABELS, m), (TEST_IMAGES, TEST_LABELS, m_test)):
        y = np.arange(n) % 10
        x = rng.integers(0, 60, size=(n, 28, 28))
        for c in range(10):  # class c brightens a band of rows
            x[y == c, 2 * c : 2 * c + 6, :] += 150
        write_idx(folder / images, x.astype(np.uint8), gz=True)
        write_idx(folder / labels, y.astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    folder = _fashion(tmp_path_factory.mktemp("fashion"), np.random.default_rng(0))
    out = tmp_path_factory.mktemp("out")
    result = R.run(
        quick=True, progress=False, root=str(folder), out=str(out / "runs"), cache=str(out / "cache"), device="cpu"
    )
    return result


def test_smoke_run_reports_paired_cells_and_active_curves(smoke):
    assert smoke["seeds"] == [0, 1] and smoke["quick"]
    cell = smoke["cells"]["mlp-100"]
    assert set(cell["mean"]) == set(R.QUICK_ROWS) - {"teacher"}
    assert len(cell["teacher"]) == 2 and all(0.0 <= t <= 1.0 for t in cell["teacher"])
    base = cell["paired"][R.BASELINE]
    assert base["mean"] == 0.0 and base["wins"] == 0 and base["diff"] == [0.0, 0.0]
    row = next(r for r in smoke["rows"] if r["method"] == "slam (2') top-k")
    want = np.subtract(
        row["student_accuracy"], next(r for r in smoke["rows"] if r["method"] == R.BASELINE)["student_accuracy"]
    )
    np.testing.assert_allclose(cell["paired"]["slam (2') top-k"]["diff"], want)
    assert set(cell["overhead"]) >= {"vanilla (soft)", "slam (2') top-k"} and cell["overhead"]["vanilla (soft)"] == 1.0
    # the default SLaM target lives on the top-k set: no per-example minimiser leaves it
    assert cell["minimiser_leaves_topk"]["slam (2') top-k"] == 0.0
    assert 0.0 <= cell["minimiser_leaves_topk"]["slam (2') soft, floor 0.6"] <= 1.0
    fits = row["pool_fit"][0]
    assert fits["teacher_wrong"] >= 0 and set(fits) == {
        "teacher_wrong",
        "fits_teacher_mistakes",
        "right_where_teacher_wrong",
        "agrees_with_teacher",
    }
    # active curves: |V| + R b labels per seed, RAD with each estimate of m
    curves = {(c["selector"], c["mistakes"]) for c in smoke["active"]}
    assert curves == {("rad", "pool"), ("rad", "candidates"), ("rad", "upper"), ("margin", None)}
    for c in smoke["active"]:
        assert c["teacher_queries"] == [100 + 2 * 20] * 2 and c["queries"] == [0, 20, 40]
    assert set(smoke["active_paired"]["vanilla"]) >= {"margin", "rad (m: candidates)"}
    table = R.table(smoke)
    assert "diff to vanilla" in table and "final diff to margin" in table
    json.dumps(smoke)


def test_paired_differences_and_their_interval():
    got = R.paired({"vanilla (soft)": [0.5, 0.6, 0.7], "x": [0.52, 0.61, 0.73]})["x"]
    d = np.array([0.02, 0.01, 0.03])
    half = 4.302652729911275 * d.std(ddof=1) / np.sqrt(3)  # t_{0.975, 2}
    np.testing.assert_allclose([got["mean"], got["low"], got["high"]], [d.mean(), d.mean() - half, d.mean() + half])
    assert got["wins"] == 3 and got["seeds"] == 3
    with pytest.raises(ValueError, match="seeds"):
        R.paired({"vanilla (soft)": [0.5, 0.6], "x": [0.5]})


def test_teacher_epochs_keep_about_the_same_work_per_size():
    assert [R.teacher_epochs(n) for n in (100, 300, 1000, 3000, 30_000)] == [150, 150, 100, 34, 30]


def test_missing_files_skip_the_benchmark_with_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(data_module.DATA_ENV, raising=False)
    monkeypatch.setattr(data_module, "FASHION_MNIST_SYSTEM_DIR", str(tmp_path / "absent"))
    with pytest.raises(BenchmarkSkipped, match="dataset-fashion-mnist"):
        R.run(quick=True, progress=False)
    assert main(["bench", "realdata", "--quick", "--quiet", "--out", str(tmp_path / "b")]) == 3
    assert "realdata skipped" in capsys.readouterr().err
    result = reproduce(tmp_path / "r", steps=["realdata"], progress=False)
    assert result.exit_code == 0 and result.skipped_steps == ["realdata"]
    assert "dataset-fashion-mnist" in result.steps[0].note
    assert "skipped: realdata" in (tmp_path / "r" / "summary.md").read_text()


def test_registered_with_a_full_grid():
    assert BENCHMARKS["realdata"].full_options == {"full": True}
    jobs = R._jobs(quick=False, full=True)
    assert {(s, n) for s, n, _ in jobs} == {(s, n) for s in R.STUDENTS for n in R.FULL_SIZES}
    default = R._jobs(quick=False, full=False)
    assert {n for s, n, _ in default if s == "cnn"} == set(R.CNN_SIZES)
    assert {row[0] for s, _, row in default if s == "cnn"} == set(R.CNN_ROWS)


def test_results_page_has_every_cell_and_the_findings(smoke, tmp_path):
    text = R.page(smoke, figure="realdata_paired.png")
    assert text.count("## mlp student, 100 labels") == 1 and "## Findings (measured)" in text
    assert "![paired differences" in text and "## Active distillation" in text
    stored = tmp_path / "bench_realdata.json"
    stored.write_text(json.dumps(smoke))
    assert R.main(["--from-json", str(stored), "--page", str(tmp_path / "page.md")]) == 0
    assert (tmp_path / "page.md").read_text() == R.page(smoke)


def test_figure_without_the_files_says_why(tmp_path, monkeypatch):
    from robustdistill.paper_figures import realdata_paired

    def missing(**_):
        raise BenchmarkSkipped("the Fashion-MNIST files are missing (install dataset-fashion-mnist)")

    monkeypatch.setattr(R, "run", missing)
    fig = realdata_paired.make(tmp_path, tmp_path / "no-results", quick=True)
    data = json.loads(fig.data_path.read_text())
    assert "dataset-fashion-mnist" in data["panels"][0]["text"] and fig.files[0].stat().st_size > 0


def test_pool_fit_and_paired_name_what_is_wrong():
    from robustdistill.experiments.pipeline.distill import pool_fit

    with pytest.raises(ValueError, match="baseline 'vanilla \\(soft\\)' is not a row"):
        R.paired({"x": [0.5, 0.6]})
    with pytest.raises(ValueError, match="same n"):
        pool_fit(np.eye(3), np.eye(3), np.zeros(2, dtype=int))
    fit = pool_fit(np.eye(3)[[0, 1, 1]], np.eye(3)[[0, 1, 1]], np.array([0, 1, 2]))
    assert fit == {
        "teacher_wrong": 1,
        "fits_teacher_mistakes": 1.0,
        "right_where_teacher_wrong": 0.0,
        "agrees_with_teacher": 1.0,
    }
