"""Adversarial inputs for every public entry of ``robustdistill.algorithms`` and ``robustdistill.theory``.

Each entry is a callable with a set of valid keyword arguments. Every argument in turn is replaced by bad
values (NaN and inf, negative and zero, huge integers and floats, empty arrays, wrong ndim and shape,
strings and numeric strings, booleans, None, object, complex and string arrays, a torch tensor where numpy
is expected and numpy where torch is expected) while the others stay valid, and each call is classified:

- ``clean``: a ``ValueError`` or ``TypeError`` whose message names the replaced argument;
- ``accepted``: the call returned, and every float in its output is finite;
- anything else is a finding: another exception, a message that does not name the argument, a NaN or
  inf in the output, a call past :data:`TIME_LIMIT`, a bad value that was accepted (NaN, strings,
  complex or object arrays, ...), or a valid value that was refused (a torch tensor where the contract
  takes array-likes).

``run_all()`` runs every case in a fixed order and returns a :class:`Report`; ``python -m tests.fuzz_cases``
prints the table (``--verbose`` lists the findings).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import numpy as np
import torch

from robustdistill.algorithms import losses as L
from robustdistill.algorithms import methods as M
from robustdistill.algorithms import rad, slam
from robustdistill.algorithms import selection as S
from robustdistill.algorithms import teacher_quality as TQ
from robustdistill.algorithms import weighting as W
from robustdistill.algorithms.depround import depround_partial
from robustdistill.algorithms.selection import NearUniformWarning
from robustdistill.theory import halfspace as H
from robustdistill.theory import query_game as QG

#: Seconds one call may take.
TIME_LIMIT = 5.0

#: What a replacement value must do: be refused, be accepted, or either (a clean error or a finite result).
REJECT, ACCEPT, EITHER = "reject", "accept", "either"

#: The argument kinds, which decide the replacement values:
#: ``array``: a data-level numpy argument (array-likes, torch tensors included, are accepted);
#: ``tensor``: a torch tensor is required (logits);
#: ``loose``: a loss's side input (torch tensor, numpy array or list);
#: ``int``, ``real``, ``flag`` (a real bool), ``choice`` (one of some strings), ``rng``, ``mapping`` (a batch)
#: and ``other``.
KINDS = (
    "array",
    "tensor",
    "loose",
    "int",
    "real",
    "flag",
    "choice",
    "rng",
    "mapping",
    "other",
)


@dataclasses.dataclass(frozen=True)
class Entry:
    """A public callable and its valid arguments.

    Attributes:
        name: shown in the report, e.g. ``"losses.kd_loss"``.
        call: called as ``call(**kwargs)``.
        valid: builds fresh valid keyword arguments.
        kinds: the fuzzed arguments and their kind (see :data:`KINDS`); the others stay valid.
        optional: arguments for which None is a valid value.
        unchecked: arguments whose values the entry documents it does not check (a bad value may pass
            and give a non-finite output); only their types and shapes must fail cleanly.
        covers: the public function or class the entry exercises (``call`` itself by default).
    """

    name: str
    call: Callable[..., Any]
    valid: Callable[[], dict[str, Any]]
    kinds: dict[str, str]
    optional: frozenset[str] = frozenset()
    unchecked: frozenset[str] = frozenset()
    covers: Any = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One call: the entry, the replaced argument, the replacement's label and the class of the result."""

    entry: str
    arg: str
    value: str
    result: str  # "clean", "accepted" or a finding: "other: <why>"
    detail: str = ""
    seconds: float = 0.0

    @property
    def finding(self) -> bool:
        return self.result not in ("clean", "accepted")


@dataclasses.dataclass(frozen=True)
class Report:
    """Every call's outcome, with the counts of the table."""

    outcomes: tuple[Outcome, ...]

    @property
    def calls(self) -> int:
        return len(self.outcomes)

    @property
    def clean(self) -> int:
        return sum(o.result == "clean" for o in self.outcomes)

    @property
    def accepted(self) -> int:
        return sum(o.result == "accepted" for o in self.outcomes)

    @property
    def findings(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.finding]

    def table(self) -> str:
        entries = len({o.entry for o in self.outcomes})
        rows = [
            ("entries", entries),
            ("calls", self.calls),
            ("clean errors (ValueError/TypeError naming the argument)", self.clean),
            ("accepted (finite outputs)", self.accepted),
            ("other (must be 0)", len(self.findings)),
        ]
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{label:<{width}}  {count:>7}" for label, count in rows)

    def describe_findings(self, limit: int = 200) -> str:
        lines = [
            f"{o.entry}({o.arg}={o.value}): {o.result}" + (f" -- {o.detail}" if o.detail else "")
            for o in self.findings[:limit]
        ]
        if len(self.findings) > limit:
            lines.append(f"... and {len(self.findings) - limit} more")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------
# Running one call


class CallTimeout(BaseException):
    """Raised by the alarm inside a call past :data:`TIME_LIMIT` (a BaseException, so that no
    ``except Exception`` of the code under test swallows it)."""


def _on_alarm(signum: int, frame: object) -> None:
    raise CallTimeout


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (SIGALRM, main thread on POSIX; elsewhere only measured)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def names(message: str, arg: str) -> bool:
    """Whether ``arg`` appears in ``message`` as a whole word."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(arg)}(?![A-Za-z0-9_])", message) is not None


def nonfinite(x: Any, depth: int = 0) -> bool:
    """Whether an output holds a NaN or an infinity anywhere (arrays, tensors, numbers, containers,
    result dataclasses, fitted methods and loss modules)."""
    if depth > 6:
        return False
    if isinstance(x, torch.Tensor):
        x = x.detach()
        return (x.is_floating_point() or x.is_complex()) and not bool(torch.isfinite(x).all())
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            return any(nonfinite(v, depth + 1) for v in x.ravel().tolist())
        return np.issubdtype(x.dtype, np.inexact) and not bool(np.isfinite(x).all())
    if isinstance(x, (bool, np.bool_, int, np.integer, str)):
        return False
    if isinstance(x, (float, np.floating, complex, np.complexfloating)):
        return not np.isfinite(x)
    if isinstance(x, dict):
        return any(nonfinite(v, depth + 1) for v in x.values())
    if isinstance(x, (list, tuple)):
        return any(nonfinite(v, depth + 1) for v in x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return any(nonfinite(getattr(x, f.name), depth + 1) for f in dataclasses.fields(x))
    if isinstance(x, torch.nn.Module):
        return any(nonfinite(t, depth + 1) for t in (*x.parameters(), *x.buffers()))
    if isinstance(x, M.Method):
        return any(nonfinite(getattr(x, k), depth + 1) for k in x._fitted_names() if hasattr(x, k))
    return False


def holds_nonfinite(value: Any) -> bool:
    """Whether a replacement value holds NaN or inf (numbers, numeric arrays, tensors)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (float, np.floating)):
        return not math.isfinite(value)
    if isinstance(value, (np.ndarray, torch.Tensor)):
        try:
            return nonfinite(value)
        except TypeError:
            return False
    return False


def run_case(entry: Entry, arg: str, label: str, value: Any, expect: str) -> Outcome:
    """Call ``entry`` with ``arg`` replaced by ``value`` and classify the result."""
    kwargs = entry.valid()
    kwargs[arg] = value
    start = time.perf_counter()
    try:
        out = _call(entry, kwargs)
    except CallTimeout:
        result = "other: timeout"
        return Outcome(entry.name, arg, label, result, f"> {TIME_LIMIT:g} s", TIME_LIMIT)
    except Exception as exc:  # noqa: BLE001 - classified: only a clean ValueError/TypeError passes
        seconds = time.perf_counter() - start
        result = _error_result(exc, arg, expect, seconds)
        return Outcome(entry.name, arg, label, result, _short(exc), seconds)
    seconds = time.perf_counter() - start
    result = _return_result(entry, arg, label, value, expect, out, seconds)
    return Outcome(entry.name, arg, label, result, "", seconds)


def _call(entry: Entry, kwargs: dict[str, Any]) -> Any:
    """``entry.call(**kwargs)`` under the time limit, with every warning raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Documented warnings, not findings: RAD's near-uniform law, and the coarse isotonic fit of a
        # small validation set (a replacement may shrink it).
        warnings.simplefilter("ignore", NearUniformWarning)
        warnings.filterwarnings("ignore", "fit_teacher_accuracy: only", UserWarning)
        with time_limit(TIME_LIMIT):
            return entry.call(**kwargs)


def _error_result(exc: Exception, arg: str, expect: str, seconds: float) -> str:
    if not isinstance(exc, (ValueError, TypeError)):
        return f"other: {type(exc).__name__}"
    if seconds > TIME_LIMIT:
        return "other: slow error"
    if expect == ACCEPT:
        return "other: refused a valid value"
    if not names(str(exc), arg):
        return "other: message does not name the argument"
    return "clean"


def _return_result(
    entry: Entry,
    arg: str,
    label: str,
    value: Any,
    expect: str,
    out: Any,
    seconds: float,
) -> str:
    if seconds > TIME_LIMIT:
        return "other: slow"
    unchecked = arg in entry.unchecked
    if expect == REJECT and not unchecked:
        return "other: accepted a bad value"
    extreme = holds_nonfinite(value) or label.startswith("extreme")
    if nonfinite(out) and not (unchecked and extreme):
        return "other: NaN or inf in the output"
    return "accepted"


def _short(exc: BaseException, limit: int = 160) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------------------------
# Replacement values


def _generic(kind: str, optional: bool) -> list[tuple[str, Any, str]]:
    """Values tried for every argument; the expectation depends on the kind."""
    array = kind in ("array", "tensor", "loose")
    flag, choice, rng = kind == "flag", kind == "choice", kind == "rng"
    option = flag or choice  # a number is never a flag or an option string
    return [
        # None is the default of optional arguments (and of rng: fresh entropy)
        ("None", None, EITHER if (optional or rng) else REJECT),
        # a bool is a flag, and inside an array a 0/1 number (a scalar broadcasts like any number)
        ("True", True, EITHER if (flag or array) else REJECT),
        ("False", False, EITHER if (flag or array) else REJECT),
        ("'abc'", "abc", REJECT),
        ("'0.9'", "0.9", REJECT),
        ("'1'", "1", REJECT),
        ("1.5j", 1.5j, REJECT),
        ("nan", math.nan, REJECT),
        ("inf", math.inf, REJECT),
        ("-inf", -math.inf, REJECT),
        ("-1", -1, REJECT if option else EITHER),
        ("0", 0, REJECT if option else EITHER),
        ("1", 1, REJECT if option else EITHER),
        # a valid count for many arguments (and SLaM's k may be "auto" or a count): the work must stay
        # bounded
        ("10**8", 10**8, REJECT if flag else EITHER),
        ("10**400", 10**400, REJECT if option else EITHER),
        ("-10**400", -(10**400), REJECT if (option or rng) else EITHER),
        ("2**63", 2**63, REJECT if option else EITHER),
        ("1e308", 1e308, REJECT if (option or rng) else EITHER),
        ("-1e308", -1e308, REJECT if (option or rng) else EITHER),
        ("1e-40", 1e-40, REJECT if (option or rng) else EITHER),
        ("1e-320", 1e-320, REJECT if (option or rng) else EITHER),
        ("2.5", 2.5, REJECT if (option or rng) else EITHER),
        ("empty array", np.array([]), EITHER if array else REJECT),
        ("3-D zeros", np.zeros((2, 2, 2)), EITHER if array else REJECT),
        ("['abc'] array", np.array(["abc"]), REJECT),
        ("object array", np.array([None, 1.0], dtype=object), REJECT),
        ("complex array", np.array([1 + 1j, 0.5]), REJECT),
        ("numeric-string array", np.array(["1", "0"]), REJECT),
        ("object()", object(), REJECT),
        # an empty mapping is a batch without rows or keys (to_tensors converts it to an empty dict)
        ("{}", {}, EITHER if kind == "mapping" else REJECT),
        ("[[]]", [[]], EITHER if array else REJECT),
    ]


def _array_values(v: np.ndarray, kind: str) -> list[tuple[str, Any, str]]:
    """Values derived from a valid numpy array ``v``."""
    out: list[tuple[str, Any, str]] = []
    if v.dtype.kind in "fiub":
        f = v.astype(np.float64)
        for label, fill in (
            ("NaN entry", math.nan),
            ("inf entry", math.inf),
            ("-inf entry", -math.inf),
        ):
            bad = f.copy()
            bad.flat[0] = fill
            out.append((label, bad, REJECT))
        out += [
            ("negated", -f, EITHER),
            ("times 1e300", f * 1e300, EITHER),
            ("plus 1e308", f + 1e308, EITHER),
            ("all 1e308", np.full_like(f, 1e308), EITHER),
            ("all 1e-300", np.full_like(f, 1e-300), EITHER),
            ("float32", v.astype(np.float32), EITHER),
            ("float16", v.astype(np.float16), EITHER),
            ("int64", v.astype(np.int64), EITHER),
            ("bool", v.astype(bool), EITHER),
            ("complex", v.astype(np.complex128), REJECT),
            ("numeric strings", v.astype(str), REJECT),
            ("object dtype", v.astype(object), REJECT),
            ("list", v.tolist(), EITHER),
            (
                "torch tensor",
                torch.from_numpy(np.ascontiguousarray(v)),
                ACCEPT if kind != "tensor" else EITHER,
            ),
            (
                "torch bfloat16",
                torch.from_numpy(np.ascontiguousarray(f)).to(torch.bfloat16),
                EITHER,
            ),
        ]
    out += [
        ("extra axis", v[None], EITHER),
        ("empty", v[:0], EITHER),
        ("first row", v[:1], EITHER),
        ("doubled", np.concatenate([v, v]), EITHER),
        ("one short", v[:-1], EITHER),
        ("scalar", v.ravel()[0], EITHER),
    ]
    if v.ndim >= 2:
        out += [("flattened", v.ravel(), EITHER), ("transposed", v.T.copy(), EITHER)]
    if v.ndim == 1:
        out.append(("column", v[:, None], EITHER))
    return out


def _tensor_values(t: torch.Tensor) -> list[tuple[str, Any, str]]:
    """Values derived from a valid torch tensor ``t`` (logits: a tensor is required)."""
    v = t.detach().cpu().numpy()
    out = [
        (
            label,
            torch.as_tensor(val) if isinstance(val, np.ndarray) and val.dtype.kind in "fc" else val,
            e,
        )
        for label, val, e in _array_values(v, "tensor")
    ]
    out = [(label, val, e) for label, val, e in out if label not in ("torch tensor", "torch bfloat16")]
    sign = torch.where(torch.arange(t.numel()).reshape(t.shape) % 2 == 0, 1.0, -1.0)
    out += [
        ("numpy", v.copy(), REJECT),
        ("float64", t.double(), EITHER),
        ("bfloat16", t.to(torch.bfloat16), EITHER),
        ("float16", t.to(torch.float16), EITHER),
        ("int64 tensor", t.long(), EITHER),
        ("bool tensor", t > 0, EITHER),
        ("complex tensor", t.to(torch.complex64), REJECT),
        ("requires_grad", t.detach().clone().requires_grad_(True), EITHER),
        ("extreme +-3e38 float32", (sign * 3e38).to(torch.float32), EITHER),
        ("extreme +-2e38 float32", (sign * 2e38).to(torch.float32), EITHER),
        (
            "extreme 3e38 ties float32",
            torch.full(t.shape, 3e38, dtype=torch.float32),
            EITHER,
        ),
        ("extreme +-1e308 float64", (sign * 1e308).to(torch.float64), EITHER),
        ("extreme +-1e300 float64", (sign * 1e300).to(torch.float64), EITHER),
        ("extreme +-6e4 float16", (sign * 6e4).to(torch.float16), EITHER),
        ("extreme +-3e38 bfloat16", (sign * 3e38).to(torch.bfloat16), EITHER),
    ]
    return out


def _scalar_values(v: Any, kind: str) -> list[tuple[str, Any, str]]:
    """Values derived from a valid int or real scalar ``v``."""
    out: list[tuple[str, Any, str]] = [
        ("str(valid)", str(v), REJECT),
        ("numpy 0-d array", np.array(v), EITHER),
        (
            "[valid]",
            [v],
            EITHER if kind == "int" else REJECT,
        ),  # an int may also take per-example arrays
        ("torch scalar", torch.tensor(v), EITHER),
        ("valid + 1e-9", v + 1e-9, REJECT if kind == "int" else EITHER),
        ("numpy float64", np.float64(v), EITHER),
        ("numpy float32", np.float32(v), EITHER),
        ("complex(valid)", complex(v), REJECT),
        ("numpy bool", np.bool_(True), REJECT),
    ]
    if kind == "int":
        out += [
            ("numpy int64", np.int64(v), EITHER),
            ("numpy uint64 max", np.uint64(2**64 - 1), EITHER),
        ]
    return out


def _flag_values(v: bool) -> list[tuple[str, Any, str]]:
    return [
        ("'no'", "no", REJECT),
        ("'yes'", "yes", REJECT),
        ("'False'", "False", REJECT),
        ("numpy bool", np.bool_(not v), EITHER),
        ("numpy 0-d bool array", np.array(v), EITHER),
        ("[True]", [True], REJECT),
        ("numpy [True]", np.array([True]), REJECT),
        ("torch bool", torch.tensor(True), EITHER),
        ("float 1.0", 1.0, REJECT),
    ]


def _choice_values(v: str) -> list[tuple[str, Any, str]]:
    return [
        ("1-element string array", np.array([v]), REJECT),
        ("[valid]", [v], REJECT),
        ("bytes", v.encode(), REJECT),
        ("upper case", v.upper(), EITHER),
        ("padded", f" {v} ", EITHER),
        ("''", "", EITHER),
        ("numpy str_", np.str_(v), EITHER),
        ("0-d string array", np.array(v), EITHER),
    ]


def values_for(kind: str, valid: Any, optional: bool) -> list[tuple[str, Any, str]]:
    """Every replacement for an argument of ``kind`` whose valid value is ``valid``: (label, value, expect)."""
    out = _generic(kind, optional)
    if kind == "tensor" and isinstance(valid, torch.Tensor):
        out += _tensor_values(valid)
    elif kind in ("array", "loose") and isinstance(valid, (np.ndarray, list)):
        out += _array_values(np.asarray(valid), kind)
    elif kind in ("array", "loose") and isinstance(valid, torch.Tensor):
        out += _array_values(valid.detach().cpu().numpy(), kind)
        out.append(("numpy", valid.detach().cpu().numpy(), ACCEPT))
    elif kind in ("int", "real") and isinstance(valid, (int, float)) and not isinstance(valid, bool):
        out += _scalar_values(valid, kind)
    elif kind == "flag" and isinstance(valid, bool):
        out += _flag_values(valid)
    elif kind == "choice" and isinstance(valid, str):
        out += _choice_values(valid)
    return out


# ------------------------------------------------------------------------------------------------------
# Valid instances (small, deterministic)

N, K, B = 8, 3, 5  # pool size, classes, loss batch


@cache
def _data() -> dict[str, Any]:
    gen = np.random.default_rng(20240611)
    tv = gen.dirichlet(np.full(K, 0.7), size=120)
    yv = tv.argmax(axis=1)
    flip = gen.random(120) < 0.25
    yv[flip] = gen.integers(0, K, size=int(flip.sum()))
    sample = H.margin_halfspace_data(40, 3, 0.1, 0.1, rng=1)
    t5 = gen.dirichlet(np.ones(K), size=B)
    return {
        "P": gen.dirichlet(np.ones(K), size=N),
        "TV": tv,
        "YV": yv.astype(np.int64),
        "GAINS": gen.uniform(0.05, 1.0, size=N),
        "EMB": gen.normal(size=(N, 4)),
        "CENTERS": gen.normal(size=(3, 4)),
        "CLUSTERS": np.array([0, 1, 2, 0, 1, 2, 0, 1], dtype=np.int64),
        "PROBS": np.array([0.5, 0.5, 1.0, 0.0, 0.25, 0.75, 0.6, 0.4]),
        "Z": torch.tensor(gen.normal(size=(B, K)) * 3.0, dtype=torch.float32),
        "T5": t5,
        "Y5": gen.integers(0, K, size=B).astype(np.int64),
        "ALPHA5": gen.uniform(0.6, 1.0, size=B),
        "MASK5": slam.topk_mask(t5, 2),
        "INDEX5": slam.topk_mask(t5, 2).nonzero()[1].reshape(B, 2).astype(np.int64),
        "TRANS": np.full((K, K), 0.1) + np.eye(K) * 0.7,
        "X": sample.X,
        "YN": sample.y_noisy,
        "W": np.array([1.0, 0.1, -0.1]),
        "INPUTS": gen.normal(size=(N, 2, 2)),
    }


def d(key: str) -> Any:
    """A fresh copy of a valid instance."""
    v = _data()[key]
    return v.clone() if isinstance(v, torch.Tensor) else np.array(v, copy=True)


@cache
def _fitted(name: str) -> M.Method:
    return M.METHODS[name]().fit(d("TV"), d("YV"))


def _batch(name: str) -> dict[str, torch.Tensor]:
    method = _fitted(name)
    return M.to_tensors(M.concat_batches(method.prepare_labeled([0, 1]), method.prepare(d("T5")[:3])))


# ------------------------------------------------------------------------------------------------------
# The entries


def _e(
    name: str,
    call: Callable[..., Any],
    valid: Callable[[], dict[str, Any]],
    kinds: dict[str, str],
    optional: tuple[str, ...] = (),
    unchecked: tuple[str, ...] = (),
    covers: Any = None,
) -> Entry:
    return Entry(
        name,
        call,
        valid,
        kinds,
        frozenset(optional),
        frozenset(unchecked),
        call if covers is None else covers,
    )


def _selection_entries() -> list[Entry]:
    pool = {"student_probs": "array", "budget": "int", "rng": "rng"}
    base = lambda: {"student_probs": d("P"), "budget": 3, "rng": 0}
    out = [
        _e(
            "rad.solve_query_game",
            rad.solve_query_game,
            lambda: {"gains": d("GAINS"), "budget": 3, "mistakes": 2},
            {"gains": "array", "budget": "int", "mistakes": "int"},
        ),
        _e(
            "rad.depround",
            rad.depround,
            lambda: {"probabilities": d("PROBS"), "rng": 0},
            {"probabilities": "array", "rng": "rng"},
        ),
        _e(
            "depround.depround_partial",
            depround_partial,
            lambda: {"probabilities": d("PROBS"), "rng": 0},
            {"probabilities": "array", "rng": "rng"},
        ),
        _e(
            "rad.informativeness",
            rad.informativeness,
            lambda: {"student_probs": d("P"), "kind": "margin"},
            {"student_probs": "array", "kind": "choice"},
        ),
        _e(
            "rad.estimate_mistakes",
            rad.estimate_mistakes,
            lambda: {
                "teacher_probs_val": d("TV"),
                "labels_val": d("YV"),
                "pool_size": 1000,
                "upper": 0.05,
            },
            {
                "teacher_probs_val": "array",
                "labels_val": "array",
                "pool_size": "int",
                "upper": "real",
            },
            optional=("upper",),
        ),
        _e(
            "rad.select",
            rad.select,
            lambda: {**base(), "mistakes": 2, "kind": "margin"},
            {**pool, "mistakes": "int", "kind": "choice"},
        ),
        _e(
            "selection.top_b",
            S.top_b,
            lambda: {"scores": d("GAINS"), "budget": 3, "rng": 0},
            {"scores": "array", "budget": "int", "rng": "rng"},
        ),
        _e(
            "selection.cluster_assignments",
            S.cluster_assignments,
            lambda: {
                "embeddings": d("EMB"),
                "n_clusters": 3,
                "rng": 0,
                "max_points": 5000,
            },
            {
                "embeddings": "array",
                "n_clusters": "int",
                "rng": "rng",
                "max_points": "int",
            },
        ),
        _e(
            "selection.mix_inputs",
            S.mix_inputs,
            lambda: {"inputs": d("INPUTS"), "selection": S.unixkd(d("P"), 3, rng=0)},
            {"inputs": "array", "selection": "other"},
        ),
    ]
    for name in ("random", "margin", "entropy", "least_confidence", "unixkd"):
        out.append(_e(f"selection.SELECTORS[{name!r}]", S.SELECTORS[name], base, pool))
    out += [
        _e(
            "selection.SELECTORS['rad']",
            S.SELECTORS["rad"],
            lambda: {**base(), "mistakes": 2, "kind": "entropy"},
            {**pool, "mistakes": "int", "kind": "choice"},
        ),
        _e(
            "selection.SELECTORS['coreset']",
            S.SELECTORS["coreset"],
            lambda: {
                **base(),
                "embeddings": d("EMB"),
                "center_embeddings": d("CENTERS"),
                "chunk": 2,
            },
            {
                **pool,
                "embeddings": "array",
                "center_embeddings": "array",
                "chunk": "int",
            },
            optional=("center_embeddings",),
        ),
        _e(
            "selection.SELECTORS['badge']",
            S.SELECTORS["badge"],
            lambda: {**base(), "embeddings": d("EMB")},
            {**pool, "embeddings": "array"},
        ),
        _e(
            "selection.SELECTORS['cluster_margin'] (embeddings)",
            S.SELECTORS["cluster_margin"],
            lambda: {**base(), "embeddings": d("EMB")},
            {**pool, "embeddings": "array"},
        ),
        _e(
            "selection.SELECTORS['cluster_margin'] (clusters)",
            S.SELECTORS["cluster_margin"],
            lambda: {**base(), "clusters": d("CLUSTERS")},
            {**pool, "clusters": "array"},
        ),
    ]
    return out


def _teacher_quality_entries() -> list[Entry]:
    val = lambda: {"teacher_probs_val": d("TV"), "labels_val": d("YV")}
    vk = {"teacher_probs_val": "array", "labels_val": "array"}
    model = TQ.fit_teacher_accuracy(d("TV"), d("YV"))
    return [
        _e(
            "teacher_quality.fit_teacher_accuracy",
            TQ.fit_teacher_accuracy,
            lambda: {**val(), "feature": "margin"},
            {**vk, "feature": "choice"},
        ),
        _e(
            "teacher_quality.TeacherAccuracy.predict",
            model.predict,
            lambda: {"teacher_probs": d("T5")},
            {"teacher_probs": "array"},
            covers=TQ.TeacherAccuracy,
        ),
        _e(
            "teacher_quality.TeacherAccuracy.predict_feature",
            model.predict_feature,
            lambda: {"values": d("GAINS")},
            {"values": "array"},
            covers=TQ.TeacherAccuracy,
        ),
        _e(
            "teacher_quality.choose_top_k",
            TQ.choose_top_k,
            lambda: {**val(), "target": 0.9},
            {**vk, "target": "real"},
        ),
        _e(
            "teacher_quality.estimate_candidate_mistakes",
            TQ.estimate_candidate_mistakes,
            lambda: {
                "gains_val": d("TV")[:, 0],
                "teacher_correct_val": (d("YV") == 0).astype(np.int64),
                "gains_pool": d("GAINS"),
                "budget": 2,
                "candidates": 4,
            },
            {
                "gains_val": "array",
                "teacher_correct_val": "array",
                "gains_pool": "array",
                "budget": "int",
                "candidates": "int",
            },
            optional=("candidates",),
        ),
        _e(
            "teacher_quality.binned_accuracy",
            TQ.binned_accuracy,
            lambda: {**val(), "feature": "confidence", "n_bins": 3, "delta": 0.05},
            {**vk, "feature": "choice", "n_bins": "int", "delta": "real"},
            optional=("n_bins",),
        ),
        _e(
            "teacher_quality.clopper_pearson",
            TQ.clopper_pearson,
            lambda: {
                "successes": np.array([3, 0, 5]),
                "trials": np.array([5, 5, 5]),
                "delta": 0.1,
                "side": "two-sided",
            },
            {
                "successes": "array",
                "trials": "array",
                "delta": "real",
                "side": "choice",
            },
        ),
        _e(
            "teacher_quality.estimate_transition",
            TQ.estimate_transition,
            lambda: {**val(), "smoothing": 1.0},
            {**vk, "smoothing": "real"},
        ),
        _e(
            "teacher_quality.split_validation",
            TQ.split_validation,
            lambda: {"labels": d("YV"), "validation": 0.25, "rng": 0, "stratify": True},
            {"labels": "array", "validation": "real", "rng": "rng", "stratify": "flag"},
        ),
        _e(
            "teacher_quality.teacher_feature",
            TQ.teacher_feature,
            lambda: {"teacher_probs": d("T5"), "feature": "entropy"},
            {"teacher_probs": "array", "feature": "choice"},
        ),
        _e(
            "teacher_quality.transition_from_cleanlab",
            TQ.transition_from_cleanlab,
            lambda: {"noise_matrix": d("TRANS").T.copy()},
            {"noise_matrix": "array"},
        ),
    ]


def _weighting_entries() -> list[Entry]:
    return [
        _e(
            "weighting.distillation_weights",
            W.distillation_weights,
            lambda: {
                "alpha": d("ALPHA5"),
                "num_classes": K,
                "scheme": "inverse",
                "return_info": True,
            },
            {
                "alpha": "array",
                "num_classes": "int",
                "scheme": "choice",
                "return_info": "flag",
            },
        ),
        _e(
            "weighting.debiased_targets",
            W.debiased_targets,
            lambda: {"teacher_probs": d("T5"), "alpha": d("ALPHA5")},
            {"teacher_probs": "array", "alpha": "array"},
        ),
        _e(
            "weighting.normalize_weights",
            W.normalize_weights,
            lambda: {"weights": d("ALPHA5")},
            {"weights": "array"},
        ),
        _e(
            "weighting.confidence_weights",
            W.confidence_weights,
            lambda: {"teacher_probs": d("T5"), "threshold": 0.5},
            {"teacher_probs": "array", "threshold": "real"},
        ),
        _e(
            "weighting.importance_targets",
            W.importance_targets,
            lambda: {
                "teacher_probs": d("T5"),
                "transition": d("TRANS"),
                "max_condition": 1e8,
            },
            {"teacher_probs": "array", "transition": "array", "max_condition": "real"},
        ),
    ]


def _slam_entries() -> list[Entry]:
    return [
        _e(
            "slam.mix",
            slam.mix,
            lambda: {
                "student_probs": d("T5"),
                "alpha": d("ALPHA5"),
                "topk_mask": d("MASK5"),
                "normalize": False,
            },
            {
                "student_probs": "array",
                "alpha": "array",
                "topk_mask": "array",
                "normalize": "flag",
            },
        ),
        _e(
            "slam.topk_mask",
            slam.topk_mask,
            lambda: {"teacher_probs": d("T5"), "k": 2},
            {"teacher_probs": "array", "k": "int"},
        ),
        _e(
            "slam.slam_targets",
            slam.slam_targets,
            lambda: {"teacher_probs": d("T5"), "k": 2, "kind": "topk"},
            {"teacher_probs": "array", "k": "int", "kind": "choice"},
        ),
        _e(
            "slam.clip_alpha",
            slam.clip_alpha,
            lambda: {"alpha": d("ALPHA5"), "lower": 0.7, "normalize": True, "k": 2},
            {"alpha": "array", "lower": "real", "normalize": "flag", "k": "int"},
            optional=("k",),
        ),
        _e(
            "slam.check_mask",
            slam.check_mask,
            lambda: {"mask": d("MASK5"), "shape": (B, K), "name": "mask"},
            {"mask": "array", "shape": "other"},
        ),
    ]


def _loss_entries() -> list[Entry]:
    z = {"logits": "tensor"}
    zs = {"student_logits": "tensor"}
    v = {"validate": "flag"}
    alpha = lambda: {
        "student_logits": d("Z"),
        "teacher_probs": d("T5"),
        "alpha": d("ALPHA5"),
    }
    slam_k = {
        **zs,
        "teacher_probs": "loose",
        "alpha": "loose",
        "normalize": "flag",
        **v,
    }
    return [
        _e(
            "losses.soft_cross_entropy",
            L.soft_cross_entropy,
            lambda: {"logits": d("Z"), "target_probs": d("T5"), "validate": True},
            {**z, "target_probs": "loose", **v},
        ),
        _e(
            "losses.soft_cross_entropy (labels)",
            L.soft_cross_entropy,
            lambda: {"logits": d("Z"), "target_probs": d("Y5")},
            {**z, "target_probs": "loose"},
        ),
        _e(
            "losses.kd_loss",
            L.kd_loss,
            lambda: {
                "student_logits": d("Z"),
                "teacher_probs": d("T5"),
                "temperature": 2.0,
                "temperature_squared": True,
                "validate": True,
            },
            {
                **zs,
                "teacher_probs": "loose",
                "temperature": "real",
                "temperature_squared": "flag",
                **v,
            },
        ),
        _e(
            "losses.slam_loss (topk_mask)",
            L.slam_loss,
            lambda: {**alpha(), "topk_mask": d("MASK5"), "normalize": False},
            {**slam_k, "topk_mask": "loose"},
        ),
        _e(
            "losses.slam_loss (k)",
            L.slam_loss,
            lambda: {**alpha(), "k": 2, "normalize": True, "validate": True},
            {**slam_k, "k": "int"},
        ),
        _e(
            "losses.slam_loss (topk_index)",
            L.slam_loss,
            lambda: {**alpha(), "topk_index": d("INDEX5")},
            {**zs, "topk_index": "loose"},
        ),
        _e(
            "losses.forward_corrected_loss",
            L.forward_corrected_loss,
            lambda: {
                "logits": d("Z"),
                "noisy_targets": d("T5"),
                "transition": d("TRANS"),
                "validate": True,
            },
            {**z, "noisy_targets": "loose", "transition": "loose", **v},
        ),
        _e(
            "losses.backward_corrected_loss",
            L.backward_corrected_loss,
            lambda: {
                "logits": d("Z"),
                "noisy_targets": d("Y5"),
                "transition": d("TRANS"),
                "validate": True,
            },
            {**z, "noisy_targets": "loose", "transition": "loose", **v},
        ),
        _e(
            "losses.taylor_cross_entropy",
            L.taylor_cross_entropy,
            lambda: {
                "logits": d("Z"),
                "targets": d("T5"),
                "order": 3,
                "validate": True,
            },
            {**z, "targets": "loose", "order": "int", **v},
        ),
        _e(
            "losses.negative_learning_loss",
            L.negative_learning_loss,
            lambda: {
                "logits": d("Z"),
                "negative_mask": 1.0 - d("MASK5"),
                "validate": True,
            },
            {**z, "negative_mask": "loose", **v},
        ),
        # the per-example losses are reduced as they are (an infinite loss of an impossible target stays
        # infinite): reduce_loss does not check their values
        _e(
            "losses.reduce_loss",
            L.reduce_loss,
            lambda: {
                "loss": torch.tensor([0.5, 1.0, 2.0]),
                "weight": np.array([1.0, 0.0, 2.0]),
                "reduction": "sum",
            },
            {"loss": "tensor", "weight": "loose", "reduction": "choice"},
            optional=("weight",),
            unchecked=("loss",),
        ),
        _e(
            "losses.slam_binary_log_mix",
            L.slam_binary_log_mix,
            lambda: {"logit": d("Z")[:, 0].contiguous(), "alpha": d("ALPHA5")},
            {"logit": "tensor", "alpha": "loose"},
        ),
        _e(
            "losses.teacher_topk_index",
            L.teacher_topk_index,
            lambda: {"teacher_probs": torch.tensor(d("T5")), "k": 2},
            {"teacher_probs": "tensor", "k": "int"},
        ),
        _e(
            "losses.teacher_topk_mask",
            L.teacher_topk_mask,
            lambda: {"teacher_probs": torch.tensor(d("T5")), "k": 2},
            {"teacher_probs": "tensor", "k": "int"},
        ),
        _e(
            "losses.check_logits",
            L.check_logits,
            lambda: {"logits": d("Z"), "name": "logits", "validate": True},
            {"logits": "tensor", "validate": "flag"},
        ),
        _e(
            "losses.check_temperature",
            L.check_temperature,
            lambda: {"temperature": 2.0},
            {"temperature": "real"},
        ),
        _e(
            "losses.check_taylor_order",
            L.check_taylor_order,
            lambda: {"order": 3},
            {"order": "int"},
        ),
    ]


def _module_entries() -> list[Entry]:
    """The nn.Module wrappers: constructor options, then the forward call."""
    red = {"reduction": "choice"}
    fwd = lambda **kw: {"logits": d("Z"), "weight": d("ALPHA5"), **kw}
    fwd_kinds = {"logits": "tensor", "weight": "loose"}
    specs = [
        ("SoftCrossEntropy", {}, {}, {"target_probs": "T5"}, "logits"),
        (
            "KDLoss",
            {"temperature": 2.0, "temperature_squared": True},
            {"temperature": "real", "temperature_squared": "flag"},
            {"teacher_probs": "T5"},
            "student_logits",
        ),
        (
            "SLaMLoss",
            {"k": 2, "normalize": False},
            {"k": "int", "normalize": "flag"},
            {"teacher_probs": "T5", "alpha": "ALPHA5"},
            "student_logits",
        ),
        (
            "ForwardCorrectedLoss",
            {"transition": "TRANS"},
            {"transition": "array"},
            {"noisy_targets": "T5"},
            "logits",
        ),
        (
            "BackwardCorrectedLoss",
            {"transition": "TRANS"},
            {"transition": "array"},
            {"noisy_targets": "Y5"},
            "logits",
        ),
        (
            "TaylorCrossEntropy",
            {"order": 2},
            {"order": "int"},
            {"targets": "T5"},
            "logits",
        ),
    ]
    out = []
    for cls_name, options, option_kinds, inputs, logits_name in specs:
        cls = getattr(L, cls_name)

        def opts(options: dict[str, Any] = options) -> dict[str, Any]:
            return {k: (d(v) if isinstance(v, str) and v.isupper() else v) for k, v in options.items()} | {
                "reduction": "mean"
            }

        def make_inputs(inputs: dict[str, str] = inputs, logits_name: str = logits_name) -> dict[str, Any]:
            kw = fwd(**{k: d(v) for k, v in inputs.items()})
            kw[logits_name] = kw.pop("logits")
            return kw

        def forward(cls: type = cls, opts: Callable[[], dict[str, Any]] = opts, **kw: Any) -> Any:
            return cls(**opts())(**kw)

        kinds = {k: ("tensor" if k == "logits" else v) for k, v in fwd_kinds.items()}
        kinds[logits_name] = kinds.pop("logits")
        kinds.update({k: "loose" for k in inputs})
        out += [
            _e(
                f"losses.{cls_name}()",
                cls,
                opts,
                {**option_kinds, **red},
                optional=("k",),
            ),
            _e(
                f"losses.{cls_name}.forward",
                forward,
                make_inputs,
                kinds,
                optional=("weight",),
                covers=cls,
            ),
        ]
    return out


def _theory_entries() -> list[Entry]:
    xy = lambda: {"X": d("X"), "y_noisy": d("YN")}
    xyk = {"X": "array", "y_noisy": "array"}
    return [
        _e(
            "theory.query_game.solve_exact",
            QG.solve_exact,
            lambda: {
                "gains": d("GAINS")[:5],
                "budget": 2,
                "mistakes": 1,
                "solver": None,
            },
            {"gains": "array", "budget": "int", "mistakes": "int", "solver": "choice"},
            optional=("solver",),
        ),
        _e(
            "theory.query_game.worst_case_value",
            QG.worst_case_value,
            lambda: {"probabilities": d("PROBS"), "gains": d("GAINS"), "mistakes": 2},
            {"probabilities": "array", "gains": "array", "mistakes": "int"},
        ),
        _e(
            "theory.query_game.top_k_sum",
            QG.top_k_sum,
            lambda: {"x": d("GAINS"), "k": 3},
            {"x": "array", "k": "int"},
        ),
        _e(
            "theory.query_game.closed_form",
            QG.closed_form,
            lambda: {"gains": d("GAINS"), "budget": 2, "mistakes": 1},
            {"gains": "array", "budget": "int", "mistakes": "int"},
        ),
        _e(
            "theory.halfspace.margin_halfspace_data",
            H.margin_halfspace_data,
            lambda: {
                "n": 20,
                "dim": 3,
                "margin": 0.1,
                "noise_rate": 0.1,
                "rng": 0,
                "kind": "sphere",
                "noise": "rcn",
            },
            {
                "n": "int",
                "dim": "int",
                "margin": "real",
                "noise_rate": "real",
                "rng": "rng",
                "kind": "choice",
                "noise": "choice",
            },
        ),
        _e(
            "theory.halfspace.margin_halfspace_data (gaussian)",
            H.margin_halfspace_data,
            lambda: {
                "n": 20,
                "dim": 3,
                "margin": 0.1,
                "noise_rate": 0.1,
                "rng": 0,
                "kind": "gaussian",
            },
            {"n": "int", "dim": "int", "margin": "real"},
        ),
        _e(
            "theory.halfspace.learn_halfspace_rcn",
            H.learn_halfspace_rcn,
            lambda: {
                **xy(),
                "noise_rate": 0.1,
                "margin": 0.1,
                "radius": 10.0,
                "holdout": 0.25,
                "restarts": 2,
                "rng": 0,
                "return_info": True,
            },
            {
                **xyk,
                "noise_rate": "real",
                "margin": "real",
                "radius": "real",
                "holdout": "real",
                "restarts": "int",
                "rng": "rng",
                "return_info": "flag",
            },
            optional=("noise_rate", "radius"),
        ),
        _e(
            "theory.halfspace.clean_error",
            H.clean_error,
            lambda: {"w": d("W"), "X": d("X"), "y": d("YN")},
            {"w": "array", "X": "array", "y": "array"},
        ),
        _e(
            "theory.halfspace.long_servedio_error",
            H.long_servedio_error,
            lambda: {"w": d("W"), "margin": 0.1},
            {"w": "array", "margin": "real"},
        ),
        _e(
            "theory.halfspace.forward_adjusted_sgd",
            H.forward_adjusted_sgd,
            lambda: {
                "X": d("X")[None],
                "y_noisy": d("YN")[None],
                "noise_rate": 0.1,
                "radius": 10.0,
                "track": (5, 10),
            },
            {
                "X": "array",
                "y_noisy": "array",
                "noise_rate": "real",
                "radius": "real",
                "track": "array",
            },
        ),
        _e(
            "theory.halfspace.slam_objective",
            H.slam_objective,
            lambda: {"w": d("W"), **xy(), "noise_rate": 0.1},
            {"w": "array", **xyk, "noise_rate": "real"},
        ),
        _e(
            "theory.halfspace.learn_logistic",
            H.learn_logistic,
            lambda: {**xy(), "max_iter": 50},
            {**xyk, "max_iter": "int"},
        ),
        _e("theory.halfspace.learn_averaging", H.learn_averaging, xy, xyk),
        _e(
            "theory.halfspace.learn_unhinged",
            H.learn_unhinged,
            lambda: {**xy(), "radius": 2.0},
            {**xyk, "radius": "real"},
        ),
        _e(
            "theory.halfspace.backward_corrected_grad",
            H.backward_corrected_grad,
            lambda: {
                "t": d("GAINS"),
                "y": np.where(d("GAINS") > 0.5, 1.0, -1.0),
                "noise_rate": 0.2,
            },
            {"t": "array", "y": "array", "noise_rate": "real"},
        ),
        _e(
            "theory.halfspace.learn_backward_corrected",
            H.learn_backward_corrected,
            lambda: {
                **xy(),
                "noise_rate": 0.1,
                "margin": 0.1,
                "radius": None,
                "rng": 0,
            },
            {
                **xyk,
                "noise_rate": "real",
                "margin": "real",
                "radius": "real",
                "rng": "rng",
            },
            optional=("radius",),
        ),
        _e(
            "theory.halfspace.learn_sq_perceptron",
            H.learn_sq_perceptron,
            lambda: {**xy(), "noise_rate": 0.1, "iterations": 20},
            {**xyk, "noise_rate": "real", "iterations": "int"},
        ),
    ]


_OPTION_KIND = {str: "choice", bool: "flag", float: "real", int: "int"}


def _method_entries() -> list[Entry]:
    out = []
    for name, cls in M.METHODS.items():
        params = inspect.signature(cls.__init__).parameters.values()
        defaults = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
        kinds = {k: _OPTION_KIND[type(v)] for k, v in defaults.items()}
        fresh = M.METHODS[name]
        # Method.loss computes with validate=False (the batch comes from prepare, and the logits are not
        # scanned on every training step): non-finite or extreme logits give non-finite losses.
        out += [
            _e(
                f"methods.{cls.__name__}()",
                cls,
                lambda defaults=defaults: dict(defaults),
                kinds,
            ),
            _e(
                f"methods.{cls.__name__}.fit",
                lambda fresh=fresh, **kw: fresh().fit(**kw),
                lambda: {"teacher_probs_val": d("TV"), "labels_val": d("YV")},
                {"teacher_probs_val": "array", "labels_val": "array"},
                covers=cls,
            ),
            _e(
                f"methods.{cls.__name__}.prepare",
                lambda name=name, **kw: _fitted(name).prepare(**kw),
                lambda: {"teacher_probs": d("T5")},
                {"teacher_probs": "array"},
                covers=cls,
            ),
            _e(
                f"methods.{cls.__name__}.prepare_labeled",
                lambda name=name, **kw: _fitted(name).prepare_labeled(**kw),
                lambda: {"labels": d("Y5"), "num_classes": K},
                {"labels": "array", "num_classes": "int"},
                optional=("num_classes",),
                covers=cls,
            ),
            _e(
                f"methods.{cls.__name__}.loss",
                lambda name=name, **kw: _fitted(name).loss(**kw),
                lambda name=name: {"student_logits": d("Z"), "batch": _batch(name)},
                {"student_logits": "tensor", "batch": "mapping"},
                unchecked=("student_logits",),
                covers=cls,
            ),
        ]
    out += [
        _e(
            "methods.to_tensors",
            M.to_tensors,
            lambda: {"batch": _fitted("vanilla").prepare(d("T5")), "device": None},
            {"batch": "mapping", "device": "other"},
            optional=("device",),
        ),
        _e(
            "methods.concat_batches",
            lambda batch: M.concat_batches(batch, _fitted("vanilla").prepare(d("T5"))),
            lambda: {"batch": _fitted("vanilla").prepare_labeled(d("Y5"))},
            {"batch": "mapping"},
            covers=M.concat_batches,
        ),
        _e("methods.register", M.register, lambda: {"cls": M.Vanilla}, {"cls": "other"}),
        _e(
            "methods.check_real",
            M.check_real,
            lambda: {"owner": "X", "name": "value", "value": 0.5, "low": 0.0},
            {"value": "real"},
        ),
    ]
    return out


def entries() -> list[Entry]:
    """Every fuzzed entry, in a fixed order."""
    return [
        *_selection_entries(),
        *_teacher_quality_entries(),
        *_weighting_entries(),
        *_slam_entries(),
        *_loss_entries(),
        *_module_entries(),
        *_theory_entries(),
        *_method_entries(),
    ]


def cases(
    selected: list[Entry] | None = None,
) -> Iterator[tuple[Entry, str, str, Any, str]]:
    """(entry, argument, label, value, expectation) for every call, in a fixed order."""
    for entry in entries() if selected is None else selected:
        valid = entry.valid()
        for arg, kind in entry.kinds.items():
            for label, value, expect in values_for(kind, valid.get(arg), arg in entry.optional):
                yield entry, arg, label, value, expect


def run_all(selected: list[Entry] | None = None) -> Report:
    """Run every case and return the report."""
    return Report(tuple(run_case(*case) for case in cases(selected)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="list every finding")
    parser.add_argument("--entry", default=None, help="only entries whose name contains this")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the calls are tiny: threads only add overhead
    selected = None if args.entry is None else [e for e in entries() if args.entry in e.name]
    start = time.perf_counter()
    report = run_all(selected)
    print(report.table())
    print(f"({time.perf_counter() - start:.1f} s)")
    if report.findings and args.verbose:
        print(report.describe_findings(limit=10**6))
    return 1 if report.findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
