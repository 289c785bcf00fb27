r"""Convergence of forward loss-adjustment (SLaM's halfspace learner): along one pass of forward-adjusted SGD,
the SLaM objective and the clean test error of the running average iterate; and the spread of the
per-example gradient against the noise rate, SLaM's bounded by :math:`G_\alpha` against backward
correction's growing like :math:`1/(1-2\eta)`.

Illustrates ``docs/theory/slam.md#slam-s3``, simulators S3-convergence and S3-spread (our formulation of the paper's
convergence of forward loss-adjustment with bounded gradients, paper; the gradient bound F4). Data:
``RESULTS/data/S3-convergence.json`` and ``RESULTS/data/S3-spread.json`` (``robustdistill verify``), else
the two checks at their quick sizes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustdistill.theory.binary_slam import gradient_bound

from . import _data, _style

NAME = "slam_convergence"


def make(out: Path, results: Path, quick: bool = True) -> _style.Figure:
    """Objective and clean error along the pass (S3-convergence); gradient spread vs noise (S3-spread)."""
    conv, conv_source, conv_origin = _data.check_data("S3-convergence", results, quick)
    spread, spread_source, spread_origin = _data.check_data("S3-spread", results, quick)
    size = conv["size"]
    steps = np.asarray(conv["steps"])
    etas = np.asarray(spread["noise_rates"], dtype=float)
    x = 1.0 / (1.0 - 2.0 * etas)
    blue, red = _style.PALETTE[0], _style.NAMED_COLORS["rad"]
    spec = {
        "title": f"Forward-adjusted SGD on margin halfspaces under RCN (d = {size['dim']}, gamma = {size['margin']}, "
        f"eta = {size['noise_rate']}, n = {size['n']})",
        "panels": [
            {
                "title": "SLaM objective of the average iterate",
                "xlabel": "SGD steps (log scale)",
                "ylabel": f"SLaM objective on {size['n_eval']} noisy points (nats)",
                "xscale": "log",
                "text": f"max gradient norm {conv['max_grad_norm']:.3f} <= G_alpha = {conv['G_alpha']:.3f}\n"
                f"excess objective ~ t^{conv['excess_slope']:.2f}",
                "text_loc": "upper right",
                "series": [{"label": "objective", "x": steps, "y": conv["objective"], "color": blue, "marker": "o"}],
                "legend": False,
            },
            {
                "title": "clean test error of the average iterate",
                "xlabel": "SGD steps (log scale)",
                "ylabel": "clean test error (%)",
                "xscale": "log",
                "series": [
                    {
                        "label": "clean error",
                        "x": steps,
                        "y": 100 * np.asarray(conv["clean_error"]),
                        "color": blue,
                        "marker": "o",
                    }
                ],
                "legend": False,
            },
            {
                "title": "per-example gradient spread vs noise",
                "xlabel": "1 / (1 - 2 eta) (noise amplification)",
                "ylabel": "std of the logit gradient",
                "xscale": "log",
                "yscale": "log",
                "xticks": {"positions": x, "labels": [f"{v:.3g}\n(eta {e:g})" for v, e in zip(x, etas)]},
                "series": [
                    {"label": "backward correction", "x": x, "y": spread["backward_std"], "color": blue, "marker": "s"},
                    {"label": "SLaM", "x": x, "y": spread["slam_std"], "color": red, "marker": "o"},
                    {
                        "label": "G_alpha: SLaM's |gradient| bound",
                        "x": x,
                        "y": gradient_bound(1.0 - etas),
                        "color": red,
                        "linestyle": ":",
                    },
                ],
                "legend": "lower left",
            },
        ],
    }
    source = "stored" if conv_source == spread_source == "stored" else "quick"
    return _style.finish(NAME, spec, out, source, {"S3-convergence": conv_origin, "S3-spread": spread_origin})


def main(argv: list[str] | None = None) -> int:
    """``python -m paper_figures.slam_convergence [--out DIR] [--results DIR]``."""
    return _style.main(NAME, make, __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
