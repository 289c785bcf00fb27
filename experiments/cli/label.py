"""``robustdistill label``: label a pool with a teacher into one ``(n, K)`` ``.npy`` file, shard by shard, resumable
(:func:`~robustdistill.experiments.pipeline.labeling.label_pool`).

::

    robustdistill label --teacher pkg.module:factory [--weights W.pt] --inputs POOL.npy --out LABELS.npy \\
        [--float16] [--shard-rows N] [--batch-size N] [--mean M ...] [--std S ...]
    torchrun --nproc_per_node=2 --no-python robustdistill label ...           # two ranks, one file
    torchrun --nproc_per_node=2 -m robustdistill.experiments.cli label ...    # the same, as a module

The teacher is named like the configs name a model factory: ``"package.module:attr"`` where ``attr`` is an
``nn.Module`` or a factory ``seed -> nn.Module`` (called with ``--seed`` under a forked RNG,
:func:`~robustdistill.experiments.pipeline.models.model_factory`). ``--weights`` loads a ``state_dict`` into it
(``torch.load(weights_only=True)``; a dict holding it under ``"state_dict"`` or ``"model"``, as the pipeline's
teacher cache and checkpoints do, is unwrapped).

Under ``torchrun`` (``WORLD_SIZE > 1`` in the environment) the command initialises the default process group
with the gloo backend from the environment when none is initialised (the collectives only exchange counts; the
teacher runs on ``--device``), and destroys it at the end; only rank 0 prints the summary.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_arguments", "cmd_label", "load_teacher", "register"]

_KINDS = ("tabular", "sequence", "image")
_AMP = ("auto", "bf16", "off")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``robustdistill label``."""
    parser.add_argument(
        "--teacher",
        required=True,
        metavar="MODULE:ATTR",
        help="the teacher: a 'package.module:attr' nn.Module or factory seed -> nn.Module (returning logits)",
    )
    parser.add_argument("--weights", default=None, metavar="W.pt", help="a state_dict to load into the teacher")
    parser.add_argument("--seed", type=int, default=0, help="the factory's seed (default: 0)")
    parser.add_argument("--inputs", required=True, metavar="POOL.npy", help="the pool (n, ...), a .npy file")
    parser.add_argument("--out", required=True, metavar="LABELS.npy", help="the labels file (n, K) to write")
    parser.add_argument("--float16", action="store_true", help="store float16 labels (default: float32)")
    parser.add_argument("--shard-rows", type=int, default=65536, help="rows per shard, >= 1 (default: 65536)")
    parser.add_argument("--batch-size", type=int, default=1024, help="rows per forward, >= 1 (default: 1024)")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--kind", choices=_KINDS, default=None, help="the input kind (default: from the shape)")
    parser.add_argument(
        "--mean",
        type=float,
        nargs="+",
        default=None,
        metavar="M",
        help="normalisation mean (per channel of images in [0, 1], or per feature); default: the pool's",
    )
    parser.add_argument("--std", type=float, nargs="+", default=None, metavar="S", help="normalisation std")
    parser.add_argument("--amp", choices=_AMP, default="auto", help="autocast of the forward (default: auto)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the labels of another teacher or pool at --out"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def register(commands: Any) -> None:
    """Add ``label`` to the command line's sub-commands."""
    label = commands.add_parser(
        "label",
        help="label a pool with a teacher into one (n, K) .npy file, shard by shard, resumable; torchrun-ready",
        description="Label every row of --inputs with the teacher into --out, a (n, K) .npy file, shard by "
        "shard; a rerun reuses the shards already labeled (checked by digests) and labels the rest. Under "
        "torchrun the ranks share the shards.",
    )
    add_arguments(label)
    label.set_defaults(func=cmd_label)


def load_teacher(name: str, weights: str | None = None, *, seed: int = 0) -> Any:
    """The ``nn.Module`` that ``name`` (``"package.module:attr"``) points at, or that its factory builds with
    ``seed``, with the ``state_dict`` of ``weights`` loaded (strictly) when given."""
    import torch
    from torch import nn

    from ..pipeline.config import import_object, is_import_name
    from ..pipeline.models import model_factory

    if not is_import_name(name):
        raise ValueError(f"--teacher: expected a 'package.module:attr' name, got {name!r}")
    obj = import_object(name)
    if isinstance(obj, nn.Module):
        module = obj
    elif callable(obj):
        module = model_factory({"name": name})(seed)
    else:
        raise ValueError(f"--teacher: {name!r} is neither an nn.Module nor a factory seed -> nn.Module")
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ValueError(f"--weights: no such file {weights!r}") from None
        except Exception as exc:  # noqa: BLE001 - any failure to parse is a bad weights file
            raise ValueError(f"--weights: {weights!r} is not a readable torch file ({type(exc).__name__})") from None
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        if not isinstance(state, dict):
            raise ValueError(f"--weights: {weights!r} holds no state_dict")
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"--weights: they do not fit the teacher ({' '.join(str(exc).split())})") from None
    return module


def _stat(values: list[float] | None) -> Any:
    if values is None:
        return None
    return values[0] if len(values) == 1 else values


def cmd_label(args: argparse.Namespace) -> int:
    """``robustdistill label``: label the pool (under torchrun: this rank's shards); rank 0 prints a summary."""
    from ..distributed.collectives import is_main, launched_group
    from ..pipeline.labeling import label_pool

    with launched_group("gloo"):  # the collectives exchange counts only: gloo, whatever --device is
        main_rank = is_main()
        teacher = load_teacher(args.teacher, args.weights, seed=args.seed)
        result = label_pool(
            teacher,
            args.inputs,
            args.out,
            dtype="float16" if args.float16 else "float32",
            shard_rows=args.shard_rows,
            batch_size=args.batch_size,
            device=args.device,
            kind=args.kind,
            mean=_stat(args.mean),
            std=_stat(args.std),
            amp=args.amp,
            overwrite=args.overwrite,
            progress=not args.quiet and sys.stderr.isatty(),
        )
    if main_rank:
        speed = "-" if result.rows_per_s is None else f"{result.rows_per_s:.0f}"
        print(
            f"{result.path}: {result.rows} x {result.num_classes} {result.dtype}, {result.shards} shard(s): "
            f"{result.computed} labeled, {result.reused} reused ({result.damaged} damaged, {result.changed} with "
            f"changed inputs); {speed} rows/s over {result.world_size} rank(s), {result.seconds:.1f} s"
        )
    return 0
