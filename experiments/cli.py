"""The ``robustdistill`` command line.

Commands:

- ``robustdistill verify``: run the guarantee simulators (``theory.simulators.run_checks``), print a table
  and write ``reports/verify.json``; exit 0 when every check holds, 1 otherwise.
- ``robustdistill bench game``: benchmark the query game against the spec's targets; write
  ``reports/bench_game.json``.
- ``robustdistill bench losses``: forward+backward time of every loss against soft cross-entropy (CPU, and
  CUDA when present) and the teacher-accuracy fit at 10^6 points; write ``reports/bench_losses.json``.
- ``robustdistill bench halfspace``: run time of the forward-adjusted halfspace learner against n and d.
- ``robustdistill bench throughput``: the resident training loop against a per-item DataLoader.
- ``robustdistill bench distill`` / ``ablation``: the distillation benchmark and the Weighted Distillation
  ablation (``experiments.bench_distill``).
- ``robustdistill distill CONFIG [--method M] [--seeds S ...]``: the distillation pipeline of a TOML config
  (``experiments.distill.run_distillation``); print the per-seed and mean test accuracies and write
  ``OUT/NAME.json``.
- ``robustdistill active CONFIG [--selector S] [--seeds S ...]``: the active distillation loop
  (``experiments.active.run_active_distillation``); accuracy against teacher queries, ``OUT/NAME.json``.
- ``robustdistill figures [NAME ...]``: the paper figures (``paper_figures.make_figures``): PNG, PDF and the
  plotted data per figure, from stored results in ``--results`` or else the quick experiment.
- ``robustdistill reproduce [--full] [--only STEP ...]``: the main job (``experiments.reproduce``): every check,
  the benchmarks and every figure; ``OUT/index.html`` and ``OUT/summary.md``; exit 1 when a check failed, 2 when
  a step raised.

Exit codes: 0 success, 1 a check failed, 2 bad usage or an error (one line on stderr, no traceback),
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from robustdistill.theory.checks import GROUPS

from .reporting import environment_info, format_table, write_json_atomic

PROG = "robustdistill"
CLAIM_WIDTH = 60


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


#: ``robustdistill bench TARGET``: target -> (module ``bench_MODULE``, extra keyword arguments of its ``run``,
#: help line). Each module's docstring states its protocol.
BENCH_TARGETS: dict[str, tuple[str, dict[str, Any], str]] = {
    "game": ("game", {}, "RAD query game: solver and DepRound at n = 1e4..1e6, the cvxpy LP at 1e3, 1e4"),
    "losses": ("losses", {}, "per-example losses vs soft cross-entropy (4096 x 100, 1024 x 1000); teacher-"
               "accuracy fit at 10^6 points"),
    "halfspace": ("halfspace", {}, "forward-adjusted halfspace learner: run time against n and d"),
    "selection": ("selection", {}, "every selector's time at n = 1e4..1e6 on one core; RAD's select at 1e6 <= 1 s"),
    "throughput": ("throughput", {}, "student training on CIFAR-shaped data: resident loop vs per-item "
                   "DataLoader, images per second and peak memory"),
    "distill": ("distill", {"grid": "methods"}, "every method on digits, gaussian_mixture and mnist1d, three "
                "labeled-set sizes, 3 seeds (about 8 minutes on 2 cores)"),
    "ablation": ("distill", {"grid": "ablation"}, "Weighted Distillation ablation: every weight scheme on soft and "
                 "hard targets, same grid; mean ranks and the winner"),
    "active": ("active", {}, "accuracy vs teacher queries for every selector with the vanilla and SLaM losses on "
               "digits and mnist1d, 5 seeds (about 8 minutes on 2 cores)"),
}  # fmt: skip


def run_bench(
    target: str, out: str | Path, *, seed: int = 0, quick: bool = False, progress: bool = False, **overrides: Any
) -> tuple[dict[str, Any], str, Path]:
    """Run the benchmark ``target`` of :data:`BENCH_TARGETS` and write ``OUT/bench_TARGET.json``; return (its
    result, its table, that path). The benchmark's own folders (``out``/``cache`` keyword arguments of its
    ``run`` with a default under ``reports/``, e.g. ``reports/distill``) move under ``OUT``, so finished seeds
    resume from there. ``overrides`` go to its ``run`` last. Shared by ``bench`` and ``reproduce``."""
    import importlib
    import inspect

    module, kwargs, _ = BENCH_TARGETS[target]
    bench = importlib.import_module(f"{__package__}.bench_{module}")
    folders = {
        name: str(Path(out) / Path(p.default).name)
        for name, p in inspect.signature(bench.run).parameters.items()
        if name in ("out", "cache") and isinstance(p.default, str) and p.default.startswith("reports/")
    }
    result = bench.run(seed=seed, quick=quick, progress=progress, **{**folders, **kwargs, **overrides})
    return result, bench.table(result), write_json_atomic(Path(out) / f"bench_{target}.json", result)


def cmd_bench(args: argparse.Namespace) -> int:
    """``robustdistill bench TARGET``: run the benchmark, print its table, write ``bench_TARGET.json``."""
    _, table, path = run_bench(args.target, args.out, seed=args.seed, quick=args.quick,
                               progress=_show_progress(args.quiet))  # fmt: skip
    print(table)
    if not args.quiet:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    """``robustdistill distill CONFIG``: run the config (with the command line's overrides), print a summary."""
    from .distill import load_config, run_distillation

    config = load_config(args.config)
    if args.method is not None:
        config["method"], config["method_options"] = args.method, {}
    if args.seeds:
        config["seeds"] = args.seeds
    if args.out is not None:
        config["out"] = args.out
    if args.device is not None:
        config["device"] = args.device
    result = run_distillation(config, progress=_show_progress(args.quiet))
    rows = [
        {"seed": s, "student_acc": a, "teacher_acc": t}
        for s, a, t in zip(result.seeds, result.student_accuracy, result.teacher_accuracy)
    ]
    print(format_table(rows, ["seed", "student_acc", "teacher_acc"]))
    student = "-" if result.student_mean is None else f"{result.student_mean:.4f} +- {result.student_std:.4f}"
    print(
        f"{result.name}: method {result.method}, student {student}, teacher {result.teacher_mean:.4f} +- "
        f"{result.teacher_std:.4f}, {result.teacher_queries} teacher queries per seed, {result.wall_time_s:.1f} s"
    )
    if not args.quiet:
        print(f"wrote {result.path}", file=sys.stderr)
    return 0


def cmd_active(args: argparse.Namespace) -> int:
    """``robustdistill active CONFIG``: the active distillation loop; print accuracy against teacher queries."""
    from .active import load_active_config, run_active_distillation

    config = load_active_config(args.config)
    if args.selector is not None:
        config["selector"] = args.selector
    if args.seeds:
        config["seeds"] = args.seeds
    if args.out is not None:
        config["out"] = args.out
    result = run_active_distillation(config, progress=_show_progress(args.quiet))
    rows = [{"queries": q, "mean_acc": m, "std": s} for q, m, s in zip(result.queries, result.mean, result.std)]
    print(format_table(rows, ["queries", "mean_acc", "std"]))
    print(f"{result.name}: selector {result.selector}, loss {result.loss}, seeds {list(result.seeds)}, "
          f"{result.wall_time_s:.1f} s")  # fmt: skip
    if not args.quiet:
        print(f"wrote {result.path}", file=sys.stderr)
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    """``robustdistill figures [NAME ...]``: make the figures; print one line per figure (name, source, files)."""
    from robustdistill.paper_figures import make_figures

    figures = make_figures(args.names or None, out=args.out, results=args.results, quick=not args.stored_only,
                           progress=_show_progress(args.quiet))  # fmt: skip
    for fig in figures:
        print(f"{fig.name}  {fig.source}  " + "  ".join(str(p) for p in [*fig.files, fig.data_path]))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``robustdistill reproduce``: every check, the benchmarks and every figure; ``OUT/index.html`` and
    ``OUT/summary.md``. Exit 0 when all went well, 1 when a check failed, 2 when a step raised."""
    from .reproduce import reproduce

    result = reproduce(args.out, full=args.full, progress=_show_progress(args.quiet), steps=args.only, seed=args.seed)
    if not args.quiet:
        print(f"{len(result.steps)} step(s) in {result.seconds / 60:.1f} min; wrote {Path(args.out) / 'index.html'} "
              f"and {Path(args.out) / 'summary.md'}", file=sys.stderr)  # fmt: skip
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
        help="benchmark against the spec's performance targets",
        description="Benchmarks against the specs' performance targets: each prints its table (protocol in "
        "its header) and writes DIR/bench_TARGET.json.",
    )
    targets = bench.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, (_, _, help_line) in BENCH_TARGETS.items():
        command = targets.add_parser(name, help=help_line, description=f"{help_line}; write DIR/bench_{name}.json.")
        command.add_argument("--quick", action="store_true", help="small sizes, one repeat (seconds; for tests)")
        _add_common_options(command)
        command.set_defaults(func=cmd_bench)

    distill = commands.add_parser(
        "distill",
        help="run a distillation config: teacher, teacher outputs, method, student",
        description="Run the distillation pipeline of a TOML config (keys: see "
        "robustdistill.experiments.distill), print per-seed and mean test accuracies, write OUT/NAME.json.",
    )
    distill.add_argument("config", help="TOML config file (e.g. one of experiments/configs/)")
    distill.add_argument("--method", default=None, help="override the method (its options reset to defaults)")
    distill.add_argument("--seeds", type=_non_negative_int, nargs="+", default=None, help="override the seeds")
    distill.add_argument("--device", default=None, help="auto, cpu or cuda")
    distill.add_argument("--out", default=None, metavar="DIR", help="output folder (default: the config's out)")
    distill.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    distill.set_defaults(func=cmd_distill)

    active = commands.add_parser(
        "active",
        help="run the active distillation loop of a config: select, query the teacher, retrain",
        description="Run the active distillation loop (robustdistill.experiments.active) of a TOML config; print "
        "the student's test accuracy against teacher queries and write OUT/NAME.json.",
    )
    active.add_argument("config", help="TOML config file")
    active.add_argument("--selector", default=None, help="override the selector (a name of SELECTORS)")
    active.add_argument("--seeds", type=_non_negative_int, nargs="+", default=None, help="override the seeds")
    active.add_argument("--out", default=None, metavar="DIR", help="output folder (default: the config's out)")
    active.add_argument("--quiet", action="store_true", help="no progress bars or status lines")
    active.set_defaults(func=cmd_active)

    from robustdistill.paper_figures import FIGURES  # light: each figure's module is imported when it runs

    figures = commands.add_parser(
        "figures",
        help="make the paper figures: PNG, PDF and the plotted data (JSON) per figure",
        description="Make the paper figures (all by default) into DIR: NAME.png, NAME.pdf and NAME.json (the "
        "plotted arrays and their source). A figure reads stored results from --results (bench_*.json, "
        "data/*.json) and runs its quick experiment when they are missing. One line per figure: name, source "
        "(stored or quick), files.",
    )
    figures.add_argument("names", nargs="*", metavar="NAME", help=f"figures to make (default all): {', '.join(FIGURES)}")
    figures.add_argument("--out", default="reports/figures", metavar="DIR", help="output folder (default: reports/figures)")
    figures.add_argument("--results", default="reports", metavar="DIR",
                         help="stored results: bench_*.json and data/*.json (default: reports)")  # fmt: skip
    figures.add_argument("--stored-only", action="store_true",
                         help="fail instead of running the quick experiment when a stored result is missing")  # fmt: skip
    figures.add_argument("--quiet", action="store_true", help="no progress bar")
    figures.set_defaults(func=cmd_figures)

    from .reproduce import STEPS  # light: the steps' modules are imported when they run

    reproduce = commands.add_parser(
        "reproduce",
        help="the main job: every check, the benchmarks and every figure; one HTML and Markdown report",
        description="Run every check of verify, the benchmarks' default grids and every figure, and write "
        "DIR/index.html (self-contained: figures inline) and DIR/summary.md. About 25 minutes on 2 CPU cores. "
        "Exit 0 when every check holds and every step ran, 1 when a check failed, 2 when a step raised.",
    )
    reproduce.add_argument("--full", action="store_true", help="the specs' simulator sizes, the accuracy grids with "
                           "10 seeds (GPU recommended) and figures without quick fallbacks; the speed benchmarks run "
                           "their default")
    reproduce.add_argument(
        "--only", nargs="+", choices=STEPS, metavar="STEP", default=None,
        help=f"run only these steps (in the job's order): {', '.join(STEPS)}",
    )  # fmt: skip
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
