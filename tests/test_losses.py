"""Per-example torch losses (robustdistill.algorithms.losses): reductions between losses, parity with the
numpy reference and with the log-space recipe (``docs/theory/slam.md#slam-log-space``), float32 parity at large logits,
gradchecks, finite gradients at extreme logits, forward/backward-correction identities (``docs/theory/weighted.md#weighted-baselines``,
Lemma 5), Taylor-CE, input validation, the nn.Module wrappers, autocast and CUDA.

All randomness comes from hypothesis-drawn or fixed seeds (numpy Generators, torch Generators).
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from robustdistill.algorithms import losses as L
from robustdistill.algorithms import slam

F64 = torch.float64
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")

# ----------------------------------------------------------------------------------------------------
# Instances and references


def softmax_np(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def make_case(seed: int, n: int, k: int, scale: float = 3.0, concentration: float = 1.0):
    """float64 logits (torch) and teacher probabilities (numpy) from one seed."""
    rng = np.random.default_rng(seed)
    z = torch.tensor(rng.normal(size=(n, k)) * scale, dtype=F64)
    t = rng.dirichlet(np.full(k, concentration), size=n)
    return z, t, rng


def symmetric_transition(k: int, alpha: float) -> np.ndarray:
    """alpha I + (1 - alpha)(11^T - I)/(K - 1): the transition of SLaM's normalised mix with M = all ones."""
    m = np.full((k, k), (1.0 - alpha) / (k - 1))
    np.fill_diagonal(m, alpha)
    return m


def random_transition(rng: np.random.Generator, k: int, diag: float = 0.7) -> np.ndarray:
    """A row-stochastic, diagonally dominant (so well-conditioned) transition matrix."""
    off = rng.dirichlet(np.ones(k - 1), size=k) * (1.0 - diag)
    m = np.empty((k, k))
    for i in range(k):
        m[i, np.arange(k) != i] = off[i]
        m[i, i] = diag
    return m


def spec_slam_reference(z, t, alpha, mask, normalize):
    """The log-space recipe (``docs/theory/slam.md#slam-log-space``), literally: log(1 - f) by log1p off the argmax and by a
    logsumexp without it at the argmax; logaddexp on M. Torch, differentiable, any dtype."""
    z = torch.as_tensor(z)
    t = torch.as_tensor(t, dtype=z.dtype)
    mask = torch.as_tensor(mask).bool()
    a = torch.as_tensor(alpha, dtype=z.dtype).expand(z.shape[0])[:, None]
    lf = torch.log_softmax(z, dim=1)
    top = z.detach().argmax(dim=1, keepdim=True)
    log1m = torch.log1p(-lf.exp().scatter(1, top, 0.0))
    excl = torch.logsumexp(z.scatter(1, top, float("-inf")), dim=1, keepdim=True) - torch.logsumexp(
        z, dim=1, keepdim=True
    )
    log1m = log1m.scatter(1, top, excl)
    k = mask.sum(dim=1, keepdim=True).to(z.dtype)
    lb = torch.log1p(-a) - (torch.log(k - 1.0) if normalize else 0.0)
    log_mix = torch.where(mask, torch.logaddexp(torch.log(a) + lf, lb + log1m), torch.log(a) + lf)
    return -torch.where(t == 0, 0.0, t * log_mix).sum(dim=1)


def numpy_slam_reference(z, t, alpha, mask, normalize):
    """-sum t log mix(softmax(z)) with the numpy reference slam.mix (probability domain, float64)."""
    f = softmax_np(np.asarray(z, dtype=np.float64))
    return -(t * np.log(slam.mix(f, alpha, mask, normalize))).sum(axis=1)


def mask_to_index(mask: np.ndarray) -> np.ndarray:
    """The (n, k) class indices of a mask with k ones in every row, ascending."""
    rows, cols = np.nonzero(mask)
    return cols.reshape(mask.shape[0], -1)


@st.composite
def slam_cases(draw, max_n: int = 6, max_k: int = 7):
    """(z float64 (n, K), teacher probs, alpha (n,), k (int), normalize) with alpha in the valid range."""
    n = draw(st.integers(1, max_n))
    k_classes = draw(st.integers(2, max_k))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0, 10.0]))
    conc = draw(st.sampled_from([0.1, 1.0, 10.0]))
    z, t, rng = make_case(seed, n, k_classes, scale, conc)
    if draw(st.booleans()):  # exact one-hot / sparse teachers too
        t = np.eye(k_classes)[rng.integers(0, k_classes, size=n)]
    k = draw(st.integers(2, k_classes))
    normalize = draw(st.booleans())
    low = 1.0 / k + 1e-3 if normalize else 0.5
    alpha = rng.uniform(low, 1.0, size=n)
    if draw(st.booleans()):
        alpha[rng.integers(0, n)] = 1.0  # the reduction point
    return z, t, alpha, k, normalize


# ----------------------------------------------------------------------------------------------------
# Reductions


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), k=st.integers(2, 8))
def test_kd_at_temperature_one_is_soft_cross_entropy_exactly(seed, n, k):
    z, t, _ = make_case(seed, n, k)
    assert torch.equal(L.kd_loss(z, t, 1.0), L.soft_cross_entropy(z, t))
    z32 = z.float()
    assert torch.equal(L.kd_loss(z32, t, 1.0), L.soft_cross_entropy(z32, t))


def _tempered_kd_reference(z_s: torch.Tensor, z_t: torch.Tensor, tau: float) -> torch.Tensor:
    """Hinton et al.'s KD from the teacher's logits: tau^2 * soft_cross_entropy(z_s / tau, softmax(z_t / tau))."""
    return tau**2 * L.soft_cross_entropy(z_s / tau, torch.softmax(z_t / tau, dim=1))


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 6),
    k=st.integers(2, 8),
    tau=st.sampled_from([0.5, 2.0, 4.0, 10.0]),
)
def test_kd_tempers_both_sides_and_scales_by_tau_squared(seed, n, k, tau):
    """The teacher's probabilities are tempered like its logits would be: kd_loss(z_s, softmax(z_t), tau) =
    tau^2 CE(z_s / tau, softmax(z_t / tau)); temperature_squared=False drops the tau^2; KDLoss agrees."""
    z_s, _, rng = make_case(seed, n, k)
    z_t = torch.tensor(rng.normal(size=(n, k)) * 3.0, dtype=F64)
    p = torch.softmax(z_t, dim=1)
    want = _tempered_kd_reference(z_s, z_t, tau)
    torch.testing.assert_close(L.kd_loss(z_s, p, tau), want, rtol=1e-12, atol=1e-12)
    unscaled = L.kd_loss(z_s, p, tau, temperature_squared=False)
    torch.testing.assert_close(unscaled, want / tau**2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(L.KDLoss(tau, reduction="none")(z_s, p), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tau", [0.5, 2.0, 5.0])
def test_kd_gradient_equals_torch_kl_div_times_tau_squared(tau):
    """The cross-entropy differs from torch's / torchdistill's KL by the teacher's entropy only: the gradient
    in the student's logits is that of kl_div(log_softmax(z_s/tau), softmax(z_t/tau)).sum(1) * tau^2."""
    z_s, _, rng = make_case(21, 7, 5)
    z_t = torch.tensor(rng.normal(size=(7, 5)) * 3.0, dtype=F64)
    p = torch.softmax(z_t, dim=1)
    a = z_s.clone().requires_grad_(True)
    (grad_ours,) = torch.autograd.grad(L.kd_loss(a, p, tau).sum(), a)
    b = z_s.clone().requires_grad_(True)
    kl = (
        torch.nn.functional.kl_div(
            torch.log_softmax(b / tau, dim=1), torch.softmax(z_t / tau, dim=1), reduction="none"
        ).sum(dim=1)
        * tau**2
    )
    (grad_torch,) = torch.autograd.grad(kl.sum(), b)
    torch.testing.assert_close(grad_ours, grad_torch, rtol=1e-12, atol=1e-13)
    # and the values differ by tau^2 times the tempered teacher's entropy
    q = torch.softmax(z_t / tau, dim=1)
    entropy = -(q * torch.log(q)).sum(dim=1)
    torch.testing.assert_close(L.kd_loss(z_s, p, tau) - kl.detach(), tau**2 * entropy, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("tau", [0.5, 3.0])
def test_kd_zero_teacher_probabilities(tau, dtype):
    """log 0 = -inf gives no NaN: a zero (or a round-off negative the simplex check admits) stays zero under
    the temperature (q = t^(1/tau) / sum t^(1/tau)), a one-hot row stays one-hot (tau^2 CE(z / tau, y)),
    and values and gradients are finite."""
    z = torch.tensor(
        [[1.0, -2.0, 0.5, 3.0], [0.0, 4.0, -1.0, 2.0], [-3.0, 0.0, 0.0, 1.0], [2.0, 1.0, 0.0, -1.0]], dtype=dtype
    )
    t = np.array([[0.0, 1.0, 0.0, 0.0], [0.6, 0.0, 0.4, 0.0], [0.1, 0.2, 0.3, 0.4], [0.7 + 1e-9, -1e-9, 0.3, 0.0]])
    zz = z.clone().requires_grad_(True)
    loss = L.kd_loss(zz, t, tau)
    loss.sum().backward()
    assert loss.dtype == dtype and bool(torch.isfinite(loss).all()) and bool(torch.isfinite(zz.grad).all())
    powered = np.clip(t, 0.0, None) ** (1.0 / tau)
    q = powered / powered.sum(axis=1, keepdims=True)
    want = tau**2 * L.soft_cross_entropy(z.double() / tau, q)
    tol = 1e-12 if dtype == F64 else 1e-5
    torch.testing.assert_close(loss.double(), want, rtol=tol, atol=tol)
    torch.testing.assert_close(
        loss[0].double(), tau**2 * L.soft_cross_entropy(z[:1].double() / tau, [1])[0], rtol=tol, atol=tol
    )
    # the gradient with respect to the teacher's probabilities is finite too (no inf * 0 at the zeros)
    tt = torch.tensor(t, dtype=F64, requires_grad=True)
    L.kd_loss(z.double(), tt, tau, validate=False).sum().backward()
    assert bool(torch.isfinite(tt.grad).all())


def test_kd_float64_precision_and_float32_parity():
    """float64 logits compute in float64 (the tempered reference to 1e-12); float32 ones agree to 1e-5."""
    z_s, _, rng = make_case(4, 50, 10, scale=5.0)
    z_t = torch.tensor(rng.normal(size=(50, 10)) * 5.0, dtype=F64)
    p = torch.softmax(z_t, dim=1)
    got = L.kd_loss(z_s, p, 2.5)
    assert got.dtype == F64
    torch.testing.assert_close(got, _tempered_kd_reference(z_s, z_t, 2.5), rtol=1e-12, atol=1e-12)
    got32 = L.kd_loss(z_s.float(), p.float(), 2.5)
    assert got32.dtype == torch.float32
    torch.testing.assert_close(got32.double(), got, rtol=1e-5, atol=1e-5)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), k_classes=st.integers(2, 7), data=st.data())
def test_slam_with_alpha_one_is_kd(seed, n, k_classes, data):
    z, t, _ = make_case(seed, n, k_classes, scale=5.0)
    k = data.draw(st.integers(2, k_classes))
    kd = L.kd_loss(z, t)
    for normalize in (False, True):
        got = L.slam_loss(z, t, 1.0, k=k, normalize=normalize)
        assert torch.allclose(got, kd, rtol=1e-12, atol=1e-12)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), k=st.integers(2, 8))
def test_identity_transition_gives_cross_entropy(seed, n, k):
    z, t, rng = make_case(seed, n, k, scale=4.0)
    eye = np.eye(k)
    ce = L.soft_cross_entropy(z, t)
    assert torch.allclose(L.forward_corrected_loss(z, t, eye), ce, rtol=1e-12, atol=1e-12)
    assert torch.allclose(L.backward_corrected_loss(z, t, eye), ce, rtol=1e-12, atol=1e-12)
    labels = torch.as_tensor(rng.integers(0, k, size=n))
    hard = torch.nn.functional.cross_entropy(z, labels, reduction="none")
    assert torch.allclose(L.forward_corrected_loss(z, labels, eye), hard, rtol=1e-12, atol=1e-12)
    assert torch.allclose(L.backward_corrected_loss(z, labels, eye), hard, rtol=1e-12, atol=1e-12)
    assert torch.allclose(L.soft_cross_entropy(z, labels), hard, rtol=1e-12, atol=1e-12)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), k=st.integers(2, 7), data=st.data())
def test_normalised_slam_with_all_classes_is_forward_correction(seed, n, k, data):
    """``docs/theory/slam.md#slam-forward-correction``: mix (2) with M = all ones is f T with T = alpha I + (1 - alpha)(11^T - I)/(K - 1)."""
    z, t, _ = make_case(seed, n, k, scale=4.0)
    alpha = data.draw(st.floats(1.0 / k + 1e-3, 1.0))
    got = L.slam_loss(z, t, alpha, k=k, normalize=True)
    want = L.forward_corrected_loss(z, t, symmetric_transition(k, alpha))
    assert torch.allclose(got, want, rtol=1e-11, atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# Parity with the numpy reference and the log-space recipe


@given(slam_cases())
def test_slam_matches_numpy_reference(case):
    z, t, alpha, k, normalize = case
    mask = slam.topk_mask(t, k)
    want = numpy_slam_reference(z.numpy(), t, alpha, mask, normalize)
    for got in (
        L.slam_loss(z, t, alpha, mask, normalize=normalize),  # numpy float mask
        L.slam_loss(z, t, alpha, torch.as_tensor(mask).bool(), normalize=normalize),  # torch bool mask
        L.slam_loss(z, t, alpha, k=k, normalize=normalize),  # int k
        L.slam_loss(z, t, alpha, k=np.full(z.shape[0], k), normalize=normalize),  # per-example k
        L.slam_loss(z, t, alpha, mask, normalize=normalize, validate=False),
        L.slam_loss(z, t, alpha, topk_index=mask_to_index(mask), normalize=normalize),  # (n, k) indices
        L.slam_loss(z, t, alpha, topk_index=mask_to_index(mask)[:, ::-1].copy(), normalize=normalize),  # any order
    ):
        assert got.dtype == F64
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), k_classes=st.integers(3, 7), normalize=st.booleans())
def test_slam_per_example_k_matches_numpy_reference(seed, n, k_classes, normalize):
    z, t, rng = make_case(seed, n, k_classes)
    ks = rng.integers(2, k_classes + 1, size=n)
    alpha = rng.uniform(0.5, 1.0, size=n) if not normalize else 1.0 / ks + rng.uniform(1e-3, 1 - 1.0 / ks)
    mask = slam.topk_mask(t, ks)
    want = numpy_slam_reference(z.numpy(), t, alpha, mask, normalize)
    got = L.slam_loss(z, t, alpha, k=torch.as_tensor(ks), normalize=normalize)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(L.slam_loss(z, t, alpha, mask, normalize=normalize).numpy(), want, rtol=1e-10)


@given(slam_cases(), st.sampled_from([1.0, 50.0, 300.0]))
def test_slam_matches_spec_log_space_recipe(case, scale):
    """The regrouped log mix (logaddexp(log c, log(alpha - c) + log f)) equals the log-space recipe, values and
    gradients, also where the probability-domain reference would underflow."""
    z, t, alpha, k, normalize = case
    z = (z * scale).requires_grad_(True)
    mask = torch.as_tensor(slam.topk_mask(t, k)).bool()
    got = L.slam_loss(z, t, alpha, mask, normalize=normalize)
    want = spec_slam_reference(z, t, alpha, mask, normalize)
    torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-11)
    (g_got,) = torch.autograd.grad(got.sum(), z)
    (g_want,) = torch.autograd.grad(want.sum(), z)
    torch.testing.assert_close(g_got, g_want, rtol=1e-9, atol=1e-11)


@st.composite
def tied_probs(draw):
    """Teacher probabilities from a tiny alphabet (many ties), and a per-row or global k."""
    n = draw(st.integers(1, 8))
    k_classes = draw(st.integers(2, 8))
    raw = np.array(
        draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0]), min_size=n * k_classes, max_size=n * k_classes))
    ).reshape(n, k_classes)
    raw[:, 0] += raw.sum(axis=1) == 0  # no all-zero rows
    probs = raw / raw.sum(axis=1, keepdims=True)
    if draw(st.booleans()):
        k = draw(st.integers(1, k_classes))
    else:
        k = np.array(draw(st.lists(st.integers(1, k_classes), min_size=n, max_size=n)))
    return probs, k


@given(tied_probs())
def test_torch_topk_mask_equals_numpy_including_ties(case):
    probs, k = case
    want = slam.topk_mask(probs, k)
    got = L.teacher_topk_mask(torch.as_tensor(probs), k)
    assert got.dtype == torch.bool
    np.testing.assert_array_equal(got.numpy().astype(np.float64), want)
    got32 = L.teacher_topk_mask(torch.as_tensor(probs, dtype=torch.float32), k)
    np.testing.assert_array_equal(got32.numpy().astype(np.float64), slam.topk_mask(probs.astype(np.float32), k))
    if np.ndim(k) == 0:  # the index form: the same set, ascending class indices
        index = L.teacher_topk_index(torch.as_tensor(probs), int(k))
        assert index.dtype == torch.int64 and index.shape == (probs.shape[0], k)
        np.testing.assert_array_equal(index.numpy(), mask_to_index(want))


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), normalize=st.booleans())
def test_slam_float32_parity_at_large_logits(seed, normalize):
    """``docs/theory/slam.md#slam-s0`` prototype parity: float32 against float64, logits up to +-300, k = 3,
    alpha in [0.5, 1]: loss within ~2e-6 (relative where large), gradients within ~1e-6, all finite."""
    rng = np.random.default_rng(seed)
    n, k_classes, k = 64, 10, 3
    z32 = torch.tensor(rng.uniform(-300.0, 300.0, size=(n, k_classes)), dtype=torch.float32)
    z32[: n // 2] *= torch.tensor(rng.uniform(0.0, 1.0, size=(n // 2, 1)), dtype=torch.float32)  # all scales
    t = rng.dirichlet(np.full(k_classes, 0.5), size=n)
    alpha = rng.uniform(0.5, 1.0, size=n)
    alpha[:4] = [0.5, 1.0, 0.6, 1.0]
    mask = slam.topk_mask(t, k)

    z_lo = z32.clone().requires_grad_(True)
    lo = L.slam_loss(z_lo, t.astype(np.float32), alpha.astype(np.float32), mask, normalize=normalize)
    (g_lo,) = torch.autograd.grad(lo.sum(), z_lo)
    z_hi = z32.to(F64).requires_grad_(True)
    alpha_hi = alpha.astype(np.float32).astype(np.float64)  # the same numbers the float32 path saw
    t_hi = t.astype(np.float32).astype(np.float64)
    hi = spec_slam_reference(z_hi, t_hi, alpha_hi, mask, normalize)
    (g_hi,) = torch.autograd.grad(hi.sum(), z_hi)

    assert lo.dtype == torch.float32 and bool(torch.isfinite(lo).all()) and bool(torch.isfinite(g_lo).all())
    err = (lo.detach().to(F64) - hi.detach()).abs() / hi.detach().abs().clamp(min=1.0)
    assert float(err.max()) <= 2e-6
    assert float((g_lo.to(F64) - g_hi).abs().max()) <= 1e-6


def test_binary_stable_form_matches_direct_evaluation():
    """``docs/theory/slam.md#slam-log-space``: the binary stable form against direct evaluation to 1e-12 at t in {0, +-5, +-50, +-1000}."""
    t = torch.tensor([0.0, 5.0, -5.0, 50.0, -50.0, 1000.0, -1000.0], dtype=F64)
    for alpha in (0.5, 0.6, 0.9, 0.999):
        log_mix, log_rest = L.slam_binary_log_mix(t, alpha)
        sig, sig_neg = expit(t.numpy()), expit(-t.numpy())
        mix = alpha * sig + (1 - alpha) * sig_neg  # = (1 - alpha) + (2 alpha - 1) sigma(t), no cancellation
        rest = (1 - alpha) * sig + alpha * sig_neg  # = 1 - mix
        np.testing.assert_allclose(log_mix.numpy(), np.log(mix), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(log_rest.numpy(), np.log(rest), rtol=1e-12, atol=1e-15)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6))
def test_binary_slam_loss_is_the_binary_stable_form(seed, n):
    rng = np.random.default_rng(seed)
    logit = torch.tensor(rng.normal(size=n) * 20, dtype=F64)
    y = rng.uniform(size=n)
    alpha = rng.uniform(0.5, 1.0, size=n)
    z = torch.stack([torch.zeros_like(logit), logit], dim=1)
    teacher = np.stack([1 - y, y], axis=1)
    log_mix, log_rest = L.slam_binary_log_mix(logit, alpha)
    want = -(torch.as_tensor(y) * log_mix + torch.as_tensor(1 - y) * log_rest)
    for normalize in (False, True):  # (2) and (2') coincide for K = k = 2
        got = L.slam_loss(z, teacher, alpha, k=2, normalize=normalize)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# Gradients


def _all_losses(t, transition, labels):
    """name -> z -> (n,) loss, for gradcheck and the finiteness tests."""
    return {
        "soft_cross_entropy": lambda z: L.soft_cross_entropy(z, t),
        "soft_cross_entropy[labels]": lambda z: L.soft_cross_entropy(z, labels),
        "kd_loss[T=2]": lambda z: L.kd_loss(z, t, 2.0),
        "slam[2', mask]": lambda z: L.slam_loss(z, t, 0.7, slam.topk_mask(t, 2)),
        "slam[2, index]": lambda z: L.slam_loss(
            z, t, 0.8, topk_index=mask_to_index(slam.topk_mask(t, 3)), normalize=True
        ),
        "slam[2, k=3]": lambda z: L.slam_loss(z, t, 0.8, k=3, normalize=True),
        "slam[alpha=1]": lambda z: L.slam_loss(z, t, 1.0, k=2),
        "slam[alpha=1/2]": lambda z: L.slam_loss(z, t, 0.5, k=3),
        "forward_corrected": lambda z: L.forward_corrected_loss(z, t, transition),
        "forward_corrected[labels]": lambda z: L.forward_corrected_loss(z, labels, transition),
        "backward_corrected": lambda z: L.backward_corrected_loss(z, t, transition),
        "taylor[soft]": lambda z: L.taylor_cross_entropy(z, t, 3),
        "taylor[hard]": lambda z: L.taylor_cross_entropy(z, labels, 2),
    }


@pytest.mark.parametrize("name", list(_all_losses(None, None, None)))
def test_gradcheck_float64(name):
    z, t, rng = make_case(11, 3, 4, scale=2.0)
    fn = _all_losses(t, random_transition(rng, 4), torch.as_tensor(rng.integers(0, 4, size=3)))[name]
    assert torch.autograd.gradcheck(fn, (z.clone().requires_grad_(True),))


@pytest.mark.parametrize("normalize", [False, True])
def test_slam_gradcheck_teacher_probs(normalize):
    z, t, _ = make_case(5, 3, 4)
    mask = slam.topk_mask(t, 3)
    tt = torch.tensor(t, requires_grad=True)
    fn = lambda p: L.slam_loss(z, p, 0.8, mask, normalize=normalize, validate=False)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (tt,))


@pytest.mark.parametrize("scale", [100.0, 1000.0])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("name", list(_all_losses(None, None, None)))
def test_finite_values_and_gradients_at_extreme_logits(name, dtype, scale):
    """Logits at +-scale with one-hot and soft teachers, including the teacher's class at the student's
    bottom: finite losses and gradients (slam at alpha = 1 and 1/2 included)."""
    k = 4
    z = (
        torch.tensor([[1.0, -1.0, 0.0, -1.0], [-1.0, 1.0, -1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, -1.0, -1.0]])
        * scale
    )
    t = np.array([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.25] * 4, [0.0, 0.0, 0.5, 0.5]])
    labels = torch.tensor([1, 0, 2, 3])
    fn = _all_losses(t, random_transition(np.random.default_rng(0), k), labels)[name]
    zz = z.to(dtype).requires_grad_(True)
    loss = fn(zz)
    (grad,) = torch.autograd.grad(loss.sum(), zz)
    assert bool(torch.isfinite(loss).all()), loss
    assert bool(torch.isfinite(grad).all()), grad


def test_identity_forward_correction_is_exact_at_extreme_logits():
    """T = I with zero entries: log (fT) = log f even where f underflows (the banded matrix product)."""
    z = torch.tensor([[200.0, -200.0, 0.0], [-900.0, 900.0, 0.0]], dtype=torch.float32, requires_grad=True)
    t = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    got = L.forward_corrected_loss(z, t, np.eye(3))
    want = L.soft_cross_entropy(z, t)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    (g1,) = torch.autograd.grad(got.sum(), z)
    (g2,) = torch.autograd.grad(want.sum(), z)
    torch.testing.assert_close(g1, g2)


def test_forward_correction_zero_column_gives_infinite_loss_with_finite_gradient():
    transition = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])  # nobody says class 2
    z = torch.zeros(2, 3, requires_grad=True)
    t = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    loss = L.forward_corrected_loss(z, t, transition)
    assert math.isfinite(loss[0].item()) and math.isinf(loss[1].item())
    (grad,) = torch.autograd.grad(loss[0], z)
    assert bool(torch.isfinite(grad).all())


# ----------------------------------------------------------------------------------------------------
# Forward and backward correction


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5), k=st.integers(2, 6))
def test_backward_correction_is_unbiased(seed, n, k):
    """``docs/theory/weighted.md#weighted-lemma-5``: E_{y~ ~ T[y]}[l<-(f, y~)] = -log f_y, exactly (float64, 1e-12 relative)."""
    z, _, rng = make_case(seed, n, k, scale=3.0)
    transition = random_transition(rng, k, diag=rng.uniform(0.55, 0.95))
    y = rng.integers(0, k, size=n)
    clean = -torch.log_softmax(z, dim=1)[torch.arange(n), torch.as_tensor(y)]
    expected = sum(
        torch.as_tensor(transition[y, j]) * L.backward_corrected_loss(z, np.full(n, j), transition) for j in range(k)
    )
    torch.testing.assert_close(expected, clean, rtol=1e-12, atol=1e-12)
    # the loss is linear in the target, so the soft target T[y] gives the same number in one call
    soft = L.backward_corrected_loss(z, transition[y], transition)
    torch.testing.assert_close(soft, clean, rtol=1e-12, atol=1e-12)


def test_backward_correction_can_be_negative():
    eta = 0.3
    transition = np.array([[1 - eta, eta], [eta, 1 - eta]])
    z = torch.tensor([[8.0, -8.0]], dtype=F64)
    loss = L.backward_corrected_loss(z, [0], transition)
    f = torch.softmax(z, dim=1)[0]
    want = ((1 - eta) * -torch.log(f[0]) - eta * -torch.log(f[1])) / (1 - 2 * eta)  # Lemma 5, binary form
    assert float(loss) < 0
    torch.testing.assert_close(loss[0], want, rtol=1e-12, atol=1e-12)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5), k=st.integers(2, 6))
def test_forward_correction_matches_direct_formula(seed, n, k):
    z, t, rng = make_case(seed, n, k, scale=3.0)
    transition = random_transition(rng, k, diag=rng.uniform(0.2, 0.95))
    transition[0, 1:] = 0.0  # zeros in T are allowed
    transition[0, 0] = 1.0
    want = -(t * np.log(softmax_np(z.numpy()) @ transition)).sum(axis=1)
    np.testing.assert_allclose(L.forward_corrected_loss(z, t, transition).numpy(), want, rtol=1e-12, atol=1e-13)
    module = L.ForwardCorrectedLoss(transition, reduction="none")
    np.testing.assert_allclose(module(z, t).numpy(), want, rtol=1e-12, atol=1e-13)


def test_backward_correction_rejects_ill_conditioned_transition():
    z, t, _ = make_case(0, 3, 3)
    singular = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="ill-conditioned"):
        L.backward_corrected_loss(z, t, singular)
    with pytest.raises(ValueError, match="ill-conditioned"):
        L.BackwardCorrectedLoss(singular)
    near = np.array([[0.5 + 1e-10, 0.5 - 1e-10], [0.5, 0.5]])  # cond ~ 1e10
    with pytest.raises(ValueError, match="ill-conditioned"):
        L.backward_corrected_loss(z[:, :2], t[:, :2] / t[:, :2].sum(axis=1, keepdims=True), near)
    assert L.MAX_TRANSITION_CONDITION == 1e8


# ----------------------------------------------------------------------------------------------------
# Taylor cross-entropy


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), k=st.integers(2, 7))
def test_taylor_order_one_is_one_minus_f(seed, n, k):
    z, _, rng = make_case(seed, n, k)
    y = torch.as_tensor(rng.integers(0, k, size=n))
    f_y = torch.softmax(z, dim=1)[torch.arange(n), y]
    torch.testing.assert_close(L.taylor_cross_entropy(z, y, 1), 1 - f_y, rtol=1e-12, atol=1e-14)


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), k=st.integers(2, 7))
def test_taylor_tends_to_cross_entropy_and_soft_one_hot_is_hard(seed, n, k):
    z, _, rng = make_case(seed, n, k, scale=0.3)
    y = torch.as_tensor(rng.integers(0, k, size=n))
    z[torch.arange(n), y] += 3.0  # moderate f_y: the series' remainder is tiny at order 200
    f_y = torch.softmax(z, dim=1)[torch.arange(n), y]
    assert float(f_y.min()) > 0.2
    ce = torch.nn.functional.cross_entropy(z, y, reduction="none")
    torch.testing.assert_close(L.taylor_cross_entropy(z, y, 200), ce, rtol=0, atol=1e-6)
    one_hot = np.eye(k)[y.numpy()]
    for order in (1, 2, 5):
        soft, hard = L.taylor_cross_entropy(z, one_hot, order), L.taylor_cross_entropy(z, y, order)
        torch.testing.assert_close(soft, hard, rtol=1e-12, atol=1e-14)


def test_taylor_is_accurate_when_f_tends_to_one():
    """1 - f_y for a confident correct student is e^-30-sized: computed in log space, not as 1 - f."""
    z = torch.tensor([[30.0, 0.0, 0.0]], dtype=torch.float32)
    want = 2 * math.exp(-30) / (1 + 2 * math.exp(-30))
    got = L.taylor_cross_entropy(z, torch.tensor([0]), 1)
    assert abs(float(got[0]) / want - 1) < 1e-5


# ----------------------------------------------------------------------------------------------------
# Validation


def _bad_calls():
    z, t, _ = make_case(1, 3, 4)
    z32 = z.float()
    mask = slam.topk_mask(t, 2)
    mask_one = mask.copy()
    mask_one[1] = [1, 0, 0, 0]
    half = mask.copy()
    half[0, 0] = 0.5
    off = t.copy()
    off[0, 0] += 0.01
    neg = t.copy()
    neg[0, :2] += [-0.5, 0.5]
    nan_z = z.clone()
    nan_z[1, 2] = float("nan")
    inf_z = z.clone()
    inf_z[0, 0] = float("inf")
    meta = torch.empty(3, 4, device="meta")
    eye = np.eye(4)
    return [
        ("probs not on the simplex", lambda: L.soft_cross_entropy(z, off), ValueError, "sum to 1"),
        ("negative probs", lambda: L.kd_loss(z, neg), ValueError, "negative"),
        ("logits passed as probs", lambda: L.soft_cross_entropy(z, z.numpy()), ValueError, "simplex"),
        ("NaN logits", lambda: L.soft_cross_entropy(nan_z, t), ValueError, "finite"),
        ("inf logits", lambda: L.slam_loss(inf_z, t, 0.7, k=2), ValueError, "finite"),
        ("NaN probs", lambda: L.soft_cross_entropy(z, np.where(t > 0.3, np.nan, t)), ValueError, "finite"),
        ("numpy logits", lambda: L.soft_cross_entropy(z.numpy(), t), TypeError, "torch.Tensor"),
        ("int logits", lambda: L.soft_cross_entropy(z.long(), t), TypeError, "floating"),
        ("1-D logits", lambda: L.soft_cross_entropy(z[0], t[0]), ValueError, "2-D"),
        ("one class", lambda: L.soft_cross_entropy(z[:, :1], np.ones((3, 1))), ValueError, "at least 2"),
        ("shape mismatch", lambda: L.soft_cross_entropy(z, t[:, :3]), ValueError, "shape"),
        ("bool targets", lambda: L.soft_cross_entropy(z, t > 0.2), TypeError, "real"),
        ("float labels", lambda: L.soft_cross_entropy(z, np.array([0.0, 1.0, 2.0])), TypeError, "integer labels"),
        ("labels out of range", lambda: L.forward_corrected_loss(z, [0, 4, 1], eye), ValueError, "0..3"),
        ("labels wrong length", lambda: L.backward_corrected_loss(z, [0, 1], eye), ValueError, "shape"),
        ("alpha > 1", lambda: L.slam_loss(z, t, 1.2, k=2), ValueError, "alpha"),
        ("alpha < 0", lambda: L.slam_loss(z, t, -0.1, k=2, normalize=True), ValueError, "alpha"),
        ("alpha NaN", lambda: L.slam_loss(z, t, [0.7, np.nan, 0.8], k=2), ValueError, "alpha"),
        ("alpha < 1/2 for (2')", lambda: L.slam_loss(z, t, 0.45, k=2), ValueError, "1/2"),
        ("alpha <= 1/k for (2)", lambda: L.slam_loss(z, t, 1 / 3, k=3, normalize=True), ValueError, "1/k"),
        ("alpha wrong length", lambda: L.slam_loss(z, t, [0.7, 0.8], k=2), ValueError, "alpha"),
        ("k = 0", lambda: L.slam_loss(z, t, 0.7, k=0), ValueError, "k must lie in 1..4"),
        ("k > K", lambda: L.slam_loss(z, t, 0.7, k=5), ValueError, "k must lie in 1..4"),
        ("k = 1", lambda: L.slam_loss(z, t, 0.7, k=1), ValueError, "k must be >= 2"),
        ("float k", lambda: L.slam_loss(z, t, 0.7, k=2.0), TypeError, "k must be an integer"),
        ("mask and k", lambda: L.slam_loss(z, t, 0.7, mask, k=2), ValueError, "exactly one"),
        ("neither mask nor k", lambda: L.slam_loss(z, t, 0.7), ValueError, "exactly one"),
        ("mask row with one 1", lambda: L.slam_loss(z, t, 0.7, mask_one), ValueError, "at least 2 ones"),
        ("mask not 0/1", lambda: L.slam_loss(z, t, 0.7, half), ValueError, "only 0 and 1"),
        ("mask shape", lambda: L.slam_loss(z, t, 0.7, mask[:, :3]), ValueError, "shape"),
        ("mask and index", lambda: L.slam_loss(z, t, 0.7, mask, topk_index=[[0, 1]] * 3), ValueError, "exactly one"),
        ("index out of range", lambda: L.slam_loss(z, t, 0.7, topk_index=[[0, 1], [1, 4], [2, 3]]), ValueError, "0..3"),
        ("negative index", lambda: L.slam_loss(z, t, 0.7, topk_index=[[0, 1], [1, 2], [-1, 3]]), ValueError, "0..3"),
        ("repeated index", lambda: L.slam_loss(z, t, 0.7, topk_index=[[0, 1], [2, 2], [2, 3]]), ValueError, "distinct"),
        (
            "repeated index, k=3",
            lambda: L.slam_loss(z, t, 0.7, topk_index=[[0, 1, 2], [2, 1, 2], [0, 2, 3]]),
            ValueError,
            "distinct",
        ),
        ("index with one class", lambda: L.slam_loss(z, t, 0.7, topk_index=[[0], [1], [2]]), ValueError, "2 <= k"),
        ("index rows", lambda: L.slam_loss(z, t, 0.7, topk_index=[[0, 1], [1, 2]]), ValueError, "shape"),
        ("float index", lambda: L.slam_loss(z, t, 0.7, topk_index=[[0.0, 1.0]] * 3), TypeError, "integer"),
        (
            "index on another device",
            lambda: L.slam_loss(z32, t, 0.7, topk_index=torch.zeros(3, 2, dtype=torch.long, device="meta")),
            ValueError,
            "device",
        ),
        (
            "alpha <= 1/k for (2), index",
            lambda: L.slam_loss(z, t, 0.3, topk_index=[[0, 1, 2]] * 3, normalize=True),
            ValueError,
            "1/k",
        ),
        ("temperature 0", lambda: L.kd_loss(z, t, 0.0), ValueError, "temperature"),
        ("temperature inf", lambda: L.kd_loss(z, t, math.inf), ValueError, "temperature"),
        ("temperature str", lambda: L.kd_loss(z, t, "2"), TypeError, "temperature"),
        ("order 0", lambda: L.taylor_cross_entropy(z, t, 0), ValueError, "order"),
        ("order 1.5", lambda: L.taylor_cross_entropy(z, t, 1.5), ValueError, "order"),
        ("T not stochastic", lambda: L.forward_corrected_loss(z, t, 2 * eye), ValueError, "transition"),
        ("T shape", lambda: L.backward_corrected_loss(z, t, np.eye(3)), ValueError, "transition"),
        ("T negative", lambda: L.forward_corrected_loss(z, t, [[1.5, -0.5, 0, 0], *eye[1:]]), ValueError, "negative"),
        ("probs on another device", lambda: L.soft_cross_entropy(z32, meta), ValueError, "device"),
        (
            "alpha on another device",
            lambda: L.slam_loss(z32, t, torch.full((3,), 0.7, device="meta"), k=2),
            ValueError,
            "device",
        ),
        (
            "T on another device",
            lambda: L.forward_corrected_loss(z32, t, torch.eye(4, device="meta")),
            ValueError,
            "device",
        ),
        ("mask on another device", lambda: L.slam_loss(z32, t, 0.7, meta.bool()), ValueError, "device"),
    ]


@pytest.mark.parametrize("case", _bad_calls(), ids=lambda c: c[0])
def test_bad_input_raises(case):
    _, call, exc, match = case
    with pytest.raises(exc, match=match):
        call()


def test_mask_validation_agrees_with_numpy_checker():
    """The torch fast check and slam.check_mask reject the same masks (the numpy checker words the error)."""
    z, t, _ = make_case(2, 2, 3)
    bad_masks = ([[1, 0, 0], [1, 1, 0]], [[1, 1, 0], [1, 2, 0]], [[1, 1, 0], [-1, 1, 1]], [[1, 1, np.nan], [1, 1, 0]])
    for bad in bad_masks:
        with pytest.raises(ValueError) as numpy_err:
            slam.check_mask(np.array(bad, dtype=float), (2, 3))
        with pytest.raises(ValueError) as torch_err:
            L.slam_loss(z, t, 0.7, np.array(bad, dtype=float))
        assert str(numpy_err.value) == str(torch_err.value)


def test_validate_false_gives_the_same_numbers():
    z, t, rng = make_case(4, 5, 6)
    transition = random_transition(rng, 6)
    y = rng.integers(0, 6, size=5)
    pairs = [
        (lambda v: L.soft_cross_entropy(z, t, validate=v)),
        (lambda v: L.kd_loss(z, t, 1.5, validate=v)),
        (lambda v: L.slam_loss(z, t, 0.8, k=3, validate=v)),
        (lambda v: L.slam_loss(z, t, 0.8, slam.topk_mask(t, 2), normalize=True, validate=v)),
        (lambda v: L.slam_loss(z, t, 0.8, topk_index=[[0, 3]] * 5, validate=v)),
        (lambda v: L.forward_corrected_loss(z, y, transition, validate=v)),
        (lambda v: L.backward_corrected_loss(z, t, transition, validate=v)),
        (lambda v: L.taylor_cross_entropy(z, y, 3, validate=v)),
    ]
    for fn in pairs:
        assert torch.equal(fn(True), fn(False))


def test_inputs_as_lists_arrays_and_tensors_agree():
    z, t, _ = make_case(6, 3, 4)
    mask = slam.topk_mask(t, 2)
    ref = L.slam_loss(z, t, 0.7, mask)
    for tt, mm, aa in [
        (t.tolist(), mask.tolist(), [0.7, 0.7, 0.7]),
        (torch.as_tensor(t), torch.as_tensor(mask, dtype=torch.int64), torch.full((3,), 0.7, dtype=F64)),
        (torch.as_tensor(t, dtype=torch.float32), torch.as_tensor(mask).bool(), np.float32(0.7)),
    ]:
        torch.testing.assert_close(L.slam_loss(z, tt, aa, mm), ref, rtol=1e-7, atol=1e-7)


# ----------------------------------------------------------------------------------------------------
# nn.Module wrappers and reductions


def test_modules_reductions_and_weights():
    z, t, rng = make_case(8, 5, 4)
    y = rng.integers(0, 4, size=5)
    transition = random_transition(rng, 4)
    w = rng.uniform(0, 2, size=5)
    cases = [
        (L.SoftCrossEntropy, {}, (t,), L.soft_cross_entropy(z, t)),
        (L.KDLoss, {"temperature": 2.0}, (t,), L.kd_loss(z, t, 2.0)),
        (L.SLaMLoss, {"k": 2}, (t, 0.7), L.slam_loss(z, t, 0.7, k=2)),
        (
            L.SLaMLoss,
            {"normalize": True},
            (t, 0.7, slam.topk_mask(t, 3)),
            L.slam_loss(z, t, 0.7, slam.topk_mask(t, 3), normalize=True),
        ),
        (L.ForwardCorrectedLoss, {"transition": transition}, (y,), L.forward_corrected_loss(z, y, transition)),
        (L.BackwardCorrectedLoss, {"transition": transition}, (t,), L.backward_corrected_loss(z, t, transition)),
        (L.TaylorCrossEntropy, {"order": 3}, (y,), L.taylor_cross_entropy(z, y, 3)),
    ]
    for cls, kwargs, args, per_example in cases:
        none = cls(**kwargs, reduction="none")(z, *args)
        torch.testing.assert_close(none, per_example, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(cls(**kwargs, reduction="sum")(z, *args), per_example.sum())
        torch.testing.assert_close(cls(**kwargs)(z, *args), per_example.mean())  # "mean" is the default
        weighted = cls(**kwargs)(z, *args, weight=w)
        torch.testing.assert_close(weighted, (torch.as_tensor(w) * per_example).sum() / 5)  # sum w l / n
        assert "reduction" in repr(cls(**kwargs))
    with pytest.raises(ValueError, match="reduction"):
        L.SoftCrossEntropy(reduction="avg")
    with pytest.raises(ValueError, match="weight"):
        L.SoftCrossEntropy()(z, t, weight=np.ones(4))
    with pytest.raises(ValueError, match="weight"):
        L.SoftCrossEntropy()(z, t, weight=[1.0, np.nan, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="exactly one"):
        L.SLaMLoss(k=2)(z, t, 0.7, slam.topk_mask(t, 2))


def test_reduce_loss():
    loss = torch.tensor([1.0, 2.0, 3.0])
    assert float(L.reduce_loss(loss)) == 2.0
    assert float(L.reduce_loss(loss, [1.0, 0.0, 2.0], "sum")) == 7.0
    assert float(L.reduce_loss(loss, [1.0, 0.0, 2.0], "mean")) == pytest.approx(7.0 / 3.0)
    assert torch.equal(L.reduce_loss(loss, 2.0, "none"), 2.0 * loss)
    with pytest.raises(ValueError, match="reduction"):
        L.reduce_loss(loss, reduction="max")


def test_doctests():
    result = doctest.testmod(L, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_losses_registry_lists_the_public_functions():
    assert set(L.LOSSES) == {
        "soft_cross_entropy",
        "kd_loss",
        "slam_loss",
        "forward_corrected_loss",
        "backward_corrected_loss",
        "taylor_cross_entropy",
        "negative_learning_loss",
    }
    assert all(callable(fn) for fn in L.LOSSES.values())


def test_negative_learning_loss():
    """The mean over the negative labels of -log(1 - f_c) (float64 numpy reference), 0 without negatives,
    finite with finite gradients at logits +-100, gradcheck in float64, and a clear error for a non-0/1 mask."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(50, 6, generator=gen, dtype=torch.float64) * 3
    mask = torch.rand(50, 6, generator=gen) < 0.4
    f = torch.softmax(z, dim=1).numpy()
    m = mask.numpy()
    ref = -(np.log1p(-f) * m).sum(axis=1) / np.maximum(1, m.sum(axis=1))
    np.testing.assert_allclose(L.negative_learning_loss(z, mask).numpy(), ref, rtol=1e-12, atol=1e-14)
    assert L.negative_learning_loss(z, torch.zeros(50, 6)).abs().max() == 0
    extreme = torch.tensor([[100.0, -100.0, 0.0]], requires_grad=True)
    loss = L.negative_learning_loss(extreme, [[1, 1, 1]])
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(extreme.grad).all()
    assert torch.autograd.gradcheck(lambda x: L.negative_learning_loss(x, mask), (z.clone().requires_grad_(True),))
    with pytest.raises(ValueError, match="0 and 1"):
        L.negative_learning_loss(z, torch.full((50, 6), 0.5))
    with pytest.raises(ValueError, match="shape"):
        L.negative_learning_loss(z, torch.ones(50, 5))


# ----------------------------------------------------------------------------------------------------
# Autocast and devices


def _with_zeros(t):
    """The teacher with its entries below 0.1 zeroed, rows renormalised (same device and dtype)."""
    kept = torch.where(t >= 0.1, t, torch.zeros_like(t))
    kept[:, 0] += (kept.sum(dim=1) == 0).to(t.dtype)  # a row with nothing >= 0.1 becomes one-hot
    return kept / kept.sum(dim=1, keepdim=True)


def _loss_calls(t, transition, y):
    """name -> z -> per-example loss, float32 teacher tensors and well-conditioned T."""
    return {
        "soft_cross_entropy": lambda z: L.soft_cross_entropy(z, t),
        "kd_loss": lambda z: L.kd_loss(z, t, 2.0),
        "kd_loss[zeros in t]": lambda z: L.kd_loss(z, _with_zeros(t), 3.0),
        "slam_loss": lambda z: L.slam_loss(z, t, 0.7, k=3),
        "slam_loss[normalised]": lambda z: L.slam_loss(z, t, 0.7, k=3, normalize=True),
        "forward_corrected_loss": lambda z: L.forward_corrected_loss(z, t, transition),
        "backward_corrected_loss": lambda z: L.backward_corrected_loss(z, t, transition),
        "taylor_cross_entropy": lambda z: L.taylor_cross_entropy(z, y, 2),
    }


def _autocast_instance(device: str):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 32, generator=gen)
    linear = torch.nn.Linear(32, 10)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(10, 32, generator=gen) / 4)
        linear.bias.copy_(torch.randn(10, generator=gen))
    t = torch.softmax(torch.randn(16, 10, generator=gen), dim=1)
    y = torch.randint(0, 10, (16,), generator=gen)
    transition = torch.as_tensor(random_transition(np.random.default_rng(0), 10), dtype=torch.float32)
    return x.to(device), linear.to(device), t.to(device), y.to(device), transition.to(device)


@pytest.mark.parametrize("name", list(_loss_calls(None, None, None)))
def test_cpu_autocast_bfloat16(name):
    x, linear, t, y, transition = _autocast_instance("cpu")
    fn = _loss_calls(t, transition, y)[name]
    reference = fn(linear(x))  # float32 all the way
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = linear(x)
        assert logits.dtype == torch.bfloat16
        loss = fn(logits)
    assert loss.dtype == torch.float32
    assert bool(torch.isfinite(loss).all())
    # the loss itself adds float32 error only: the same bf16 logits upcast give the same numbers
    torch.testing.assert_close(loss, fn(logits.float()), rtol=1e-5, atol=1e-6)
    # bf16 logits carry ~3 significant digits
    torch.testing.assert_close(loss, reference, rtol=5e-2, atol=5e-2)
    loss.mean().backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in linear.parameters())


@CUDA
@pytest.mark.parametrize("name", list(_loss_calls(None, None, None)))
def test_cuda_matches_cpu(name):
    z, t, rng = make_case(9, 64, 10, scale=5.0)
    t32 = torch.as_tensor(t, dtype=torch.float32)
    transition = torch.as_tensor(random_transition(rng, 10), dtype=torch.float32)
    y = torch.as_tensor(rng.integers(0, 10, size=64))
    z_cpu = z.float().requires_grad_(True)
    z_gpu = z.float().cuda().requires_grad_(True)
    cpu = _loss_calls(t32, transition, y)[name](z_cpu)
    gpu = _loss_calls(t32.cuda(), transition.cuda(), y.cuda())[name](z_gpu)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-5)
    (g_cpu,) = torch.autograd.grad(cpu.sum(), z_cpu)
    (g_gpu,) = torch.autograd.grad(gpu.sum(), z_gpu)
    torch.testing.assert_close(g_gpu.cpu(), g_cpu, rtol=1e-5, atol=1e-5)


@CUDA
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", list(_loss_calls(None, None, None)))
def test_cuda_autocast(name, dtype):
    x, linear, t, y, transition = _autocast_instance("cuda")
    fn = _loss_calls(t, transition, y)[name]
    reference = fn(linear(x))
    with torch.autocast("cuda", dtype=dtype):
        logits = linear(x)
        assert logits.dtype == dtype
        loss = fn(logits)
    assert loss.dtype == torch.float32 and bool(torch.isfinite(loss).all())
    torch.testing.assert_close(loss, fn(logits.float()), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, reference, rtol=5e-2, atol=5e-2)
    loss.mean().backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in linear.parameters())


@CUDA
def test_cuda_mask_and_k_paths_agree_with_cpu():
    z, t, rng = make_case(10, 200, 12, scale=8.0)
    alpha = rng.uniform(0.5, 1.0, size=200)
    mask = slam.topk_mask(t, 4)
    cpu = L.slam_loss(z, t, alpha, mask)
    zg, tg, ag = z.cuda(), torch.as_tensor(t).cuda(), torch.as_tensor(alpha).cuda()
    gpu_mask = L.slam_loss(zg, tg, ag, torch.as_tensor(mask).cuda())
    gpu_k = L.slam_loss(zg, tg, ag, k=4)
    gpu_index = L.slam_loss(zg, tg, ag, topk_index=L.teacher_topk_index(tg, 4))
    torch.testing.assert_close(gpu_mask.cpu(), cpu, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gpu_k.cpu(), cpu, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gpu_index.cpu(), cpu, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", [0, 7, 8, 64, 803, 4096])
@pytest.mark.parametrize("density", [0.0, 0.02, 0.5, 1.0])
def test_flatnonzero_bool_matches_numpy(size, density):
    """The word-wise scan behind slam_loss's mask (whole 8-byte words first) gives np.flatnonzero's indices."""
    mask = np.random.default_rng(size).random(size) < density
    got = L._flatnonzero_bool(mask)
    np.testing.assert_array_equal(got, np.flatnonzero(mask))
    assert got.dtype == np.int64


def test_slam_ragged_and_uniform_masks_agree():
    """The uniform layout (same k in every row) and the ragged (nnz,) layout give the same loss and gradient."""
    gen = torch.Generator().manual_seed(5)
    z = torch.randn(6, 9, dtype=torch.float64, generator=gen)
    t = torch.softmax(torch.randn(6, 9, dtype=torch.float64, generator=gen), dim=1)
    ks = np.array([2, 3, 2, 4, 2, 3])
    ragged = L.teacher_topk_mask(t, ks)
    for normalize in (False, True):
        for i in range(6):  # row i from the ragged mask, every row alone (uniform) and within the batch
            zi = z[i : i + 1].clone().requires_grad_(True)
            zb = z.clone().requires_grad_(True)
            alone = L.slam_loss(zi, t[i : i + 1], 0.8, ragged[i : i + 1], normalize=normalize)
            batch = L.slam_loss(zb, t, 0.8, ragged, normalize=normalize)
            alone.sum().backward()
            batch[i].backward()
            torch.testing.assert_close(alone[0], batch[i], rtol=1e-13, atol=0)
            torch.testing.assert_close(zi.grad[0], zb.grad[i], rtol=1e-12, atol=1e-15)
