r"""One seed of a run, as both pipelines (:mod:`.distill` and :mod:`.active`) prepare it: the data, the splits and
the inputs on the device, the teacher (the user's, or trained on the labeled set), the student factory, and
the run folder's files (finished seeds, the students' weights).

**The teacher's index space.** A teacher given as an array is queried by row: rows ``0 .. n-1`` are the
dataset's training rows (``Dataset.X``) and, when the array has ``n + n_test`` rows, rows ``n ..`` are the
official test split. Every other teacher is queried with the inputs themselves (raw rows of ``Dataset.X``,
as the user gave them), and a ``torch.nn.Module`` given as the teacher sees them normalised exactly as the
student does (the pipeline's inputs); wrap it in a :class:`~robustdistill.experiments.pipeline.teacher.Teacher`
with a ``transform`` for anything else.

**Data-parallel runs** (``torchrun``): every rank prepares the same seed (splits, inputs, student). The
teacher is asked by rank 0 only and its answers (with the label counts) are shared with every rank
(:class:`SharedTeacher`), so an expensive teacher is paid once and every rank trains on the same answers. A
trained teacher's cached weights are read by rank 0 and shared; a teacher trained here is trained by every
rank together (:func:`~robustdistill.experiments.pipeline.training.train`) and cached by rank 0. Only rank 0
writes files (the teacher cache, the teacher's answers, the students' weights).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robustdistill.experiments.distributed.collectives import is_main, world
from robustdistill.theory.teacher_noise import margin_teacher_probs

from . import teacher_cache
from .config import import_object, is_import_name
from .data import Dataset, Splits, from_arrays, from_torch_dataset, load_dataset, make_splits
from .files import content_digest, environment_info, load_torch, read_json, write_atomic
from .models import model_factory
from .parallel import broadcast_module, main_only, on_main
from .teacher import Teacher
from .training import ResidentInputs, TrainConfig, cross_entropy_loss, predict_probs, train

__all__ = [
    "SYNTHETIC_TEACHER",
    "SeedData",
    "SharedTeacher",
    "SeedTeacher",
    "accuracy",
    "build_student",
    "check_teacher_classes",
    "checked_module",
    "config_splits",
    "dataset_of",
    "finished_record",
    "load_student",
    "prepare_seed",
    "renormalise",
    "save_student",
    "seed_teacher",
    "train_configs",
]

#: The teacher that is not trained: :func:`~robustdistill.theory.teacher_noise.margin_teacher_probs` on the
#: true labels (known alpha(x) = 0.3 + 0.65 s^0.7 at margin s).
SYNTHETIC_TEACHER = "synthetic"


def dataset_of(cfg: Mapping[str, Any], data: Any) -> Dataset:
    """The run's data: the user's (a :class:`Dataset`, an ``(X, y)`` pair or a map-style torch ``Dataset``),
    else the config's ``dataset`` (a name, or a table ``{name, root, n, seed, ...options}``)."""
    if data is not None:
        if isinstance(data, Dataset):
            return data
        if isinstance(data, (tuple, list)) and len(data) == 2:
            return from_arrays(*data)
        if isinstance(data, torch.utils.data.Dataset):
            return from_torch_dataset(data)
        raise TypeError(f"data must be a Dataset, an (X, y) pair or a torch Dataset, got {type(data).__name__}")
    spec = dict(cfg["dataset"])
    name = spec.pop("name")
    root, n = spec.pop("root", None), spec.pop("n", None)
    return load_dataset(name, root, n=n, rng=spec.pop("seed", 0), **spec)


def train_configs(cfg: Mapping[str, Any], seed: int) -> tuple[TrainConfig, TrainConfig]:
    """(teacher, student) training configs of one seed."""
    try:
        student = TrainConfig(epochs=cfg["epochs"], seed=seed, **cfg["train"])
        teacher = TrainConfig(epochs=cfg["teacher_epochs"], seed=seed, **{**cfg["train"], **cfg["teacher_train"]})
    except TypeError as exc:  # a wrongly typed field: one ValueError for the config
        raise ValueError(f"bad training option: {exc}") from exc
    return teacher, student


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of (n, K) probabilities against (n,) labels."""
    return float(np.mean(np.asarray(probs).argmax(axis=1) == labels))


def renormalise(p: np.ndarray) -> np.ndarray:
    """float32 probabilities as float64 rows summing to 1 (answers are kept as float32)."""
    p = np.asarray(p, dtype=np.float64)
    return p / p.sum(axis=1, keepdims=True)


@dataclasses.dataclass
class SeedData:
    """One seed's splits and inputs. ``base``: the inputs of A and U on the device, normalised with their own
    statistics (no labels involved), which every other input shares (:meth:`inputs`); ``*_rows``: rows of the
    teacher's index space (module docstring)."""

    seed: int
    splits: Splits
    X_test: np.ndarray
    y_test: np.ndarray
    test_rows: np.ndarray
    base: ResidentInputs
    teacher_cfg: TrainConfig
    student_cfg: TrainConfig
    checkpoint_dir: Callable[[str], Path | None]

    def inputs(self, X: np.ndarray) -> ResidentInputs:
        """``X`` on the device, normalised like the training inputs."""
        return self.base.like(X)


def config_splits(cfg: Mapping[str, Any], ds: Dataset, seed: int) -> Splits:
    """The splits the config's sizes give on ``ds`` for ``seed`` (:func:`~.data.make_splits`)."""
    return make_splits(
        ds,
        labeled=cfg["labeled"],
        validation=cfg["validation"],
        unlabeled=cfg["unlabeled"],
        test=cfg["test"],
        rng=seed,
        stratify=cfg["stratify"],
    )


def prepare_seed(cfg: Mapping[str, Any], ds: Dataset, seed: int, device: torch.device, run_dir: Path) -> SeedData:
    """Splits (``rng = seed``), the inputs of A and U resident on ``device`` and the training configs."""
    splits = config_splits(cfg, ds, seed)
    if splits.test_official:
        X_test, y_test, test_rows = ds.test[0][splits.test], ds.test[1][splits.test], ds.y.size + splits.test
    else:
        X_test, y_test, test_rows = ds.X[splits.test], ds.y[splits.test], splits.test
    base = ResidentInputs(ds.X[np.concatenate([splits.labeled, splits.unlabeled])], ds.kind, device)
    teacher_cfg, student_cfg = train_configs(cfg, seed)
    folder = run_dir / "checkpoints"
    checkpoints = (lambda role: folder / f"seed_{seed}_{role}") if cfg["checkpoints"] else (lambda role: None)
    return SeedData(seed, splits, X_test, y_test, np.asarray(test_rows), base, teacher_cfg, student_cfg, checkpoints)


class SharedTeacher:
    """A :class:`Teacher` asked on rank 0 only, its answers and counters shared with every rank (data-parallel
    runs; one process uses the teacher itself). Everything else (``kind``, ``identity``, ``module``, ...) is
    the wrapped teacher's."""

    def __init__(self, teacher: Teacher) -> None:
        self._teacher = teacher
        self._counts = on_main(self._snapshot)

    def _snapshot(self) -> tuple[int, int, int]:
        t = self._teacher
        return t.queries, t.evaluation_queries, t.calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._teacher, name)

    def __repr__(self) -> str:
        return f"SharedTeacher({self._teacher!r})"

    @property
    def queries(self) -> int:
        """Labels charged so far (rank 0's count)."""
        return self._counts[0]

    @property
    def evaluation_queries(self) -> int:
        """Evaluation-only answers so far (rank 0's count)."""
        return self._counts[1]

    @property
    def calls(self) -> int:
        """Points sent to the teacher so far (rank 0's count)."""
        return self._counts[2]

    @property
    def remaining(self) -> int | None:
        """Labels left in the budget (None: no budget)."""
        return None if self._teacher.budget is None else self._teacher.budget - self.queries

    def to_dict(self) -> dict[str, Any]:
        """The wrapped teacher's :meth:`Teacher.to_dict` with rank 0's counters."""
        return {
            **self._teacher.to_dict(),
            "queries": self.queries,
            "calls": self.calls,
            "evaluation_queries": self.evaluation_queries,
        }

    def query(self, inputs: Any = None, *, index: Any = None) -> np.ndarray:
        """:meth:`Teacher.query` on rank 0, its answers on every rank."""
        return self._ask(self._teacher.query, inputs, index)

    __call__ = query

    def evaluate(self, inputs: Any = None, *, index: Any = None) -> np.ndarray:
        """:meth:`Teacher.evaluate` on rank 0, its answers on every rank."""
        return self._ask(self._teacher.evaluate, inputs, index)

    def _ask(self, method: Callable[..., np.ndarray], inputs: Any, index: Any) -> np.ndarray:
        answers, self._counts = on_main(lambda: (method(inputs, index=index), self._snapshot()))
        return answers


def _shared(teacher: Teacher) -> Teacher:
    """``teacher`` itself in one process, a :class:`SharedTeacher` of it data-parallel."""
    return teacher if world()[1] == 1 else SharedTeacher(teacher)  # type: ignore[return-value]


@dataclasses.dataclass
class SeedTeacher:
    """The seed's teacher: the :class:`Teacher` to query, its module when there is one (UPS's MC dropout and
    VID's features need it; None for a callable, an array or the synthetic teacher) and JSON-ready facts."""

    teacher: Teacher
    module: nn.Module | None
    info: dict[str, Any]


def _factory_description(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The config entry of a model, with a digest of a ``package.module:attr`` factory's source file (so an
    edited factory is not mistaken for the cached one)."""
    out = dict(spec)
    if is_import_name(spec.get("name")):
        import inspect

        source = inspect.getsourcefile(inspect.getmodule(import_object(spec["name"])) or object)
        out["source_digest"] = (
            None
            if source is None
            else teacher_cache.array_digest(np.frombuffer(Path(source).read_bytes(), dtype=np.uint8))
        )
    return out


def seed_teacher(
    cfg: Mapping[str, Any],
    ds: Dataset,
    data: SeedData,
    given: Any = None,
    *,
    budget: int | None = None,
    progress: bool | None = None,
) -> SeedTeacher:
    """The seed's teacher, queried on demand.

    ``given`` (the ``teacher=`` of ``run_distillation`` / ``run_active_distillation``): a :class:`Teacher` is
    used as it is (its budget and cache are the user's); an ``nn.Module`` is queried on the pipeline's inputs
    (module docstring) and cached by its weights; a callable on raw inputs; an array by row. Otherwise the
    config's teacher: ``"synthetic"`` (drawn from the true labels), or a model (registry name or factory)
    trained on the labeled set A with cross-entropy, its weights cached in ``cfg["cache"]`` so every method
    and rerun shares it. Teachers the pipeline builds get ``budget`` (the labels the run may use) and keep
    their answers in ``cfg["cache"]``.

    Data-parallel, the returned teacher is a :class:`SharedTeacher` (asked on rank 0 only, which alone keeps
    the answers on disk), a given module is loaded with rank 0's weights on every rank (its features and MC
    dropout feed UPS and VID on every rank), and rank 0 alone reads and writes the cached weights."""
    splits, seed = data.splits, data.seed
    cache = cfg["cache"] or None
    answers_cache = cache if is_main() else None  # rank 0 alone asks the teacher (SharedTeacher)
    if given is not None:
        if isinstance(given, Teacher):
            return SeedTeacher(_shared(given), given.module, {"source": "given", **on_main(given.to_dict)})
        if isinstance(given, nn.Module):
            broadcast_module(given)  # data-parallel: rank 0's weights (its features feed UPS and VID)
            checked_module(lambda: given, data, ds.num_classes, "teacher")
            stats = teacher_cache.array_digest(*data.base.stats)
            name = f"module {teacher_cache.cache_key({'weights': Teacher(given).identity, 'stats': stats})}"
            teacher = Teacher(_on_inputs(given, data), batch_size=None, budget=budget, cache=answers_cache, name=name)
            return SeedTeacher(_shared(teacher), given, {"source": "given module"})
        if isinstance(given, (np.ndarray, torch.Tensor)):
            rows = len(given)
            n, n_test = ds.y.size, 0 if ds.test is None else ds.test[1].size
            if rows not in (n, n + n_test):
                raise ValueError(
                    f"a teacher array must have one row per training row ({n}) or per training and "
                    f"official test row ({n + n_test}), got {rows}"
                )
            return SeedTeacher(_shared(Teacher(given, budget=budget)), None, {"source": "given array"})
        if callable(given):
            return SeedTeacher(_shared(Teacher(given, budget=budget)), None, {"source": "given callable"})
        raise TypeError(
            f"teacher must be a Teacher, an nn.Module, a callable or an (n, K) array, got {type(given).__name__}"
        )
    if cfg["teacher"]["name"] == SYNTHETIC_TEACHER:
        gen = np.random.default_rng([seed, 7])
        probs = np.full((ds.y.size + (0 if ds.test is None else ds.test[1].size), ds.num_classes), np.nan)
        for rows, labels in (
            (splits.validation, ds.y[splits.validation]),
            (splits.unlabeled, ds.y[splits.unlabeled]),
            (data.test_rows, data.y_test),
        ):
            probs[rows] = margin_teacher_probs(labels, ds.num_classes, rng=gen)[0].astype(np.float32)
        probs[np.isnan(probs[:, 0])] = 1.0 / ds.num_classes  # rows no split uses (never asked)
        return SeedTeacher(_shared(Teacher(probs, budget=budget)), None, {"source": "synthetic"})
    description = {
        "dataset": ds.to_dict(),
        "data_digest": teacher_cache.array_digest(ds.X, ds.y),
        "splits": splits.to_dict(),
        "teacher": _factory_description(cfg["teacher"]),
        "train": data.teacher_cfg.to_dict(),
        "version": environment_info()["versions"].get("robustdistill"),
    }
    key = teacher_cache.cache_key(description)
    labeled = data.inputs(ds.X[splits.labeled])
    module = checked_module(
        lambda: model_factory(cfg["teacher"])(seed, input_shape=labeled.input_shape, num_classes=ds.num_classes),
        data,
        ds.num_classes,
        "teacher",
    )
    weights = on_main(lambda: teacher_cache.load_weights(cache, key))
    info: dict[str, Any] = {"source": "trained on the labeled set", "cache_key": key, "cached": weights is not None}
    if weights is not None:
        module.load_state_dict(weights)
    else:
        fit = train(
            module,
            labeled,
            {"labels": ds.y[splits.labeled]},
            cross_entropy_loss,
            data.teacher_cfg,
            checkpoint_dir=data.checkpoint_dir("teacher"),
            progress=progress,
            desc=f"teacher seed {seed}",
        )
        main_only(lambda: teacher_cache.save_weights(cache, key, module.state_dict()))
        info["train"] = fit.to_dict()
    teacher = Teacher(
        _on_inputs(module, data), batch_size=None, budget=budget, cache=answers_cache, name=f"trained {key}"
    )
    return SeedTeacher(_shared(teacher), module, info)


def _on_inputs(module: nn.Module, data: SeedData) -> Callable[[np.ndarray], np.ndarray]:
    """The module as a callable on raw inputs: normalised like the student's, batched on the run's device."""
    return lambda x: predict_probs(module, data.inputs(x))


def build_student(
    cfg: Mapping[str, Any], given: Callable[[int], nn.Module] | None, data: SeedData, num_classes: int
) -> nn.Module:
    """The seed's untrained student: ``given(seed)`` (the user's factory) or the config's model, checked on one
    of the run's inputs (:func:`checked_module`)."""
    spec: Any = given if given is not None else cfg["student"]
    return checked_module(
        lambda: model_factory(spec)(data.seed, input_shape=data.base.input_shape, num_classes=num_classes),
        data,
        num_classes,
        "student",
    )


def checked_module(make: Callable[[], nn.Module], data: SeedData, num_classes: int, role: str) -> nn.Module:
    """``make()``, a module that maps one of the run's inputs to ``(1, num_classes)`` logits; a factory or a
    module that fails (a signature, a type, the first layer's width, the number of classes) raises one
    ``ValueError`` / ``TypeError`` naming ``role`` before any training."""
    try:
        module = make()
        probs = predict_probs(module, data.inputs(data.X_test[:1]))
    except TypeError as exc:
        raise TypeError(f"{role}: {exc}") from None
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"{role}: the model fails on one input of shape {data.base.input_shape}: {exc}") from None
    if probs.shape != (1, num_classes):
        raise ValueError(
            f"{role}: the model gives {probs.shape[1]} logits per input, the data have {num_classes} classes"
        )
    return module


def check_teacher_classes(probs: np.ndarray, num_classes: int) -> None:
    """The teacher's answers must be over the data's classes (``ValueError`` naming the teacher)."""
    if probs.shape[1] != num_classes:
        raise ValueError(f"the teacher answers {probs.shape[1]} classes, the data have {num_classes}")


def save_student(path: Path, student: nn.Module) -> str:
    """Write the student's ``state_dict`` (on the CPU) atomically, a plain ``torch.save`` file (load with
    ``weights_only=True``); returns its content digest, which the seed's record keeps. Data-parallel, rank 0
    writes and every rank returns the digest (the weights are the same on every rank)."""
    state = {k: v.detach().cpu() for k, v in student.state_dict().items()}
    main_only(lambda: write_atomic(path, lambda fh: torch.save(state, fh)))
    return content_digest(state)


def load_student(path: Path, student: nn.Module, digest: object) -> nn.Module | None:
    """``student`` with the weights saved at ``path``, or None when they are missing, do not fit, or do not
    match ``digest`` (damaged or replaced: a ``DamagedFileWarning``)."""
    state = load_torch(path, expected=digest if isinstance(digest, str) else "")
    if state is None:
        return None
    try:
        student.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError):
        return None
    return student


def finished_record(path: Path, config_key: str) -> dict[str, Any] | None:
    """A finished seed's record written by the same config, or None (absent, another config's, or failing its
    digest: damaged or edited, with a ``DamagedFileWarning``)."""
    record = read_json(path)
    return record if record is not None and record.get("config_key") == config_key else None
