"""The active distillation loop: exactly b teacher labels per round and |V| + R b in all (a counting teacher
proves it), a user's own teacher and student, config checks, resume, and the CLI command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from robustdistill.experiments.cli import main
from robustdistill.experiments.pipeline.active import run_active_distillation


def _config(tmp_path, **overrides):
    cfg = {
        "name": "act",
        "dataset": "digits",
        "labeled": 30,
        "validation": 100,
        "unlabeled": 200,
        "test": 100,
        "teacher": {"name": "mlp", "hidden": [16]},
        "student": {"name": "mlp", "hidden": [8]},
        "epochs": 2,
        "seeds": [0],
        "train": {"optimizer": "adamw", "lr": 0.01},
        "selector": "rad",
        "rounds": 2,
        "budget": 20,
        "out": str(tmp_path / "out"),
        "cache": str(tmp_path / "cache"),
    }
    cfg.update(overrides)
    return cfg


@pytest.mark.parametrize("selector", ["rad", "coreset", "cluster_margin"])
def test_the_loop_queries_exactly_the_budget_per_round(tmp_path, selector):
    result = run_active_distillation(_config(tmp_path, selector=selector, loss="slam"), progress=False)
    record = result.per_seed[0]
    assert record["labels_per_round"] == [20, 20] and result.queries == (0, 20, 40)
    assert result.teacher_queries == (100 + 2 * 20,)  # |V| + R b: the pool is never labeled as a whole
    picked = [i for r in record["rounds"] for i in r["selected"]]
    assert len(picked) == len(set(picked)) == 40 and len(result.mean) == 3
    assert json.loads((tmp_path / "out" / "act.json").read_text())["selector"] == selector


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"selector": "magic"}, "selector must be one of"),
        ({"rounds": 0}, "rounds"),
        ({"budget": 150}, "exceeds the pool"),
        ({"loss": "ups"}, "loss"),
        ({"method": "slam"}, "loss / loss_options"),
        ({"retrain": "sometimes"}, "retrain"),
        ({"mistakes": "oracle"}, "mistakes must be one of 'pool', 'upper', 'candidates'"),
        ({"mistakes": None}, "mistakes"),
    ],
)
def test_bad_active_configs(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        run_active_distillation(_config(tmp_path, **overrides))


def test_cli_active(tmp_path):
    toml = tmp_path / "a.toml"
    toml.write_text(
        'dataset = "digits"\nlabeled = 30\nvalidation = 100\nunlabeled = 200\ntest = 100\nteacher = "mlp"\n'
        'student = { name = "mlp", hidden = [8] }\nepochs = 2\nseeds = 1\nselector = "margin"\nrounds = 1\n'
        f'budget = 10\nout = "{tmp_path / "o"}"\ncache = false\n'
    )
    assert main(["active", str(toml), "--quiet"]) == 0
    assert json.loads((tmp_path / "o" / "a.json").read_text())["queries"] == [0, 10]


def test_resume_after_an_interrupted_round_gives_the_same_result(tmp_path, monkeypatch):
    from robustdistill.experiments.pipeline import active

    cfg = _config(tmp_path, selector="margin", rounds=3, budget=10, retrain="warm")
    whole = run_active_distillation({**cfg, "out": str(tmp_path / "whole")}, progress=False)
    calls = {"n": 0}
    real_train = active.train

    def interrupted(*args, **kwargs):  # rounds 0 and 1 finish, round 2's training is cut off
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(active, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_active_distillation(cfg, progress=False)
    monkeypatch.setattr(active, "train", real_train)
    again = run_active_distillation(cfg, progress=False)
    record = again.per_seed[0]
    assert record["resumed_from_round"] == 1 and record["labels_per_round"] == [10, 10, 10]
    assert again.teacher_queries == whole.teacher_queries == (100 + 3 * 10,)
    assert again.accuracy == whole.accuracy
    assert record["rounds"] == whole.per_seed[0]["rounds"]
    # another config in the same folder is refused; with overwrite it replaces the state and starts afresh
    with pytest.raises(ValueError, match="another configuration"):
        run_active_distillation({**cfg, "budget": 5}, progress=False)
    other = run_active_distillation({**cfg, "budget": 5, "overwrite": True}, progress=False)
    assert other.per_seed[0]["resumed_from_round"] == -1


def test_unixkd_queries_the_teacher_on_mixed_inputs(tmp_path):
    result = run_active_distillation(_config(tmp_path, selector="unixkd", budget=40, rounds=1), progress=False)
    record = result.per_seed[0]
    assert record["labels_per_round"] == [40] and record["rounds"][0]["mixed"]
    with pytest.raises(ValueError, match="synthetic teacher has no model"):
        run_active_distillation(_config(tmp_path, selector="unixkd", teacher="synthetic"))


class _Counting:
    """A teacher callable on raw inputs that records every point it is asked about (a paid API)."""

    def __init__(self, num_classes: int) -> None:
        self.asked: list[np.ndarray] = []
        self.k = num_classes

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.asked.append(np.array(x))
        logits = np.stack(
            [np.sin(x[:, :: max(1, x.shape[1] // self.k)][:, : self.k].sum(1) + c) for c in range(self.k)], 1
        )
        e = np.exp(3 * logits)
        return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("selector", ["rad", "margin", "random"])
def test_a_counting_teacher_labels_exactly_the_validation_set_and_the_selected_points(tmp_path, selector):
    from robustdistill.experiments.pipeline.data import load_dataset

    ds = load_dataset("digits")
    counting = _Counting(ds.num_classes)
    cfg = _config(
        tmp_path,
        selector=selector,
        rounds=3,
        budget=15,
        teacher=None,
        seeds=[0, 1],
        loss="slam",
        evaluate_teacher=False,
    )
    result = run_active_distillation(cfg, data=ds, teacher=counting, progress=False)
    asked = np.concatenate(counting.asked)
    assert asked.shape[0] == 2 * (100 + 3 * 15)  # two seeds; evaluate_teacher = false: not even the test set
    assert result.teacher_queries == (145, 145) and result.evaluation_queries == (0, 0)
    for record in result.per_seed:
        selected = [i for r in record["rounds"] for i in r["selected"]]
        assert record["labels_per_round"] == [15, 15, 15] and len(set(selected)) == 45
    # what was asked is exactly V and the selected pool points, by content
    from robustdistill.experiments.pipeline.data import make_splits

    splits = make_splits(ds, labeled=30, validation=100, unlabeled=200, test=100, rng=0)
    pool_picked = splits.unlabeled[[i for r in result.per_seed[0]["rounds"] for i in r["selected"]]]
    expected = {row.tobytes() for row in ds.X[np.concatenate([splits.validation, pool_picked])]}
    assert {row.tobytes() for row in asked[:145]} == expected


def test_own_teacher_module_and_student_factory(tmp_path):
    from robustdistill.experiments.pipeline.data import load_dataset

    ds = load_dataset("digits")
    teacher = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    made: list[int] = []

    def student(seed: int) -> nn.Module:
        made.append(seed)
        return nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))

    cfg = _config(tmp_path, teacher=None, student=None, selector="margin", rounds=1, budget=10)
    result = run_active_distillation(cfg, data=ds, teacher=teacher, student=student, progress=False)
    assert isinstance(result.students[0], nn.Sequential) and made and set(made) == {0}
    assert result.teacher_queries == (110,)
    saved = torch.load(tmp_path / "out" / "act" / "seed_0_student.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in result.students[0].state_dict().items())


def test_pool_diagnostics_are_evaluation_only_and_off_by_default(tmp_path):
    off = run_active_distillation(_config(tmp_path, rounds=1), progress=False)
    assert "evaluation_only" not in off.per_seed[0]["rounds"][0] and off.evaluation_queries == (100,)
    on = run_active_distillation(_config(tmp_path, rounds=1, pool_diagnostics=True, name="diag"), progress=False)
    diag = on.per_seed[0]["rounds"][0]["evaluation_only"]
    assert set(diag) == {"error_by_gain", "error_top_b", "error_pool", "useful_gain"}
    assert on.evaluation_queries == (100 + 200,) and on.teacher_queries == off.teacher_queries == (120,)
    assert on.accuracy == off.accuracy  # evaluation only: it changes nothing the student sees


# --------------------------------------------------------------------------------------------------------
# The config key ``mistakes``: how RAD's m is estimated each round


def test_mistakes_pool_is_the_default_and_the_pool_estimate(tmp_path):
    absent = run_active_distillation(_config(tmp_path, name="absent"), progress=False)
    pool = run_active_distillation(_config(tmp_path, name="pool", mistakes="pool"), progress=False)
    assert absent.config["mistakes"] == "pool"
    assert pool.per_seed[0]["rounds"] == absent.per_seed[0]["rounds"] and pool.accuracy == absent.accuracy
    first, second = absent.per_seed[0]["rounds"]
    assert first["mistakes_estimate"] == second["mistakes_estimate"] == "pool"
    # m = round(validation error rate x remaining pool): |V| = 100, |U| = 200 then 180
    errors = first["mistakes"] / 2
    assert errors == int(errors) and second["mistakes"] == int(np.floor(errors * 1.8 + 0.5))
    assert first["rad"]["mistakes"] == first["mistakes"]  # what RAD was given


def test_mistakes_candidates_are_at_most_twice_the_budget_and_upper_is_conservative(tmp_path):
    pool = run_active_distillation(_config(tmp_path, name="pool"), progress=False)
    cand = run_active_distillation(_config(tmp_path, name="cand", mistakes="candidates"), progress=False)
    upper = run_active_distillation(_config(tmp_path, name="upper", mistakes="upper"), progress=False)
    for result in (cand, upper):
        assert result.per_seed[0]["labels_per_round"] == [20, 20] and result.teacher_queries == (100 + 2 * 20,)
    for p, c, u in zip(*(r.per_seed[0]["rounds"] for r in (pool, cand, upper))):
        assert c["mistakes_estimate"] == "candidates" and u["mistakes_estimate"] == "upper"
        assert 0 <= c["mistakes"] <= 2 * 20 and c["rad"]["mistakes"] == c["mistakes"]
        assert u["mistakes"] >= p["mistakes"] and u["rad"]["mistakes"] == u["mistakes"]  # same |U|, same t_V


def test_unknown_mistakes_is_refused_before_any_training_or_query(tmp_path, monkeypatch):
    from robustdistill.experiments.pipeline import active

    def forbidden(*args, **kwargs):
        raise AssertionError("nothing may run before the config is checked")

    monkeypatch.setattr(active, "train", forbidden)
    monkeypatch.setattr(active, "seed_teacher", forbidden)
    monkeypatch.setattr(active, "open_run", forbidden)
    with pytest.raises(ValueError, match="mistakes must be one of 'pool', 'upper', 'candidates', got 'magic'"):
        run_active_distillation(_config(tmp_path, mistakes="magic"))
    assert not (tmp_path / "out").exists()


def test_mistakes_is_ignored_by_the_other_selectors(tmp_path):
    base = run_active_distillation(_config(tmp_path, name="m0", selector="margin", rounds=1), progress=False)
    cand = run_active_distillation(
        _config(tmp_path, name="m1", selector="margin", rounds=1, mistakes="candidates"), progress=False
    )
    assert cand.per_seed[0]["rounds"] == base.per_seed[0]["rounds"] and cand.accuracy == base.accuracy
    assert cand.per_seed[0]["rounds"][0]["mistakes_estimate"] == "pool"


def test_candidates_pay_only_for_the_validation_set_and_the_selected_points(tmp_path):
    """The student's predictions on V cost no label, and the teacher is never asked about the pool."""
    from robustdistill.experiments.pipeline.data import load_dataset, make_splits

    ds = load_dataset("digits")
    counting = _Counting(ds.num_classes)
    cfg = _config(tmp_path, rounds=3, budget=15, teacher=None, mistakes="candidates", evaluate_teacher=False)
    result = run_active_distillation(cfg, data=ds, teacher=counting, progress=False)
    asked = np.concatenate(counting.asked)
    assert asked.shape[0] == 100 + 3 * 15 and result.teacher_queries == (145,) and result.evaluation_queries == (0,)
    rounds = result.per_seed[0]["rounds"]
    assert [r["mistakes_estimate"] for r in rounds] == ["candidates"] * 3 and all(r["mistakes"] <= 30 for r in rounds)
    splits = make_splits(ds, labeled=30, validation=100, unlabeled=200, test=100, rng=0)
    pool_picked = splits.unlabeled[[i for r in rounds for i in r["selected"]]]
    expected = {row.tobytes() for row in ds.X[np.concatenate([splits.validation, pool_picked])]}
    assert {row.tobytes() for row in asked} == expected
