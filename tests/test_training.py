"""The training layer (``experiments.pipeline.training``): resident inputs and augmentation, the loop, checkpoints,
prediction; and the throughput benchmark's quick run."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from robustdistill.experiments.pipeline.files import DamagedFileWarning
from robustdistill.experiments.pipeline.models import build_model
from robustdistill.experiments.pipeline.training import (
    CHECKPOINT_NAME,
    ResidentInputs,
    TrainConfig,
    TrainResult,
    cross_entropy_loss,
    image_stats,
    predict_probs,
    resolve_device,
    train,
)

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models: one intra-op thread avoids oversubscribing the 2 cores that pytest-xdist shares."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _blobs(n: int = 128, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two well separated Gaussian classes, shifted and scaled (so standardisation matters)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    X = rng.normal(size=(n, d)) + 4.0 * (2 * labels[:, None] - 1)
    return (10.0 + 3.0 * X).astype(np.float32), labels


def _images(n: int = 24, shape: tuple[int, int, int] = (3, 8, 8), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8), rng.integers(0, 3, size=n)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


# ----------------------------------------------------------------------------------------------- devices
def test_resolve_device() -> None:
    expected = "cuda" if CUDA else "cpu"
    assert resolve_device().type == expected and resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("nonsense")
    with pytest.raises(TypeError, match="device"):
        resolve_device(0)  # type: ignore[arg-type]


@pytest.mark.skipif(CUDA, reason="checks the error on a machine without CUDA")
def test_resolve_device_without_cuda() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")


# ----------------------------------------------------------------------------------------------- inputs
def test_tabular_inputs_are_standardised_and_stats_reused() -> None:
    X, _ = _blobs(64, 3)
    X[:, 2] = 7.0  # a constant feature
    inputs = ResidentInputs(X, "tabular", "cpu")
    assert len(inputs) == 64 and inputs.input_shape == (3,) and inputs.kind == "tabular"
    batch = inputs.batch(torch.arange(64))
    assert batch.dtype == torch.float32 and batch.shape == (64, 3)
    np.testing.assert_allclose(batch.mean(0).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(batch[:, :2].std(0, correction=0).numpy(), 1.0, atol=1e-5)
    mean, std = inputs.stats
    np.testing.assert_allclose(mean, X.astype(np.float64).mean(0))
    assert std[2] == 1.0  # constant feature: centred, not divided by 0
    # the same normalisation applied to other inputs, by stats or by like()
    other = X[:10] + 1.0
    by_stats = ResidentInputs(other, "tabular", "cpu", mean=mean, std=std)
    by_like = inputs.like(other)
    expected = ((other - mean) / std).astype(np.float32)
    for resident in (by_stats, by_like):
        np.testing.assert_allclose(resident.batch(torch.arange(10)).numpy(), expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(resident.stats[0], mean)
    # stats are copies
    inputs.stats[0][:] = 99.0
    np.testing.assert_array_equal(inputs.stats[0], mean)


def test_sequence_inputs_accept_tensors_and_channels() -> None:
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(20, 2, 11, generator=gen, dtype=torch.float64)
    inputs = ResidentInputs(X, "sequence", "cpu")
    assert inputs.input_shape == (2, 11) and inputs.stats[0].shape == (2, 11)
    batch = inputs.batch(torch.tensor([3, 1]))
    expected = ((X[[3, 1]] - X.mean(0)) / X.std(0, correction=0)).float()
    torch.testing.assert_close(batch, expected)


def test_image_batch_normalisation() -> None:
    X, _ = _images(10)
    inputs = ResidentInputs(X, "image", "cpu")
    mean, std = inputs.stats
    x64 = X.astype(np.float64) / 255.0
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, x64.std(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(image_stats(torch.from_numpy(X))[0], mean, rtol=0, atol=0)
    batch = inputs.batch(torch.tensor([4, 0, 4]))
    expected = (x64[[4, 0, 4]] - mean[None, :, None, None]) / std[None, :, None, None]
    assert batch.dtype == torch.float32 and batch.shape == (3, 3, 8, 8)
    np.testing.assert_allclose(batch.numpy(), expected, atol=1e-5)
    assert inputs._data.dtype == torch.uint8  # kept as uint8 on the device
    assert not inputs.channels_last  # CPU
    given = ResidentInputs(X, "image", "cpu", mean=[0.5, 0.5, 0.5], std=0.25)
    np.testing.assert_allclose(given.stats[1], [0.25, 0.25, 0.25])


def _reference_augment(plain: torch.Tensor, dy: int, dx: int, flip: bool) -> torch.Tensor:
    """Crop of the zero-padded *normalised* image at offset (dy, dx) in [-4, 4], then flip: the documented
    augmentation, written the slow way."""
    _, height, width = plain.shape
    padded = F.pad(plain, (4, 4, 4, 4))
    crop = padded[:, 4 + dy : 4 + dy + height, 4 + dx : 4 + dx + width]
    return crop.flip(-1) if flip else crop


@pytest.mark.parametrize("channels_last", [False, True])
def test_augmentation_is_a_seeded_crop_and_flip(channels_last: bool) -> None:
    X, _ = _images(4, (2, 6, 7))
    inputs = ResidentInputs(X, "image", "cpu", channels_last=channels_last)
    index = torch.tensor([0, 1, 2, 3] * 40)
    out = inputs.batch(index, augment=True, generator=torch.Generator().manual_seed(5))
    assert out.shape == (160, 2, 6, 7) and out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
    # seeded: the same generator seed gives the same batch, another seed another one
    again = inputs.batch(index, augment=True, generator=torch.Generator().manual_seed(5))
    other = inputs.batch(index, augment=True, generator=torch.Generator().manual_seed(6))
    assert torch.equal(out, again) and not torch.equal(out, other)
    # every output is exactly one documented crop + flip of its image (padding = 0 after normalisation)
    plain = inputs.batch(torch.arange(4))
    assert plain.is_contiguous(memory_format=torch.channels_last) == channels_last
    seen = set()
    for k, i in enumerate(index.tolist()):
        matches = [
            (dy, dx, flip)
            for dy in range(-4, 5)
            for dx in range(-4, 5)
            for flip in (False, True)
            if torch.equal(out[k], _reference_augment(plain[i], dy, dx, flip))
        ]
        assert len(matches) >= 1, k
        seen.update(matches)
    flips = {f for _, _, f in seen}
    offsets = {(dy, dx) for dy, dx, _ in seen}
    assert flips == {False, True}  # both happen
    assert len(offsets) > 20 and any(abs(dy) == 4 or abs(dx) == 4 for dy, dx in offsets)
    # padding really is zero in the normalised image: a full 4-pixel shift leaves a band of exact zeros
    assert (out == 0).any()


def test_augmentation_with_the_same_generator_continues_the_stream() -> None:
    X, _ = _images(8)
    inputs = ResidentInputs(X, "image", "cpu")
    gen = torch.Generator().manual_seed(0)
    first = inputs.batch(torch.arange(8), augment=True, generator=gen)
    second = inputs.batch(torch.arange(8), augment=True, generator=gen)
    assert not torch.equal(first, second)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: ResidentInputs(np.zeros((4, 3)), "tabular", "cpu"), None, None),
        (lambda: ResidentInputs(np.zeros((4, 3)), "table", "cpu"), ValueError, "kind"),
        (lambda: ResidentInputs(np.zeros((4, 3)), 1, "cpu"), TypeError, "kind"),
        (lambda: ResidentInputs([[1.0]], "tabular", "cpu"), TypeError, "X"),
        (lambda: ResidentInputs(np.zeros((4, 3, 2)), "tabular", "cpu"), ValueError, r"X: tabular.*\(n, d\)"),
        (lambda: ResidentInputs(np.zeros((4,)), "sequence", "cpu"), ValueError, "X: sequence"),
        (lambda: ResidentInputs(np.zeros((0, 3)), "tabular", "cpu"), ValueError, "at least one"),
        (lambda: ResidentInputs(np.array([[np.nan, 1.0]]), "tabular", "cpu"), ValueError, "finite"),
        (lambda: ResidentInputs(np.zeros((2, 3, 4, 4)), "image", "cpu"), TypeError, "uint8"),
        (lambda: ResidentInputs(np.zeros((2, 4, 4), np.uint8), "image", "cpu"), ValueError, r"\(n, C, H, W\)"),
        (lambda: ResidentInputs(np.zeros((2, 3), np.float32), "tabular", "cpu", std=[1, 0, 1]), ValueError, "std"),
        (lambda: ResidentInputs(np.zeros((2, 3), np.float32), "tabular", "cpu", mean=[1, 2]), ValueError, "mean"),
        (
            lambda: ResidentInputs(np.zeros((2, 3, 4, 4), np.uint8), "image", "cpu", mean=np.zeros(2)),
            ValueError,
            "mean",
        ),
        (lambda: ResidentInputs(np.zeros((2, 3)), "tabular", "nonsense"), ValueError, "device"),
    ],
)
def test_inputs_errors(make, error, match) -> None:  # noqa: ANN001
    if error is None:
        make()
        return
    with pytest.raises(error, match=match):
        make()


def test_batch_errors() -> None:
    tab = ResidentInputs(np.zeros((4, 3)), "tabular", "cpu")
    img = ResidentInputs(np.zeros((4, 1, 4, 4), np.uint8), "image", "cpu")
    with pytest.raises(ValueError, match="augment"):
        tab.batch(torch.arange(2), augment=True, generator=torch.Generator())
    with pytest.raises(ValueError, match="generator"):
        img.batch(torch.arange(2), augment=True)
    with pytest.raises(TypeError, match="generator"):
        img.batch(torch.arange(2), augment=True, generator=np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="index"):
        img.batch([0, 1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="index"):
        img.batch(torch.zeros(2))
    with pytest.raises(ValueError, match="index"):
        img.batch(torch.zeros((2, 1), dtype=torch.int64))


# ----------------------------------------------------------------------------------------------- config
def test_train_config_validation_and_dict() -> None:
    config = TrainConfig(epochs=3, lr=1, grad_clip=2)
    assert config.to_dict() == {
        "epochs": 3,
        "batch_size": 128,
        "optimizer": "sgd",
        "lr": 1.0,
        "weight_decay": 5e-4,
        "schedule": "cosine",
        "augment": False,
        "amp": "auto",
        "compile": False,
        "seed": 0,
        "grad_clip": 2.0,
    }
    assert isinstance(config.lr, float)
    assert TrainConfig(epochs=1).autocast_dtype(torch.device("cpu")) is None
    assert TrainConfig(epochs=1, amp="bf16").autocast_dtype(torch.device("cpu")) == torch.bfloat16
    assert TrainConfig(epochs=1).autocast_dtype(torch.device("cuda")) == torch.bfloat16
    with pytest.raises(dataclass_error()):
        config.epochs = 4  # type: ignore[misc]
    bad = [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"epochs": 1.5}, ValueError, "epochs"),
        ({"epochs": "2"}, TypeError, "epochs"),
        ({"epochs": 1, "batch_size": 0}, ValueError, "batch_size"),
        ({"epochs": 1, "optimizer": "adam"}, ValueError, "optimizer"),
        ({"epochs": 1, "lr": 0.0}, ValueError, "lr"),
        ({"epochs": 1, "lr": float("nan")}, ValueError, "lr"),
        ({"epochs": 1, "weight_decay": -1e-4}, ValueError, "weight_decay"),
        ({"epochs": 1, "schedule": "step"}, ValueError, "schedule"),
        ({"epochs": 1, "augment": 1}, TypeError, "augment"),
        ({"epochs": 1, "amp": "fp16"}, ValueError, "amp"),
        ({"epochs": 1, "compile": "yes"}, TypeError, "compile"),
        ({"epochs": 1, "seed": -1}, ValueError, "seed"),
        ({"epochs": 1, "grad_clip": 0.0}, ValueError, "grad_clip"),
    ]
    for kwargs, error, match in bad:
        with pytest.raises(error, match=match):
            TrainConfig(**kwargs)


def dataclass_error() -> type[Exception]:
    import dataclasses

    return dataclasses.FrozenInstanceError


# ----------------------------------------------------------------------------------------------- training
def test_loss_decreases_on_a_separable_problem() -> None:
    X, y = _blobs(128)
    inputs = ResidentInputs(X, "tabular", "cpu")
    model = build_model("mlp", (4,), 2, hidden=(16,), seed=0)
    config = TrainConfig(epochs=6, batch_size=32, optimizer="adamw", lr=1e-2, weight_decay=0.0)
    result = train(model, inputs, {"labels": y}, cross_entropy_loss, config, progress=False)
    assert isinstance(result, TrainResult)
    assert result.epochs_run == 6 and len(result.losses) == 6 and len(result.epoch_times_s) == 6
    assert result.losses[-1] < 0.3 * result.losses[0]
    assert result.steps_per_epoch == 4 and result.resumed_from_epoch == 0 and result.device == "cpu"
    assert result.peak_memory_bytes is None and result.examples_per_s is not None and result.examples_per_s > 0
    assert result.checkpoint_status is None
    probs = predict_probs(model, inputs.like(X))
    assert (probs.argmax(1) == y).mean() > 0.95
    record = result.to_dict()
    assert record["losses"] == list(result.losses) and record["device"] == "cpu"


def _image_run(
    tmp: Path | None = None,
    loss_fn=cross_entropy_loss,  # noqa: ANN001
    epochs: int = 4,
    seed: int = 0,
    lr: float = 0.05,
    **extra: object,
) -> tuple[torch.nn.Module, TrainResult]:
    X, y = _images(24)
    inputs = ResidentInputs(X, "image", "cpu")
    model = build_model("small_cnn", (3, 8, 8), 3, channels=4, seed=1)
    config = TrainConfig(
        epochs=epochs,
        batch_size=10,
        lr=lr,
        augment=True,
        seed=seed,
        **extra,  # type: ignore[arg-type]
    )
    result = train(model, inputs, {"labels": y}, loss_fn, config, checkpoint_dir=tmp, progress=False)
    return model, result


def test_training_is_deterministic_and_seeded() -> None:
    a, ra = _image_run(epochs=2)
    b, rb = _image_run(epochs=2)
    c, _ = _image_run(epochs=2, seed=1)
    assert _same_weights(a, b) and ra.losses == rb.losses
    assert not _same_weights(a, c)
    assert ra.steps_per_epoch == 3  # 24 examples, batch 10: the last partial batch is kept


def test_training_leaves_global_rng_alone_and_seeds_dropout() -> None:
    X, y = _blobs(32)
    inputs = ResidentInputs(X, "tabular", "cpu")
    config = TrainConfig(epochs=2, batch_size=8, grad_clip=1.0)
    before = torch.random.get_rng_state()
    models = []
    for _ in range(2):
        model = build_model("mlp", (4,), 2, hidden=(8,), dropout=0.5, seed=0)
        train(model, inputs, {"labels": y}, cross_entropy_loss, config, progress=False)
        models.append(model)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert _same_weights(*models)


class _Interrupt(Exception):
    pass


def _failing_at(step: int):  # noqa: ANN202
    calls = {"n": 0}

    def loss_fn(logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == step:
            raise _Interrupt(f"simulated crash at step {step}")
        return cross_entropy_loss(logits, batch)

    return loss_fn


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_checkpoint_resume_is_bit_identical(tmp_path: Path, optimizer: str) -> None:
    lr = 0.05 if optimizer == "sgd" else 1e-2
    reference, ref_result = _image_run(epochs=4, lr=lr, optimizer=optimizer)
    # 3 steps per epoch: step 8 is the second step of epoch 3
    with pytest.raises(_Interrupt):
        _image_run(tmp_path, loss_fn=_failing_at(8), epochs=4, lr=lr, optimizer=optimizer)
    saved = torch.load(tmp_path / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    assert saved["epoch"] == 2 and len(saved["losses"]) == 2
    assert not list(tmp_path.glob("*.tmp"))  # no temporary left behind
    resumed, result = _image_run(tmp_path, epochs=4, lr=lr, optimizer=optimizer)
    assert result.checkpoint_status == "resumed" and result.resumed_from_epoch == 2
    assert result.epochs_run == 4 and len(result.epoch_times_s) == 2
    assert result.losses == ref_result.losses
    assert _same_weights(resumed, reference)
    # a finished run returns at once, with the final weights loaded
    again, done = _image_run(tmp_path, epochs=4, lr=lr, optimizer=optimizer)
    assert done.checkpoint_status == "finished" and done.epoch_times_s == () and done.examples_per_s is None
    assert done.losses == ref_result.losses and _same_weights(again, reference)


def test_checkpoint_of_another_run_is_replaced(tmp_path: Path) -> None:
    _, first = _image_run(tmp_path, epochs=1)
    assert first.checkpoint_status == "new"
    _, other = _image_run(tmp_path, epochs=1, lr=0.01)
    assert other.checkpoint_status == "config_changed" and other.resumed_from_epoch == 0
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.warns(DamagedFileWarning, match="checkpoint.pt: not a readable torch file"):
        _, broken = _image_run(tmp_path, epochs=1, lr=0.01)
    assert broken.checkpoint_status == "unreadable" and broken.epochs_run == 1
    _, resumed = _image_run(tmp_path, epochs=1, lr=0.01)
    assert resumed.checkpoint_status == "finished"


def test_loss_fn_must_return_one_value_per_example() -> None:
    X, y = _blobs(16)
    inputs = ResidentInputs(X, "tabular", "cpu")
    config = TrainConfig(epochs=1, batch_size=8)

    def run(loss_fn) -> None:  # noqa: ANN001
        model = build_model("mlp", (4,), 2, hidden=(4,))
        train(model, inputs, {"labels": y}, loss_fn, config, progress=False)

    with pytest.raises(ValueError, match=r"one value per example.*\(8,\).*got shape \(\).*not their mean"):
        run(lambda z, b: cross_entropy_loss(z, b).mean())
    with pytest.raises(ValueError, match=r"one value per example.*got shape \(8, 1\)"):
        run(lambda z, b: cross_entropy_loss(z, b)[:, None])
    with pytest.raises(TypeError, match="loss_fn must return a torch tensor"):
        run(lambda z, b: 1.0)
    with pytest.raises(ValueError, match="does not depend on the logits"):
        run(lambda z, b: torch.ones(z.shape[0]))
    with pytest.raises(FloatingPointError, match="epoch 1"):
        run(lambda z, b: z.sum(1) * float("nan"))


def test_train_argument_errors() -> None:
    X, y = _blobs(16)
    inputs = ResidentInputs(X, "tabular", "cpu")
    model = build_model("mlp", (4,), 2, hidden=(4,))
    config = TrainConfig(epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"targets\['labels'\].*16 examples"):
        train(model, inputs, {"labels": y[:10]}, cross_entropy_loss, config)
    with pytest.raises(TypeError, match="targets"):
        train(model, inputs, [y], cross_entropy_loss, config)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="augment"):
        train(model, inputs, {"labels": y}, cross_entropy_loss, TrainConfig(epochs=1, augment=True))
    with pytest.raises(TypeError, match="inputs"):
        train(model, X, {"labels": y}, cross_entropy_loss, config)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config"):
        train(model, inputs, {"labels": y}, cross_entropy_loss, {"epochs": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="labels"):
        train(model, inputs, {"y": y}, cross_entropy_loss, config)


def test_soft_targets_and_extra_entries_reach_the_loss() -> None:
    X, y = _blobs(20)
    inputs = ResidentInputs(X, "tabular", "cpu")
    teacher = np.eye(2)[y] * 0.8 + 0.1  # float64 in, float32 on the device
    weights = torch.linspace(0.5, 1.5, 20)
    seen: list[dict[str, tuple]] = []

    def loss_fn(logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        seen.append({k: (tuple(v.shape), v.dtype) for k, v in batch.items()})
        return batch["weights"] * -(batch["teacher_probs"] * logits.log_softmax(1)).sum(1)

    model = build_model("mlp", (4,), 2, hidden=(4,))
    train(
        model,
        inputs,
        {"teacher_probs": teacher, "weights": weights, "labels": y},
        loss_fn,
        TrainConfig(epochs=1, batch_size=8),
        progress=False,
    )
    assert [s["teacher_probs"][0] for s in seen] == [(8, 2), (8, 2), (4, 2)]
    assert seen[0]["teacher_probs"][1] == torch.float32 and seen[0]["labels"][1] == torch.int64


def test_bf16_autocast_on_cpu_and_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    X, y = _blobs(16)
    inputs = ResidentInputs(X, "tabular", "cpu")
    model = build_model("mlp", (4,), 2, hidden=(4,))
    result = train(
        model,
        inputs,
        {"labels": y},
        cross_entropy_loss,
        TrainConfig(epochs=2, batch_size=8, amp="bf16"),
        progress=True,
        desc="teacher",
    )
    assert all(np.isfinite(result.losses))
    assert "teacher" in capsys.readouterr().err
    train(model, inputs, {"labels": y}, cross_entropy_loss, TrainConfig(epochs=1, batch_size=8))
    assert capsys.readouterr().err == ""  # progress=None and stderr is not a terminal


def test_predict_probs() -> None:
    X, _ = _images(13)
    inputs = ResidentInputs(X, "image", "cpu")
    model = build_model("small_cnn", (3, 8, 8), 5, channels=4)
    model.train()
    probs = predict_probs(model, inputs, batch_size=4)
    assert probs.shape == (13, 5) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    assert model.training  # mode restored
    # eval mode: the BatchNorm running stats, so a batch's prediction does not depend on its neighbours
    single = predict_probs(model, inputs, batch_size=1)
    np.testing.assert_allclose(single, probs, atol=1e-6)
    bf16 = predict_probs(model, inputs, amp="bf16")
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(bf16.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(bf16, probs, atol=0.05)
    with pytest.raises(ValueError, match="batch_size"):
        predict_probs(model, inputs, batch_size=0)
    with pytest.raises(ValueError, match="amp"):
        predict_probs(model, inputs, amp="fp8")


@pytest.mark.slow
# torch's inductor imports torch.utils.mkldnn, which uses the deprecated torch.jit.script_method: torch's
# own warning, not ours
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compile_matches_eager() -> None:
    X, y = _blobs(32)
    inputs = ResidentInputs(X, "tabular", "cpu")
    results = []
    for compiled in (False, True):
        model = build_model("mlp", (4,), 2, hidden=(8,))
        config = TrainConfig(epochs=2, batch_size=16, compile=compiled)
        results.append(train(model, inputs, {"labels": y}, cross_entropy_loss, config, progress=False))
    np.testing.assert_allclose(results[0].losses, results[1].losses, rtol=1e-4)


# ----------------------------------------------------------------------------------------------- CUDA
@needs_cuda
def test_cuda_parity_and_image_path() -> None:
    X, y = _blobs(64)
    losses, weights = [], []
    for device in ("cpu", "cuda"):
        inputs = ResidentInputs(X, "tabular", device)
        model = build_model("mlp", (4,), 2, hidden=(16,), seed=0)
        config = TrainConfig(epochs=3, batch_size=16, amp="off")
        result = train(model, inputs, {"labels": y}, cross_entropy_loss, config, progress=False)
        losses.append(result.losses)
        weights.append({k: v.cpu() for k, v in model.state_dict().items()})
        if device == "cuda":
            assert result.device.startswith("cuda") and result.peak_memory_bytes > 0
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
    for k in weights[0]:
        torch.testing.assert_close(weights[0][k], weights[1][k], rtol=1e-3, atol=1e-4)
    # images on CUDA: uint8 resident, channels_last batches, bf16 autocast, augmentation on the device
    images, labels = _images(40)
    inputs = ResidentInputs(images, "image", "cuda")
    assert inputs.channels_last and inputs._data.dtype == torch.uint8 and inputs._data.is_cuda
    cpu_inputs = ResidentInputs(images, "image", "cpu")
    torch.testing.assert_close(inputs.batch(torch.arange(40)).cpu(), cpu_inputs.batch(torch.arange(40)))
    gen = torch.Generator(device="cuda").manual_seed(0)
    batch = inputs.batch(torch.arange(40, device="cuda"), augment=True, generator=gen)
    assert batch.is_cuda and batch.is_contiguous(memory_format=torch.channels_last)
    cpu_gen_batch = inputs.batch(torch.arange(4), augment=True, generator=torch.Generator().manual_seed(0))
    assert cpu_gen_batch.is_cuda
    model = build_model("resnet", (3, 8, 8), 3, depth=8)
    result = train(
        model,
        inputs,
        {"labels": labels},
        cross_entropy_loss,
        TrainConfig(epochs=2, batch_size=16, augment=True),
        progress=False,
    )
    assert all(np.isfinite(result.losses)) and result.peak_memory_bytes > 0
    probs = predict_probs(model, inputs)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


@needs_cuda
def test_cuda_checkpoint_resume(tmp_path: Path) -> None:
    images, labels = _images(30)
    inputs = ResidentInputs(images, "image", "cuda")

    def run(loss_fn=cross_entropy_loss):  # noqa: ANN001, ANN202
        model = build_model("small_cnn", (3, 8, 8), 3, channels=4, seed=0)
        config = TrainConfig(epochs=3, batch_size=10, augment=True, amp="off")
        return model, train(model, inputs, {"labels": labels}, loss_fn, config, checkpoint_dir=tmp_path, progress=False)

    with pytest.raises(_Interrupt):
        run(_failing_at(5))
    _, result = run()
    assert result.checkpoint_status == "resumed" and result.resumed_from_epoch == 1 and result.epochs_run == 3


# ----------------------------------------------------------------------------------------------- bench
def test_bench_throughput_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from robustdistill.experiments.benchmarks import throughput as bench_throughput

    result = bench_throughput.run(quick=True, n=32, batch_size=16, model="small_cnn", devices=["cpu"])
    assert {
        "benchmark",
        "rows",
        "ratios",
        "targets",
        "targets_met",
        "protocol",
        "seed",
        "quick",
        "environment",
        "seconds",
    } <= set(result)
    assert [(r["device"], r["loop"]) for r in result["rows"]] == [("cpu", "resident"), ("cpu", "plain")]
    for row in result["rows"]:
        assert row["images"] == 32 and row["images_per_s"] > 0 and np.isfinite(row["final_loss"])
        assert row["peak_memory_bytes"] is None or row["peak_memory_bytes"] > 0
    (ratio,) = result["ratios"]
    assert ratio["ratio"] == pytest.approx(ratio["resident_images_per_s"] / ratio["plain_images_per_s"])
    assert result["targets_met"] == {"cuda_ratio": None}  # no CUDA measured
    assert (
        bench_throughput.main(
            [
                "--quick",
                "--n",
                "16",
                "--model",
                "small_cnn",
                "--device",
                "cpu",
                "--quiet",
                "--json",
                str(tmp_path / "t.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "resident" in out and "plain" in out and "cuda_ratio" in out
    assert (tmp_path / "t.json").exists()
    assert bench_throughput.main(["--quick", "--n", "0", "--quiet"]) == 2
    with pytest.raises(ValueError, match="model"):
        bench_throughput.run(quick=True, model="vgg")


def test_mc_dropout_std_is_seeded_and_leaves_the_global_rng_alone():
    from robustdistill.experiments.pipeline.training import has_dropout, mc_dropout_std

    X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    inputs = ResidentInputs(X, "tabular", "cpu")
    model = build_model("mlp", (4,), 3, hidden=[16], dropout=0.5)
    state = torch.random.get_rng_state()
    u = mc_dropout_std(model, inputs, passes=5, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    assert u.shape == (40, 3) and np.all(u >= 0) and u.max() > 0
    np.testing.assert_array_equal(u, mc_dropout_std(model, inputs, passes=5, seed=3))
    assert has_dropout(model)
    plain = build_model("mlp", (4,), 3, hidden=[16])
    assert not has_dropout(plain) and mc_dropout_std(plain, inputs).max() == 0


class _ScaledLoss:
    """A loss owned by an object whose options show in its repr, like the methods' ``loss``."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def __repr__(self) -> str:
        return f"_ScaledLoss(scale={self.scale})"

    def loss(self, logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.scale * cross_entropy_loss(logits, batch)


def test_checkpoint_of_other_targets_or_loss_options_is_not_reused(tmp_path: Path) -> None:
    """Same config and shapes, other target values or other loss options: another run (it used to report the
    finished old run's student)."""
    X, y = _blobs(32)
    inputs = ResidentInputs(X, "tabular", "cpu")
    config = TrainConfig(epochs=1, batch_size=8)

    def run(labels: np.ndarray, loss_fn) -> TrainResult:  # noqa: ANN001
        model = build_model("mlp", (4,), 2, hidden=(8,), seed=0)
        return train(model, inputs, {"labels": labels}, loss_fn, config, checkpoint_dir=tmp_path, progress=False)

    assert run(y, _ScaledLoss(1.0).loss).checkpoint_status == "new"
    assert run(y, _ScaledLoss(1.0).loss).checkpoint_status == "finished"
    assert run(1 - y, _ScaledLoss(1.0).loss).checkpoint_status == "config_changed"
    assert run(1 - y, _ScaledLoss(2.0).loss).checkpoint_status == "config_changed"
    assert run(1 - y, _ScaledLoss(2.0).loss).checkpoint_status == "finished"
