"""The distillation methods (experiments.pipeline.methods): option checks, plan shapes, per-example losses, and the
reductions that tie methods together (SLaM on labeled rows is cross-entropy; uniform weights are vanilla)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustdistill.algorithms import losses as L
from robustdistill.algorithms.teacher_quality import choose_top_k
from robustdistill.experiments.pipeline.methods import METHODS, VIDStudent, check_method, plan_student
from robustdistill.theory.teacher_noise import synthetic_teacher


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    t_val, y_val, _ = synthetic_teacher(rng, 300, 5)
    t_pool, _, _ = synthetic_teacher(rng, 200, 5)
    return {"labels_labeled": rng.integers(0, 5, 40), "teacher_val": t_val, "labels_val": y_val, "teacher_pool": t_pool}


def _batch(plan):
    return {k: torch.as_tensor(v) for k, v in plan.arrays.items()}


@pytest.mark.parametrize("method", METHODS)
def test_every_plan_gives_finite_per_example_losses_with_gradients(method, inputs):
    extra = {"teacher_pool_features": np.ones((200, 3))} if method == "vid" else {}
    plan = plan_student(method, None, **inputs, **extra)
    if method == "teacher":
        assert plan is None
        return
    n = 40 if method == "labeled_only" else 240
    assert plan.rows.shape == (n,) and all(v.shape[0] == n for v in plan.arrays.values())
    assert np.allclose(plan.arrays["targets"].sum(axis=1), 1.0, atol=1e-6)
    z = torch.randn(n, 5, generator=torch.Generator().manual_seed(1), requires_grad=True)
    loss = plan.loss_fn(z, _batch(plan))
    assert loss.shape == (n,) and torch.isfinite(loss).all()
    loss.mean().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    labeled = plan.arrays["labeled"]
    np.testing.assert_array_equal(plan.arrays["targets"][labeled].argmax(axis=1), inputs["labels_labeled"])
    assert np.all(plan.arrays["weights"][labeled] == 1.0)


def test_labeled_rows_get_cross_entropy_in_every_method(inputs):
    z = torch.randn(240, 5, generator=torch.Generator().manual_seed(2))
    for method in ("vanilla", "weighted", "slam", "forward", "backward", "taylor", "confidence_threshold", "ups"):
        plan = plan_student(method, None, **inputs)
        batch = _batch(plan)
        ce = L.soft_cross_entropy(z[:40], batch["targets"][:40])
        torch.testing.assert_close(plan.loss_fn(z, batch)[:40], ce, rtol=1e-5, atol=1e-6)


def test_weighted_weights_by_default_and_slam_uses_the_validation_k(inputs):
    z = torch.randn(240, 5, generator=torch.Generator().manual_seed(3))
    vanilla = plan_student("vanilla", None, **inputs)
    weighted = plan_student("weighted", None, **inputs)
    assert np.ptp(weighted.arrays["weights"][40:]) > 0  # not all 1: the default is not vanilla in disguise
    assert not torch.allclose(weighted.loss_fn(z, _batch(weighted)), vanilla.loss_fn(z, _batch(vanilla)))
    with pytest.raises(ValueError, match="vanilla distillation"):
        plan_student("weighted", {"scheme": "uniform"}, **inputs)
    slam = plan_student("slam", None, **inputs)
    assert slam.info["k"] == choose_top_k(inputs["teacher_val"], inputs["labels_val"], 0.9)
    assert slam.arrays["topk_index"].shape == (240, slam.info["k"])
    assert np.all(slam.arrays["alpha"][40:] >= 0.6 - 1e-7) and np.all(slam.arrays["alpha"][:40] == 1.0)
    hard = plan_student("vanilla", {"targets": "hard"}, **inputs)
    assert set(np.unique(hard.arrays["targets"])) <= {0.0, 1.0}
    kept = plan_student("confidence_threshold", {"threshold": 0.5}, **inputs)
    pool_w = kept.arrays["weights"][40:]
    np.testing.assert_array_equal(pool_w, (inputs["teacher_pool"].max(axis=1) >= 0.5).astype(np.float32))


def test_ups_selects_by_confidence_and_uncertainty(inputs):
    t_pool = inputs["teacher_pool"]
    plan = plan_student("ups", None, **inputs)
    top = t_pool.max(axis=1)
    np.testing.assert_array_equal(plan.arrays["weights"][40:], (top >= 0.7).astype(np.float32))
    np.testing.assert_array_equal(plan.arrays["negative"][40:], t_pool <= 0.05)
    assert not plan.arrays["negative"][:40].any()
    # an uncertain teacher keeps fewer labels: std 0.1 on every class drops every positive and negative
    uncertain = plan_student("ups", None, **inputs, teacher_pool_std=np.full_like(t_pool, 0.1))
    assert uncertain.arrays["weights"][40:].sum() == 0 and not uncertain.arrays["negative"].any()
    z = torch.randn(240, 5, generator=torch.Generator().manual_seed(4))
    batch = _batch(plan)
    expected = batch["weights"] * L.soft_cross_entropy(z, batch["targets"]) + L.negative_learning_loss(
        z, batch["negative"]
    )
    torch.testing.assert_close(plan.loss_fn(z, batch), expected)
    with pytest.raises(ValueError, match="teacher_std"):
        plan_student("ups", None, **inputs, teacher_pool_std=np.zeros((3, 5)))


def test_vid_student_learns_its_regressor_and_matches_the_formula(inputs):
    from robustdistill.experiments.pipeline.models import build_model

    feats = np.random.default_rng(5).normal(size=(200, 3))
    plan = plan_student("vid", None, **inputs, teacher_pool_features=feats)
    student = build_model("mlp", (5,), 5, hidden=[8], seed=0)
    model, loss_fn = plan.wrap(student, 0)
    assert isinstance(model, VIDStudent) and len(list(model.parameters())) == len(list(student.parameters())) + 5
    x = torch.randn(240, 5, generator=torch.Generator().manual_seed(6))
    batch = _batch(plan)
    z = model(x)
    s = student[:-1](x) if isinstance(student, torch.nn.Sequential) else None
    mu = model.regressor(s)
    var = torch.nn.functional.softplus(model.raw_variance) + 1e-6
    nll = (0.5 * torch.log(var) + (batch["teacher_features"] - mu) ** 2 / (2 * var)).mean(dim=1)
    expected = L.soft_cross_entropy(z, batch["targets"]) + torch.where(batch["labeled"], 0.0, nll)
    torch.testing.assert_close(loss_fn(z, batch), expected)
    loss_fn(z, batch).mean().backward()
    assert model.raw_variance.grad is not None and model.regressor[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="teacher_features"):
        plan_student("vid", None, **inputs)


def test_bad_methods_and_options():
    with pytest.raises(ValueError, match="unknown method"):
        check_method("distill")
    with pytest.raises(ValueError, match="unknown option 'temperature'"):
        check_method("vanilla", {"temperature": 2})
    with pytest.raises(ValueError, match="scheme"):
        check_method("weighted", {"scheme": "magic"})
    with pytest.raises(ValueError, match="targets"):
        check_method("vanilla", {"targets": "debiased"})
    with pytest.raises(ValueError, match="k"):
        check_method("slam", {"k": 1})
    with pytest.raises(ValueError, match="threshold"):
        check_method("confidence_threshold", {"threshold": 2.0})
    with pytest.raises(ValueError, match="tau_p"):
        check_method("ups", {"tau_p": 1.5})
    assert check_method("weighted", {"targets": "debiased"})[1]["targets"] == "debiased"
