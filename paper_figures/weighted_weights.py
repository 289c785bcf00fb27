r"""Per-example weights of the student's loss against the teacher's margin, for every weight scheme of
Weighted Distillation, with K = 10 classes and in the binary case.

Illustrates ``docs/theory/weighted.md#weighted-schemes`` (our formulation of the paper's debiasing weights, paper):
:func:`~robustdistill.algorithms.weighting.distillation_weights` of :math:`\alpha(s) = 0.3 + 0.65 s^{0.7}`,
the §2.1 margin teacher's accuracy: uniform (vanilla) 1, accuracy (W1) :math:`\alpha`, inverse (W2)
:math:`(K-1)/(K\alpha-1)` floored at :math:`\alpha = 1/K + 0.05`, signal (W3) :math:`(K\alpha-1)/(K-1)`;
W2 and W3 are 0 at or below chance (the binary panel's low margins). Exact; ``source`` is always
``"quick"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustdistill.algorithms.weighting import SCHEMES, distillation_weights
from robustdistill.theory.teacher_noise import true_accuracy

from . import _style

NAME = "weighted_weights"
CLASSES = (10, 2)
LABELS = {
    "uniform": "uniform (vanilla)",
    "accuracy": "accuracy (W1)",
    "inverse": "inverse (W2)",
    "signal": "signal (W3)",
}


def make(out: Path, results: Path, quick: bool = True) -> _style.Figure:
    """Weights of every scheme on a grid of margins, one panel per number of classes."""
    s = np.linspace(0.0, 1.0, 401)
    alpha = true_accuracy(s)
    styles = _style.series_styles(list(SCHEMES))
    panels = []
    for k in CLASSES:
        series = [
            {"label": LABELS.get(scheme, scheme), "x": s, "y": distillation_weights(alpha, k, scheme), **styles[scheme]}
            for scheme in SCHEMES
        ]
        panels.append(
            {
                "title": f"K = {k} classes (chance 1/K = {1 / k:g})" + (", binary: eta = 1 - alpha" if k == 2 else ""),
                "xlabel": "teacher margin s = t(1) - t(2) (probability)",
                "ylabel": "weight w(alpha(s)) (unnormalised)",
                "series": series,
                "legend": "upper right",
            }
        )
    spec = {
        "title": "Weighted Distillation: per-example weight vs teacher margin s, per scheme (teacher accuracy "
        "alpha(s) = 0.3 + 0.65 s^0.7)",
        "panels": panels,
    }
    inputs = {
        "weights": "robustdistill.algorithms.weighting.distillation_weights",
        "alpha": "robustdistill.theory.teacher_noise.true_accuracy",
        "classes": list(CLASSES),
    }
    return _style.finish(NAME, spec, out, "quick", inputs)


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_figures.weighted_weights [--out DIR]``."""
    return _style.main(NAME, make, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
