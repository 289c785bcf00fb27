"""Benchmark of sharded teacher labeling: rows per second per rank and peak memory of
:func:`~robustdistill.experiments.pipeline.labeling.label_pool` on a memory-mapped pool, against
:func:`~robustdistill.experiments.pipeline.training.predict_probs` on the same rows held in memory.

Protocol: a **synthetic** float32 pool ``(n, d)`` drawn from ``N(0, 1)`` with a numpy generator seeded with
``seed`` and saved as a ``.npy`` file in a temporary folder; the teacher is the registered ``mlp`` (hidden
layers ``hidden``, ``K`` classes, initial weights from ``seed``), run on the CPU in float32 (``amp="off"``) in
batches of ``batch_size``, on inputs normalised with ``mean = 0, std = 1`` (no statistics pass) in every case:

- ``in_memory`` (the baseline, one process): the whole pool loaded with ``np.load``, put into
  :class:`~robustdistill.experiments.pipeline.training.ResidentInputs` and labeled by ``predict_probs``;
- ``label_pool`` with ``R`` ranks for each ``R`` in ``ranks`` (``R`` processes in a gloo group): the pool read
  shard by shard (``shard_rows``) and the labels written into a memory-mapped ``(n, K)`` float32 file, with the
  per-shard records (digests of the input and output rows) of a resumable pass.

Each case runs in fresh processes (``spawn``), so that its peak resident set size is its own (``VmHWM`` on
Linux, else ``resource.getrusage``): ``rss_base_MiB`` is the resident set after the imports and the teacher,
before the case; ``peak_rss_MiB`` the peak over the whole process (imports included), per rank. ``rows_per_s``: the rows
one rank labeled over its labeling time (for ``label_pool``: reading, the teacher, writing and flushing its
shards); ``total_rows_per_s``: ``n`` over the case's wall time (the slowest rank, the group's set-up excluded).
Torch runs ``threads`` intra-op threads per process (default 1, so ``R`` ranks use ``R`` cores); the labels
of every ``label_pool`` case are checked equal to the baseline's. ``spawn=False`` runs the one-rank cases in
this process instead (seconds faster; the peak RSS is then the process's so far, and only ``ranks=(1,)``).

Run it as ``python -m robustdistill.experiments.benchmarks.labeling`` (``--quick`` for a seconds-long smoke run)
or ``robustdistill bench labeling``.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tqdm import tqdm

from robustdistill.algorithms.validation import check_flag, check_int

from ..pipeline.files import environment_info
from ..pipeline.labeling import label_pool
from ..pipeline.models import build_model
from ..pipeline.training import ResidentInputs, predict_probs
from .reporting import bench_parser, finish_bench, format_table, peak_rss_bytes

__all__ = ["DEFAULTS", "QUICK", "labeling_throughput", "run", "table"]

DEFAULTS: dict[str, Any] = {
    "n": 131072,
    "d": 256,
    "num_classes": 10,
    "hidden": (256, 256),
    "shard_rows": 16384,
    "batch_size": 1024,
    "ranks": (1, 2),
}
QUICK: dict[str, Any] = {
    "n": 4096,
    "d": 32,
    "num_classes": 10,
    "hidden": (64,),
    "shard_rows": 1024,
    "batch_size": 512,
    "ranks": (1, 2),
}
_MiB = 2**20


def _rss_bytes() -> int | None:
    """The current resident set size (Linux ``/proc/self/statm``); None elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _mib(value: int | None) -> float | None:
    return None if value is None else value / _MiB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _teacher(spec: dict[str, Any]) -> torch.nn.Module:
    return build_model("mlp", (spec["d"],), spec["num_classes"], seed=spec["seed"], hidden=tuple(spec["hidden"])).eval()


def _measure(rank: int, world: int, case: str, spec: dict[str, Any]) -> dict[str, Any]:
    """One rank of one case, in this process: its timings and memory."""
    model = _teacher(spec)
    base = _rss_bytes()
    if case == "in_memory":
        started = time.perf_counter()
        pool = np.load(spec["pool"])
        inputs = ResidentInputs(pool, "tabular", "cpu", mean=0.0, std=1.0)
        probs = predict_probs(model, inputs, batch_size=spec["batch_size"], amp="off")
        seconds = time.perf_counter() - started
        np.save(spec["reference"], probs)
        row = {"rows": len(probs), "rows_per_s": len(probs) / seconds, "seconds": seconds, "shards": None}
        del pool, inputs, probs
    else:
        out = Path(spec["folder"]) / f"labels_{world}.npy"
        result = label_pool(
            model,
            spec["pool"],
            out,
            shard_rows=spec["shard_rows"],
            batch_size=spec["batch_size"],
            device="cpu",
            mean=0.0,
            std=1.0,
            amp="off",
            overwrite=True,
            progress=False,
        )
        rows = sum(
            min(s + spec["shard_rows"], spec["n"]) - s
            for s in range(rank * spec["shard_rows"], spec["n"], world * spec["shard_rows"])
        )
        row = {
            "rows": rows,
            "rows_per_s": result.rank_rows_per_s[rank],
            "seconds": result.seconds,
            "shards": result.computed,
        }
    return {**row, "rank": rank, "rss_base_bytes": base, "peak_rss_bytes": peak_rss_bytes()}


def _worker(rank: int, world: int, port: int, case: str, spec: dict[str, Any], results: Any) -> None:
    torch.set_num_threads(spec["threads"])
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        results[rank] = _measure(rank, world, case, spec)
    finally:
        if world > 1:
            dist.destroy_process_group()


def _run_case(case: str, world: int, spec: dict[str, Any], spawn: bool) -> list[dict[str, Any]]:
    if not spawn:
        previous = torch.get_num_threads()
        torch.set_num_threads(spec["threads"])
        try:
            return [_measure(0, 1, case, spec)]
        finally:
            torch.set_num_threads(previous)
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(world, _free_port(), case, spec, results), nprocs=world, join=True)
        return [dict(results[r]) for r in range(world)]


def labeling_throughput(
    n: int = DEFAULTS["n"],
    *,
    d: int = DEFAULTS["d"],
    num_classes: int = DEFAULTS["num_classes"],
    hidden: Sequence[int] = DEFAULTS["hidden"],
    shard_rows: int = DEFAULTS["shard_rows"],
    batch_size: int = DEFAULTS["batch_size"],
    ranks: Sequence[int] = DEFAULTS["ranks"],
    threads: int = 1,
    seed: int = 0,
    spawn: bool = True,
    folder: str | os.PathLike[str] | None = None,
    progress: bool | None = False,
) -> dict[str, Any]:
    """Label a synthetic memory-mapped pool with a small MLP teacher on the CPU; see the module docstring.

    Args:
        n, d: the pool's rows and features (float32, ``n * d * 4`` bytes on disk).
        num_classes, hidden: the teacher MLP's classes ``K`` and hidden widths.
        shard_rows, batch_size: of :func:`~robustdistill.experiments.pipeline.labeling.label_pool`.
        ranks: the world sizes of the ``label_pool`` cases (each >= 1).
        threads: torch intra-op threads per process.
        seed: seeds the pool and the teacher's weights.
        spawn: each case in fresh processes (False: in this process, ``ranks`` must be ``(1,)``).
        folder: where the pool and the labels go (None: a temporary folder, removed after).
        progress: a tqdm bar over the cases on stderr; None: when stderr is a terminal.

    Returns:
        A JSON-ready dict with ``benchmark``, ``rows`` (one per case and rank: ``case``, ``ranks``, ``rank``,
        ``rows``, ``rows_per_s``, ``seconds``, ``rss_base_MiB``, ``peak_rss_MiB``), ``cases`` (one per case:
        ``total_rows_per_s``, ``speedup`` over ``in_memory``, ``max_peak_rss_MiB``, ``labels_equal``),
        ``protocol``, ``seed``, ``environment`` and ``seconds``.
    """
    n = check_int(n, "n", low=1)
    d = check_int(d, "d", low=1)
    num_classes = check_int(num_classes, "num_classes", low=2)
    shard_rows = check_int(shard_rows, "shard_rows", low=1)
    batch_size = check_int(batch_size, "batch_size", low=1)
    threads = check_int(threads, "threads", low=1)
    seed = check_int(seed, "seed", low=0)
    spawn = check_flag(spawn, "spawn")
    hidden = tuple(check_int(h, "hidden", low=1) for h in hidden)
    if isinstance(ranks, (str, bytes)) or not ranks:
        raise ValueError("ranks must be a non-empty sequence of world sizes, e.g. (1, 2)")
    ranks = tuple(check_int(r, "ranks", low=1) for r in ranks)
    if not spawn and ranks != (1,):
        raise ValueError(f"spawn=False runs in this process: ranks must be (1,), got {ranks}")
    if progress is None:
        progress = sys.stderr.isatty()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_labeling_") as scratch:
        where = Path(folder) if folder is not None else Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        pool_path = where / "pool.npy"
        pool = np.lib.format.open_memmap(pool_path, mode="w+", dtype=np.float32, shape=(n, d))
        gen = np.random.default_rng(seed)
        for start in range(0, n, 65536):
            stop = min(start + 65536, n)
            pool[start:stop] = gen.standard_normal((stop - start, d), dtype=np.float32)
        pool.flush()
        del pool
        spec = {
            "pool": str(pool_path),
            "reference": str(where / "reference.npy"),
            "folder": str(where),
            "n": n,
            "d": d,
            "num_classes": num_classes,
            "hidden": list(hidden),
            "shard_rows": shard_rows,
            "batch_size": batch_size,
            "threads": threads,
            "seed": seed,
        }
        cases = [("in_memory", 1)] + [("label_pool", r) for r in ranks]
        rows: list[dict[str, Any]] = []
        summary: list[dict[str, Any]] = []
        bar = tqdm(cases, desc="bench labeling", unit="case", disable=not progress, file=sys.stderr)
        for case, world in bar:
            bar.set_postfix(case=case, ranks=world)
            measured = _run_case(case, world, spec, spawn)
            equal = None
            if case == "label_pool":
                labels = np.load(where / f"labels_{world}.npy", mmap_mode="r")
                equal = bool(np.array_equal(labels, np.load(spec["reference"], mmap_mode="r")))
                del labels
            for m in measured:
                rows.append(
                    {
                        "case": case,
                        "ranks": world,
                        "rank": m["rank"],
                        "rows": m["rows"],
                        "rows_per_s": m["rows_per_s"],
                        "seconds": m["seconds"],
                        "rss_base_MiB": _mib(m["rss_base_bytes"]),
                        "peak_rss_MiB": _mib(m["peak_rss_bytes"]),
                    }
                )
            wall = max(m["seconds"] for m in measured)
            peaks = [m["peak_rss_bytes"] for m in measured if m["peak_rss_bytes"] is not None]
            summary.append(
                {
                    "case": case,
                    "ranks": world,
                    "total_rows_per_s": n / wall if wall > 0 else None,
                    "max_peak_rss_MiB": _mib(max(peaks)) if peaks else None,
                    "labels_equal": equal,
                }
            )
        bar.close()
    baseline = summary[0]["total_rows_per_s"]
    for s in summary:
        s["speedup"] = s["total_rows_per_s"] / baseline if s["total_rows_per_s"] and baseline else None
    return {
        "benchmark": "labeling",
        "rows": rows,
        "cases": summary,
        "protocol": {
            "pool": f"synthetic float32 N(0, 1), {n} x {d} ({n * d * 4 / _MiB:.1f} MiB), memory-mapped .npy",
            "teacher": f"mlp {d} -> {list(hidden)} -> {num_classes}, CPU, float32, mean 0 std 1",
            "n": n,
            "d": d,
            "num_classes": num_classes,
            "hidden": list(hidden),
            "shard_rows": shard_rows,
            "batch_size": batch_size,
            "ranks": list(ranks),
            "torch_threads_per_process": threads,
            "spawn": spawn,
            "statistic": "rows_per_s: a rank's rows over its labeling time; total_rows_per_s: n over the slowest "
            "rank's wall time; peak_rss: VmHWM of the process (imports included), rss_base: after the imports",
        },
        "seed": seed,
        "environment": environment_info(),
        "seconds": time.perf_counter() - started,
    }


def run(
    n: int | None = None,
    seed: int = 0,
    quick: bool = False,
    *,
    ranks: Sequence[int] | None = None,
    threads: int = 1,
    progress: bool | None = False,
) -> dict[str, Any]:
    """The registry's entry (``robustdistill bench labeling``): :func:`labeling_throughput` at the default sizes
    (:data:`DEFAULTS`), or the small ones of :data:`QUICK`; explicit arguments win."""
    sizes = dict(QUICK if quick else DEFAULTS)
    if n is not None:
        sizes["n"] = n
    if ranks is not None:
        sizes["ranks"] = tuple(ranks)
    result = labeling_throughput(**sizes, threads=threads, seed=seed, progress=progress)
    result["quick"] = bool(quick)
    return result


def table(result: dict[str, Any]) -> str:
    """The printed report: per case and rank rows/s and memory, then per case the totals and the speedup."""
    proto = result["protocol"]
    return "\n".join(
        [
            f"labeling benchmark: {proto['pool']}; teacher {proto['teacher']}; shards of {proto['shard_rows']} rows, "
            f"batch {proto['batch_size']}, {proto['torch_threads_per_process']} torch thread(s) per process, seed "
            f"{result['seed']}",
            format_table(
                result["rows"],
                ["case", "ranks", "rank", "rows", "rows_per_s", "seconds", "rss_base_MiB", "peak_rss_MiB"],
            ),
            "",
            format_table(
                result["cases"], ["case", "ranks", "total_rows_per_s", "speedup", "max_peak_rss_MiB", "labels_equal"]
            ),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robustdistill.experiments.benchmarks.labeling [--quick] [--n N] [--ranks R ...] [--json F]``."""
    parser = bench_parser("labeling", __doc__, f"{QUICK['n']} rows (seconds)")
    parser.add_argument("--n", type=int, default=None, help=f"pool rows (default {DEFAULTS['n']})")
    parser.add_argument("--ranks", type=int, nargs="+", default=None, help="world sizes (default 1 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        result = run(
            n=args.n,
            seed=args.seed,
            quick=args.quick,
            ranks=args.ranks,
            threads=args.threads,
            progress=None if not args.quiet else False,
        )
    except (ValueError, TypeError) as exc:
        print(f"bench_labeling: {exc}", file=sys.stderr)
        return 2
    return finish_bench(result, table(result), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
