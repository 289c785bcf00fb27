"""Several gloo processes for the tests: :func:`run_ranks` spawns ``world`` processes, each running
``fn(rank, world, *args)`` inside a ``torch.distributed`` gloo group on a free local port (one torch thread
each), and returns ``{rank: fn's result}``. ``fn`` and its arguments must be picklable (a module-level
function of a test module)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(rank: int, world: int, port: int, fn: Callable[..., Any], args: tuple, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        results[rank] = fn(rank, world, *args)
    finally:
        dist.destroy_process_group()


def run_ranks(fn: Callable[..., Any], world: int, *args: Any) -> dict[int, Any]:
    """``{rank: fn(rank, world, *args)}`` from ``world`` spawned processes in one gloo group."""
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_entry, args=(world, free_port(), fn, args, results), nprocs=world, join=True)
        return dict(results)
