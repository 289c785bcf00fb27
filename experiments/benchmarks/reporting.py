"""Plain-text tables of results, performance targets, the command line and the peak-memory reading shared by the
benchmarks."""

from __future__ import annotations

import argparse
import numbers
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..pipeline.files import write_json_atomic

__all__ = [
    "bench_parser",
    "evaluate_targets",
    "finish_bench",
    "format_markdown_table",
    "markdown_cell",
    "format_table",
    "format_targets",
    "format_value",
    "peak_rss_bytes",
]


def format_value(value: Any) -> str:
    """One table cell: floats as ``%.6g``, sequences as ``[a, b]``, booleans as yes/no, None as ``-``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if value is None:
        return "-"
    return str(value)


def _is_numeric_column(values: Sequence[Any]) -> bool:
    """True when every non-None value is a real number (not a bool) and there is at least one."""
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in present)


def markdown_cell(value: Any) -> str:
    """One Markdown table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def format_markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown (GitHub) table: ``header`` and one line per row of cells (each printed with ``str``)."""
    lines = ["| " + " | ".join(markdown_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table of ``rows`` restricted to ``columns`` (missing cells print as ``-``).

    Text columns are left-aligned, numeric columns right-aligned; a header and a rule line come first.
    """
    cells = [[format_value(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[j]) for r in cells]) for j, col in enumerate(columns)]
    numeric = [_is_numeric_column([row.get(col) for row in rows]) for col in columns]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def evaluate_targets(
    targets: dict[str, tuple[str, float, str]], measured: dict[str, float | None]
) -> tuple[dict[str, dict[str, Any]], dict[str, bool | None]]:
    """A benchmark's ``targets`` (name -> {"description", "bound", "kind", "measured"}) and ``targets_met``
    (name -> bool, or None when nothing measured it) from its TARGETS (name -> (description, bound,
    "max" | "min")) and the measured values."""
    out: dict[str, dict[str, Any]] = {}
    met: dict[str, bool | None] = {}
    for name, (description, bound, kind) in targets.items():
        value = measured.get(name)
        met[name] = None if value is None else bool(value <= bound if kind == "max" else value >= bound)
        out[name] = {"description": description, "bound": bound, "kind": kind, "measured": value}
    return out, met


def format_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``target, bound, measured, met`` for :func:`format_table` from a benchmark result holding
    ``targets`` (name -> {"kind": "max" | "min", "bound", "measured"}) and ``targets_met``."""
    return [
        {
            "target": name,
            "bound": ("<= " if t["kind"] == "max" else ">= ") + f"{t['bound']:.6g}",
            "measured": t["measured"],
            "met": result["targets_met"][name],
        }
        for name, t in result["targets"].items()
    ]


def bench_parser(module: str, description: str, quick_help: str) -> argparse.ArgumentParser:
    """The command line every benchmark module shares, ``python -m robustdistill.experiments.benchmarks.MODULE``:
    ``--quick`` (helped by ``quick_help``), ``--json F`` and ``--quiet``; the module adds its own options.
    ``description``: the module docstring (its first line is used)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m robustdistill.experiments.benchmarks.{module}", description=description.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", default=None, help="also write the result to this JSON file (atomically)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def finish_bench(result: dict[str, Any], text: str, json_path: str | None) -> int:
    """A benchmark module's last step: print its table ``text`` and, when ``json_path`` is given, write
    ``result`` there atomically; returns the exit code 0."""
    print(text)
    if json_path:
        write_json_atomic(json_path, result)
    return 0


def peak_rss_bytes() -> int | None:
    """The process's peak resident set size: ``VmHWM`` of ``/proc/self/status`` on Linux (the high-water mark of
    this process image only: ``getrusage``'s ``ru_maxrss`` carries the parent's peak over a fork and exec, so a
    spawned worker would report its launcher's), else ``resource.getrusage``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Unix
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024
