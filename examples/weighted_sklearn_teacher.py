"""Weighted Distillation with a scikit-learn teacher, through ``run_distillation``.

What it shows
    A scikit-learn classifier fitted on a few labels (LogisticRegression, or a small random forest with
    ``--teacher forest``) is the teacher: its ``predict_proba`` on every row is given to
    ``robustdistill.experiments.run_distillation`` as an ``(n, K)`` array of probabilities (a callable such
    as ``clf.predict_proba`` works too), with your own data ``(X, y)`` and your own student factory
    ``seed -> nn.Module``. Weighted Distillation fits the teacher's accuracy alpha(x) as a monotone function
    of its margin on the labeled validation set V (``teacher_quality.fit_teacher_accuracy``) and weights each
    pool example's loss by w(alpha(x)). The script prints that fitted curve next to the empirical accuracy in
    bins of V (with exact Clopper-Pearson intervals), then compares the students.

How to run
    python examples/weighted_sklearn_teacher.py                    # 5-class Gaussian mixture, 3 seeds
    python examples/weighted_sklearn_teacher.py --teacher forest   # a small tree ensemble as the teacher
    python examples/weighted_sklearn_teacher.py --quick            # tiny sizes, a few seconds
    python examples/weighted_sklearn_teacher.py --out runs/        # keep the JSON results (default: a temp dir)

What it prints
    1. the teacher-accuracy curve on V: per margin bin, the empirical accuracy and its interval, the fitted
       alpha(x) averaged over the bin, and the weight w(alpha) of two schemes;
    2. one row per method (``labeled_only``, ``vanilla``, ``weighted``): the student's test accuracy (mean
       over seeds), the teacher's test accuracy and the teacher labels used per seed (|V| + |U|).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from torch import nn

from robustdistill.algorithms.teacher_quality import binned_accuracy, fit_teacher_accuracy, teacher_feature
from robustdistill.algorithms.weighting import distillation_weights
from robustdistill.experiments import from_arrays, load_dataset, make_splits, run_distillation

#: The student methods compared: (run name, method, method options).
RUNS = (
    ("labeled_only", "labeled_only", {}),
    ("vanilla", "vanilla", {}),
    ("weighted", "weighted", {"scheme": "signal"}),
)


def student_factory(hidden: int):
    """``seed -> nn.Module``: the student the pipeline trains (the global RNG is left as it was)."""

    def make(seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return nn.Sequential(nn.Linear(20, hidden), nn.ReLU(), nn.Linear(hidden, 5))

    return make


def make_teacher(kind: str, X: np.ndarray, y: np.ndarray):
    if kind == "forest":
        return RandomForestClassifier(n_estimators=30, max_depth=4, random_state=0).fit(X, y)
    return LogisticRegression(max_iter=2000).fit(X, y)


def print_curve(t_val: np.ndarray, y_val: np.ndarray, n_bins: int) -> None:
    """The fitted teacher-accuracy curve against the empirical accuracy in equal-mass margin bins of V."""
    fit = fit_teacher_accuracy(t_val, y_val, feature="margin")
    bins = binned_accuracy(t_val, y_val, feature="margin", n_bins=n_bins)
    margin = teacher_feature(t_val, "margin")
    order = np.argsort(margin, kind="stable")
    groups = np.array_split(order, n_bins)  # the same equal-mass groups as binned_accuracy
    num_classes = t_val.shape[1]
    print(f"teacher accuracy vs margin on V (|V| = {y_val.size}; isotonic fit with {fit.knots_x.size} knots)")
    print(
        f"{'margin range':>15} {'n':>4} {'empirical':>9} {'95% exact CI':>14} {'fitted alpha':>12} "
        f"{'w accuracy':>10} {'w signal':>8}"
    )
    for b, rows in enumerate(groups):
        alpha = float(fit.predict(t_val[rows]).mean())
        w_acc, w_sig = (float(distillation_weights([alpha], num_classes, s)[0]) for s in ("accuracy", "signal"))
        interval = f"[{bins.exact_low[b]:.2f}, {bins.exact_high[b]:.2f}]"
        print(
            f"{bins.low[b]:>7.3f}-{bins.high[b]:<7.3f} {bins.counts[b]:>4d} {bins.accuracy[b]:>9.3f} "
            f"{interval:>14} {alpha:>12.3f} {w_acc:>10.3f} {w_sig:>8.3f}"
        )


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="points in the Gaussian mixture (5 classes, 20 dims)")
    parser.add_argument("--teacher-labels", type=int, default=100, help="labeled points the teacher is fitted on")
    parser.add_argument("--teacher", choices=("logistic", "forest"), default="logistic")
    parser.add_argument("--labeled", type=int, default=50, help="labeled set A of the student")
    parser.add_argument("--validation", type=int, default=300, help="|V| (>= 100 for the accuracy fit)")
    parser.add_argument("--unlabeled", type=int, default=2000, help="the pool U the teacher labels")
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--bins", type=int, default=5, help="margin bins of the printed curve")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a few seconds on one core")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.validation, args.unlabeled, args.test, args.epochs, args.seeds = 1200, 150, 500, 300, 15, 1
        args.bins = 3

    # Your data: a 5-class Gaussian mixture; the teacher's labels come from rows the pipeline never sees.
    ds = load_dataset("gaussian_mixture", n=args.n, rng=0)
    X, y = np.asarray(ds.X), np.asarray(ds.y)
    teacher_rows, rows = np.arange(args.teacher_labels), np.arange(args.teacher_labels, args.n)
    clf = make_teacher(args.teacher, X[teacher_rows], y[teacher_rows])
    X, y = X[rows], y[rows]
    teacher_probs = clf.predict_proba(X)  # one row per data row: the pipeline asks it by row, on demand

    sizes = dict(labeled=args.labeled, validation=args.validation, unlabeled=args.unlabeled, test=args.test)
    # The validation set V of seed 0, as the pipeline draws it (same sizes, rng = seed): the curve's data.
    splits = make_splits(from_arrays(X, y), **sizes, rng=0)
    print(
        f"teacher: {args.teacher} on {args.teacher_labels} labels; data {y.size} rows, "
        f"A {args.labeled}, |V| {args.validation}, |U| {args.unlabeled}, test {args.test}"
    )
    print_curve(teacher_probs[splits.validation], y[splits.validation], args.bins)

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out if args.out is not None else Path(tmp)
        train = {"optimizer": "adamw", "lr": 3e-3, "weight_decay": 1e-4, "batch_size": 64}
        base = dict(
            dataset="gaussian_mixture",
            **sizes,
            epochs=args.epochs,
            seeds=args.seeds,
            train=train,
            out=str(out),
            cache=False,
        )
        results: dict[str, dict[str, float]] = {}
        print(f"{'method':<13} {'student acc':>11} {'std':>6} {'teacher acc':>11} {'labels/seed':>11}")
        for name, method, options in RUNS:
            config = {**base, "name": f"{args.teacher}_{name}", "method": method, "method_options": options}
            r = run_distillation(config, data=(X, y), teacher=teacher_probs, student=student_factory(args.hidden))
            same_v = r.per_seed[0]["splits"]["digest"] == splits.to_dict()["digest"]
            results[name] = {
                "student": r.student_mean,
                "std": r.student_std,
                "teacher": r.teacher_mean,
                "queries": float(r.teacher_queries[0]),
                "same_splits": float(same_v),
            }
            print(
                f"{name:<13} {r.student_mean:>11.3f} {r.student_std:>6.3f} {r.teacher_mean:>11.3f} "
                f"{r.teacher_queries[0]:>11d}"
            )
        print(f"the curve's V is the pipeline's V of seed 0: {same_v}")
    return results


if __name__ == "__main__":
    main()
