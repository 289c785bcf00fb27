r"""The teacher as a paid oracle: queried on demand, every label counted, a budget enforced, answers cached.

A :class:`Teacher` wraps any of

- a ``torch.nn.Module`` returning logits: probabilities :math:`\mathrm{softmax}(z / T)` at the temperature
  ``T``, computed in eval mode without gradients, in batches of ``batch_size`` on the module's device;
  ``transform`` maps a batch of raw inputs (numpy) to the module's input tensor (default: a float32 tensor);
- any callable mapping a batch of raw inputs to ``(b, K)`` probabilities (a remote model, a paid API);
- a precomputed ``(n, K)`` array of probabilities, queried by row ``index`` instead of by inputs.

**Counting.** :attr:`Teacher.queries` is the number of distinct points whose labels were used (the cost a
user pays); :attr:`Teacher.calls` the number of points actually sent to the teacher (a disk-cache hit is a
used label but no call); :attr:`Teacher.evaluation_queries` the points answered by :meth:`Teacher.evaluate`
for evaluation only (test accuracy, diagnostics), which are neither charged nor budgeted.

**Budget and repeats.** With ``budget=B``, a query that would take :attr:`Teacher.queries` past ``B`` raises
:class:`TeacherBudgetError` before anything is asked or counted. A point asked again is answered from the
teacher's memory and not charged again. A point is identified by its row ``index`` for an array teacher and
otherwise by the content of its input (a digest of dtype, shape and bytes), so the same image asked twice,
or by two runs, is one label.

**Disk cache.** ``cache=FOLDER`` keeps every answer on disk, keyed by the teacher's identity and the
point's key: a rerun (or another method on the same pool) pays nothing again. The identity is a digest of
the module's weights, or of the array, plus ``name`` and the temperature; a callable, or a module with a
``transform``, must be given a ``name`` that identifies everything its answers depend on. Answers are kept
as float32 (rounded once, so a cached answer equals a fresh one bit for bit); each query's new answers are
one file, written atomically with a digest of its contents, so an interrupted run loses at most the query
in flight, and a file that is unreadable or fails its digest is ignored (its points are asked again, with a
``DamagedFileWarning``), never trusted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robustdistill.algorithms.validation import check_int, check_real

from .files import content_digest, load_npz, remove_stale_temporaries, save_npz

__all__ = ["Teacher", "TeacherBudgetError", "as_teacher", "module_digest", "row_keys"]

#: Rows of probabilities must sum to 1 within this tolerance (float32 softmax outputs are within ~1e-6).
ROW_SUM_TOL = 1e-3
_KEY_BYTES = 16


class TeacherBudgetError(RuntimeError):
    """A query would take the teacher's used labels past its budget (nothing was asked or counted)."""


def row_keys(inputs: np.ndarray) -> np.ndarray:
    """``(n, 16)`` uint8: a BLAKE2b digest of each row's dtype, shape and bytes, the content key of a point."""
    x = np.ascontiguousarray(inputs)
    head = f"{x.dtype.str}{x.shape[1:]}".encode()
    out = np.empty((x.shape[0], _KEY_BYTES), dtype=np.uint8)
    for i, row in enumerate(x.reshape(x.shape[0], -1).view(np.uint8) if x.size else x.reshape(x.shape[0], 0)):
        h = hashlib.blake2b(head, digest_size=_KEY_BYTES)
        h.update(row.tobytes())
        out[i] = np.frombuffer(h.digest(), dtype=np.uint8)
    return out


def _index_keys(index: np.ndarray) -> np.ndarray:
    """``(n, 16)`` uint8 keys of row indices (array teachers): the little-endian int64, zero-padded."""
    out = np.zeros((index.size, _KEY_BYTES), dtype=np.uint8)
    out[:, :8] = index.astype("<i8").view(np.uint8).reshape(-1, 8)
    return out


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            a = np.ascontiguousarray(part)
            h.update(f"{a.shape}{a.dtype.str}".encode())
            h.update(memoryview(a).cast("B"))
        else:
            h.update(repr(part).encode())
    return h.hexdigest()


def module_digest(module: nn.Module) -> str:
    """SHA-256 (hex) of the module's class and its ``state_dict``: every parameter and buffer (name, dtype, shape
    and bytes; 0-d buffers such as BatchNorm's step count included)."""
    kind = f"{type(module).__module__}.{type(module).__qualname__}"
    return content_digest({"module": kind, "state_dict": dict(module.state_dict())})


class _AnswerStore:
    """Answers on disk for one teacher identity: ``FOLDER/teacher-ID/answers-*.npz``, each ``keys`` (n, 16)
    uint8 and ``probs`` (n, K) float32, one file per query with new answers."""

    def __init__(self, folder: str | os.PathLike[str], identity: str) -> None:
        self.folder = Path(folder) / f"teacher-{identity[:32]}"
        self._loaded: dict[bytes, np.ndarray] | None = None

    def load(self) -> dict[bytes, np.ndarray]:
        if self._loaded is None:
            self._loaded = {}
            if self.folder.is_dir():
                remove_stale_temporaries(self.folder)
            for path in sorted(self.folder.glob("answers-*.npz")):
                entry = load_npz(path)  # a damaged entry is None (and warned about): its points are asked again
                keys, probs = (entry or {}).get("keys"), (entry or {}).get("probs")
                if (
                    keys is not None
                    and probs is not None
                    and keys.ndim == 2
                    and keys.shape[1] == _KEY_BYTES
                    and keys.dtype == np.uint8
                    and probs.ndim == 2
                    and len(keys) == len(probs)
                ):
                    self._loaded.update({k.tobytes(): p for k, p in zip(keys, probs.astype(np.float32))})
        return self._loaded

    def save(self, keys: np.ndarray, probs: np.ndarray) -> None:
        name = f"answers-{_digest(keys)[:24]}.npz"
        save_npz(self.folder / name, keys=keys, probs=probs.astype(np.float32))
        self.load().update({k.tobytes(): p for k, p in zip(keys, probs)})


class Teacher:
    """A teacher queried on demand (module docstring: counting, budget, repeats, disk cache).

    Args:
        source: an ``nn.Module`` (logits), a callable ``inputs (b, ...) -> probabilities (b, K)``, or an
            ``(n, K)`` array of probabilities (queried with ``index=``).
        temperature: ``T > 0`` of the module's softmax (modules only).
        batch_size: points per call to the module or callable; None: each query in one call.
        transform: modules only: raw input batch (numpy) -> the module's input tensor (on its device).
        budget: the most labels that may be used (:attr:`queries`); None: unlimited.
        cache: a folder for the answers on disk; None: memory only.
        name: identifies a callable (or a module with a ``transform``) for the disk cache; also shown in
            :meth:`to_dict`.

    Example::

        teacher = Teacher(big_model, budget=1000, cache="teacher_answers")
        probs = teacher.query(x_batch)          # (b, K); b labels charged
        teacher.query(x_batch)                  # the same points: from memory, nothing charged
        teacher.queries, teacher.remaining      # b, 1000 - b
    """

    def __init__(
        self,
        source: nn.Module | Callable[[np.ndarray], Any] | np.ndarray,
        *,
        temperature: float = 1.0,
        batch_size: int | None = 1024,
        transform: Callable[[np.ndarray], torch.Tensor] | None = None,
        budget: int | None = None,
        cache: str | os.PathLike[str] | None = None,
        name: str | None = None,
    ) -> None:
        temperature = check_real(temperature, "temperature", low=0.0, low_open=True)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {type(name).__name__}")
        if cache is not None and not isinstance(cache, (str, os.PathLike)):
            raise TypeError(f"cache must be a folder path or None, got {type(cache).__name__}")
        self.temperature = temperature
        self.batch_size = None if batch_size is None else check_int(batch_size, "batch_size", low=1)
        self.budget = None if budget is None else check_int(budget, "budget", low=0)
        self.name = name
        self.transform = transform
        self._array: np.ndarray | None = None
        self.module: nn.Module | None = None
        self._fn: Callable[[np.ndarray], Any] | None = None
        if isinstance(source, nn.Module):
            self.kind = "module"
            self.module = source
        elif isinstance(source, (np.ndarray, torch.Tensor)):
            self.kind = "array"
            self._array = _check_probs_array(
                np.asarray(source.detach().cpu() if isinstance(source, torch.Tensor) else source), "teacher array"
            )
        elif callable(source):
            self.kind = "callable"
            self._fn = source
        else:
            raise TypeError(f"teacher must be an nn.Module, a callable or an (n, K) array, got {type(source).__name__}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        if self.kind != "module" and (transform is not None or temperature != 1.0):
            raise ValueError("transform and temperature apply to an nn.Module teacher only")
        self._store: _AnswerStore | None = None
        if cache is not None:
            if self.kind == "callable" and name is None or transform is not None and name is None:
                raise ValueError(
                    "a callable teacher (or a module with a transform) needs name= to cache its "
                    "answers on disk: the name must identify what its answers depend on"
                )
            self._store = _AnswerStore(cache, self.identity)
        self._memory: dict[bytes, np.ndarray] = {}
        self.queries = 0
        self.calls = 0
        self.evaluation_queries = 0
        self.num_classes: int | None = None if self._array is None else int(self._array.shape[1])

    # ------------------------------------------------------------------------------------------ identity
    @property
    def identity(self) -> str:
        """SHA-256 (hex) of what determines the answers: the weights or the array, ``name``, the temperature."""
        if not hasattr(self, "_identity"):
            what = (
                module_digest(self.module)
                if self.module is not None
                else (_digest(self._array) if self._array is not None else None)
            )
            self._identity = _digest(self.kind, what, self.name, self.temperature)
        return self._identity

    @property
    def remaining(self) -> int | None:
        """Labels left in the budget (None: no budget)."""
        return None if self.budget is None else self.budget - self.queries

    def __repr__(self) -> str:
        budget = "" if self.budget is None else f", budget={self.budget}"
        return (
            f"Teacher({self.kind}{'' if self.name is None else ' ' + repr(self.name)}, queries={self.queries}{budget})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: kind, name, identity, temperature, budget and the three counters."""
        return {
            "kind": self.kind,
            "name": self.name,
            "identity": self.identity,
            "temperature": self.temperature,
            "budget": self.budget,
            "queries": self.queries,
            "calls": self.calls,
            "evaluation_queries": self.evaluation_queries,
        }

    # -------------------------------------------------------------------------------------------- queries
    def query(self, inputs: Any = None, *, index: Any = None) -> np.ndarray:
        """The teacher's probabilities ``(b, K)`` float32 on ``inputs`` (b, ...) (module, callable) or at the rows
        ``index`` (b,) (array); points not asked before are charged against the budget."""
        return self._answer(inputs, index, charge=True)

    __call__ = query

    def evaluate(self, inputs: Any = None, *, index: Any = None) -> np.ndarray:
        """Like :meth:`query` for evaluation only (test accuracy, diagnostics): counted in
        :attr:`evaluation_queries`, not charged, not budgeted."""
        return self._answer(inputs, index, charge=False)

    def _keys(self, inputs: Any, index: Any) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        if self.kind == "array":
            if index is None:
                raise ValueError("an array teacher is queried by row: pass index=")
            idx = np.asarray(index)
            if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
                raise ValueError(f"index must be a 1-D integer array, got shape {idx.shape} dtype {idx.dtype}")
            n = self._array.shape[0]  # type: ignore[union-attr]
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise ValueError(f"index out of range for a teacher array of {n} rows")
            return None, idx.astype(np.int64), _index_keys(idx)
        if inputs is None:
            raise ValueError(f"a {self.kind} teacher is queried with inputs")
        x = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
        if x.ndim < 1:
            raise ValueError("inputs must hold a batch of points along axis 0")
        if self.kind == "module" and self.transform is None and x.dtype.kind not in "biuf":
            raise TypeError(f"inputs of a module teacher must be real numbers, got dtype {x.dtype}")
        return x, None, row_keys(x)

    def _answer(self, inputs: Any, index: Any, *, charge: bool) -> np.ndarray:
        x, idx, keys = self._keys(inputs, index)
        raw = [k.tobytes() for k in keys]
        unique = list(dict.fromkeys(raw))
        stored = self._store.load() if self._store is not None else {}
        new = [k for k in unique if k not in self._memory] if charge else []
        if charge and self.budget is not None and self.queries + len(new) > self.budget:
            raise TeacherBudgetError(
                f"teacher budget exceeded: {len(new)} new point(s) asked, {self.queries} of {self.budget} already used"
            )
        known = {
            k: self._memory[k] if k in self._memory else stored[k] for k in unique if k in self._memory or k in stored
        }
        missing = [k for k in unique if k not in known]
        if missing:
            pos = {k: i for i, k in reversed(list(enumerate(raw)))}  # first occurrence of each key
            rows = np.array([pos[k] for k in missing], dtype=np.int64)
            probs = self._ask(None if x is None else x[rows], None if idx is None else idx[rows])
            self.calls += len(missing)
            if self._store is not None:
                self._store.save(keys[rows], probs)
            known.update(zip(missing, probs))
        if charge:
            self._memory.update({k: known[k] for k in new})
            self.queries += len(new)
        else:
            self.evaluation_queries += len(raw)
        if not raw:
            return np.empty((0, self.num_classes or 0), dtype=np.float32)
        return np.stack([known[k] for k in raw]).astype(np.float32, copy=False)

    def _ask(self, x: np.ndarray | None, idx: np.ndarray | None) -> np.ndarray:
        """The teacher itself on the points not known yet: (b, K) float32, checked."""
        if self._array is not None:
            probs = self._array[idx]
        else:
            step = self.batch_size or len(x)  # type: ignore[arg-type]
            parts = [self._call(x[i : i + step]) for i in range(0, len(x), step)]  # type: ignore[index]
            probs = np.concatenate(parts) if parts else np.empty((0, self.num_classes or 0))
        probs = _check_probs_array(np.asarray(probs), "the teacher's answer", rows=len(x) if x is not None else None)
        if self.num_classes is None:
            self.num_classes = int(probs.shape[1])
        elif probs.shape[1] != self.num_classes:
            raise ValueError(f"the teacher answered {probs.shape[1]} classes, earlier {self.num_classes}")
        return probs.astype(np.float32)

    def _call(self, x: np.ndarray) -> np.ndarray:
        if self._fn is not None:
            out = self._fn(x)
            out = out.detach().float().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
            if out.ndim != 2:
                raise ValueError(f"the teacher's answer must be ({len(x)}, K) probabilities, got shape {out.shape}")
            return out
        module = self.module
        assert module is not None
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        batch = self.transform(x) if self.transform is not None else torch.as_tensor(x, dtype=torch.float32)
        was_training = module.training
        module.eval()
        try:
            with torch.inference_mode():
                try:
                    logits = module(batch.to(device))
                except RuntimeError as exc:  # e.g. inputs of another width than the module's first layer
                    raise ValueError(
                        f"inputs of shape {tuple(batch.shape)}: the teacher module failed on them ({exc})"
                    ) from None
        finally:
            module.train(was_training)
        if logits.ndim != 2 or logits.shape[0] != len(x):
            raise ValueError(f"the teacher module must return (B, K) logits, got shape {tuple(logits.shape)}")
        return torch.softmax(logits.float() / self.temperature, dim=1).cpu().numpy()


def _check_probs_array(p: np.ndarray, what: str, rows: int | None = None) -> np.ndarray:
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"{what} must be (n, K) probabilities with K >= 2, got shape {p.shape}")
    if rows is not None and p.shape[0] != rows:
        raise ValueError(f"{what} has {p.shape[0]} rows for {rows} points")
    if not np.issubdtype(p.dtype, np.floating) or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{what} must hold finite, non-negative probabilities")
    if p.size and np.max(np.abs(p.sum(axis=1) - 1.0)) > ROW_SUM_TOL:
        raise ValueError(
            f"{what}: rows must sum to 1 (off by up to {np.max(np.abs(p.sum(axis=1) - 1.0)):.3g}); "
            "pass probabilities, not logits"
        )
    return p


def as_teacher(teacher: Any, **options: Any) -> Teacher:
    """``teacher`` itself when it is a :class:`Teacher` (``options`` must then be empty), else ``Teacher(teacher,
    **options)``."""
    if isinstance(teacher, Teacher):
        if options:
            raise ValueError(f"options {sorted(options)} given for a Teacher that is already built")
        return teacher
    return Teacher(teacher, **options)
