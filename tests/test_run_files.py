"""Every file a run writes is checked when read back: a damaged, edited or foreign file is recomputed (with a
``DamagedFileWarning`` naming it), never used and never a crash; a run folder belongs to one configuration
and one process at a time; names stay inside ``out``; temporary files of killed writers are removed."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from robustdistill.experiments.cli import main
from robustdistill.experiments.pipeline import teacher_cache
from robustdistill.experiments.pipeline.active import run_active_distillation
from robustdistill.experiments.pipeline.distill import run_distillation
from robustdistill.experiments.pipeline.files import (
    DamagedFileWarning,
    content_digest,
    load_torch,
    read_json,
    remove_stale_temporaries,
    save_torch,
    write_json_atomic,
)
from robustdistill.experiments.pipeline.run_folder import MANIFEST_NAME, RunInUseError, claim_run


def _config(tmp_path: Path, **overrides: object) -> dict:
    cfg = {
        "name": "tiny",
        "dataset": "digits",
        "labeled": 30,
        "validation": 100,
        "unlabeled": 120,
        "test": 60,
        "teacher": {"name": "mlp", "hidden": [16]},
        "student": {"name": "mlp", "hidden": [8]},
        "epochs": 2,
        "method": "vanilla",
        "seeds": [0],
        "train": {"optimizer": "adamw", "lr": 0.01, "batch_size": 32},
        "out": str(tmp_path / "out"),
        "cache": str(tmp_path / "cache"),
    }
    cfg.update(overrides)
    return cfg


def _flip_inside(path: Path, needle: bytes, offset: int = 1) -> None:
    """Flip one bit of ``path`` inside the first occurrence of ``needle`` (e.g. a tensor's stored bytes)."""
    data = bytearray(path.read_bytes())
    at = bytes(data).index(needle)
    data[at + offset] ^= 0x10
    path.write_bytes(bytes(data))


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [v.clone() for v in model.state_dict().values()]


# ---- content digests ---------------------------------------------------------------------------------------


def test_content_digest_tells_every_change_apart():
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    base = {"a": t, "b": [1, 2.5, "x", None, True], "c": {"d": np.arange(3)}}
    assert content_digest(base) == content_digest({"c": {"d": np.arange(3)}, "b": [1, 2.5, "x", None, True], "a": t})
    changed = t.clone()
    changed.view(torch.int32).view(-1)[5] ^= 1  # one bit
    variants = [
        {**base, "a": changed},
        {**base, "a": t.reshape(4, 3)},
        {**base, "a": t.double()},
        {**base, "b": [1, 2.5, "x", None, 1]},
        {**base, "b": [12, 2.5, "x", None, True]},
        {**base, "b": [1, 2.5, "x", None]},
        {**base, "c": {"d": np.arange(3, dtype=np.int32)}},
        {**base, "b": [[1, 2.5], "x", None, True]},
        {**base, "b": [1, 2.5000000000000004, "x", None, True]},
    ]
    digests = {content_digest(v) for v in variants} | {content_digest(base)}
    assert len(digests) == len(variants) + 1
    with pytest.raises(TypeError, match="cannot digest a object"):
        content_digest({"a": object()})


def test_json_and_torch_files_round_trip_and_refuse_edits(tmp_path):
    record = {"accuracy": 0.75, "per_round": (1, 2), "nan": math.nan, "nested": {"3": [0.1]}}
    path = write_json_atomic(tmp_path / "r.json", record, digest=True)
    back = read_json(path)
    assert back["per_round"] == [1, 2] and math.isnan(back["nan"]) and back["accuracy"] == 0.75
    for edit in (0.999, math.nan):
        text = json.loads(path.read_text())
        text["accuracy"] = edit
        (tmp_path / "e.json").write_text(json.dumps(text))
        with pytest.warns(DamagedFileWarning, match=r"e\.json: the content does not match its digest"):
            assert read_json(tmp_path / "e.json") is None
    for text, reason in [
        ("[]", "no content digest"),
        ('{"config_key": "k"}', "no content digest"),
        ('{"a": ', "not JSON"),
        ("", "not JSON"),
    ]:
        (tmp_path / "e.json").write_text(text)
        with pytest.warns(DamagedFileWarning, match=reason):
            assert read_json(tmp_path / "e.json") is None
    assert read_json(tmp_path / "absent.json") is None
    save_torch(tmp_path / "s.pt", {"w": torch.ones(4), "step": 3})
    assert torch.equal(load_torch(tmp_path / "s.pt")["w"], torch.ones(4))
    _flip_inside(tmp_path / "s.pt", torch.ones(4).numpy().tobytes(), offset=3)
    with pytest.warns(DamagedFileWarning, match="s.pt: "):
        assert load_torch(tmp_path / "s.pt") is None


# ---- every file a run writes -------------------------------------------------------------------------------


def test_teacher_weights_with_a_flipped_bit_are_retrained(tmp_path):
    weights = {"w": torch.linspace(0.5, 1.5, 64)}
    key = teacher_cache.cache_key({"k": 1})
    path = teacher_cache.save_weights(tmp_path, key, weights)
    _flip_inside(path, weights["w"].numpy().tobytes()[40:56])
    with pytest.warns(DamagedFileWarning, match="teacher-"):
        assert teacher_cache.load_weights(tmp_path, key) is None


def test_a_checkpoint_with_a_flipped_weight_is_not_resumed(tmp_path):
    """One flipped bit in a finished checkpoint's tensor data used to load as the finished student."""
    cfg = _config(tmp_path, checkpoints=True)
    first = run_distillation(cfg, progress=False)
    checkpoint = Path(cfg["out"]) / "tiny" / "checkpoints" / "seed_0_student" / "checkpoint.pt"
    _flip_inside(checkpoint, first.students[0].state_dict()["1.weight"].numpy().tobytes()[:16])
    with pytest.warns(DamagedFileWarning, match="checkpoint.pt"):
        again = run_distillation({**cfg, "resume": False}, progress=False)
    assert again.per_seed[0]["student_train"]["checkpoint_status"] == "unreadable"
    assert all(torch.equal(a, b) for a, b in zip(_weights(again.students[0]), _weights(first.students[0])))


@pytest.mark.parametrize(
    "damage",
    ["accuracy 0.999", "accuracy nan", "empty list", "only the key", "student weights", "student garbage"],
)
def test_a_damaged_seed_record_or_student_is_recomputed(tmp_path, damage):
    cfg = _config(tmp_path)
    first = run_distillation(cfg, progress=False)
    folder = Path(cfg["out"]) / "tiny"
    record_path, student_path = folder / "seed_0.json", folder / "seed_0_student.pt"
    record = json.loads(record_path.read_text())
    if damage.startswith("accuracy"):
        record["student_accuracy"] = float(damage.split()[1])
        record_path.write_text(json.dumps(record))
    elif damage == "empty list":
        record_path.write_text("[]")
    elif damage == "only the key":
        record_path.write_text(json.dumps({"config_key": record["config_key"]}))
    elif damage == "student weights":
        _flip_inside(student_path, first.students[0].state_dict()["1.weight"].numpy().tobytes()[:16])
    else:
        student_path.write_bytes(b"\x80\x02garbage")
    with pytest.warns(DamagedFileWarning, match="seed_0"):
        again = run_distillation(cfg, progress=False)
    assert again.per_seed[0]["resumed"] is False and again.student_accuracy == first.student_accuracy
    assert all(torch.equal(a, b) for a, b in zip(_weights(again.students[0]), _weights(first.students[0])))
    assert read_json(record_path)["student_accuracy"] == first.student_accuracy[0]
    assert read_json(Path(cfg["out"]) / "tiny.json")["student_accuracy"] == list(first.student_accuracy)


def _active_config(tmp_path: Path, **overrides: object) -> dict:
    cfg = _config(tmp_path, **{"name": "act", "selector": "margin", "rounds": 2, "budget": 10, **overrides})
    del cfg["method"]
    return cfg


@pytest.mark.parametrize("damage", ["garbage", "flipped answer"])
def test_a_damaged_active_state_starts_the_seed_afresh(tmp_path, damage):
    cfg = _active_config(tmp_path)
    first = run_active_distillation(cfg, progress=False)
    state = Path(cfg["out"]) / "act" / "seed_0_state.pt"
    if damage == "garbage":
        state.write_bytes(b"\x80\x04garbage that is no pickle")
    else:
        answers = torch.load(state, weights_only=True)["answers"]
        _flip_inside(state, answers.numpy().tobytes()[:16], offset=6)
    with pytest.warns(DamagedFileWarning, match="seed_0_state.pt"):
        again = run_active_distillation(cfg, progress=False)
    assert again.per_seed[0]["resumed_from_round"] == -1 and again.accuracy == first.accuracy
    assert again.per_seed[0]["rounds"] == first.per_seed[0]["rounds"]


# ---- one configuration and one process per folder ----------------------------------------------------------


def test_runs_of_other_methods_do_not_overwrite_each_other(tmp_path):
    vanilla = run_distillation(_config(tmp_path), progress=False)
    with pytest.raises(ValueError, match=r"out/tiny holds the results of another configuration"):
        run_distillation(_config(tmp_path, method="slam"), progress=False)
    assert read_json(Path(vanilla.path))["method"] == "vanilla"
    assert read_json(Path(tmp_path / "out" / "tiny" / "seed_0.json"))["student_accuracy"] == vanilla.student_accuracy[0]
    active = _active_config(tmp_path, name="tiny")
    with pytest.raises(ValueError, match="another configuration"):  # the active loop is another configuration too
        run_active_distillation(active, progress=False)
    slam = run_distillation(_config(tmp_path, method="slam", overwrite=True), progress=False)
    assert read_json(Path(slam.path))["method"] == "slam"
    assert read_json(tmp_path / "out" / "tiny" / MANIFEST_NAME)["pipeline"] == "distill"


def test_a_folder_in_use_is_refused_and_released(tmp_path):
    cfg = _config(tmp_path)
    with claim_run(cfg, "some key", "distill"):  # another run of this folder, now
        with pytest.raises(RunInUseError, match=rf"out/tiny is in use by a run now \(pid {os.getpid()}\)"):
            run_distillation(_config(tmp_path), progress=False)
        toml = tmp_path / "tiny.toml"
        toml.write_text(
            'dataset = "digits"\nlabeled = 30\nvalidation = 100\nunlabeled = 120\ntest = 60\nteacher = "mlp"\n'
            f'student = "mlp"\nepochs = 1\nmethod = "vanilla"\nseeds = [0]\nout = "{tmp_path / "out"}"\n'
        )
        assert main(["distill", str(toml), "--quiet"]) == 2  # one line: "... is in use by a run now ..."
    with pytest.raises(ValueError, match="another configuration"):  # released; it belongs to "some key"
        run_distillation(cfg, progress=False)
    assert run_distillation({**cfg, "overwrite": True}, progress=False).student_mean is not None


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "a/b", "..", ".", "", "a\nb"])
def test_names_must_be_plain_names(tmp_path, name):
    with pytest.raises(ValueError, match="name must be a plain name"):
        run_distillation(_config(tmp_path, name=name), progress=False)
    assert not (tmp_path / "out").exists() and not Path("/abs").exists()


def test_temporary_files_of_killed_writers_are_removed(tmp_path):
    folder = tmp_path / "out" / "tiny" / "checkpoints" / "seed_0_student"
    folder.mkdir(parents=True)
    dead = folder / ".checkpoint.pt.999999999.x1y2z3.tmp"  # above any pid: its writer is gone
    alive = folder / f".checkpoint.pt.{os.getpid()}.a1b2c3.tmp"  # a writer that still runs
    dead.write_bytes(b"partial")
    alive.write_bytes(b"partial")
    assert remove_stale_temporaries(tmp_path) == [dead]
    dead.write_bytes(b"partial")
    with claim_run(_config(tmp_path), "k", "distill"):
        assert not dead.exists() and alive.exists()


def test_temporary_files_in_the_cache_are_removed(tmp_path):
    key = teacher_cache.cache_key({"k": 2})
    teacher_cache.save_weights(tmp_path, key, {"w": torch.ones(2)})
    dead = tmp_path / f"teacher-{key[:32]}" / ".answers-0.npz.999999999.abc.tmp"
    dead.parent.mkdir()
    dead.write_bytes(b"partial")
    assert teacher_cache.load_weights(tmp_path, key) is not None and not dead.exists()


_CHILD = """
import json, sys, torch
torch.set_num_threads({threads})
from robustdistill.experiments.pipeline.{module} import {function}
{function}(json.loads(sys.argv[1]), progress=False)
"""


def _killed_midway(cfg: dict, module: str, function: str, marker: Path) -> None:
    """Run ``function(cfg)`` in another process and ``kill -9`` it as soon as ``marker`` exists; while it runs,
    the folder is refused to this process."""
    code = _CHILD.format(threads=torch.get_num_threads(), module=module, function=function)
    child = subprocess.Popen([sys.executable, "-c", code, json.dumps(cfg)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child wrote nothing in 120 s"
            time.sleep(0.005)
        with pytest.raises(RunInUseError, match="in use by a run now"):
            (run_distillation if module == "distill" else run_active_distillation)(cfg, progress=False)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
    assert not (Path(cfg["out"]) / f"{cfg['name']}.json").exists(), "the child finished before it was killed"


def test_kill_9_during_training_then_resume_gives_the_same_student(tmp_path):
    """A run killed (SIGKILL) after its first student checkpoint resumes from it: the same weights, bit for bit,
    as a run that was never interrupted; the killed run's lock is gone with it."""
    cfg = _config(tmp_path, epochs=50, checkpoints=True, cache=False)
    checkpoint = Path(cfg["out"]) / "tiny" / "checkpoints" / "seed_0_student" / "checkpoint.pt"
    _killed_midway(cfg, "distill", "run_distillation", checkpoint)
    resumed = run_distillation(cfg, progress=False)
    train = resumed.per_seed[0]["student_train"]
    assert train["checkpoint_status"] == "resumed" and 0 < train["resumed_from_epoch"] < 50
    whole = run_distillation({**cfg, "out": str(tmp_path / "whole")}, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(_weights(resumed.students[0]), _weights(whole.students[0])))


def test_kill_9_during_the_active_loop_then_resume_gives_the_same_result(tmp_path):
    cfg = _active_config(tmp_path, rounds=4, epochs=40, cache=False)
    state = Path(cfg["out"]) / "act" / "seed_0_state.pt"
    _killed_midway(cfg, "active", "run_active_distillation", state)
    resumed = run_active_distillation(cfg, progress=False)
    assert 0 <= resumed.per_seed[0]["resumed_from_round"] < 4
    whole = run_active_distillation({**cfg, "out": str(tmp_path / "whole")}, progress=False)
    assert resumed.accuracy == whole.accuracy and resumed.per_seed[0]["rounds"] == whole.per_seed[0]["rounds"]
    assert all(torch.equal(a, b) for a, b in zip(_weights(resumed.students[0]), _weights(whole.students[0])))
