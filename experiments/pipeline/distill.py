r"""``run_distillation(config, data=None, *, teacher=None, student=None)``: labeled set -> teacher -> teacher
labels -> method -> student -> test accuracy, per seed, on the CPU or CUDA with the same code.

Per seed ``s``:

1. splits of the data (:func:`~robustdistill.experiments.pipeline.data.make_splits`, ``rng = s``): labeled A,
   validation V, unlabeled pool U, test;
2. the teacher (:func:`~robustdistill.experiments.pipeline.seeds.seed_teacher`): the user's (``teacher=``), or
   the config's model trained on A with cross-entropy (weights cached on disk and shared by every method
   with the same teacher, data, split and seed), queried on demand
   (:class:`~robustdistill.experiments.pipeline.teacher.Teacher`): on V and U for the method (``|V| + |U|``
   labels; none for ``labeled_only`` and ``teacher``), and on the test set for evaluation only;
3. the method (:data:`~robustdistill.experiments.pipeline.methods.PIPELINE_METHODS`) fitted on the teacher's
   labels of V, its batch of A followed by U (:func:`~robustdistill.experiments.pipeline.methods.plan_student`);
4. the student (``student=`` the user's factory ``seed -> nn.Module``, or the config's model) trained on it,
   then its test accuracy. The trained students come back in ``result.students``.

Inputs are normalised with statistics of A and U together (no labels involved) for the student and for a
teacher model. A finished seed is written to ``OUT/NAME/seed_S.json`` with the student's weights in
``OUT/NAME/seed_S_student.pt`` (both atomically, the record with a digest of both) and a hash of the config; a
rerun of the same config reads them instead of training again (``resume``), so an interrupted run loses
nothing it had finished, and a record or student that fails its digest is trained again.
``checkpoints = true`` also checkpoints every epoch of every training run.

**Under torchrun** (``torchrun --nproc_per_node=N -m robustdistill.experiments.cli distill CONFIG``, or a
script calling :func:`run_distillation` launched by ``torchrun``): the run creates the default process group
when there is none (:func:`~robustdistill.experiments.pipeline.parallel.process_group`: NCCL with
``cuda:LOCAL_RANK`` for a CUDA run, whatever index the config's device names; gloo on the CPU) and destroys it
at the end. Every rank
loads the same data and runs the same seeds; the teacher is asked by rank 0 and its answers shared; the teacher
and the students train data-parallel (:func:`~robustdistill.experiments.pipeline.training.train`), so their
weights are the same on every rank; every rank computes the predictions it needs, and each seed's record is
rank 0's on every rank, so the result is the same everywhere. Only rank 0 writes files (the run folder's
claim and lock, the records, the students, the teacher cache, the checkpoints and ``OUT/NAME.json``).

Config (a dict or a TOML file; unknown keys are errors):

=====================  =======================================================================================
``name``               run name, a plain name, not a path (default: the TOML file's stem, else ``"distill"``)
``dataset``            a name of :data:`~robustdistill.experiments.pipeline.data.DATASETS`, or a table ``{name, root,
                       n, seed, ...options}`` for :func:`~robustdistill.experiments.pipeline.data.load_dataset`
                       (``seed``: of generated data, default 0); only a label when ``data`` is given
``labeled``,           sizes: counts or fractions (of the data outside the official test split);
``validation``,        ``test`` defaults to the official test split where there is one
``unlabeled``,
``test``
``stratify``           draw the labeled set evenly per class (default false)
``teacher``,           a model name of :data:`~robustdistill.experiments.pipeline.models.MODELS`, a
``student``            ``"package.module:attr"`` factory ``(seed, **options) -> nn.Module``, or a table ``{name,
                       ...options}``; the teacher may also be ``"synthetic"``: not trained, its labels drawn by
                       :func:`~robustdistill.theory.teacher_noise.margin_teacher_probs` from the true labels
                       (known alpha(x) = 0.3 + 0.65 s^0.7 at margin s). Not needed when ``teacher=`` /
                       ``student=`` are given
``epochs``             student epochs; ``teacher_epochs`` the teacher's (default: ``epochs``)
``train``              :class:`~robustdistill.experiments.pipeline.training.TrainConfig` fields for both
                       (``batch_size``, ``optimizer``, ``lr``, ``weight_decay``, ``schedule``, ``augment``, ``amp``,
                       ``compile``, ``grad_clip``); ``teacher_train`` overrides them for the teacher
``method``             a name of :data:`~robustdistill.experiments.pipeline.methods.PIPELINE_METHODS`;
                       ``method_options`` its options
``seeds``              a list of seeds, or a count n (seeds 0..n-1); default 3
``device``             ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``
``out``                folder of the results (default ``reports/distill``); ``cache`` the folder of trained
                       teachers and teacher answers (default ``reports/cache``; false = none)
``checkpoints``        checkpoint every epoch under ``OUT/NAME/checkpoints`` (default false)
``resume``             reuse finished seeds from ``OUT/NAME`` (default true)
``overwrite``          replace another configuration's results in ``OUT/NAME`` (default false: such a run is
                       refused; :mod:`~robustdistill.experiments.pipeline.run_folder`)
``evaluate_teacher``   the teacher's test accuracy (evaluation-only queries on the test set; default true)
=====================  =======================================================================================
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robustdistill.algorithms.results import Result, to_jsonable
from robustdistill.algorithms.validation import check_int
from robustdistill.experiments.distributed.collectives import world
from robustdistill.theory.slam_risk import leaves_topk

from . import teacher_cache
from .config import CONFIG_KEYS, check_keys, import_object, is_import_name, read_config, tomllib
from .data import DATASETS, Dataset
from .files import environment_info, write_json_atomic
from .methods import PIPELINE_METHODS, check_method, plan_student
from .models import MODELS, check_model
from .parallel import main_only, process_group, share
from .run_folder import check_name, claim_run, run_folder
from .seeds import (
    SYNTHETIC_TEACHER,
    SeedData,
    accuracy,
    build_student,
    check_teacher_classes,
    config_splits,
    dataset_of,
    finished_record,
    load_student,
    prepare_seed,
    renormalise,
    save_student,
    seed_teacher,
    train_configs,
)
from .training import TrainConfig, has_dropout, mc_dropout_std, predict_probs, resolve_device, train

__all__ = [
    "DistillationResult",
    "config_key",
    "load_config",
    "mean_std",
    "minimiser_leaves_topk",
    "open_run",
    "pool_fit",
    "run_distillation",
    "tomllib",
]

_REQUIRED = ("dataset", "labeled", "validation", "unlabeled", "teacher", "student", "epochs", "method")
_TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("epochs", "seed"))


def load_config(
    config: Mapping[str, Any] | str | os.PathLike[str],
    *,
    own_data: bool = False,
    own_teacher: bool = False,
    own_student: bool = False,
    active: bool = False,
) -> dict[str, Any]:
    """The config as a dict with defaults filled in, checked before any work: unknown or missing keys,
    unknown dataset, model or method, bad method options or training fields raise ``ValueError`` (one
    message). A path is read as TOML; its stem is the default ``name``. ``own_data`` / ``own_teacher`` /
    ``own_student``: given to the run, so ``dataset`` is only a label (any name) and ``teacher`` / ``student``
    may be left out. ``active``: the active loop's keys (checked by its ``load_active_config``)."""
    raw = read_config(config)
    check_keys(raw, active=active)
    cfg = {**CONFIG_KEYS, **raw}
    if active:
        cfg["method"] = "vanilla"
    missing = [
        k
        for k in _REQUIRED
        if cfg[k] is None and not (k == "teacher" and own_teacher) and not (k == "student" and own_student)
    ]
    if missing:
        raise ValueError(f"config is missing {', '.join(missing)}")
    cfg["name"] = check_name("distill" if cfg["name"] is None else cfg["name"])
    if not isinstance(cfg["out"], (str, os.PathLike)):
        raise TypeError(f"out must be a folder path, got {cfg['out']!r}")
    if cfg["cache"] is None or cfg["cache"] is False:
        cfg["cache"] = False
    elif not isinstance(cfg["cache"], (str, os.PathLike)):
        raise TypeError(f"cache must be a folder path or false, got {cfg['cache']!r}")
    cfg["dataset"] = _entry(cfg["dataset"], "dataset", None if own_data else DATASETS)
    cfg["teacher"] = None if cfg["teacher"] is None else _entry(cfg["teacher"], "teacher", (*MODELS, SYNTHETIC_TEACHER))
    cfg["student"] = None if cfg["student"] is None else _entry(cfg["student"], "student", tuple(MODELS))
    if cfg["teacher"] is not None and cfg["teacher"]["name"] == SYNTHETIC_TEACHER and len(cfg["teacher"]) > 1:
        raise ValueError(f"the {SYNTHETIC_TEACHER!r} teacher takes no options, got {cfg['teacher']}")
    cfg["method"], cfg["method_options"] = check_method(cfg["method"], cfg["method_options"])
    cfg["epochs"] = check_int(cfg["epochs"], "epochs", low=1)
    cfg["teacher_epochs"] = check_int(
        cfg["epochs"] if cfg["teacher_epochs"] is None else cfg["teacher_epochs"], "teacher_epochs", low=1
    )
    for key in ("train", "teacher_train"):
        if not isinstance(cfg[key], Mapping):
            raise ValueError(f"{key} must be a table of training options, got {cfg[key]!r}")
        bad = sorted(set(cfg[key]) - set(_TRAIN_FIELDS))
        if bad:
            raise ValueError(f"unknown {key} option(s) {', '.join(bad)}; known: {', '.join(_TRAIN_FIELDS)}")
    cfg["train"], cfg["teacher_train"] = dict(cfg["train"]), dict(cfg["teacher_train"])
    train_configs(cfg, 0)  # validates the training fields
    seeds = cfg["seeds"]
    if isinstance(seeds, Sequence) and not isinstance(seeds, (str, bytes)):
        cfg["seeds"] = [check_int(s, "seeds entry") for s in seeds]
        if not cfg["seeds"] or len(set(cfg["seeds"])) != len(cfg["seeds"]):
            raise ValueError(f"seeds must be a non-empty list of distinct seeds, got {seeds!r}")
    else:
        cfg["seeds"] = list(range(check_int(seeds, "seeds", low=1)))
    if cfg["device"] not in ("auto", "cpu", "cuda") and not str(cfg["device"]).startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {cfg['device']!r}")
    for key in ("stratify", "checkpoints", "resume", "evaluate_teacher", "overwrite"):
        if not isinstance(cfg[key], bool):
            raise ValueError(f"{key} must be true or false, got {cfg[key]!r}")
    return cfg


def _entry(value: Any, key: str, names: tuple[str, ...] | None) -> dict[str, Any]:
    """A dataset or model entry as a table ``{"name": ..., **options}``; a model may be a factory name."""
    spec = {"name": value} if isinstance(value, str) else dict(value) if isinstance(value, Mapping) else None
    if spec is None or "name" not in spec:
        raise ValueError(f"{key} must be a name or a table with a 'name', got {value!r}")
    if key in ("teacher", "student") and is_import_name(spec["name"]):
        if not callable(import_object(spec["name"])):
            raise ValueError(f"{key} {spec['name']!r} is not callable: a factory maps a seed to an nn.Module")
        return spec
    if names is not None and spec["name"] not in names:
        extra = " or a 'package.module:attr' factory" if key in ("teacher", "student") else ""
        raise ValueError(f"unknown {key} {spec['name']!r}; choose one of {', '.join(names)}{extra}")
    return spec


@dataclasses.dataclass(frozen=True)
class DistillationResult(Result):
    """What :func:`run_distillation` measured.

    Attributes:
        name, method: the run and its method; ``config``: the checked config.
        seeds: the seeds run; ``student_accuracy`` and ``teacher_accuracy``: test accuracy per seed (the
            student's is None for ``method = "teacher"``; the teacher's None when it was not evaluated).
        student_mean, student_std, teacher_mean, teacher_std: over seeds (std with ddof = 1; 0 for one seed).
        teacher_queries: per seed, the teacher labels used for training (``|V| + |U|``; 0 for ``labeled_only``
            and ``teacher``); ``evaluation_queries``: per seed, the teacher's evaluation-only answers (test).
        wall_time_s: seconds of this call; ``per_seed``: each seed's record (splits, plan diagnostics,
            training summaries, timings, whether it was resumed).
        path: the JSON summary written.
        students: the trained students, one ``nn.Module`` per seed (None for ``method = "teacher"``); not in
            :meth:`to_dict`. With an output folder their weights are in ``OUT/NAME/seed_S_student.pt``.
    """

    name: str
    method: str
    config: dict[str, Any]
    seeds: tuple[int, ...]
    student_accuracy: tuple[float | None, ...]
    teacher_accuracy: tuple[float | None, ...]
    student_mean: float | None
    student_std: float | None
    teacher_mean: float | None
    teacher_std: float | None
    teacher_queries: tuple[int, ...]
    evaluation_queries: tuple[int, ...]
    wall_time_s: float
    per_seed: tuple[dict[str, Any], ...]
    path: str | None = None
    students: tuple[nn.Module | None, ...] = dataclasses.field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the students (modules)."""
        return to_jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "students"})


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and std (ddof 1; 0 for one value) of the values, (None, None) when any is None."""
    if not values or any(v is None for v in values):
        return None, None
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


#: Config keys that do not change a run's results, left out of its key.
_NOT_IN_KEY = ("seeds", "resume", "out", "overwrite")


def config_key(cfg: Mapping[str, Any], teacher: Any = None, student: Any = None) -> str:
    """The hash a finished seed is stored under: the config without its seeds and folders, plus what identifies a
    given teacher or student (a module's weights digest, an array's digest, a callable's name)."""
    from .teacher import Teacher

    def ident(obj: Any) -> Any:
        if obj is None:
            return None
        if isinstance(obj, Teacher):
            return obj.identity
        if isinstance(obj, (nn.Module, np.ndarray, torch.Tensor)):
            return Teacher(obj).identity
        return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"

    return teacher_cache.cache_key(
        {
            **{k: v for k, v in cfg.items() if k not in _NOT_IN_KEY},
            "given_teacher": ident(teacher),
            "given_student": ident(student),
        }
    )


def open_run(cfg: Mapping[str, Any], data: Any, teacher: Any, student: Any) -> tuple[Dataset, torch.device, Path, str]:
    """What both pipelines check and fix before any training: the student factory's type, the data, the device,
    the split sizes against the data (one clear error), the run folder and the config's key."""
    if student is not None and not callable(student):
        raise TypeError(f"student must be a factory seed -> nn.Module, got {type(student).__name__}")
    ds = dataset_of(cfg, data)
    device = resolve_device(None if cfg["device"] == "auto" else cfg["device"])
    if world()[1] > 1 and device.type == "cuda":  # data-parallel: each rank on its own device
        device = torch.device("cuda", torch.cuda.current_device())
    splits = config_splits(cfg, ds, cfg["seeds"][0])
    for key in ("labeled", "validation", "unlabeled", "test"):
        if getattr(splits, key).size == 0:
            raise ValueError(f"{key} must hold at least one example, got {cfg[key]!r} (0 examples)")
    for role, given in (("teacher", teacher), ("student", student)):  # registry models: options on these data
        spec = cfg[role]
        if given is None and spec is not None and spec["name"] in MODELS:
            try:
                check_model(
                    spec["name"], ds.X.shape[1:], ds.num_classes, **{k: v for k, v in spec.items() if k != "name"}
                )
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"{role}: {exc}") from None
    return ds, device, run_folder(cfg), config_key(cfg, teacher, student)


def _finished_seed(
    cfg: dict[str, Any],
    ds: Dataset,
    seed: int,
    device: torch.device,
    run_dir: Path,
    key: str,
    student: Callable[[int], nn.Module] | None,
) -> tuple[dict[str, Any] | None, nn.Module | None]:
    """The record and student of a seed this config finished before (``resume``), or ``(None, None)`` when
    there is none, or its record or weights fail their digests (then the seed is trained again)."""
    record = finished_record(run_dir / f"seed_{seed}.json", key) if cfg["resume"] else None
    if record is None or record.get("student_accuracy") is None:
        return record, None
    data = prepare_seed(cfg, ds, seed, device, run_dir)
    model = load_student(
        run_dir / f"seed_{seed}_student.pt",
        build_student(cfg, student, data, ds.num_classes),
        record.get("student_sha256"),
    )
    return (record, model) if model is not None else (None, None)


def _run_seed(
    cfg: dict[str, Any],
    ds: Dataset,
    seed: int,
    device: torch.device,
    progress: bool | None,
    run_dir: Path,
    teacher: Any,
    student: Callable[[int], nn.Module] | None,
) -> tuple[dict[str, Any], nn.Module | None]:
    started = time.perf_counter()
    data = prepare_seed(cfg, ds, seed, device, run_dir)
    splits = data.splits
    cls = PIPELINE_METHODS[cfg["method"]]
    uses_teacher = getattr(cls, "uses_teacher", True)
    budget = splits.validation.size + splits.unlabeled.size if uses_teacher else 0
    st = seed_teacher(cfg, ds, data, teacher, budget=budget, progress=progress)
    before = (st.teacher.queries, st.teacher.evaluation_queries)
    record: dict[str, Any] = {
        "seed": seed,
        "splits": splits.to_dict(),
        "teacher": st.info,
        "student_accuracy": None,
        "teacher_accuracy": None,
    }
    if cfg["evaluate_teacher"]:
        record["teacher_accuracy"] = accuracy(st.teacher.evaluate(data.X_test, index=data.test_rows), data.y_test)
    plan = None
    if not uses_teacher:  # labeled_only (None for "teacher": no student)
        plan = plan_student(
            cfg["method"],
            cfg["method_options"],
            labels_labeled=ds.y[splits.labeled],
            teacher_val=None,
            labels_val=None,
            teacher_pool=None,
            num_classes=ds.num_classes,
        )
    else:
        t_val = st.teacher.query(ds.X[splits.validation], index=splits.validation)
        check_teacher_classes(t_val, ds.num_classes)
        t_pool = st.teacher.query(ds.X[splits.unlabeled], index=splits.unlabeled)
        extras = _teacher_extras(cfg["method"], st.module, data, ds.X[splits.unlabeled])
        plan = plan_student(
            cfg["method"],
            cfg["method_options"],
            labels_labeled=ds.y[splits.labeled],
            teacher_val=renormalise(t_val),
            labels_val=ds.y[splits.validation],
            teacher_pool=renormalise(t_pool),
            **extras,
        )
    model = None
    if plan is not None:
        inputs = (
            data.inputs(ds.X[np.concatenate([splits.labeled, splits.unlabeled])[plan.rows]])
            if (plan.rows.size != splits.labeled.size + splits.unlabeled.size)
            else data.base
        )
        model = build_student(cfg, student, data, ds.num_classes)
        trained, loss_fn = plan.wrap(model, seed) if plan.wrap is not None else (model, plan.loss_fn)
        fit = train(
            trained,
            inputs,
            plan.arrays,
            loss_fn,
            data.student_cfg,
            checkpoint_dir=data.checkpoint_dir("student"),
            progress=progress,
            desc=f"{cfg['method']} seed {seed}",
        )
        record["student_accuracy"] = accuracy(predict_probs(model, data.inputs(data.X_test)), data.y_test)
        if uses_teacher:
            pool_probs = predict_probs(model, data.base)[splits.labeled.size :]  # base holds A, then U
            record["pool_fit"] = pool_fit(pool_probs, t_pool, ds.y[splits.unlabeled])
        record["plan"] = plan.to_dict()
        if cfg["method"] == "slam":
            normalize = bool(cfg["method_options"]["normalize"])
            record["minimiser_leaves_topk"] = minimiser_leaves_topk(plan.arrays, normalize)
        record["student_train"] = fit.to_dict()
    record["teacher_queries"] = st.teacher.queries - before[0]
    record["evaluation_queries"] = st.teacher.evaluation_queries - before[1]
    record["seconds"] = time.perf_counter() - started
    return record, model


def pool_fit(student_probs: np.ndarray, teacher_probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """How the trained student fits the teacher on the pool (evaluation only: the pool's true labels are read,
    never trained on). ``student_probs``, ``teacher_probs``: (n, K); ``labels``: (n,) true classes.

    Returns ``{"teacher_wrong", "fits_teacher_mistakes", "right_where_teacher_wrong", "agrees_with_teacher"}``:
    the number of pool points where the teacher's top class is wrong; on those, the fraction where the
    student's top class is the teacher's (it learned the mistake) and where it is the true class (it undid
    it); and the student's agreement with the teacher's top class on the whole pool.
    """
    if not (
        np.ndim(student_probs) == np.ndim(teacher_probs) == 2
        and np.ndim(labels) == 1
        and len(student_probs) == len(teacher_probs) == len(labels)
    ):
        raise ValueError(
            f"student_probs and teacher_probs must be (n, K) and labels (n,) for the same n, got shapes "
            f"{np.shape(student_probs)}, {np.shape(teacher_probs)} and {np.shape(labels)}"
        )
    student, teacher = np.argmax(student_probs, axis=1), np.argmax(teacher_probs, axis=1)
    wrong = teacher != labels
    count = int(wrong.sum())
    return {
        "teacher_wrong": count,
        "fits_teacher_mistakes": float(np.mean(student[wrong] == teacher[wrong])) if count else None,
        "right_where_teacher_wrong": float(np.mean(student[wrong] == labels[wrong])) if count else None,
        "agrees_with_teacher": float(np.mean(student == teacher)) if labels.size else None,
    }


def minimiser_leaves_topk(arrays: Mapping[str, np.ndarray], normalize: bool) -> float:
    """SLaM's batch ``arrays`` (targets, alpha, topk_index, labeled): the fraction of pool rows whose
    per-example loss minimiser (:func:`~robustdistill.theory.slam_risk.leaves_topk`) has its top class
    outside the teacher's top-k set."""
    pool = ~np.asarray(arrays["labeled"], dtype=bool)
    if not pool.any():
        return 0.0
    targets = np.asarray(arrays["targets"][pool], dtype=np.float64)
    targets /= targets.sum(axis=1, keepdims=True)  # float32 rows back onto the simplex
    mask = np.zeros_like(targets)
    np.put_along_axis(mask, np.asarray(arrays["topk_index"][pool]), 1.0, axis=1)
    alpha = np.asarray(arrays["alpha"][pool], dtype=np.float64)
    return float(leaves_topk(targets, alpha, mask, normalize=normalize).mean())


def _teacher_extras(method: str, module: nn.Module | None, data: SeedData, pool_x: np.ndarray) -> dict[str, Any]:
    """What UPS (MC-dropout uncertainty) and VID (penultimate features) need from the teacher model on the
    pool ``pool_x``, which is already labeled (no new label is used); nothing for the other methods."""
    if method == "ups":
        return {
            "teacher_pool_std": mc_dropout_std(module, data.inputs(pool_x), passes=10, seed=data.seed)
            if module is not None and has_dropout(module)
            else None
        }
    if method == "vid":
        if module is None:
            raise ValueError("method 'vid' needs a teacher model's features; this teacher has no model")
        return {"teacher_pool_features": predict_probs(module, data.inputs(pool_x), features=True)[1]}
    return {}


def run_distillation(
    config: Mapping[str, Any] | str | os.PathLike[str],
    data: Dataset | tuple[np.ndarray, np.ndarray] | torch.utils.data.Dataset | None = None,
    *,
    teacher: Any = None,
    student: Callable[[int], nn.Module] | None = None,
    progress: bool | None = None,
) -> DistillationResult:
    """Run the distillation pipeline of ``config`` (module docstring) for every seed and write
    ``OUT/NAME.json``.

    Args:
        config: a dict or a TOML file path (:func:`load_config`; checked before any training).
        data: optional own data: a :class:`~robustdistill.experiments.pipeline.data.Dataset`, an ``(X, y)``
            pair or a map-style torch ``Dataset`` of ``(input, label)`` (then ``dataset`` in the config is only
            its label).
        teacher: optional own teacher, instead of the config's: a
            :class:`~robustdistill.experiments.pipeline.teacher.Teacher`, an ``nn.Module`` (logits; it sees the
            pipeline's normalised inputs), a callable ``raw inputs -> probabilities``, or an array of
            probabilities by row (:mod:`~robustdistill.experiments.pipeline.seeds`).
        student: optional own student factory ``seed -> nn.Module`` (untrained), instead of the config's.
        progress: tqdm bars for the training runs (None: only on a terminal).

    Returns:
        :class:`DistillationResult`, with the trained students in ``.students``.
    """
    started = time.perf_counter()
    cfg = load_config(
        config, own_data=data is not None, own_teacher=teacher is not None, own_student=student is not None
    )
    with process_group(cfg["device"]):
        result, summary_path = _run(cfg, data, teacher, student, progress, started)
    return dataclasses.replace(result, path=str(summary_path))


def _run(
    cfg: dict[str, Any],
    data: Any,
    teacher: Any,
    student: Callable[[int], nn.Module] | None,
    progress: bool | None,
    started: float,
) -> tuple[DistillationResult, Path]:
    """Every seed of the checked config ``cfg`` (:func:`run_distillation`), the summary written by rank 0."""
    ds, device, run_dir, key = open_run(cfg, data, teacher, student)
    records, students = [], []
    with claim_run(cfg, key, "distill"):
        for seed in cfg["seeds"]:
            record, model = _finished_seed(cfg, ds, seed, device, run_dir, key, student)
            if record is None:
                record, model = _run_seed(cfg, ds, seed, device, progress, run_dir, teacher, student)
                record = share(record)  # rank 0's record (its timings) on every rank
                record["config_key"] = key
                if model is not None:
                    record["student_sha256"] = save_student(run_dir / f"seed_{seed}_student.pt", model)
                main_only(lambda: write_json_atomic(run_dir / f"seed_{seed}.json", record, digest=True))
                record["resumed"] = False
            else:
                record["resumed"] = True
            records.append(record)
            students.append(model)
        s_mean, s_std = mean_std([r["student_accuracy"] for r in records])
        t_mean, t_std = mean_std([r["teacher_accuracy"] for r in records])
        result = DistillationResult(
            name=cfg["name"],
            method=cfg["method"],
            config=cfg,
            seeds=tuple(cfg["seeds"]),
            student_accuracy=tuple(r["student_accuracy"] for r in records),
            teacher_accuracy=tuple(r["teacher_accuracy"] for r in records),
            student_mean=s_mean,
            student_std=s_std,
            teacher_mean=t_mean,
            teacher_std=t_std,
            teacher_queries=tuple(r["teacher_queries"] for r in records),
            evaluation_queries=tuple(r["evaluation_queries"] for r in records),
            wall_time_s=share(time.perf_counter() - started),
            per_seed=tuple(records),
            students=tuple(students),
        )
        summary_path = Path(cfg["out"]) / f"{cfg['name']}.json"
        main_only(
            lambda: write_json_atomic(
                summary_path,
                {**result.to_dict(), "device": str(device), "environment": environment_info()},
                digest=True,
            )
        )
    return result, summary_path
