"""Benchmark of student-training throughput: the device-resident loop against a plain per-item data loader.

Protocol: CIFAR-shaped **synthetic** data, ``n`` random ``uint8`` images ``(n, 3, 32, 32)`` and soft teacher
targets ``softmax(2 N(0, 1))`` over 10 classes, all drawn from a CPU ``torch.Generator`` seeded with
``seed``. Both loops train the same student (``resnet`` of depth 8 by default, or ``small_cnn``; the same
seeded initial weights) with the same optimizer (SGD, Nesterov momentum 0.9, lr 0.05, weight decay 5e-4,
constant learning rate), the same loss (``soft_cross_entropy(..., validate=False)``, mean over the batch),
the same batch size, augmentation (random crop with 4-pixel zero padding + horizontal flip), autocast
(bfloat16 on CUDA, none on the CPU) and memory format (``channels_last`` on CUDA), on the same number of
examples:

- ``resident``: :func:`~robustdistill.experiments.pipeline.training.train` on
  :class:`~robustdistill.experiments.pipeline.training.ResidentInputs` (the ``uint8`` images copied to the device
  once; each batch gathered, normalised, cropped and flipped on the device, vectorised over the batch);
- ``plain``: a ``torch.utils.data.Dataset`` whose ``__getitem__`` converts one image to float, normalises
  it and crops and flips it on the CPU, a ``DataLoader(batch_size, shuffle=True, num_workers=0)``, and each
  batch moved to the device.

Each loop runs ``1 + epochs`` epochs; the first is a warm-up and is not timed. Time per epoch:
``time.perf_counter`` with ``torch.cuda.synchronize()`` at both ends on CUDA. ``images_per_s`` is ``n`` over
the fastest timed epoch (the best-of statistic, robust to a transiently busy machine; the ratio and the
target use it); ``mean_images_per_s`` is all timed images over their total time. Peak memory:
``torch.cuda.max_memory_allocated`` per loop on CUDA (reset before it; the resident loop's includes the
resident images); on the CPU the process's peak resident set size so far (``resource.getrusage``; it never
goes down, so the second loop's figure includes the first's). The data's one-time copy to the device and its
statistics (``ResidentInputs`` construction) are timed separately as ``setup_s``. On CUDA
``torch.backends.cudnn.benchmark`` is on for both loops (restored after). The torch thread count is left
as it is (``threads=None``) and recorded.

Target: on CUDA the resident loop trains at least 2x as many images per second as the plain one; on the
CPU the ratio is reported only.

Run it as ``python -m robustdistill.experiments.benchmarks.throughput`` (``--quick`` for a seconds-long smoke run).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from robustdistill.algorithms.losses import soft_cross_entropy
from robustdistill.algorithms.validation import check_int

from ..pipeline.files import environment_info
from ..pipeline.models import build_model, count_parameters
from ..pipeline.training import (
    CROP_PADDING,
    ResidentInputs,
    TrainConfig,
    image_stats,
    make_optimizer,
    resolve_device,
    train,
)
from .reporting import bench_parser, evaluate_targets, finish_bench, format_table, format_targets

__all__ = ["MODEL_CHOICES", "TARGETS", "make_data", "run", "table"]

#: name -> (description, bound, "max" or "min").
TARGETS: dict[str, tuple[str, float, str]] = {
    "cuda_ratio": ("resident / plain images per second, student training on CUDA", 2.0, "min"),
}

#: ``--model`` choices -> build_model options.
MODEL_CHOICES: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet8": ("resnet", {"depth": 8}),
    "small_cnn": ("small_cnn", {"channels": 32}),
}

NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
DEFAULTS = {"n": 8192, "batch_size": 128, "epochs": 3}
QUICK = {"n": 128, "batch_size": 64, "epochs": 1}
LR = 0.05


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic CIFAR-shaped data: ``uint8`` images ``(n, 3, 32, 32)`` and float32 soft targets ``(n, 10)``."""
    gen = torch.Generator().manual_seed(int(seed))
    images = torch.randint(0, 256, (n, *IMAGE_SHAPE), generator=gen, dtype=torch.uint8)
    teacher = torch.softmax(2.0 * torch.randn(n, NUM_CLASSES, generator=gen), dim=1)
    return images.numpy(), teacher.numpy()


class PlainImages(Dataset):
    """The per-item baseline: one image at a time to float, normalised, cropped and flipped on the CPU.

    The crop pads the normalised image with zeros, as :class:`ResidentInputs` does, so both loops see the
    same input distribution.
    """

    def __init__(
        self, images: np.ndarray, targets: np.ndarray, mean: np.ndarray, std: np.ndarray, generator: torch.Generator
    ) -> None:
        self.images = torch.from_numpy(images)
        self.targets = torch.from_numpy(targets)
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        self.generator = generator

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = (self.images[i].float().div_(255.0) - self.mean) / self.std
        p = CROP_PADDING
        side = 2 * p + 1
        draw = int(torch.randint(0, side * side * 2, (1,), generator=self.generator))
        dy, dx, flip = draw % side, (draw // side) % side, draw // (side * side)
        height, width = x.shape[1:]
        x = F.pad(x, (p, p, p, p))[:, dy : dy + height, dx : dx + width]
        if flip:
            x = x.flip(-1)
        return x.contiguous(), self.targets[i]


def _loss(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return soft_cross_entropy(logits, batch["teacher_probs"], validate=False)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Unix
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def _peak_memory(device: torch.device) -> tuple[int | None, str]:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda max_memory_allocated"
    return _peak_rss_bytes(), "process peak RSS"


def _resident(
    images: np.ndarray, teacher: np.ndarray, device: torch.device, model_name: str, config: TrainConfig
) -> dict[str, Any]:
    name, options = MODEL_CHOICES[model_name]
    model = build_model(name, IMAGE_SHAPE, NUM_CLASSES, seed=config.seed, **options)
    _sync(device)
    start = time.perf_counter()
    inputs = ResidentInputs(images, "image", device)
    _sync(device)
    setup = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result = train(model, inputs, {"teacher_probs": teacher}, _loss, config, progress=False)
    timed = result.epoch_times_s[1:]
    peak, kind = _peak_memory(device)
    return {
        "loop": "resident",
        "images": len(inputs) * len(timed),
        "seconds": sum(timed),
        "epoch_seconds": list(timed),
        "epoch_images": len(inputs),
        "setup_s": setup,
        "final_loss": result.losses[-1],
        "peak_memory_bytes": peak,
        "memory": kind,
        "parameters": count_parameters(model),
    }


def _plain(
    images: np.ndarray, teacher: np.ndarray, device: torch.device, model_name: str, config: TrainConfig
) -> dict[str, Any]:
    name, options = MODEL_CHOICES[model_name]
    model = build_model(name, IMAGE_SHAPE, NUM_CLASSES, seed=config.seed, **options).to(device)
    channels_last = device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    mean, std = image_stats(images)
    dataset = PlainImages(images, teacher, mean, std, torch.Generator().manual_seed(config.seed + 1))
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(config.seed),
    )
    optimizer = make_optimizer(model, config)
    autocast_dtype = config.autocast_dtype(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    times: list[float] = []
    loss_sum = torch.zeros((), device=device)
    for _ in range(config.epochs):
        _sync(device)
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for x, t in loader:
            x = x.to(device, memory_format=memory_format)
            t = t.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_dtype is not None):
                per_example = _loss(model(x), {"teacher_probs": t})
            loss = per_example.float().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += per_example.detach().float().sum()
        final_loss = float(loss_sum.item()) / len(dataset)
        times.append(time.perf_counter() - start)
    timed = times[1:]
    peak, kind = _peak_memory(device)
    return {
        "loop": "plain",
        "images": len(dataset) * len(timed),
        "seconds": sum(timed),
        "epoch_seconds": list(timed),
        "epoch_images": len(dataset),
        "setup_s": None,
        "final_loss": final_loss,
        "peak_memory_bytes": peak,
        "memory": kind,
        "parameters": count_parameters(model),
    }


@contextlib.contextmanager
def _bench_settings(threads: int | None) -> Iterator[int]:
    """Torch threads (None: as is) and cudnn.benchmark on, both restored after."""
    previous_threads = torch.get_num_threads()
    previous_benchmark = torch.backends.cudnn.benchmark
    if threads is not None:
        torch.set_num_threads(threads)
    torch.backends.cudnn.benchmark = True
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous_threads)
        torch.backends.cudnn.benchmark = previous_benchmark


def _devices(devices: Sequence[str] | None) -> list[torch.device]:
    if devices is None:
        found = [torch.device("cpu")]
        if torch.cuda.is_available():
            found.append(resolve_device("cuda"))
        return found
    if isinstance(devices, str) or not devices:
        raise ValueError("devices must be a non-empty list of device names, e.g. ['cpu', 'cuda']")
    return [resolve_device(d) for d in devices]


def run(
    n: int | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    quick: bool = False,
    *,
    model: str = "resnet8",
    devices: Sequence[str] | None = None,
    threads: int | None = None,
    progress: bool | None = False,
) -> dict[str, Any]:
    """Run the benchmark and return a JSON-ready dict.

    Args:
        n: training images (default 8192; quick 128).
        batch_size: images per step (default 128; quick 64).
        epochs: timed epochs per loop after one untimed warm-up epoch (default 3; quick 1).
        seed: seeds the data, the initial weights, the order and the augmentation.
        quick: the small defaults above (seconds); explicit arguments still win.
        model: ``"resnet8"`` (CIFAR ResNet of depth 8) or ``"small_cnn"``.
        devices: e.g. ``["cpu", "cuda"]``; None = the CPU and, when available, the current CUDA device.
        threads: torch intra-op threads for the run (restored after); None leaves the setting (recorded).
        progress: a tqdm bar over the (device, loop) cases on stderr; None = only when stderr is a terminal.

    Returns:
        ``{"benchmark", "rows", "ratios", "targets", "targets_met", "protocol", "seed", "quick",
        "environment", "seconds"}``. ``rows``: per device and loop ``images`` and ``seconds`` (timed epochs),
        ``epoch_seconds``, ``images_per_s`` (fastest epoch), ``mean_images_per_s``, ``peak_memory_bytes`` (and
        what it measures in ``memory``), ``setup_s`` (resident only), ``final_loss``, ``parameters``;
        ``ratios``: per device ``resident / plain`` images per second; ``targets_met["cuda_ratio"]`` is None
        without CUDA.
    """
    sizes = dict(QUICK if quick else DEFAULTS)
    for key, value in (("n", n), ("batch_size", batch_size), ("epochs", epochs)):
        if value is not None:
            sizes[key] = value
    n = check_int(sizes["n"], "n", low=1)
    batch_size = check_int(sizes["batch_size"], "batch_size", low=1)
    epochs = check_int(sizes["epochs"], "epochs", low=1)
    seed = check_int(seed, "seed", low=0)
    if not isinstance(model, str) or model not in MODEL_CHOICES:
        raise ValueError(f"model must be one of {', '.join(MODEL_CHOICES)}, got {model!r}")
    if threads is not None:
        threads = check_int(threads, "threads", low=1)
    if progress is None:
        progress = sys.stderr.isatty()
    device_list = _devices(devices)
    config = TrainConfig(
        epochs=1 + epochs,
        batch_size=batch_size,
        optimizer="sgd",
        lr=LR,
        weight_decay=5e-4,
        schedule="constant",
        augment=True,
        amp="auto",
        seed=seed,
    )
    images, teacher = make_data(n, seed)

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    cases = [(d, loop) for d in device_list for loop in ("resident", "plain")]
    bar = tqdm(cases, desc="bench throughput", unit="loop", disable=not progress, file=sys.stderr)
    with _bench_settings(threads) as used_threads:
        for device, loop in bar:
            bar.set_postfix(device=str(device), loop=loop)
            measure = _resident if loop == "resident" else _plain
            row = {"device": str(device), "model": model, **measure(images, teacher, device, model, config)}
            fastest = min(row["epoch_seconds"])
            row["images_per_s"] = row["epoch_images"] / fastest if fastest > 0 else None
            row["mean_images_per_s"] = row["images"] / row["seconds"] if row["seconds"] > 0 else None
            rows.append(row)
    bar.close()
    seconds = time.perf_counter() - started

    ratios: list[dict[str, Any]] = []
    for device in device_list:
        by_loop = {r["loop"]: r for r in rows if r["device"] == str(device)}
        resident, plain = by_loop["resident"]["images_per_s"], by_loop["plain"]["images_per_s"]
        ratio = resident / plain if resident and plain else None
        ratios.append(
            {"device": str(device), "resident_images_per_s": resident, "plain_images_per_s": plain, "ratio": ratio}
        )
    cuda_ratios = [r["ratio"] for r in ratios if r["device"].startswith("cuda") and r["ratio"] is not None]
    measured = {"cuda_ratio": min(cuda_ratios) if cuda_ratios else None}
    targets, met = evaluate_targets(TARGETS, measured)
    return {
        "benchmark": "throughput",
        "rows": rows,
        "ratios": ratios,
        "targets": targets,
        "targets_met": met,
        "protocol": {
            "data": f"synthetic uint8 images {n} x {IMAGE_SHAPE}, soft targets over {NUM_CLASSES} classes",
            "model": model,
            "n": n,
            "batch_size": batch_size,
            "warmup_epochs": 1,
            "timed_epochs": epochs,
            "config": config.to_dict(),
            "plain_loader": "Dataset per item (CPU float, normalise, crop, flip) + DataLoader(shuffle=True, "
            "num_workers=0), batches moved to the device",
            "statistic": "images_per_s: images of one epoch / the fastest timed epoch's wall time; "
            "mean_images_per_s: all timed images / their total time (cuda.synchronize at both ends on CUDA)",
            "torch_threads": used_threads,
            "devices": [str(d) for d in device_list],
        },
        "seed": int(seed),
        "quick": bool(quick),
        "environment": environment_info(),
        "seconds": seconds,
    }


def table(result: dict[str, Any]) -> str:
    """The printed report: images/s and peak memory per device and loop, the ratios and the target."""
    proto = result["protocol"]
    rows = [
        {**r, "peak_memory_MiB": None if r["peak_memory_bytes"] is None else r["peak_memory_bytes"] / 2**20}
        for r in result["rows"]
    ]
    return "\n".join(
        [
            f"throughput benchmark: {proto['model']} on {proto['n']} synthetic 3x32x32 images, batch "
            f"{proto['batch_size']}, {proto['timed_epochs']} timed epoch(s) after 1 warm-up, augment on, "
            f"torch threads {proto['torch_threads']}, seed {result['seed']}",
            format_table(
                rows,
                [
                    "device",
                    "loop",
                    "images",
                    "seconds",
                    "images_per_s",
                    "mean_images_per_s",
                    "peak_memory_MiB",
                    "memory",
                ],
            ),
            "",
            format_table(result["ratios"], ["device", "resident_images_per_s", "plain_images_per_s", "ratio"]),
            "",
            format_table(format_targets(result), ["target", "bound", "measured", "met"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m robustdistill.experiments.benchmarks.throughput [--quick] [--n N] [--device D] [--json F]``."""
    parser = bench_parser("throughput", __doc__, "128 images, 1 timed epoch (seconds)")
    parser.add_argument("--n", type=int, default=None, help=f"training images (default {DEFAULTS['n']})")
    parser.add_argument("--batch-size", type=int, default=None, help=f"default {DEFAULTS['batch_size']}")
    parser.add_argument("--epochs", type=int, default=None, help=f"timed epochs (default {DEFAULTS['epochs']})")
    parser.add_argument("--model", choices=sorted(MODEL_CHOICES), default="resnet8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: as is)")
    parser.add_argument("--device", action="append", default=None, help="cpu or cuda; repeat for several")
    args = parser.parse_args(argv)
    try:
        result = run(
            n=args.n,
            batch_size=args.batch_size,
            epochs=args.epochs,
            seed=args.seed,
            quick=args.quick,
            model=args.model,
            devices=args.device,
            threads=args.threads,
            progress=None if not args.quiet else False,
        )
    except (ValueError, TypeError) as exc:
        print(f"bench_throughput: {exc}", file=sys.stderr)
        return 2
    return finish_bench(result, table(result), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
