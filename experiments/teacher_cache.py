"""Teacher outputs cached on disk: the teacher's probabilities on the validation set, the unlabeled pool and
the test set are computed once per (teacher, data, split, seed) and reused by every method.

The key is a SHA-256 over a JSON description of everything that determines the outputs — the dataset's
metadata and a digest of its arrays, the split's index digest, the teacher model and its options, its
training configuration and seed, and the package version — so a changed input gives a new key (the old
entry is simply not read). Entries are ``.npz`` files written atomically (temporary file, then
``os.replace``) and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from robustdistill.algorithms.results import to_jsonable

from .reporting import write_atomic

__all__ = ["array_digest", "cache_key", "load", "save"]

_FIELDS = ("val", "pool", "test")
#: Optional fields: the MC-dropout uncertainty on the pool (teachers with dropout; UPS) and the penultimate
#: features on the pool (VID).
_OPTIONAL = ("pool_std", "pool_features")


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
    return Path(folder) / f"teacher-{key[:32]}.npz"


def load(folder: str | os.PathLike[str] | None, key: str) -> dict[str, np.ndarray] | None:
    """The cached outputs ``{"val", "pool", "test"}`` (float32 (n, K) each; and the optional fields when saved), or
    None when absent or unreadable (a damaged entry is recomputed, never trusted)."""
    if folder is None:
        return None
    path = _path(folder, key)
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["key"]) != key:
                return None
            out = {name: np.asarray(f[name]) for name in _FIELDS}
            out.update({name: np.asarray(f[name]) for name in _OPTIONAL if name in f.files})
            return out
    except (OSError, KeyError, ValueError):
        return None


def save(folder: str | os.PathLike[str] | None, key: str, outputs: dict[str, np.ndarray]) -> Path | None:
    """Write the outputs atomically; returns the path (None when ``folder`` is None)."""
    if folder is None:
        return None
    fields = _FIELDS + tuple(name for name in _OPTIONAL if name in outputs)
    arrays = {name: np.asarray(outputs[name], dtype=np.float32) for name in fields}
    return write_atomic(_path(folder, key), lambda fh: np.savez(fh, key=np.array(key), **arrays))
