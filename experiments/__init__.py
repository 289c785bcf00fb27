"""Experiments layer: datasets (:mod:`.data`), models (:mod:`.models`), the training loop (:mod:`.training`),
the distillation methods (:mod:`.methods`) and pipeline (:mod:`.distill`), the active loop (:mod:`.active`),
benchmarks (``bench_*``) and the
command line (:mod:`.cli`).

``run_distillation``, ``run_active_distillation``, ``load_dataset`` and ``make_splits`` are importable from here; they load on first use
(so ``robustdistill --help`` does not import torch's training stack)."""

from __future__ import annotations

from typing import Any

__all__ = ["load_dataset", "make_splits", "run_active_distillation", "run_distillation"]

_LAZY = {
    "run_distillation": "distill",
    "run_active_distillation": "active",
    "load_dataset": "data",
    "make_splits": "data",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
