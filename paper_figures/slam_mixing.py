r"""SLaM's mixing function: the mixed prediction :math:`\mathrm{mix}_i(f)` against the student's probability
:math:`f_i`, for several teacher accuracies :math:`\alpha`.

Illustrates ``docs/theory/slam.md#slam-forward-loss`` (paper: SLaM mixes the student's prediction with its complement on the
teacher's top-k set, :math:`\mathrm{mix}(f) = \alpha f + (1-\alpha)(1-f) \odot M/c`; :math:`c = k-1` in the
normalised form (2), :math:`c = 1` in the experiments' form (2')): binary (K = 2, where the two forms
coincide) and K = 10 with a top-3 set, where an entry on the set rises from :math:`(1-\alpha)/c` at
:math:`f_i = 0` and an entry off the set is :math:`\alpha f_i`. Computed with
:func:`robustdistill.algorithms.slam.mix`; ``source`` is always ``"quick"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustdistill.algorithms.slam import mix

from . import _style

NAME = "slam_mixing"
BINARY_ALPHAS = (0.6, 0.75, 0.9, 1.0)
MULTI_ALPHAS = (0.6, 0.9)
K, TOP_K = 10, 3


def _rows(f: np.ndarray, num_classes: int, varied: int) -> np.ndarray:
    """Student rows with probability ``f`` on class ``varied`` and the rest spread evenly."""
    probs = np.repeat(((1.0 - f) / (num_classes - 1))[:, None], num_classes, axis=1)
    probs[:, varied] = f
    return probs


def make(out: Path, results: Path, quick: bool = True) -> _style.Figure:
    """mix(f) on a grid of f, binary and multiclass."""
    f = np.linspace(0.0, 1.0, 101)
    binary = []
    for i, alpha in enumerate(BINARY_ALPHAS):
        y = mix(_rows(f, 2, 0), np.full(f.size, alpha), np.ones((f.size, 2)))[:, 0]
        binary.append(
            {
                "label": f"alpha = {alpha:g}" + (" (plain distillation)" if alpha == 1 else ""),
                "x": f,
                "y": y,
                "color": _style.PALETTE[i],
            }
        )
    mask = np.zeros((f.size, K))
    mask[:, :TOP_K] = 1.0
    multi = []
    for i, alpha in enumerate(MULTI_ALPHAS):
        a = np.full(f.size, alpha)
        color = _style.PALETTE[i]
        for normalize, form, style in ((True, "(2)", "-"), (False, "(2')", "--")):
            on = mix(_rows(f, K, 0), a, mask, normalize=normalize)[:, 0]
            multi.append(
                {
                    "label": f"alpha = {alpha:g}, on the top-{TOP_K} set, {form}",
                    "x": f,
                    "y": on,
                    "color": color,
                    "linestyle": style,
                }
            )
        off = mix(_rows(f, K, K - 1), a, mask, normalize=False)[:, K - 1]  # the same in both forms
        multi.append({"label": f"alpha = {alpha:g}, off the set", "x": f, "y": off, "color": color, "linestyle": ":"})
    identity = {"label": "mix(f) = f", "x": [0.0, 1.0], "y": [0.0, 1.0], "color": "#999999", "linewidth": 0.8}
    spec = {
        "title": "SLaM mixing: the mixed prediction vs the student's probability, alpha f + (1 - alpha)(1 - f) M / c",
        "panels": [
            {
                "title": "binary (K = 2): forms (2) and (2') coincide",
                "xlabel": "student probability f_1",
                "ylabel": "mixed probability mix_1(f)",
                "series": [identity, *binary],
                "legend": "upper left",
            },
            {
                "title": f"K = {K} classes, teacher's top-{TOP_K} set M",
                "xlabel": "student probability f_i",
                "ylabel": "mixed value mix_i(f)",
                "series": [identity, *multi],
                "legend": "upper left",
            },
        ],
    }
    inputs = {
        "mix": "robustdistill.algorithms.slam.mix",
        "binary_alphas": list(BINARY_ALPHAS),
        "multiclass_alphas": list(MULTI_ALPHAS),
        "num_classes": K,
        "top_k": TOP_K,
        "student rows": "f on the plotted class, (1 - f)/(K - 1) on every other",
    }
    return _style.finish(NAME, spec, out, "quick", inputs)


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_figures.slam_mixing [--out DIR]``."""
    return _style.main(NAME, make, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
