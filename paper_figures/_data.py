"""Where a figure's numbers come from: stored results when they exist, else the quick experiment.

- Simulator curves: ``RESULTS/data/NAME.json``, written by ``robustdistill verify [--full] --out RESULTS``
  (the ``data`` of the check ``NAME``); the fallback runs that one check at its quick size with the stream
  ``verify`` gives it (seed 0), so the numbers are those of ``robustdistill verify``.
- Benchmarks: ``RESULTS/bench_TARGET.json``, written by ``robustdistill bench TARGET``; the fallback runs
  a quick version in a temporary folder (its outputs and teacher cache are removed afterwards).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robustdistill.algorithms.results import to_jsonable

__all__ = ["bench_result", "check_data"]


def _missing(path: Path, command: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{path} is missing (stored results only): run `{command}` first, or allow the quick experiment"
    )


def check_data(name: str, results: Path, quick: bool, seed: int = 0) -> tuple[dict[str, Any], str, str]:
    """The ``data`` of simulator check ``name``: ``(data, source, origin)``. Reads ``RESULTS/data/NAME.json``;
    when it is missing and ``quick``, runs the check at its quick size; else raises FileNotFoundError."""
    path = Path(results) / "data" / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text()), "stored", str(path)
    if not quick:
        raise _missing(path, f"robustdistill verify --out {results}")
    from robustdistill.algorithms.validation import check_rng
    from robustdistill.theory.simulators import CHECKS

    names = [c.name for c in CHECKS]
    if name not in names:
        raise ValueError(f"no simulator check named {name!r}; known: {', '.join(names)}")
    index = names.index(name)
    stream = check_rng(seed).spawn(len(CHECKS))[index]  # the child stream run_checks gives check `index`
    result = CHECKS[index].run(stream, CHECKS[index].quick)
    origin = (
        f"robustdistill.theory.simulators check {name} at its quick size (quick=True), seed {seed}, as "
        "`robustdistill verify`"
    )
    return to_jsonable(result.data), "quick", origin


def bench_result(
    target: str, results: Path, quick: bool, run_quick: Callable[[Path], dict[str, Any]], description: str
) -> tuple[dict[str, Any], str, str]:
    """A benchmark's result: ``(result, source, origin)``. Reads ``RESULTS/bench_TARGET.json``; when it is
    missing and ``quick``, calls ``run_quick(tmp)`` with a temporary folder for its outputs and cache (removed
    afterwards; ``description`` says what ran); else raises FileNotFoundError."""
    path = Path(results) / f"bench_{target}.json"
    if path.is_file():
        return json.loads(path.read_text()), "stored", str(path)
    if not quick:
        raise _missing(path, f"robustdistill bench {target} --out {results}")
    with tempfile.TemporaryDirectory(prefix="robustdistill-figures-") as tmp:
        result = run_quick(Path(tmp))
    return to_jsonable(result), "quick", description
