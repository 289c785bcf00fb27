r"""Benchmark of the selectors (``robustdistill.algorithms.selection.SELECTORS``): one selection round's wall
time at pool sizes 10^4, 10^5, 10^6 with K = 10 classes, every registered selector in one run, beside margin
sampling in a peer library (scikit-activeml) timed on the same pools in a separate interpreter.

Protocol (``docs/theory/rad.md#rad-performance``): one CPU core (the process is pinned with ``os.sched_setaffinity`` to ``cpu``,
default core 0, and restored afterwards; BLAS/OpenMP pools are limited to one thread with threadpoolctl when it
is installed, and torch to one intra-op thread when the caller has already imported it; the benchmark itself
never imports torch), float64, per (selector, n) one warm-up call, then ``repeats`` (3) timed calls
(``time.perf_counter``), each with a fresh ``np.random.default_rng([seed, n, call])`` made outside the timed
region; the best (minimum) and the median are reported, and ``vs_random`` = best / best of ``random`` at the
same n. A selector's call is the whole public call, input validation included.

Instances (our choice, seeded per size with ``np.random.default_rng([seed, n])``):

- student probabilities (n, 10): ``softmax(3 * N(0, 1))`` of float64 logits;
- embeddings (n, 64) float64 (the dtype the selectors compute in): ``3 * mu[argmax] + N(0, I)``, one Gaussian
  mean ``mu ~ N(0, I)`` per predicted class; ``center_embeddings``: ``b`` more points drawn the same way (the
  labeled set, coreset's initial centers);
- budget ``b = 1000`` (quick: 100) and mistakes ``m = n // 10`` (RAD's ``mistakes``);
- ``clusters`` for cluster_margin: ``cluster_assignments(embeddings, b)`` (HAC on <= 5,000 points, every point
  to its nearest centroid). The active loop computes it once per run, so cluster_margin is timed per round with the
  clusters precomputed and ``cluster_assignments`` is its own row.

Every selector in ``SELECTORS`` at run time is timed (new ones are included automatically) and gets the same
keyword arguments (``mistakes``, ``embeddings``, ``center_embeddings``, and ``clusters`` at n <= 10^5; each uses
what its rule needs). ``coreset``, ``cluster_margin`` and ``badge`` (and ``cluster_assignments``) are O(n b) or
worse and run at n <= 10^5 only (``docs/theory/rad.md#rad-baselines``).

Peer (``peer_python``): an interpreter of a separate environment that has the peer library; this module never
imports it. A snippet (:data:`PEER_SNIPPET`) runs there in a subprocess on the same probabilities (handed over as
a temporary ``.npy`` file), times the library's margin sampling with the same protocol and prints best/median
seconds, the library's version and its picks as JSON; the row ``peer:<library> margin`` notes whether the picks
equal the ``margin`` selector's. ``scikit-activeml``: ``UncertaintySampling(method="margin_sampling").query``
with a classifier whose ``predict_proba`` returns its input, the fixed probabilities (``fit_clf=False``, every
point unlabeled). Its ``simple_batch`` takes the b points one at a time, each an argmax over the pool, and keeps a
(b, n) float64 copy of the utilities: O(n b) time and 8 bytes * n * b memory (8 GB at n = 10^6, b = 1000).
``numpy``: a reference implementation inside the snippet (partition margin, ``argpartition`` top-b) that exists
to test the subprocess plumbing with any interpreter; it is not a peer library. ``make bench-selection`` makes a
temporary venv with the peer, runs this benchmark with it and removes the venv.

Target: RAD's full select (``informativeness -> solve_query_game -> depround``) at n = 10^6, K = 10 on one core
in at most 1 s (None when 10^6 is not run, e.g. ``quick``).

Run it as ``python -m robustdistill.experiments.benchmarks.selection [--peer-python PATH]`` or ``robustdistill bench
selection`` (no peer).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from robustdistill.algorithms.selection import SELECTORS, cluster_assignments
from robustdistill.algorithms.validation import check_int

from ..pipeline.files import environment_info
from .reporting import bench_parser, evaluate_targets, finish_bench, format_table, format_targets

__all__ = [
    "DEFAULT_SIZES",
    "PEER_LIBRARIES",
    "PEER_SNIPPET",
    "QUICK_SIZES",
    "TARGETS",
    "make_pool",
    "one_core",
    "run",
    "run_peer",
    "table",
]

#: name -> (description, bound, "max" or "min").
TARGETS: dict[str, tuple[str, float, str]] = {
    "rad_select_1e6_s": ("RAD select (gains -> game -> DepRound), n = 10^6, K = 10, one core, seconds", 1.0, "max"),
}

DEFAULT_SIZES = (10**4, 10**5, 10**6)
QUICK_SIZES = (10**3, 10**4)
DEFAULT_BUDGET, QUICK_BUDGET = 1000, 100
NUM_CLASSES, EMBEDDING_DIM = 10, 64
#: Selectors that are O(n b) or worse: timed at n <= this only (``docs/theory/rad.md#rad-baselines``).
QUADRATIC = frozenset({"coreset", "cluster_margin", "badge", "cluster_assignments"})
MAX_QUADRATIC_N = 10**5
#: The peer libraries the snippet knows (the distribution name) -> what is timed (the table's footer).
PEER_LIBRARIES = {
    "scikit-activeml": "UncertaintySampling(method='margin_sampling').query, fixed-probability classifier",
    "numpy": "reference implementation in the snippet (tests the subprocess plumbing; not a peer library)",
}

#: Runs in the peer's interpreter: ``python -c PEER_SNIPPET LIBRARY PROBS.npy BUDGET REPEATS`` prints JSON
#: ``{"library", "version", "best_s", "median_s", "indices"}``; ``python -c PEER_SNIPPET LIBRARY --version``
#: prints ``{"library", "version"}``. numpy and the peer library only (robustdistill is not installed there).
PEER_SNIPPET = r'''
import json, statistics, sys, time
from importlib import metadata
import numpy as np


def numpy_margin(p, b):
    def query(call):
        def top_b():
            top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
            gains = 1.0 - (top2[:, 1] - top2[:, 0])
            return np.argpartition(-gains, b - 1)[:b]
        return top_b
    return query


def skactiveml_margin(p, b):
    from skactiveml.base import SkactivemlClassifier
    from skactiveml.pool import UncertaintySampling

    class FixedProbabilities(SkactivemlClassifier):
        """The pool's features are the student's probabilities: predict_proba(X) = X."""

        def fit(self, X, y, sample_weight=None):
            return self

        def predict_proba(self, X):
            return X

    y = np.full(p.shape[0], np.nan)  # every point unlabeled: all are candidates
    clf = FixedProbabilities(classes=np.arange(p.shape[1]))

    def query(call):
        strategy = UncertaintySampling(method="margin_sampling", random_state=call)
        return lambda: strategy.query(p, y, clf, fit_clf=False, batch_size=b)
    return query


library = sys.argv[1]
make_query = {"numpy": numpy_margin, "scikit-activeml": skactiveml_margin}[library]
out = {"library": library, "version": metadata.version(library)}
if sys.argv[2] != "--version":
    p = np.load(sys.argv[2])
    b, repeats = int(sys.argv[3]), int(sys.argv[4])
    query, times = make_query(p, b), []
    for call in range(1 + repeats):  # call 0 is the warm-up
        fn = query(call)
        start = time.perf_counter()
        indices = fn()
        times.append(time.perf_counter() - start)
    out.update(best_s=min(times[1:]), median_s=statistics.median(times[1:]),
               indices=sorted(int(i) for i in np.asarray(indices).ravel()))
print(json.dumps(out))
'''


def make_pool(n: int, budget: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The instance of size ``n``: ``probs`` (n, 10), ``embeddings`` (n, 64), ``center_embeddings``
    (budget, 64), all float64, from ``np.random.default_rng([seed, n])`` (module docstring)."""
    rng = np.random.default_rng([int(seed), int(n)])
    logits = 3.0 * rng.standard_normal((n, NUM_CLASSES))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    means = rng.standard_normal((NUM_CLASSES, EMBEDDING_DIM))
    embeddings = 3.0 * means[probs.argmax(axis=1)] + rng.standard_normal((n, EMBEDDING_DIM))
    centers = 3.0 * means[rng.integers(NUM_CLASSES, size=budget)] + rng.standard_normal((budget, EMBEDDING_DIM))
    return {"probs": probs, "embeddings": embeddings, "center_embeddings": centers}


@contextlib.contextmanager
def one_core(cpu: int | None) -> Iterator[dict[str, Any]]:
    """For the block: pin this process to CPU ``cpu`` (None: leave the affinity), one BLAS/OpenMP thread
    (threadpoolctl, when installed) and one torch thread (only when torch is already imported); everything is
    restored afterwards. Yields what was done: ``{"cpu", "pinned", "previous", "threadpoolctl",
    "torch_threads"}``. Subprocesses started in the block inherit the pin. Where the OS has no
    ``sched_setaffinity`` the process is not pinned (``pinned`` False)."""
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS now, so that the thread limit below covers it too)

    info: dict[str, Any] = {"cpu": cpu, "pinned": False, "previous": None, "threadpoolctl": None, "torch_threads": None}
    torch = sys.modules.get("torch")
    with contextlib.ExitStack() as stack:
        if torch is not None:  # read and restored outside threadpoolctl's limit, which lowers torch's OpenMP count
            stack.callback(torch.set_num_threads, torch.get_num_threads())
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            previous = os.sched_getaffinity(0)
            if cpu not in previous:
                raise ValueError(f"cpu must be one of this process's CPUs {sorted(previous)}, got {cpu}")
            os.sched_setaffinity(0, {cpu})
            stack.callback(os.sched_setaffinity, 0, previous)
            info.update(pinned=True, previous=sorted(previous))
        try:
            from threadpoolctl import threadpool_info, threadpool_limits
        except ImportError:
            pass
        else:
            stack.enter_context(threadpool_limits(limits=1))
            info["threadpoolctl"] = [f"{lib['internal_api']}: {lib['num_threads']} thread" for lib in threadpool_info()]
        if torch is not None:
            torch.set_num_threads(1)
            info["torch_threads"] = 1
        yield info


def _time_calls(call: Callable[..., Any], n: int, seed: int, repeats: int) -> tuple[float, float, Any]:
    """One warm-up ``call(rng=...)``, then ``repeats`` timed calls, each with a fresh ``default_rng([seed, n,
    call])`` made before the clock starts; returns (best, median, last result)."""
    times = []
    for index in range(1 + repeats):
        rng = np.random.default_rng([seed, n, index])
        start = time.perf_counter()
        result = call(rng=rng)
        times.append(time.perf_counter() - start)
    return min(times[1:]), statistics.median(times[1:]), result


def run_peer(
    peer_python: str, probs: np.ndarray | None, budget: int, repeats: int, *, library: str = "scikit-activeml"
) -> dict[str, Any]:
    """Run :data:`PEER_SNIPPET` in ``peer_python`` with one BLAS/OpenMP thread: with ``probs``, time the
    library's margin top-``budget`` on them (``{"library", "version", "best_s", "median_s", "indices"}``); with
    ``probs=None`` only import it (``{"library", "version"}``). A failure raises ``RuntimeError`` with the
    peer's stderr."""
    if library not in PEER_LIBRARIES:
        raise ValueError(f"library must be one of {', '.join(PEER_LIBRARIES)}, got {library!r}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="rd-bench-selection-") as folder:
        args = ["--version"]
        if probs is not None:
            path = Path(folder) / "probs.npy"
            np.save(path, probs)
            args = [str(path), str(budget), str(repeats)]
        proc = subprocess.run(
            [peer_python, "-c", PEER_SNIPPET, library, *args], capture_output=True, text=True, env=env, check=False
        )
    if proc.returncode != 0:
        raise RuntimeError(f"peer {peer_python} ({library}) failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _row(selector: str, n: int, b: int, best: float, median: float, note: str = "") -> dict[str, Any]:
    return {"selector": selector, "n": n, "b": b, "best_s": best, "median_s": median, "vs_random": None, "note": note}


def _peer_row(
    peer: tuple[str, str], probs: np.ndarray, b: int, repeats: int, margin_picks: np.ndarray | None
) -> dict[str, Any]:
    """The peer's row at this size; its note says whether its picks equal the ``margin`` selector's."""
    out = run_peer(peer[0], probs, b, repeats, library=peer[1])
    same = margin_picks is not None and np.array_equal(np.sort(out["indices"]), np.sort(margin_picks))
    note = f"{out['library']} {out['version']}; same picks as margin: {'yes' if same else 'no'}"
    return _row(f"peer:{peer[1]} margin", probs.shape[0], b, out["best_s"], out["median_s"], note)


def _time_size(
    n: int, b: int, seed: int, repeats: int, peer: tuple[str, str] | None, bar: tqdm
) -> list[dict[str, Any]]:
    """The rows of one pool size: every selector, cluster_assignments (n <= 10^5) and the peer."""
    pool = make_pool(n, b, seed)
    probs = pool["probs"]
    kwargs: dict[str, Any] = {
        "mistakes": n // 10,
        "embeddings": pool["embeddings"],
        "center_embeddings": pool["center_embeddings"],
    }
    once: list[dict[str, Any]] = []
    if n <= MAX_QUADRATIC_N:  # computed first: cluster_margin needs the clusters; its row goes after the selectors
        bar.set_postfix(n=n, selector="cluster_assignments")
        assign = functools.partial(cluster_assignments, pool["embeddings"], b)
        best, median, kwargs["clusters"] = _time_calls(assign, n, seed, repeats)
        once.append(_row("cluster_assignments", n, b, best, median, "once per run: cluster_margin's clusters"))
    rows: list[dict[str, Any]] = []
    margin_picks = None
    for name, selector in SELECTORS.items():
        if name in QUADRATIC and n > MAX_QUADRATIC_N:
            continue
        bar.set_postfix(n=n, selector=name)
        best, median, selection = _time_calls(functools.partial(selector, probs, b, **kwargs), n, seed, repeats)
        margin_picks = selection.indices if name == "margin" else margin_picks
        rows.append(_row(name, n, b, best, median))
    rows.extend(once)
    if peer is not None:
        bar.set_postfix(n=n, selector=f"peer:{peer[1]}")
        rows.append(_peer_row(peer, probs, b, repeats, margin_picks))
    random_best = next((r["best_s"] for r in rows if r["selector"] == "random"), None)
    for row in rows:
        row["vs_random"] = None if random_best is None else row["best_s"] / random_best
    return rows


def run(
    seed: int = 0,
    quick: bool = False,
    progress: bool | None = None,
    *,
    sizes: Sequence[int] | None = None,
    budget: int | None = None,
    repeats: int = 3,
    cpu: int | None = 0,
    peer_python: str | None = None,
    peer_library: str = "scikit-activeml",
) -> dict[str, Any]:
    """Time every selector at every size and return a JSON-ready dict.

    Args:
        seed: seeds the pools (per size) and the selectors' rngs (per call).
        quick: sizes (10^3, 10^4) and b = 100 unless ``sizes``/``budget`` are given (a seconds-long smoke run).
        progress: a tqdm bar on stderr; ``None`` = only when stderr is a terminal.
        sizes: pool sizes (default 10^4, 10^5, 10^6); each at least ``budget``.
        budget: points per selection round (default 1000).
        repeats: timed calls after the warm-up.
        cpu: the CPU to pin to for the run; ``None`` leaves the affinity as it is.
        peer_python: the interpreter of an environment with the peer library; None: no peer rows.
        peer_library: ``"scikit-activeml"``, or ``"numpy"`` (the snippet's reference, for plumbing tests).

    Returns:
        ``{"benchmark", "rows", "targets", "targets_met", "protocol", "instances", "pinning", "peer", "seed",
        "quick", "loadavg", "environment", "seconds"}``.
    """
    sizes = tuple(check_int(n, "sizes", low=1) for n in (sizes or (QUICK_SIZES if quick else DEFAULT_SIZES)))
    budget = check_int(budget if budget is not None else (QUICK_BUDGET if quick else DEFAULT_BUDGET), "budget", low=1)
    if budget > min(sizes):
        raise ValueError(f"budget must be at most the smallest size {min(sizes)}, got {budget}")
    repeats = check_int(repeats, "repeats", low=1)
    seed = check_int(seed, "seed", low=0)
    if progress is None:
        progress = sys.stderr.isatty()
    peer, peer_info = None, None
    if peer_python is not None:  # import the library first: an unusable peer fails before any timing
        peer = (peer_python, peer_library)
        peer_info = {**run_peer(peer_python, None, budget, repeats, library=peer_library), "python": peer_python}
    loadavg_before = os.getloadavg()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with one_core(cpu) as pinning:
        bar = tqdm(sizes, desc="bench selection", unit="size", disable=not progress, file=sys.stderr)
        for n in bar:
            rows.extend(_time_size(n, budget, seed, repeats, peer, bar))
        bar.close()
    seconds = time.perf_counter() - started
    rad = next((r["best_s"] for r in rows if r["selector"] == "rad" and r["n"] == 10**6), None)
    targets, met = evaluate_targets(TARGETS, {"rad_select_1e6_s": rad})
    return {
        "benchmark": "selection",
        "rows": rows,
        "targets": targets,
        "targets_met": met,
        "protocol": {
            "dtype": "float64",
            "warmup_calls": 1,
            "repeats": repeats,
            "timer": "time.perf_counter",
            "statistics": "best (minimum) and median of the timed calls",
            "rng": "default_rng([seed, n, call])",
        },
        "instances": {
            "sizes": list(sizes),
            "budget": budget,
            "num_classes": NUM_CLASSES,
            "embedding_dim": EMBEDDING_DIM,
            "mistakes": "n // 10",
            "probs": "softmax(3 N(0, 1)) from default_rng([seed, n])",
            "embeddings": "3 mu[argmax] + N(0, I), float64",
            "center_embeddings": "budget points drawn alike",
            "quadratic_max_n": MAX_QUADRATIC_N,
            "quadratic": sorted(QUADRATIC),
        },
        "pinning": pinning,
        "peer": peer_info,
        "seed": seed,
        "quick": bool(quick),
        "loadavg": {"before": list(loadavg_before), "after": list(os.getloadavg())},
        "environment": environment_info(),
        "seconds": seconds,
    }


ROW_COLUMNS = ["selector", "n", "b", "best_s", "median_s", "vs_random", "note"]


def table(result: dict[str, Any]) -> str:
    """The printed report: the rows (per size), the notes on scope and peer, and the target."""
    pinning = result["pinning"]
    where = f"pinned to CPU {pinning['cpu']}" if pinning["pinned"] else "not pinned"
    protocol, instances = result["protocol"], result["instances"]
    peer = (
        f"peer: {result['peer']['library']} {result['peer']['version']}, {PEER_LIBRARIES[result['peer']['library']]}; "
        f"run by {result['peer']['python']}"
        if result["peer"]
        else "peer rows absent: run `make bench-selection` (a temporary venv with scikit-activeml) or "
        "`python -m robustdistill.experiments.benchmarks.selection --peer-python PATH`"
    )
    return "\n".join(
        [
            f"selection benchmark: K = {NUM_CLASSES}, float64, best and median of {protocol['repeats']} after 1 "
            f"warm-up, {where}, seed {result['seed']}; load average before/after "
            f"{result['loadavg']['before'][0]:.2f}/{result['loadavg']['after'][0]:.2f}",
            format_table(result["rows"], ROW_COLUMNS),
            f"{', '.join(instances['quadratic'])}: n <= {instances['quadratic_max_n']:,} only (O(n b) or worse). "
            "vs_random = best_s / best_s of random at the same n.",
            peer,
            "",
            format_table(format_targets(result), ["target", "bound", "measured", "met"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robustdistill.experiments.benchmarks.selection [--quick] [--cpu N] [--peer-python PATH] [--json F]``."""
    parser = bench_parser("selection", __doc__, "sizes 1e3, 1e4 and b = 100 (seconds)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the warm-up (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=0, help="the one CPU to pin the process to (default 0)")
    parser.add_argument("--peer-python", default=None, metavar="PATH", help="interpreter of a venv with the peer")
    parser.add_argument("--peer-library", choices=sorted(PEER_LIBRARIES), default="scikit-activeml")
    args = parser.parse_args(argv)
    try:
        result = run(
            seed=args.seed,
            quick=args.quick,
            progress=False if args.quiet else None,
            repeats=args.repeats,
            cpu=args.cpu,
            peer_python=args.peer_python,
            peer_library=args.peer_library,
        )
    except (ValueError, TypeError, RuntimeError, OSError) as exc:
        print(f"bench_selection: {exc}", file=sys.stderr)
        return 2
    return finish_bench(result, table(result), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
