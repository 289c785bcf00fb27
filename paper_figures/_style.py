r"""The one style and the one writer of every figure script.

A figure is described by a JSON-ready **spec**, and drawn from it by :func:`render`; :func:`save` writes
``NAME.png`` (150 dpi), ``NAME.pdf`` and ``NAME.json`` (the spec: exactly the arrays that were drawn, their
labels and units, and where the numbers came from), each atomically. So the data file can redraw its figure
and the tests compare the drawn artists with it.

Spec::

    {"title": str, "panels": [panel, ...], "ncols": int, "width_ratios": [...], "figsize": [w, h] (inches;
     optional, else 4 x 3.2 per panel),
     "legend": "figure" (optional: one legend below the panels, from the series of panel "legend_panel",
     default 0)}
    panel = {"title", "xlabel", "ylabel", "xscale", "yscale" ("linear" | "log"), "xlim", "ylim",
             "xticks": {"positions", "labels", "rotation"}, "legend": bool, a loc string or "outside",
             "text": str (a note), "text_loc": "upper left" (default), "lower right", ..., "series": [series, ...]}
    series kinds:
      "line":     x, y; optional low, high (a band, e.g. mean +- std over seeds), color, linestyle,
                  marker, linewidth, drawstyle
      "errorbar": x, y, low, high (the interval's ends, not its half-widths), color, marker
      "barh":     categories, values, colors (one per bar)

Rendering uses the Agg canvas on a :class:`matplotlib.figure.Figure` directly, never ``pyplot``: no display
is needed, no global backend or rcParams is changed, and no figure is left open. The palette is Okabe-Ito
(colorblind-safe), with line styles cycling beyond 8 series.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import NullLocator

from robustdistill.algorithms.results import to_jsonable
from robustdistill.experiments.pipeline.files import write_atomic, write_json_atomic

from . import Figure

__all__ = ["DPI", "PALETTE", "Figure", "color_for", "finish", "main", "render", "save", "series_styles"]

#: Resolution of the PNG files.
DPI = 150
#: Okabe-Ito, ordered for contrast on white (yellow last: thin lines of it are hard to see).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999", "#F0E442")
LINESTYLES = ("-", "--", "-.", ":")
#: Fixed colors of the names that recur across figures (RAD is always vermillion, margin/greedy blue,
#: uniform/random grey, the teacher black).
NAMED_COLORS = {
    "rad": "#D55E00",
    "greedy": "#0072B2",
    "margin": "#0072B2",
    "uniform": "#999999",
    "random": "#999999",
    "teacher": "#000000",
}
PANEL_SIZE = (4.0, 3.2)  # inches per panel
MIN_WIDTH = 7.0  # inches: room for the title and a figure legend when there is a single panel
STYLE = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "figure.titlesize": 10.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.6,
    "lines.markersize": 4,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # embed TrueType: editable text in the PDF
}


def color_for(name: str, index: int) -> str:
    """The color of a named series (:data:`NAMED_COLORS`, by the name's first word) or else the
    ``index``-th palette color."""
    key = name.split(" ")[0].lower()
    return NAMED_COLORS.get(key, PALETTE[index % len(PALETTE)])


def series_styles(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Color and line style per series name: the names of :data:`NAMED_COLORS` (by first word) keep their
    color (solid; uniform and random dashed), the others take the remaining palette colors in order, with
    solid and dashed lines alternating (a second cue beside the color)."""
    free = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#000000", "#F0E442")  # + Tol's wine
    styles, k = {}, 0
    for name in names:
        key = name.split(" ")[0].lower()
        if key in NAMED_COLORS:
            styles[name] = {"color": NAMED_COLORS[key], "linestyle": "--" if key in ("uniform", "random") else "-"}
        else:
            styles[name] = {"color": free[k % len(free)], "linestyle": LINESTYLES[k % 2]}
            k += 1
    return styles


def _arr(values: Sequence[Any] | None) -> np.ndarray:
    """Float array with None (a non-finite value in the JSON) as nan."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _draw_series(ax: Any, s: Mapping[str, Any]) -> None:
    kind = s.get("kind", "line")
    label = s.get("label", "_nolegend_")
    if kind == "line":
        x, y = _arr(s["x"]), _arr(s["y"])
        color = s.get("color")
        (line,) = ax.plot(
            x,
            y,
            label=label,
            color=color,
            linestyle=s.get("linestyle", "-"),
            marker=s.get("marker"),
            linewidth=s.get("linewidth"),
            drawstyle=s.get("drawstyle", "default"),
            zorder=s.get("zorder", 2),
        )
        if "low" in s and "high" in s:
            ax.fill_between(
                x,
                _arr(s["low"]),
                _arr(s["high"]),
                color=line.get_color(),
                alpha=0.15,
                linewidth=0,
                label=f"_band {label}",
                zorder=1,
            )
    elif kind == "errorbar":
        x, y, low, high = _arr(s["x"]), _arr(s["y"]), _arr(s["low"]), _arr(s["high"])
        ax.errorbar(
            x,
            y,
            yerr=np.vstack([y - low, high - y]),
            fmt=s.get("marker", "o"),
            color=s.get("color"),
            capsize=2,
            markersize=s.get("markersize", 3.5),
            elinewidth=1,
            label=label,
            zorder=3,
        )
    elif kind == "barh":
        positions = np.arange(len(s["categories"]))
        ax.barh(positions, _arr(s["values"]), color=s.get("colors"), label=label, height=0.7)
        ax.set_yticks(positions, s["categories"])
        ax.invert_yaxis()  # the first category on top
        ax.grid(axis="y", visible=False)
    else:
        raise ValueError(f"series kind must be 'line', 'errorbar' or 'barh', got {kind!r}")


def _draw_panel(ax: Any, panel: Mapping[str, Any]) -> None:
    ax.set_xscale(panel.get("xscale", "linear"))  # before the series: a scale change resets the ticks
    ax.set_yscale(panel.get("yscale", "linear"))
    for s in panel["series"]:
        _draw_series(ax, s)
    ax.set_title(panel.get("title", ""))
    ax.set_xlabel(panel.get("xlabel", ""))
    ax.set_ylabel(panel.get("ylabel", ""))
    if panel.get("xlim"):
        ax.set_xlim(*panel["xlim"])
    if panel.get("ylim"):
        ax.set_ylim(*panel["ylim"])
    ticks = panel.get("xticks")
    if ticks:
        ax.set_xticks(
            ticks["positions"],
            ticks["labels"],
            rotation=ticks.get("rotation", 0),
            ha="right" if ticks.get("rotation") else "center",
            rotation_mode="anchor",
        )
        ax.xaxis.set_minor_locator(NullLocator())  # only the given ticks on x (a log axis adds minor ones)
    if panel.get("text"):
        vertical, horizontal = panel.get("text_loc", "upper left").split()
        ax.text(
            0.98 if horizontal == "right" else 0.02,
            0.98 if vertical == "upper" else 0.02,
            panel["text"],
            transform=ax.transAxes,
            va="top" if vertical == "upper" else "bottom",
            ha=horizontal,
            fontsize=7.5,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "0.8", "alpha": 0.9},
        )
    legend = panel.get("legend", True)
    labelled = [s for s in panel["series"] if not str(s.get("label", "_")).startswith("_")]
    if legend and labelled and not any(s.get("kind") == "barh" for s in labelled):
        if legend == "outside":  # right of the axes (constrained layout makes room)
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
        else:
            ax.legend(loc=legend if isinstance(legend, str) else "best")


def render(spec: Mapping[str, Any]) -> MplFigure:
    """Draw a figure spec (module docstring) on an Agg canvas, in the shared style."""
    panels = spec["panels"]
    ncols = int(spec.get("ncols", min(3, len(panels))))
    nrows = math.ceil(len(panels) / ncols)
    widths = spec.get("width_ratios")
    scale = sum(widths) / len(widths) if widths else 1.0
    extra = 0.5 if spec.get("legend") == "figure" else 0.0  # height of a legend row below the panels
    with matplotlib.rc_context(STYLE):
        size = spec.get("figsize") or (max(PANEL_SIZE[0] * ncols * scale, MIN_WIDTH), PANEL_SIZE[1] * nrows + extra)
        fig = MplFigure(figsize=tuple(size), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False, width_ratios=widths).ravel()
        for ax, panel in zip(axes, panels):
            _draw_panel(ax, panel)
        for ax in axes[len(panels) :]:
            fig.delaxes(ax)
        if spec.get("legend") == "figure":
            handles, labels = axes[int(spec.get("legend_panel", 0))].get_legend_handles_labels()
            fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5 if ncols < 3 else 7))
        fig.suptitle(spec["title"])
    return fig


def _json_ready(value: Any) -> Any:
    """to_jsonable, with non-finite floats as None (strict JSON)."""
    value = to_jsonable(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def save(fig: MplFigure, out: str | Path, name: str, data: Mapping[str, Any]) -> tuple[list[Path], Path]:
    """Write ``OUT/NAME.png`` (:data:`DPI`), ``OUT/NAME.pdf`` and ``OUT/NAME.json`` (``data``, non-finite
    numbers as null), each atomically; return ``([png, pdf], json)``. The files carry no time stamp."""
    out = Path(out)
    with matplotlib.rc_context(STYLE):
        png = write_atomic(
            out / f"{name}.png",
            lambda fh: fig.savefig(fh, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None}),
        )
        pdf = write_atomic(
            out / f"{name}.pdf",
            lambda fh: fig.savefig(
                fh, format="pdf", bbox_inches="tight", metadata={"CreationDate": None, "Creator": None}
            ),
        )
    data_path = write_json_atomic(out / f"{name}.json", _json_ready(data))
    return [png, pdf], data_path


def finish(name: str, spec: dict[str, Any], out: str | Path, source: str, inputs: Mapping[str, Any]) -> Figure:
    """Render ``spec``, save it with its provenance (``figure``, ``source``, ``inputs``: where the numbers
    came from) and return the :class:`Figure`."""
    if source not in ("stored", "quick"):
        raise ValueError(f"source must be 'stored' or 'quick', got {source!r}")
    spec = {"figure": name, "source": source, "inputs": dict(inputs), **spec}
    fig = render(spec)
    files, data_path = save(fig, out, name, spec)
    return Figure(name, files, data_path, source)


def main(name: str, make: Callable[..., Figure], description: str, argv: Sequence[str] | None = None) -> int:
    """``python -m paper_figures.NAME [--out DIR] [--results DIR] [--stored-only]``: make one figure, print
    where it went."""
    parser = argparse.ArgumentParser(prog=f"python -m paper_figures.{name}", description=description)
    parser.add_argument(
        "--out", default="reports/figures", metavar="DIR", help="output folder (default: reports/figures)"
    )
    parser.add_argument(
        "--results",
        default="reports",
        metavar="DIR",
        help="folder of stored results: bench_*.json, data/*.json (default: reports)",
    )
    parser.add_argument(
        "--stored-only",
        action="store_true",
        help="fail instead of running the quick experiment when a stored result is missing",
    )
    args = parser.parse_args(argv)
    fig = make(Path(args.out), Path(args.results), quick=not args.stored_only)
    print(f"{fig.name} ({fig.source}): " + ", ".join(str(p) for p in [*fig.files, fig.data_path]))
    return 0
