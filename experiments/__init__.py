"""Experiments layer, by role:

- :mod:`.pipeline`: datasets, models, the training loop, the teacher, the methods as the pipeline runs them,
  ``run_distillation`` and ``run_active_distillation``;
- :mod:`.benchmarks`: one module per benchmark and the ``BENCHMARKS`` registry;
- :mod:`.cli`: the ``robustdistill`` command line and the main job (``reproduce``).

``run_distillation``, ``run_active_distillation``, ``Teacher``, ``load_dataset``, ``from_arrays``,
``from_torch_dataset`` and ``make_splits`` are importable from here; they load on first use
(so ``robustdistill --help`` does not import torch's training stack)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "Teacher",
    "TeacherBudgetError",
    "from_arrays",
    "from_torch_dataset",
    "load_dataset",
    "make_splits",
    "run_active_distillation",
    "run_distillation",
]

_LAZY = {
    "run_distillation": "pipeline.distill",
    "run_active_distillation": "pipeline.active",
    "load_dataset": "pipeline.data",
    "make_splits": "pipeline.data",
    "from_arrays": "pipeline.data",
    "from_torch_dataset": "pipeline.data",
    "Teacher": "pipeline.teacher",
    "TeacherBudgetError": "pipeline.teacher",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
