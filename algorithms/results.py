"""Base for result objects: small frozen dataclasses whose ``to_dict()`` is JSON-ready."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np


def to_jsonable(value: Any) -> Any:
    """numpy scalars and arrays to Python numbers and lists, recursively."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


class Result:
    """Mixin for frozen dataclass results: arrays are made read-only; ``to_dict()`` for JSON.

    A subclass may name fields in ``writable_fields`` to leave them writable: such an array is used as
    is when it is writable, and copied when it is not, so the result never shares a frozen buffer.
    That is for arrays handed straight to libraries that refuse read-only buffers (``torch.as_tensor``
    warns on a non-writable numpy array), e.g. :attr:`Selection.indices
    <robustdistill.algorithms.selection.Selection.indices>`.
    """

    #: Names of ndarray fields left writable (every other ndarray field is made read-only).
    writable_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if not isinstance(value, np.ndarray):
                continue
            if f.name in self.writable_fields:
                if not value.flags.writeable:
                    object.__setattr__(self, f.name, value.copy())
            else:
                value.setflags(write=False)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)
