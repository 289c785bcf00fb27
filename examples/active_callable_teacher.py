"""Active distillation with a paid teacher: a callable that counts what it is asked.

What it shows
    The teacher is a plain Python callable ``batch of raw inputs -> (b, K) probabilities``, standing in for
    a paid API (here a LogisticRegression fitted on 100 labeled digits the pipeline never sees; it is wrong
    on about one answer in six). ``robustdistill.experiments.run_active_distillation`` asks it only about the
    labeled validation set V and, for R rounds, about the b pool points a selector picks, so each seed costs
    exactly |V| + R*b labels. The callable counts the rows it answers and the script checks that count
    against |V| + R*b. RAD (``selector="rad"``: the query game against the teacher's estimated mistakes, then
    DepRound) is compared with baseline selectors (margin sampling, uniform sampling) on the same splits
    and with the same student factory.

    The teacher's test accuracy comes from the model itself, not through the API, so evaluation costs
    nothing (``evaluate_teacher = False``). Each selector's run has its own ``name``, so its folder under
    ``out`` never collides with another's; ``cache = False`` keeps no answers on disk between runs.

How to run
    python examples/active_callable_teacher.py                    # 4 rounds of 40 queries, 2 seeds
    python examples/active_callable_teacher.py --selectors rad margin random badge
    python examples/active_callable_teacher.py --quick            # tiny sizes, a few seconds
    python examples/active_callable_teacher.py --out runs/        # keep the JSON results (default: a temp dir)

What it prints
    The student's test accuracy (mean over seeds) against the teacher labels used (|V| + cumulative
    queries), one column per selector; then, per selector, the rows and calls the paid callable received
    and the check ``rows == seeds * (|V| + R*b)``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from robustdistill.experiments import load_dataset, run_active_distillation


class PaidTeacher:
    """A stand-in for a paid API: raw inputs in, probabilities out; every call and every answered row counted."""

    def __init__(self, model) -> None:
        self.model = model
        self.calls = 0  # invocations (the pipeline batches its questions)
        self.rows = 0  # labels answered: what a per-label API would bill

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.rows += len(inputs)
        return self.model.predict_proba(np.asarray(inputs) / 16.0)


def student_factory(hidden: int):
    """``seed -> nn.Module`` for 8x8 digits (the pipeline standardises the inputs it gives the student)."""

    def make(seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    return make


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--selectors",
        nargs="+",
        default=["rad", "margin", "random"],
        help="names of robustdistill.algorithms.selection.SELECTORS",
    )
    parser.add_argument("--teacher-labels", type=int, default=100, help="labeled digits the paid model was fitted on")
    parser.add_argument("--labeled", type=int, default=50, help="labeled set A the student starts from")
    parser.add_argument("--validation", type=int, default=200, help="|V| (RAD's mistake estimate; >= 100)")
    parser.add_argument("--unlabeled", type=int, default=1000, help="the pool U the selectors pick from")
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=4, help="R")
    parser.add_argument("--budget", type=int, default=40, help="b, teacher queries per round")
    parser.add_argument("--loss", default="vanilla", help="the student's loss on A and the queried points (slam, ...)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a few seconds on one core")
    args = parser.parse_args(argv)
    if args.quick:
        args.validation, args.unlabeled, args.test, args.rounds, args.budget = 100, 300, 200, 2, 20
        args.epochs, args.seeds = 10, 1

    ds = load_dataset("digits")  # 1797 8x8 digits, raw pixels 0..16, bundled with scikit-learn
    X, y = np.asarray(ds.X), np.asarray(ds.y)
    fitted, rows = np.arange(args.teacher_labels), np.arange(args.teacher_labels, y.size)
    model = LogisticRegression(max_iter=2000).fit(X[fitted] / 16.0, y[fitted])
    X, y = X[rows], y[rows]

    expected = args.seeds * (args.validation + args.rounds * args.budget)
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out if args.out is not None else Path(tmp)
        for selector in args.selectors:
            api = PaidTeacher(model)  # a fresh meter per selector
            config = dict(
                name=f"active_{selector}",
                dataset="digits",
                labeled=args.labeled,
                validation=args.validation,
                unlabeled=args.unlabeled,
                test=args.test,
                epochs=args.epochs,
                seeds=args.seeds,
                train={"optimizer": "adamw", "lr": 3e-3, "weight_decay": 1e-4, "batch_size": 32},
                selector=selector,
                rounds=args.rounds,
                budget=args.budget,
                loss=args.loss,
                out=str(out),
                cache=False,
                evaluate_teacher=False,
            )
            r = run_active_distillation(config, data=(X, y), teacher=api, student=student_factory(args.hidden))
            results[selector] = {
                "queries": [args.validation + q for q in r.queries],
                "accuracy": list(r.mean),
                "rows": api.rows,
                "calls": api.calls,
                "teacher_queries": sum(r.teacher_queries),
                "rounds": [rd for seed in r.per_seed for rd in seed["rounds"]],
            }

    teacher_acc = float((model.predict(X / 16.0) == y).mean())  # free: the model itself, not the paid API
    print(
        f"digits: paid teacher fitted on {args.teacher_labels} labels (accuracy {teacher_acc:.3f} on the data); "
        f"A {args.labeled}, |V| {args.validation}, |U| {args.unlabeled}, test {args.test}; "
        f"R {args.rounds} x b {args.budget}; loss {args.loss}; seeds {args.seeds}"
    )
    print(f"{'labels used':>11} " + " ".join(f"{s:>8}" for s in args.selectors))
    first = results[args.selectors[0]]["queries"]
    for i, labels in enumerate(first):
        print(f"{labels:>11d} " + " ".join(f"{results[s]['accuracy'][i]:>8.3f}" for s in args.selectors))
    for s in args.selectors:
        rows, calls = results[s]["rows"], results[s]["calls"]
        formula = f"{args.seeds} x ({args.validation} + {args.rounds}*{args.budget})"
        print(
            f"{s}: the paid callable answered {rows} rows in {calls} calls; "
            f"seeds x (|V| + R*b) = {formula} = {expected}: {rows == expected}"
        )
    if "rad" in results:
        rounds = results["rad"]["rounds"]
        near = sum(bool(rd.get("near_uniform")) for rd in rounds)
        m = [rd["mistakes"] for rd in rounds]
        print(
            f"rad: estimated teacher mistakes m on the remaining pool {min(m)}-{max(m)}; its sampling law "
            f"was close to uniform in {near} of {len(rounds)} rounds"
        )
    return results


if __name__ == "__main__":
    main()
