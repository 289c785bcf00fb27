"""SLaM and Weighted Distillation inside your own PyTorch training loop.

What it shows
    A weak teacher (scikit-learn's LogisticRegression fitted on a few dozen labeled digits) labels an
    unlabeled pool. A method object from ``robustdistill.algorithms.methods`` is fitted on a small labeled
    validation set V (the teacher's probabilities there and the true labels), turns the teacher's pool
    probabilities into per-example arrays (``prepare``) and gives one loss value per example (``loss``).
    Everything else is a plain PyTorch loop of your own: your student (a small MLP), your optimiser, your
    batches. The same loop runs with ``Vanilla`` (plain distillation), ``WeightedDistillation`` and
    ``SLaM``; only the method object changes.

How to run
    python examples/slam_own_loop.py            # digits: 40 labeled, |V| = 200, pool 1000 (about a minute)
    python examples/slam_own_loop.py --quick    # tiny sizes, a few seconds

What it prints
    The teacher's test accuracy, then one row per method: the student's test accuracy (mean and min-max over
    ``--seeds`` student seeds) and the training time. Every accuracy is in [0, 1].
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from torch import nn

from robustdistill.algorithms.methods import SLaM, Vanilla, WeightedDistillation, concat_batches, to_tensors

#: The methods compared, by the name printed in the table.
METHODS = {
    "vanilla": lambda: Vanilla(),
    "weighted": lambda: WeightedDistillation(scheme="accuracy"),
    "slam": lambda: SLaM(),
}


def make_student(seed: int, dim: int, hidden: int, num_classes: int) -> nn.Module:
    """A one-hidden-layer MLP whose initial weights depend on ``seed`` only (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def train_student(
    method,
    x_labeled: np.ndarray,
    y_labeled: np.ndarray,
    x_pool: np.ndarray,
    t_pool: np.ndarray,
    *,
    seed: int,
    hidden: int,
    epochs: int,
    batch_size: int = 64,
    lr: float = 1e-2,
) -> nn.Module:
    """Your loop: the labeled rows (true labels) and the pool rows (the teacher's probabilities) in one
    dataset, the method's batch arrays indexed like the inputs, and the mean of the method's per-example loss."""
    arrays = concat_batches(method.prepare_labeled(y_labeled), method.prepare(t_pool))
    batch = to_tensors(arrays)  # targets, weights, labeled, plus the method's own keys
    inputs = torch.as_tensor(np.concatenate([x_labeled, x_pool]), dtype=torch.float32)
    student = make_student(seed, inputs.shape[1], hidden, t_pool.shape[1])
    optimiser = torch.optim.Adam(student.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for rows in torch.randperm(len(inputs), generator=order).split(batch_size):
            loss = method.loss(student(inputs[rows]), {key: value[rows] for key, value in batch.items()}).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return student


def accuracy(student: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((student(torch.as_tensor(X, dtype=torch.float32)).argmax(1).numpy() == y).mean())


def main(argv: Sequence[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labeled", type=int, default=40, help="labeled points the teacher (and student) see")
    parser.add_argument("--validation", type=int, default=200, help="|V|, labeled points to fit the methods (>= 100)")
    parser.add_argument("--pool", type=int, default=1000, help="unlabeled points the teacher labels")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=3, help="student seeds per method")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data split")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a few seconds on one core")
    args = parser.parse_args(argv)
    if args.quick:
        args.validation, args.pool, args.epochs, args.seeds = 120, 300, 20, 1

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    perm = np.random.default_rng(args.seed).permutation(len(y))
    cuts = np.cumsum([args.labeled, args.validation, args.pool])
    if cuts[-1] >= len(y):
        parser.error(f"labeled + validation + pool must leave test points (digits has {len(y)} rows)")
    labeled, val, pool, test = np.split(perm, cuts)

    # The teacher: few labels, so it is often wrong. Any model with probabilities works (a torch model, an API).
    teacher = LogisticRegression(max_iter=2000).fit(X[labeled], y[labeled]).predict_proba
    t_val, t_pool = teacher(X[val]), teacher(X[pool])
    teacher_acc = float((teacher(X[test]).argmax(1) == y[test]).mean())

    print(
        f"digits: labeled {labeled.size}, |V| {val.size}, pool {pool.size}, test {test.size}; "
        f"student seeds {args.seeds}, epochs {args.epochs}"
    )
    print(f"teacher test accuracy {teacher_acc:.3f} (pool labels wrong: {np.mean(t_pool.argmax(1) != y[pool]):.3f})")
    print(f"{'method':<10} {'student acc':>11} {'min':>6} {'max':>6} {'time s':>7}")
    results: dict[str, list[float]] = {"teacher": [teacher_acc]}
    for name, make in METHODS.items():
        started = time.perf_counter()
        method = make().fit(t_val, y[val])  # estimates on V: alpha(x), SLaM's k, the weights' map
        accs = []
        for s in range(args.seeds):
            student = train_student(
                method, X[labeled], y[labeled], X[pool], t_pool, seed=s, hidden=args.hidden, epochs=args.epochs
            )
            accs.append(accuracy(student, X[test], y[test]))
        results[name] = accs
        print(
            f"{name:<10} {np.mean(accs):>11.3f} {min(accs):>6.3f} {max(accs):>6.3f} "
            f"{time.perf_counter() - started:>7.1f}"
        )
    return results


if __name__ == "__main__":
    main()
