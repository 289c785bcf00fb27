r"""``run_active_distillation(config)``: the active distillation loop of ``spec/rad.md`` §7 (our formulation of
the paper's Algorithm 1), on the experiments layer.

Per seed (splits, teacher and its cached outputs exactly as in :mod:`~robustdistill.experiments.distill`):

.. code-block:: text

    D <- {};  student <- TRAIN(A, D)
    for round r = 1..R:
        P, h <- student probabilities and penultimate features on the remaining pool U
        m    <- estimate_mistakes(teacher on V, y_V, |U|)
        sel  <- SELECTORS[selector](P, b, rng, mistakes=m, embeddings=h, center_embeddings=h(A and D),
                                    clusters=ids)   # cluster_margin's HAC ids, computed in round 1 only
        D    <- D + oracle.query(sel.indices);  U <- U minus sel.indices      # exactly b teacher queries
        student <- TRAIN(A, D)        # from scratch (the seed's initial weights) or warm start
        log test accuracy and the queries used

The teacher is a budgeted oracle (:class:`TeacherOracle`): it answers only for the selected pool points,
counts every query, and raises when a round asks for more than its budget or for a point already queried.
The student's loss on D is ``loss = "vanilla" | "weighted" | "slam"`` (the distillation methods of
:mod:`~robustdistill.experiments.methods`, on A plus the queried points). Config keys: those of
``run_distillation`` without ``method`` / ``method_options``, plus ``selector`` (a name of
:data:`~robustdistill.algorithms.selection.SELECTORS`), ``gain`` (RAD's gain kind, default ``"margin"``),
``rounds``, ``budget`` (per round), ``loss`` (default ``"vanilla"``), ``loss_options`` and ``retrain``
(``"scratch"``, the default, or ``"warm"``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from robustdistill.algorithms.results import Result
from robustdistill.algorithms.selection import GAINS, SELECTORS, cluster_assignments
from robustdistill.algorithms.teacher_quality import estimate_mistakes
from robustdistill.algorithms.validation import check_int

from . import distill as D
from .methods import check_method, plan_student
from .reporting import environment_info, write_json_atomic
from .training import predict_probs, resolve_device, train

__all__ = ["ACTIVE_KEYS", "ActiveResult", "TeacherOracle", "load_active_config", "run_active_distillation"]

#: The keys the active loop adds to (and removes from) ``run_distillation``'s config, with defaults.
ACTIVE_KEYS: dict[str, Any] = {
    "selector": None, "gain": "margin", "rounds": None, "budget": None, "loss": "vanilla", "loss_options": {},
    "retrain": "scratch",
}  # fmt: skip
_LOSSES = ("vanilla", "weighted", "slam")


class TeacherOracle:
    """The teacher as a budgeted oracle over the pool: :meth:`query` returns the teacher's probabilities for
    the asked pool indices and counts them. Asking for more than ``round_budget`` points in one round, for a
    point already queried, or past ``total_budget`` raises ``RuntimeError`` (nothing is returned or
    counted)."""

    def __init__(self, pool_probs: np.ndarray, *, round_budget: int, total_budget: int) -> None:
        self._probs = np.asarray(pool_probs)
        self.round_budget, self.total_budget = int(round_budget), int(total_budget)
        self.queried = np.zeros(self._probs.shape[0], dtype=bool)
        self.per_round: list[int] = []

    @property
    def queries(self) -> int:
        """Teacher queries so far."""
        return int(self.queried.sum())

    def query(self, indices: np.ndarray) -> np.ndarray:
        """The teacher's (b, K) probabilities at the pool indices (one round)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size > self.round_budget or self.queries + idx.size > self.total_budget:
            raise RuntimeError(
                f"teacher query over budget: {idx.size} points asked, round budget {self.round_budget}, "
                f"{self.queries} of {self.total_budget} already used"
            )
        if np.unique(idx).size != idx.size or self.queried[idx].any():
            raise RuntimeError("teacher query repeats a point: every pool point may be queried once")
        self.queried[idx] = True
        self.per_round.append(int(idx.size))
        return self._probs[idx]


def load_active_config(config: Mapping[str, Any] | str | os.PathLike[str], *, own_data: bool = False) -> dict[str, Any]:
    """The active-loop config, checked before any work (module docstring for the keys)."""
    raw = D._read_config(config)
    extra = {k: raw.pop(k) for k in list(raw) if k in ACTIVE_KEYS}
    if "method" in raw or "method_options" in raw:
        raise ValueError("the active loop takes loss / loss_options, not method / method_options")
    cfg = D.load_config({**raw, "method": "vanilla"}, own_data=own_data)
    del cfg["method"], cfg["method_options"]
    cfg.update({**ACTIVE_KEYS, **extra})
    if cfg["selector"] not in SELECTORS:
        raise ValueError(f"unknown selector {cfg['selector']!r}; choose one of {', '.join(SELECTORS)}")
    if cfg["gain"] not in GAINS:
        raise ValueError(f"gain must be one of {', '.join(GAINS)}, got {cfg['gain']!r}")
    cfg["rounds"] = check_int(cfg["rounds"], "rounds", low=1)
    cfg["budget"] = check_int(cfg["budget"], "budget", low=1)
    if isinstance(cfg["unlabeled"], int) and cfg["rounds"] * cfg["budget"] > cfg["unlabeled"]:
        raise ValueError(f"rounds x budget = {cfg['rounds'] * cfg['budget']} exceeds the pool ({cfg['unlabeled']})")
    if cfg["loss"] not in _LOSSES:
        raise ValueError(f"loss must be one of {', '.join(_LOSSES)}, got {cfg['loss']!r}")
    _, cfg["loss_options"] = check_method(cfg["loss"], cfg["loss_options"])
    if cfg["retrain"] not in ("scratch", "warm"):
        raise ValueError(f"retrain must be 'scratch' or 'warm', got {cfg['retrain']!r}")
    return cfg


@dataclasses.dataclass(frozen=True)
class ActiveResult(Result):
    """Accuracy against teacher queries: ``queries`` (R + 1,) cumulative teacher queries after each round
    (0 first), ``accuracy`` (seeds, R + 1) student test accuracy, their mean and std over seeds, the
    teacher's accuracy per seed, per-seed records (selected indices per round, oracle counts) and the JSON
    path."""

    name: str
    selector: str
    loss: str
    config: dict[str, Any]
    seeds: tuple[int, ...]
    queries: tuple[int, ...]
    accuracy: tuple[tuple[float, ...], ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    teacher_accuracy: tuple[float, ...]
    wall_time_s: float
    per_seed: tuple[dict[str, Any], ...]
    path: str | None = None


def _active_seed(
    cfg: dict[str, Any], ds: Any, seed: int, device: Any, progress: bool | None, run_dir: Path
) -> dict[str, Any]:
    started = time.perf_counter()
    ctx = D._prepare_seed(cfg, ds, seed, device, progress, run_dir)
    splits, outputs = ctx.splits, ctx.outputs
    t_val, y_val = D._renormalise(outputs["val"]), ds.y[splits.validation]
    oracle = TeacherOracle(outputs["pool"], round_budget=cfg["budget"], total_budget=cfg["rounds"] * cfg["budget"])
    labeled_x = ds.X[splits.labeled]
    pool_x = ds.X[splits.unlabeled]
    labeled_inputs = ctx.base.like(labeled_x)
    pool_inputs = ctx.base.like(pool_x)
    test_inputs = ctx.base.like(ctx.X_test)
    rng = np.random.default_rng([seed, 11])
    chosen = np.empty(0, dtype=np.int64)  # queried pool indices, in query order
    answers = np.empty((0, ds.num_classes))
    accuracy, rounds = [], []
    student, clusters = None, None
    for r in range(cfg["rounds"] + 1):
        if r > 0:  # select with the current student, then query the teacher
            remaining = np.setdiff1d(np.arange(splits.unlabeled.size), chosen)
            probs, feats = predict_probs(student, pool_inputs, features=True)
            # coreset's centers: the labeled points and the queried ones (whose features are in feats)
            center = np.concatenate([predict_probs(student, labeled_inputs, features=True)[1], feats[chosen]])
            if cfg["selector"] == "cluster_margin" and clusters is None:  # once per run (spec rad.md §8)
                clusters = cluster_assignments(feats, cfg["budget"], rng=rng)
            m = estimate_mistakes(t_val, y_val, remaining.size)
            probs_r = probs[remaining].astype(np.float64)
            sel = SELECTORS[cfg["selector"]](
                probs_r / probs_r.sum(axis=1, keepdims=True), cfg["budget"], rng=rng, mistakes=m,
                embeddings=feats[remaining], center_embeddings=center, kind=cfg["gain"],
                clusters=None if clusters is None else clusters[remaining],
            )  # fmt: skip
            picked = remaining[sel.indices]
            answers = np.concatenate([answers, oracle.query(picked)])
            chosen = np.concatenate([chosen, picked])
            rounds.append({"round": r, "mistakes": int(m), "selected": picked.tolist()})
        if student is None or cfg["retrain"] == "scratch":
            student = D._model(cfg["student"], ctx.base.input_shape, ds.num_classes, seed)
        method, options = ("labeled_only", {}) if chosen.size == 0 else (cfg["loss"], cfg["loss_options"])
        plan = plan_student(
            method, options, labels_labeled=ds.y[splits.labeled], teacher_val=t_val, labels_val=y_val,
            teacher_pool=D._renormalise(answers) if chosen.size else None,
        )  # fmt: skip
        inputs = ctx.base.like(np.concatenate([labeled_x, pool_x[chosen]])[plan.rows])
        train(student, inputs, plan.arrays, plan.loss_fn, ctx.student_cfg, progress=progress,
              desc=f"{cfg['selector']} seed {seed} round {r}")  # fmt: skip
        accuracy.append(D._accuracy(predict_probs(student, test_inputs), ctx.y_test))
    return {
        "seed": seed, "accuracy": accuracy, "queries": [0, *np.cumsum(oracle.per_round).tolist()],
        "oracle_per_round": oracle.per_round, "teacher_accuracy": ctx.teacher_info["accuracy"],
        "teacher": ctx.teacher_info, "rounds": rounds, "splits": splits.to_dict(),
        "seconds": time.perf_counter() - started,
    }  # fmt: skip


def run_active_distillation(
    config: Mapping[str, Any] | str | os.PathLike[str],
    data: Any = None,
    *,
    progress: bool | None = None,
) -> ActiveResult:
    """Run the active loop of ``config`` (module docstring) for every seed and write ``OUT/NAME.json``."""
    started = time.perf_counter()
    cfg = load_active_config(config, own_data=data is not None)
    ds = D._dataset(cfg, data)
    device = resolve_device(None if cfg["device"] == "auto" else cfg["device"])
    D.make_splits(ds, labeled=cfg["labeled"], validation=cfg["validation"], unlabeled=cfg["unlabeled"],
                  test=cfg["test"], rng=cfg["seeds"][0], stratify=cfg["stratify"])  # fmt: skip
    run_dir = Path(cfg["out"]) / cfg["name"]
    records = [_active_seed(cfg, ds, seed, device, progress, run_dir) for seed in cfg["seeds"]]
    acc = np.array([r["accuracy"] for r in records])
    result = ActiveResult(
        name=cfg["name"], selector=cfg["selector"], loss=cfg["loss"], config=cfg, seeds=tuple(cfg["seeds"]),
        queries=tuple(records[0]["queries"]), accuracy=tuple(map(tuple, acc.tolist())),
        mean=tuple(acc.mean(axis=0).tolist()),
        std=tuple((acc.std(axis=0, ddof=1) if acc.shape[0] > 1 else np.zeros(acc.shape[1])).tolist()),
        teacher_accuracy=tuple(r["teacher_accuracy"] for r in records), wall_time_s=time.perf_counter() - started,
        per_seed=tuple(records),
    )  # fmt: skip
    path = Path(cfg["out"]) / f"{cfg['name']}.json"
    write_json_atomic(path, {**result.to_dict(), "device": str(device), "environment": environment_info()})
    return dataclasses.replace(result, path=str(path))
