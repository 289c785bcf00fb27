r"""RAD's optimal query probabilities :math:`p^*_i` and the adversary's equilibrium mistake probabilities
:math:`r^*_i` against the gain :math:`g_i`, for several numbers of teacher mistakes ``m``.

Illustrates ``docs/theory/rad.md#rad-exact-solver`` (the exact query game and its certificate; our formulation of the paper's
game between informativeness and correctness): with no mistakes RAD queries the top-``b`` gains; as ``m``
grows it spreads its budget over more points, capping each at :math:`p^*_i = \min(1, t^*/g_i)`, while the
adversary puts its mistakes on the most informative points (P6: :math:`r^*` is non-decreasing in the gain).
The gains are the ``n`` quantiles of Beta(2, 5) (the query-game benchmark's law), so the figure is exact and
needs no stored results (``source`` is always ``"quick"``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from robustdistill.algorithms.rad import solve_query_game

from . import _style

NAME = "rad_probabilities"
N, BUDGET = 200, 20
MISTAKES = (0, 10, 20, 40, 80)


def gains(n: int = N) -> np.ndarray:
    """The ``n`` mid-quantiles of Beta(2, 5), increasing: a deterministic pool of gains."""
    return stats.beta.ppf((np.arange(n) + 0.5) / n, 2, 5)


def make(out: Path, results: Path, quick: bool = True) -> _style.Figure:
    """Solve the game for every ``m`` of :data:`MISTAKES` and plot p* and r* against the gain."""
    g = gains()
    prob_series, adv_series = [], []
    for i, m in enumerate(MISTAKES):
        sol = solve_query_game(g, BUDGET, m)
        color = _style.PALETTE[i]
        label = f"m = {m} (V* = {sol.value:.2f})"
        prob_series.append({"label": label, "x": g, "y": sol.probabilities, "color": color})
        adv_series.append({"label": f"m = {m}", "x": g, "y": sol.adversary, "color": color})
    prob_series.append(
        {
            "label": f"uniform b/n = {BUDGET / N:g}",
            "x": g[[0, -1]],
            "y": [BUDGET / N] * 2,
            "color": "#999999",
            "linestyle": ":",
        }
    )
    xlabel = "gain g (informativeness, dimensionless)"
    spec = {
        "title": f"RAD query game: optimal query probabilities and the adversary's equilibrium "
        f"(n = {N} gains at Beta(2, 5) quantiles, budget b = {BUDGET})",
        "panels": [
            {
                "title": "learner: query probability p*(g)",
                "xlabel": xlabel,
                "ylabel": "query probability p*",
                "ylim": [-0.03, 1.05],
                "series": prob_series,
                "legend": "upper left",
            },
            {
                "title": "adversary: equilibrium mistake probability r*(g)",
                "xlabel": xlabel,
                "ylabel": "teacher-mistake probability r*",
                "ylim": [-0.03, 1.05],
                "series": adv_series,
                "legend": "upper left",
            },
        ],
    }
    inputs = {
        "solver": "robustdistill.algorithms.rad.solve_query_game",
        "n": N,
        "budget": BUDGET,
        "mistakes": list(MISTAKES),
        "gains": "Beta(2, 5) quantiles (i + 0.5)/n",
    }
    return _style.finish(NAME, spec, out, "quick", inputs)


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_figures.rad_probabilities [--out DIR]``."""
    return _style.main(NAME, make, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
