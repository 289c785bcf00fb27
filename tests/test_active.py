"""The active distillation loop (experiments.active): the budgeted teacher oracle, exactly b queries per
round, config checks, and the CLI command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robustdistill.experiments.active import TeacherOracle, run_active_distillation
from robustdistill.experiments.cli import main


def test_oracle_counts_and_refuses_over_budget_or_repeated_queries():
    oracle = TeacherOracle(np.eye(3)[[0, 1, 2, 0, 1]], round_budget=2, total_budget=3)
    np.testing.assert_array_equal(oracle.query([0, 4]), np.eye(3)[[0, 1]])
    with pytest.raises(RuntimeError, match="over budget"):
        oracle.query([1, 2, 3])  # more than the round's budget
    with pytest.raises(RuntimeError, match="repeats"):
        oracle.query([0])
    oracle.query([3])
    with pytest.raises(RuntimeError, match="over budget"):
        oracle.query([1])  # past the total budget
    assert oracle.queries == 3 and oracle.per_round == [2, 1]


def _config(tmp_path, **overrides):
    cfg = {
        "name": "act", "dataset": "digits", "labeled": 30, "validation": 100, "unlabeled": 200, "test": 100,
        "teacher": {"name": "mlp", "hidden": [16]}, "student": {"name": "mlp", "hidden": [8]}, "epochs": 2,
        "seeds": [0], "train": {"optimizer": "adamw", "lr": 0.01}, "selector": "rad", "rounds": 2, "budget": 20,
        "out": str(tmp_path / "out"), "cache": str(tmp_path / "cache"),
    }  # fmt: skip
    cfg.update(overrides)
    return cfg


@pytest.mark.parametrize("selector", ["rad", "coreset", "cluster_margin"])
def test_the_loop_queries_exactly_the_budget_per_round(tmp_path, selector):
    result = run_active_distillation(_config(tmp_path, selector=selector, loss="slam"), progress=False)
    record = result.per_seed[0]
    assert record["oracle_per_round"] == [20, 20] and result.queries == (0, 20, 40)
    picked = [i for r in record["rounds"] for i in r["selected"]]
    assert len(picked) == len(set(picked)) == 40 and len(result.mean) == 3
    assert json.loads((tmp_path / "out" / "act.json").read_text())["selector"] == selector


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"selector": "magic"}, "unknown selector"),
        ({"rounds": 0}, "rounds"),
        ({"budget": 150}, "exceeds the pool"),
        ({"loss": "forward"}, "loss"),
        ({"method": "slam"}, "loss / loss_options"),
        ({"retrain": "sometimes"}, "retrain"),
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
    from robustdistill.experiments import active

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
    assert record["resumed_from_round"] == 1 and record["oracle_per_round"] == [10, 10, 10]
    assert again.accuracy == whole.accuracy
    assert record["rounds"] == whole.per_seed[0]["rounds"]
    # another config does not read the state: it starts afresh
    other = run_active_distillation({**cfg, "budget": 5}, progress=False)
    assert other.per_seed[0]["resumed_from_round"] == -1


def test_unixkd_queries_the_teacher_on_mixed_inputs(tmp_path):
    result = run_active_distillation(_config(tmp_path, selector="unixkd", budget=40, rounds=1), progress=False)
    record = result.per_seed[0]
    assert record["oracle_per_round"] == [40] and record["rounds"][0]["mixed"]
    with pytest.raises(ValueError, match="synthetic teacher has no model"):
        run_active_distillation(_config(tmp_path, selector="unixkd", teacher="synthetic"))


def test_oracle_on_new_inputs_needs_the_live_teacher():
    oracle = TeacherOracle(np.eye(2)[[0, 1, 0]], round_budget=2, total_budget=3)
    with pytest.raises(ValueError, match="live teacher"):
        oracle.query([0], np.zeros((1, 4)))
    live = TeacherOracle(np.eye(2)[[0, 1, 0]], round_budget=2, total_budget=3,
                         teacher=lambda x: np.tile([0.25, 0.75], (len(x), 1)))  # fmt: skip
    np.testing.assert_array_equal(live.query([0, 2], np.zeros((2, 4))), [[0.25, 0.75]] * 2)
    assert live.queries == 2
