"""``robustdistill select``: choose which pool points to pay the teacher for, from the student's probabilities on
the pool in one ``.npy`` file, with RAD or a baseline; under ``torchrun`` every rank reads (memory-mapped) its
contiguous share of the rows and the selection is computed across the ranks
(:func:`robustdistill.experiments.distributed.select_sharded`), equal to the single-process one.

Writes into ``--out``: ``selection.npy`` (the chosen global row indices, sorted int64), ``probabilities.npy`` (the
``(n,)`` float64 marginals, for ``rad`` and ``random``; each rank writes its rows) and ``selection.json`` (the
options, the diagnostics and the file names). Only rank 0 prints and writes the JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["cmd_select", "register"]


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``select`` subcommand to the command line's subparsers."""
    parser = commands.add_parser(
        "select",
        help="choose the points to query from the student's probabilities on a pool (RAD or a baseline)",
        description=__doc__.split("\n\n")[0].replace("``", "").replace("\n", " "),
    )
    parser.add_argument("probs", help="the student's (n, K) probabilities on the pool, a .npy file")
    parser.add_argument("--budget", type=int, required=True, help="points to choose")
    parser.add_argument("--mistakes", type=int, default=None, help="estimated teacher mistakes on the pool (rad)")
    parser.add_argument(  # checked by select_sharded: building the parser imports no torch
        "--selector", default="rad", help="rad (default), random, margin, entropy or least_confidence"
    )
    parser.add_argument("--kind", choices=("margin", "entropy", "least_confidence"), default="margin")
    parser.add_argument("--seed", type=int, default=0, help="seeds DepRound, the ties and the random draw")
    parser.add_argument("--out", required=True, help="the folder for selection.npy, probabilities.npy, .json")
    parser.add_argument("--quiet", action="store_true", help="no summary line")
    parser.set_defaults(func=cmd_select)


def cmd_select(args: argparse.Namespace) -> int:
    """Run the selection of :func:`register`'s options; see the module docstring."""
    import numpy as np

    from robustdistill.experiments.distributed import (
        all_gather,
        barrier,
        even_split,
        is_main,
        launched_group,
        select_sharded,
    )
    from robustdistill.experiments.pipeline.files import write_json_atomic

    path = Path(args.probs)
    if path.suffix != ".npy" or not path.is_file():
        raise ValueError(f"probs must be an existing .npy file of (n, K) probabilities, got {str(path)!r}")
    out = Path(args.out)
    with launched_group():
        pool = np.load(path, mmap_mode="r")
        if pool.ndim != 2:
            raise ValueError(f"{path}: expected (n, K) probabilities, got shape {pool.shape}")
        start, stop = even_split(pool.shape[0])
        selection = select_sharded(
            pool[start:stop], args.budget, args.mistakes, rng=args.seed, kind=args.kind, selector=args.selector
        )
        chosen = np.sort(np.concatenate(all_gather(selection.indices)))
        if is_main():
            out.mkdir(parents=True, exist_ok=True)
            np.save(out / "selection.npy", chosen)
            if selection.probabilities is not None:
                np.lib.format.open_memmap(out / "probabilities.npy", "w+", np.float64, (pool.shape[0],)).flush()
        barrier()
        if selection.probabilities is not None:
            marginals = np.load(out / "probabilities.npy", mmap_mode="r+")
            marginals[start:stop] = selection.probabilities
            marginals.flush()
            del marginals
        barrier()
        if not is_main():
            return 0
        summary: dict[str, Any] = {
            "probs": str(path),
            "pool": int(pool.shape[0]),
            "budget": args.budget,
            "selector": args.selector,
            "kind": args.kind,
            "seed": args.seed,
            "mistakes": args.mistakes,
            "diagnostics": selection.diagnostics,
            "selection": "selection.npy",
            "probabilities": "probabilities.npy" if selection.probabilities is not None else None,
        }
        write_json_atomic(out / "selection.json", summary)
    if not args.quiet:
        print(f"chose {chosen.size} of {pool.shape[0]} points ({args.selector}); wrote {out}", file=sys.stderr)
    return 0
