"""Bad values for every key of the pipelines' configs and every argument of the teacher oracle: each is refused
(before any work) with a ``ValueError`` or ``TypeError`` that names the key or argument, or it is a value it
accepts (listed below), within a time bound."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from robustdistill.experiments.pipeline.active import load_active_config
from robustdistill.experiments.pipeline.distill import load_config, open_run, run_distillation
from robustdistill.experiments.pipeline.teacher import Teacher, TeacherBudgetError

BASE = {
    "name": "t",
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
}
ACTIVE_BASE = {**{k: v for k, v in BASE.items() if k != "method"}, "selector": "rad", "rounds": 2, "budget": 10}
BAD = [
    math.nan,
    math.inf,
    -1,
    0,
    10**400,
    2**63,
    1e308,
    -1e308,
    "abc",
    "1",
    True,
    None,
    [],
    [1],
    {},
    {"x": 1},
    1.5,
    b"x",
    object(),
]
OTHER_KEYS = [
    "stratify",
    "teacher_epochs",
    "device",
    "checkpoints",
    "resume",
    "evaluate_teacher",
    "overwrite",
    "out",
    "cache",
]
TRAIN_KEYS = ["lr", "batch_size", "weight_decay", "optimizer", "schedule", "augment", "amp", "compile", "grad_clip"]

#: (key, value) pairs of BAD that are valid values (None: the key's default; a number where any positive one is).
ACCEPTED = {
    ("name", "abc"),
    ("name", "1"),
    ("name", None),
    ("out", "abc"),
    ("out", "1"),
    ("cache", "abc"),
    ("cache", "1"),
    ("cache", None),
    ("teacher_epochs", None),
    ("seeds", (1,)),
    ("train", ()),
    ("method_options", None),
    ("method_options", ()),
    ("loss_options", None),
    ("loss_options", ()),
    ("teacher.hidden", ()),
    ("teacher.hidden", (1,)),
    ("student.hidden", ()),
    ("student.hidden", (1,)),
    ("dataset.n", None),
    *(
        (key, True)
        for key in (
            "stratify",
            "checkpoints",
            "resume",
            "evaluate_teacher",
            "overwrite",
            "pool_diagnostics",
            "train.augment",
            "train.compile",
        )
    ),
    *((f"train.{key}", v) for key in ("lr", "weight_decay", "grad_clip") for v in (1.5, 1e308, 2**63)),
    ("train.weight_decay", 0),
    ("train.grad_clip", None),
}


def _frozen(value: object) -> object:
    return tuple(value) if isinstance(value, list) else () if isinstance(value, dict) and not value else value


def _cases() -> list[tuple[str, str, object]]:
    cases = []
    for pipeline, base in (("distill", BASE), ("active", ACTIVE_BASE)):
        keys = (
            [*base, *OTHER_KEYS, "method_options"]
            if pipeline == "distill"
            else [*base, *OTHER_KEYS, "gain", "loss", "loss_options", "retrain", "pool_diagnostics", "mistakes"]
        )
        keys += [f"train.{k}" for k in TRAIN_KEYS] + ["teacher.hidden", "student.hidden", "dataset.n"]
        cases += [(pipeline, key, value) for key in keys for value in BAD]
    return cases


def _config(pipeline: str, key: str, value: object, tmp_path) -> dict:
    cfg = dict(BASE if pipeline == "distill" else ACTIVE_BASE, out=str(tmp_path / "o"), cache=str(tmp_path / "c"))
    if "." in key:
        table, option = key.split(".")
        cfg[table] = {**({"name": cfg[table]} if isinstance(cfg[table], str) else cfg[table]), option: value}
    else:
        cfg[key] = value
    return cfg


def test_every_bad_config_value_is_refused_naming_its_key_or_is_valid(tmp_path):
    """1,425 calls (each key of both pipelines' configs, the training table and the models' and dataset's
    options, with 19 bad values); ``open_run`` checks what needs the data (split sizes, model options)."""
    findings, counts = [], {"calls": 0, "clean": 0, "accepted": 0}
    for pipeline, key, value in _cases():
        counts["calls"] += 1
        load = load_config if pipeline == "distill" else load_active_config
        started = time.perf_counter()
        try:
            open_run(load(_config(pipeline, key, value, tmp_path)), None, None, None)
        except (ValueError, TypeError) as exc:
            if key.split(".")[-1] not in str(exc):
                findings.append(f"{pipeline} {key}={value!r:.40}: message does not name it: {exc}")
            counts["clean"] += 1
        else:
            if (key, _frozen(value)) not in ACCEPTED:
                findings.append(f"{pipeline} {key}={value!r:.40}: accepted")
            counts["accepted"] += 1
        if time.perf_counter() - started > 5:
            findings.append(f"{pipeline} {key}={value!r:.40}: took {time.perf_counter() - started:.1f} s")
    assert not findings, f"{len(findings)} findings in {counts}:\n" + "\n".join(findings)
    assert counts["calls"] == len(_cases()) and not (tmp_path / "o").exists()


@pytest.mark.parametrize("key", ["labeled", "validation", "unlabeled", "test"])
def test_empty_splits_are_refused(tmp_path, key):
    with pytest.raises(ValueError, match=f"{key} must hold at least one example"):
        open_run(load_config(_config("distill", key, 0, tmp_path)), None, None, None)


TEACHER_ACCEPTED = {("temperature", v) for v in (2**63, 1e308, 1.5)} | {
    ("batch_size", None),
    ("budget", None),
    ("cache", None),
    ("cache", "abc"),
    ("cache", "1"),
    ("name", None),
    ("name", "abc"),
    ("name", "1"),
}
BAD_INPUTS = [np.array(["a"]), np.zeros((2, 4), complex), np.zeros((3, 5), np.float32), [1], 3.0, None]


def test_every_bad_teacher_argument_is_refused_naming_it(tmp_path):
    findings = []
    for key in ("temperature", "batch_size", "budget", "cache", "name"):
        for value in [*BAD, np.array(["a"]), np.zeros((2, 3), complex)]:
            options = {"temperature": 1.0, "batch_size": 8, "budget": 10, "cache": None, "name": None, key: value}
            if key == "cache" and isinstance(value, str):
                options["cache"] = str(tmp_path / value)
            try:
                Teacher(torch.nn.Linear(4, 3), **options).query(np.zeros((3, 4), np.float32))
            except TeacherBudgetError:  # a budget of 0 is valid: the first label exceeds it
                if (key, value) != ("budget", 0):
                    findings.append(f"{key}={value!r:.40}: budget error")
            except (ValueError, TypeError) as exc:
                if key not in str(exc):
                    findings.append(f"{key}={value!r:.40}: message does not name it: {exc}")
            else:
                if (key, value if not isinstance(value, np.ndarray) else None) not in TEACHER_ACCEPTED:
                    findings.append(f"{key}={value!r:.40}: accepted")
    teacher = Teacher(torch.nn.Linear(4, 3), budget=100)
    for inputs in BAD_INPUTS:
        try:
            teacher.query(inputs)
        except (ValueError, TypeError) as exc:
            if "inputs" not in str(exc):
                findings.append(f"inputs={inputs!r:.40}: message does not name them: {exc}")
        else:
            findings.append(f"inputs={inputs!r:.40}: accepted")
    assert not findings, "\n".join(findings)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def _bad_runs() -> list[tuple[str, str, dict]]:
    X, y = _digits()
    probs = np.full((len(y), 10), 0.1)
    data = [
        "abc",
        3,
        [],
        (X,),
        (X, y, y),
        (X[:10], y),
        (X.astype(complex), y),
        (np.full_like(X, np.nan), y),
        (X, y + 0.5),
        (X, -y),
        (X, y.astype(str)),
        (X.astype(str), y),
        (X, np.zeros_like(y)),
        (X[:, :0], y),
        (X.astype(object), y),
        (X, y * 10**12),
    ]
    teachers = [
        "abc",
        3,
        probs[:, :1],
        probs * np.nan,
        probs.astype(complex),
        -probs,
        probs[:5],
        lambda x: "x",
        lambda x: np.full((len(x), 3), 1 / 3),
        torch.nn.Linear(5, 10),
        torch.nn.Linear(64, 3),
    ]
    students = [
        "abc",
        3,
        lambda s: "x",
        lambda s: torch.nn.Linear(5, 10),
        lambda s: torch.nn.Linear(64, 3),
        lambda s: None,
        lambda: torch.nn.Linear(64, 10),
    ]
    return (
        [("data", "data", {"data": d}) for d in data]
        + [("teacher", "teacher", {"data": (X, y), "teacher": t}) for t in teachers]
        + [("student", "student", {"data": (X, y), "student": s}) for s in students]
    )


def test_run_distillation_refuses_bad_data_teachers_and_students_naming_them(tmp_path):
    """34 calls: data, teachers and student factories of the wrong type, shape, values or class count are
    refused with an error that names what was wrong, before the student trains."""
    cfg = dict(BASE, dataset="mine", epochs=1, seeds=[0], out=str(tmp_path / "o"), cache=False)
    findings = []
    for i, (argument, named, kwargs) in enumerate(_bad_runs()):
        config = {**cfg, "name": f"r{i}", **({argument: None} if argument != "data" else {})}
        try:
            run_distillation(config, progress=False, **kwargs)
        except (ValueError, TypeError) as exc:
            words = {"data": ("data", "X", "y", "label"), "teacher": ("teacher",), "student": ("student",)}[named]
            if not any(word in str(exc) for word in words):
                findings.append(f"{argument} #{i}: message does not name it: {exc}")
        else:
            findings.append(f"{argument} #{i}: accepted")
    assert not findings, "\n".join(findings)
