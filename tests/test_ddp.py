"""Data-parallel training under two gloo processes on the CPU, through the one training loop.

- ``train`` on two ranks makes the single-process optimisation: the same per-epoch losses and final weights
  as one process with the same global batch, the weights identical on both ranks, each rank running only
  its shard's examples (also with batches that miss a rank entirely, gradient clipping, AdamW, and image
  augmentation), whether each rank is given the whole set or only its shard.
- A data-parallel run interrupted after its second epoch's checkpoint and resumed gives what the
  uninterrupted data-parallel run gives, dropout included (each rank's generator state is checkpointed).
- ``torchrun --nproc_per_node=2 -m robustdistill.experiments.cli distill CONFIG`` gives the single-process
  run's results, and writes one set of files.

**Tolerance.** Two ranks compute the same float32 step as one process except for the order of two sums (each
rank sums its members' losses, the all-reduce adds the ranks' gradients), so each step differs by a few
float32 roundings (relative ~1e-7; measured at most ~2e-7 on the losses and ~1e-7 on the weights here). The
losses are compared with ``rtol = 1e-5`` and the weights with ``rtol = 1e-5, atol = 1e-6``: 50 times the
rounding noise, while a wrong gradient scale (a mean over the rank's members instead of ``W / B`` times their
sum) moves the losses by ~1e-3 and more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from gloo import run_ranks
from torch import nn

from robustdistill.experiments.pipeline.active import run_active_distillation
from robustdistill.experiments.pipeline.distill import run_distillation
from robustdistill.experiments.pipeline.training import (
    CHECKPOINT_NAME,
    ResidentInputs,
    TrainConfig,
    cross_entropy_loss,
    train,
)

pytestmark = pytest.mark.xdist_group("test_ddp")  # its module fixture spawns processes once

WORLD = 2
RTOL, ATOL = 1e-5, 1e-6


def _tabular(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    return X, y


def _mlp(dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Linear(5, 16), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else []) + [nn.Linear(16, 3)]
    return nn.Sequential(*layers)


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )


class _Interrupt(Exception):
    pass


def _counting(seen: list[int], fail_at: int | None = None):  # noqa: ANN202
    """Cross-entropy that records each batch's size (and raises at call ``fail_at``: a simulated crash). Like the
    project's losses it refuses an empty batch, which a rank without a member of a global batch must not pass."""

    def loss_fn(logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if logits.shape[0] == 0:
            raise ValueError("logits is empty: it needs at least one row")
        seen.append(int(logits.shape[0]))
        if fail_at is not None and len(seen) == fail_at:
            raise _Interrupt(f"simulated crash at step {fail_at}")
        return cross_entropy_loss(logits, batch)

    return loss_fn


def _cases() -> dict[str, tuple]:
    """name -> (model factory, X, y, kind, config): the main case (200 examples, batch 32, 3 epochs, SGD),
    batch 1 (every step leaves one rank without an example), AdamW with clipping and a ragged last batch,
    and augmented images."""
    X, y = _tabular(200)
    Xs, ys = _tabular(21, seed=1)
    rng = np.random.default_rng(2)
    Xi, yi = rng.integers(0, 256, size=(30, 3, 8, 8), dtype=np.uint8), rng.integers(0, 2, 30)
    return {
        "main": (_mlp, X, y, "tabular", TrainConfig(epochs=3, batch_size=32, optimizer="sgd", lr=0.1)),
        "batch1": (_mlp, Xs, ys, "tabular", TrainConfig(epochs=2, batch_size=1, lr=0.05)),
        "adamw_clip": (
            _mlp,
            Xs,
            ys,
            "tabular",
            TrainConfig(epochs=2, batch_size=4, optimizer="adamw", lr=0.01, grad_clip=0.1),
        ),
        "augment": (_cnn, Xi, yi, "image", TrainConfig(epochs=2, batch_size=7, lr=0.05, augment=True)),
    }


def _train_cases() -> dict[str, dict]:
    out = {}
    for name, (make, X, y, kind, config) in _cases().items():
        model, seen = make(), []
        result = train(model, ResidentInputs(X, kind, "cpu"), {"labels": y}, _counting(seen), config)
        out[name] = {
            "losses": result.losses,
            "weights": [t.detach().clone().numpy() for t in model.state_dict().values()],
            "examples": sum(seen),
            "world_size": result.world_size,
        }
    return out


def _resume_runs(folder: Path) -> dict[str, dict]:
    """A 4-epoch run with dropout (7 steps per epoch), straight; then interrupted at the second step of epoch 3
    and resumed from its checkpoint in ``folder``."""
    X, y = _tabular(200)
    config = TrainConfig(epochs=4, batch_size=32, lr=0.1)
    inputs = ResidentInputs(X, "tabular", "cpu")
    out = {}
    straight = _mlp(dropout=0.3)
    result = train(straight, inputs, {"labels": y}, cross_entropy_loss, config)
    out["straight"] = {"losses": result.losses, "weights": [t.numpy().copy() for t in straight.state_dict().values()]}
    try:
        train(_mlp(dropout=0.3), inputs, {"labels": y}, _counting([], fail_at=16), config, checkpoint_dir=folder)
    except _Interrupt:
        pass
    saved = torch.load(folder / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    resumed = _mlp(dropout=0.3)
    result = train(resumed, inputs, {"labels": y}, cross_entropy_loss, config, checkpoint_dir=folder)
    out["resumed"] = {
        "losses": result.losses,
        "weights": [t.numpy().copy() for t in resumed.state_dict().values()],
        "status": result.checkpoint_status,
        "from": result.resumed_from_epoch,
        "saved_epoch": int(saved["epoch"]),
        "saved_rngs": len(saved.get("global_rngs", [])),
    }
    return out


def _worker(rank: int, world: int, folder: str) -> dict:
    make, X, y, kind, config = _cases()["main"]
    model, start, stop = make(), rank * len(X) // world, (rank + 1) * len(X) // world
    shard = ResidentInputs(X, kind, "cpu").shard()  # this rank's rows, whole-set statistics
    result = train(model, shard, {"labels": y[start:stop]}, cross_entropy_loss, config)
    given_shard = {"losses": result.losses, "weights": [t.numpy().copy() for t in model.state_dict().values()]}
    return {"train": _train_cases(), "resume": _resume_runs(Path(folder)), "shard": given_shard}


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict]:
    """Both test scenarios run by two spawned gloo processes (one spawn for the module: it dominates the time)."""
    return run_ranks(_worker, WORLD, str(tmp_path_factory.mktemp("ddp_checkpoint")))


def test_two_ranks_make_the_single_process_optimisation(two_ranks: dict[int, dict]) -> None:
    single = _train_cases()
    for name, (_, X, _, _, config) in _cases().items():
        one, ranks = single[name], [two_ranks[r]["train"][name] for r in range(WORLD)]
        assert one["examples"] == len(X) * config.epochs and one["world_size"] == 1
        for rank, got in enumerate(ranks):
            # each rank ran only its shard (even_split: 100 + 100 rows of 200; 10 + 11 of 21; 15 + 15 of 30)
            assert got["examples"] == ((rank + 1) * len(X) // WORLD - rank * len(X) // WORLD) * config.epochs, name
            assert got["world_size"] == WORLD
            np.testing.assert_allclose(got["losses"], one["losses"], rtol=RTOL, err_msg=name)
            for w, w1 in zip(got["weights"], one["weights"], strict=True):
                np.testing.assert_allclose(w, w1, rtol=RTOL, atol=ATOL, err_msg=name)
        assert ranks[0]["losses"] == ranks[1]["losses"]  # the all-reduced epoch loss
        for w0, w1 in zip(ranks[0]["weights"], ranks[1]["weights"], strict=True):
            np.testing.assert_array_equal(w0, w1)
    for rank in range(WORLD):  # each rank given only its shard (ResidentInputs.shard) trains alike, bit for bit
        given, whole = two_ranks[rank]["shard"], two_ranks[rank]["train"]["main"]
        assert given["losses"] == whole["losses"]
        for a, b in zip(given["weights"], whole["weights"], strict=True):
            np.testing.assert_array_equal(a, b)


def test_two_ranks_resume_from_a_checkpoint_as_if_never_interrupted(two_ranks: dict[int, dict]) -> None:
    for rank in range(WORLD):
        runs = two_ranks[rank]["resume"]
        resumed, straight = runs["resumed"], runs["straight"]
        assert resumed["saved_epoch"] == 2 and resumed["saved_rngs"] == WORLD  # every rank's dropout stream
        assert resumed["status"] == "resumed" and resumed["from"] == 2  # the same run hash on both ranks
        assert resumed["losses"] == straight["losses"]
        for a, b in zip(resumed["weights"], straight["weights"], strict=True):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(two_ranks[0]["resume"]["resumed"]["weights"], two_ranks[1]["resume"]["resumed"]["weights"]):
        np.testing.assert_array_equal(a, b)


_CONFIG = """
dataset = "digits"
labeled = 60
validation = 100
unlabeled = 240
test = 200
teacher = {{ name = "mlp", hidden = [32] }}
student = {{ name = "mlp", hidden = [16] }}
epochs = 3
method = "weighted"
seeds = [0]
train = {{ optimizer = "adamw", lr = 0.003, weight_decay = 0.0001, batch_size = 32 }}
out = "{out}"
cache = "{cache}"
checkpoints = true
"""


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


def _config(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    config = folder / "tiny.toml"
    config.write_text(_CONFIG.format(out=folder / "out", cache=folder / "cache"), encoding="utf-8")
    return config


def _summary(config: Path) -> dict:
    return json.loads((config.parent / "out" / "tiny.json").read_text(encoding="utf-8"))


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=WORLD -m robustdistill.experiments.cli ARGS`` (the command line's
    ``__main__``), one torch thread per rank."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}"]
    command += ["-m", "robustdistill.experiments.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_torchrun_distill_equals_one_process_and_writes_once(tmp_path: Path) -> None:
    one = _config(tmp_path, "one")
    run_distillation(one, progress=False)
    two = _config(tmp_path, "two")
    done = _torchrun("distill", str(two), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("method weighted") == 1  # only rank 0 prints the summary
    assert _files(two.parent) == _files(one.parent)  # the same files, written once (no temporaries, no second set)
    a, b = _summary(one)["per_seed"][0], _summary(two)["per_seed"][0]
    assert a["student_train"]["world_size"] == 1
    assert b["student_train"]["world_size"] == b["teacher"]["train"]["world_size"] == WORLD
    np.testing.assert_allclose(b["teacher"]["train"]["losses"], a["teacher"]["train"]["losses"], rtol=RTOL)
    np.testing.assert_allclose(b["student_train"]["losses"], a["student_train"]["losses"], rtol=RTOL)
    # 200 test points: weights equal up to float32 rounding may move one borderline prediction at most
    assert abs(b["student_accuracy"] - a["student_accuracy"]) <= 1 / 200
    assert abs(b["teacher_accuracy"] - a["teacher_accuracy"]) <= 1 / 200
    assert b["teacher_queries"] == a["teacher_queries"] and b["plan"]["rows"] == a["plan"]["rows"]


_ACTIVE = """
dataset = "digits"
labeled = 65
validation = 100
unlabeled = 300
test = 200
teacher = {{ name = "mlp", hidden = [32] }}
student = {{ name = "mlp", hidden = [16] }}
epochs = 3
seeds = [0]
train = {{ optimizer = "adamw", lr = 0.003, batch_size = 32 }}
selector = "rad"
rounds = 2
budget = 30
out = "{out}"
"""


def test_torchrun_active_loop_runs_and_writes_once(tmp_path: Path) -> None:
    """The active loop under two ranks: it finishes (65 labeled points in batches of 32 leave one rank without a
    member of every epoch's last batch, where the method's loss must not be asked), pays the same
    labels, writes the files of one process once, and its student before any query (trained on the same
    labeled set with equal gradients) scores the single-process accuracy up to one borderline test point. Later
    rounds may pick other points when float32 rounding tips a sampled choice, so they are not compared."""
    folders = {}
    for name in ("one", "two"):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "act.toml").write_text(_ACTIVE.format(out=folders[name] / "out"), encoding="utf-8")
    run_active_distillation(folders["one"] / "act.toml", progress=False)
    done = _torchrun("active", str(folders["two"] / "act.toml"), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("selector rad") == 1  # only rank 0 prints the summary
    assert _files(folders["two"]) - {"act.toml"} == _files(folders["one"]) - {"act.toml"}
    a, b = (json.loads((folders[k] / "out" / "act.json").read_text(encoding="utf-8")) for k in ("one", "two"))
    assert a["queries"] == b["queries"]
    assert abs(a["mean"][0] - b["mean"][0]) <= 1 / 200
