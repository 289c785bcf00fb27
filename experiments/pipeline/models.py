r"""Student and teacher networks: a small registry of classifiers built from a name, an input shape and a seed.

:func:`build_model` is the one entry point::

    model = build_model("resnet", (3, 32, 32), 10, seed=0, depth=20, width=1)

Every model maps a float batch of shape ``(B, *input_shape)`` to logits of shape ``(B, num_classes)``.
Models (:data:`MODELS`):

- ``"mlp"``: flattens the input; ``Linear -> ReLU (-> Dropout)`` per hidden layer, then a linear head.
  Options ``hidden=(256, 256)`` (an empty tuple gives a linear model), ``dropout=0.0``. Any input rank.
- ``"cnn1d"``: for MNIST-1D-style sequences, input ``(L,)`` or ``(C, L)``: three ``Conv1d + ReLU`` layers
  (kernel 5 stride 1, then kernel 3 stride 2 twice, so the length shrinks about 4x), flattened, a linear
  head. Option ``channels=32``.
- ``"resnet"``: the CIFAR ResNet of He et al. (2016, §4.2), input ``(C, H, W)``: a 3x3 convolution, three
  stages of ``m`` basic blocks (two 3x3 convolutions with BatchNorm and ReLU, an identity shortcut, or a
  1x1 convolution + BatchNorm where the shape changes: "option B") with ``16, 32, 64`` channels times
  ``width`` and strides ``1, 2, 2``, global average pooling and a linear head; ``depth = 6m + 2``.
  Options ``depth=20`` (8, 14, 20, 32, 44, 56, 110, ...), ``width=1``. Convolutions use He (fan-out)
  initialisation, BatchNorm starts at weight 1 and bias 0. Any ``H, W >= 1``.
- ``"small_cnn"``: input ``(C, H, W)``: ``Conv3x3 + BatchNorm + ReLU`` with ``channels``, 2x max-pool,
  the same with ``2 * channels``, 2x max-pool, the same with ``4 * channels``, global average pooling
  (so any ``H, W >= 4`` works), a linear head. Option ``channels=32``.

**Randomness.** The initial weights are a deterministic function of ``seed``: the model is built on the
CPU inside :func:`torch.random.fork_rng` with the CPU generator seeded by ``seed``, so the global RNG
state is the same after the call as before it (and no CUDA generator is touched).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from robustdistill.algorithms.validation import check_int, check_real

__all__ = [
    "MAX_PARAMETERS",
    "MODELS",
    "ModelSpec",
    "build_model",
    "check_model",
    "classifier_head",
    "count_parameters",
    "model_factory",
]


# ----------------------------------------------------------------------------------------------- blocks
class _AddChannel(nn.Module):
    """``(B, L) -> (B, 1, L)``; a ``(B, C, L)`` batch passes unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1) if x.dim() == 2 else x


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and ReLU, and a shortcut (identity, or 1x1 conv + BN)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """The CIFAR ResNet (He et al. 2016, §4.2) of depth ``6m + 2``; see the module docstring."""

    def __init__(self, in_channels: int, num_classes: int, depth: int, width: int) -> None:
        super().__init__()
        m = (depth - 2) // 6
        widths = [16 * width, 32 * width, 64 * width]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        blocks: list[nn.Module] = []
        channels = widths[0]
        for stage, out_channels in enumerate(widths):
            for i in range(m):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(channels, out_channels, stride))
                channels = out_channels
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


# ----------------------------------------------------------------------------------------------- builders
def _positive_int(value: object, name: str) -> int:
    return check_int(value, name, low=1)


def _build_mlp(input_shape: tuple[int, ...], num_classes: int, *, hidden: Any, dropout: Any) -> nn.Module:
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise TypeError(f"hidden must be a sequence of layer widths, got {type(hidden).__name__}")
    widths = [_positive_int(h, "hidden") for h in hidden]
    dropout = check_real(dropout, "dropout", low=0.0, high=1.0, high_open=True)
    features = 1
    for d in input_shape:
        features *= d
    layers: list[nn.Module] = [nn.Flatten()]
    for width in widths:
        layers += [nn.Linear(features, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(float(dropout)))
        features = width
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


def _conv_length(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


def _build_cnn1d(input_shape: tuple[int, ...], num_classes: int, *, channels: Any) -> nn.Module:
    channels = _positive_int(channels, "channels")
    in_channels, length = (1, input_shape[0]) if len(input_shape) == 1 else input_shape
    layers: list[nn.Module] = [_AddChannel()]
    for kernel, stride, padding in ((5, 1, 2), (3, 2, 1), (3, 2, 1)):
        layers += [nn.Conv1d(in_channels, channels, kernel, stride=stride, padding=padding), nn.ReLU()]
        in_channels, length = channels, _conv_length(length, kernel, stride, padding)
    layers += [nn.Flatten(), nn.Linear(channels * length, num_classes)]
    return nn.Sequential(*layers)


def _build_resnet(input_shape: tuple[int, ...], num_classes: int, *, depth: Any, width: Any) -> nn.Module:
    depth = check_int(depth, "depth", low=8)
    if (depth - 2) % 6 != 0:
        raise ValueError(f"depth must be 6m + 2 for m >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got {depth}")
    width = _positive_int(width, "width")
    return CifarResNet(input_shape[0], num_classes, depth, width)


def _build_small_cnn(input_shape: tuple[int, ...], num_classes: int, *, channels: Any) -> nn.Module:
    channels = _positive_int(channels, "channels")
    in_channels, height, width = input_shape
    if height < 4 or width < 4:
        raise ValueError(f"input_shape: small_cnn needs H, W >= 4 (two 2x poolings), got {input_shape}")

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(in_channels, channels),
        nn.MaxPool2d(2),
        *block(channels, 2 * channels),
        nn.MaxPool2d(2),
        *block(2 * channels, 4 * channels),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * channels, num_classes),
    )


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registry entry: the builder, its default options, the accepted input ranks and a description."""

    name: str
    builder: Callable[..., nn.Module]
    defaults: Mapping[str, Any]
    input_ranks: tuple[int, ...] | None
    description: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (the builder by its name)."""
        return {
            "name": self.name,
            "defaults": dict(self.defaults),
            "input_ranks": None if self.input_ranks is None else list(self.input_ranks),
            "description": self.description,
        }


#: name -> :class:`ModelSpec`. ``input_ranks`` lists the accepted ``len(input_shape)`` (None: any rank).
MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(
        "mlp",
        _build_mlp,
        {"hidden": (256, 256), "dropout": 0.0},
        None,
        "flatten, Linear+ReLU(+Dropout) per hidden width, linear head",
    ),
    "cnn1d": ModelSpec(
        "cnn1d",
        _build_cnn1d,
        {"channels": 32},
        (1, 2),
        "three Conv1d+ReLU layers (stride 1, 2, 2), flatten, linear head; input (L,) or (C, L)",
    ),
    "resnet": ModelSpec(
        "resnet",
        _build_resnet,
        {"depth": 20, "width": 1},
        (3,),
        "CIFAR ResNet (He et al. 2016), depth 6m+2, 16/32/64 x width channels; input (C, H, W)",
    ),
    "small_cnn": ModelSpec(
        "small_cnn",
        _build_small_cnn,
        {"channels": 32},
        (3,),
        "three Conv3x3+BN+ReLU layers with 2x max-pools, global average pool, linear head",
    ),
}


def _check_input_shape(input_shape: object) -> tuple[int, ...]:
    if isinstance(input_shape, torch.Size):
        input_shape = tuple(input_shape)
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise TypeError(
            f"input_shape must be a tuple of positive ints (without the batch dimension), "
            f"got {type(input_shape).__name__}"
        )
    return tuple(check_int(d, "input_shape", low=1) for d in input_shape)


#: The most parameters a registered model may have: options that ask for more are refused before anything is
#: allocated (2^31 float32 parameters are 8 GiB, far beyond what these architectures are for).
MAX_PARAMETERS = 2**31


def _check_size(
    spec: ModelSpec, shape: tuple[int, ...], num_classes: int, kwargs: dict[str, Any], options: Mapping[str, Any]
) -> None:
    """Build the model on the ``meta`` device (no memory, no initialisation) and refuse options that give more
    than :data:`MAX_PARAMETERS` parameters, naming them (an allocation of terabytes otherwise fails late, or
    runs for minutes first)."""
    try:
        with torch.device("meta"):
            probe = spec.builder(shape, num_classes, **kwargs)
    except RuntimeError as exc:  # sizes past what a tensor's storage can index
        raise ValueError(f"options {dict(options)} of model {spec.name!r} ask for tensors too large ({exc})") from None
    count = sum(p.numel() for p in probe.parameters())
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"options {dict(options)} of model {spec.name!r} give {count:.3g} parameters, more than "
            f"{MAX_PARAMETERS:.3g}"
        )


def _checked(
    name: object, input_shape: object, num_classes: object, options: Mapping[str, Any]
) -> tuple[ModelSpec, tuple[int, ...], dict[str, Any]]:
    """The spec, input shape and full options of a valid request (:func:`build_model`'s checks, its size
    included), or ``ValueError`` / ``TypeError``."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if name not in MODELS:
        raise ValueError(f"name: unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    spec = MODELS[name]
    shape = _check_input_shape(input_shape)
    if not shape:
        raise ValueError("input_shape must have at least one dimension (it excludes the batch dimension)")
    if spec.input_ranks is not None and len(shape) not in spec.input_ranks:
        raise ValueError(
            f"input_shape {shape} has rank {len(shape)}, but model {name!r} accepts ranks "
            f"{', '.join(map(str, spec.input_ranks))} (the shape excludes the batch dimension)"
        )
    num_classes = check_int(num_classes, "num_classes", low=2)
    unknown = sorted(set(options) - set(spec.defaults))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for model {name!r}; "
            f"known options: {', '.join(sorted(spec.defaults)) or 'none'}"
        )
    kwargs = {**spec.defaults, **options}
    _check_size(spec, shape, num_classes, kwargs, options)
    return spec, shape, kwargs


def check_model(name: str, input_shape: tuple[int, ...], num_classes: int, **options: Any) -> None:
    """Check a :func:`build_model` request without building the model (nothing allocated): the same errors."""
    _checked(name, input_shape, num_classes, options)


def build_model(
    name: str, input_shape: tuple[int, ...], num_classes: int, *, seed: int = 0, **options: Any
) -> nn.Module:
    """Build the registered model ``name`` with seeded initial weights, on the CPU, in training mode.

    Args:
        name: a key of :data:`MODELS` (``"mlp"``, ``"cnn1d"``, ``"resnet"``, ``"small_cnn"``).
        input_shape: the shape of one input, without the batch dimension (e.g. ``(3, 32, 32)``, ``(40,)``).
        num_classes: ``K >= 2``, the width of the logits.
        seed: the initial weights are a deterministic function of it; the global RNG state is unchanged.
        **options: the model's options (see the module docstring); unnamed ones take their defaults.

    Raises:
        ValueError: unknown ``name`` or option, an input rank the model does not accept, a bad option value
            (e.g. a resnet ``depth`` that is not ``6m + 2``).
        TypeError: a non-string ``name``, a non-sequence ``input_shape``, an option of the wrong type.
    """
    spec, shape, kwargs = _checked(name, input_shape, num_classes, options)
    seed = check_int(seed, "seed", low=0)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        model = spec.builder(shape, num_classes, **kwargs)
    return model


def model_factory(spec: Mapping[str, Any] | Callable[..., nn.Module]) -> Callable[[int], nn.Module]:
    """A factory ``seed -> nn.Module`` from a config entry or the user's callable.

    ``spec`` is a callable ``seed -> nn.Module`` (used as is), or a table ``{"name": NAME, **options}`` where
    ``NAME`` is a key of :data:`MODELS` (built by :func:`build_model` once the data's input shape and class count
    are known: the factory then takes them as keywords) or a ``"package.module:attr"`` name of the user's
    factory, called as ``attr(seed, **options)``. Every factory runs under a forked torch RNG seeded with
    ``seed``, so the initial weights are a function of the seed even when the factory ignores it, and the
    global RNG state is left as it was. Unknown names raise ``ValueError``."""
    from .config import import_object, is_import_name

    if callable(spec) and not isinstance(spec, Mapping):
        factory, options = spec, {}
    else:
        name = spec.get("name") if isinstance(spec, Mapping) else None
        options = {k: v for k, v in spec.items() if k != "name"} if isinstance(spec, Mapping) else {}
        if is_import_name(name):
            factory = import_object(name)
            if not callable(factory):
                raise ValueError(f"{name!r} is not callable: a model factory must map a seed to an nn.Module")
        elif name in MODELS:
            return lambda seed, *, input_shape, num_classes: build_model(
                name, input_shape, num_classes, seed=seed, **options
            )
        else:
            raise ValueError(
                f"unknown model {name!r}; choose one of {', '.join(MODELS)} or a 'package.module:attr' factory"
            )

    def build(seed: int, **_: Any) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(check_int(seed, "seed", low=0))
            model = factory(seed, **options)
        if not isinstance(model, nn.Module):
            raise TypeError(f"a model factory must return an nn.Module, got {type(model).__name__}")
        return model

    return build


def classifier_head(model: nn.Module) -> nn.Linear:
    """The model's final ``nn.Linear`` (the last one registered; every model of :data:`MODELS` ends with it):
    its input is the penultimate features (feature distillation, VID)."""
    heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not heads:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier head")
    return heads[-1]


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """The number of scalar parameters of ``model`` (only those with ``requires_grad`` if ``trainable_only``)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
