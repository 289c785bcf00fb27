r"""Sample complexity of the forward-adjusted halfspace learner under random classification noise, log-log:
the median number of samples n needed for clean error <= eps against 1/gamma (one line per eps) and against
1/eps (one line per gamma), bands from the 25th to the 75th percentile over seeds; guide lines with the
fitted exponent and with the bound's slope.

Illustrates ``docs/theory/halfspace.md#halfspace-checks``, simulator S2 (our formulation; the target rate is
:math:`\tilde O(1/(\gamma^2 \varepsilon^2))` for SLaM's halfspace learner, paper): the fitted exponents of
:math:`1/\gamma` and :math:`1/\varepsilon` (least squares over every cell, in the panel note) stay below
the check's bound 2.3. Lines are the cells with the smallest dimension and the noise rate closest to 0.2;
the fit uses all cells. Data: ``RESULTS/data/S2-scaling.json`` (``robustdistill verify [--full]``), else
the S2 check at its quick size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from robustdistill.theory.simulators.halfspace_checks import SLOPE_BOUND

from . import _data, _style

NAME = "slam_sample_complexity"


def _guides(xs: np.ndarray, ys: np.ndarray, slope: float, label: str) -> list[dict[str, Any]]:
    """Two guide lines through the geometric mean of the plotted points: the fitted slope and the bound's."""
    keep = np.isfinite(ys) & (ys > 0)
    if not keep.any():
        return []
    xc, yc = np.exp(np.log(xs[keep]).mean()), np.exp(np.log(ys[keep]).mean())
    ends = np.array([xs[keep].min(), xs[keep].max()])
    return [
        {
            "label": f"fitted: n ~ ({label})^{slope:.2f}",
            "x": ends,
            "y": yc * (ends / xc) ** slope,
            "color": "#000000",
            "linewidth": 1.0,
        },
        {
            "label": f"check's bound: slope {SLOPE_BOUND:g}",
            "x": ends,
            "y": yc * (ends / xc) ** SLOPE_BOUND,
            "color": "#000000",
            "linestyle": ":",
            "linewidth": 1.0,
        },
    ]


def _quantiles(values: list[float]) -> np.ndarray:
    """Median, 25th and 75th percentile of the per-seed n (inf: a seed that never reached eps, censored)."""
    v = np.asarray(values, dtype=float)
    return np.array([np.median(v), np.percentile(v, 25), np.percentile(v, 75)])


def _panel(
    table: dict[tuple[float, float], np.ndarray],
    margins: list[float],
    epsilons: list[float],
    along_margin: bool,
    slope: float,
) -> dict[str, Any]:
    """n against 1/gamma (one line per eps) when ``along_margin``, else against 1/eps (one line per gamma)."""
    lines, axis = (epsilons, margins) if along_margin else (margins, epsilons)
    x = np.array([1.0 / a for a in axis])
    series, ys = [], []
    for i, fixed in enumerate(lines):
        q = np.array([table[(a, fixed) if along_margin else (fixed, a)] for a in axis])  # (len(axis), 3)
        series.append(
            {
                "label": f"eps = {fixed:g}" if along_margin else f"gamma = {fixed:g}",
                "x": x,
                "y": q[:, 0],
                "low": q[:, 1],
                "high": q[:, 2],
                "marker": "o",
                "color": _style.PALETTE[(i + 2) % 9],
            }
        )
        ys.append(q[:, 0])
    name = "1/gamma" if along_margin else "1/eps"
    return {
        "title": "n vs 1/gamma, per target error eps" if along_margin else "n vs 1/eps, per margin gamma",
        "xlabel": "inverse margin 1/gamma" if along_margin else "inverse target error 1/eps",
        "ylabel": "samples n for clean error <= eps (median)",
        "xscale": "log",
        "yscale": "log",
        "xticks": {"positions": x, "labels": [f"{v:.3g}" for v in x]},
        "legend": "outside",
        "series": series + _guides(np.tile(x, len(lines)), np.concatenate(ys), slope, name),
    }


def make(out: Path, results: Path, quick: bool = True) -> _style.Figure:
    """Median n per cell against 1/gamma and 1/eps, with the fitted and the bound's slopes."""
    data, source, origin = _data.check_data("S2-scaling", results, quick)
    rows, fit = data["rows"], data["fit"]
    dim = min(r["dim"] for r in rows)
    eta = min({r["noise_rate"] for r in rows}, key=lambda e: abs(e - 0.2))
    cells = [r for r in rows if r["dim"] == dim and r["noise_rate"] == eta]
    margins = sorted({r["margin"] for r in cells}, reverse=True)
    epsilons = sorted({float(e) for r in cells for e in r["n"]}, reverse=True)
    table = {(r["margin"], float(e)): _quantiles(v) for r in cells for e, v in r["n"].items()}
    note = f"fit over {fit['cells']} cells: n ~ gamma^-{fit['gamma_slope']:.2f} eps^-{fit['eps_slope']:.2f}"
    if fit.get("censored"):
        note += f"\ncensored cells: {len(fit['censored'])}"
    panels = [
        _panel(table, margins, epsilons, True, fit["gamma_slope"]),
        _panel(table, margins, epsilons, False, fit["eps_slope"]),
    ]
    for panel in panels:
        panel.update(text=note, text_loc="lower right")
    spec = {
        "title": f"Forward-adjusted halfspace learner under RCN: sample complexity (sphere, d = {dim}, eta = {eta:g}, "
        f"{data['size'].get('seeds', '?')} seeds; bands: 25-75th percentile)",
        "panels": panels,
        "figsize": [11.5, 3.8],
    }
    return _style.finish(NAME, spec, out, source, {"S2-scaling": origin, "fit": fit, "size": data["size"]})


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_figures.slam_sample_complexity [--out DIR] [--results DIR]``."""
    return _style.main(NAME, make, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
