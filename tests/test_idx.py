"""MNIST-format (IDX) image sets: ``fashion_mnist``, ``mnist``, ``kmnist``. Tiny IDX files, plain and gzipped,
are written into ``tmp_path``; only the test marked slow reads the Debian package's real Fashion-MNIST files
(skipped where ``dataset-fashion-mnist`` is not installed)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from idx_files import (
    IDX_SETS,
    SYSTEM_DIR,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    gz_bytes,
    idx_bytes,
    images,
    write_idx,
    write_set,
)

from robustdistill.experiments.pipeline import data as data_module
from robustdistill.experiments.pipeline.data import DATA_ENV, DATASETS, load_dataset, read_idx


def _assert_set(ds, arrays: dict[str, np.ndarray]) -> None:
    m, height, width = arrays[TRAIN_IMAGES].shape
    assert (ds.X.shape, ds.X.dtype, ds.y.dtype) == ((m, 1, height, width), np.uint8, np.int64)
    assert ds.kind == "image" and ds.num_classes == 10
    np.testing.assert_array_equal(ds.X[:, 0], arrays[TRAIN_IMAGES])
    np.testing.assert_array_equal(ds.y, arrays[TRAIN_LABELS])
    X_test, y_test = ds.test
    assert X_test.shape == (arrays[TEST_IMAGES].shape[0], 1, height, width) and y_test.dtype == np.int64
    np.testing.assert_array_equal(X_test[:, 0], arrays[TEST_IMAGES])
    np.testing.assert_array_equal(y_test, arrays[TEST_LABELS])


# ------------------------------------------------------------------------------------------ loading


def test_the_three_sets_are_registered():
    assert {"fashion_mnist", "mnist", "kmnist"} <= set(DATASETS)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("name", sorted(IDX_SETS))
def test_round_trip_from_folder_and_parent(tmp_path, name, gz):
    folder = tmp_path / IDX_SETS[name]
    arrays = write_set(folder, gz=gz)
    for root in (folder, tmp_path):
        ds = load_dataset(name, root=root)
        _assert_set(ds, arrays)
        assert len(ds.info["files"]) == 4 and all(f.endswith(".gz") == gz for f in ds.info["files"])
        assert ds.info["available"] == 6 and ds.info["root"] == str(root)
    assert not ds.X.flags.writeable


def test_each_name_reads_its_own_subfolder(tmp_path):
    """Three sets side by side: 'mnist' is in every folder name, yet each set finds only its own files."""
    written = {
        name: write_set(tmp_path / folder, offset=3 * i, gz=i == 1)
        for i, (name, folder) in enumerate(sorted(IDX_SETS.items()))
    }
    for name, arrays in written.items():
        _assert_set(load_dataset(name, root=tmp_path), arrays)


def test_plain_file_is_preferred_and_forms_can_mix(tmp_path):
    plain = write_set(tmp_path, offset=0)
    write_set(tmp_path, gz=True, offset=50)  # the .gz twins hold other pixels: they must not be read
    _assert_set(load_dataset("mnist", root=tmp_path), plain)
    (tmp_path / TRAIN_IMAGES).unlink()  # now the train images come from the .gz file, the rest stay plain
    ds = load_dataset("mnist", root=tmp_path)
    np.testing.assert_array_equal(ds.X[:, 0], images(6, offset=50))
    assert [Path(f).name for f in ds.info["files"]] == [f"{TRAIN_IMAGES}.gz", TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]


def test_any_image_size_is_accepted(tmp_path):
    arrays = write_set(tmp_path, height=5, width=3, gz=True)
    ds = load_dataset("kmnist", root=tmp_path)
    _assert_set(ds, arrays)
    assert ds.X.shape == (6, 1, 5, 3)


def test_n_is_a_seeded_subset_and_the_test_split_is_kept(tmp_path):
    arrays = write_set(tmp_path, m=20, gz=True)
    a, b, c = (load_dataset("fashion_mnist", root=tmp_path, n=7, rng=seed) for seed in (1, 1, 2))
    assert a.X.shape == (7, 1, 28, 28) and a.info["subset"] == 7 and a.info["available"] == 20
    assert a.test[0].shape == (3, 1, 28, 28)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)
    rows = [int(np.flatnonzero((arrays[TRAIN_IMAGES] == x[0]).all(axis=(1, 2)))[0]) for x in a.X]
    assert rows == sorted(rows) and len(set(rows)) == 7  # distinct rows, in file order
    np.testing.assert_array_equal(a.y, arrays[TRAIN_LABELS][rows])
    with pytest.raises(ValueError, match="n=21 is larger than the 20 examples"):
        load_dataset("mnist", root=tmp_path, n=21, rng=0)


def test_read_idx_returns_the_header_shape(tmp_path):
    cube = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for gz in (False, True):
        path = write_idx(tmp_path / f"cube{gz}", cube, gz=gz)
        out = read_idx(path)
        assert out.dtype == np.uint8 and not out.flags.writeable
        np.testing.assert_array_equal(out, cube)
        np.testing.assert_array_equal(read_idx(str(path), ndim=3), cube)
    with pytest.raises(ValueError, match="3 dimensions, expected 1"):
        read_idx(path, ndim=1)


# ------------------------------------------------------------------------------- folders and defaults


def test_fashion_mnist_default_folder(tmp_path, monkeypatch):
    system = tmp_path / "system"
    arrays = write_set(system, gz=True)
    monkeypatch.setattr(data_module, "FASHION_MNIST_SYSTEM_DIR", str(system))
    monkeypatch.delenv(DATA_ENV, raising=False)
    ds = load_dataset("fashion_mnist")
    _assert_set(ds, arrays)
    assert ds.info["root"] == str(system)
    # the environment variable and root= take precedence over the system folder
    mine = write_set(tmp_path / "mine" / "Fashion_MNIST", offset=7)
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "mine"))
    _assert_set(load_dataset("fashion_mnist"), mine)
    monkeypatch.delenv(DATA_ENV)
    _assert_set(load_dataset("fashion_mnist", root=tmp_path / "mine"), mine)


def test_missing_fashion_mnist_default_folder_says_how_to_install(tmp_path, monkeypatch):
    absent = tmp_path / "absent"
    monkeypatch.setattr(data_module, "FASHION_MNIST_SYSTEM_DIR", str(absent))
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("fashion_mnist")
    message = str(info.value)
    assert f"no root= given, {DATA_ENV} is unset and the default folder {absent} does not exist" in message
    assert "apt-get install dataset-fashion-mnist" in message and "/usr/share/datasets/fashion-mnist" in message
    assert "pass root=" in message
    assert all(f in message for f in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS))
    # the default folder exists but lacks a file: that file is named, with the same advice
    write_set(absent, gz=True)
    (absent / f"{TEST_LABELS}.gz").unlink()
    with pytest.raises(FileNotFoundError, match=f"missing under .*absent: {TEST_LABELS}\\. .*dataset-fashion-mnist"):
        load_dataset("fashion_mnist")


@pytest.mark.parametrize(("name", "source"), [("mnist", "yann.lecun.com"), ("kmnist", "github.com/rois-codh/kmnist")])
def test_mnist_and_kmnist_need_a_folder_and_say_where_files_come_from(tmp_path, monkeypatch, name, source):
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(ValueError, match=f"pass root=.*{DATA_ENV}.*{re.escape(source)}"):
        load_dataset(name)
    with pytest.raises(FileNotFoundError) as info:
        load_dataset(name, root=tmp_path / "nowhere")
    message = str(info.value)
    assert "does not exist" in message and source in message and "dataset-fashion-mnist" not in message
    assert all(f in message for f in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS))
    write_set(tmp_path, gz=True)
    (tmp_path / f"{TRAIN_LABELS}.gz").unlink()
    with pytest.raises(FileNotFoundError, match=f"missing under {re.escape(str(tmp_path))}: {TRAIN_LABELS}\\. "):
        load_dataset(name, root=tmp_path)


# ---------------------------------------------------------------------------------- malformed files


def _corrupt_gzip(raw: bytes) -> bytes:
    """``raw`` gzipped, then 8 bytes in the middle of the deflate stream inverted."""
    packed = bytearray(gz_bytes(raw))
    middle = len(packed) // 2
    packed[middle : middle + 8] = bytes(b ^ 0xFF for b in packed[middle : middle + 8])
    return bytes(packed)


MALFORMED = {
    # case: (file, gzipped, the file's bytes made from the valid array, expected message)
    "wrong magic": (TRAIN_IMAGES, False, lambda a: idx_bytes(a, magic=b"\x01\x00"), "wrong magic number 0x01000803"),
    "dtype code": (
        TRAIN_IMAGES,
        False,
        lambda a: idx_bytes(a, code=0x0D),
        r"type code 0x0d \(float\) is not supported",
    ),
    "images 2-d": (TRAIN_IMAGES, False, lambda a: idx_bytes(a.reshape(len(a), -1)), "2 dimensions, expected 3"),
    "labels 2-d": (TEST_LABELS, True, lambda a: gz_bytes(idx_bytes(a.reshape(-1, 1))), "2 dimensions, expected 1"),
    "too short": (TRAIN_LABELS, False, lambda a: b"\0\0", "shorter than the 4-byte magic number"),
    "truncated header": (TRAIN_IMAGES, False, lambda a: idx_bytes(a)[:10], "truncated IDX file: 10 bytes"),
    "truncated data": (
        TEST_IMAGES,
        True,
        lambda a: gz_bytes(idx_bytes(a)[:-5]),
        r"truncated IDX file: shape \(3, 28, 28\) needs 2352 data bytes, found 2347",
    ),
    "trailing bytes": (TRAIN_LABELS, False, lambda a: idx_bytes(a) + b"xyz", "3 trailing bytes"),
    "count mismatch": (
        TRAIN_LABELS,
        True,
        lambda a: gz_bytes(idx_bytes(a[:5])),
        "holds 6 images but .* holds 5 labels",
    ),
    "label range": (TEST_LABELS, False, lambda a: idx_bytes(np.array([0, 10, 3])), r"labels must lie in 0\.\.9"),
    "corrupt gzip": (TRAIN_IMAGES, True, lambda a: _corrupt_gzip(idx_bytes(a)), "corrupt gzip stream"),
    "cut gzip": (TEST_IMAGES, True, lambda a: gz_bytes(idx_bytes(a))[:-30], "corrupt gzip stream"),
    "not gzip": (TRAIN_LABELS, True, lambda a: idx_bytes(a), "corrupt gzip stream"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_raise_value_errors_naming_the_file(tmp_path, case):
    filename, gz, content, match = MALFORMED[case]
    arrays = write_set(tmp_path, gz=gz)
    path = tmp_path / (f"{filename}.gz" if gz else filename)
    path.write_bytes(content(arrays[filename]))
    with pytest.raises(ValueError, match=match) as info:
        load_dataset("mnist", root=tmp_path)
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------ the real files


@pytest.mark.slow
@pytest.mark.skipif(not SYSTEM_DIR.is_dir(), reason="the Debian package dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_the_debian_package():
    ds = load_dataset("fashion_mnist", root=SYSTEM_DIR)
    assert ds.X.shape == (60000, 1, 28, 28) and ds.test[0].shape == (10000, 1, 28, 28)
    assert np.bincount(ds.y).tolist() == [6000] * 10 and np.bincount(ds.test[1]).tolist() == [1000] * 10
    assert ds.X.dtype == np.uint8 and int(ds.X.max()) == 255
