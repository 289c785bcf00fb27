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
        log test accuracy, the queries used, the support size and max p of sel.probabilities (when the
        selector samples), how many queried labels were wrong, and how the teacher's mistakes follow the gain
        with what RAD, greedy top-b and uniform would gain on them (evaluation-only diagnostics against the
        true pool labels; for UNIXKD, wrong is judged against the source point's label)
        save the round's state (resume)

UNIXKD (``selector = "unixkd"``) queries the teacher on mixed inputs
(:func:`~robustdistill.algorithms.selection.mix_inputs`), so its runs keep the trained teacher model (trained
again when only its outputs are cached) and D holds the mixed inputs with the teacher's answers on them.

Resume: after every round the seed's state (selections, teacher answers, queried inputs, the RNG state,
accuracies and the student's weights) is written atomically to ``OUT/NAME/seed_S_state.pt``; a run of the
same config (``resume = true``, the default) continues after the last finished round, and the result is the
same as an uninterrupted run's (bit for bit on the CPU: every step is seeded).

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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustdistill.algorithms.results import Result
from robustdistill.algorithms.selection import GAINS, SELECTORS, cluster_assignments, informativeness, mix_inputs, top_b
from robustdistill.algorithms.teacher_quality import estimate_mistakes
from robustdistill.algorithms.validation import check_int
from robustdistill.theory.rad_selection_checks import expected_useful_gain, selector_marginals

from . import distill as D
from . import teacher_cache
from .methods import check_method, plan_student
from .reporting import environment_info, write_atomic, write_json_atomic
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
    counted). ``teacher``: optional ``inputs -> (b, K) probabilities``, the live teacher, for queries on
    inputs built from the asked points (UNIXKD's mixed inputs)."""

    def __init__(
        self, pool_probs: np.ndarray, *, round_budget: int, total_budget: int,
        teacher: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:  # fmt: skip
        self._probs = np.asarray(pool_probs)
        self._teacher = teacher
        self.round_budget, self.total_budget = int(round_budget), int(total_budget)
        self.queried = np.zeros(self._probs.shape[0], dtype=bool)
        self.per_round: list[int] = []

    @property
    def queries(self) -> int:
        """Teacher queries so far."""
        return int(self.queried.sum())

    def query(self, indices: np.ndarray, inputs: np.ndarray | None = None) -> np.ndarray:
        """The teacher's (b, K) probabilities at the pool indices (one round); with ``inputs`` (b, ...), its
        probabilities on those inputs, which stand for the asked points (each counts as one query)."""
        idx = np.asarray(indices, dtype=np.int64)
        if inputs is not None and (self._teacher is None or len(inputs) != idx.size):
            raise ValueError("queries on new inputs need the live teacher and one input per asked point")
        if idx.size > self.round_budget or self.queries + idx.size > self.total_budget:
            raise RuntimeError(
                f"teacher query over budget: {idx.size} points asked, round budget {self.round_budget}, "
                f"{self.queries} of {self.total_budget} already used"
            )
        if np.unique(idx).size != idx.size or self.queried[idx].any():
            raise RuntimeError("teacher query repeats a point: every pool point may be queried once")
        answer = self._probs[idx] if inputs is None else np.asarray(self._teacher(inputs))
        self.queried[idx] = True
        self.per_round.append(int(idx.size))
        return answer


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
    if cfg["selector"] == "unixkd" and cfg["teacher"]["name"] == D.SYNTHETIC_TEACHER:
        raise ValueError("selector 'unixkd' queries the teacher on mixed inputs; the synthetic teacher has no model")
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
    cfg: dict[str, Any], ds: Any, seed: int, device: Any, progress: bool | None, run_dir: Path, config_key: str
) -> dict[str, Any]:
    started = time.perf_counter()
    live = cfg["selector"] == "unixkd"  # queries on mixed inputs: the teacher model itself is needed
    ctx = D._prepare_seed(cfg, ds, seed, device, progress, run_dir, need_teacher=live)
    splits, outputs = ctx.splits, ctx.outputs
    t_val, y_val = D._renormalise(outputs["val"]), ds.y[splits.validation]
    labeled_x, pool_x = ds.X[splits.labeled], ds.X[splits.unlabeled]
    pool_wrong = outputs["pool"].argmax(axis=1) != ds.y[splits.unlabeled]  # evaluation-only diagnostics
    labeled_inputs, pool_inputs, test_inputs = (ctx.base.like(x) for x in (labeled_x, pool_x, ctx.X_test))
    oracle = TeacherOracle(
        outputs["pool"], round_budget=cfg["budget"], total_budget=cfg["rounds"] * cfg["budget"],
        teacher=(lambda x: predict_probs(ctx.teacher, ctx.base.like(x))) if live else None,
    )  # fmt: skip
    state_path = run_dir / f"seed_{seed}_state.pt"
    state = _load_state(state_path, config_key) if cfg["resume"] else None
    if state is None:
        state = {
            "config_key": config_key, "round": -1, "rng": np.random.default_rng([seed, 11]).bit_generator.state,
            "chosen": np.empty(0, dtype=np.int64), "queried_x": pool_x[:0], "answers": np.empty((0, ds.num_classes)),
            "clusters": None, "accuracy": [], "rounds": [], "per_round": [], "student": None,
        }  # fmt: skip
    resumed_from = state["round"]
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    oracle.queried[state["chosen"]] = True
    oracle.per_round = list(state["per_round"])
    student = None
    if state["student"] is not None:
        student = D._model(cfg["student"], ctx.base.input_shape, ds.num_classes, seed)
        student.load_state_dict(state["student"])
        student.to(device)
    for r in range(state["round"] + 1, cfg["rounds"] + 1):
        chosen, answers, queried_x = state["chosen"], state["answers"], state["queried_x"]
        if r > 0:  # select with the current student, then query the teacher
            remaining = np.setdiff1d(np.arange(splits.unlabeled.size), chosen)
            probs, feats = predict_probs(student, pool_inputs, features=True)
            # coreset's centers (only coreset uses them): the labeled points and the queried ones (in feats)
            center = np.concatenate([predict_probs(student, labeled_inputs, features=True)[1], feats[chosen]]) if (
                cfg["selector"] == "coreset") else None  # fmt: skip
            if cfg["selector"] == "cluster_margin" and state["clusters"] is None:  # once per run (spec rad.md §8)
                state["clusters"] = cluster_assignments(feats, cfg["budget"], rng=rng)
            clusters = state["clusters"]
            m = estimate_mistakes(t_val, y_val, remaining.size)
            probs_r = probs[remaining].astype(np.float64)
            sel = SELECTORS[cfg["selector"]](
                probs_r / probs_r.sum(axis=1, keepdims=True), cfg["budget"], rng=rng, mistakes=m,
                embeddings=feats[remaining], center_embeddings=center, kind=cfg["gain"],
                clusters=None if clusters is None else clusters[remaining],
            )  # fmt: skip
            picked = remaining[sel.indices]
            x_new = mix_inputs(pool_x[remaining], sel)  # pool_x[picked], or UNIXKD's mixed inputs
            answers = np.concatenate([answers, oracle.query(picked, x_new if sel.mix is not None else None)])
            chosen, queried_x = np.concatenate([chosen, picked]), np.concatenate([queried_x, x_new])
            wrong = int((answers[-picked.size :].argmax(axis=1) != ds.y[splits.unlabeled][picked]).sum())
            record = {"round": r, "mistakes": int(m), "selected": picked.tolist(), "mixed": sel.mix is not None,
                      "teacher_wrong": wrong, **_noise_diagnostics(informativeness(probs_r, cfg["gain"]),
                                                                   pool_wrong[remaining], cfg["budget"], m)}  # fmt: skip
            if sel.probabilities is not None:  # spec rad.md §7: support size and max p of the sampling law
                record.update(pool=int(remaining.size), support=int(np.count_nonzero(sel.probabilities)),
                              max_p=float(sel.probabilities.max()))  # fmt: skip
            state["rounds"].append(record)
        if student is None or cfg["retrain"] == "scratch":
            student = D._model(cfg["student"], ctx.base.input_shape, ds.num_classes, seed)
        method, options = ("labeled_only", {}) if chosen.size == 0 else (cfg["loss"], cfg["loss_options"])
        plan = plan_student(
            method, options, labels_labeled=ds.y[splits.labeled], teacher_val=t_val, labels_val=y_val,
            teacher_pool=D._renormalise(answers) if chosen.size else None,
        )  # fmt: skip
        inputs = ctx.base.like(np.concatenate([labeled_x, queried_x])[plan.rows])
        train(student, inputs, plan.arrays, plan.loss_fn, ctx.student_cfg, progress=progress,
              desc=f"{cfg['selector']} seed {seed} round {r}")  # fmt: skip
        state["accuracy"].append(D._accuracy(predict_probs(student, test_inputs), ctx.y_test))
        state.update(round=r, chosen=chosen, answers=answers, queried_x=queried_x, rng=rng.bit_generator.state,
                     per_round=list(oracle.per_round), student=student.state_dict())  # fmt: skip
        if cfg["resume"]:
            _save_state(state_path, state)
    return {
        "seed": seed, "accuracy": state["accuracy"], "queries": [0, *np.cumsum(oracle.per_round).tolist()],
        "oracle_per_round": oracle.per_round, "teacher_accuracy": ctx.teacher_info["accuracy"],
        "teacher": ctx.teacher_info, "rounds": state["rounds"], "splits": splits.to_dict(),
        "resumed_from_round": resumed_from, "seconds": time.perf_counter() - started,
    }  # fmt: skip


def _noise_diagnostics(gains: np.ndarray, wrong: np.ndarray, budget: int, mistakes: int) -> dict[str, Any]:
    r"""Evaluation-only diagnostics of one round, from the true pool labels: how the teacher's mistakes
    (``wrong`` (n,) bool) follow the student's gains (n,), and what each selection rule would gain on it.

    - ``error_by_gain``: the pool in 10 equal-count bins by gain, per bin [mean gain, teacher error rate];
    - ``error_top_b`` / ``error_pool``: the error rate among the ``budget`` highest gains and in the pool;
    - ``useful_gain``: the exact expected gain of the correctly labeled queried points per query,
      :math:`\sum_i p_i g_i (1 - w_i) / b` (``theory.rad_selection_checks.expected_useful_gain``), for RAD's
      p* (with the round's estimated ``mistakes``), greedy top-b and uniform b/n, on this pool and these
      mistakes."""
    parts = np.array_split(np.argsort(gains, kind="stable"), min(10, gains.size))
    w = wrong.astype(np.float64)
    marginals = selector_marginals(gains, budget, mistakes)
    return {
        "error_by_gain": [[float(gains[p].mean()), float(w[p].mean())] for p in parts if p.size],
        "error_top_b": float(w[top_b(gains, budget, rng=0)].mean()), "error_pool": float(w.mean()),
        "useful_gain": {k: expected_useful_gain(p, gains, w) / budget for k, p in marginals.items()},
    }  # fmt: skip


_ARRAYS = ("chosen", "answers", "queried_x", "clusters")


def _save_state(path: Path, state: dict[str, Any]) -> None:
    """One round's state (selections, teacher answers, queried inputs, RNG, accuracies, student weights),
    written atomically; numpy arrays travel as tensors so the file loads with ``weights_only=True``."""
    data = {k: (torch.from_numpy(np.ascontiguousarray(v)) if k in _ARRAYS and v is not None else v)
            for k, v in state.items()}  # fmt: skip
    data["student"] = {k: v.detach().cpu() for k, v in state["student"].items()}
    write_atomic(path, lambda fh: torch.save(data, fh))


def _load_state(path: Path, config_key: str) -> dict[str, Any] | None:
    """The saved state of the same config, or None (absent, unreadable or another config's)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError):
        return None
    if not isinstance(data, dict) or data.get("config_key") != config_key:
        return None
    return {k: (v.numpy() if k in _ARRAYS and v is not None else v) for k, v in data.items()}


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
    config_key = teacher_cache.cache_key({k: v for k, v in cfg.items() if k not in ("seeds", "resume", "out")})
    records = [_active_seed(cfg, ds, seed, device, progress, run_dir, config_key) for seed in cfg["seeds"]]
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
