r"""The teacher's accuracy against its margin: the isotonic fit from a labeled validation set (a band of mean
+- std over validation draws), binned accuracies with exact intervals, and the true accuracy.

Illustrates ``docs/theory/weighted.md#weighted-accuracy-fit`` (our formulation of the paper's teacher-accuracy estimate from
:math:`S_v`, paper): :func:`~robustdistill.algorithms.teacher_quality.fit_teacher_accuracy` (isotonic
regression of correctness on the margin, Laplace-smoothed) and
:func:`~robustdistill.algorithms.teacher_quality.binned_accuracy` (equal-mass bins, Clopper-Pearson 95%
intervals), on the §2.1 margin teacher
(:func:`~robustdistill.theory.teacher_noise.margin_teacher_probs`, K = 10) whose accuracy is known exactly,
:math:`\alpha(s) = 0.3 + 0.65 s^{0.7}`. Two validation sizes show the fit tightening. Computed exactly here
(seconds); ``source`` is always ``"quick"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustdistill.algorithms.teacher_quality import binned_accuracy, fit_teacher_accuracy
from robustdistill.theory.teacher_noise import margin_teacher_probs, true_accuracy

from . import _style

NAME = "weighted_teacher_accuracy"
NUM_CLASSES = 10
VALIDATION_SIZES = (200, 2000)
SEEDS = tuple(range(10))
BINS = 10


def _validation(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A validation set of ``n`` points: uniform true labels and the §2.1 margin teacher's outputs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, n)
    probs, _ = margin_teacher_probs(labels, NUM_CLASSES, rng=rng)
    return probs, labels


def _panel(n: int, grid: np.ndarray) -> dict:
    fits = np.array([fit_teacher_accuracy(*_validation(n, s)).predict_feature(grid) for s in SEEDS])
    mean, std = fits.mean(axis=0), fits.std(axis=0, ddof=1)
    binned = binned_accuracy(*_validation(n, SEEDS[0]), n_bins=BINS)
    centers = (binned.low + binned.high) / 2
    return {
        "title": f"validation set of n_v = {n} points",
        "text": f"alpha(s) = 0.3 + 0.65 s^0.7\nbins: {BINS} equal-mass, draw {SEEDS[0]}",
        "xlabel": "teacher margin s = t(1) - t(2) (probability)",
        "ylabel": "teacher accuracy alpha (probability correct)",
        "ylim": [0.0, 1.02],
        "series": [
            {"label": "true alpha(s)", "x": grid, "y": true_accuracy(grid), "color": "#000000", "linestyle": "--"},
            {
                "label": f"isotonic fit, mean +- std ({len(SEEDS)} draws)",
                "x": grid,
                "y": mean,
                "low": mean - std,
                "high": mean + std,
                "color": _style.PALETTE[0],
            },
            {
                "kind": "errorbar",
                "label": "binned, Clopper-Pearson 95%",
                "x": centers,
                "y": binned.accuracy,
                "low": binned.exact_low,
                "high": binned.exact_high,
                "color": _style.PALETTE[1],
            },
        ],
        "legend": "lower right",
    }


def make(out: Path, results: Path, quick: bool = True) -> _style.Figure:
    """Fit the accuracy on every validation draw and plot the fits, the bins and the truth."""
    grid = np.linspace(0.0, 1.0, 201)
    spec = {
        "title": f"Teacher accuracy vs margin (K = {NUM_CLASSES} margin teacher with known alpha): isotonic fit "
        "and binned intervals",
        "panels": [_panel(n, grid) for n in VALIDATION_SIZES],
    }
    inputs = {
        "teacher": "robustdistill.theory.teacher_noise.margin_teacher_probs",
        "num_classes": NUM_CLASSES,
        "validation_sizes": list(VALIDATION_SIZES),
        "seeds": list(SEEDS),
        "bins": BINS,
        "fit": "robustdistill.algorithms.teacher_quality.fit_teacher_accuracy (feature margin)",
        "binned": "robustdistill.algorithms.teacher_quality.binned_accuracy (delta 0.05)",
    }
    return _style.finish(NAME, spec, out, "quick", inputs)


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_figures.weighted_teacher_accuracy [--out DIR]``."""
    return _style.main(NAME, make, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
