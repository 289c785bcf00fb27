"""The paper figures: one script per figure, each writing ``NAME.png``, ``NAME.pdf`` and ``NAME.json`` (the
plotted arrays and where they came from) to an output folder.

Run one as ``python -m paper_figures.NAME [--out DIR] [--results DIR]``, several with ``robustdistill figures
[NAME ...]``, or from Python with :func:`make_figures`. A figure reads stored results (``RESULTS/bench_*.json``
from ``robustdistill bench``, ``RESULTS/data/*.json`` from ``robustdistill verify``) when they exist, and
runs the quick experiment when they do not; the analytic figures compute their curves exactly each time.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

__all__ = ["FIGURES", "Figure", "make_figures"]

#: name -> what the figure shows (RAD, then Weighted Distillation, then SLaM, then the real-data benchmark). Each is ``paper_figures.NAME``.
FIGURES: dict[str, str] = {
    "rad_probabilities": "RAD: optimal query probabilities p* and the adversary's equilibrium r* vs gain, for "
    "several mistake counts m",
    "rad_worst_case": "RAD: worst-case value vs teacher mistakes m for RAD, greedy (margin) and uniform selection",
    "rad_active_curves": "RAD: student accuracy vs teacher queries per selector (active distillation benchmark, "
    "mean +- std over seeds)",
    "weighted_teacher_accuracy": "Weighted: teacher accuracy vs margin: isotonic fit (band over draws) and binned "
    "Clopper-Pearson intervals",
    "weighted_weights": "Weighted: per-example weight vs teacher margin for every weight scheme (K = 10 and K = 2)",
    "weighted_ablation": "Weighted: the ablation: mean rank per scheme and accuracy difference to vanilla (soft) "
    "per cell",
    "slam_accuracy_vs_labels": "SLaM: student accuracy vs labeled-set size per method (distillation benchmark, "
    "mean +- std over seeds)",
    "slam_mixing": "SLaM: the mixing function mix(f) vs the student's probability, forms (2) and (2'), several alpha",
    "slam_sample_complexity": "SLaM: halfspace sample complexity vs 1/gamma and 1/eps (log-log) with the fitted "
    "exponents and the bound's slope",
    "slam_convergence": "SLaM: forward-adjusted SGD: objective and clean error along the pass; gradient spread vs "
    "noise rate",
    "realdata_paired": "Fashion-MNIST: every method's accuracy minus vanilla (soft), paired by seed, 95% intervals, "
    "per student and labeled-set size",
}


class Figure(NamedTuple):
    """What a figure script made: ``files`` (the PNG and the PDF), ``data_path`` (the JSON with the plotted
    arrays) and ``source``: ``"stored"`` when it read stored results, ``"quick"`` when it computed its data
    in this call (the quick experiment, or the exact computation of an analytic figure)."""

    name: str
    files: list[Path]
    data_path: Path
    source: str


def make_figures(
    names: Sequence[str] | None = None,
    out: str | Path = "reports/figures",
    results: str | Path = "reports",
    quick: bool = True,
    progress: bool = False,
) -> list[Figure]:
    """Make the named figures (None: all of :data:`FIGURES`, in its order) into ``out``.

    Args:
        names: figure names, keys of :data:`FIGURES`; an unknown name raises ValueError listing the known ones.
        out: output folder (created).
        results: folder of stored results (``bench_*.json``, ``data/*.json``).
        quick: when a stored result is missing, run the quick experiment (seconds to a minute, in a temporary
            folder; the figure's ``source`` is then ``"quick"``); ``False`` raises FileNotFoundError instead.
        progress: a progress bar over the figures.

    Returns:
        One :class:`Figure` ``(name, files, data_path, source)`` per name, in order.
    """
    chosen = list(FIGURES) if names is None else list(names)
    unknown = [n for n in chosen if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {', '.join(map(repr, unknown))}; known: {', '.join(FIGURES)}")
    from tqdm.auto import tqdm

    made = []
    for name in tqdm(chosen, desc="figures", disable=not progress, leave=False):
        module = importlib.import_module(f"{__name__}.{name}")
        made.append(module.make(Path(out), Path(results), quick=quick))
    return made
