"""Trained teachers cached on disk: a teacher trained by the pipeline is trained once per (teacher, data, split,
seed) and its weights are reused by every method and every rerun; its answers are cached by content by
:class:`~robustdistill.experiments.pipeline.teacher.Teacher`.

The key is a SHA-256 over a JSON description of everything that determines the weights — the dataset's
metadata and a digest of its arrays, the split's index digest, the teacher model and its options, its
training configuration and seed, and the package version — so a changed input gives a new key (the old
entry is simply not read). Entries are ``torch.save`` files with a digest of their contents, written
atomically and read with ``weights_only=True`` (:func:`~robustdistill.experiments.pipeline.files.save_torch`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustdistill.algorithms.results import to_jsonable

from .files import load_torch, remove_stale_temporaries, save_torch

__all__ = ["array_digest", "cache_key", "load_weights", "save_weights"]


def array_digest(*arrays: np.ndarray) -> str:
    """A short BLAKE2b digest of the arrays' shapes, dtypes and bytes (first 16 hex characters)."""
    h = hashlib.blake2b(digest_size=8)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def cache_key(description: dict[str, Any]) -> str:
    """SHA-256 (hex) of the JSON description (sorted keys)."""
    text = json.dumps(to_jsonable(description), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _path(folder: str | os.PathLike[str], key: str) -> Path:
    return Path(folder) / f"teacher-{key[:32]}.pt"


def load_weights(folder: str | os.PathLike[str] | None, key: str) -> dict[str, torch.Tensor] | None:
    """The trained teacher's ``state_dict`` saved under ``key``, or None when absent, damaged or another key's
    (a damaged entry fails its content digest, is warned about and retrained, never trusted). Loaded with
    ``weights_only=True`` on the CPU."""
    if folder is None:
        return None
    path = _path(folder, key)
    if path.parent.is_dir():
        remove_stale_temporaries(path.parent)
    data = load_torch(path)
    if data is None or data.get("key") != key or not isinstance(data.get("state_dict"), dict):
        return None
    return data["state_dict"]


def save_weights(folder: str | os.PathLike[str] | None, key: str, state_dict: dict[str, torch.Tensor]) -> Path | None:
    """Write the teacher's ``state_dict`` under ``key`` with its content digest, atomically; returns the path
    (None when ``folder`` is None)."""
    if folder is None:
        return None
    return save_torch(_path(folder, key), {"key": key, "state_dict": dict(state_dict)})
