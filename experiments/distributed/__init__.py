r"""Beyond one process: exact selection over a pool sharded across the ranks of a ``torch.distributed``
process group (launched by ``torchrun``; gloo on CPUs, NCCL on GPUs), and the collectives it is built on.

- :mod:`~robustdistill.experiments.distributed.collectives`: rank, world size, sums, gathers and shards.
- :mod:`~robustdistill.experiments.distributed.order`: the exact ``k``-th largest and top-``b`` of a
  sharded pool, exchanging only counts.
- :mod:`~robustdistill.experiments.distributed.selection`: :func:`select_sharded`, RAD's selection and the
  cheap baselines over a sharded pool, equal to the single-process selection.

Every function is called on every rank with that rank's shard (shards in rank order); without a process
group each equals its single-process counterpart.
"""

from .collectives import (
    Shard,
    all_gather,
    all_sum,
    barrier,
    broadcast,
    even_split,
    is_main,
    launched_group,
    shard_of,
    world,
)
from .order import kth_largest, sharded_top_b
from .selection import SHARDED_SELECTORS, depround_sharded, select_sharded, shard_gains

__all__ = [
    "SHARDED_SELECTORS",
    "Shard",
    "all_gather",
    "all_sum",
    "barrier",
    "broadcast",
    "depround_sharded",
    "even_split",
    "is_main",
    "kth_largest",
    "launched_group",
    "select_sharded",
    "shard_gains",
    "shard_of",
    "sharded_top_b",
    "world",
]
