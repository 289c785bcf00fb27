"""A user's own model module, named from configs as ``user_models:make_student`` (pytest puts the tests folder on
``sys.path``)."""

from __future__ import annotations

from torch import nn


def make_student(seed: int, width: int = 8) -> nn.Module:
    """An untrained student for 64-feature, 10-class inputs (the digits)."""
    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))
