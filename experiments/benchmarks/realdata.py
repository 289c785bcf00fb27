r"""Fashion-MNIST under the papers' protocol: every method against vanilla distillation, paired by seed.

Protocol, per seed ``s`` (:func:`~robustdistill.experiments.pipeline.distill.run_distillation` with the
grid's seeds; the split, the teacher, the student's initial weights and its batch order all follow ``s``,
so every method of a seed distills the same teacher from the same start):

- data: Fashion-MNIST (:func:`~robustdistill.experiments.pipeline.data.load_dataset`, 28 x 28 grey images,
  10 classes; the official test set of 10,000 images); labeled set A of each size of the grid, validation
  set V of :data:`VALIDATION` images, unlabeled pool U (:data:`POOL` images, the rest of the 60,000 with
  ``full``);
- teacher: :data:`TEACHER` (a CNN) trained on A with cross-entropy for :func:`teacher_epochs` epochs (about
  the same number of steps at every size), queried on V and U;
- students: :data:`STUDENTS`, an MLP and a CNN able to fit the teacher's mistakes, trained on A (true labels)
  and U (the teacher's labels) by each method of :data:`ROWS` (the CNN on :data:`CNN_ROWS` at
  :data:`CNN_SIZES` unless ``full``);
- reported per cell (student, labeled-set size) and row: test accuracy mean +- std over seeds; the paired
  difference to ``vanilla (soft)`` per seed, its mean, a 95% Student-t interval and the seeds won; how the
  student fits the teacher's mistakes on the pool (:func:`~robustdistill.experiments.pipeline.distill.pool_fit`:
  the fraction of the teacher's wrong pool labels the student reproduces); each method's median student
  epoch time over vanilla's, same cell and seed (the overhead ratio);
- active distillation (``active=True``): accuracy against teacher queries for :data:`ACTIVE_SELECTORS` with
  the vanilla and SLaM losses, the teacher queried on demand (exactly |V| + R b labels), and RAD with each
  estimate of its mistakes count (:data:`ACTIVE_MISTAKES`).

``quick=True`` is a seconds-long smoke run (tiny sizes, one epoch). Without the dataset's files the run
raises :class:`~robustdistill.experiments.benchmarks.BenchmarkSkipped` with how to get them.
Run it as ``python -m robustdistill.experiments.benchmarks.realdata [--quick] [--full]``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from robustdistill.algorithms.slam import DEFAULT_TARGETS
from robustdistill.algorithms.validation import check_int
from robustdistill.algorithms.weighting import DEFAULT_SCHEME, WEIGHTED_SCHEMES

from ..pipeline.active import run_active_distillation
from ..pipeline.data import load_dataset
from ..pipeline.distill import run_distillation
from ..pipeline.files import environment_info
from . import BenchmarkSkipped
from .distill import rank_rows
from .reporting import bench_parser, finish_bench, format_markdown_table, format_table

__all__ = [
    "ACTIVE_MISTAKES",
    "ACTIVE_SELECTORS",
    "BASELINE",
    "CNN_ROWS",
    "RANKED_GROUPS",
    "ROWS",
    "STUDENTS",
    "TEACHER",
    "page",
    "paired",
    "ranks",
    "run",
    "table",
    "teacher_epochs",
    "winners",
]

DATASET = "fashion_mnist"
SIZES = (100, 300, 1000)
FULL_SIZES = (100, 300, 1000, 3000)
VALIDATION = 500
#: Pool size of the default grid (None with ``full``: every training image outside A and V).
POOL = 10_000
SEEDS = 3
FULL_SEEDS = 5
TEACHER: dict[str, Any] = {"name": "small_cnn", "channels": 16}
#: name -> (model config, epochs).
STUDENTS: dict[str, tuple[dict[str, Any], int]] = {
    "mlp": ({"name": "mlp", "hidden": [128]}, 10),
    "cnn": ({"name": "small_cnn", "channels": 8}, 10),
}
TRAIN: dict[str, Any] = {"optimizer": "adamw", "lr": 0.002, "weight_decay": 1e-4, "batch_size": 128}
BASELINE = "vanilla (soft)"

#: (row label, method, options). ``slam (2') soft, floor 0.6`` is SLaM's former default.
ROWS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("labeled only", "labeled_only", {}),
    ("teacher", "teacher", {}),
    ("vanilla (soft)", "vanilla", {"targets": "soft"}),
    ("vanilla (hard)", "vanilla", {"targets": "hard"}),
    *[
        (f"weighted {scheme} ({targets})", "weighted", {"scheme": scheme, "targets": targets})
        for scheme in WEIGHTED_SCHEMES
        for targets in ("soft", "hard")
    ],
    ("weighted debiased (soft)", "weighted", {"targets": "debiased"}),
    ("slam (2') soft, floor 0.6", "slam", {"normalize": False, "targets": "soft", "alpha_floor": 0.6}),
    ("slam (2') top-k", "slam", {"normalize": False, "targets": "topk"}),
    ("slam (2') hard", "slam", {"normalize": False, "targets": "hard"}),
    ("slam (2) soft, floor 0.55", "slam", {"normalize": True, "targets": "soft", "alpha_floor": 0.55}),
    ("slam (2) top-k, floor 0.55", "slam", {"normalize": True, "targets": "topk", "alpha_floor": 0.55}),
    ("forward", "forward", {}),
    ("taylor", "taylor", {}),
    ("confidence threshold", "confidence_threshold", {}),
    ("ups", "ups", {}),
    ("vid", "vid", {}),
)
#: The rows of the CNN student in the default grid (every row with ``full``).
CNN_ROWS = (
    "teacher",
    "vanilla (soft)",
    "vanilla (hard)",
    "weighted accuracy (soft)",
    "weighted signal (soft)",
    "slam (2') soft, floor 0.6",
    "slam (2') top-k",
    "forward",
    "confidence threshold",
)
#: Labeled-set sizes of the CNN student in the default grid (the weakest teacher).
CNN_SIZES = (100,)
#: The rows of ``quick`` (MLP student only).
QUICK_ROWS = (
    "teacher",
    "vanilla (soft)",
    f"weighted {DEFAULT_SCHEME} (soft)",
    "slam (2') top-k",
    "slam (2') soft, floor 0.6",
)

ACTIVE_SELECTORS = ("rad", "margin", "entropy", "random")
#: RAD's estimate of the teacher's mistakes (the active loop's ``mistakes`` key).
ACTIVE_MISTAKES = ("pool", "candidates", "upper")
ACTIVE: dict[str, Any] = {"labeled": 300, "rounds": 4, "budget": 250, "pool": 5000, "epochs": 20}


def teacher_epochs(labeled: int) -> int:
    """Teacher epochs for a labeled set of ``labeled`` images: enough for about 800 optimiser steps, within
    [30, 150] (more epochs stopped helping at 100 labels)."""
    steps_per_epoch = math.ceil(labeled / TRAIN["batch_size"])
    return int(min(150, max(30, math.ceil(800 / steps_per_epoch))))


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_")


def paired(values: dict[str, Sequence[float]], baseline: str = BASELINE) -> dict[str, dict[str, Any]]:
    r"""Paired differences to ``baseline`` per row: ``values`` maps row -> accuracy per seed (same seeds, same
    order). For each row with :math:`n \ge 2` seeds: :math:`d_s = a_s - b_s`, the mean :math:`\bar d`, its
    95% Student-t interval :math:`\bar d \pm t_{0.975, n-1}\, s_d/\sqrt n`, and the seeds won
    (:math:`d_s > 0`)."""
    from scipy import stats

    if baseline not in values:
        raise ValueError(f"baseline {baseline!r} is not a row of values (rows: {', '.join(map(repr, values))})")
    base = np.asarray(values[baseline], dtype=float)
    out: dict[str, dict[str, Any]] = {}
    for row, accs in values.items():
        a = np.asarray(accs, dtype=float)
        if a.shape != base.shape:
            raise ValueError(f"row {row!r} has {a.size} seeds, the baseline {base.size}")
        d = a - base
        n = d.size
        half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)) if n >= 2 else math.nan
        mean = float(d.mean())
        out[row] = {
            "diff": d.tolist(),
            "mean": mean,
            "low": mean - half,
            "high": mean + half,
            "wins": int((d > 0).sum()),
            "seeds": n,
        }
    return out


def _base_config(
    labeled: int, student: str, *, quick: bool, full: bool, seeds: Sequence[int], out: str, cache: str, device: str
) -> dict[str, Any]:
    model, epochs = STUDENTS[student]
    cfg = {
        "dataset": DATASET,
        "labeled": labeled,
        "validation": VALIDATION,
        "teacher": TEACHER,
        "student": model,
        "epochs": epochs,
        "teacher_epochs": teacher_epochs(labeled),
        "train": TRAIN,
        "seeds": list(seeds),
        "out": out,
        "cache": cache,
        "device": device,
        "overwrite": True,  # the grid owns its rows: a rerun replaces them
    }
    if quick:
        cfg.update(validation=100, epochs=1, teacher_epochs=2, unlabeled=200)
    else:
        cfg["unlabeled"] = 60_000 - labeled - VALIDATION if full else POOL
    return cfg


def _jobs(quick: bool, full: bool) -> list[tuple[str, int, tuple[str, str, dict[str, Any]]]]:
    if quick:
        return [("mlp", 100, row) for row in ROWS if row[0] in QUICK_ROWS]
    sizes = FULL_SIZES if full else SIZES
    jobs = []
    for student in STUDENTS:
        for labeled in sizes:
            if student == "cnn" and not full and labeled not in CNN_SIZES:
                continue
            for row in ROWS:
                if student == "cnn" and not full and row[0] not in CNN_ROWS:
                    continue
                jobs.append((student, labeled, row))
    return jobs


def _epoch_time(record: dict[str, Any]) -> float | None:
    times = (record.get("student_train") or {}).get("epoch_times_s") or ()
    return float(np.median(times)) if times else None


def _distill(jobs, seeds, ds, args, progress) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    rows = []
    for student, labeled, (label, method, options) in tqdm(
        jobs, desc="bench realdata", disable=not progress, file=sys.stderr
    ):
        cfg = _base_config(labeled, student, seeds=seeds, **args)
        cfg.update(name=f"fmnist-{student}-{labeled}-{_slug(label)}", method=method, method_options=options)
        per_seed = run_distillation(cfg, ds, progress=False).per_seed
        rows.append(
            {
                "student": student,
                "labeled": labeled,
                "method": label,
                "name": method,
                "options": options,
                "student_accuracy": [r["student_accuracy"] for r in per_seed],
                "teacher_accuracy": [r["teacher_accuracy"] for r in per_seed],
                "pool_fit": [r.get("pool_fit") for r in per_seed],
                "minimiser_leaves_topk": [r.get("minimiser_leaves_topk") for r in per_seed],
                "epoch_seconds": [_epoch_time(r) for r in per_seed],
                "teacher_queries": [r["teacher_queries"] for r in per_seed],
                "seconds": [r["seconds"] for r in per_seed],
            }
        )
    return rows


def _cells(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per (student, size): mean/std per row, the paired differences to the baseline and the overhead ratios."""
    cells: dict[str, dict[str, Any]] = {}
    for key in dict.fromkeys((r["student"], r["labeled"]) for r in rows):
        group = [r for r in rows if (r["student"], r["labeled"]) == key]
        accs = {r["method"]: r["student_accuracy"] for r in group if r["student_accuracy"][0] is not None}
        teacher = next((r["teacher_accuracy"] for r in group if r["teacher_accuracy"][0] is not None), None)
        base = next((r for r in group if r["method"] == BASELINE), None)
        cell: dict[str, Any] = {
            "student": key[0],
            "labeled": key[1],
            "teacher": teacher,
            "mean": {m: float(np.mean(a)) for m, a in accs.items()},
            "std": {m: float(np.std(a, ddof=1)) if len(a) > 1 else 0.0 for m, a in accs.items()},
        }
        if base is not None:
            cell["paired"] = paired(accs)
            ratios = {}
            for r in group:
                pairs = [(t, b) for t, b in zip(r["epoch_seconds"], base["epoch_seconds"]) if t and b]
                if pairs:
                    ratios[r["method"]] = float(np.median([t / b for t, b in pairs]))
            cell["overhead"] = ratios
        cell["fits_teacher_mistakes"] = {
            r["method"]: float(np.mean([p["fits_teacher_mistakes"] for p in r["pool_fit"]]))
            for r in group
            if r["pool_fit"][0] is not None and r["pool_fit"][0]["fits_teacher_mistakes"] is not None
        }
        cell["minimiser_leaves_topk"] = {
            r["method"]: float(np.mean(r["minimiser_leaves_topk"]))
            for r in group
            if r.get("minimiser_leaves_topk") and r["minimiser_leaves_topk"][0] is not None
        }
        cells[f"{key[0]}-{key[1]}"] = cell
    return cells


#: Row groups whose ablation chooses a method's defaults: group -> (rows ranked, rows that can win).
RANKED_GROUPS: dict[str, tuple[Any, Any]] = {
    "weighted": (
        lambda m: m.startswith("weighted") or m in (BASELINE, "vanilla (hard)"),
        lambda m: m.startswith("weighted"),
    ),
    "slam": (lambda m: m.startswith("slam"), lambda m: m.startswith("slam")),
}


def ranks(cells: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per group of :data:`RANKED_GROUPS`, each row's mean rank (1 = best) of mean test accuracy over the cells
    where every row of the group ran (a row missing from a cell would make ranks incomparable)."""
    out = {}
    for name, (ranked, _) in RANKED_GROUPS.items():
        group = {k: {m: v for m, v in c["mean"].items() if ranked(m)} for k, c in cells.items()}
        size = max((len(g) for g in group.values()), default=0)
        complete = {k: g for k, g in group.items() if size and len(g) == size}
        out[name] = rank_rows(complete) if complete else {}
    return out


def winners(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per group: the best-ranked row that can win (:func:`ranks`) and its method options: what the method's
    defaults are set to (``{"row", "options", "rank"}``)."""
    options = {label: opts for label, _, opts in ROWS}
    out = {}
    for name, row_ranks in ranks(result["cells"]).items():
        eligible = {m: r for m, r in row_ranks.items() if RANKED_GROUPS[name][1](m)}
        if eligible:
            best = min(eligible, key=lambda m: (eligible[m], m))
            out[name] = {"row": best, "options": options[best], "rank": eligible[best]}
    return out


def _active(seeds, ds, args, progress) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    quick = args["quick"]
    losses = ("vanilla",) if quick else ("vanilla", "slam")
    plan = [(sel, loss, "pool") for sel in (("rad", "margin") if quick else ACTIVE_SELECTORS) for loss in losses]
    plan += [("rad", loss, m) for loss in losses for m in ACTIVE_MISTAKES if m != "pool"]
    out = []
    for selector, loss, mistakes in tqdm(plan, desc="bench realdata: active", disable=not progress, file=sys.stderr):
        cfg = _base_config(ACTIVE["labeled"], "mlp", seeds=seeds, **args)
        cfg.update(
            name=f"fmnist-active-{selector}-{loss}-{mistakes}",
            selector=selector,
            loss=loss,
            rounds=2 if quick else ACTIVE["rounds"],
            budget=20 if quick else ACTIVE["budget"],
            unlabeled=200 if quick else ACTIVE["pool"],
            epochs=1 if quick else ACTIVE["epochs"],
        )
        if selector == "rad":
            cfg["mistakes"] = mistakes
        result = run_active_distillation(cfg, ds, progress=False)
        rounds = [r.get("rounds", []) for r in result.per_seed]
        out.append(
            {
                "selector": selector,
                "loss": loss,
                "mistakes": mistakes if selector == "rad" else None,
                "queries": list(result.queries),
                "accuracy": [list(a) for a in result.accuracy],
                "accuracy_mean": list(result.mean),
                "accuracy_std": list(result.std),
                "teacher_queries": list(result.teacher_queries),
                "mistakes_per_round": [[x.get("mistakes") for x in rs] for rs in rounds],
                "near_uniform": [[x.get("near_uniform") for x in rs] for rs in rounds],
            }
        )
    return out


def _active_paired(curves: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Final-round accuracy of every curve minus margin sampling's with the same loss, paired by seed."""
    out = {}
    for loss in dict.fromkeys(c["loss"] for c in curves):
        group = {
            (c["selector"] + (f" (m: {c['mistakes']})" if c["mistakes"] else "")): [a[-1] for a in c["accuracy"]]
            for c in curves
            if c["loss"] == loss
        }
        if "margin" in group:
            out[loss] = paired(group, baseline="margin")
    return out


def run(
    *,
    seed: int = 0,
    quick: bool = False,
    full: bool = False,
    progress: bool | None = None,
    seeds: int | None = None,
    root: str | None = None,
    active: bool = True,
    out: str = "reports/realdata",
    cache: str = "reports/cache",
    device: str = "auto",
) -> dict[str, Any]:
    """Run the grid (module docstring); returns a JSON-ready dict. ``seeds``: how many (default 3, 5 with
    ``full``, 2 with ``quick``), starting at ``seed``; ``root``: the folder of the IDX files (default: the
    Debian package's). Raises :class:`BenchmarkSkipped` when the files are missing."""
    if progress is None:
        progress = sys.stderr.isatty()
    count = check_int(seeds, "seeds", low=1) if seeds is not None else 2 if quick else FULL_SEEDS if full else SEEDS
    seed_list = [seed + s for s in range(count)]
    try:
        ds = load_dataset(DATASET, root=root)
    except FileNotFoundError as exc:
        raise BenchmarkSkipped(f"the Fashion-MNIST files are missing ({' '.join(str(exc).split())})") from None
    args = {"quick": quick, "full": full, "out": out, "cache": cache, "device": device}
    started = time.perf_counter()
    rows = _distill(_jobs(quick, full), seed_list, ds, args, progress)
    distill_seconds = time.perf_counter() - started
    cells = _cells(rows)
    curves = _active(seed_list, ds, args, progress) if active else []
    return {
        "benchmark": "realdata",
        "dataset": DATASET,
        "quick": quick,
        "full": full,
        "seeds": seed_list,
        "rows": rows,
        "cells": cells,
        "ranks": ranks(cells),
        "active": curves,
        "active_paired": _active_paired(curves) if curves else {},
        "baseline": BASELINE,
        "defaults": {"slam_targets": DEFAULT_TARGETS, "weighted_scheme": DEFAULT_SCHEME},
        "protocol": {
            "sizes": sorted({r["labeled"] for r in rows}),
            "validation": VALIDATION,
            "pool": None if full else POOL,
            "teacher": TEACHER,
            "teacher_epochs": {str(n): teacher_epochs(n) for n in sorted({r["labeled"] for r in rows})},
            "students": {k: {"model": v[0], "epochs": v[1]} for k, v in STUDENTS.items()},
            "train": TRAIN,
            "active": ACTIVE,
        },
        "seconds": time.perf_counter() - started,
        "distill_seconds": distill_seconds,
        "environment": environment_info(),
    }


def _pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:+.1f}"


def _ci(p: dict[str, Any]) -> str:
    return f"{_pct(p['mean'])} [{_pct(p['low'])}, {_pct(p['high'])}]"


#: The columns of a cell's table (text and Markdown).
CELL_COLUMNS = (
    "method",
    "accuracy %",
    "diff to vanilla, 95% CI",
    "won",
    "fits teacher mistakes %",
    "epoch time x",
    "SLaM minimiser off top-k %",
)


def _cell_rows(cell: dict[str, Any]) -> list[dict[str, str]]:
    """One row per method of a cell: accuracy (mean +- std), the paired difference to vanilla (soft) with its
    95% interval and seeds won, the fraction of the teacher's wrong pool labels the student reproduces, the
    epoch-time ratio to vanilla, and (SLaM) the fraction of per-example minimisers off the top-k set."""
    rows = []
    for method, mean in cell["mean"].items():
        p = cell.get("paired", {}).get(method)
        fits = cell["fits_teacher_mistakes"].get(method)
        ratio = cell.get("overhead", {}).get(method)
        off = cell.get("minimiser_leaves_topk", {}).get(method)
        values = (
            method,
            f"{100 * mean:.1f} +- {100 * cell['std'][method]:.1f}",
            "-" if p is None else _ci(p),
            "-" if p is None else f"{p['wins']}/{p['seeds']}",
            "-" if fits is None else f"{100 * fits:.0f}",
            "-" if ratio is None else f"{ratio:.2f}",
            "-" if off is None else f"{100 * off:.1f}",
        )
        rows.append(dict(zip(CELL_COLUMNS, values)))
    return rows


def _rank_rows(group_ranks: dict[str, float]) -> list[dict[str, str]]:
    return [{"row": m, "mean rank": f"{r:.2f}"} for m, r in sorted(group_ranks.items(), key=lambda kv: kv[1])]


def _active_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "selector": c["selector"] + (f" (m: {c['mistakes']})" if c["mistakes"] else ""),
            "loss": c["loss"],
            "pool queries": " ".join(map(str, c["queries"])),
            "accuracy % per round": " ".join(f"{100 * a:.1f}" for a in c["accuracy_mean"]),
            "labels paid": str(c["teacher_queries"][0]),
        }
        for c in result["active"]
    ]


def _active_paired_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"loss": loss, "selector": sel, "final diff to margin, 95% CI": _ci(p), "won": f"{p['wins']}/{p['seeds']}"}
        for loss, group in result.get("active_paired", {}).items()
        for sel, p in group.items()
        if sel != "margin"
    ]


def _markdown(rows: list[dict[str, str]]) -> str:
    return format_markdown_table(list(rows[0]), [list(r.values()) for r in rows])


def table(result: dict[str, Any]) -> str:
    """Per cell, the rows of :func:`_cell_rows`; the ablation ranks and winners; then the active-distillation
    curves and their final round against margin sampling."""
    parts = []
    for name, cell in result["cells"].items():
        head = f"{name}: student {cell['student']}, labeled {cell['labeled']}"
        if cell["teacher"]:
            head += f", teacher {100 * np.mean(cell['teacher']):.1f}%"
        parts.append(head + f" (seeds {result['seeds']})\n" + format_table(_cell_rows(cell), CELL_COLUMNS))
    best = winners(result)
    for group, group_ranks in ranks(result["cells"]).items():
        if group_ranks:
            parts.append(
                f"{group}: mean rank over the cells where every row ran (1 = best); winner: "
                f"{best.get(group, {}).get('row')}\n" + format_table(_rank_rows(group_ranks), ["row", "mean rank"])
            )
    if result["active"]:
        rows = _active_rows(result)
        parts.append("active distillation (mlp student)\n" + format_table(rows, list(rows[0])))
        rows = _active_paired_rows(result)
        if rows:
            parts.append(
                "active distillation, final round against margin sampling (paired by seed)\n"
                + format_table(rows, list(rows[0]))
            )
    return "\n\n".join(parts)


def _findings(result: dict[str, Any]) -> list[str]:
    """Measured facts per cell, from the numbers alone: the teacher's accuracy; how much of the teacher's wrong
    pool labels vanilla reproduces (soft and hard targets); the rows whose 95% interval lies above or below 0."""
    out = []
    for cell in result["cells"].values():
        if "paired" not in cell:
            continue
        teacher = f"{100 * float(np.mean(cell['teacher'])):.1f}%" if cell.get("teacher") else "?"
        fits = cell["fits_teacher_mistakes"]
        fit_text = ", ".join(f"{m} {100 * fits[m]:.0f}%" for m in (BASELINE, "vanilla (hard)") if m in fits)
        above = [m for m, p in cell["paired"].items() if p["low"] > 0]
        below = [m for m, p in cell["paired"].items() if p["high"] < 0]
        out.append(
            f"- **{cell['student']}, {cell['labeled']} labels** (teacher {teacher}): the student reproduces the "
            f"teacher's wrong pool labels at {fit_text or '-'}; interval above 0: {', '.join(above) or 'none'}; "
            f"below 0: {', '.join(below) or 'none'}."
        )
    return out


def page(result: dict[str, Any], figure: str | None = None) -> str:
    """The results page (Markdown) of a run: protocol, the defaults it chose, the findings, one table per cell,
    the active-distillation curves and the figure (``figure``: its path relative to the page)."""
    proto = result["protocol"]
    students = ", ".join(f"{k}: {v['model']}, {v['epochs']} epochs" for k, v in proto["students"].items())
    lines = [
        "# Fashion-MNIST: distillation methods against vanilla, paired by seed",
        "",
        "Generated by `robustdistill bench realdata` (`experiments/benchmarks/realdata.py`; its docstring has the "
        "protocol) from the JSON beside this page. Do not edit by hand.",
        "",
        f"- Seeds {result['seeds']}{' (quick smoke run, not a result)' if result.get('quick') else ''}; labeled sizes "
        f"{proto['sizes']}, validation {proto['validation']}, pool "
        f"{proto['pool'] or 'the rest of the 60,000 training images'}, official test set (10,000).",
        f"- Teacher {proto['teacher']} trained on the labeled set (epochs per size {proto['teacher_epochs']}); "
        f"students {students}; optimiser {proto['train']}.",
        f"- Defaults when this ran: SLaM targets `{result['defaults']['slam_targets']}`, Weighted Distillation scheme "
        f"`{result['defaults']['weighted_scheme']}`; the defaults chosen from it are the ablation winners below.",
        f"- Wall time {result['seconds'] / 60:.1f} min on {result['environment'].get('cpu_count', '?')} CPU(s) "
        f"({result['environment'].get('platform', '')}).",
        "",
        "## Findings (measured)",
        "",
        *_findings(result),
        "",
    ]
    if figure:
        lines += [f"![paired differences to vanilla (soft)]({figure})", ""]
    best = winners(result)
    for group, group_ranks in ranks(result["cells"]).items():
        if group in best:
            lines += [
                f"Mean rank of the {group} rows over the cells where every row ran (1 = best). The winner, "
                f"`{best[group]['row']}` (options {best[group]['options']}), is the method's default.",
                "",
                _markdown(_rank_rows(group_ranks)),
                "",
            ]
    for cell in result["cells"].values():
        teacher = f", teacher {100 * float(np.mean(cell['teacher'])):.1f}%" if cell.get("teacher") else ""
        lines += [
            f"## {cell['student']} student, {cell['labeled']} labels{teacher}",
            "",
            _markdown(_cell_rows(cell)),
            "",
        ]
    if result.get("active"):
        lines += [
            "## Active distillation (MLP student, teacher queried on demand)",
            "",
            _markdown(_active_rows(result)),
            "",
        ]
        rows = _active_paired_rows(result)
        if rows:
            lines += ["Final round minus margin sampling, paired by seed:", "", _markdown(rows), ""]
    return "\n".join(lines)


#: The README's headline rows: (method, the row of the grid that is the method's default, the group it
#: belongs to). RAD is compared with margin sampling in the active loop; the others with vanilla (soft).
HEADLINE = (
    ("Weighted Distillation", "weighted signal (hard)"),
    ("SLaM", "slam (2') hard"),
    ("forward correction", "forward"),
)


def headline(result: dict[str, Any]) -> str:
    """The README's headline table (Markdown): per method, its mean paired difference in points to vanilla (soft)
    with the 95% interval, per cell of the grid; RAD against margin sampling after the last active round."""
    cells = list(result["cells"].items())
    header = ["method", *(f"{c['student']}, {c['labeled']} labels" for _, c in cells)]
    rows = [
        ["teacher accuracy %", *(f"{100 * np.mean(c['teacher']):.1f}" if c["teacher"] else "-" for _, c in cells)],
        ["vanilla (soft) accuracy %", *(f"{100 * c['mean'][BASELINE]:.1f}" for _, c in cells)],
    ]
    for label, row in HEADLINE:
        rows.append(
            [
                f"{label}: diff to vanilla",
                *(_ci(c["paired"][row]) if row in c.get("paired", {}) else "-" for _, c in cells),
            ]
        )
    text = format_markdown_table(header, rows)
    active = [
        (loss, group["rad (m: pool)"])
        for loss, group in result.get("active_paired", {}).items()
        if "rad (m: pool)" in group
    ]
    if active:
        protocol = result["protocol"]["active"]
        text += (
            f"\n\nRobust Active Distillation against margin sampling: mlp student, {protocol['labeled']} labels, "
            f"{protocol['rounds']} rounds of {protocol['budget']} teacher labels, accuracy after the last round.\n\n"
        )
        text += format_markdown_table(
            ["student loss", "RAD: diff to margin sampling", "seeds won"],
            [[loss, _ci(p), f"{p['wins']}/{p['seeds']}"] for loss, p in active],
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robustdistill.experiments.benchmarks.realdata [--quick] [--full] [--json F]``."""
    parser = bench_parser("realdata", __doc__, "seconds-long smoke run")
    parser.add_argument("--full", action="store_true", help="every size, row and student, the whole pool, 5 seeds")
    parser.add_argument("--root", default=None, help="folder of the Fashion-MNIST IDX files")
    parser.add_argument("--page", default=None, help="also write the results page (Markdown) to this file")
    parser.add_argument("--figure", default=None, help="the figure's path relative to the page")
    parser.add_argument("--from-json", default=None, help="make the page from a stored result instead of running")
    parser.add_argument("--headline", action="store_true", help="with --from-json: print the README's headline table")
    args = parser.parse_args(argv)
    if args.from_json:
        import json
        from pathlib import Path

        result = json.loads(Path(args.from_json).read_text())
        if args.headline:
            print(headline(result), end="")
            return 0
        Path(args.page or "realdata.md").write_text(page(result, args.figure))
        return 0
    try:
        result = run(quick=args.quick, full=args.full, root=args.root, progress=False if args.quiet else None)
    except BenchmarkSkipped as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return 0
    if args.page:
        from pathlib import Path

        Path(args.page).write_text(page(result, args.figure))
    return finish_bench(result, table(result), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
