r"""``run_distillation(config)``: the whole pipeline labeled set -> teacher -> teacher outputs -> method ->
student -> test accuracy, per seed, on the CPU or CUDA with the same code.

Per seed ``s`` (``spec/weighted.md`` §5, ``spec/slam.md`` §4):

1. splits of the data (:func:`~robustdistill.experiments.data.make_splits`, ``rng = s``): labeled A,
   validation V, unlabeled pool U, test;
2. the teacher (``build_model(teacher, seed=s)``) trained on A with cross-entropy; its probabilities on V, U
   and the test set, cached on disk (:mod:`~robustdistill.experiments.teacher_cache`) and shared by every
   method with the same teacher, data, split and seed;
3. the method's plan (:func:`~robustdistill.experiments.methods.plan_student`) from the labels of A, the
   teacher on V with V's labels, and the teacher on U;
4. the student (``build_model(student, seed=s)``) trained on the plan's rows of A followed by U, then its
   test accuracy.

Inputs are normalised with statistics of A and U together (no labels involved) for teacher and student
alike. A finished seed is written to ``OUT/NAME/seed_S.json`` (atomically) with a hash of the config; a rerun
of the same config reads it instead of training again (``resume``), so an interrupted run loses nothing it
had finished. ``checkpoints = true`` also checkpoints every epoch of every training run.

Teacher queries counted: the teacher labels V and U (``|V| + |U|``; 0 for ``labeled_only``).

Config (a dict or a TOML file; unknown keys are errors):

=================  ===========================================================================================
``name``           run name (default: the TOML file's stem, else ``"distill"``)
``dataset``        a name of :data:`~robustdistill.experiments.data.DATASETS`, or a table ``{name, root, n,
                   seed, ...options}`` for :func:`~robustdistill.experiments.data.load_dataset` (``seed``:
                   of generated data, default 0)
``labeled``,       sizes: counts or fractions (of the data outside the official test split);
``validation``,    ``test`` defaults to the official test split where there is one
``unlabeled``,
``test``
``stratify``       draw the labeled set evenly per class (default false)
``teacher``,       a model name of :data:`~robustdistill.experiments.models.MODELS` or a table ``{name,
``student``        ...options}``; the teacher may also be ``"synthetic"``: not trained, its outputs drawn by
                   :func:`~robustdistill.theory.teacher_noise.margin_teacher_probs` from the true labels
                   (known alpha(x) = 0.3 + 0.65 s^0.7 at margin s; ``spec/weighted.md`` §7)
``epochs``         student epochs; ``teacher_epochs`` the teacher's (default: ``epochs``)
``train``          :class:`~robustdistill.experiments.training.TrainConfig` fields for both (``batch_size``,
                   ``optimizer``, ``lr``, ``weight_decay``, ``schedule``, ``augment``, ``amp``, ``compile``,
                   ``grad_clip``); ``teacher_train`` overrides them for the teacher
``method``         one of :data:`~robustdistill.experiments.methods.METHODS`; ``method_options`` its options
``seeds``          a list of seeds, or a count n (seeds 0..n-1); default 3
``device``         ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``
``out``            folder of the JSON results (default ``reports/distill``); ``cache`` the teacher-output
                   cache folder (default ``reports/cache``; false = no cache)
``checkpoints``    checkpoint every epoch under ``OUT/NAME/checkpoints`` (default false)
``resume``         reuse finished seeds from ``OUT/NAME`` (default true)
=================  ===========================================================================================
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustdistill.algorithms.results import Result
from robustdistill.algorithms.validation import check_int
from robustdistill.theory.teacher_noise import margin_teacher_probs

from . import teacher_cache
from .data import DATASETS, Dataset, from_arrays, load_dataset, make_splits
from .methods import check_method, plan_student
from .models import MODELS, build_model
from .reporting import environment_info, write_json_atomic
from .training import (
    ResidentInputs,
    TrainConfig,
    cross_entropy_loss,
    has_dropout,
    mc_dropout_std,
    predict_probs,
    resolve_device,
    train,
)

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["CONFIG_KEYS", "DistillationResult", "load_config", "run_distillation"]

#: Top-level config keys and their defaults (None: required or derived).
CONFIG_KEYS: dict[str, Any] = {
    "name": None, "dataset": None, "labeled": None, "validation": None, "unlabeled": None, "test": None,
    "stratify": False, "teacher": None, "student": None, "epochs": None, "teacher_epochs": None, "train": {},
    "teacher_train": {}, "method": None, "method_options": {}, "seeds": 3, "device": "auto",
    "out": "reports/distill", "cache": "reports/cache", "checkpoints": False, "resume": True,
}  # fmt: skip
#: The teacher that is not trained: :func:`~robustdistill.theory.teacher_noise.margin_teacher_probs` on the
#: true labels (known alpha(x); ``spec/weighted.md`` §7's synthetic teacher-noise dataset).
SYNTHETIC_TEACHER = "synthetic"
_REQUIRED = ("dataset", "labeled", "validation", "unlabeled", "teacher", "student", "epochs", "method")
_TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("epochs", "seed"))


def load_config(config: Mapping[str, Any] | str | os.PathLike[str], *, own_data: bool = False) -> dict[str, Any]:
    """The config as a dict with defaults filled in, checked before any work: unknown or missing keys,
    unknown dataset, model or method, bad method options or training fields raise ``ValueError`` (one
    message). A path is read as TOML; its stem is the default ``name``. ``own_data``: the data is passed to
    :func:`run_distillation`, so ``dataset`` is only a label (any name)."""
    raw = _read_config(config)
    unknown = sorted(set(raw) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(map(repr, unknown))}; known: {', '.join(CONFIG_KEYS)}")
    cfg = {**CONFIG_KEYS, **raw}
    missing = [k for k in _REQUIRED if cfg[k] is None]
    if missing:
        raise ValueError(f"config is missing {', '.join(missing)}")
    cfg["name"] = str(cfg["name"] or "distill")
    cfg["dataset"] = _model_or_dataset(cfg["dataset"], "dataset", None if own_data else DATASETS)
    cfg["teacher"] = _model_or_dataset(cfg["teacher"], "teacher", (*MODELS, SYNTHETIC_TEACHER))
    cfg["student"] = _model_or_dataset(cfg["student"], "student", tuple(MODELS))
    if cfg["teacher"]["name"] == SYNTHETIC_TEACHER and len(cfg["teacher"]) > 1:
        raise ValueError(f"the {SYNTHETIC_TEACHER!r} teacher takes no options, got {cfg['teacher']}")
    cfg["method"], cfg["method_options"] = check_method(cfg["method"], cfg["method_options"])
    cfg["epochs"] = check_int(cfg["epochs"], "epochs", low=1)
    cfg["teacher_epochs"] = check_int(cfg["teacher_epochs"] or cfg["epochs"], "teacher_epochs", low=1)
    for key in ("train", "teacher_train"):
        if not isinstance(cfg[key], Mapping):
            raise ValueError(f"{key} must be a table of training options, got {cfg[key]!r}")
        bad = sorted(set(cfg[key]) - set(_TRAIN_FIELDS))
        if bad:
            raise ValueError(f"unknown {key} option(s) {', '.join(bad)}; known: {', '.join(_TRAIN_FIELDS)}")
    cfg["train"], cfg["teacher_train"] = dict(cfg["train"]), dict(cfg["teacher_train"])
    _train_configs(cfg, 0)  # validates the training fields
    seeds = cfg["seeds"]
    if isinstance(seeds, Sequence) and not isinstance(seeds, str):
        cfg["seeds"] = [check_int(s, "seeds entry") for s in seeds]
        if not cfg["seeds"] or len(set(cfg["seeds"])) != len(cfg["seeds"]):
            raise ValueError(f"seeds must be a non-empty list of distinct seeds, got {seeds!r}")
    else:
        cfg["seeds"] = list(range(check_int(seeds, "seeds", low=1)))
    if cfg["device"] not in ("auto", "cpu", "cuda") and not str(cfg["device"]).startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {cfg['device']!r}")
    for key in ("stratify", "checkpoints", "resume"):
        if not isinstance(cfg[key], bool):
            raise ValueError(f"{key} must be true or false, got {cfg[key]!r}")
    return cfg


def _read_config(config: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """A config dict, or a TOML file read into one (its stem is the default ``name``)."""
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if not path.is_file():
            raise ValueError(f"config file {str(path)!r} not found")
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
        raw.setdefault("name", path.stem)
        return raw
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"config must be a dict or a TOML file path, got {type(config).__name__}")


def _model_or_dataset(value: Any, key: str, names: tuple[str, ...] | None) -> dict[str, Any]:
    spec = {"name": value} if isinstance(value, str) else dict(value) if isinstance(value, Mapping) else None
    if spec is None or "name" not in spec:
        raise ValueError(f"{key} must be a name or a table with a 'name', got {value!r}")
    if names is not None and spec["name"] not in names:
        raise ValueError(f"unknown {key} {spec['name']!r}; choose one of {', '.join(names)}")
    return spec


def _train_configs(cfg: dict[str, Any], seed: int) -> tuple[TrainConfig, TrainConfig]:
    """(teacher, student) training configs of one seed."""
    try:
        student = TrainConfig(epochs=cfg["epochs"], seed=seed, **cfg["train"])
        teacher = TrainConfig(epochs=cfg["teacher_epochs"], seed=seed, **{**cfg["train"], **cfg["teacher_train"]})
    except TypeError as exc:  # a wrongly typed field: one ValueError for the config
        raise ValueError(f"bad training option: {exc}") from exc
    return teacher, student


@dataclasses.dataclass(frozen=True)
class DistillationResult(Result):
    """What :func:`run_distillation` measured.

    Attributes:
        name, method: the run and its method; ``config``: the checked config.
        seeds: the seeds run; ``student_accuracy`` and ``teacher_accuracy``: test accuracy per seed (the
            student's is None for ``method = "teacher"``).
        student_mean, student_std, teacher_mean, teacher_std: over seeds (std with ddof = 1; 0 for one seed).
        teacher_queries: teacher labels used per seed (``|V| + |U|``).
        wall_time_s: seconds of this call; ``per_seed``: each seed's record (splits, plan diagnostics,
            training summaries, timings, whether it was resumed).
        path: the JSON summary written.
    """

    name: str
    method: str
    config: dict[str, Any]
    seeds: tuple[int, ...]
    student_accuracy: tuple[float | None, ...]
    teacher_accuracy: tuple[float, ...]
    student_mean: float | None
    student_std: float | None
    teacher_mean: float
    teacher_std: float
    teacher_queries: int
    wall_time_s: float
    per_seed: tuple[dict[str, Any], ...]
    path: str | None = None


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def _dataset(cfg: dict[str, Any], data: Any) -> Dataset:
    if data is not None:
        if isinstance(data, Dataset):
            return data
        if isinstance(data, (tuple, list)) and len(data) == 2:
            return from_arrays(*data)
        raise TypeError("data must be a Dataset or an (X, y) pair")
    spec = dict(cfg["dataset"])
    name = spec.pop("name")
    root, n = spec.pop("root", None), spec.pop("n", None)
    return load_dataset(name, root, n=n, rng=spec.pop("seed", 0), **spec)


def _accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(probs).argmax(axis=1) == labels))


def _model(spec: dict[str, Any], input_shape: tuple[int, ...], num_classes: int, seed: int) -> torch.nn.Module:
    options = {k: v for k, v in spec.items() if k != "name"}
    return build_model(spec["name"], input_shape, num_classes, seed=seed, **options)


@dataclasses.dataclass
class _Seed:
    """One seed's splits, inputs, training configs and teacher outputs (shared by distillation and the active
    loop)."""

    splits: Any
    X_test: np.ndarray
    y_test: np.ndarray
    train_rows: np.ndarray
    base: ResidentInputs
    teacher_cfg: TrainConfig
    student_cfg: TrainConfig
    outputs: dict[str, np.ndarray]
    teacher_info: dict[str, Any]
    checkpoints: Any
    teacher: torch.nn.Module | None = None


def _prepare_seed(
    cfg: dict[str, Any], ds: Dataset, seed: int, device: torch.device, progress: bool | None, run_dir: Path,
    *, need_teacher: bool = False,
) -> _Seed:
    """Splits (``rng = seed``), inputs normalised with A and U together, and the teacher's outputs on V, U and
    the test set (trained on A, or synthetic; cached on disk). ``need_teacher``: the trained teacher model is
    returned too (trained again when only its outputs are cached; training is deterministic, so the outputs
    match the cache's)."""
    splits = make_splits(
        ds, labeled=cfg["labeled"], validation=cfg["validation"], unlabeled=cfg["unlabeled"], test=cfg["test"],
        rng=seed, stratify=cfg["stratify"],
    )  # fmt: skip
    X_test, y_test = (ds.test[0][splits.test], ds.test[1][splits.test]) if splits.test_official else (
        ds.X[splits.test], ds.y[splits.test])  # fmt: skip
    train_rows = np.concatenate([splits.labeled, splits.unlabeled])
    base = ResidentInputs(ds.X[train_rows], ds.kind, device)  # normalisation from A and U, no labels
    labeled_inputs = base.like(ds.X[splits.labeled])
    teacher_cfg, student_cfg = _train_configs(cfg, seed)
    checkpoints = (lambda role: run_dir / "checkpoints" / f"seed_{seed}_{role}") if cfg["checkpoints"] else (
        lambda role: None)  # fmt: skip
    method = cfg.get("method")

    # teacher: trained on A (or synthetic), its outputs on V, U and the test set cached
    description = {
        "dataset": ds.to_dict(), "data_digest": teacher_cache.array_digest(ds.X, ds.y), "splits": splits.to_dict(),
        "teacher": cfg["teacher"], "train": teacher_cfg.to_dict(), "version": environment_info()["versions"].get(
            "robustdistill"),
    }  # fmt: skip
    key = teacher_cache.cache_key(description)
    outputs = teacher_cache.load(cfg["cache"] or None, key)
    if method == "vid" and cfg["teacher"]["name"] == SYNTHETIC_TEACHER:
        raise ValueError("method 'vid' needs a trained teacher's features; the synthetic teacher has none")
    if need_teacher and cfg["teacher"]["name"] == SYNTHETIC_TEACHER:
        raise ValueError("this run queries the teacher on new inputs; the synthetic teacher has no model")
    if need_teacher:
        outputs = None
    if outputs is not None and method == "vid" and "pool_features" not in outputs:
        outputs = None  # an entry written before features were cached: train the teacher again
    teacher_info: dict[str, Any] = {"cache_key": key, "cached": outputs is not None}
    if outputs is None and cfg["teacher"]["name"] == SYNTHETIC_TEACHER:
        gen = np.random.default_rng([seed, 7])
        outputs = {name: margin_teacher_probs(labels, ds.num_classes, rng=gen)[0] for name, labels in
                   (("val", ds.y[splits.validation]), ("pool", ds.y[splits.unlabeled]), ("test", y_test))}  # fmt: skip
    elif outputs is None:
        teacher = _model(cfg["teacher"], labeled_inputs.input_shape, ds.num_classes, seed)
        fit = train(
            teacher, labeled_inputs, {"labels": ds.y[splits.labeled]}, cross_entropy_loss, teacher_cfg,
            checkpoint_dir=checkpoints("teacher"), progress=progress, desc=f"teacher seed {seed}",
        )  # fmt: skip
        pool_inputs = base.like(ds.X[splits.unlabeled])
        pool_probs, pool_features = predict_probs(teacher, pool_inputs, features=True)
        outputs = {
            "val": predict_probs(teacher, base.like(ds.X[splits.validation])),
            "pool": pool_probs,
            "test": predict_probs(teacher, base.like(X_test)),
            "pool_features": pool_features,
        }
        if has_dropout(teacher):  # the UPS baseline's uncertainty: std over 10 MC-dropout passes
            outputs["pool_std"] = mc_dropout_std(teacher, pool_inputs, passes=10, seed=seed)
        teacher_cache.save(cfg["cache"] or None, key, outputs)
        teacher_info["train"] = fit.to_dict()
    teacher_info["accuracy"] = _accuracy(outputs["test"], y_test)
    return _Seed(splits, X_test, y_test, train_rows, base, teacher_cfg, student_cfg, outputs, teacher_info,
                 checkpoints, teacher if need_teacher else None)  # fmt: skip


def _run_seed(
    cfg: dict[str, Any], ds: Dataset, seed: int, device: torch.device, progress: bool | None, run_dir: Path
) -> dict[str, Any]:
    started = time.perf_counter()
    ctx = _prepare_seed(cfg, ds, seed, device, progress, run_dir)
    splits, X_test, y_test, train_rows, base = ctx.splits, ctx.X_test, ctx.y_test, ctx.train_rows, ctx.base
    outputs, teacher_info, student_cfg, checkpoints = ctx.outputs, ctx.teacher_info, ctx.student_cfg, ctx.checkpoints
    teacher_acc = teacher_info["accuracy"]

    # the method's plan and the student
    plan = plan_student(
        cfg["method"], cfg["method_options"], labels_labeled=ds.y[splits.labeled],
        teacher_val=_renormalise(outputs["val"]), labels_val=ds.y[splits.validation],
        teacher_pool=_renormalise(outputs["pool"]), teacher_pool_std=outputs.get("pool_std"),
        teacher_pool_features=outputs.get("pool_features") if cfg["method"] == "vid" else None,
    )  # fmt: skip
    record: dict[str, Any] = {
        "seed": seed, "splits": splits.to_dict(), "teacher_accuracy": teacher_acc, "teacher": teacher_info,
        "student_accuracy": None,
    }  # fmt: skip
    if plan is not None:
        inputs = base.like(ds.X[train_rows[plan.rows]]) if plan.rows.size != train_rows.size else base
        student = _model(cfg["student"], inputs.input_shape, ds.num_classes, seed)
        student, loss_fn = plan.wrap(student, seed) if plan.wrap is not None else (student, plan.loss_fn)
        fit = train(
            student, inputs, plan.arrays, loss_fn, student_cfg, checkpoint_dir=checkpoints("student"),
            progress=progress, desc=f"{cfg['method']} seed {seed}",
        )  # fmt: skip
        record["student_accuracy"] = _accuracy(predict_probs(student, base.like(X_test)), y_test)
        record["plan"] = plan.to_dict()
        record["student_train"] = fit.to_dict()
    record["teacher_queries"] = 0 if cfg["method"] == "labeled_only" else int(
        splits.validation.size + splits.unlabeled.size)  # fmt: skip
    record["seconds"] = time.perf_counter() - started
    return record


def _renormalise(p: np.ndarray) -> np.ndarray:
    """float32 probabilities as float64 rows summing to 1 (the cache stores float32)."""
    p = np.asarray(p, dtype=np.float64)
    return p / p.sum(axis=1, keepdims=True)


def run_distillation(
    config: Mapping[str, Any] | str | os.PathLike[str],
    data: Dataset | tuple[np.ndarray, np.ndarray] | None = None,
    *,
    progress: bool | None = None,
) -> DistillationResult:
    """Run the distillation pipeline of ``config`` (module docstring) for every seed and write
    ``OUT/NAME.json``.

    Args:
        config: a dict or a TOML file path (:func:`load_config`; checked before any training).
        data: optional own data: a :class:`~robustdistill.experiments.data.Dataset` or an ``(X, y)`` pair
            (then ``dataset`` in the config is only its label).
        progress: tqdm bars for the training runs (None: only on a terminal).

    Returns:
        :class:`DistillationResult`.
    """
    started = time.perf_counter()
    cfg = load_config(config, own_data=data is not None)
    ds = _dataset(cfg, data)
    device = resolve_device(None if cfg["device"] == "auto" else cfg["device"])
    # sizes against the data before any training (one clear error)
    make_splits(ds, labeled=cfg["labeled"], validation=cfg["validation"], unlabeled=cfg["unlabeled"],
                test=cfg["test"], rng=cfg["seeds"][0], stratify=cfg["stratify"])  # fmt: skip
    run_dir = Path(cfg["out"]) / cfg["name"]
    config_key = teacher_cache.cache_key({k: v for k, v in cfg.items() if k not in ("seeds", "resume", "out")})
    records = []
    for seed in cfg["seeds"]:
        path = run_dir / f"seed_{seed}.json"
        record = _finished(path, config_key) if cfg["resume"] else None
        if record is None:
            record = _run_seed(cfg, ds, seed, device, progress, run_dir)
            record["config_key"] = config_key
            write_json_atomic(path, record)
            record["resumed"] = False
        else:
            record["resumed"] = True
        records.append(record)
    students = [r["student_accuracy"] for r in records]
    teachers = [r["teacher_accuracy"] for r in records]
    s_mean, s_std = _mean_std(students) if students[0] is not None else (None, None)
    t_mean, t_std = _mean_std(teachers)
    result = DistillationResult(
        name=cfg["name"], method=cfg["method"], config=cfg, seeds=tuple(cfg["seeds"]),
        student_accuracy=tuple(students), teacher_accuracy=tuple(teachers), student_mean=s_mean,
        student_std=s_std, teacher_mean=t_mean, teacher_std=t_std, teacher_queries=records[0]["teacher_queries"],
        wall_time_s=time.perf_counter() - started, per_seed=tuple(records),
    )  # fmt: skip
    summary_path = Path(cfg["out"]) / f"{cfg['name']}.json"
    write_json_atomic(summary_path, {**result.to_dict(), "device": str(device), "environment": environment_info()})
    return dataclasses.replace(result, path=str(summary_path))


def _finished(path: Path, config_key: str) -> dict[str, Any] | None:
    """A finished seed's record written by the same config, or None."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("config_key") == config_key else None
