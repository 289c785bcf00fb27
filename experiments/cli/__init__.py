"""The ``robustdistill`` command line.

Commands:

- ``robustdistill verify``: run the guarantee simulators (``theory.simulators.run_checks``), print a table
  and write ``reports/verify.json``; exit 0 when every check holds, 1 otherwise.
- ``robustdistill bench game``: benchmark the query game against its targets; write
  ``reports/bench_game.json``.
- ``robustdistill bench losses``: forward+backward time of every loss against soft cross-entropy (CPU, and
  CUDA when present) and the teacher-accuracy fit at 10^6 points; write ``reports/bench_losses.json``.
- ``robustdistill bench halfspace``: run time of the forward-adjusted halfspace learner against n and d.
- ``robustdistill bench throughput``: the resident training loop against a per-item DataLoader.
- ``robustdistill bench distill`` / ``ablation``: the distillation benchmark and the Weighted Distillation
  ablation (``experiments.benchmarks.distill``).
- ``robustdistill distill CONFIG [--method M] [--seeds S ...] [--name N] [--overwrite]``: the distillation
  pipeline of a TOML config (``experiments.pipeline.distill.run_distillation``); print the per-seed and mean
  test accuracies and write ``OUT/NAME.json`` (NAME gets ``-M`` appended when ``--method`` overrides the
  config's, so each method keeps its own results).
- ``robustdistill active CONFIG [--selector S] [--seeds S ...] [--name N] [--overwrite]``: the active loop
  (``experiments.pipeline.active.run_active_distillation``); accuracy against teacher labels, ``OUT/NAME.json``.
- ``robustdistill label --teacher MODULE:ATTR --inputs POOL.npy --out LABELS.npy``: label a pool with a teacher
  into one ``(n, K)`` file, shard by shard, resumable, under ``torchrun`` too (``experiments.cli.label``).
- ``robustdistill select PROBS.npy --budget B [--mistakes M] [--selector S] --out DIR``: which pool points to
  query, from the student's probabilities in one file, under ``torchrun`` too (``experiments.cli.select``).
- Data-parallel: ``torchrun --nproc_per_node=N -m robustdistill.experiments.cli distill CONFIG`` (or
  ``active``) trains on N ranks (``experiments.pipeline.parallel``); only rank 0 writes files and prints.
- ``robustdistill figures [NAME ...]``: the paper figures (``paper_figures.make_figures``): PNG, PDF and the
  plotted data per figure, from stored results in ``--results`` or else the quick experiment.
- ``robustdistill reproduce [--full] [--only STEP ...]``: the main job (``experiments.cli.reproduce``): every check,
  the benchmarks and every figure; ``OUT/index.html`` and ``OUT/summary.md``; exit 1 when a check failed, 2 when
  a step raised.

Exit codes: 0 success, 1 a check failed, 2 bad usage or an error (one line on stderr, no traceback),
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from robustdistill.theory.simulators.checks import GROUPS

from ..benchmarks import BENCHMARKS, BenchmarkSkipped
from ..benchmarks.reporting import format_table
from .jobs import PROG, run_bench, run_verify, verify_table


def _version() -> str:
    try:
        return metadata.version("robustdistill")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _other_rank() -> bool:
    """Whether this is a ``torchrun`` worker other than rank 0 (which alone prints the run's summary)."""
    return os.environ.get("RANK", "0") not in ("", "0")


def cmd_verify(args: argparse.Namespace) -> int:
    """``robustdistill verify``: run the simulators, print the table, write ``verify.json``."""
    report, path = run_verify(
        args.out, full=args.full, seed=args.seed, progress=_show_progress(args.quiet), only=args.only
    )
    records = report["checks"]
    print(verify_table(records))
    if not args.quiet:
        print(f"{len(records)} checks in {report['seconds']:.1f} s; wrote {path}", file=sys.stderr)
    if not report["all_hold"]:
        failed = [str(r["name"]) for r in records if not r["holds"]]
        print(f"{PROG}: verify: {len(failed)} check(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _options_text(options: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in options.items())


def cmd_bench(args: argparse.Namespace) -> int:
    """``robustdistill bench TARGET``: run the benchmark, print its table, write ``bench_TARGET.json``. A
    benchmark whose input the user must supply (a dataset's files) says so and exits 3."""
    full = BENCHMARKS[args.target].full_options if getattr(args, "full", False) else {}
    try:
        _, table, path = run_bench(
            args.target, args.out, seed=args.seed, quick=args.quick, progress=_show_progress(args.quiet), **full
        )
    except BenchmarkSkipped as exc:
        print(f"{PROG}: bench {args.target} skipped: {exc}", file=sys.stderr)
        return 3
    print(table)
    if not args.quiet:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _read_config(
    args: argparse.Namespace, overrides: dict[str, Any], *, active: bool, renamed_by: str | None = None
) -> dict[str, Any]:
    """The config file ``args.config`` with the command line's overrides, checked for syntax and key names before
    the training stack is imported (a missing or malformed file fails at once; the values are checked by the
    run). The run's name is ``--name``; else, when ``renamed_by`` (the ``--method`` / ``--selector`` given)
    overrides the config's choice, the config's name with it appended (``digits-slam``), so that each method's
    results have their own folder; else the config's."""
    from ..pipeline.config import check_keys, read_config

    raw = read_config(args.config)
    check_keys(raw, active=active)
    name = args.name if args.name is not None or renamed_by is None else f"{raw.get('name') or 'distill'}-{renamed_by}"
    raw.update({k: v for k, v in {**overrides, "name": name}.items() if v is not None})
    return raw


def _mean(mean: float | None, std: float | None) -> str:
    return "-" if mean is None else f"{mean:.4f} +- {std:.4f}"


def cmd_distill(args: argparse.Namespace) -> int:
    """``robustdistill distill CONFIG``: run the config (with the command line's overrides), print a summary."""
    overrides = {
        "seeds": args.seeds or None,
        "out": args.out,
        "device": args.device,
        "overwrite": args.overwrite or None,
    }
    if args.method is not None:
        overrides.update(method=args.method, method_options={})
    config = _read_config(args, overrides, active=False, renamed_by=args.method)
    from ..pipeline.distill import run_distillation

    result = run_distillation(config, progress=_show_progress(args.quiet))
    if _other_rank():
        return 0
    rows = [
        {"seed": s, "student_acc": a, "teacher_acc": t, "teacher_labels": q}
        for s, a, t, q in zip(result.seeds, result.student_accuracy, result.teacher_accuracy, result.teacher_queries)
    ]
    print(format_table(rows, ["seed", "student_acc", "teacher_acc", "teacher_labels"]))
    print(
        f"{result.name}: method {result.method}, student {_mean(result.student_mean, result.student_std)}, teacher "
        f"{_mean(result.teacher_mean, result.teacher_std)}, {max(result.teacher_queries)} teacher labels per seed, "
        f"{result.wall_time_s:.1f} s"
    )
    if not args.quiet:
        print(f"wrote {result.path}", file=sys.stderr)
    return 0


def cmd_active(args: argparse.Namespace) -> int:
    """``robustdistill active CONFIG``: the active distillation loop; print accuracy against teacher labels."""
    overrides = {
        "seeds": args.seeds or None,
        "out": args.out,
        "selector": args.selector,
        "overwrite": args.overwrite or None,
    }
    config = _read_config(args, overrides, active=True, renamed_by=args.selector)
    from ..pipeline.active import run_active_distillation

    result = run_active_distillation(config, progress=_show_progress(args.quiet))
    if _other_rank():
        return 0
    rows = [{"queries": q, "mean_acc": m, "std": s} for q, m, s in zip(result.queries, result.mean, result.std)]
    print(format_table(rows, ["queries", "mean_acc", "std"]))
    print(
        f"{result.name}: selector {result.selector}, loss {result.loss}, seeds {list(result.seeds)}, teacher labels "
        f"per seed {list(result.teacher_queries)} (validation set + rounds x budget), {result.wall_time_s:.1f} s"
    )
    if not args.quiet:
        print(f"wrote {result.path}", file=sys.stderr)
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    """``robustdistill figures [NAME ...]``: make the figures; print one line per figure (name, source, files)."""
    from robustdistill.paper_figures import make_figures

    figures = make_figures(
        args.names or None,
        out=args.out,
        results=args.results,
        quick=not args.stored_only,
        progress=_show_progress(args.quiet),
    )
    for fig in figures:
        print(f"{fig.name}  {fig.source}  " + "  ".join(str(p) for p in [*fig.files, fig.data_path]))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``robustdistill reproduce``: every check, the benchmarks and every figure; ``OUT/index.html`` and
    ``OUT/summary.md``. Exit 0 when all went well, 1 when a check failed, 2 when a step raised."""
    from .reproduce import reproduce

    result = reproduce(args.out, full=args.full, progress=_show_progress(args.quiet), steps=args.only, seed=args.seed)
    if not args.quiet:
        print(
            f"{len(result.steps)} step(s) in {result.seconds / 60:.1f} min; wrote {Path(args.out) / 'index.html'} "
            f"and {Path(args.out) / 'summary.md'}",
            file=sys.stderr,
        )
    for step in result.steps:
        if step.status == "skipped":
            print(f"{PROG}: reproduce: {step.name} skipped: {step.note}", file=sys.stderr)
    problems = []
    if result.failed_checks:
        problems.append(f"{len(result.failed_checks)} check(s) failed: {', '.join(result.failed_checks)}")
    if result.errored_steps:
        problems.append(f"step(s) raised: {', '.join(result.errored_steps)}")
    if problems:
        print(f"{PROG}: reproduce: {'; '.join(problems)} (see {Path(args.out) / 'index.html'})", file=sys.stderr)
    return result.exit_code


def _add_common_options(command: argparse.ArgumentParser) -> None:
    """--out, --seed and --quiet, shared by every command that writes a report."""
    command.add_argument("--out", default="reports", metavar="DIR", help="output folder (default: reports)")
    command.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default: 0)")
    command.add_argument("--quiet", action="store_true", help="no progress bar or status lines")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one sub-command per job, each with a one-line description."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Knowledge distillation with unlabeled examples when the teacher is expensive "
        "and wrong: verify the guarantees and benchmark the methods.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    verify = commands.add_parser(
        "verify",
        help="check the stated guarantees with simulators",
        description="Run the guarantee simulators, print one row per check and write DIR/verify.json. "
        "Exit 0 when every check holds, 1 otherwise.",
    )
    verify.add_argument("--full", action="store_true", help="full simulator sizes (slow)")
    verify.add_argument(
        "--only",
        action="append",
        choices=GROUPS,
        metavar="METHOD",
        help=f"run only this method's checks: {', '.join(GROUPS)} (repeatable; default all)",
    )
    _add_common_options(verify)
    verify.set_defaults(func=cmd_verify)

    bench = commands.add_parser(
        "bench",
        help="benchmarks against their performance targets",
        description="Benchmarks against their performance targets: each prints its table (protocol in "
        "its header) and writes DIR/bench_TARGET.json.",
    )
    targets = bench.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, spec in BENCHMARKS.items():
        command = targets.add_parser(name, help=spec.help, description=f"{spec.help}; write DIR/bench_{name}.json.")
        command.add_argument("--quick", action="store_true", help="small sizes, one repeat (seconds; for tests)")
        if spec.full_options:
            command.add_argument(
                "--full",
                action="store_true",
                help=f"the larger grid of reproduce --full ({_options_text(spec.full_options)})",
            )
        _add_common_options(command)
        command.set_defaults(func=cmd_bench)

    distill = commands.add_parser(
        "distill",
        help="run a distillation config: teacher, teacher labels, method, student",
        description="Run the distillation pipeline of a TOML config (keys: see "
        "robustdistill.experiments.pipeline.distill), print per-seed and mean test accuracies, write OUT/NAME.json.",
    )
    distill.add_argument("config", help="TOML config file (e.g. one of experiments/configs/)")
    distill.add_argument("--method", default=None, help="override the method (its options reset to defaults)")
    distill.add_argument("--seeds", type=_non_negative_int, nargs="+", default=None, help="override the seeds")
    distill.add_argument("--device", default=None, help="auto, cpu or cuda")
    distill.add_argument("--out", default=None, metavar="DIR", help="output folder (default: the config's out)")
    distill.add_argument(
        "--name", default=None, help="the run's name (default: the config's, with the overridden method appended)"
    )
    distill.add_argument(
        "--overwrite", action="store_true", help="replace another configuration's results under the same out and name"
    )
    distill.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    distill.set_defaults(func=cmd_distill)

    active = commands.add_parser(
        "active",
        help="run the active distillation loop of a config: select, query the teacher, retrain",
        description="Run the active distillation loop (robustdistill.experiments.pipeline.active) of a TOML config; print "
        "the student's test accuracy against teacher queries and write OUT/NAME.json.",
    )
    active.add_argument("config", help="TOML config file")
    active.add_argument("--selector", default=None, help="override the selector (a name of SELECTORS)")
    active.add_argument("--seeds", type=_non_negative_int, nargs="+", default=None, help="override the seeds")
    active.add_argument("--out", default=None, metavar="DIR", help="output folder (default: the config's out)")
    active.add_argument(
        "--name", default=None, help="the run's name (default: the config's, with the overridden selector appended)"
    )
    active.add_argument(
        "--overwrite", action="store_true", help="replace another configuration's results under the same out and name"
    )
    active.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    active.set_defaults(func=cmd_active)

    from .label import register as register_label  # light: the labeling stack is imported when it runs

    register_label(commands)

    from .select import register as register_select  # light: numpy and the selection are imported when it runs

    register_select(commands)

    from robustdistill.paper_figures import FIGURES  # light: each figure's module is imported when it runs

    figures = commands.add_parser(
        "figures",
        help="make the paper figures: PNG, PDF and the plotted data (JSON) per figure",
        description="Make the paper figures (all by default) into DIR: NAME.png, NAME.pdf and NAME.json (the "
        "plotted arrays and their source). A figure reads stored results from --results (bench_*.json, "
        "data/*.json) and runs its quick experiment when they are missing. One line per figure: name, source "
        "(stored or quick), files.",
    )
    figures.add_argument(
        "names", nargs="*", metavar="NAME", help=f"figures to make (default all): {', '.join(FIGURES)}"
    )
    figures.add_argument(
        "--out", default="reports/figures", metavar="DIR", help="output folder (default: reports/figures)"
    )
    figures.add_argument(
        "--results",
        default="reports",
        metavar="DIR",
        help="stored results: bench_*.json and data/*.json (default: reports)",
    )
    figures.add_argument(
        "--stored-only",
        action="store_true",
        help="fail instead of running the quick experiment when a stored result is missing",
    )
    figures.add_argument("--quiet", action="store_true", help="no progress bar")
    figures.set_defaults(func=cmd_figures)

    from .reproduce import STEPS  # light: the steps' modules are imported when they run

    reproduce = commands.add_parser(
        "reproduce",
        help="the main job: every check, the benchmarks and every figure; one HTML and Markdown report",
        description="Run every check of verify, the benchmarks' default grids and every figure, and write "
        "DIR/index.html (self-contained: figures inline) and DIR/summary.md. About 70 minutes on 2 CPU cores (30 of them the Fashion-MNIST benchmark). "
        "Exit 0 when every check holds and every step ran, 1 when a check failed, 2 when a step raised.",
    )
    reproduce.add_argument(
        "--full",
        action="store_true",
        help="the full simulator sizes, the accuracy grids with "
        "10 seeds (GPU recommended) and figures without quick fallbacks; the speed benchmarks run "
        "their default",
    )
    reproduce.add_argument(
        "--only",
        nargs="+",
        choices=STEPS,
        metavar="STEP",
        default=None,
        help=f"run only these steps (in the job's order): {', '.join(STEPS)}",
    )
    _add_common_options(reproduce)
    reproduce.set_defaults(func=cmd_reproduce)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2, message already printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        result: Any = args.func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    return int(result)


if __name__ == "__main__":
    raise SystemExit(main())
