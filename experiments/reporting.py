"""Small pure helpers for writing results: atomic files and JSON, environment stamps and plain-text tables."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import numbers
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from robustdistill.algorithms.results import to_jsonable

__all__ = [
    "environment_info",
    "evaluate_targets",
    "format_table",
    "format_targets",
    "format_value",
    "write_atomic",
    "write_json_atomic",
]

_PACKAGES = ("numpy", "scipy", "cvxpy", "highspy", "torch", "robustdistill")


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Files are created with the mode ``open()`` would give them (``mkstemp`` alone makes them 0600).
_FILE_MODE = 0o666 & ~_read_umask()


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Write a file atomically and return its path: parent folders are created, ``write(fh)`` fills a
    temporary binary file in the same folder, which is flushed and fsync'ed, then ``os.replace``'d over
    ``path``: a reader sees the old file or the new one, never a part (the temporary file is removed on
    failure). The file gets the usual mode (0666 less the umask), not ``mkstemp``'s 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.chmod(tmp, _FILE_MODE)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as JSON (UTF-8) to ``path`` atomically (:func:`write_atomic`) and return the path.
    numpy scalars and arrays are converted with :func:`~robustdistill.algorithms.results.to_jsonable`."""
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=True) + "\n"
    return write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment_info() -> dict[str, Any]:
    """What produced a result: Python, platform, package versions (None if absent), CPUs, UTC time."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "versions": {name: _version(name) for name in _PACKAGES},
        "cpu_count": os.cpu_count(),
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


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
    return bool(present) and all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in present
    )


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table of ``rows`` restricted to ``columns`` (missing cells print as ``-``).

    Text columns are left-aligned, numeric columns right-aligned; a header and a rule line come first.
    """
    cells = [[format_value(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[j]) for r in cells]) for j, col in enumerate(columns)]
    numeric = [_is_numeric_column([row.get(col) for row in rows]) for col in columns]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)
        ]
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
    """The command line every benchmark module shares, ``python -m robustdistill.experiments.MODULE``:
    ``--quick`` (helped by ``quick_help``), ``--json F`` and ``--quiet``; the module adds its own options.
    ``description``: the module docstring (its first line is used)."""
    parser = argparse.ArgumentParser(prog=f"python -m robustdistill.experiments.{module}",
                                     description=description.split("\n")[0])  # fmt: skip
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
