"""The ``robustdistill`` command line.

Commands:

- ``robustdistill verify``: run the guarantee simulators (``theory.simulators.run_checks``), print a table
  and write ``reports/verify.json``; exit 0 when every check holds, 1 otherwise.
- ``robustdistill bench game``: benchmark the query game against the spec's targets; write
  ``reports/bench_game.json``.
- ``robustdistill bench losses``: forward+backward time of every loss against soft cross-entropy (CPU, and
  CUDA when present) and the teacher-accuracy fit at 10^6 points; write ``reports/bench_losses.json``.

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


def cmd_verify(args: argparse.Namespace) -> int:
    """``robustdistill verify``: run the simulators, print the table, write ``verify.json``."""
    from robustdistill.theory import simulators

    started = time.perf_counter()
    checks = simulators.run_checks(
        quick=not args.full, rng=args.seed, progress=_show_progress(args.quiet), only=args.only
    )
    seconds = time.perf_counter() - started
    records = []
    for c in checks:
        record = c.to_dict()
        data = record.pop("data", None)
        if data is not None:  # the curves behind a claim, for paper_figures
            record["data_file"] = str(write_json_atomic(Path(args.out) / "data" / f"{c.name}.json", data))
        records.append(record)
    all_hold = all(bool(c.holds) for c in checks)
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
    print(format_table(rows, ["check", "claim", "bound", "measured", "interval", "holds"]))
    path = write_json_atomic(
        Path(args.out) / "verify.json",
        {
            "checks": records,
            "all_hold": all_hold,
            "quick": not args.full,
            "only": args.only,
            "seed": args.seed,
            "environment": environment_info(),
            "seconds": seconds,
        },
    )
    if not args.quiet:
        print(f"{len(records)} checks in {seconds:.1f} s; wrote {path}", file=sys.stderr)
    if not all_hold:
        failed = [str(c.name) for c in checks if not c.holds]
        print(f"{PROG}: verify: {len(failed)} check(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """``robustdistill bench TARGET``: run the benchmark, print its table, write ``bench_TARGET.json``."""
    import importlib

    bench = importlib.import_module(f"{__package__}.bench_{args.target}")
    result = bench.run(seed=args.seed, quick=args.quick, progress=_show_progress(args.quiet))
    print(bench.table(result))
    path = write_json_atomic(Path(args.out) / f"bench_{args.target}.json", result)
    if not args.quiet:
        print(f"wrote {path}", file=sys.stderr)
    return 0


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
    game = targets.add_parser(
        "game",
        help="RAD query game: solver, DepRound, LP speed-up",
        description="Time solve_query_game and depround at n = 1e4..1e6 and the cvxpy LP at "
        "n = 1e3, 1e4; write DIR/bench_game.json.",
    )
    losses = targets.add_parser(
        "losses",
        help="per-example losses vs soft cross-entropy; teacher-accuracy fit at 10^6 points",
        description="Time forward+backward of every loss against soft_cross_entropy at (4096 x 100) and "
        "(1024 x 1000), float32, on CPU and on CUDA when present, as ratios; time fit_teacher_accuracy + "
        "predict on 10^6 points; write DIR/bench_losses.json.",
    )
    halfspace = targets.add_parser(
        "halfspace",
        help="forward-adjusted halfspace learner: run time against n and d",
        description="Time learn_halfspace_rcn (and logistic L-BFGS, the peer) on an (n, d) grid and fit "
        "t = n (a + b d); write DIR/bench_halfspace.json.",
    )
    for command in (game, losses, halfspace):
        command.add_argument("--quick", action="store_true", help="small sizes, one repeat (for tests)")
        _add_common_options(command)
        command.set_defaults(func=cmd_bench)
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
