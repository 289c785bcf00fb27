"""Sharded teacher labeling into one memory-mapped ``(n, K)`` file: the labels are ``predict_probs`` of the teacher
row for row (float32 exactly, float16 its rounding); a rerun computes nothing; two gloo ranks (spawned here, and
under ``torchrun``) write the same file as one process; a pass killed with SIGKILL resumes with only the missing
shards; a damaged record or a flipped byte of the labels is detected and that shard recomputed; another teacher
or pool is refused by the manifest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from gloo import free_port, run_ranks
from torch import nn

from robustdistill.experiments.cli import main as cli_main
from robustdistill.experiments.cli.label import load_teacher
from robustdistill.experiments.pipeline import labeling
from robustdistill.experiments.pipeline.files import DamagedFileWarning, read_json
from robustdistill.experiments.pipeline.labeling import MANIFEST_NAME, label_pool, pool_stats, records_folder
from robustdistill.experiments.pipeline.models import build_model
from robustdistill.experiments.pipeline.teacher import Teacher
from robustdistill.experiments.pipeline.training import ResidentInputs, predict_probs

N, D, K = 300, 8, 5
SHARD, BATCH = 64, 32  # shards are whole batches, so every forward sees the rows predict_probs's does
OPTIONS = {"shard_rows": SHARD, "batch_size": BATCH, "device": "cpu", "progress": False}

#: A teacher factory importable by child processes (put on PYTHONPATH); its forward sleeps LABEL_TEST_DELAY
#: seconds, so that a child can be killed in the middle of a pass.
TEACHER_MODULE = """
import os
import time

from torch import nn


class SlowLinear(nn.Linear):
    def forward(self, x):
        time.sleep(float(os.environ.get("LABEL_TEST_DELAY", "0")))
        return super().forward(x)


def factory(seed):
    return SlowLinear(8, 5)
"""


def _pool(folder: Path, n: int = N, seed: int = 0) -> Path:
    path = folder / "pool.npy"
    np.save(path, np.random.default_rng(seed).normal(size=(n, D)).astype(np.float32))
    return path


def _teacher(seed: int = 0) -> nn.Module:
    return build_model("mlp", (D,), K, seed=seed, hidden=(16,))


def _reference(teacher: nn.Module, pool: Path | np.ndarray, result) -> np.ndarray:
    """``predict_probs`` of the teacher on the whole pool, normalised as the labeling pass was."""
    x = np.load(pool) if isinstance(pool, Path) else pool
    inputs = ResidentInputs(x, "tabular", "cpu", mean=result.mean, std=result.std)
    return predict_probs(teacher, inputs, batch_size=BATCH)


def _teacher_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Write the slow teacher's module to ``tmp_path``; return the environment of a child that imports it."""
    (tmp_path / "slow_teacher.py").write_text(TEACHER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *filter(None, [env.get("PYTHONPATH")])])
    env["OMP_NUM_THREADS"] = "1"
    return env


# ---- one process -------------------------------------------------------------------------------------------


def test_one_process_gives_predict_probs_and_a_rerun_computes_nothing(tmp_path, monkeypatch):
    pool = _pool(tmp_path)
    teacher = _teacher()
    out = tmp_path / "labels.npy"
    result = label_pool(teacher, np.load(pool, mmap_mode="r"), out, **OPTIONS)
    assert (result.shards, result.computed, result.reused, result.rows_computed) == (5, 5, 0, N)
    assert result.num_classes == K and result.world_size == 1 and result.rows_per_s > 0
    x64 = np.load(pool).astype(np.float64)
    np.testing.assert_allclose(result.mean, x64.mean(axis=0), rtol=0, atol=1e-12)  # the chunked statistics
    np.testing.assert_allclose(result.std, x64.std(axis=0), rtol=1e-12)
    expected = _reference(teacher, pool, result)
    labels = np.load(out)
    assert labels.dtype == np.float32 and labels.shape == (N, K)
    np.testing.assert_array_equal(labels, expected)

    again = label_pool(teacher, str(pool), out, **OPTIONS)  # the path this time: the same pool
    assert (again.computed, again.reused, again.rows_computed, again.rows_per_s) == (0, 5, 0, None)
    np.testing.assert_array_equal(np.load(out), expected)

    half = label_pool(teacher, pool, tmp_path / "half.npy", dtype="float16", **OPTIONS)
    assert half.computed == 5
    np.testing.assert_array_equal(np.load(tmp_path / "half.npy"), expected.astype(np.float16))

    monkeypatch.setattr(labeling, "_BLOCK_BYTES", BATCH * D * 4)  # a shard goes to the teacher batch by batch
    blocks = label_pool(teacher, pool, tmp_path / "blocks.npy", **OPTIONS)
    assert blocks.computed == 5
    np.testing.assert_array_equal(np.load(tmp_path / "blocks.npy"), expected)


def test_images_are_normalised_with_the_pool_statistics(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(40, 1, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    teacher = build_model("small_cnn", (1, 8, 8), 3, seed=0, channels=4)
    options = {"shard_rows": 16, "batch_size": 8, "device": "cpu"}
    result = label_pool(teacher, tmp_path / "images.npy", tmp_path / "labels.npy", **options)
    expected = predict_probs(teacher, ResidentInputs(images, "image", "cpu"), batch_size=8)  # image_stats
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), expected)
    assert [a.tolist() for a in pool_stats(images, "image")] == [result.mean.tolist(), result.std.tolist()]


def test_a_callable_teacher_is_queried_on_the_raw_rows(tmp_path):
    pool = _pool(tmp_path, n=50)
    weights = np.random.default_rng(2).normal(size=(D, K))

    def probabilities(x: np.ndarray) -> np.ndarray:
        z = x @ weights
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    result = label_pool(probabilities, pool, tmp_path / "labels.npy", name="linear-v1", shard_rows=16, batch_size=7)
    assert result.computed == 4 and result.mean is None
    expected = Teacher(probabilities, name="linear-v1").evaluate(np.load(pool))
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), expected)
    with pytest.raises(ValueError, match="name"):
        label_pool(probabilities, pool, tmp_path / "other.npy")
    with pytest.raises(ValueError, match="non-negative probabilities|sum to 1"):
        label_pool(lambda x: x @ weights, pool, tmp_path / "logits.npy", name="logits")


def _bad_call(tmp_path: Path, **change):
    pool = change.pop("inputs", None)
    pool = _pool(tmp_path, n=20) if pool is None else pool
    args = {"teacher": _teacher(), "out": tmp_path / "labels.npy", **OPTIONS, **change}
    return label_pool(args.pop("teacher"), pool, args.pop("out"), **args)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"dtype": "float64"}, ValueError, "dtype"),
        ({"dtype": 16}, TypeError, "dtype"),
        ({"shard_rows": 0}, ValueError, "shard_rows"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"out": "labels.txt"}, ValueError, "out must be a .npy"),
        ({"inputs": np.zeros((0, D), dtype=np.float32)}, ValueError, "inputs is empty"),
        ({"inputs": [[1.0] * D]}, TypeError, "inputs must be a numpy array"),
        ({"inputs": np.array([["a"] * D])}, TypeError, "inputs must hold real numbers"),
        ({"inputs": np.full((4, D), np.nan)}, ValueError, "finite"),
        ({"kind": "video"}, ValueError, "kind"),
        ({"mean": np.zeros(3)}, ValueError, "mean"),
        ({"teacher": nn.Flatten(0)}, ValueError, r"teacher on rows \[0, 1\).*\(B, K\) logits"),
        ({"teacher": nn.Linear(3, K)}, ValueError, "teacher: the module failed"),
        ({"teacher": nn.Linear(D, 1)}, ValueError, "K >= 2"),
        ({"teacher": "model.pt"}, TypeError, "teacher must be"),
        ({"amp": "fp8"}, ValueError, "amp"),
        ({"overwrite": "yes"}, TypeError, "overwrite"),
    ],
)
def test_bad_arguments_are_named(tmp_path, change, error, match):
    with pytest.raises(error, match=match):
        _bad_call(tmp_path, **change)
    assert not (tmp_path / "labels.npy").exists()  # refused before any file is touched


# ---- damage, foreign passes ----------------------------------------------------------------------------------


def test_a_damaged_record_or_flipped_label_byte_is_recomputed(tmp_path):
    pool = _pool(tmp_path)
    teacher = _teacher()
    out = tmp_path / "labels.npy"
    expected = np.load(label_pool(teacher, pool, out, **OPTIONS).path)
    folder = records_folder(out)
    record = folder / "shard_000001.json"
    record.write_text(record.read_text().replace(f'"stop": {2 * SHARD}', f'"stop": {2 * SHARD + 1}'))
    data = bytearray(out.read_bytes())
    header = len(data) - N * K * 4
    data[header + (3 * SHARD + 7) * K * 4 + 2] ^= 0x10  # a bit of a label of shard 3
    out.write_bytes(bytes(data))
    assert not np.array_equal(np.load(out), expected)
    with pytest.warns(DamagedFileWarning) as caught:
        again = label_pool(teacher, pool, out, **OPTIONS)
    messages = " ".join(str(w.message) for w in caught)
    assert "shard_000001.json" in messages and "rows [192, 256)" in messages
    assert (again.computed, again.damaged, again.reused, again.changed) == (2, 2, 3, 0)
    np.testing.assert_array_equal(np.load(out), expected)


def test_the_manifest_refuses_another_teacher_or_pool_and_changed_rows_are_relabeled(tmp_path):
    pool = _pool(tmp_path)
    out = tmp_path / "labels.npy"
    first = label_pool(_teacher(0), pool, out, **OPTIONS)
    manifest = records_folder(out) / MANIFEST_NAME
    with pytest.raises(ValueError, match=rf"{MANIFEST_NAME}.*another labeling pass.*teacher.*overwrite=True"):
        label_pool(_teacher(1), pool, out, **OPTIONS)
    with pytest.raises(ValueError, match="input_shape"):
        label_pool(_teacher(0), np.load(pool)[:-1], out, **OPTIONS)
    with pytest.raises(ValueError, match="dtype"):
        label_pool(_teacher(0), pool, out, **{**OPTIONS, "dtype": "float16"})
    assert read_json(manifest)["teacher"] == first.teacher
    np.save(tmp_path / "mine.npy", np.ones(3))  # a file that is no pass's
    with pytest.raises(ValueError, match="mine.npy exists and holds no labeling pass"):
        label_pool(_teacher(0), pool, tmp_path / "mine.npy", **OPTIONS)
    np.testing.assert_array_equal(np.load(tmp_path / "mine.npy"), np.ones(3))

    other = label_pool(_teacher(1), pool, out, overwrite=True, **OPTIONS)
    assert other.computed == 5 and read_json(manifest)["teacher"] == other.teacher != first.teacher
    np.testing.assert_array_equal(np.load(out), _reference(_teacher(1), pool, other))

    changed = np.load(pool)
    changed[100] = changed[101]  # one row of shard 1 changed, the statistics given so the others stay valid
    relabeled = label_pool(_teacher(1), changed, out, mean=other.mean, std=other.std, **OPTIONS)
    assert (relabeled.computed, relabeled.changed, relabeled.reused) == (1, 1, 4)
    np.testing.assert_array_equal(np.load(out), _reference(_teacher(1), changed, other))


# ---- several processes -------------------------------------------------------------------------------------


def _worker(rank: int, world: int, pool: str, out: str) -> tuple:
    result = label_pool(_teacher(), pool, out, **OPTIONS)
    return result.computed, result.reused, result.world_size, len(result.rank_rows_per_s)


def test_two_gloo_processes_write_the_file_of_one_process(tmp_path):
    pool = _pool(tmp_path)
    one = label_pool(_teacher(), pool, tmp_path / "one.npy", **OPTIONS)
    results = run_ranks(_worker, 2, str(pool), str(tmp_path / "two.npy"))
    assert results[0] == results[1] == (5, 0, 2, 2)  # the counts are summed over the ranks
    assert (tmp_path / "two.npy").read_bytes() == (tmp_path / "one.npy").read_bytes()
    np.testing.assert_array_equal(np.load(tmp_path / "two.npy"), _reference(_teacher(), pool, one))
    # a pass of two ranks is resumed by one: nothing to do
    assert label_pool(_teacher(), pool, tmp_path / "two.npy", **OPTIONS).reused == 5


def test_torchrun_with_two_ranks(tmp_path, monkeypatch):
    """``torchrun --nproc_per_node=2 ... robustdistill label``: exit 0, one summary line (rank 0), the file of
    one process."""
    env = _teacher_module(tmp_path, monkeypatch)
    pool = _pool(tmp_path)
    script = Path(sys.executable).parent / "robustdistill"  # the installed command; else its module
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1"]
    command += [f"--master_port={free_port()}"]
    command += (
        ["--no-python", str(script), "label"] if script.exists() else ["-m", "robustdistill.experiments.cli", "label"]
    )
    command += ["--teacher", "slow_teacher:factory", "--inputs", str(pool), "--out", str(tmp_path / "two.npy")]
    command += ["--shard-rows", str(SHARD), "--batch-size", str(BATCH), "--device", "cpu", "--quiet"]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = [line for line in proc.stdout.splitlines() if "shard(s)" in line]
    assert len(summary) == 1 and "5 labeled, 0 reused" in summary[0] and "over 2 rank(s)" in summary[0]
    assert "robustdistill: error" not in proc.stderr
    label_pool(load_teacher("slow_teacher:factory"), pool, tmp_path / "one.npy", **OPTIONS)
    assert (tmp_path / "two.npy").read_bytes() == (tmp_path / "one.npy").read_bytes()


# ---- kill and resume ---------------------------------------------------------------------------------------


def test_kill_9_midway_then_resume_computes_only_the_missing_shards(tmp_path, monkeypatch):
    """A pass killed (SIGKILL) after its first shard record resumes: only the shards without a record are
    labeled, and the file equals an uninterrupted pass."""
    env = _teacher_module(tmp_path, monkeypatch)
    pool = _pool(tmp_path, n=400)  # 10 shards of 40 rows, each about 0.4 s in the child
    out = tmp_path / "killed.npy"
    args = ["--teacher", "slow_teacher:factory", "--inputs", str(pool), "--out", str(out)]
    args += ["--shard-rows", "40", "--batch-size", "20", "--device", "cpu", "--quiet"]
    env["LABEL_TEST_DELAY"] = "0.2"
    child = subprocess.Popen(
        [sys.executable, "-m", "robustdistill.experiments.cli", "label", *args], env=env, stderr=subprocess.PIPE
    )
    folder = records_folder(out)
    try:
        deadline = time.monotonic() + 120
        while not list(folder.glob("shard_*.json")):
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child wrote no record in 120 s"
            time.sleep(0.005)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
    done = len(list(folder.glob("shard_*.json")))
    assert 1 <= done < 10, "the child finished before it was killed"

    monkeypatch.setenv("LABEL_TEST_DELAY", "0")
    teacher = load_teacher("slow_teacher:factory")
    options = {**OPTIONS, "shard_rows": 40, "batch_size": 20}
    resumed = label_pool(teacher, pool, out, **options)
    assert (resumed.computed, resumed.reused, resumed.damaged) == (10 - done, done, 0)
    assert not list(folder.glob(".*.tmp"))  # the killed writer's temporary files are gone
    whole = label_pool(teacher, pool, tmp_path / "whole.npy", **options)
    assert whole.computed == 10
    np.testing.assert_array_equal(np.load(out), np.load(tmp_path / "whole.npy"))


# ---- command line, benchmark -------------------------------------------------------------------------------


def test_the_command_line_labels_and_reports_errors(tmp_path, monkeypatch, capsys):
    _teacher_module(tmp_path, monkeypatch)
    pool = _pool(tmp_path, n=40)
    weights = tmp_path / "w.pt"
    model = load_teacher("slow_teacher:factory", seed=3)
    torch.save({"state_dict": model.state_dict()}, weights)
    args = ["label", "--teacher", "slow_teacher:factory", "--inputs", str(pool), "--device", "cpu", "--quiet"]
    out = tmp_path / "labels.npy"
    assert cli_main([*args, "--out", str(out), "--weights", str(weights), "--float16", "--shard-rows", "16"]) == 0
    assert "3 shard(s): 3 labeled, 0 reused" in capsys.readouterr().out
    expected = label_pool(model, pool, tmp_path / "direct.npy", dtype="float16", shard_rows=16, device="cpu")
    np.testing.assert_array_equal(np.load(out), np.load(expected.path))
    assert cli_main([*args, "--out", str(tmp_path / "x.txt")]) == 2
    assert "out must be a .npy" in capsys.readouterr().err
    assert cli_main([*args, "--out", str(out), "--weights", str(pool)]) == 2
    assert "--weights" in capsys.readouterr().err
    assert cli_main([*args, "--out", str(out), "--shard-rows", "0"]) == 2


def test_the_benchmark_runs_in_process(tmp_path):
    from robustdistill.experiments.benchmarks import labeling as bench

    result = bench.labeling_throughput(
        n=300, d=8, hidden=(8,), shard_rows=64, batch_size=32, ranks=(1,), spawn=False, folder=tmp_path
    )
    assert [c["case"] for c in result["cases"]] == ["in_memory", "label_pool"]
    assert result["cases"][1]["labels_equal"] is True
    assert all(r["rows_per_s"] > 0 and r["peak_rss_MiB"] > 0 for r in result["rows"])
    assert "label_pool" in bench.table(result)
    with pytest.raises(ValueError, match="ranks"):
        bench.labeling_throughput(n=10, ranks=(2,), spawn=False)
