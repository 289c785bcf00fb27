"""The distillation pipeline (experiments.pipeline.distill): config checks before any training, a tiny end-to-end
run with the teacher-output cache and resume, own data, TOML configs, the CLI command and the benchmark
grid's smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robustdistill.algorithms.weighting import DEFAULT_SCHEME
from robustdistill.experiments.benchmarks.distill import rank_rows
from robustdistill.experiments.benchmarks.distill import run as bench_run
from robustdistill.experiments.cli import main
from robustdistill.experiments.pipeline import teacher_cache
from robustdistill.experiments.pipeline.distill import load_config, run_distillation
from robustdistill.experiments.pipeline.files import DamagedFileWarning


def _config(tmp_path: Path, **overrides):
    cfg = {
        "name": "tiny",
        "dataset": "digits",
        "labeled": 30,
        "validation": 100,
        "unlabeled": 150,
        "test": 100,
        "teacher": {"name": "mlp", "hidden": [16]},
        "student": {"name": "mlp", "hidden": [8]},
        "epochs": 3,
        "method": "vanilla",
        "seeds": [0, 1],
        "train": {"optimizer": "adamw", "lr": 0.01, "batch_size": 32},
        "out": str(tmp_path / "out"),
        "cache": str(tmp_path / "cache"),
    }
    cfg.update(overrides)
    return cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epoch": 3}, "unknown config key"),
        ({"method": None}, "missing method"),
        ({"dataset": "emnist"}, "unknown dataset"),
        ({"student": "transformer"}, "unknown student"),
        ({"method": "slam", "method_options": {"k": 1}}, "k"),
        ({"train": {"lr": -1.0}}, "lr"),
        ({"train": {"momentum": 0.9}}, "unknown train option"),
        ({"seeds": []}, "seeds"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_configs_fail_before_training(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        run_distillation(_config(tmp_path, **overrides))
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_sizes_larger_than_the_data_fail_before_training(tmp_path):
    with pytest.raises(ValueError, match="unlabeled"):
        run_distillation(_config(tmp_path, unlabeled=5000))
    assert not (tmp_path / "cache").exists()


def test_end_to_end_cache_and_resume(tmp_path):
    first = run_distillation(_config(tmp_path), progress=False)
    assert first.seeds == (0, 1) and len(first.student_accuracy) == 2
    assert all(0.0 <= a <= 1.0 for a in first.student_accuracy + first.teacher_accuracy)
    assert first.teacher_queries == (250, 250) and not any(r["teacher"]["cached"] for r in first.per_seed)
    assert first.evaluation_queries == (100, 100)  # the test set, for the teacher's accuracy only
    summary = json.loads(Path(first.path).read_text())
    assert summary["student_accuracy"] == list(first.student_accuracy) and "environment" in summary
    # another method reuses the cached teacher (weights) and its answers: the same teacher accuracy, no training
    slam = run_distillation(_config(tmp_path, name="tiny-slam", method="slam"), progress=False)
    assert all(r["teacher"]["cached"] for r in slam.per_seed)
    assert slam.teacher_accuracy == first.teacher_accuracy and slam.teacher_queries == (250, 250)
    # the same config again: finished seeds are read back, not retrained
    again = run_distillation(_config(tmp_path), progress=False)
    assert all(r["resumed"] for r in again.per_seed) and again.student_accuracy == first.student_accuracy
    for a, b in zip(again.students, first.students):  # the students come back from their saved weights
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    # a changed config under the same name would overwrite the first one's results: refused, unless overwrite
    with pytest.raises(ValueError, match="another configuration.*overwrite = true"):
        run_distillation(_config(tmp_path, epochs=2), progress=False)
    assert json.loads(Path(first.path).read_text())["student_accuracy"] == list(first.student_accuracy)
    changed = run_distillation(_config(tmp_path, epochs=2, overwrite=True), progress=False)
    assert not any(r["resumed"] for r in changed.per_seed)
    with pytest.raises(ValueError, match="another configuration"):  # the folder now belongs to the new config
        run_distillation(_config(tmp_path), progress=False)
    teacher_only = run_distillation(_config(tmp_path, name="t", method="teacher"), progress=False)
    assert teacher_only.student_mean is None and teacher_only.teacher_accuracy == first.teacher_accuracy
    assert teacher_only.teacher_queries == (0, 0) and teacher_only.students == (None, None)


def test_synthetic_teacher_is_not_trained(tmp_path):
    result = run_distillation(_config(tmp_path, teacher="synthetic", method="weighted", seeds=[0]), progress=False)
    record = result.per_seed[0]
    assert "train" not in record["teacher"] and 0.4 <= result.teacher_accuracy[0] <= 0.95  # alpha averages 0.68
    with pytest.raises(ValueError, match="no options"):
        run_distillation(_config(tmp_path, teacher={"name": "synthetic", "depth": 3}))


def test_ups_with_a_dropout_teacher_uses_its_uncertainty(tmp_path):
    cfg = _config(tmp_path, teacher={"name": "mlp", "hidden": [16], "dropout": 0.3}, method="ups", seeds=[0])
    first = run_distillation(cfg, progress=False)
    info = first.per_seed[0]["plan"]["info"]
    assert info["uncertainty"] == "mc_dropout" and 0 <= info["positive_fraction"] <= 1
    key = first.per_seed[0]["teacher"]["cache_key"]
    assert teacher_cache.load_weights(tmp_path / "cache", key) is not None


def test_vid_trains_with_the_teacher_features(tmp_path):
    result = run_distillation(_config(tmp_path, method="vid", seeds=[0]), progress=False)
    assert result.per_seed[0]["plan"]["info"]["teacher_feature_dim"] == 16 and result.student_mean is not None
    with pytest.raises(ValueError, match="has no model"):  # the synthetic teacher is an array of labels
        run_distillation(
            _config(tmp_path, method="vid", teacher="synthetic", seeds=[0], name="vid-synthetic"), progress=False
        )


def test_teacher_cache_key_changes_with_inputs_and_damaged_entries_are_ignored(tmp_path):
    key = teacher_cache.cache_key({"a": 1, "b": [1, 2]})
    assert key == teacher_cache.cache_key({"b": [1, 2], "a": 1}) != teacher_cache.cache_key({"a": 2, "b": [1, 2]})
    weights = {"w": torch.arange(6.0).reshape(2, 3)}
    teacher_cache.save_weights(tmp_path, key, weights)
    torch.testing.assert_close(teacher_cache.load_weights(tmp_path, key), weights)
    assert teacher_cache.load_weights(tmp_path, key[::-1]) is None  # another key's entry is not read
    next(tmp_path.glob("teacher-*.pt")).write_bytes(b"not a torch file")
    with pytest.warns(DamagedFileWarning, match="teacher-.*not a readable torch file"):
        assert teacher_cache.load_weights(tmp_path, key) is None
    assert teacher_cache.array_digest(np.zeros(3)) != teacher_cache.array_digest(np.zeros(3, dtype=np.float32))


def test_own_data_and_toml_config(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    result = run_distillation(
        _config(tmp_path, dataset="arrays", labeled=20, validation=100, unlabeled=40, test=40),
        data=(X, y),
        progress=False,
    )
    assert result.student_mean is not None
    toml = tmp_path / "run.toml"
    toml.write_text(
        'dataset = "digits"\nlabeled = 30\nvalidation = 100\nunlabeled = 100\ntest = 100\nteacher = "mlp"\n'
        'student = { name = "mlp", hidden = [8] }\nepochs = 2\nmethod = "weighted"\nseeds = 1\n'
        f'out = "{tmp_path / "toml_out"}"\ncache = false\n'
    )
    cfg = load_config(toml)
    assert cfg["name"] == "run" and cfg["seeds"] == [0]
    assert cfg["method_options"]["scheme"] == DEFAULT_SCHEME != "uniform"  # "weighted" weights by default
    assert main(["distill", str(toml), "--method", "slam", "--seeds", "3", "--quiet"]) == 0
    assert json.loads((tmp_path / "toml_out" / "run-slam.json").read_text())["method"] == "slam"
    assert main(["distill", str(toml), "--seeds", "3", "--quiet"]) == 0  # the config's method: its own folder
    assert json.loads((tmp_path / "toml_out" / "run.json").read_text())["method"] == "weighted"
    assert main(["distill", str(toml), "--method", "vanilla", "--name", "run", "--seeds", "3", "--quiet"]) == 2
    assert (
        main(["distill", str(toml), "--method", "vanilla", "--name", "run", "--seeds", "3", "--quiet", "--overwrite"])
        == 0
    )
    assert json.loads((tmp_path / "toml_out" / "run.json").read_text())["method"] == "vanilla"
    assert main(["distill", str(tmp_path / "missing.toml"), "--quiet"]) == 2


def test_ablation_ranks():
    ranks = rank_rows({"a": {"x": 0.9, "y": 0.8, "z": 0.8}, "b": {"x": 0.7, "y": 0.9, "z": 0.6}})
    assert ranks == {"x": 1.5, "y": 1.75, "z": 2.75}


def test_benchmark_smoke_run(tmp_path):
    result = bench_run(quick=True, grid="ablation", out=str(tmp_path / "o"), cache=str(tmp_path / "c"), progress=False)
    assert {r["method"] for r in result["rows"]} >= {"accuracy (soft)", "debiased (soft)"}
    assert result["winner"] in result["ranks"] and len(result["seeds"]) == 2


def test_own_teacher_module_student_factory_and_torch_dataset(tmp_path):
    """A user's pretrained nn.Module teacher, their student factory and their torch Dataset run the pipeline; the
    trained students come back and their weights load with weights_only=True."""
    from torch import nn
    from torch.utils.data import TensorDataset

    from robustdistill.experiments.pipeline.data import load_dataset

    digits = load_dataset("digits")
    data = TensorDataset(torch.as_tensor(np.array(digits.X)), torch.as_tensor(np.array(digits.y)))
    teacher = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    made = []

    def student(seed):
        made.append(seed)
        return nn.Sequential(nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 10))

    cfg = _config(tmp_path, teacher=None, student=None, method="slam", dataset="my_digits")
    result = run_distillation(cfg, data=data, teacher=teacher, student=student, progress=False)
    assert made == [0, 1] and all(isinstance(s, nn.Sequential) for s in result.students)
    assert result.teacher_queries == (250, 250)
    for seed, model in zip(result.seeds, result.students):
        state = torch.load(tmp_path / "out" / "tiny" / f"seed_{seed}_student.pt", weights_only=True)
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    # the same teacher object queried again answers from the disk cache: no call, same accuracies
    again = run_distillation({**cfg, "name": "again"}, data=data, teacher=teacher, student=student, progress=False)
    assert again.student_accuracy == result.student_accuracy


def test_a_config_names_a_student_factory(tmp_path):
    result = run_distillation(
        _config(tmp_path, student={"name": "user_models:make_student", "width": 6}, seeds=[0]), progress=False
    )
    assert result.students[0][0].out_features == 6
    with pytest.raises(ValueError, match="no attribute"):
        run_distillation(_config(tmp_path, student="user_models:missing"))
    with pytest.raises(ValueError, match="cannot import"):
        run_distillation(_config(tmp_path, student="no_such_module_here:f"))


def test_an_array_teacher_and_a_callable_teacher(tmp_path):
    from robustdistill.experiments.pipeline.data import load_dataset

    digits = load_dataset("digits")
    probs = np.full((digits.y.size, 10), 0.02)
    probs[np.arange(digits.y.size), digits.y] = 0.82  # a perfect teacher, by row
    by_row = run_distillation(
        _config(tmp_path, teacher=None, seeds=[0], dataset="d"), data=digits, teacher=probs, progress=False
    )
    assert by_row.teacher_accuracy == (1.0,) and by_row.teacher_queries == (250,)
    with pytest.raises(ValueError, match="one row per training row"):
        run_distillation(
            _config(tmp_path, teacher=None, seeds=[0], dataset="d", name="short"), data=digits, teacher=probs[:10]
        )
    asked = []

    def api(x):
        asked.append(len(x))
        return np.full((len(x), 10), 0.1)

    run_distillation(
        _config(tmp_path, teacher=None, seeds=[0], dataset="d", name="api", evaluate_teacher=False),
        data=digits,
        teacher=api,
        progress=False,
    )
    assert sum(asked) == 250  # V and U, nothing else


def test_checkpoints_of_other_method_options_are_not_reused(tmp_path):
    """checkpoints = true, the same name and folder, SLaM's options changed: refused, as the folder holds the
    other options' results; with overwrite the student is trained anew (the per-epoch checkpoint of the old
    options used to be taken as finished and its student reported)."""
    base = _config(tmp_path, method="slam", seeds=[0], checkpoints=True)
    first = run_distillation({**base, "method_options": {"normalize": False}}, progress=False)
    options = {"normalize": True, "alpha_floor": 0.9}
    with pytest.raises(ValueError, match="another configuration"):
        run_distillation({**base, "method_options": options}, progress=False)
    second = run_distillation({**base, "method_options": options, "overwrite": True}, progress=False)
    assert first.per_seed[0]["student_train"]["checkpoint_status"] == "new"
    assert second.per_seed[0]["student_train"]["checkpoint_status"] == "new"
    assert second.per_seed[0]["student_train"]["losses"] != first.per_seed[0]["student_train"]["losses"]
    again = run_distillation({**base, "method_options": options, "resume": False}, progress=False)
    assert again.per_seed[0]["student_train"]["checkpoint_status"] == "finished"
    assert again.student_accuracy == second.student_accuracy
