"""The teacher queried on demand: every label counted once, the budget enforced before anything is asked, repeats
answered from memory, answers cached on disk by content (a rerun pays nothing), damaged cache files ignored."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from robustdistill.experiments.pipeline.files import DamagedFileWarning
from robustdistill.experiments.pipeline.teacher import Teacher, TeacherBudgetError, as_teacher, row_keys


class Counting:
    """A callable teacher that records how many points it was sent."""

    def __init__(self) -> None:
        self.sent = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.sent += len(x)
        z = np.stack([x.sum(1), -x.sum(1), x[:, 0]], axis=1)
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)


def _x(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


def test_counts_each_point_once_and_answers_repeats_from_memory():
    fn = Counting()
    t = Teacher(fn, budget=10)
    x = _x(6)
    first = t.query(x[:4])
    assert first.shape == (4, 3) and first.dtype == np.float32 and t.queries == 4 and fn.sent == 4
    again = t.query(x[2:6])  # two repeats, two new points
    np.testing.assert_array_equal(again[:2], first[2:])
    assert t.queries == 6 and fn.sent == 6 and t.remaining == 4
    t.query(np.concatenate([x[:1], x[:1]]))  # the same point twice in one query: nothing new
    assert t.queries == 6


def test_the_budget_refuses_before_asking_or_counting():
    fn = Counting()
    t = Teacher(fn, budget=5)
    t.query(_x(3))
    with pytest.raises(TeacherBudgetError, match="3 of 5"):
        t.query(_x(3, seed=1))
    assert t.queries == 3 and fn.sent == 3  # nothing was asked
    t.query(_x(3))  # repeats still answer
    t.query(_x(2, seed=2))
    assert t.queries == 5 and t.remaining == 0


def test_evaluation_is_counted_apart_and_never_charged():
    fn = Counting()
    t = Teacher(fn, budget=2)
    t.evaluate(_x(50))
    assert t.queries == 0 and t.evaluation_queries == 50 and fn.sent == 50
    t.query(_x(2))  # the two labels of the budget are still there
    assert t.queries == 2


def test_disk_cache_makes_a_rerun_free_and_ignores_damaged_files(tmp_path):
    fn = Counting()
    x = _x(20)
    first = Teacher(fn, cache=tmp_path, name="api-v1").query(x)
    assert fn.sent == 20
    rerun = Teacher(fn, cache=tmp_path, name="api-v1")
    np.testing.assert_array_equal(rerun.query(x), first)  # bit for bit: stored as float32 once
    assert fn.sent == 20 and rerun.queries == 20 and rerun.calls == 0  # labels used, nothing asked
    other = Teacher(fn, cache=tmp_path, name="api-v2")  # another identity does not read them
    other.query(x[:5])
    assert fn.sent == 25
    for path in tmp_path.rglob("answers-*.npz"):
        path.write_bytes(b"damaged")
    fresh = Teacher(fn, cache=tmp_path, name="api-v1")
    with pytest.warns(DamagedFileWarning, match="answers-.*npz: not a readable npz file"):
        np.testing.assert_array_equal(fresh.query(x[:3]), first[:3])
    assert fn.sent == 28 and fresh.calls == 3  # recomputed, not trusted


def test_disk_cache_entries_with_other_values_are_not_used(tmp_path):
    """An answer file with one flipped byte of the probabilities (the zip's checksum, or else the digest,
    fails), or rewritten with the right keys but other answers and no digest: its points are asked again."""
    fn = Counting()
    x = _x(20)
    first = Teacher(fn, cache=tmp_path, name="api").query(x)
    (path,) = tmp_path.rglob("answers-*.npz")
    data = bytearray(path.read_bytes())
    at = bytes(data).index(first[7].tobytes())  # the stored probabilities of point 7
    data[at + 2] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.warns(DamagedFileWarning, match=r"answers-.*\.npz: .*it is recomputed"):
        np.testing.assert_array_equal(Teacher(fn, cache=tmp_path, name="api").query(x), first)
    assert fn.sent == 40
    for path in tmp_path.rglob("answers-*.npz"):  # the same keys with other answers, written without a digest
        with np.load(path) as f:
            keys = f["keys"]
        np.savez(path, keys=keys, probs=np.full((len(keys), 3), 1 / 3, dtype=np.float32))
    with pytest.warns(DamagedFileWarning, match="no content digest"):
        np.testing.assert_array_equal(Teacher(fn, cache=tmp_path, name="api").query(x), first)
    assert fn.sent == 60


def test_module_teacher_temperature_and_identity(tmp_path):
    torch.manual_seed(0)
    module = nn.Linear(4, 3)
    x = _x(5)
    z = module(torch.as_tensor(x)).detach()
    t = Teacher(module, temperature=2.0)
    np.testing.assert_allclose(t.query(x), torch.softmax(z / 2.0, dim=1).numpy(), rtol=1e-6)
    assert module.training  # the mode is restored
    same = Teacher(module, temperature=2.0, cache=tmp_path)
    assert same.identity == t.identity != Teacher(module).identity
    with torch.no_grad():
        module.weight.add_(1.0)
    assert Teacher(module, temperature=2.0).identity != t.identity  # new weights, new answers


def test_array_teacher_is_queried_by_row():
    probs = np.eye(3)[[0, 1, 2, 1]] * 0.7 + 0.1
    t = Teacher(probs, budget=3)
    np.testing.assert_allclose(t.query(index=[3, 0]), probs[[3, 0]], rtol=1e-6)
    assert t.queries == 2
    with pytest.raises(ValueError, match="index"):
        t.query(_x(1))
    with pytest.raises(ValueError, match="out of range"):
        t.query(index=[4])


@pytest.mark.parametrize(
    ("source", "options", "error", "message"),
    [
        (lambda x: np.ones((len(x), 3)), {}, ValueError, "sum to 1"),  # logits / scores, not probabilities
        (lambda x: np.full((len(x) + 1, 3), 1 / 3), {}, ValueError, "rows for"),
        (lambda x: np.full((len(x), 3), np.nan), {}, ValueError, "finite"),
        (Counting(), {"cache": "somewhere"}, ValueError, "name="),
        (Counting(), {"temperature": 2.0}, ValueError, "nn.Module"),
        ("not a teacher", {}, TypeError, "teacher must be"),
        (Counting(), {"budget": -1}, ValueError, "budget"),
        (Counting(), {"temperature": 0.0}, ValueError, "temperature"),
    ],
)
def test_bad_teachers_and_answers_fail_clearly(source, options, error, message):
    with pytest.raises(error, match=message):
        Teacher(source, **options).query(_x(2))


def test_as_teacher_keeps_a_built_teacher():
    t = Teacher(Counting())
    assert as_teacher(t) is t and isinstance(as_teacher(Counting()), Teacher)
    with pytest.raises(ValueError, match="already built"):
        as_teacher(t, budget=3)


@given(st.integers(1, 30), st.integers(0, 2**31 - 1))
def test_row_keys_tell_rows_apart_by_content(n, seed):
    x = np.random.default_rng(seed).integers(0, 3, size=(n, 2)).astype(np.float32)
    keys = row_keys(x)
    distinct_rows = {row.tobytes() for row in x}
    assert len({k.tobytes() for k in keys}) == len(distinct_rows)
    assert not np.array_equal(row_keys(x.astype(np.float64))[0], keys[0])  # the dtype is part of the content


def test_a_module_with_batchnorm_has_an_identity_and_a_disk_cache(tmp_path):
    """BatchNorm's 0-d step counter is part of the weights' digest (it could not be viewed as bytes)."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    first = Teacher(module, cache=tmp_path)
    answers = first.query(x)
    again = Teacher(module, cache=tmp_path)
    np.testing.assert_array_equal(again.query(x), answers)
    assert again.calls == 0 and again.identity == first.identity
    module[1].num_batches_tracked += 1  # another buffer value: another teacher
    assert Teacher(module).identity != first.identity
