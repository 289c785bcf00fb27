"""The benchmarks: one module per benchmark, each with ``run(seed=, quick=, progress=, ...) -> dict`` (JSON-ready),
``table(result) -> str`` and a ``main`` for ``python -m robustdistill.experiments.benchmarks.NAME``.

:data:`BENCHMARKS` is the one place a benchmark is added: ``robustdistill bench NAME``, the main job
(``robustdistill reproduce``) and its report read it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = ["BENCHMARKS", "Benchmark", "BenchmarkSkipped"]


class BenchmarkSkipped(RuntimeError):
    """A benchmark's ``run`` could not start for a missing input that the user can supply (e.g. a dataset's
    files); the message says what is missing and how to get it. The main job records the step as skipped."""


@dataclass(frozen=True)
class Benchmark:
    """A target of ``robustdistill bench``: its module (in this package), the keyword arguments its ``run`` gets,
    a help line, its wall time on the 2-core reference machine at the default sizes (weights the main job's
    progress bar), and the larger setting of ``reproduce --full`` (empty: the default grid)."""

    module: str
    help: str
    expected_seconds: float
    options: dict[str, Any] = field(default_factory=dict)
    full_options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> ModuleType:
        """The benchmark's module (imported on first use, so the command line starts fast)."""
        return importlib.import_module(f"{__name__}.{self.module}")


#: name -> :class:`Benchmark`, in the order the main job runs them.
BENCHMARKS: dict[str, Benchmark] = {
    "game": Benchmark("game", "RAD query game: solver and DepRound at n = 1e4..1e6, the cvxpy LP at 1e3, 1e4", 15),
    "losses": Benchmark(
        "losses",
        "per-example losses vs soft cross-entropy (4096 x 100, 1024 x 1000); teacher-accuracy fit at 10^6 points",
        40,
    ),
    "halfspace": Benchmark("halfspace", "forward-adjusted halfspace learner: run time against n and d", 30),
    "throughput": Benchmark(
        "throughput",
        "student training on CIFAR-shaped data: resident loop vs per-item "
        "DataLoader, images per second and peak memory",
        60,
    ),
    "selection": Benchmark(
        "selection", "every selector's time at n = 1e4..1e6 on one core; RAD's select at 1e6 <= 1 s", 135
    ),
    "scale": Benchmark(
        "scale",
        "sharded selection over memory-mapped pools of 1e7 and 1e8 points on one machine (time against 1e6-point "
        "pieces, peak memory; 4 GB of disk) and sharded teacher labeling's rows/s per rank",
        330,
    ),
    "distill": Benchmark(
        "distill",
        "every method on digits, gaussian_mixture and mnist1d, three labeled-set sizes, "
        "3 seeds (about 8 minutes on 2 cores)",
        490,
        {"grid": "methods"},
        {"seeds": 10},
    ),
    "ablation": Benchmark(
        "distill",
        "Weighted Distillation ablation: every weight scheme on soft and hard targets, "
        "same grid; mean ranks and the winner",
        180,
        {"grid": "ablation"},
        {"seeds": 10},
    ),
    "active": Benchmark(
        "active",
        "accuracy vs teacher queries for every selector with the vanilla and SLaM losses on "
        "digits and mnist1d, 5 seeds (about 8 minutes on 2 cores)",
        390,
        {},
        {"seeds": 10},
    ),
    "realdata": Benchmark(
        "realdata",
        "Fashion-MNIST under the papers' protocol: every method against vanilla, "
        "paired by seed, MLP and CNN students; active distillation with the teacher queried on "
        "demand",
        1500,
        {},
        {"full": True},
    ),
}
