"""Model registry (``experiments.pipeline.models``): output shapes, sizes, seeded initialisation, errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from robustdistill.experiments.pipeline.models import MODELS, build_model, count_parameters


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models: one intra-op thread avoids oversubscribing the 2 cores that pytest-xdist shares."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CASES = [
    ("mlp", (7,), {"hidden": (8, 4)}),
    ("mlp", (3, 8, 8), {"hidden": (), "dropout": 0.0}),
    ("mlp", (3, 8, 8), {"hidden": (16,), "dropout": 0.5}),
    ("cnn1d", (40,), {"channels": 4}),
    ("cnn1d", (2, 37), {"channels": 4}),
    ("cnn1d", (1,), {"channels": 2}),
    ("resnet", (3, 32, 32), {"depth": 8}),
    ("resnet", (1, 5, 7), {"depth": 8, "width": 2}),
    ("small_cnn", (3, 32, 32), {"channels": 4}),
    ("small_cnn", (1, 9, 13), {"channels": 4}),
]


def _inputs(shape: tuple[int, ...], batch: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(batch, *shape, generator=gen)


@pytest.mark.parametrize(("name", "shape", "options"), CASES)
def test_output_shape(name: str, shape: tuple[int, ...], options: dict) -> None:
    model = build_model(name, shape, 5, seed=1, **options)
    assert isinstance(model, torch.nn.Module) and model.training
    out = model(_inputs(shape))
    assert out.shape == (3, 5) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_registry_names_and_defaults() -> None:
    assert set(MODELS) == {"mlp", "cnn1d", "resnet", "small_cnn"}
    assert MODELS["resnet"].defaults == {"depth": 20, "width": 1}
    assert MODELS["mlp"].defaults["hidden"] == (256, 256)
    assert MODELS["cnn1d"].to_dict()["defaults"] == {"channels": 32}


def test_resnet_depth_20_matches_he_et_al() -> None:
    # He et al. (2016) report 0.27M parameters for ResNet-20 on CIFAR-10 (option A shortcuts; option B's
    # two 1x1 projections add about 3k)
    params = count_parameters(build_model("resnet", (3, 32, 32), 10))
    assert 0.26e6 < params < 0.28e6
    convs = [m for m in build_model("resnet", (3, 32, 32), 10).modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(m.kernel_size == (3, 3) for m in convs) == 19  # 19 3x3 convolutions + the linear head = 20


def test_parameters_grow_with_width_and_depth() -> None:
    def params(name: str, shape: tuple[int, ...], **options: object) -> int:
        return count_parameters(build_model(name, shape, 10, **options))

    assert (
        params("resnet", (3, 8, 8), depth=8)
        < params("resnet", (3, 8, 8), depth=14)
        < params("resnet", (3, 8, 8), depth=20)
    )
    assert params("resnet", (3, 8, 8), depth=8, width=1) < params("resnet", (3, 8, 8), depth=8, width=2)
    assert params("small_cnn", (3, 8, 8), channels=4) < params("small_cnn", (3, 8, 8), channels=8)
    assert params("cnn1d", (40,), channels=4) < params("cnn1d", (40,), channels=8)
    assert (
        params("mlp", (10,), hidden=(8,)) < params("mlp", (10,), hidden=(16,)) < params("mlp", (10,), hidden=(16, 16))
    )
    # counted exactly: a linear model is (d + 1) K
    assert params("mlp", (2, 5), hidden=()) == 11 * 10


def test_count_parameters_trainable_only() -> None:
    model = build_model("mlp", (4,), 3, hidden=(5,))
    total = count_parameters(model)
    model[1].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == total - 20
    with pytest.raises(TypeError, match="model"):
        count_parameters("not a model")  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "shape", "options"), CASES)
def test_seeded_init_is_reproducible_and_leaves_global_rng_alone(
    name: str, shape: tuple[int, ...], options: dict
) -> None:
    before = torch.random.get_rng_state()
    a = build_model(name, shape, 4, seed=3, **options)
    b = build_model(name, shape, 4, seed=3, **options)
    c = build_model(name, shape, 4, seed=4, **options)
    assert torch.equal(torch.random.get_rng_state(), before)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


def test_init_does_not_depend_on_global_rng() -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        a = build_model("small_cnn", (3, 8, 8), 4, seed=0, channels=4)
        torch.manual_seed(456)
        b = build_model("small_cnn", (3, 8, 8), 4, seed=0, channels=4)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: build_model("vgg", (3, 8, 8), 10), ValueError, "unknown model 'vgg'.*mlp"),
        (lambda: build_model(3, (3, 8, 8), 10), TypeError, "name"),
        (lambda: build_model("resnet", (3, 8, 8), 10, depth=10), ValueError, "depth must be 6m"),
        (lambda: build_model("resnet", (3, 8, 8), 10, depth=2), ValueError, "depth"),
        (lambda: build_model("resnet", (3, 8, 8), 10, depth=8.0), ValueError, "depth"),
        (lambda: build_model("resnet", (3, 8, 8), 10, width=0), ValueError, "width"),
        (lambda: build_model("resnet", (8, 8), 10), ValueError, "rank 2.*'resnet'"),
        (lambda: build_model("small_cnn", (3, 8, 8, 1), 10), ValueError, "rank 4"),
        (lambda: build_model("small_cnn", (3, 2, 8), 10), ValueError, "H, W >= 4"),
        (lambda: build_model("cnn1d", (1, 2, 40), 10), ValueError, "rank 3"),
        (lambda: build_model("mlp", (), 10), ValueError, "input_shape"),
        (lambda: build_model("mlp", 10, 10), TypeError, "input_shape"),
        (lambda: build_model("mlp", (0, 3), 10), ValueError, "input_shape"),
        (lambda: build_model("mlp", (4,), 1), ValueError, "num_classes"),
        (lambda: build_model("mlp", (4,), 3, seed=-1), ValueError, "seed"),
        (lambda: build_model("mlp", (4,), 3, hiden=(4,)), ValueError, "unknown option.*'hiden'.*hidden"),
        (lambda: build_model("mlp", (4,), 3, hidden=4), TypeError, "hidden"),
        (lambda: build_model("mlp", (4,), 3, dropout=1.0), ValueError, "dropout"),
        (lambda: build_model("cnn1d", (40,), 3, channels=0), ValueError, "channels"),
        (lambda: build_model("small_cnn", (3, 8, 8), 3, depth=8), ValueError, "unknown option"),
    ],
)
def test_errors(call, error, match) -> None:  # noqa: ANN001
    with pytest.raises(error, match=match):
        call()
