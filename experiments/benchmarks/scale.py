r"""Benchmark of selection at scale: RAD's selection (and margin sampling) over memory-mapped pools of 10^7 and
10^8 points with :func:`robustdistill.experiments.distributed.select_sharded`, read in chunks on one machine,
against the same pool cut into pieces of 10^6 points each selected in memory by the single-process
:func:`robustdistill.algorithms.selection.select`.

Protocol. The pool is written once to a ``.npy`` file (``(n, 10)`` float32 student probabilities,
``softmax(3 N(0, 1))`` rows drawn chunk by chunk from ``default_rng([seed, n, chunk])``) in ``workdir``
(a temporary folder by default, removed afterwards). Every measurement runs in a fresh interpreter
(``subprocess``), so its peak resident memory is its own: ``VmHWM`` of ``/proc/self/status``, which counts the
mapped file's pages the process holds (``ru_maxrss`` would also carry the launcher's peak across ``exec``). The
interpreter's resident memory after its imports (numpy, torch) is reported beside it.

- ``sharded``: ``select_sharded(np.load(path, mmap_mode="r"), b, m, rng=seed)`` with ``b = n / 1000`` and
  ``m = b / 10``: the exact game on the whole pool (module
  :mod:`robustdistill.experiments.distributed.selection`), one process, the file read ``2^18`` rows at a time.
- ``pieces``: the baseline, the same total work done the way one would without sharding: the pool cut into
  ``n / 10^6`` pieces, each read from the file into memory and selected with
  ``select(piece, b / pieces, m / pieces)``;
  the time is the sum over the pieces (copies included), the memory the largest piece's.
- ``margin``: ``select_sharded(..., selector="margin")``, the exact top-b of the pool.

``ratio`` = sharded seconds / pieces seconds. At the smallest size the sharded probabilities are also compared
with the single-process ``select`` on the whole pool in memory (``max_abs_diff``).

Sharded teacher labeling: the rows per second per rank of
:func:`~robustdistill.experiments.pipeline.labeling.label_pool` on 1 and 2 CPU ranks against ``predict_probs`` on
the pool in memory (:mod:`robustdistill.experiments.benchmarks.labeling`, its protocol).

Targets: at 10^8 points the sharded selection's peak resident memory is at most 2 GB and its time at most 1.5
times the pieces' (None when 10^8 is not run, e.g. ``quick``).

Run it as ``robustdistill bench scale`` or ``python -m robustdistill.experiments.benchmarks.scale [--quick]
[--workdir DIR]``; the 10^8 pool takes 4 GB of disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from robustdistill.algorithms.validation import check_int

from ..pipeline.files import environment_info
from .labeling import run as labeling_run
from .labeling import table as labeling_table
from .reporting import (
    bench_parser,
    evaluate_targets,
    finish_bench,
    format_markdown_table,
    format_table,
    format_targets,
    format_value,
)

__all__ = ["DEFAULT_SIZES", "QUICK_SIZES", "TARGETS", "main", "page", "run", "table", "write_pool"]

DEFAULT_SIZES = (10**7, 10**8)
QUICK_SIZES = (10**5, 10**6)
#: Rows of a piece of the baseline (quick: a tenth of it).
PIECE, QUICK_PIECE = 10**6, 10**5
NUM_CLASSES = 10
#: Largest pool also selected whole in memory to compare the probabilities.
EXACT_MAX_N = 10**7
GB = 1e9

TARGETS: dict[str, tuple[str, float, str]] = {
    "peak_rss_1e8_gb": (
        "sharded RAD selection of a memory-mapped 10^8 x 10 pool: peak resident memory, GB",
        2.0,
        "max",
    ),
    "time_ratio_1e8": (
        "sharded RAD selection at 10^8: seconds / seconds of 100 in-memory selections of 10^6",
        1.5,
        "max",
    ),
}

#: Runs in a fresh interpreter: ``python -c MEASURE MODE PATH N BUDGET MISTAKES SEED PIECE`` prints one JSON line.
MEASURE = r"""
import json, sys, time, warnings
import numpy as np
from robustdistill.algorithms.selection import NearUniformWarning, select
from robustdistill.experiments.benchmarks.reporting import peak_rss_bytes as rss
from robustdistill.experiments.distributed import select_sharded
warnings.simplefilter("ignore", NearUniformWarning)
mode, path, n, b, m, seed, piece = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
out = {"mode": mode, "rss_after_imports": rss()}
pool = np.load(path, mmap_mode="r")
started = time.perf_counter()
if mode == "sharded":
    sel = select_sharded(pool, b, m, rng=seed)
    out.update(support=sel.diagnostics["support_size"], chosen=int(sel.indices.size))
elif mode == "margin":
    out.update(chosen=int(select_sharded(pool, b, rng=seed, selector="margin").indices.size))
elif mode == "pieces":
    pieces = n // piece
    row_bytes = pool.shape[1] * pool.dtype.itemsize
    for i in range(pieces):  # read from the file (not through the map): only the piece is resident
        chunk = np.fromfile(path, pool.dtype, piece * pool.shape[1], offset=pool.offset + i * piece * row_bytes)
        chunk = chunk.reshape(piece, pool.shape[1])
        select(chunk, b // pieces, m // pieces, rng=seed * 100003 + i)
        del chunk
elif mode == "exact":
    sharded = select_sharded(pool, b, m, rng=seed).probabilities.copy()
    whole = select(np.array(pool), b, m, rng=seed).probabilities
    out.update(max_abs_diff=float(np.abs(sharded - whole).max()))
out.update(seconds=time.perf_counter() - started, peak_rss=rss())
print(json.dumps(out))
"""


def write_pool(path: str | os.PathLike[str], n: int, seed: int = 0, *, chunk: int = 10**6) -> Path:
    """Write an ``(n, 10)`` float32 ``.npy`` pool of student probabilities, ``softmax(3 N(0, 1))`` rows drawn
    ``chunk`` rows at a time from ``default_rng([seed, n, i])`` (never the whole pool in memory)."""
    n = check_int(n, "n", low=1)
    path = Path(path)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, NUM_CLASSES))
    for i, start in enumerate(range(0, n, chunk)):
        rows = min(chunk, n - start)
        z = 3.0 * np.random.default_rng([seed, n, i]).standard_normal((rows, NUM_CLASSES))
        e = np.exp(z - z.max(axis=1, keepdims=True))
        out[start : start + rows] = e / e.sum(axis=1, keepdims=True)
    out.flush()
    del out
    return path


def _measure(mode: str, path: Path, n: int, budget: int, mistakes: int, seed: int, piece: int) -> dict[str, Any]:
    args = [mode, str(path), str(n), str(budget), str(mistakes), str(seed), str(piece)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the {mode} measurement at n = {n} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(
    seed: int = 0,
    quick: bool = False,
    progress: bool | None = None,
    *,
    sizes: Sequence[int] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    labeling: bool = True,
) -> dict[str, Any]:
    """Measure every size and return a JSON-ready dict.

    Args:
        seed: seeds the pools and the selections.
        quick: sizes 10^5, 10^6 with pieces of 10^5 (seconds), unless ``sizes`` is given.
        progress: a tqdm bar on stderr; None = only when stderr is a terminal.
        sizes: pool sizes (default 10^7, 10^8), multiples of the piece size.
        workdir: where the pool files are written (and removed afterwards); default a temporary folder.
        labeling: also measure the sharded teacher labeling's rows/s per rank on 1 and 2 CPU ranks
            (:mod:`robustdistill.experiments.benchmarks.labeling`, at its default or quick sizes).

    Returns:
        ``{"benchmark", "rows", "labeling", "targets", "targets_met", "protocol", "seed", "quick", "environment",
        "seconds"}`` (``labeling``: the labeling benchmark's result, or None); a row per (n, mode) with ``seconds``, ``peak_rss_gb``, ``rss_after_imports_gb`` and, for
        ``sharded``, ``ratio`` to the pieces and the game's ``support``.
    """
    seed = check_int(seed, "seed", low=0)
    piece = QUICK_PIECE if quick else PIECE
    sizes = tuple(check_int(n, "sizes", low=piece) for n in (sizes or (QUICK_SIZES if quick else DEFAULT_SIZES)))
    if any(n % piece for n in sizes):
        raise ValueError(f"sizes must be multiples of {piece:,} (the piece of the baseline), got {list(sizes)}")
    if progress is None:
        progress = sys.stderr.isatty()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    folder = Path(tempfile.mkdtemp(prefix="bench_scale_", dir=workdir))
    try:
        modes = [(n, mode) for n in sizes for mode in ("pieces", "sharded", "margin")]
        modes += [(min(sizes), "exact")] if min(sizes) <= EXACT_MAX_N else []
        bar = tqdm(total=len(modes), desc="bench scale", unit="run", disable=not progress, file=sys.stderr)
        for n in sizes:
            path = write_pool(folder / f"pool_{n}.npy", n, seed)
            budget = n // 1000
            mistakes = budget // 10
            for size, mode in modes:
                if size != n:
                    continue
                bar.set_postfix(n=f"{n:.0e}", mode=mode)
                out = _measure(mode, path, n, budget, mistakes, seed, piece)
                rows.append(
                    {
                        "n": n,
                        "mode": mode,
                        "b": budget,
                        "m": mistakes if mode != "margin" else None,
                        "seconds": out["seconds"],
                        "ratio": None,
                        "peak_rss_gb": out["peak_rss"] / GB,
                        "rss_after_imports_gb": out["rss_after_imports"] / GB,
                        "support": out.get("support"),
                        "max_abs_diff": out.get("max_abs_diff"),
                    }
                )
                bar.update(1)
            path.unlink()
        bar.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for row in rows:
        if row["mode"] == "sharded":
            base = next(r for r in rows if r["n"] == row["n"] and r["mode"] == "pieces")
            row["ratio"] = row["seconds"] / base["seconds"]
    at = {r["mode"]: r for r in rows if r["n"] == 10**8}
    measured = {
        "peak_rss_1e8_gb": at["sharded"]["peak_rss_gb"] if "sharded" in at else None,
        "time_ratio_1e8": at["sharded"]["ratio"] if "sharded" in at else None,
    }
    targets, met = evaluate_targets(TARGETS, measured)
    label_result = labeling_run(seed=seed, quick=quick, progress=False) if labeling else None
    return {
        "benchmark": "scale",
        "rows": rows,
        "labeling": label_result,
        "targets": targets,
        "targets_met": met,
        "protocol": {
            "pool": f"(n, {NUM_CLASSES}) float32 softmax(3 N(0, 1)), memory-mapped .npy",
            "budget": "n / 1000",
            "mistakes": "budget / 10",
            "piece": piece,
            "process": "one fresh interpreter per row, OMP_NUM_THREADS=1",
            "memory": "VmHWM of /proc/self/status (peak resident set of the measured process)",
        },
        "seed": seed,
        "quick": bool(quick),
        "environment": environment_info(),
        "seconds": time.perf_counter() - started,
    }


ROW_COLUMNS = [
    "n",
    "mode",
    "b",
    "m",
    "seconds",
    "ratio",
    "peak_rss_gb",
    "rss_after_imports_gb",
    "support",
    "max_abs_diff",
]


def table(result: dict[str, Any]) -> str:
    """The printed report: one row per (n, mode), then the targets."""
    return "\n".join(
        [
            f"scale benchmark: memory-mapped (n, {NUM_CLASSES}) float32 pools, one process per row, seed "
            f"{result['seed']}; pieces = the pool selected {result['protocol']['piece']:,} rows at a time in memory; "
            "ratio = sharded / pieces seconds",
            format_table(result["rows"], ROW_COLUMNS),
            "",
            format_table(format_targets(result), ["target", "bound", "measured", "met"]),
            *(["", labeling_table(result["labeling"])] if result.get("labeling") else []),
        ]
    )


def page(result: dict[str, Any]) -> str:
    """The results page (Markdown) of a run: the protocol, one row per (n, mode) and the targets."""
    env = result["environment"]
    rows = [[format_value(row[c]) for c in ROW_COLUMNS] for row in result["rows"]]
    targets = [[format_value(t[c]) for c in ("target", "bound", "measured", "met")] for t in format_targets(result)]
    return "\n".join(
        [
            "# Selection at scale: memory-mapped pools of 10^7 and 10^8 points",
            "",
            "Generated by `robustdistill bench scale` (`experiments/benchmarks/scale.py`; its docstring has the "
            "protocol) from the JSON beside this page. Do not edit by hand.",
            "",
            f"- Pools: {result['protocol']['pool']}; budget {result['protocol']['budget']}, mistakes "
            f"{result['protocol']['mistakes']}; {result['protocol']['process']}.",
            f"- `pieces`: the baseline, the pool selected {result['protocol']['piece']:,} rows at a time in memory "
            "by the single-process `select`; `sharded`: `select_sharded` on the whole memory-mapped pool (the exact "
            "game of the whole pool); `margin`: the exact top-b; `exact`: the sharded probabilities against `select` "
            "on the whole pool in memory (`max_abs_diff`).",
            f"- Peak memory: `{result['protocol']['memory']}`, beside the interpreter's after its imports.",
            f"- Seed {result['seed']}{' (quick smoke run, not a result)' if result.get('quick') else ''}; wall time "
            f"{result['seconds'] / 60:.1f} min on {env.get('cpu_count', '?')} CPU(s) ({env.get('platform', '')}).",
            "",
            format_markdown_table(ROW_COLUMNS, rows),
            "",
            "## Targets",
            "",
            format_markdown_table(["target", "bound", "measured", "met"], targets),
            "",
            *_labeling_page(result.get("labeling")),
        ]
    )


def _labeling_page(result: dict[str, Any] | None) -> list[str]:
    """The page's section on sharded teacher labeling (none when it was not measured)."""
    if not result:
        return []
    proto = result["protocol"]
    cases = [
        [
            format_value(c[k])
            for k in ("case", "ranks", "total_rows_per_s", "speedup", "max_peak_rss_MiB", "labels_equal")
        ]
        for c in result["cases"]
    ]
    per_rank = [
        [format_value(r[k]) for k in ("case", "ranks", "rank", "rows", "rows_per_s", "peak_rss_MiB")]
        for r in result["rows"]
    ]
    return [
        "## Sharded teacher labeling on CPU",
        "",
        f"{proto['pool']}; teacher {proto['teacher']}; shards of {proto['shard_rows']} rows, batch "
        f"{proto['batch_size']}, {proto['torch_threads_per_process']} torch thread(s) per process "
        "(`experiments/benchmarks/labeling.py` has the protocol). `in_memory` is the baseline: `predict_probs` "
        "on the pool loaded whole.",
        "",
        format_markdown_table(["case", "ranks", "rank", "rows", "rows_per_s", "peak_rss_MiB"], per_rank),
        "",
        format_markdown_table(
            ["case", "ranks", "total_rows_per_s", "speedup", "max_peak_rss_MiB", "labels_equal"], cases
        ),
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robustdistill.experiments.benchmarks.scale [--quick] [--workdir DIR] [--json F]``."""
    parser = bench_parser("scale", __doc__, "sizes 1e5, 1e6 with pieces of 1e5 (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="folder for the pool files (default: a temporary one)")
    args = parser.parse_args(argv)
    try:
        result = run(seed=args.seed, quick=args.quick, progress=False if args.quiet else None, workdir=args.workdir)
    except (ValueError, TypeError, RuntimeError, OSError) as exc:
        print(f"bench_scale: {exc}", file=sys.stderr)
        return 2
    return finish_bench(result, table(result), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
