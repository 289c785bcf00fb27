"""Synthetic ``reproduce`` results for the report tests (``test_reproduce``, ``test_report_browser``)."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robustdistill.experiments.cli import reproduce as R

#: The method figures ``headlines=True`` adds (stored quick-grid bench result, analytic, analytic).
HEADLINE_NAMES = ("rad_active_curves", "weighted_weights", "slam_mixing")


def tiny_png(path: Path, inches: tuple[float, float] = (0.4, 0.3)) -> Path:
    """A PNG of a line, 40 x 30 px by default (100 dpi), drawn with matplotlib's Agg canvas (no pyplot, no
    global backend)."""
    fig = Figure(figsize=inches, dpi=100)
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1], [1, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _write_json(path: Path, value: dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")
    return str(path)


def _stored_inputs(out: Path) -> dict[str, dict[str, Any]]:
    """Per figure, the ``inputs`` of its data file; writes the stored results they name (verify.json with
    data/R1.json, and a quick-grid bench_active.json)."""
    _write_json(out / "verify.json", {"quick": True, "checks": []})
    active = {
        "benchmark": "active",
        "quick": True,
        "seeds": [0, 1],
        "rows": [{"dataset": d, "selector": s} for d in ("digits", "mnist1d") for s in ("rad", "margin")],
    }
    return {
        "fig_a": {"bench_active": "robustdistill.experiments.benchmarks.active.run(quick=True)"},
        "fig_b": {"R1": _write_json(out / "data" / "R1.json", {"curve": [1, 2]})},
        "rad_active_curves": {"bench_active": _write_json(out / "bench_active.json", active), "seeds": [0, 1]},
        "weighted_weights": {"weights": "distillation_weights", "num_classes": [10, 2]},
        "slam_mixing": {"mix": "slam.mix", "alphas": [0.6, 0.8]},
    }


def _figures(out: Path, headlines: bool) -> list[dict[str, Any]]:
    """Figure records as ``reproduce`` makes them (``_figure_record``), with real PNGs and data files."""
    inputs = _stored_inputs(out)
    sources = {"fig_a": "quick", "fig_b": "stored", "rad_active_curves": "stored"}
    names = ["fig_a", "fig_b", *(HEADLINE_NAMES if headlines else ())]
    records = []
    for name in names:
        png = tiny_png(out / "figures" / f"{name}.png", (4.0, 2.5) if name in HEADLINE_NAMES else (0.4, 0.3))
        pdf = out / "figures" / f"{name}.pdf"
        pdf.write_bytes(b"%PDF-1.4\n")
        data = _write_json(out / "figures" / f"{name}.json", {"figure": name, "inputs": inputs[name]})
        fig = types.SimpleNamespace(
            name=name, files=[png, pdf], data_path=Path(data), source=sources.get(name, "quick")
        )
        records.append(R._figure_record(fig, f"{name} <shows>"))
    return records


def _game_bench(out: Path, failing: bool) -> dict[str, Any]:
    """The ``game`` benchmark's record (``_bench_record``) from a small result: rows, a protocol, three targets
    (``speedup`` missed and ``cuda`` not measured when ``failing``)."""
    measured = {"solve_s": 0.29, "speedup": 3.0 if failing else 12.0, "cuda": None if failing else 2.5}
    targets = {
        "solve_s": {"description": "solve at 1e6", "bound": 0.5, "kind": "max", "measured": 0.29},
        "speedup": {"description": "LP speedup", "bound": 10.0, "kind": "min", "measured": measured["speedup"]},
        "cuda": {"description": "on CUDA", "bound": 2.0, "kind": "min", "measured": measured["cuda"]},
    }
    result = {
        "benchmark": "query_game",
        "seed": 0,
        "quick": False,
        "rows": [
            {"n": 10**4, "solve_s": 0.004, "note": "<small>", "gaps": [1e-16, 2e-16]},
            {"n": 10**6, "solve_s": 0.29, "note": "<fast>", "gaps": list(range(9))},
        ],
        "protocol": {"dtype": "float64", "repeats": 3},
        "targets": targets,
        "targets_met": {
            k: None if v is None else (v <= 0.5 if k == "solve_s" else v >= targets[k]["bound"])
            for k, v in measured.items()
        },
    }
    table = "size  seconds\n----  -------\n1e6   0.29 <fast>"
    return R._bench_record("game", result, table, out / "bench_game.json", {}, None)


def synthetic_result(
    out: Path, *, failing: bool = True, errored: bool = True, skipped: bool = False, headlines: bool = False
) -> dict[str, Any]:
    """A result dict as ``ReproduceResult.to_dict()`` makes it: two checks (P1 with a comparator; S9 without one,
    failing when ``failing``, its claim full of markup), the ``game`` benchmark with targets (one missed, one not
    measured when ``failing``), an errored step (``errored``), a skipped step (``skipped``), two figures with
    real PNGs (``fig_a`` a quick fallback) and, with ``headlines``, one per method."""
    checks = [
        {
            "name": "P1",
            "claim": "value <= V* & min-max",
            "bound": 1e-9,
            "measured": 1e-15,
            "interval": [0.0, 1e-15],
            "holds": True,
            "comparator": "<=",
        },
        {
            "name": "S9",
            "claim": "<script>alert('x')</script> | a pipe",
            "bound": 0.0,
            "measured": 1.0,
            "interval": [0.5, 1.5],
            "holds": not failing,
        },
    ]
    steps = [
        R.StepResult(
            "verify", "verify", "failed" if failing else "ok", 1.5, note="1 check(s) failed: S9" if failing else None
        ),
        R.StepResult("game", "bench", "ok", 2.0),
        R.StepResult(
            "distill",
            "bench",
            "error" if errored else "ok",
            0.1,
            error="RuntimeError: <boom> & co" if errored else None,
            traceback="Traceback ...\nRuntimeError: <boom>" if errored else None,
        ),
        R.StepResult("figures", "figures", "ok", 3.0),
    ]
    if skipped:
        reason = "the Fashion-MNIST files are missing (apt-get install dataset-fashion-mnist)"
        steps.insert(3, R.StepResult("realdata", "bench", "skipped", 0.2, note=reason))
    benchmarks = {"game": _game_bench(out, failing)}
    if not errored:
        benchmarks["distill"] = {
            "description": "distill",
            "json": str(out / "bench_distill.json"),
            "table": "t",
            "targets": None,
            "targets_met": None,
            "seconds": 0.1,
            "options": {},
            "note": None,
        }
    result = R.ReproduceResult(
        out=str(out),
        full=False,
        seed=0,
        command="robustdistill reproduce --out 'a b'",
        started_utc="2025-01-01T00:00:00+00:00",
        seconds=6.6,
        steps=tuple(steps),
        checks=tuple(checks),
        benchmarks=benchmarks,
        figures=tuple(_figures(out, headlines)),
        environment={
            "python": "3.12.0",
            "platform": "Linux",
            "cpu_count": 2,
            "versions": {"numpy": "2.0", "torch": None},
        },
    )
    return result.to_dict()
