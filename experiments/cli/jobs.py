"""The jobs behind the command line, shared by ``robustdistill verify`` / ``bench`` and ``robustdistill reproduce``:
run the simulators or a benchmark and write their JSON."""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..benchmarks import BENCHMARKS
from ..benchmarks.reporting import format_table
from ..pipeline.files import environment_info, write_json_atomic

__all__ = ["PROG", "run_bench", "run_verify", "verify_table"]

PROG = "robustdistill"
CLAIM_WIDTH = 60


def _shorten(text: str, width: int = CLAIM_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def run_verify(
    out: str | Path, *, full: bool = False, seed: int = 0, progress: bool = False, only: Sequence[str] | None = None
) -> tuple[dict[str, Any], Path]:
    """Run the simulators (``theory.simulators.run_checks``), write the curves behind a claim to
    ``OUT/data/NAME.json`` and everything else to ``OUT/verify.json``; return (that report, its path).
    Shared by ``robustdistill verify`` and ``robustdistill reproduce``."""
    from robustdistill.theory import simulators

    started = time.perf_counter()
    checks = simulators.run_checks(quick=not full, rng=seed, progress=progress, only=only)
    seconds = time.perf_counter() - started
    records = []
    for c in checks:
        record = c.to_dict()
        data = record.pop("data", None)
        if data is not None:  # the curves behind a claim, for paper_figures
            record["data_file"] = str(write_json_atomic(Path(out) / "data" / f"{c.name}.json", data))
        records.append(record)
    report = {
        "checks": records,
        "all_hold": all(bool(c.holds) for c in checks),
        "quick": not full,
        "only": None if only is None else list(only),
        "seed": seed,
        "environment": environment_info(),
        "seconds": seconds,
    }
    return report, write_json_atomic(Path(out) / "verify.json", report)


def verify_table(records: Sequence[dict[str, Any]]) -> str:
    """The text table of ``verify``: one row per check record (claims shortened to one line)."""
    rows = [
        {
            "check": r["name"],
            "claim": _shorten(str(r["claim"])),
            "bound": r["bound"],
            "measured": r["measured"],
            "interval": r["interval"],
            "holds": r["holds"],
        }
        for r in records
    ]
    return format_table(rows, ["check", "claim", "bound", "measured", "interval", "holds"])


def run_bench(
    target: str, out: str | Path, *, seed: int = 0, quick: bool = False, progress: bool = False, **overrides: Any
) -> tuple[dict[str, Any], str, Path]:
    """Run the benchmark ``target`` of :data:`~robustdistill.experiments.benchmarks.BENCHMARKS` and write ``OUT/bench_TARGET.json``; return (its
    result, its table, that path). The benchmark's own folders (``out``/``cache`` keyword arguments of its
    ``run`` with a default under ``reports/``, e.g. ``reports/distill``) move under ``OUT``, so finished seeds
    resume from there. ``overrides`` go to its ``run`` last. Shared by ``bench`` and ``reproduce``."""
    spec = BENCHMARKS[target]
    bench = spec.load()
    folders = {
        name: str(Path(out) / Path(p.default).name)
        for name, p in inspect.signature(bench.run).parameters.items()
        if name in ("out", "cache") and isinstance(p.default, str) and p.default.startswith("reports/")
    }
    result = bench.run(seed=seed, quick=quick, progress=progress, **{**folders, **spec.options, **overrides})
    return result, bench.table(result), write_json_atomic(Path(out) / f"bench_{target}.json", result)
