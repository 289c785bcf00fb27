"""Tiny IDX files (the MNIST-family format) written into a test's folder."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

IDX_SETS = {"fashion_mnist": "fashion-mnist", "mnist": "MNIST", "kmnist": "KMNIST_data"}  # name: subfolder
TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(arr: np.ndarray, *, magic: bytes = b"\0\0", code: int = 0x08) -> bytes:
    """``arr`` (uint8) as an IDX file: magic (two bytes, type code, ndim), big-endian uint32 sizes, C-order data."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    return magic + bytes([code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def gz_bytes(raw: bytes) -> bytes:
    """``raw`` gzipped (reproducibly: no timestamp)."""
    return gzip.compress(raw, mtime=0)


def write_idx(path: Path, content: np.ndarray | bytes, *, gz: bool = False) -> Path:
    """Write an IDX array (or raw bytes) to ``path``, or gzipped to ``path.gz``; returns the file written."""
    raw = content if isinstance(content, bytes) else idx_bytes(content)
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gz_bytes(raw)
    path.write_bytes(raw)
    return path


def images(m: int, height: int = 28, width: int = 28, offset: int = 0) -> np.ndarray:
    """(m, H, W) uint8 whose pixels encode image, row and column: a transposed or shifted read changes them."""
    i, r, c = np.meshgrid(np.arange(m), np.arange(height), np.arange(width), indexing="ij")
    return ((offset + 37 * i + 5 * r + c) % 256).astype(np.uint8)


def write_set(
    folder: Path, *, gz: bool = False, m: int = 6, m_test: int = 3, offset: int = 0, height: int = 28, width: int = 28
) -> dict[str, np.ndarray]:
    """The four IDX files of a set in ``folder``; returns the arrays written, keyed by file name."""
    arrays = {
        TRAIN_IMAGES: images(m, height, width, offset),
        TRAIN_LABELS: ((np.arange(m) + offset) % 10).astype(np.uint8),
        TEST_IMAGES: images(m_test, height, width, offset + 100),
        TEST_LABELS: ((9 - np.arange(m_test) + offset) % 10).astype(np.uint8),
    }
    for filename, arr in arrays.items():
        write_idx(folder / filename, arr, gz=gz)
    return arrays
