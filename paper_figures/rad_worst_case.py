r"""Worst-case value against the number of teacher mistakes ``m`` for RAD, greedy top-``b`` (margin
sampling) and uniform selection.

Illustrates ``docs/theory/rad.md#rad-p5`` and the simulator R1 (our formulation): the worst case over mistake
patterns with at most ``m`` mistakes of the expected gain of correctly labeled queried points,
:math:`F(p) = \sum_i p_i g_i - \mathrm{top}_m(p \odot g)`. RAD's is :math:`V^*(m)`, at least the others' for
every ``m``; greedy's drops to 0 once ``m >= b`` (the adversary is wrong on every point it queries), and
uniform's decays slowly from ``b/n`` of the total gain. Left: the 10-point worked example of ``docs/theory/rad.md#rad-worked-examples`` (``b = 2``);
right: ``n`` uniform(0, 1) gains, ``b = n/100``. Data: ``RESULTS/data/R1.json`` (``robustdistill verify``),
else the R1 check at its quick size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import _data, _style

NAME = "rad_worst_case"
SELECTORS = (("rad", "RAD (V*)", "o"), ("greedy", "greedy top-b (margin)", "s"), ("uniform", "uniform b/n", "^"))


def _panel(curve: dict[str, Any], title: str, per_budget: bool) -> dict[str, Any]:
    b = curve["budget"]
    x = [m / b for m in curve["mistakes"]] if per_budget else curve["mistakes"]
    series = [
        {"label": label, "x": x, "y": curve[key], "color": _style.color_for(key, i), "marker": marker}
        for i, (key, label, marker) in enumerate(SELECTORS)
    ]
    return {
        "title": title,
        "xlabel": "teacher mistakes per query, m / b" if per_budget else "teacher mistakes m (points)",
        "ylabel": "worst-case useful gain (sum of gains)",
        "series": series,
        "legend": "upper right",
    }


def make(out: Path, results: Path, quick: bool = True) -> _style.Figure:
    """Plot the worst-case curves of check R1 (stored, else its quick run)."""
    data, source, origin = _data.check_data("R1", results, quick)
    large_key = next(k for k in data if k.startswith("uniform_gains_n"))
    n = int(large_key.removeprefix("uniform_gains_n"))
    spec_curve, large = data["spec_gains"], data[large_key]
    spec = {
        "title": "Worst case over at most m teacher mistakes: RAD vs greedy top-b and uniform selection",
        "panels": [
            _panel(spec_curve, f"spec instance: 10 gains 0.9 ... 0.05, b = {spec_curve['budget']}", False),
            _panel(large, f"{n} uniform(0, 1) gains, b = {large['budget']}", True),
        ],
    }
    return _style.finish(NAME, spec, out, source, {"R1": origin})


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_figures.rad_worst_case [--out DIR] [--results DIR]``."""
    return _style.main(NAME, make, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
