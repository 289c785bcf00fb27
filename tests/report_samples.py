"""Synthetic ``reproduce`` results for the report tests (``test_reproduce``, ``test_report_browser``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robustdistill.experiments.benchmarks import BENCHMARKS
from robustdistill.experiments.cli import reproduce as R


def tiny_png(path: Path) -> Path:
    """A 40 x 30 px PNG drawn with matplotlib's Agg canvas (no pyplot, no global backend)."""
    fig = Figure(figsize=(0.4, 0.3), dpi=100)
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1], [1, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def synthetic_result(out: Path, *, failing: bool = True, errored: bool = True) -> dict[str, Any]:
    """A result dict as ``ReproduceResult.to_dict()`` makes it: two checks (one failing, its claim full of markup),
    a benchmark with targets, an errored step, two figures with real PNGs."""
    figures = []
    provenance = {  # fig_a: a quick fallback for a missing result
        "fig_a": ("quick", {"bench_active": "bench_active.run(quick=True)"}),
        "fig_b": ("stored", {"R1": "data/R1.json"}),
    }
    for name in ("fig_a", "fig_b"):
        png = tiny_png(out / "figures" / f"{name}.png")
        pdf = out / "figures" / f"{name}.pdf"
        pdf.write_bytes(b"%PDF-1.4\n")
        data = str(out / "figures" / f"{name}.json")
        figures.append({"name": name, "files": [str(png), str(pdf)], "png": str(png), "data_path": data,
                        "source": provenance[name][0], "inputs": provenance[name][1],
                        "description": f"{name} <shows>"})  # fmt: skip
    checks = [
        {"name": "P1", "claim": "value <= V* & min-max", "bound": 1e-9, "measured": 1e-15, "interval": [0.0, 1e-15],
         "holds": True},
        {"name": "S9", "claim": "<script>alert('x')</script> | a pipe", "bound": 0.0, "measured": 1.0,
         "interval": [0.5, 1.5], "holds": not failing},
    ]  # fmt: skip
    steps = [
        R.StepResult("verify", "verify", "failed" if failing else "ok", 1.5,
                     note="1 check(s) failed: S9" if failing else None),
        R.StepResult("game", "bench", "ok", 2.0),
        R.StepResult("distill", "bench", "error" if errored else "ok", 0.1,
                     error="RuntimeError: <boom> & co" if errored else None,
                     traceback="Traceback ...\nRuntimeError: <boom>" if errored else None),
        R.StepResult("figures", "figures", "ok", 3.0),
    ]  # fmt: skip
    benchmarks = {
        "game": {"description": BENCHMARKS["game"].help, "json": str(out / "bench_game.json"),
                 "table": "size  seconds\n----  -------\n1e6   0.29 <fast>", "seconds": 2.0, "options": {},
                 "note": None,
                 "targets": {"solve_s": {"description": "solve at 1e6", "bound": 0.5, "kind": "max", "measured": 0.29},
                             "cuda": {"description": "on CUDA", "bound": 2.0, "kind": "min", "measured": None}},
                 "targets_met": {"solve_s": True, "cuda": None}},
    }  # fmt: skip
    if not errored:
        benchmarks["distill"] = {"description": "distill", "json": str(out / "bench_distill.json"), "table": "t",
                                 "targets": None, "targets_met": None, "seconds": 0.1, "options": {}, "note": None}
    result = R.ReproduceResult(
        out=str(out), full=False, seed=0, command="robustdistill reproduce --out 'a b'",
        started_utc="2025-01-01T00:00:00+00:00",
        seconds=6.6, steps=tuple(steps), checks=tuple(checks), benchmarks=benchmarks, figures=tuple(figures),
        environment={"python": "3.12.0", "platform": "Linux", "cpu_count": 2,
                     "versions": {"numpy": "2.0", "torch": None}},
    )  # fmt: skip
    return result.to_dict()
