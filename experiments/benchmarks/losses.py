"""Benchmark of the per-example losses (``robustdistill.algorithms.losses``) and of the teacher-accuracy fit.

Protocol (losses): float32, every loss through its public function with the default ``validate=True``
(as a training loop calls it), one forward + backward per call: ``fn(z).mean().backward()`` on a fresh
leaf ``z`` (``requires_grad=True``). Per device and shape each loss is called once to warm up, then the
losses are timed **interleaved**, one call each per round, for ``repeats`` rounds, and the best (minimum)
wall time of each is reported (``time.perf_counter``; on CUDA with ``torch.cuda.synchronize()`` before the
start and after the backward). Interleaving makes a slow phase of the machine hit every loss alike, and
the order rotates by one place per round so that no loss always runs first (after another loss has
flushed the caches); the ratio column is ``best(loss) / best(soft_cross_entropy)`` on the same device and
shape. The torch thread
count is left as it is (``threads=None``) and recorded; ``threads=[1, 2]`` measures every case at each count
(set for the run, restored after).

Instances (our choice, seeded per shape): logits ``3 * N(0, 1)``, teacher probabilities
``softmax(2 * N(0, 1))``, ``alpha ~ U[0.6, 1]``, weights ``~ U[0, 2]``, all drawn from a CPU
``torch.Generator`` seeded with ``seed`` and moved to the device. Losses timed:

- ``soft_cross_entropy`` (the reference), ``kd_loss`` at temperature 2 (so the division is timed);
- ``weighted``: ``weights * soft_cross_entropy``, i.e. the mean of ``w_i * l_i`` (weighted distillation);
- ``slam_loss[index]``: (2') with the top-2 set precomputed as (n, 2) class indices on the device
  (``teacher_topk_index``; the training pipeline computes it once per pool, ``docs/theory/slam.md#slam-procedure``);
  ``slam_loss[mask]``: the same set as a precomputed bool (n, K) mask, which each call scans;
  ``slam_loss[k=2]``: the set found from ``k`` on every call (a ``torch.topk`` per call);
- ``forward_corrected_loss`` and ``backward_corrected_loss`` with ``T = 0.9 I + 0.1 (11^T - I)/(K - 1)``;
  the functional backward loss inverts T (float64, with its condition check) on every call, so
  ``BackwardCorrectedLoss`` (T^-1 computed once) is timed too;
- ``taylor_cross_entropy`` at order 2 on soft targets.

Targets: ``slam_loss[index]`` and ``weighted`` at most 1.5x ``soft_cross_entropy`` on every device, shape and
thread count measured.

Teacher-accuracy fit (``docs/theory/weighted.md#weighted-accuracy-fit``): ``fit_teacher_accuracy`` on ``n_v = 10^6`` validation points
with ``K = 10`` (teacher probabilities ``Dirichlet(0.3 * 1)``; the label equals the teacher's argmax with
probability ``0.3 + 0.65 * margin^0.7``, else it is uniform over the other classes), then ``predict`` on
another 10^6 points: best of ``min(repeats, 3)`` after one warm-up, fit and predict separately and together
(target: together under 1 s).

Run it as ``python -m robustdistill.experiments.benchmarks.losses`` (``--quick`` for a seconds-long smoke run).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from robustdistill.algorithms import losses as L
from robustdistill.algorithms.validation import check_int

from ..pipeline.files import environment_info
from .reporting import bench_parser, evaluate_targets, finish_bench, format_table, format_targets

__all__ = ["DEFAULT_SHAPES", "QUICK_SHAPES", "TARGETS", "loss_cases", "make_teacher_data", "run", "table"]

#: name -> (description, bound, "max" or "min").
TARGETS: dict[str, tuple[str, float, str]] = {
    "slam_ratio": ("slam_loss[index] / soft_cross_entropy time, worst device, shape, threads", 1.5, "max"),
    "weighted_ratio": ("weighted (w * soft CE) / soft_cross_entropy time, worst device, shape, threads", 1.5, "max"),
    "teacher_quality_s": ("fit_teacher_accuracy + predict at 10^6 points, seconds", 1.0, "max"),
}

#: The losses whose ratio has a target (row name -> target name).
RATIO_TARGETS = {"slam_loss[index]": "slam_ratio", "weighted": "weighted_ratio"}

DEFAULT_SHAPES: tuple[tuple[int, int], ...] = ((4096, 100), (1024, 1000))
QUICK_SHAPES: tuple[tuple[int, int], ...] = ((256, 10), (64, 100))
TEACHER_QUALITY_N = 10**6
QUICK_TEACHER_QUALITY_N = 10**4
TEACHER_QUALITY_K = 10


def _symmetric_transition(num_classes: int, accuracy: float = 0.9) -> torch.Tensor:
    """``T = a I + (1 - a)(11^T - I)/(K - 1)``: row-stochastic, well conditioned for a > 1/K."""
    off = (1.0 - accuracy) / (num_classes - 1)
    transition = torch.full((num_classes, num_classes), off, dtype=torch.float64)
    transition.fill_diagonal_(accuracy)
    return transition


def loss_cases(
    n: int, num_classes: int, device: torch.device | str = "cpu", seed: int = 0
) -> tuple[torch.Tensor, dict[str, Callable[[torch.Tensor], torch.Tensor]]]:
    """The logits and the timed losses at one shape: ``(logits (n, K), {name: z -> per-example loss})``."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + n * 1009 + num_classes)
    logits = (3.0 * torch.randn(n, num_classes, generator=gen)).to(device)
    teacher = torch.softmax(2.0 * torch.randn(n, num_classes, generator=gen), dim=1).to(device)
    alpha = (0.6 + 0.4 * torch.rand(n, generator=gen)).to(device)
    weights = (2.0 * torch.rand(n, generator=gen)).to(device)
    transition = _symmetric_transition(num_classes).to(device=device, dtype=torch.float32)
    mask = L.teacher_topk_mask(teacher, 2)  # bool, on the device
    index = L.teacher_topk_index(teacher, 2)  # (n, 2) int64, on the device
    backward_module = L.BackwardCorrectedLoss(transition.cpu(), reduction="none").to(device)
    cases: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "soft_cross_entropy": lambda z: L.soft_cross_entropy(z, teacher),
        "kd_loss": lambda z: L.kd_loss(z, teacher, 2.0),
        "weighted": lambda z: weights * L.soft_cross_entropy(z, teacher),
        "slam_loss[index]": lambda z: L.slam_loss(z, teacher, alpha, topk_index=index),
        "slam_loss[mask]": lambda z: L.slam_loss(z, teacher, alpha, mask),
        "slam_loss[k=2]": lambda z: L.slam_loss(z, teacher, alpha, k=2),
        "forward_corrected_loss": lambda z: L.forward_corrected_loss(z, teacher, transition),
        "backward_corrected_loss": lambda z: L.backward_corrected_loss(z, teacher, transition),
        "BackwardCorrectedLoss": lambda z: backward_module(z, teacher),
        "taylor_cross_entropy": lambda z: L.taylor_cross_entropy(z, teacher, 2),
    }
    return logits, cases


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_once(fn: Callable[[torch.Tensor], torch.Tensor], logits: torch.Tensor) -> float:
    """Wall time of one forward + backward on a fresh leaf copy of ``logits``."""
    z = logits.detach().clone().requires_grad_(True)
    _sync(z.device)
    start = time.perf_counter()
    fn(z).mean().backward()
    _sync(z.device)
    return time.perf_counter() - start


def _time_interleaved(
    cases: dict[str, Callable[[torch.Tensor], torch.Tensor]], logits: torch.Tensor, repeats: int
) -> dict[str, float]:
    """One warm-up call per loss, then ``repeats`` rounds of one call each, the order rotated by one place
    per round (no loss always runs first, after another loss has flushed the caches); the best per loss."""
    for fn in cases.values():
        _time_once(fn, logits)
    names = list(cases)
    best = {name: float("inf") for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            best[name] = min(best[name], _time_once(cases[name], logits))
    return best


def make_teacher_data(n: int, num_classes: int = TEACHER_QUALITY_K, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic teacher outputs and labels: ``Dirichlet(0.3)`` probabilities; the label is the teacher's
    argmax with probability ``0.3 + 0.65 * margin^0.7`` (the margin teacher of docs/theory/noise.md#noise-margin-teacher), else uniform over
    the other classes."""
    rng = np.random.default_rng([int(seed), int(n), int(num_classes)])
    probs = rng.dirichlet(np.full(num_classes, 0.3), size=n)
    top2 = np.partition(probs, num_classes - 2, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    correct = rng.random(n) < 0.3 + 0.65 * margin**0.7
    argmax = probs.argmax(axis=1)
    other = (argmax + rng.integers(1, num_classes, size=n)) % num_classes
    labels = np.where(correct, argmax, other).astype(np.int64)
    return probs, labels


def _teacher_quality(n: int, seed: int, repeats: int) -> dict[str, Any]:
    """Time fit_teacher_accuracy on n points and predict on n others."""
    from robustdistill.algorithms.teacher_quality import fit_teacher_accuracy

    row: dict[str, Any] = {"n_val": n, "n_predict": n, "num_classes": TEACHER_QUALITY_K}
    probs_val, labels_val = make_teacher_data(n, seed=seed)
    probs_new, _ = make_teacher_data(n, seed=seed + 1)
    fit_teacher_accuracy(probs_val, labels_val, feature="margin").predict(probs_new)  # warm-up
    best_fit = best_predict = best_both = float("inf")
    for _ in range(max(1, min(repeats, 3))):
        start = time.perf_counter()
        acc = fit_teacher_accuracy(probs_val, labels_val, feature="margin")
        mid = time.perf_counter()
        alpha = acc.predict(probs_new)
        end = time.perf_counter()
        best_fit = min(best_fit, mid - start)
        best_predict = min(best_predict, end - mid)
        best_both = min(best_both, end - start)
    alpha = np.asarray(alpha, dtype=np.float64)
    row.update(
        status="ok",
        fit_s=best_fit,
        predict_s=best_predict,
        total_s=best_both,
        alpha_range=[float(alpha.min()), float(alpha.max())],
    )
    return row


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[int]:
    """Set torch's intra-op thread count for the block (None: leave it) and restore it after."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def _devices(devices: Sequence[str] | None) -> list[torch.device]:
    if devices is None:
        found = [torch.device("cpu")]
        if torch.cuda.is_available():
            found.append(torch.device("cuda", torch.cuda.current_device()))
        return found
    out = [torch.device(d) for d in devices]
    for d in out:
        if d.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"devices names {d}, but CUDA is not available")
    return out


def run(
    shapes: Sequence[tuple[int, int]] = DEFAULT_SHAPES,
    repeats: int = 10,
    seed: int = 0,
    quick: bool = False,
    *,
    progress: bool | None = False,
    devices: Sequence[str] | None = None,
    threads: int | Sequence[int] | None = None,
    teacher_quality_n: int | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return a JSON-ready dict.

    Args:
        shapes: ``(n, K)`` pairs, float32 logits.
        repeats: interleaved timed rounds after the warm-up; the best per loss is reported.
        seed: seeds the instances.
        quick: shapes (256 x 10, 64 x 100), 1 repeat and 10^4 teacher points (for tests; overrides those).
        progress: show a tqdm bar on stderr; ``None`` = only when stderr is a terminal.
        devices: e.g. ``["cpu", "cuda"]``; None = the CPU and, when available, the current CUDA device.
        threads: torch intra-op thread counts, each measured in turn (an int: one count; restored after);
            None leaves the setting as it is (recorded). The teacher-accuracy fit runs at the last count.
        teacher_quality_n: points for the teacher-accuracy fit and predict (default 10^6; 0 skips it).

    Returns:
        ``{"benchmark", "rows", "teacher_quality", "targets", "targets_met", "ratio_checks", "protocol",
        "seed", "quick", "environment", "seconds"}``. ``ratio_checks`` has one pass/fail entry per targeted
        loss, device and shape; ``targets_met[name]`` is None when nothing measured it.
    """
    if quick:
        shapes, repeats = QUICK_SHAPES, 1
        if teacher_quality_n is None:
            teacher_quality_n = QUICK_TEACHER_QUALITY_N
    if teacher_quality_n is None:
        teacher_quality_n = TEACHER_QUALITY_N
    shapes = tuple((check_int(n, "n", low=1), check_int(k, "K", low=2)) for n, k in shapes)
    repeats = check_int(repeats, "repeats", low=1)
    seed = check_int(seed, "seed", low=0)
    teacher_quality_n = check_int(teacher_quality_n, "teacher_quality_n", low=0)
    thread_counts: list[int | None] = [None]
    if threads is not None:
        listed = [threads] if isinstance(threads, int) else list(threads)
        if not listed:
            raise ValueError("threads must name at least one thread count")
        thread_counts = [check_int(t, "threads", low=1) for t in listed]
    if progress is None:
        progress = sys.stderr.isatty()
    device_list = _devices(devices)

    rows: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    started = time.perf_counter()
    jobs = [(c, d, s) for c in thread_counts for d in device_list for s in shapes]
    bar = tqdm(jobs, desc="bench losses", unit="case", disable=not progress, file=sys.stderr)
    used_threads: list[int] = []
    for count, device, (n, k) in bar:
        with _threads(count) as used:
            bar.set_postfix(threads=used, device=str(device), n=n, K=k)
            if used not in used_threads:
                used_threads.append(used)
            logits, cases = loss_cases(n, k, device, seed)
            best = _time_interleaved(cases, logits, repeats)
        ref = best["soft_cross_entropy"]
        where = {"threads": used, "device": str(device), "n": n, "K": k}
        for name, seconds in best.items():
            ratio = seconds / ref
            rows.append({**where, "loss": name, "ms": 1e3 * seconds, "ratio": ratio})
            if name in RATIO_TARGETS:
                bound = TARGETS[RATIO_TARGETS[name]][1]
                checks.append({**where, "loss": name, "ratio": ratio, "bound": bound, "met": bool(ratio <= bound)})
    bar.close()
    with _threads(thread_counts[-1]):
        if teacher_quality_n > 0:
            quality = _teacher_quality(teacher_quality_n, seed, repeats)
        else:
            quality = {"status": "skipped", "reason": "teacher_quality_n = 0"}
    seconds = time.perf_counter() - started

    measured: dict[str, float | None] = {
        target: max((c["ratio"] for c in checks if RATIO_TARGETS[c["loss"]] == target), default=None)
        for target in RATIO_TARGETS.values()
    }
    at_full_size = quality.get("status") == "ok" and quality.get("n_val") == TEACHER_QUALITY_N
    measured["teacher_quality_s"] = quality["total_s"] if at_full_size else None
    targets, met = evaluate_targets(TARGETS, measured)
    return {
        "benchmark": "losses",
        "rows": rows,
        "teacher_quality": quality,
        "targets": targets,
        "targets_met": met,
        "ratio_checks": checks,
        "protocol": {
            "dtype": "float32",
            "call": "fn(z).mean().backward(), validate=True",
            "warmup_calls": 1,
            "repeats": int(repeats),
            "order": "interleaved: one call of each loss per round, rotated by one place per round",
            "statistic": "best (minimum) wall time, time.perf_counter (+ cuda.synchronize on CUDA)",
            "torch_threads": used_threads,
            "threads_set": None if thread_counts == [None] else thread_counts,
            "devices": [str(d) for d in device_list],
            "shapes": [list(s) for s in shapes],
        },
        "seed": int(seed),
        "quick": bool(quick),
        "environment": environment_info(),
        "seconds": seconds,
    }


def table(result: dict[str, Any]) -> str:
    """The printed report: per device and shape the loss timings and ratios, the ratio checks, the
    teacher-accuracy timing and each target beside its measurement."""
    proto = result["protocol"]
    quality = result["teacher_quality"]
    if quality.get("status") == "ok":
        quality_line = (
            f"fit_teacher_accuracy on {quality['n_val']:,} points: fit {quality['fit_s']:.3f} s, "
            f"predict on {quality['n_predict']:,}: {quality['predict_s']:.3f} s, "
            f"together {quality['total_s']:.3f} s"
        )
    else:
        quality_line = f"fit_teacher_accuracy: {quality.get('status')} ({quality.get('reason', '')})"
    target_rows = format_targets(result)
    return "\n".join(
        [
            f"loss benchmark: float32, forward + backward, best of {proto['repeats']} interleaved rounds after "
            f"1 warm-up, torch threads {', '.join(map(str, proto['torch_threads']))}, seed {result['seed']}",
            format_table(result["rows"], ["threads", "device", "n", "K", "loss", "ms", "ratio"]),
            "",
            format_table(result["ratio_checks"], ["threads", "device", "n", "K", "loss", "ratio", "bound", "met"]),
            "",
            quality_line,
            "",
            format_table(target_rows, ["target", "bound", "measured", "met"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robustdistill.experiments.benchmarks.losses [--quick] [--repeats R] [--threads T] [--json F]``."""
    parser = bench_parser("losses", __doc__, "small shapes, 1 repeat (seconds)")
    parser.add_argument("--repeats", type=int, default=10, help="interleaved timed rounds (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        action="append",
        default=None,
        help="torch threads; repeat to measure several counts in one run (default: as is)",
    )
    parser.add_argument("--device", action="append", default=None, help="cpu or cuda; repeat for several")
    args = parser.parse_args(argv)
    try:
        result = run(
            repeats=args.repeats,
            seed=args.seed,
            quick=args.quick,
            progress=None if not args.quiet else False,
            devices=args.device,
            threads=args.threads,
        )
    except (ValueError, TypeError) as exc:
        print(f"bench_losses: {exc}", file=sys.stderr)
        return 2
    return finish_bench(result, table(result), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
