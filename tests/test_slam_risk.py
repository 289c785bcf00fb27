"""The exact per-example minimiser of SLaM's loss (theory/slam_risk.py): simplex, KKT, scipy, special cases.

Arrays come from hypothesis-drawn seeds (numpy Generators), the structure (K, k, the form, alpha's range)
from hypothesis directly.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import optimize

from robustdistill.algorithms.slam import mix, slam_targets, topk_mask
from robustdistill.theory import slam_risk as sr
from robustdistill.theory.slam_risk import leaves_topk, per_example_minimiser

seeds = st.integers(0, 2**32 - 1)

EXAMPLE_T = np.array([[0.5, 0.3, 0.1, 0.1]])
EXAMPLE_MASK = np.array([[1.0, 1.0, 0.0, 0.0]])


def _coefficients(alpha, mask, normalize):
    """(a, b) of mix_j = a_j + b_j f_j, read off the library's mix at the vertices: a_j = mix_j(e_l) for any
    l != j (f_j = 0) and b_j = mix_j(e_j) - a_j."""
    n, num_classes = mask.shape
    eye = np.eye(num_classes)
    a = np.empty((n, num_classes))
    b = np.empty((n, num_classes))
    for j in range(num_classes):
        other = np.broadcast_to(eye[(j + 1) % num_classes], (n, num_classes))
        a[:, j] = mix(other, alpha, mask, normalize=normalize)[:, j]
        b[:, j] = mix(np.broadcast_to(eye[j], (n, num_classes)), alpha, mask, normalize=normalize)[:, j] - a[:, j]
    return a, b


def _loss(f, y, a, b):
    """-sum_j y_j log(a_j + b_j f_j) over the classes with y_j > 0."""
    live = y > 0
    return float(-(y[live] * np.log(a[live] + b[live] * f[live])).sum())


@st.composite
def problems(
    draw, *, on_mask: bool = False, margin: float = 0.0, normalize: bool | None = None, min_entry: float = 0.0
):
    """(targets (n, K), alpha (n,), mask (n, K), normalize), K in 2..8, k in 2..K per row.

    Targets: Dirichlet rows of a drawn concentration, with exact zeros in about a quarter of the entries when
    drawn; entries below ``min_entry`` are set to 0; ``on_mask`` restricts them to M (the population targets
    of model (1)). alpha lies in (bound + margin, 1], bound = 1/2 for (2') and 1/k for (2); some rows get
    exactly 1."""
    rng = np.random.default_rng(draw(seeds))
    normalize = draw(st.booleans()) if normalize is None else normalize
    num_classes = draw(st.integers(2, 8))
    n = draw(st.integers(1, 6))
    k = np.array(draw(st.lists(st.integers(2, num_classes), min_size=n, max_size=n)))
    mask = np.zeros((n, num_classes))
    for i in range(n):
        mask[i, rng.permutation(num_classes)[: k[i]]] = 1.0
    y = rng.dirichlet(np.full(num_classes, draw(st.sampled_from([0.2, 1.0, 5.0]))), n)
    if draw(st.booleans()):
        y *= rng.random((n, num_classes)) > 0.25
    y[y < min_entry] = 0.0
    if on_mask:
        y *= mask
    anchor = (
        np.where(mask > 0, rng.random((n, num_classes)), -1.0).argmax(axis=1)
        if on_mask
        else (rng.integers(num_classes, size=n))
    )
    y[np.arange(n), anchor] += 1e-3  # every row keeps some mass
    y /= y.sum(axis=1, keepdims=True)
    bound = 1.0 / k if normalize else np.full(n, 0.5)
    u = 1.0 - rng.random(n)  # (0, 1]
    alpha = bound + margin + (1.0 - bound - margin) * u
    alpha[rng.random(n) < 0.15] = 1.0
    return y, alpha, mask, normalize


def _prefix_water_filling(q, alpha, mask):
    """The simulators' former map for (2') and targets supported on M (the active set is then a prefix of
    the classes sorted by q): f_i = (s q_i - (1-alpha)/(2alpha-1))_+ on M, 0 off M."""
    a = (1.0 - alpha) / (2.0 * alpha - 1.0)
    qm = np.where(mask > 0, q, -np.inf)
    qs = -np.sort(-qm, axis=1)
    j = np.arange(1, q.shape[1] + 1)
    with np.errstate(invalid="ignore"):
        csum = np.cumsum(np.where(np.isfinite(qs), qs, 0.0), axis=1)
        s_j = (1.0 + j * a[:, None]) / csum
        active = np.isfinite(qs) & (s_j * qs - a[:, None] > 0)
    last = active.shape[1] - 1 - np.argmax(active[:, ::-1], axis=1)
    s = s_j[np.arange(q.shape[0]), last]
    return np.where(mask > 0, np.maximum(s[:, None] * q - a[:, None], 0.0), 0.0)


# ------------------------------------------------------------------------------------------------
# The minimiser
# ------------------------------------------------------------------------------------------------


@given(problems())
def test_minimiser_is_on_the_simplex_and_satisfies_kkt(problem):
    y, alpha, mask, normalize = problem
    f = per_example_minimiser(y, alpha, mask, normalize=normalize)
    assert f.shape == y.shape and f.dtype == np.float64
    assert np.all(f >= 0)
    np.testing.assert_allclose(f.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.all(f[y == 0] == 0)  # a class outside the loss gets nothing
    a, b = _coefficients(alpha, mask, normalize)
    assert np.all(b > 0)
    assert np.all(f[(a == 0) & (y > 0)] > 0)  # log(a_j + b_j f_j) = -inf at f_j = 0
    # d loss / d f_j = -y_j b_j / (a_j + b_j f_j): equal (-lambda) on the support, not smaller off it
    with np.errstate(divide="ignore", invalid="ignore"):  # a_j = f_j = 0 only where y_j = 0 (checked above)
        grad = np.where(y > 0, -y * b / (a + b * f), 0.0)
    for i in range(y.shape[0]):
        on = f[i] > 0
        lam = grad[i, on]
        np.testing.assert_allclose(lam, lam[0], rtol=1e-9)
        assert np.all(grad[i, ~on] >= lam[0] * (1 + 1e-9))


def _scipy_minimiser(y, a, b):
    """One row by scipy's L-BFGS-B over x >= 0 with f = x / sum(x) (the gradient does not vanish at a face of
    the simplex, unlike softmax logits), analytic gradient, restarted once from its result (a fresh
    Hessian estimate); classes with y_j = 0 are fixed at 0 (they do not enter the loss). The loss is
    shifted by sum_j y_j log y_j so that float64 resolves it near the optimum."""
    live = y > 0
    yl, al, bl = y[live], a[live], b[live]
    const = float((yl * np.log(yl)).sum())

    def objective(x):
        total = x.sum()
        f = x / total
        m = al + bl * f
        g = -yl * bl / m  # d loss / d f
        return const - float((yl * np.log(m)).sum()), (g - (f * g).sum()) / total

    bounds = [(0.0 if aj > 0 else 1e-3 * yj, None) for aj, yj in zip(al, yl)]  # a_j = 0: the optimum has f_j >= y_j
    x = yl.copy()
    for _ in range(2):
        res = optimize.minimize(
            objective,
            x,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"gtol": 1e-13, "ftol": 1e-16, "maxiter": 10_000},
        )
        x = res.x / res.x.sum()
    f = np.zeros_like(y)
    f[live] = x
    return f


#: Agreement with scipy: |f - f_scipy| <= 1e-6 (measured: median ~3e-14, worst 4.4e-8 over 11,600 rows), and
#: the closed form's loss never exceeds scipy's by more than 1e-12. The rows are those where a quasi-Newton
#: method converges to that accuracy: alpha at least 0.05 above the form's bound (the loss is not too flat)
#: and targets without entries in (0, 1e-4) (with y spanning 1e-14..1, L-BFGS-B's line search stalls).
SCIPY_ATOL = 1e-6


@given(problems(margin=0.05, min_entry=1e-4))
def test_minimiser_equals_scipy(problem):
    y, alpha, mask, normalize = problem
    f = per_example_minimiser(y, alpha, mask, normalize=normalize)
    a, b = _coefficients(alpha, mask, normalize)
    for i in range(y.shape[0]):
        ref = _scipy_minimiser(y[i], a[i], b[i])
        assert _loss(f[i], y[i], a[i], b[i]) <= _loss(ref, y[i], a[i], b[i]) + 1e-12
        np.testing.assert_allclose(f[i], ref, rtol=0, atol=SCIPY_ATOL)


@given(problems())
def test_rows_are_independent(problem):
    y, alpha, mask, normalize = problem
    f = per_example_minimiser(y, alpha, mask, normalize=normalize)
    for i in range(y.shape[0]):
        row = per_example_minimiser(y[i : i + 1], alpha[i : i + 1], mask[i : i + 1], normalize=normalize)
        np.testing.assert_array_equal(row[0], f[i])


@given(problems())
def test_alpha_one_gives_the_target(problem):
    y, _, mask, normalize = problem
    f = per_example_minimiser(y, 1.0, mask, normalize=normalize)
    np.testing.assert_allclose(f, y, rtol=0, atol=1e-15)


@given(problems(on_mask=True, normalize=False))
def test_equals_the_former_water_filling_on_targets_supported_on_m(problem):
    y, alpha, mask, _ = problem
    np.testing.assert_allclose(
        per_example_minimiser(y, alpha, mask, normalize=False),
        _prefix_water_filling(y, alpha, mask),
        rtol=0,
        atol=1e-12,
    )


@given(problems(on_mask=True))
def test_targets_supported_on_m_keep_their_top_class(problem):
    y, alpha, mask, normalize = problem
    f = per_example_minimiser(y, alpha, mask, normalize=normalize)
    assert np.all(f[mask == 0] == 0)
    top2 = -np.sort(-y, axis=1)[:, :2]
    clear = top2[:, 0] - top2[:, 1] > 1e-9  # a well-defined argmax
    assert np.all(np.argmax(f, axis=1)[clear] == np.argmax(y, axis=1)[clear])
    # f is non-decreasing in y on M (one offset c_j per row there)
    for i in range(y.shape[0]):
        on = np.flatnonzero(mask[i])
        order = on[np.argsort(y[i, on], kind="stable")]
        assert np.all(np.diff(f[i, order]) >= -1e-15)
    assert not leaves_topk(y, alpha, mask, normalize=normalize).any()


@pytest.mark.parametrize("normalize", [False, True])
@given(seed=seeds, k=st.integers(2, 5), kind=st.sampled_from(["topk", "hard"]))
def test_slam_topk_and_hard_targets_never_leave_m(normalize, seed, k, kind):
    rng = np.random.default_rng(seed)
    t = rng.dirichlet(np.ones(8), 50)
    alpha = np.clip(rng.uniform(0.5, 1.0, 50), 0.6, 1.0)
    assert not leaves_topk(slam_targets(t, k, kind), alpha, topk_mask(t, k), normalize=normalize).any()


def test_the_example_leaves_the_top_k_set():
    f = per_example_minimiser(EXAMPLE_T, 0.6, EXAMPLE_MASK)
    np.testing.assert_allclose(f, [[1 / 7, 0.0, 3 / 7, 3 / 7]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(f, [[0.142857, 0.0, 0.428571, 0.428571]], atol=1e-6)
    assert leaves_topk(EXAMPLE_T, 0.6, EXAMPLE_MASK).tolist() == [True]
    # restricted to M (SLaM's default target) it keeps the teacher's top class
    y = slam_targets(EXAMPLE_T, 2, "topk")
    assert np.argmax(per_example_minimiser(y, 0.6, EXAMPLE_MASK)) == 0
    assert leaves_topk(y, 0.6, EXAMPLE_MASK).tolist() == [False]
    # k = 2: the normalised form (2) is the same mix
    np.testing.assert_array_equal(per_example_minimiser(EXAMPLE_T, 0.6, EXAMPLE_MASK, normalize=True), f)


def test_degenerate_targets():
    mask = np.array([[1.0, 1.0, 0.0, 0.0]] * 3)
    y = np.array([[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.5, 0.5 + 1e-7, -1e-7, 0.0]])
    f = per_example_minimiser(y, 0.7, mask)
    np.testing.assert_allclose(f[:2], y[:2], atol=1e-15)  # a one-hot target is its own minimiser
    assert f[2, 2] == 0.0 and f[2, 3] == 0.0  # round-off below 0 counts as 0
    assert leaves_topk(y, 0.7, mask).tolist() == [True, False, False]


def test_top_class_ties_go_to_the_lowest_index():
    # f = (0, 0.5, 0.5) with class 1 on M and class 2 off it: the tie goes to class 1, inside M
    y = np.array([[0.0, 0.5, 0.5], [0.0, 0.5, 0.5]])
    mask = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    f = per_example_minimiser(y, 1.0, mask)
    np.testing.assert_array_equal(f, y)
    assert leaves_topk(y, 1.0, mask).tolist() == [False, True]
    assert sr.TOP_TOL == 1e-12


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"targets": [[0.5, 0.6, 0.1]]}, "targets"),
        ({"targets": [0.5, 0.5, 0.0]}, "targets"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": [0.7, 0.7]}, "alpha"),
        ({"alpha": 0.45}, "alpha"),
        ({"alpha": 0.5}, "alpha"),
        ({"alpha": 0.5, "normalize": True}, "alpha"),  # k = 2: 1/k
        ({"mask": [[1, 0, 0]]}, "mask"),
        ({"mask": [[1, 1]]}, "mask"),
        ({"mask": [[1, 0.5, 1]]}, "mask"),
    ],
)
@pytest.mark.parametrize("function", [per_example_minimiser, leaves_topk])
def test_invalid_inputs_raise_naming_the_argument(function, kwargs, match):
    args = {"targets": [[0.5, 0.3, 0.2]], "alpha": 0.7, "mask": [[1, 1, 0]], "normalize": False} | kwargs
    normalize = args.pop("normalize")
    with pytest.raises(ValueError, match=match):
        function(args["targets"], args["alpha"], args["mask"], normalize=normalize)


def test_normalised_form_accepts_alpha_between_its_bound_and_one_half():
    # (2) with k = 3 needs alpha > 1/3 only
    f = per_example_minimiser([[0.4, 0.3, 0.2, 0.1]], 0.4, [[1, 1, 1, 0]], normalize=True)
    np.testing.assert_allclose(f.sum(), 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        per_example_minimiser([[0.4, 0.3, 0.2, 0.1]], 0.4, [[1, 1, 1, 0]], normalize=False)
