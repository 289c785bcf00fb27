"""numpy (float64) and torch (float32) paths of the same formula agree (``docs/theory/weighted.md#weighted-schemes`` "Parity").

The data-level formulas (weights, debiased targets, accuracy fit) are numpy only; torch tensors are
converted once at the entry. The training loss is torch only. These tests feed float32 torch tensors through
the numpy functions and then through the torch loss, against a float64 numpy reference end to end.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax

from robustdistill.algorithms import losses, teacher_quality, weighting

SCHEMES = weighting.SCHEMES


def _instance(seed: int, n: int = 64, k: int = 7):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.5), n)
    alpha = rng.uniform(0.0, 1.0, n)
    alpha[0] = 0.99  # at least one weight above chance for every scheme
    logits = rng.normal(0.0, 5.0, (n, k))
    return probs, alpha, logits


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), scheme=st.sampled_from(SCHEMES))
def test_weighted_loss_torch_float32_matches_numpy_float64(seed, scheme):
    probs, alpha, logits = _instance(seed)
    k = probs.shape[1]
    # float64 numpy reference, end to end
    w64 = weighting.normalize_weights(weighting.distillation_weights(alpha, k, scheme))
    ref = w64 * -(probs * log_softmax(logits, axis=1)).sum(axis=1)
    # float32 torch inputs through the same numpy functions, then the torch loss
    alpha32 = torch.tensor(alpha, dtype=torch.float32)
    w32 = weighting.normalize_weights(weighting.distillation_weights(alpha32, k, scheme))
    probs32 = torch.tensor(probs, dtype=torch.float32)
    probs32 = probs32 / probs32.sum(dim=1, keepdim=True)
    out = torch.tensor(w32, dtype=torch.float32) * losses.soft_cross_entropy(
        torch.tensor(logits, dtype=torch.float32), probs32
    )
    np.testing.assert_allclose(out.double().numpy(), ref, rtol=2e-5, atol=2e-5)


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1))
def test_debiased_targets_and_accuracy_fit_accept_torch(seed):
    probs, alpha, _ = _instance(seed)
    probs32 = torch.tensor(probs, dtype=torch.float32)
    probs32 = probs32 / probs32.sum(dim=1, keepdim=True)
    np.testing.assert_allclose(
        weighting.debiased_targets(probs32, torch.tensor(alpha, dtype=torch.float32)),
        weighting.debiased_targets(probs, alpha),
        atol=1e-5,
    )
    # torch tensors are converted once at the entry: the same numbers give the same fit
    labels = np.random.default_rng(seed).integers(0, probs.shape[1], probs.shape[0])
    big = torch.repeat_interleave(probs32, 2, dim=0)
    fit_torch = teacher_quality.fit_teacher_accuracy(big, torch.tensor(np.repeat(labels, 2)))
    fit_numpy = teacher_quality.fit_teacher_accuracy(big.numpy().astype(np.float64), np.repeat(labels, 2))
    np.testing.assert_array_equal(fit_torch.predict(probs32), fit_numpy.predict(probs32.numpy()))
