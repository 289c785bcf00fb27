r"""``run_active_distillation(config, data=None, *, teacher=None, student=None)``: the active distillation loop
(our formulation of Algorithm 1 of Baykal et al., ICLR 2023), which pays the teacher only for what it selects.

Per seed (splits, inputs and teacher exactly as in :mod:`~robustdistill.experiments.pipeline.distill`):

.. code-block:: text

    t_V  <- teacher.query(V)                     # |V| labels: m (and alpha, k for the loss) need them
    D <- {};  student <- TRAIN(A, D)
    for round r = 1..R:
        P, h <- student probabilities and penultimate features on the remaining pool U
        m    <- estimate_mistakes(t_V, y_V, |U|)     # config key mistakes (below); only RAD uses m
        sel  <- SELECTORS[selector](P, b, m, rng=rng, embeddings=h, center_embeddings=h(A and D),
                                    clusters=ids)   # cluster_margin's HAC ids, computed in round 1 only
        D    <- D + teacher.query(U[sel.indices]);  U <- U minus sel.indices   # exactly b new labels
        student <- TRAIN(A, D)        # from scratch (the seed's initial weights) or warm start
        log test accuracy, the labels used, the support size and max p of sel.probabilities (when the
        selector samples), RAD's diagnostics (and whether its law was close to uniform), how many queried
        labels were wrong (against the true labels)
        save the round's state (resume)

**Teacher labels.** The teacher is queried on demand
(:class:`~robustdistill.experiments.pipeline.teacher.Teacher`), never on the whole pool: R rounds of budget b
cost exactly ``|V| + R b`` labels (fewer only when two points share the same input, which is labeled once),
and a teacher the pipeline builds is given exactly that budget. The result reports them per seed
(``teacher_queries``), beside the evaluation-only answers (``evaluation_queries``: the test set for the
teacher's accuracy, and the pool with ``pool_diagnostics``).

**Evaluation-only diagnostics** (``pool_diagnostics = true``, off by default: they ask the teacher about the
whole pool, which a user paying per label would not do): per round, how the teacher's mistakes follow the
gain and what RAD, greedy top-b and uniform would gain on them, under ``"evaluation_only"`` in the round's
record.

UNIXKD (``selector = "unixkd"``) queries the teacher on mixed inputs
(:func:`~robustdistill.algorithms.selection.mix_inputs`), so it needs a teacher that takes inputs (not an
array); D holds the mixed inputs with the teacher's answers on them.

Resume: after every round the seed's state (selections, teacher answers, queried inputs, the RNG state,
accuracies and the student's weights) is written atomically to ``OUT/NAME/seed_S_state.pt``; a run of the
same config (``resume = true``, the default) continues after the last finished round, and the result is the
same as an uninterrupted run's (bit for bit on the CPU: every step is seeded). The finished student's weights
are ``OUT/NAME/seed_S_student.pt``.

**Under torchrun** (``torchrun --nproc_per_node=N -m robustdistill.experiments.cli active CONFIG``): as
:func:`~robustdistill.experiments.pipeline.distill.run_distillation` (the process group, the teacher asked by
rank 0, data-parallel training, only rank 0 writing files). Every rank computes the student's predictions and
its selection; each round's selection, its m, the clusters and the generator state are rank 0's on every rank,
as are the accuracies and each seed's record, so every rank queries, trains and reports the same.

The student's loss on D is any method of :data:`~robustdistill.algorithms.methods.METHODS` (``loss``, default
``"vanilla"``, with ``loss_options``), on A plus the queried points. Config keys: those of
``run_distillation`` without ``method`` / ``method_options``, plus ``selector`` (a name of
:data:`~robustdistill.algorithms.selection.SELECTORS`), ``gain`` (RAD's gain kind, default ``"margin"``),
``rounds``, ``budget`` (per round), ``loss``, ``loss_options``, ``retrain`` (``"scratch"``, the default, or
``"warm"``), ``pool_diagnostics`` (default false) and ``mistakes`` (default ``"pool"``), how RAD's number of
teacher mistakes m is estimated each round:

================  ==========================================================================================
``"pool"``        ``estimate_mistakes(t_V, y_V, |U|)``: the validation error rate times the remaining pool
                  (default; the loop's behaviour before the key existed)
``"upper"``       the same with ``upper = 0.05``: the one-sided Clopper-Pearson upper bound of the error rate,
                  rounded up (conservative, larger m)
``"candidates"``  ``estimate_candidate_mistakes(g_V, c_V, g_U, b)``: the expected teacher errors among the
                  2b highest-gain pool points, from an isotonic fit of the teacher's correctness on V against
                  the student's gain on V (the student's predictions on V cost no label; the teacher's
                  answers on U are not used), so m <= 2b
================  ==========================================================================================

Only ``selector = "rad"`` uses m: for the other selectors the key is ignored and m is the ``"pool"`` estimate
(recorded, and used by ``pool_diagnostics``), as before. Each round's record holds ``mistakes`` (m) and
``mistakes_estimate`` (the estimate that gave it).
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robustdistill.algorithms.methods import METHODS
from robustdistill.algorithms.results import Result, to_jsonable
from robustdistill.algorithms.selection import (
    GAINS,
    NEAR_UNIFORM_RATIO,
    SELECTORS,
    NearUniformWarning,
    cluster_assignments,
    informativeness,
    mix_inputs,
    top_b,
)
from robustdistill.algorithms.teacher_quality import estimate_candidate_mistakes, estimate_mistakes
from robustdistill.algorithms.validation import check_int
from robustdistill.experiments.distributed.collectives import world
from robustdistill.theory.selection_value import expected_useful_gain, selector_marginals

from .config import ACTIVE_KEYS
from .distill import load_config, open_run
from .files import environment_info, load_torch, save_torch, write_json_atomic
from .methods import check_method, plan_student
from .parallel import main_only, process_group, share
from .run_folder import claim_run
from .seeds import (
    SYNTHETIC_TEACHER,
    accuracy,
    build_student,
    check_teacher_classes,
    prepare_seed,
    renormalise,
    save_student,
    seed_teacher,
)
from .training import predict_probs, train

__all__ = ["MISTAKE_ESTIMATES", "ActiveResult", "load_active_config", "run_active_distillation"]

#: The values of the config key ``mistakes``: how RAD's m is estimated each round (module docstring).
MISTAKE_ESTIMATES = ("pool", "upper", "candidates")
#: The confidence level of ``mistakes = "upper"`` (``estimate_mistakes(..., upper=UPPER_DELTA)``).
UPPER_DELTA = 0.05


def load_active_config(
    config: Mapping[str, Any] | str | os.PathLike[str],
    *,
    own_data: bool = False,
    own_teacher: bool = False,
    own_student: bool = False,
) -> dict[str, Any]:
    """The active-loop config, checked before any work (module docstring for the keys)."""
    cfg = load_config(config, own_data=own_data, own_teacher=own_teacher, own_student=own_student, active=True)
    del cfg["method"], cfg["method_options"]
    for key, default in ACTIVE_KEYS.items():
        cfg.setdefault(key, default)
    _choice(cfg, "selector", tuple(SELECTORS))
    _choice(cfg, "gain", tuple(GAINS))
    cfg["rounds"] = check_int(cfg["rounds"], "rounds", low=1)
    cfg["budget"] = check_int(cfg["budget"], "budget", low=1)
    if isinstance(cfg["unlabeled"], int) and cfg["rounds"] * cfg["budget"] > cfg["unlabeled"]:
        raise ValueError(
            f"rounds x budget = {cfg['rounds'] * cfg['budget']} exceeds the pool (unlabeled = {cfg['unlabeled']})"
        )
    _choice(cfg, "loss", tuple(METHODS))
    _, cfg["loss_options"] = check_method(cfg["loss"], cfg["loss_options"], keys=("loss", "loss_options"))
    if cfg["selector"] == "unixkd" and cfg["teacher"] is not None and cfg["teacher"]["name"] == SYNTHETIC_TEACHER:
        raise ValueError("selector 'unixkd' queries the teacher on mixed inputs; the synthetic teacher has no model")
    _choice(cfg, "retrain", ("scratch", "warm"))
    if not isinstance(cfg["pool_diagnostics"], bool):
        raise TypeError(f"pool_diagnostics must be true or false, got {cfg['pool_diagnostics']!r}")
    _choice(cfg, "mistakes", MISTAKE_ESTIMATES)
    return cfg


def _choice(cfg: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> None:
    """``cfg[key]`` must be one of the names ``choices`` (a ``ValueError`` naming ``key`` otherwise)."""
    if not isinstance(cfg[key], str) or cfg[key] not in choices:
        raise ValueError(f"{key} must be one of {', '.join(map(repr, choices))}, got {cfg[key]!r}")


@dataclasses.dataclass(frozen=True)
class ActiveResult(Result):
    """Accuracy against teacher labels: ``queries`` (R + 1,) cumulative labels bought on the pool after each round
    (0 first), ``accuracy`` (seeds, R + 1) student test accuracy, their mean and std over seeds, the teacher's
    accuracy per seed, ``teacher_queries`` per seed (every label used: ``|V| + R b``), ``evaluation_queries``
    per seed (evaluation-only answers), per-seed records (selected indices per round, diagnostics), the JSON
    path, and the trained students (``students``, one ``nn.Module`` per seed; not in :meth:`to_dict`)."""

    name: str
    selector: str
    loss: str
    config: dict[str, Any]
    seeds: tuple[int, ...]
    queries: tuple[int, ...]
    accuracy: tuple[tuple[float, ...], ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    teacher_accuracy: tuple[float | None, ...]
    teacher_queries: tuple[int, ...]
    evaluation_queries: tuple[int, ...]
    wall_time_s: float
    per_seed: tuple[dict[str, Any], ...]
    path: str | None = None
    students: tuple[nn.Module, ...] = dataclasses.field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the students (modules)."""
        return to_jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "students"})


def _active_seed(
    cfg: dict[str, Any],
    ds: Any,
    seed: int,
    device: Any,
    progress: bool | None,
    run_dir: Path,
    key: str,
    teacher: Any,
    student_factory: Callable[[int], nn.Module] | None,
) -> tuple[dict[str, Any], nn.Module]:
    started = time.perf_counter()
    data = prepare_seed(cfg, ds, seed, device, run_dir)
    splits = data.splits
    state_path = run_dir / f"seed_{seed}_state.pt"
    state = _load_state(state_path, key) if cfg["resume"] else None
    if state is None:
        state = {
            "config_key": key,
            "round": -1,
            "rng": np.random.default_rng([seed, 11]).bit_generator.state,
            "chosen": np.empty(0, dtype=np.int64),
            "queried_x": ds.X[:0],
            "answers": np.empty((0, ds.num_classes)),
            "clusters": None,
            "accuracy": [],
            "rounds": [],
            "per_round": [],
            "student": None,
        }
    resumed_from = state["round"]
    rounds_left = cfg["rounds"] - len(state["per_round"])
    st = seed_teacher(
        cfg, ds, data, teacher, budget=splits.validation.size + rounds_left * cfg["budget"], progress=progress
    )
    if cfg["selector"] == "unixkd" and st.teacher.kind == "array":
        raise ValueError("selector 'unixkd' queries the teacher on mixed inputs; a teacher array is queried by row")
    before = (st.teacher.queries, st.teacher.evaluation_queries)
    y_val = ds.y[splits.validation]
    t_val = renormalise(st.teacher.query(ds.X[splits.validation], index=splits.validation))
    check_teacher_classes(t_val, ds.num_classes)
    val_queries = st.teacher.queries - before[0]
    teacher_acc = (
        accuracy(st.teacher.evaluate(data.X_test, index=data.test_rows), data.y_test)
        if (cfg["evaluate_teacher"])
        else None
    )
    labeled_x, pool_x, pool_y = ds.X[splits.labeled], ds.X[splits.unlabeled], ds.y[splits.unlabeled]
    pool_wrong = None
    if cfg["pool_diagnostics"]:  # evaluation only: the teacher on the whole pool, never used for training
        pool_wrong = st.teacher.evaluate(pool_x, index=splits.unlabeled).argmax(axis=1) != pool_y
    labeled_inputs, pool_inputs, test_inputs = (data.inputs(x) for x in (labeled_x, pool_x, data.X_test))
    estimate = cfg["mistakes"] if cfg["selector"] == "rad" else "pool"  # only RAD uses m
    val_inputs = data.inputs(ds.X[splits.validation]) if estimate == "candidates" else None
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    student = None
    if state["student"] is not None:
        student = build_student(cfg, student_factory, data, ds.num_classes)
        student.load_state_dict(state["student"])
        student.to(device)
    for r in range(state["round"] + 1, cfg["rounds"] + 1):
        chosen, answers, queried_x = state["chosen"], state["answers"], state["queried_x"]
        if r > 0:  # select with the current student, then query the teacher
            remaining = np.setdiff1d(np.arange(splits.unlabeled.size), chosen)
            probs, feats = predict_probs(student, pool_inputs, features=True)
            # coreset's centers (only coreset uses them): the labeled points and the queried ones (in feats)
            center = (
                np.concatenate([predict_probs(student, labeled_inputs, features=True)[1], feats[chosen]])
                if (cfg["selector"] == "coreset")
                else None
            )
            if cfg["selector"] == "cluster_margin" and state["clusters"] is None:  # once per run
                state["clusters"] = cluster_assignments(feats, cfg["budget"], rng=rng)
                if world()[1] > 1:
                    state["clusters"], rng.bit_generator.state = share((state["clusters"], rng.bit_generator.state))
            clusters = state["clusters"]
            probs_r = probs[remaining].astype(np.float64)
            m = _estimate_round_mistakes(
                estimate,
                t_val,
                y_val,
                remaining.size,
                cfg["budget"],
                cfg["gain"],
                probs_r,
                None if val_inputs is None else predict_probs(student, val_inputs),
            )
            with warnings.catch_warnings():  # recorded in the round's record instead (near_uniform)
                warnings.simplefilter("ignore", NearUniformWarning)
                sel = SELECTORS[cfg["selector"]](
                    probs_r / probs_r.sum(axis=1, keepdims=True),
                    cfg["budget"],
                    rng=rng,
                    mistakes=m,
                    embeddings=feats[remaining],
                    center_embeddings=center,
                    kind=cfg["gain"],
                    clusters=None if clusters is None else clusters[remaining],
                )
            if world()[1] > 1:  # rank 0's decision on every rank (predictions may differ in the last bit)
                sel, m, rng.bit_generator.state = share((sel, m, rng.bit_generator.state))
            picked = remaining[sel.indices]
            x_new = mix_inputs(pool_x[remaining], sel)  # pool_x[picked], or UNIXKD's mixed inputs
            used = st.teacher.queries
            new_answers = (
                st.teacher.query(x_new)
                if sel.mix is not None
                else st.teacher.query(x_new, index=splits.unlabeled[picked])
            )
            if st.teacher.queries - used > cfg["budget"]:  # a user's Teacher with its own accounting
                raise RuntimeError(f"round {r} used {st.teacher.queries - used} labels, more than its budget")
            answers = np.concatenate([answers, new_answers])
            chosen, queried_x = np.concatenate([chosen, picked]), np.concatenate([queried_x, x_new])
            wrong = int((new_answers.argmax(axis=1) != pool_y[picked]).sum())
            record: dict[str, Any] = {
                "round": r,
                "mistakes": int(m),
                "mistakes_estimate": estimate,
                "selected": picked.tolist(),
                "mixed": sel.mix is not None,
                "labels": st.teacher.queries - used,
                "teacher_wrong": wrong,
            }
            if sel.probabilities is not None:  # support size and max p of the sampling law
                record.update(
                    pool=int(remaining.size),
                    support=int(np.count_nonzero(sel.probabilities)),
                    max_p=float(sel.probabilities.max()),
                )
            if sel.diagnostics is not None:  # RAD: its law against uniform sampling
                record["rad"] = dict(sel.diagnostics)
                record["near_uniform"] = bool(m > 0 and sel.diagnostics["uniform_ratio"] >= NEAR_UNIFORM_RATIO)
            if pool_wrong is not None:
                record["evaluation_only"] = _noise_diagnostics(
                    informativeness(probs_r, cfg["gain"]), pool_wrong[remaining], cfg["budget"], m
                )
            state["rounds"].append(record)
            state["per_round"].append(int(record["labels"]))
        if student is None or cfg["retrain"] == "scratch":
            student = build_student(cfg, student_factory, data, ds.num_classes)
        method, options = ("labeled_only", {}) if chosen.size == 0 else (cfg["loss"], cfg["loss_options"])
        plan = plan_student(
            method,
            options,
            labels_labeled=ds.y[splits.labeled],
            teacher_val=t_val,
            labels_val=y_val,
            teacher_pool=renormalise(answers) if chosen.size else None,
            num_classes=ds.num_classes,
        )
        inputs = data.inputs(np.concatenate([labeled_x, queried_x])[plan.rows])
        train(
            student,
            inputs,
            plan.arrays,
            plan.loss_fn,
            data.student_cfg,
            progress=progress,
            desc=f"{cfg['selector']} seed {seed} round {r}",
        )
        state["accuracy"].append(share(accuracy(predict_probs(student, test_inputs), data.y_test)))
        state.update(
            round=r,
            chosen=chosen,
            answers=answers,
            queried_x=queried_x,
            rng=rng.bit_generator.state,
            student=student.state_dict(),
        )
        if cfg["resume"]:
            main_only(lambda: _save_state(state_path, state))
    save_student(run_dir / f"seed_{seed}_student.pt", student)
    record = {
        "seed": seed,
        "accuracy": state["accuracy"],
        "queries": [0, *np.cumsum(state["per_round"]).tolist()],
        "labels_per_round": state["per_round"],
        "validation_queries": val_queries,
        "teacher_queries": val_queries + int(sum(state["per_round"])),
        "evaluation_queries": st.teacher.evaluation_queries - before[1],
        "teacher_accuracy": teacher_acc,
        "teacher": st.info,
        "rounds": state["rounds"],
        "splits": splits.to_dict(),
        "resumed_from_round": resumed_from,
        "seconds": time.perf_counter() - started,
    }
    return share(record), student


def _estimate_round_mistakes(
    estimate: str,
    t_val: np.ndarray,
    y_val: np.ndarray,
    pool_size: int,
    budget: int,
    gain: str,
    probs_pool: np.ndarray,
    probs_val: np.ndarray | None,
) -> int:
    """One round's m by the config's ``mistakes`` estimate (module docstring): ``probs_pool`` (|U|, K) and
    ``probs_val`` (|V|, K, only for ``"candidates"``) are the student's probabilities, the gains computed from
    them exactly as RAD computes them on the pool."""
    if estimate == "pool":
        return estimate_mistakes(t_val, y_val, pool_size)
    if estimate == "upper":
        return estimate_mistakes(t_val, y_val, pool_size, upper=UPPER_DELTA)
    assert probs_val is not None
    probs_val = probs_val.astype(np.float64)
    gains_pool = informativeness(probs_pool / probs_pool.sum(axis=1, keepdims=True), gain)
    gains_val = informativeness(probs_val / probs_val.sum(axis=1, keepdims=True), gain)
    correct = np.argmax(t_val, axis=1) == y_val  # ties to the lowest index, as estimate_mistakes
    return estimate_candidate_mistakes(gains_val, correct, gains_pool, budget)


def _noise_diagnostics(gains: np.ndarray, wrong: np.ndarray, budget: int, mistakes: int) -> dict[str, Any]:
    r"""Evaluation-only diagnostics of one round, from the teacher's answers on the whole pool and the true
    labels: how the teacher's mistakes (``wrong`` (n,) bool) follow the student's gains (n,), and what each
    selection rule would gain on it.

    - ``error_by_gain``: the pool in 10 equal-count bins by gain, per bin [mean gain, teacher error rate];
    - ``error_top_b`` / ``error_pool``: the error rate among the ``budget`` highest gains and in the pool;
    - ``useful_gain``: the exact expected gain of the correctly labeled queried points per query,
      :math:`\sum_i p_i g_i (1 - w_i) / b` (:func:`~robustdistill.theory.selection_value.expected_useful_gain`),
      for RAD's p* (with the round's estimated ``mistakes``), greedy top-b and uniform b/n."""
    parts = np.array_split(np.argsort(gains, kind="stable"), min(10, gains.size))
    w = wrong.astype(np.float64)
    marginals = selector_marginals(gains, budget, mistakes)
    return {
        "error_by_gain": [[float(gains[p].mean()), float(w[p].mean())] for p in parts if p.size],
        "error_top_b": float(w[top_b(gains, budget, rng=0)].mean()),
        "error_pool": float(w.mean()),
        "useful_gain": {k: expected_useful_gain(p, gains, w) / budget for k, p in marginals.items()},
    }


_ARRAYS = ("chosen", "answers", "queried_x", "clusters")


def _save_state(path: Path, state: dict[str, Any]) -> None:
    """One round's state (selections, teacher answers, queried inputs, RNG, accuracies, student weights),
    written atomically with a digest of its contents; numpy arrays travel as tensors so the file loads with
    ``weights_only=True``."""
    data = {k: (torch.from_numpy(np.array(v)) if k in _ARRAYS and v is not None else v) for k, v in state.items()}
    save_torch(path, data)


def _load_state(path: Path, key: str) -> dict[str, Any] | None:
    """The saved state of the same config, or None (absent, another config's, or damaged: unreadable or
    failing its digest, with a ``DamagedFileWarning``)."""
    data = load_torch(path)
    if data is None or data.get("config_key") != key:
        return None
    return {k: (v.numpy() if k in _ARRAYS and v is not None else v) for k, v in data.items()}


def run_active_distillation(
    config: Mapping[str, Any] | str | os.PathLike[str],
    data: Any = None,
    *,
    teacher: Any = None,
    student: Callable[[int], nn.Module] | None = None,
    progress: bool | None = None,
) -> ActiveResult:
    """Run the active loop of ``config`` (module docstring) for every seed and write ``OUT/NAME.json``.

    ``data``, ``teacher`` and ``student`` as in
    :func:`~robustdistill.experiments.pipeline.distill.run_distillation`; the teacher is asked only about the
    validation set and the selected points."""
    started = time.perf_counter()
    cfg = load_active_config(
        config, own_data=data is not None, own_teacher=teacher is not None, own_student=student is not None
    )
    with process_group(cfg["device"]):
        ds, device, run_dir, key = open_run(cfg, data, teacher, student)
        with claim_run(cfg, key, "active"):
            pairs = [
                _active_seed(cfg, ds, seed, device, progress, run_dir, key, teacher, student) for seed in cfg["seeds"]
            ]
            result, path = _summary(cfg, pairs, started, device)
    return dataclasses.replace(result, path=str(path))


def _summary(
    cfg: dict[str, Any], pairs: list[tuple[dict[str, Any], nn.Module]], started: float, device: Any
) -> tuple[ActiveResult, Path]:
    """The run's result from its seeds, written to ``OUT/NAME.json`` (with a content digest)."""
    records = [r for r, _ in pairs]
    acc = np.array([r["accuracy"] for r in records])
    result = ActiveResult(
        name=cfg["name"],
        selector=cfg["selector"],
        loss=cfg["loss"],
        config=cfg,
        seeds=tuple(cfg["seeds"]),
        queries=tuple(records[0]["queries"]),
        accuracy=tuple(map(tuple, acc.tolist())),
        mean=tuple(acc.mean(axis=0).tolist()),
        std=tuple((acc.std(axis=0, ddof=1) if acc.shape[0] > 1 else np.zeros(acc.shape[1])).tolist()),
        teacher_accuracy=tuple(r["teacher_accuracy"] for r in records),
        teacher_queries=tuple(r["teacher_queries"] for r in records),
        evaluation_queries=tuple(r["evaluation_queries"] for r in records),
        wall_time_s=share(time.perf_counter() - started),
        per_seed=tuple(records),
        students=tuple(s for _, s in pairs),
    )
    path = Path(cfg["out"]) / f"{cfg['name']}.json"
    main_only(
        lambda: write_json_atomic(
            path, {**result.to_dict(), "device": str(device), "environment": environment_info()}, digest=True
        )
    )
    return result, path
