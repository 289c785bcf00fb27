"""Bad input fails cleanly at every public entry of algorithms/ and theory/, and extreme but valid input
gives finite results.

- The deterministic fuzz driver (``tests/fuzz_cases.py``; ``python -m tests.fuzz_cases`` prints its table)
  replaces each argument of each entry by bad values: every call must raise a ``ValueError`` or
  ``TypeError`` naming the argument, or return finite outputs, within its time limit.
- Property tests (hypothesis) feed every loss logits anywhere in float32 (up to +-3.4e38) and float64 (up
  to +-1.8e308): the loss and its gradient are finite (for float32, equal to the float64 value), or a
  ``ValueError`` names the logits, only where the loss cannot be computed in the output dtype.
- Regression tests pin the numerics behind the fuzz: thin margin sets, tiny temperatures, long Taylor
  series, extreme logits and embeddings.

All randomness comes from hypothesis-drawn or fixed seeds.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import torch
from fuzz_cases import entries, names, run_all
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats

from robustdistill.algorithms import losses as L
from robustdistill.algorithms import selection as S
from robustdistill.theory import halfspace as H

F32_MAX = float(torch.finfo(torch.float32).max)
F64_MAX = float(torch.finfo(torch.float64).max)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")

# ------------------------------------------------------------------------------------------------------
# The fuzz driver

#: The modules whose public functions and classes (their ``__all__``) the driver must exercise.
FUZZED_MODULES = (
    "robustdistill.algorithms.rad",
    "robustdistill.algorithms.depround",
    "robustdistill.algorithms.selection",
    "robustdistill.algorithms.teacher_quality",
    "robustdistill.algorithms.weighting",
    "robustdistill.algorithms.losses",
    "robustdistill.algorithms.slam",
    "robustdistill.algorithms.methods",
    "robustdistill.theory.query_game",
    "robustdistill.theory.halfspace",
)

#: Public classes that are results, warnings or bases, not entries taking user input.
NOT_ENTRIES = {
    "BinnedAccuracy",
    "ClosedForm",
    "HalfspaceData",
    "Method",  # the base class; every registered method is fuzzed
    "NearUniformWarning",
    "NotFittedError",
    "QueryGameSolution",
    "Selection",
}


def test_bad_input_fails_cleanly_at_every_entry():
    """Every fuzzed call raises a ValueError or TypeError naming the replaced argument, or returns finite
    outputs, within the time limit; the message lists every other outcome."""
    report = run_all()
    assert report.calls > 15000
    assert not report.findings, f"{len(report.findings)} findings:\n{report.describe_findings()}"


def test_the_fuzz_driver_covers_every_public_entry():
    covered = {id(e.covers) for e in entries()}
    missing = []
    for module_name in FUZZED_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and name not in NOT_ENTRIES and id(obj) not in covered:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"public entries the fuzz driver does not call: {missing}"


# ------------------------------------------------------------------------------------------------------
# Extreme but valid logits into every loss

K = 3
TRANSITION = np.full((K, K), 0.1) + np.eye(K) * 0.7


class LossCase(NamedTuple):
    """A loss of the logits ``z`` alone (its other inputs fixed).

    Attributes:
        argname: the logits' argument name.
        scale: what multiplies the logits' range inside the loss (1 / temperature for KD).
        growth: a bound on |loss| / (logits' range) (the temperature for KD, ||T^{-1}||_inf for backward
            correction, 1 for the cross-entropies).
        fn: z -> (n,) losses.
    """

    argname: str
    scale: float
    growth: float
    fn: Callable[[torch.Tensor], torch.Tensor]


#: ||T^{-1}||_inf, the most backward correction multiplies a log-probability by.
INVERSE_NORM = float(np.abs(np.linalg.inv(TRANSITION)).sum(axis=1).max())


def _losses(t: np.ndarray, y: np.ndarray) -> dict[str, LossCase]:
    """Every loss on the targets ``t`` (n, K) (and their labels ``y``), by name."""
    mask = np.zeros((t.shape[0], K))
    mask[np.arange(t.shape[0]), y] = 1.0
    index = np.sort(np.argsort(-t, axis=1, kind="stable")[:, :2], axis=1)
    return {
        "soft_cross_entropy": LossCase("logits", 1.0, 1.0, lambda z: L.soft_cross_entropy(z, t)),
        "soft_cross_entropy[labels]": LossCase("logits", 1.0, 1.0, lambda z: L.soft_cross_entropy(z, y)),
        "kd_loss[T=0.5]": LossCase("student_logits", 2.0, 0.5, lambda z: L.kd_loss(z, t, 0.5)),
        "kd_loss[T=4]": LossCase("student_logits", 0.25, 4.0, lambda z: L.kd_loss(z, t, 4.0)),
        "slam_loss[k=2]": LossCase("student_logits", 1.0, 1.0, lambda z: L.slam_loss(z, t, 0.8, k=2)),
        "slam_loss[index, normalized]": LossCase(
            "student_logits",
            1.0,
            1.0,
            lambda z: L.slam_loss(z, t, 0.9, topk_index=index, normalize=True),
        ),
        "forward_corrected_loss": LossCase("logits", 1.0, 1.0, lambda z: L.forward_corrected_loss(z, t, TRANSITION)),
        "backward_corrected_loss": LossCase(
            "logits",
            1.0,
            INVERSE_NORM,
            lambda z: L.backward_corrected_loss(z, y, TRANSITION),
        ),
        "taylor_cross_entropy": LossCase("logits", 1.0, 1.0, lambda z: L.taylor_cross_entropy(z, t, 4)),
        "negative_learning_loss": LossCase("logits", 1.0, 1.0, lambda z: L.negative_learning_loss(z, 1.0 - mask)),
    }


LOSS_NAMES = list(_losses(np.full((1, K), 1 / K), np.zeros(1, dtype=np.int64)))

#: Logit entries: anywhere in float32's range, its extremes, and ordinary values.
F32_LOGIT = st.one_of(
    st.floats(width=32, allow_nan=False, allow_infinity=False),  # all of float32, up to +-3.4e38
    st.sampled_from([3e38, -3e38, 2e38, -2e38, 1e19, -1e19, 0.0, 1.0, -1.0]),
)
F64_LOGIT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),  # all of float64, up to +-1.8e308
    st.sampled_from([1e308, -1e308, 1e300, -1e300, 1e154, -1e154, 0.0, 1.0]),
)


@st.composite
def extreme_cases(draw, element):
    """(logits (n, K) as a float64 numpy array, targets (n, K) on the simplex with exact zeros, labels)."""
    n = draw(st.integers(1, 4))
    z = np.array(draw(st.lists(element, min_size=n * K, max_size=n * K)), dtype=np.float64).reshape(n, K)
    gen = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t = gen.dirichlet(np.full(K, 0.5), size=n)
    onehot = gen.random(n) < 0.5  # exact zeros: 0 * (-inf) is the classic NaN
    t[onehot] = np.eye(K)[gen.integers(0, K, size=int(onehot.sum()))]
    return z, t, t.argmax(axis=1)


def _row_range(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # inf where the range exceeds float64
        return np.max(z, axis=1) - np.min(z, axis=1)


@pytest.mark.parametrize("loss_name", LOSS_NAMES)
@given(case=extreme_cases(F32_LOGIT))
def test_losses_of_extreme_float32_logits_are_finite_or_refused_by_name(loss_name, case):
    """float32 logits up to +-3e38: the loss equals the float64 reference (within a few ulps of the logits'
    range), with finite gradients; it is a ValueError naming the logits only where a loss exceeds float32."""
    z64, t, y = case
    argname, _, _, loss = _losses(t, y)[loss_name]
    ref = loss(torch.tensor(z64.astype(np.float32), dtype=torch.float64))  # exact float32 values, in float64
    z = torch.tensor(z64, dtype=torch.float32, requires_grad=True)
    try:
        out = loss(z)
    except ValueError as exc:
        assert names(str(exc), argname), str(exc)
        assert bool((ref.abs() > F32_MAX).any()), f"refused although every loss fits float32: {ref}"
        return
    assert out.dtype == torch.float32
    assert bool(torch.isfinite(out).all()), out
    scale = torch.tensor(_row_range(z64.astype(np.float32).astype(np.float64)) + 1.0)
    assert bool(((out.double() - ref).abs() <= 1e-5 * (ref.abs() + scale)).all()), (
        out,
        ref,
    )
    out.sum().backward()
    assert bool(torch.isfinite(z.grad).all()), z.grad


@pytest.mark.parametrize("loss_name", LOSS_NAMES)
@given(case=extreme_cases(F64_LOGIT))
def test_losses_of_extreme_float64_logits_are_finite_or_refused_by_name(loss_name, case):
    """float64 logits up to +-1e308: a finite loss with finite gradients; a ValueError naming the logits
    only for rows spanning more than MAX_FLOAT64_LOGIT_RANGE (times 1 / temperature), or whose loss (up to
    ``growth`` times the range) may exceed float64."""
    z64, t, y = case
    case_ = _losses(t, y)[loss_name]
    z = torch.tensor(z64, dtype=torch.float64, requires_grad=True)
    widest = float(np.max(_row_range(z64)))  # inf where the range overflows
    try:
        out = case_.fn(z)
    except ValueError as exc:
        assert names(str(exc), case_.argname), str(exc)
        too_wide = widest * case_.scale > L.MAX_FLOAT64_LOGIT_RANGE
        may_overflow = widest * case_.growth > F64_MAX / 2
        assert too_wide or may_overflow, f"refused a row range of {widest:.3g}: {exc}"
        return
    assert bool(torch.isfinite(out).all()), out
    out.sum().backward()
    assert bool(torch.isfinite(z.grad).all()), z.grad


def test_soft_cross_entropy_at_the_float32_limit():
    """z = (3e38, -3e38): the loss is 0 on the top class and 3e38 for an even target (both fit float32);
    6e38 on the other class does not fit, and the logits are named."""
    z = torch.tensor([[3e38, -3e38], [3e38, -3e38], [2e38, -2e38]], dtype=torch.float32)
    out = L.soft_cross_entropy(z, [[1.0, 0.0], [0.5, 0.5], [0.5, 0.5]])
    torch.testing.assert_close(out, torch.tensor([0.0, 3e38, 2e38]), rtol=1e-6, atol=0.0)
    with pytest.raises(ValueError, match="logits"):
        L.soft_cross_entropy(z[:1], [[0.0, 1.0]])
    with pytest.raises(ValueError, match="logits"):
        L.negative_learning_loss(z[:1], [[1.0, 0.0]])  # -log(1 - f_top) = 6e38
    z64 = torch.tensor([[1e300, -1e300], [1e308, -1e308]], dtype=torch.float64)
    torch.testing.assert_close(
        L.soft_cross_entropy(z64[:1], [[0.5, 0.5]]),
        torch.tensor([1e300], dtype=torch.float64),
    )
    with pytest.raises(ValueError, match="logits"):
        L.soft_cross_entropy(z64, [[1.0, 0.0], [1.0, 0.0]])


def test_wide_logits_keep_gradients_under_bfloat16_autocast():
    """bfloat16 logits of float32's range under CPU autocast: a float32 loss, finite with finite gradients."""
    z = torch.tensor([[3e38, -3e38, 0.0], [1.0, 2.0, 3.0]], dtype=torch.bfloat16, requires_grad=True)
    t = np.array([[0.5, 0.0, 0.5], [0.2, 0.3, 0.5]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = L.kd_loss(z, t, 2.0) + L.slam_loss(z, t, 0.8, k=2) + L.forward_corrected_loss(z, t, TRANSITION)
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())
    out.sum().backward()
    assert bool(torch.isfinite(z.grad.float()).all())


@CUDA
@pytest.mark.parametrize("loss_name", LOSS_NAMES)
def test_wide_logits_on_cuda_match_the_cpu(loss_name):
    """The same code path on CUDA: float32 logits of float32's range give the CPU's values."""
    z64 = np.array([[3e38, -3e38, 1.0], [-2e38, 5.0, 2e38], [1.0, 2.0, 3.0]])
    gen = np.random.default_rng(0)
    t = gen.dirichlet(np.ones(K), size=3)
    t[0] = [1.0, 0.0, 0.0]
    loss = _losses(t, t.argmax(axis=1))[loss_name].fn
    z = torch.tensor(z64, dtype=torch.float32)
    try:
        want = loss(z)
    except ValueError:
        with pytest.raises(ValueError):
            loss(z.cuda())
        return
    zc = z.cuda().requires_grad_(True)
    got = loss(zc)
    torch.testing.assert_close(got.cpu(), want, rtol=1e-5, atol=1e-5)
    got.sum().backward()
    assert bool(torch.isfinite(zc.grad).all())


# ------------------------------------------------------------------------------------------------------
# The numerics behind the fuzz


def test_kd_temperature_range():
    z = torch.tensor([[2.0, 0.0, -1.0]])
    t = [[0.5, 0.5, 0.0]]
    low, high = L.TEMPERATURE_RANGE
    for tau in (low, high):
        out = L.kd_loss(z, t, tau)
        assert bool(torch.isfinite(out).all())
    for tau in (1e-40, low / 2, high * 2, 10**400):
        with pytest.raises(ValueError, match="temperature"):
            L.kd_loss(z, t, tau)


def test_kd_loss_at_a_small_temperature_equals_its_float64_value():
    """tau = 1e-4 with logits spanning 1e36: the tempered logits (1e40) exceed float32, and the loss is
    computed in float64 (or refused by name when it exceeds float32)."""
    z = torch.tensor([[1e36, 0.0, -1e36]], dtype=torch.float32)
    t = [[0.6, 0.4, 0.0]]
    want = L.kd_loss(z.double(), t, 1e-4)
    assert bool(torch.isfinite(want).all())
    torch.testing.assert_close(L.kd_loss(z, t, 1e-4).double(), want, rtol=1e-6, atol=0.0)


def test_taylor_order_is_bounded_and_long_series_approach_cross_entropy():
    z = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="order"):
        L.taylor_cross_entropy(z, [0, 1], 10**8)
    assert time.perf_counter() - start < 1.0
    longest = L.taylor_cross_entropy(z, [0, 1], L.MAX_TAYLOR_ORDER)
    torch.testing.assert_close(longest, L.soft_cross_entropy(z, [0, 1]), rtol=1e-12, atol=1e-12)


def test_sphere_samples_a_thin_margin_set_directly():
    """20000 points in dim 100 with margin 0.5 (about 1e-7 of the sphere): quick, exact margin, unit norm,
    and x_1^2 follows the Beta(1/2, 99/2) law conditioned on x_1^2 >= 1/4 (Kolmogorov-Smirnov against its
    CDF; a correct sampler fails with probability 1e-3, fixed seed)."""
    start = time.perf_counter()
    data = H.margin_halfspace_data(20000, 100, 0.5, 0.1, rng=0)
    assert time.perf_counter() - start < 5.0
    assert np.all(np.abs(data.X[:, 0]) >= 0.5)
    np.testing.assert_allclose(np.linalg.norm(data.X, axis=1), 1.0, atol=1e-12)
    a, b = 0.5, 99 / 2
    tail = special.betaincc(a, b, 0.25)
    cdf = lambda s: 1.0 - special.betaincc(a, b, s) / tail
    assert stats.kstest(data.X[:, 0] ** 2, cdf).pvalue > 1e-3
    assert abs(np.mean(data.X[:, 0] > 0) - 0.5) < 0.02  # both signs (4.5 standard errors)


def test_gaussian_kind_refuses_an_unreachable_margin_quickly():
    start = time.perf_counter()
    with pytest.raises(ValueError, match="margin"):
        H.margin_halfspace_data(20000, 100, 0.5, 0.1, rng=0, kind="gaussian")
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize("exponent", [-700, 700])
def test_embedding_selectors_are_invariant_to_extreme_scales(exponent):
    """Embeddings scaled by 2^+-700 (squared distances would overflow or vanish) select as at scale 1."""
    gen = np.random.default_rng(3)
    probs = gen.dirichlet(np.ones(4), size=30)
    h = gen.normal(size=(30, 5))
    centers = gen.normal(size=(4, 5))
    big = np.ldexp(h, exponent)
    for name, extra in (("badge", {}), ("coreset", {"center_embeddings": centers})):
        scaled = {k: np.ldexp(v, exponent) for k, v in extra.items()}
        want = S.SELECTORS[name](probs, 6, rng=1, embeddings=h, **extra).indices
        got = S.SELECTORS[name](probs, 6, rng=1, embeddings=big, **scaled).indices
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(S.cluster_assignments(big, 3, rng=2), S.cluster_assignments(h, 3, rng=2))


def test_integers_too_large_to_print_are_described_not_printed():
    """Python refuses to print an int of more than 4300 digits; the messages name it instead of failing."""
    from robustdistill.algorithms.validation import check_int, check_real, describe

    assert describe(10**5000) == "a int too large to print"
    with pytest.raises(ValueError, match=r"^n must be an integer >= 0 \(at most 2\*\*53\), got a int too large"):
        check_int(10**5000, "n")
    with pytest.raises(ValueError, match="x must be a finite real number, got a int too large to print"):
        check_real(10**5000, "x")
