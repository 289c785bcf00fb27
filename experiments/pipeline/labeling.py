r"""Label a large pool with a teacher, shard by shard, into one memory-mapped ``(n, K)`` ``.npy`` file that an
interrupted pass resumes.

:func:`label_pool` is the entry point::

    result = label_pool(teacher, "pool.npy", "labels.npy", mean=train_mean, std=train_std)
    labels = np.load("labels.npy", mmap_mode="r")   # (n, K) float32, row i = the teacher on pool row i

**Shards.** The pool's ``n`` rows are cut into ``S = ceil(n / shard_rows)`` shards of ``shard_rows`` rows (the
last one shorter); shard ``s`` holds the rows ``[s * shard_rows, min((s + 1) * shard_rows, n))``. Under
``torch.distributed`` (the default process group, e.g. started by ``torchrun``) rank ``r`` of ``W`` labels the
shards ``r, r + W, r + 2W, ...``; without a process group one process labels them all. Shards are independent
of the world size, so a pass started with two ranks may be finished by one, or the other way round.

**Files.** Beside ``OUT = NAME.npy`` lies the folder ``NAME.shards/``:

- ``OUT``: a ``.npy`` file of shape ``(n, K)``, ``float32`` or ``float16``, created once (by rank 0) with
  :func:`numpy.lib.format.open_memmap`; every rank writes its shards' rows into it through a memory map of
  those rows only, flushes them (``msync``) and unmaps them.
- ``NAME.shards/manifest.json``: which pass the folder belongs to: the teacher's identity (a digest of the
  module's class, parameters and buffers and the optional ``name``; for a callable, :attr:`Teacher.identity
  <robustdistill.experiments.pipeline.teacher.Teacher.identity>` of the user's ``name``), ``n``, ``K``,
  ``dtype``, ``shard_rows``, the input shape and dtype, the input kind, a digest of the normalisation and the
  precision. A folder of another pass is refused with a :class:`ValueError` naming the manifest, unless
  ``overwrite=True``; so is an existing ``OUT`` without a records folder (a file that is not a pass's).
- ``NAME.shards/shard_000012.json``: written after shard 12's rows are flushed: its row range, a digest of
  its input rows (so a changed pool is not trusted) and a digest of its output rows as written, and the
  digest of the manifest (a record of another pass is not trusted either).

Every JSON file is written atomically with a content digest
(:func:`~robustdistill.experiments.pipeline.files.write_json_atomic`). A rerun reads each of its shards'
records: a shard whose record is valid, whose input rows digest as recorded and whose rows in ``OUT`` digest as
recorded is reused; any other is labeled again. A record that fails its own digest, or rows in ``OUT`` that
fail theirs (a flipped byte, a torn write), are reported with a
:class:`~robustdistill.experiments.pipeline.files.DamagedFileWarning` and recomputed. So a pass killed at any
moment loses at most the shards in flight, and a finished pass reruns without calling the teacher (it still
reads the pool and the labels once, to check the digests).

**Memory.** Neither the pool nor the labels are ever held whole: the pool is read one shard at a time (from
the file with :func:`numpy.fromfile` when ``inputs`` is a path or a memory map of a whole ``.npy`` file, so no
page of it stays mapped; else by slicing the array given), goes to the teacher in blocks of whole batches of
about 8 MiB of raw rows (float inputs are standardised in float64 there, a few copies of the block), and the
labels of one shard are written through a map of their rows only, flushed and unmapped. A rank holds one
shard of input rows and one of labels at a time, plus the block in flight.

**The teacher.** An ``nn.Module`` returning logits is run as
:func:`~robustdistill.experiments.pipeline.training.predict_probs` runs it: in eval mode, without gradients,
on ``device``, in batches of ``batch_size``, the softmax in float32 (``amp``: its bfloat16 autocast, the
default on CUDA only), on the shard's rows normalised by
:class:`~robustdistill.experiments.pipeline.training.ResidentInputs` of ``kind``:

.. math::

    \text{image (uint8 } u\text{, channel } c\text{):}\quad x = (u / 255 - \mu_c) / \sigma_c,
    \qquad \text{tabular, sequence:}\quad x = (x_{\text{raw}} - \mu) / \sigma \text{ per feature.}

Give ``mean`` and ``std`` as the teacher was trained with (the training set's ``ResidentInputs.stats``); for
a module that takes raw inputs give ``mean=0, std=1``. When they are not given they are computed from the
whole pool first, by a chunked pass: :func:`~robustdistill.experiments.pipeline.training.image_stats` for
images (exact integer sums; this pass maps the pool file while it runs), and for tabular and sequence inputs
a two-pass float64 mean and population standard deviation per feature (a constant feature gets ``std = 1``),
read chunk by chunk. Every rank computes the same statistics, so the labels do not depend on the world size.

A callable ``batch (b, ...) -> (b, K)`` probabilities is queried as
:class:`~robustdistill.experiments.pipeline.teacher.Teacher` queries it: on the raw rows (no normalisation;
``kind``, ``mean`` and ``std`` are refused), ``batch_size`` rows per call, its answers checked to be ``(b, K)``
rows on the simplex. It must come with a ``name`` that identifies what its answers depend on (the manifest's
teacher identity).

**Distributed.** Every rank calls :func:`label_pool` with the same arguments. All ranks check the manifest
(so all refuse alike), rank 0 creates the file and the manifest, a barrier, then every rank labels its shards;
the counts and timings are summed over the ranks at the end
(:mod:`~robustdistill.experiments.distributed.collectives`). The ranks write disjoint rows of one file through
shared memory maps: they must see one file system with coherent ``mmap`` (one machine, or a cluster file
system that provides it). A rank that raises leaves the others waiting in a collective; ``torchrun`` then
stops the whole group.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from robustdistill.algorithms.results import Result
from robustdistill.algorithms.validation import check_choice, check_flag, check_int

from ..distributed.collectives import all_gather, all_sum, barrier, is_main, world
from .files import DamagedFileWarning, content_digest, read_json, remove_stale_temporaries, write_json_atomic
from .teacher import Teacher, module_digest
from .training import INPUT_KINDS, ResidentInputs, image_stats, predict_probs, resolve_device

__all__ = [
    "LABEL_DTYPES",
    "MANIFEST_NAME",
    "LabelingResult",
    "label_pool",
    "pool_stats",
    "records_folder",
    "shard_ranges",
]

#: The dtypes of the labels file.
LABEL_DTYPES = ("float32", "float16")
#: The manifest's file name inside the records folder.
MANIFEST_NAME = "manifest.json"
#: ``amp`` choices (those of :func:`~robustdistill.experiments.pipeline.training.predict_probs`).
AMP_CHOICES = ("auto", "bf16", "off")
_FORMAT = 1
#: Bytes of the pool read at a time by the statistics pass.
_STATS_CHUNK_BYTES = 64 * 2**20
#: Raw input bytes a module teacher is given at a time (rounded to whole batches; at least one batch).
_BLOCK_BYTES = 8 * 2**20


@dataclasses.dataclass(frozen=True)
class LabelingResult(Result):
    """What :func:`label_pool` did (the same on every rank: counts and times are summed or gathered over ranks).

    Attributes:
        path: the labels file ``(rows, num_classes)``; read it with ``np.load(path, mmap_mode="r")``.
        records: the folder of the manifest and the per-shard records.
        rows, num_classes, dtype, shard_rows, shards: the pass's layout.
        computed: shards labeled by the teacher in this call (all ranks).
        reused: shards whose record and rows checked out, not labeled again.
        damaged: of ``computed``, shards whose record or rows failed their digest (warned about).
        changed: of ``computed``, shards whose input rows differ from those their record was made from.
        rows_computed: rows labeled by the teacher in this call.
        seconds: wall time of the call (the slowest rank).
        rows_per_s: ``rows_computed / seconds`` (None when nothing was computed).
        rank_rows_per_s: per rank, its rows labeled over its time spent labeling them (reading the rows,
            the teacher, writing and flushing; not the checks of reused shards); None for a rank that
            labeled nothing.
        world_size: the number of ranks.
        teacher: the teacher's identity (SHA-256 hex).
        mean, std: the normalisation used (float64, broadcast to its full shape); None for a callable.
    """

    path: str
    records: str
    rows: int
    num_classes: int
    dtype: str
    shard_rows: int
    shards: int
    computed: int
    reused: int
    damaged: int
    changed: int
    rows_computed: int
    seconds: float
    rows_per_s: float | None
    rank_rows_per_s: tuple[float | None, ...]
    world_size: int
    teacher: str
    mean: np.ndarray | None = dataclasses.field(default=None, repr=False)
    std: np.ndarray | None = dataclasses.field(default=None, repr=False)


# --------------------------------------------------------------------------------------------------- layout
def records_folder(out: str | os.PathLike[str]) -> Path:
    """The folder of the manifest and the shard records of the labels file ``out``: ``NAME.shards`` beside
    ``NAME.npy``."""
    out = Path(out)
    return out.with_name(f"{out.stem}.shards")


def shard_ranges(n: int, shard_rows: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of every shard of ``n`` rows cut into shards of ``shard_rows`` (the last one shorter)."""
    n = check_int(n, "n", low=0)
    shard_rows = check_int(shard_rows, "shard_rows", low=1)
    return [(start, min(start + shard_rows, n)) for start in range(0, n, shard_rows)]


def _record_path(folder: Path, shard: int) -> Path:
    return folder / f"shard_{shard:06d}.json"


def _npy_layout(path: Path) -> tuple[tuple[int, ...], np.dtype, bool, int] | None:
    """``(shape, dtype, fortran_order, data offset)`` of a ``.npy`` file from its header; None when the file is
    absent, not a ``.npy`` file, or shorter than its header says."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                return None
            offset = fh.tell()
            size = os.fstat(fh.fileno()).st_size
    except (OSError, ValueError):
        return None
    if dtype.hasobject or size < offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        return None
    return tuple(int(d) for d in shape), dtype, bool(fortran), offset


# --------------------------------------------------------------------------------------------------- inputs
class _Pool:
    """The pool's rows, read shard by shard as in-memory copies: from the file (``numpy.fromfile`` at the
    rows' offset, nothing mapped) when it is a ``.npy`` path or a memory map of a whole C-ordered ``.npy`` or
    raw file, else by slicing the array given."""

    def __init__(self, inputs: Any) -> None:
        self.file: str | None = None
        self.offset = 0
        self.array: np.ndarray | None = None
        if isinstance(inputs, (str, os.PathLike)):
            path = Path(inputs)
            if not path.is_file():
                raise ValueError(f"inputs: no such file {str(path)!r}")
            layout = _npy_layout(path)
            if layout is None:
                raise ValueError(f"inputs: {str(path)!r} is not a readable .npy file")
            shape, dtype, fortran, offset = layout
            if fortran:
                self.array = np.load(path, mmap_mode="r")
            else:
                self.file, self.offset = str(path), offset
            self.shape, self.dtype = shape, dtype
        elif isinstance(inputs, np.ndarray):
            if (
                isinstance(inputs, np.memmap)
                and isinstance(inputs.base, mmap.mmap)
                and inputs.flags.c_contiguous
                and isinstance(inputs.filename, str)
            ):
                self.file, self.offset = inputs.filename, int(inputs.offset)
            else:
                self.array = inputs
            self.shape, self.dtype = tuple(int(d) for d in inputs.shape), inputs.dtype
        else:
            raise TypeError(
                "inputs must be a numpy array (a memory map included) or the path of a .npy file, got "
                f"{type(inputs).__name__}"
            )
        if len(self.shape) == 0:
            raise ValueError("inputs must hold examples along axis 0, got a 0-d array")
        if self.shape[0] == 0:
            raise ValueError(f"inputs is empty (shape {self.shape}): there is nothing to label")
        if self.dtype.hasobject or self.dtype.kind not in "biuf":
            raise TypeError(f"inputs must hold real numbers, got dtype {self.dtype}")
        self.n = self.shape[0]
        self.row_items = int(np.prod(self.shape[1:], dtype=np.int64))

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)``: a writable, C-contiguous copy in memory."""
        if self.array is not None:
            return np.array(self.array[start:stop], order="C")
        count = (stop - start) * self.row_items
        offset = self.offset + start * self.row_items * self.dtype.itemsize
        rows = np.fromfile(self.file, dtype=self.dtype, count=count, offset=offset)
        if rows.size != count:
            raise ValueError(f"inputs: {self.file!r} ended before row {stop} (it was changed while being read?)")
        return rows.reshape(stop - start, *self.shape[1:])

    def chunks(self) -> Any:
        """The rows in chunks of about 64 MiB, in order."""
        step = max(1, _STATS_CHUNK_BYTES // max(1, self.row_items * self.dtype.itemsize))
        for start in range(0, self.n, step):
            yield self.read(start, min(start + step, self.n))


def _infer_kind(shape: tuple[int, ...], dtype: np.dtype) -> str:
    if len(shape) == 4 and dtype == np.uint8:
        return "image"
    if len(shape) == 2:
        return "tabular"
    if len(shape) == 3:
        return "sequence"
    raise ValueError(
        f"kind: cannot tell the input kind of shape {shape} and dtype {dtype}; pass kind= one of {list(INPUT_KINDS)}"
    )


def pool_stats(inputs: Any, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The normalisation ``(mean, std)`` (float64) of a whole pool, computed chunk by chunk.

    ``kind="image"``: :func:`~robustdistill.experiments.pipeline.training.image_stats` (per channel, of the
    pixels scaled to [0, 1], from exact integer sums). ``"tabular"`` / ``"sequence"``: per feature (every
    coordinate of ``shape[1:]``), the mean and the population standard deviation, in float64 by two passes
    over ~64 MiB chunks (the second sums squared deviations from the mean, which is accurate where a
    one-pass sum of squares cancels); a constant feature gets ``std = 1``, as in
    :class:`~robustdistill.experiments.pipeline.training.ResidentInputs`. ``inputs``: an array, a memory map
    or a ``.npy`` path; it is never read whole.
    """
    kind = check_choice(kind, "kind", INPUT_KINDS)
    pool = inputs if isinstance(inputs, _Pool) else _Pool(inputs)
    if kind == "image":
        if len(pool.shape) != 4 or pool.dtype != np.uint8:
            raise ValueError(f"inputs: image inputs must be uint8 (n, C, H, W), got {pool.dtype} {pool.shape}")
        arr = pool.array if pool.array is not None else np.load(pool.file, mmap_mode="r")
        chunk = max(1, _STATS_CHUNK_BYTES // max(1, pool.row_items))
        try:
            return image_stats(arr, chunk=chunk)
        finally:
            del arr
    total = np.zeros(pool.shape[1:], dtype=np.float64)
    for part in pool.chunks():
        x = part.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError("inputs must be finite (found NaN or inf)")
        total += x.sum(axis=0)
    mean = total / pool.n
    squares = np.zeros(pool.shape[1:], dtype=np.float64)
    for part in pool.chunks():
        deviation = part.astype(np.float64) - mean
        squares += (deviation * deviation).sum(axis=0)
    std = np.sqrt(squares / pool.n)
    std[std == 0] = 1.0
    return mean, std


# --------------------------------------------------------------------------------------------------- teacher
def _module_identity(module: nn.Module, name: str | None) -> str:
    """SHA-256 (hex) of the module's class, its ``state_dict`` (names, dtypes, shapes, bytes; 0-d buffers such as
    BatchNorm's step count included) and ``name``: equal teachers, equal labels."""
    return content_digest({"module": module_digest(module), "name": name})


class _Labeler:
    """The teacher as a function of raw rows ``(b, ...)`` to float32 probabilities ``(b, K)``."""

    def __init__(
        self,
        teacher: Any,
        pool: _Pool,
        *,
        name: str | None,
        kind: str | None,
        mean: Any,
        std: Any,
        batch_size: int,
        device: torch.device,
        amp: str,
    ) -> None:
        self.batch_size = batch_size
        self.device = device
        self.amp = amp
        self.num_classes: int | None = None
        if isinstance(teacher, nn.Module):
            self.module: nn.Module | None = teacher
            self.oracle: Teacher | None = None
            self.identity = _module_identity(teacher, name)
            self.kind = check_choice(kind, "kind", INPUT_KINDS) if kind is not None else None
            self.kind = self.kind or _infer_kind(pool.shape, pool.dtype)
            if mean is None or std is None:
                computed = pool_stats(pool, self.kind)
                mean = computed[0] if mean is None else mean
                std = computed[1] if std is None else std
            probe = self._inputs(pool.read(0, 1), mean, std, 0)
            self.mean, self.std = probe.stats
            use_bf16 = amp == "bf16" or (amp == "auto" and device.type == "cuda")
            self.precision: str | None = "bfloat16 autocast" if use_bf16 else "float32"
        elif callable(teacher):
            if name is None:
                raise ValueError(
                    "name: a callable teacher needs name=, a string that identifies what its answers depend on "
                    "(it is the teacher's identity in the manifest)"
                )
            if kind is not None or mean is not None or std is not None:
                raise ValueError("kind, mean and std apply to an nn.Module teacher; a callable gets the raw rows")
            self.module = None
            self.oracle = Teacher(teacher, batch_size=batch_size, name=name)
            self.identity = self.oracle.identity
            self.kind, self.mean, self.std, self.precision = None, None, None, None
        else:
            raise TypeError(
                f"teacher must be an nn.Module returning logits or a callable returning probabilities, got "
                f"{type(teacher).__name__}"
            )

    def _inputs(self, rows: np.ndarray, mean: Any, std: Any, start: int) -> ResidentInputs:
        try:
            return ResidentInputs(rows, self.kind, self.device, mean=mean, std=std)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"inputs (rows from {start}): {exc}") from None

    def __call__(self, rows: np.ndarray, start: int) -> np.ndarray:
        where = f"rows [{start}, {start + len(rows)})"
        if self.oracle is not None:
            try:
                probs = self.oracle.evaluate(rows)
            except ValueError as exc:
                raise ValueError(f"teacher on {where}: {exc}") from None
        else:
            # blocks of whole batches (the forward passes of one call on the shard), so that the float64
            # standardisation of ResidentInputs never holds more than about _BLOCK_BYTES of raw rows at once
            row_bytes = max(1, rows[0].nbytes)
            block = self.batch_size * max(1, _BLOCK_BYTES // (self.batch_size * row_bytes))
            parts = []
            for first in range(0, len(rows), block):
                inputs = self._inputs(rows[first : first + block], self.mean, self.std, start + first)
                try:
                    parts.append(predict_probs(self.module, inputs, batch_size=self.batch_size, amp=self.amp))
                except RuntimeError as exc:  # e.g. inputs of another shape than the module's first layer
                    raise ValueError(f"teacher: the module failed on {where} ({' '.join(str(exc).split())})") from None
                except ValueError as exc:
                    raise ValueError(f"teacher on {where}: {exc}") from None
                del inputs
            probs = parts[0] if len(parts) == 1 else np.concatenate(parts)
            del parts
        if probs.ndim != 2 or probs.shape[0] != len(rows):
            raise ValueError(f"teacher on {where}: expected ({len(rows)}, K) probabilities, got shape {probs.shape}")
        if self.num_classes is None:
            if probs.shape[1] < 2:
                raise ValueError(f"teacher: it must give K >= 2 classes, got shape {probs.shape}")
            self.num_classes = int(probs.shape[1])
        elif probs.shape[1] != self.num_classes:
            raise ValueError(f"teacher on {where}: {probs.shape[1]} classes, earlier {self.num_classes}")
        if not np.all(np.isfinite(probs)):
            bad = int(np.flatnonzero(~np.isfinite(probs).all(axis=1))[0])
            raise ValueError(f"teacher: its probabilities of row {start + bad} are not finite (NaN or inf logits?)")
        return np.asarray(probs, dtype=np.float32)


# --------------------------------------------------------------------------------------------------- manifest
def _manifest_body(labeler: _Labeler, name: str | None, pool: _Pool, dtype: str, shard_rows: int) -> dict[str, Any]:
    norm = None if labeler.mean is None else content_digest({"mean": labeler.mean, "std": labeler.std})
    return {
        "format": _FORMAT,
        "teacher": labeler.identity,
        "teacher_kind": "module" if labeler.module is not None else "callable",
        "teacher_name": name,
        "rows": pool.n,
        "num_classes": labeler.num_classes,
        "dtype": dtype,
        "shard_rows": shard_rows,
        "shards": len(shard_ranges(pool.n, shard_rows)),
        "input_shape": list(pool.shape),
        "input_dtype": pool.dtype.str,
        "kind": labeler.kind,
        "normalisation": norm,
        "precision": labeler.precision,
    }


def _check_manifest(path: Path, found: dict[str, Any] | None, expected: dict[str, Any], overwrite: bool) -> bool:
    """Whether the folder holds this pass (True), or is free to (re)start (False); a foreign pass raises
    unless ``overwrite``."""
    if found is None:
        return False
    if found == expected:
        return True
    if overwrite:
        return False
    differ = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
    raise ValueError(
        f"{path}: this folder belongs to another labeling pass (it differs in {', '.join(differ)}); pass "
        "overwrite=True (--overwrite) to replace its labels, or choose another out"
    )


def _start_pass(out: Path, folder: Path, manifest: dict[str, Any], reuse: bool) -> None:
    """Rank 0: keep the pass (``reuse``, and the labels file has the layout) or start afresh: manifest and
    records removed, a new labels file, then the manifest."""
    shape, dtype = (manifest["rows"], manifest["num_classes"]), np.dtype(manifest["dtype"])
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    layout = _npy_layout(out)
    if reuse and layout is not None and layout[:3] == (shape, dtype, False):
        return
    (folder / MANIFEST_NAME).unlink(missing_ok=True)
    for record in folder.glob("shard_*.json"):
        record.unlink()
    labels = np.lib.format.open_memmap(out, mode="w+", dtype=dtype, shape=shape)
    labels.flush()
    del labels
    write_json_atomic(folder / MANIFEST_NAME, manifest, digest=True)


# --------------------------------------------------------------------------------------------------- shards
def _rows_view(out: Path, offset: int, dtype: np.dtype, num_classes: int, start: int, stop: int, mode: str) -> Any:
    """A memory map of the labels' rows ``[start, stop)`` only."""
    return np.memmap(
        out,
        dtype=dtype,
        mode=mode,
        offset=offset + start * num_classes * dtype.itemsize,
        shape=(stop - start, num_classes),
    )


def _read_rows(out: Path, offset: int, dtype: np.dtype, num_classes: int, start: int, stop: int) -> np.ndarray:
    """A copy of the labels' rows ``[start, stop)`` as they are in the file (the map is dropped at once)."""
    view = _rows_view(out, offset, dtype, num_classes, start, stop, "r")
    try:
        return np.array(view)
    finally:
        del view


def _shard_status(
    path: Path, record: dict[str, Any] | None, pass_id: str, start: int, stop: int, inputs_digest: str, labels: Any
) -> str:
    """``"ok"`` (reuse), ``"absent"``, ``"changed"`` (other input rows) or ``"damaged"`` (warned about)."""
    if record is None:
        return "damaged" if path.exists() else "absent"  # read_json has warned about a damaged one
    if (record.get("pass"), record.get("start"), record.get("stop")) != (pass_id, start, stop):
        warnings.warn(
            f"{path}: a record of another pass or of other rows; the shard is recomputed",
            DamagedFileWarning,
            stacklevel=3,
        )
        return "damaged"
    if record.get("inputs") != inputs_digest:
        return "changed"
    if content_digest(labels()) != record.get("labels"):
        warnings.warn(
            f"rows [{start}, {stop}) of the labels file do not match their record {path} (damaged or edited); "
            "they are recomputed",
            DamagedFileWarning,
            stacklevel=3,
        )
        return "damaged"
    return "ok"


def label_pool(
    teacher: nn.Module | Callable[[np.ndarray], Any],
    inputs: np.ndarray | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    dtype: str = "float32",
    shard_rows: int = 65536,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
    kind: str | None = None,
    mean: Any = None,
    std: Any = None,
    name: str | None = None,
    amp: str = "auto",
    overwrite: bool = False,
    progress: bool | None = None,
) -> LabelingResult:
    """Label every row of ``inputs`` with ``teacher`` into the ``(n, K)`` file ``out``, shard by shard,
    resuming a pass that was interrupted (module docstring: files, memory, normalisation, ranks).

    Args:
        teacher: an ``nn.Module`` mapping a batch ``(B, ...)`` to logits ``(B, K)``, or a callable mapping raw
            rows ``(b, ...)`` to probabilities ``(b, K)`` (then ``name`` is required).
        inputs: the pool ``(n, ...)``: a numpy array, a memory map (``np.load(..., mmap_mode="r")``) or the
            path of a ``.npy`` file; read one shard at a time.
        out: the labels file, a path ending in ``.npy``; its folder is created.
        dtype: ``"float32"`` or ``"float16"`` (the float32 probabilities rounded to nearest once).
        shard_rows: rows per shard (the unit of work, of resumption and of memory), >= 1.
        batch_size: rows per forward pass (per call of a callable teacher), >= 1.
        device: where a module runs (:func:`~robustdistill.experiments.pipeline.training.resolve_device`;
            None: CUDA when available, under several ranks the rank's ``LOCAL_RANK`` device).
        kind: ``"tabular"``, ``"sequence"`` or ``"image"`` (modules only); None: ``uint8 (n, C, H, W)`` is an
            image, ``(n, d)`` tabular, ``(n, C, L)`` a sequence.
        mean, std: the normalisation of a module's inputs (anything that broadcasts to the shapes of
            :class:`~robustdistill.experiments.pipeline.training.ResidentInputs`); None: computed from the
            whole pool (:func:`pool_stats`).
        name: names the teacher: required for a callable, optional for a module (added to its identity).
        amp: a module's autocast as in :func:`~robustdistill.experiments.pipeline.training.predict_probs`:
            ``"auto"`` (bfloat16 on CUDA), ``"bf16"`` or ``"off"``.
        overwrite: replace the labels of another pass found at ``out`` instead of refusing them.
        progress: a tqdm bar over this rank's shards on rank 0; None: when stderr is a terminal.

    Returns:
        A :class:`LabelingResult` (equal on every rank).

    Raises:
        TypeError, ValueError: bad arguments (naming the argument); a teacher that gives no ``(b, K)``
            probabilities on the simplex; another pass's folder at ``out`` without ``overwrite``.
    """
    started = time.perf_counter()
    dtype = check_choice(dtype, "dtype", LABEL_DTYPES)
    shard_rows = check_int(shard_rows, "shard_rows", low=1)
    batch_size = check_int(batch_size, "batch_size", low=1)
    amp = check_choice(amp, "amp", AMP_CHOICES)
    overwrite = check_flag(overwrite, "overwrite")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string or None, got {type(name).__name__}")
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a file path, got {type(out).__name__}")
    out = Path(out)
    if out.suffix != ".npy":
        raise ValueError(f"out must be a .npy file path, got {str(out)!r}")
    if progress is not None:
        progress = check_flag(progress, "progress")
    rank, size = world()
    if device is None and size > 1 and torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    device = resolve_device(device)
    pool = _Pool(inputs)
    labeler = _Labeler(
        teacher, pool, name=name, kind=kind, mean=mean, std=std, batch_size=batch_size, device=device, amp=amp
    )
    labeler(pool.read(0, 1), 0)  # the probe: K, and a clear error before any file is touched
    manifest = _manifest_body(labeler, name, pool, dtype, shard_rows)
    pass_id = content_digest(manifest)
    folder = records_folder(out)
    manifest_path = folder / MANIFEST_NAME

    # every rank checks the manifest (so all refuse alike); rank 0 then (re)creates; the others wait
    found = read_json(manifest_path)
    if found is None and out.exists() and not folder.is_dir() and not overwrite:
        raise ValueError(
            f"out: {out} exists and holds no labeling pass (there is no {folder}); pass overwrite=True "
            "(--overwrite) to replace it, or choose another out"
        )
    reuse = _check_manifest(manifest_path, found, manifest, overwrite)
    barrier()
    if is_main():
        out.parent.mkdir(parents=True, exist_ok=True)
        _start_pass(out, folder, manifest, reuse)
    barrier()
    layout = _npy_layout(out)
    if layout is None:
        raise ValueError(f"out: {out} is not readable as the labels file after it was created")
    offset = layout[3]
    label_dtype = np.dtype(dtype)
    num_classes = int(labeler.num_classes)  # type: ignore[arg-type]

    ranges = shard_ranges(pool.n, shard_rows)
    mine = list(range(rank, len(ranges), size))
    if progress is None:
        progress = sys.stderr.isatty()
    counts = {"computed": 0, "reused": 0, "damaged": 0, "changed": 0, "rows": 0}
    busy = 0.0
    bar = tqdm(mine, desc=f"label {out.name}", unit="shard", disable=not (progress and is_main()), file=sys.stderr)
    try:
        for shard in bar:
            start, stop = ranges[shard]
            began = time.perf_counter()
            record_path = _record_path(folder, shard)
            rows = pool.read(start, stop)
            inputs_digest = content_digest(rows)

            status = _shard_status(
                record_path,
                read_json(record_path),
                pass_id,
                start,
                stop,
                inputs_digest,
                lambda: _read_rows(out, offset, label_dtype, num_classes, start, stop),
            )
            if status == "ok":
                counts["reused"] += 1
                continue
            labels = labeler(rows, start).astype(label_dtype)
            del rows
            view = _rows_view(out, offset, label_dtype, num_classes, start, stop, "r+")
            view[:] = labels
            view.flush()
            del view
            write_json_atomic(
                record_path,
                {
                    "format": _FORMAT,
                    "pass": pass_id,
                    "shard": shard,
                    "start": start,
                    "stop": stop,
                    "inputs": inputs_digest,
                    "labels": content_digest(labels),
                },
                digest=True,
            )
            del labels
            busy += time.perf_counter() - began
            counts["computed"] += 1
            counts["rows"] += stop - start
            counts["damaged"] += status == "damaged"
            counts["changed"] += status == "changed"
    finally:
        bar.close()

    seconds_here = time.perf_counter() - started
    totals = all_sum([counts["computed"], counts["reused"], counts["damaged"], counts["changed"], counts["rows"]])
    per_rank = all_gather(np.array([seconds_here, busy, counts["rows"]], dtype=np.float64))
    seconds = max(float(p[0]) for p in per_rank)
    rows_computed = int(totals[4])
    return LabelingResult(
        path=str(out),
        records=str(folder),
        rows=pool.n,
        num_classes=num_classes,
        dtype=dtype,
        shard_rows=shard_rows,
        shards=len(ranges),
        computed=int(totals[0]),
        reused=int(totals[1]),
        damaged=int(totals[2]),
        changed=int(totals[3]),
        rows_computed=rows_computed,
        seconds=seconds,
        rows_per_s=rows_computed / seconds if rows_computed and seconds > 0 else None,
        rank_rows_per_s=tuple(float(p[2] / p[1]) if p[2] > 0 and p[1] > 0 else None for p in per_rank),
        world_size=size,
        teacher=labeler.identity,
        mean=labeler.mean,
        std=labeler.std,
    )
