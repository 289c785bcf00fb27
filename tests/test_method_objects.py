"""The distillation methods as objects (robustdistill.algorithms.methods): per-example losses equal a float64
oracle written here from the algorithms' functions, for every method and option variant of the benchmark;
options, fitted state, batch format, labeled rows, dtypes, devices and gradients."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax

from robustdistill.algorithms import losses as L
from robustdistill.algorithms import methods as methods_package
from robustdistill.algorithms.methods import (
    METHODS,
    BackwardCorrection,
    ConfidenceThreshold,
    ForwardCorrection,
    Method,
    NotFittedError,
    SLaM,
    TaylorCE,
    Vanilla,
    WeightedDistillation,
    concat_batches,
    to_tensors,
)
from robustdistill.algorithms.slam import clip_alpha, topk_mask
from robustdistill.algorithms.teacher_quality import choose_top_k, estimate_transition, fit_teacher_accuracy
from robustdistill.algorithms.validation import check_condition
from robustdistill.algorithms.weighting import debiased_targets, distillation_weights, normalize_weights

#: (name, options): every option variant of the distillation benchmark and its ablation, and a few more.
VARIANTS = [
    ("vanilla", {"targets": "soft"}),
    ("vanilla", {"targets": "hard"}),
    *[("weighted", {"scheme": s, "targets": t}) for s in ("accuracy", "inverse", "signal") for t in ("soft", "hard")],
    ("weighted", {"targets": "debiased"}),
    ("weighted", {"scheme": "accuracy", "feature": "entropy"}),
    ("slam", {"normalize": False}),
    ("slam", {"normalize": True}),
    ("slam", {"normalize": False, "targets": "soft"}),
    ("slam", {"targets": "topk"}),
    ("slam", {"k": 2}),
    ("slam", {"normalize": True, "k": 2, "feature": "confidence"}),
    ("forward", {}),
    ("forward", {"targets": "hard"}),
    ("backward", {}),
    ("taylor", {"order": 1}),
    ("taylor", {"order": 2}),
    ("confidence_threshold", {}),
    ("confidence_threshold", {"threshold": 0.5, "targets": "hard"}),
]
VARIANT_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in opts.items())}" for name, opts in VARIANTS]
NEEDS_FIT = {"weighted", "slam", "forward", "backward"}

# fit_teacher_accuracy warns below 100 validation rows; the drawn validation sets are small on purpose.
COARSE_FIT_WARNING = pytest.mark.filterwarnings("ignore:fit_teacher_accuracy:UserWarning")


# --------------------------------------------------------------------------------------------------------
# Instances


def make_instance(
    rng: np.random.Generator,
    num_classes: int,
    n_val: int,
    n_pool: int,
    n_labeled: int,
    sharpness: float,
    tie_fraction: float,
    logit_scale: float,
) -> dict:
    """A teacher better than chance (its logit of the true class boosted), some rows exactly uniform (ties),
    validation labels covering every class, and float32 student logits in [-logit_scale, logit_scale]."""

    def teacher(y):
        z = rng.normal(size=(y.size, num_classes)) * sharpness
        z[np.arange(y.size), y] += rng.uniform(0.0, 4.0)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[rng.random(y.size) < tie_fraction] = 1.0 / num_classes
        return p

    y_val = rng.integers(0, num_classes, n_val)
    y_val[:num_classes] = rng.permutation(num_classes)
    y_pool = rng.integers(0, num_classes, n_pool)
    logits = rng.uniform(-logit_scale, logit_scale, size=(n_labeled + n_pool, num_classes)).astype(np.float32)
    return {
        "t_val": teacher(y_val),
        "y_val": y_val,
        "t_pool": teacher(y_pool),
        "y_lab": rng.integers(0, num_classes, n_labeled),
        "logits": logits,
    }


@st.composite
def instances(draw):
    """Whole problems: K in 2..6, 8..40 validation rows, 1..30 pool rows, 0..10 labeled rows, logits up to
    |z| = 1000."""
    return make_instance(
        np.random.default_rng(draw(st.integers(0, 2**32 - 1))),
        num_classes=draw(st.integers(2, 6)),
        n_val=draw(st.integers(8, 40)),
        n_pool=draw(st.integers(1, 30)),
        n_labeled=draw(st.integers(0, 10)),
        sharpness=draw(st.sampled_from([0.1, 1.0, 5.0, 30.0])),
        tie_fraction=draw(st.sampled_from([0.0, 0.2])),
        logit_scale=draw(st.sampled_from([1.0, 10.0, 100.0, 1000.0])),
    )


@pytest.fixture(scope="module")
def inst():
    """A fixed instance with 120 validation rows (no coarse-fit warning)."""
    return make_instance(np.random.default_rng(7), 4, 120, 25, 6, 1.0, 0.1, 10.0)


def build(name, opts, inst):
    """The fitted method and its batch [labeled; pool] as numpy arrays."""
    method = METHODS[name](**opts).fit(inst["t_val"], inst["y_val"])
    return method, concat_batches(method.prepare_labeled(inst["y_lab"]), method.prepare(inst["t_pool"]))


# --------------------------------------------------------------------------------------------------------
# The oracle: the recipe in float64, from the algorithms' data-level functions and the losses' formulas


def oracle(
    name: str, opts: dict, inst: dict, logits: np.ndarray, *, float32_alpha: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example losses of [labeled; pool] rows and the scale of their rounding error (the sum of the
    absolute terms; the loss itself except for backward correction, whose terms cancel)."""
    t_val, y_val, t, y_lab = inst["t_val"], inst["y_val"], inst["t_pool"], inst["y_lab"]
    num_classes = t.shape[1]
    lf = log_softmax(np.asarray(logits, dtype=np.float64), axis=1)
    lf_lab, lf_pool = lf[: y_lab.size], lf[y_lab.size :]
    labeled = -lf_lab[np.arange(y_lab.size), y_lab]  # cross-entropy with the true label, weight 1
    kind = opts.get("targets", DEFAULTS[name].get("targets", "soft"))
    targets = np.eye(num_classes)[t.argmax(axis=1)] if kind == "hard" else t
    weights = np.ones(t.shape[0])
    scale = None
    if name == "weighted":
        alpha = fit_teacher_accuracy(t_val, y_val, feature=opts.get("feature", "margin")).predict(t)
        if opts.get("targets") == "debiased":
            targets = debiased_targets(t, alpha)
        else:
            weights = normalize_weights(distillation_weights(alpha, num_classes, opts.get("scheme", "signal")))
    if name == "confidence_threshold":
        weights = (t.max(axis=1) >= opts.get("threshold", 0.9)).astype(np.float64)
    if name in ("vanilla", "weighted", "confidence_threshold"):
        pool = -weights * (targets * lf_pool).sum(axis=1)
    elif name in ("forward", "backward"):
        transition = estimate_transition(t_val, y_val, smoothing=1.0)
        if name == "forward":
            pool = -(targets * np.log(np.exp(lf_pool) @ transition)).sum(axis=1)
        else:
            check_condition(transition, "transition")  # BackwardCorrectedLoss's rule: ValueError if ill-conditioned
            inverse = np.linalg.inv(transition)
            pool = -((targets @ inverse) * lf_pool).sum(axis=1)
            scale = ((targets @ np.abs(inverse)) * np.abs(lf_pool)).sum(axis=1)
    elif name == "taylor":
        q = -np.expm1(lf_pool)  # 1 - f
        pool = (targets * sum(q**m / m for m in range(1, opts["order"] + 1))).sum(axis=1)
    elif name == "slam":
        normalize = opts.get("normalize", False)
        k = opts.get("k", "auto")
        k = choose_top_k(t_val, y_val, 0.9) if k == "auto" else k
        fit = fit_teacher_accuracy(t_val, y_val, feature=opts.get("feature", "margin"))
        alpha = clip_alpha(fit.predict(t), opts.get("alpha_floor", 0.6), normalize=normalize, k=k)[:, None]
        if float32_alpha:  # the batch's alpha, rounded to float32
            alpha = alpha.astype(np.float32).astype(np.float64)
        mask = topk_mask(t, k).astype(bool)
        if kind == "topk":  # the teacher's probabilities on its top-k set, renormalised
            targets = np.where(mask, t, 0.0) / np.where(mask, t, 0.0).sum(axis=1, keepdims=True)
        elif kind == "soft":
            targets = t
        c = (1.0 - alpha) / (k - 1 if normalize else 1)
        with np.errstate(divide="ignore"):  # log 0 = -inf where f = 1 or c = 0
            on_m = np.logaddexp(np.log(alpha) + lf_pool, np.log(c) + np.log(-np.expm1(lf_pool)))
        log_mix = np.where(mask, on_m, np.log(alpha) + lf_pool)
        with np.errstate(invalid="ignore"):  # 0 * -inf = 0: a class the target gives no mass to
            pool = -np.where(targets > 0, targets * log_mix, 0.0).sum(axis=1)
    else:
        raise AssertionError(name)
    losses = np.r_[labeled, pool]
    return losses, np.abs(losses) if scale is None else np.r_[np.abs(labeled), scale]


def assert_matches_oracle(
    got: torch.Tensor,
    want: np.ndarray,
    scale: np.ndarray,
    logits: np.ndarray,
    what: str,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """|got - want| <= rtol * scale + atol + eps |z|_max per row: float32 rounding of the loss's terms and of
    the row's logits (a difference of two log-sum-exps of logits near 1000, as in Taylor-CE's
    log(1 - f) at the argmax, is only known to eps |z|; eps = 2^-24, or 2^-53 for float64 losses)."""
    eps = 2.0**-53 if got.dtype == torch.float64 else 2.0**-24
    got = got.detach().cpu().double().numpy()
    err = np.abs(got - want)
    bad = ~(err <= rtol * scale + atol + eps * np.abs(logits).max(axis=1))
    assert not bad.any(), f"{what}: rows {np.flatnonzero(bad).tolist()}: got {got[bad]}, want {want[bad]}"


# --------------------------------------------------------------------------------------------------------
# 1. Parity with the oracle


@COARSE_FIT_WARNING
@settings(max_examples=25)
@given(instances())
def test_losses_equal_the_float64_oracle_for_every_variant(inst):
    z = torch.from_numpy(inst["logits"])
    for name, opts in VARIANTS:
        try:
            want, scale = oracle(name, opts, inst, inst["logits"])
        except ValueError:  # e.g. all-zero inverse weights, an ill-conditioned T: the method refuses too
            with pytest.raises(ValueError):
                build(name, opts, inst)
            continue
        method, batch = build(name, opts, inst)
        got = method.loss(z, to_tensors(batch))
        assert got.dtype == torch.float32 and got.shape == (want.size,)
        assert_matches_oracle(got, want, scale, inst["logits"], f"{name} {opts}")


# --------------------------------------------------------------------------------------------------------
# 2. Registry, options, representation


def test_registry_holds_the_seven_methods_in_order():
    assert list(METHODS) == ["vanilla", "weighted", "slam", "forward", "backward", "taylor", "confidence_threshold"]
    assert list(METHODS.values()) == [
        Vanilla,
        WeightedDistillation,
        SLaM,
        ForwardCorrection,
        BackwardCorrection,
        TaylorCE,
        ConfidenceThreshold,
    ]
    assert all(cls.name == name and issubclass(cls, Method) for name, cls in METHODS.items())


DEFAULTS = {
    "vanilla": {"targets": "soft"},
    "weighted": {"scheme": "signal", "targets": "hard", "feature": "margin"},
    "slam": {
        "normalize": False,
        "targets": "hard",
        "k": "auto",
        "top_k_target": 0.9,
        "alpha_floor": 0.6,
        "feature": "margin",
    },
    "forward": {"targets": "soft", "smoothing": 1.0},
    "backward": {"targets": "soft", "smoothing": 1.0},
    "taylor": {"targets": "soft", "order": 2},
    "confidence_threshold": {"targets": "soft", "threshold": 0.9},
}


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_defaults_get_params_repr_and_to_dict(name):
    method = METHODS[name]()
    assert method.get_params() == DEFAULTS[name]
    assert list(method.get_params()) == list(DEFAULTS[name])  # the constructor's order
    d = method.to_dict()
    assert d == {"method": name, "options": DEFAULTS[name], "fitted": {}}
    assert json.loads(json.dumps(d)) == d
    again = METHODS[d["method"]](**d["options"])
    assert type(again) is type(method) and again.get_params() == method.get_params()


def test_repr_shows_every_option():
    assert (
        repr(SLaM())
        == "SLaM(normalize=False, targets='hard', k='auto', top_k_target=0.9, alpha_floor=0.6, feature='margin')"
    )
    assert repr(WeightedDistillation(scheme="accuracy", targets="hard")) == (
        "WeightedDistillation(scheme='accuracy', targets='hard', feature='margin')"
    )
    assert repr(TaylorCE(order=3)) == "TaylorCE(targets='soft', order=3)"
    assert SLaM(k=3).get_params()["k"] == 3 and ConfidenceThreshold(threshold=1).get_params()["threshold"] == 1.0


BAD_OPTIONS = [
    (Vanilla, {"targets": "debiased"}, ValueError, r"targets='debiased' is not one of \['soft', 'hard'\]"),
    (Vanilla, {"targets": 1}, TypeError, "targets must be a str"),
    (Vanilla, {"temperature": 2.0}, TypeError, "unexpected keyword argument 'temperature'"),
    (WeightedDistillation, {"scheme": "W1"}, ValueError, r"scheme='W1' is not one of \['accuracy', 'inverse'"),
    (WeightedDistillation, {"scheme": "uniform"}, ValueError, r"scheme 'uniform' .* vanilla distillation"),
    (WeightedDistillation, {"targets": "soft "}, ValueError, r"\['soft', 'hard', 'debiased'\]"),
    (WeightedDistillation, {"feature": "logit"}, ValueError, r"feature='logit' is not one of \['margin'"),
    (WeightedDistillation, {"k": 2}, TypeError, "unexpected keyword argument 'k'"),
    (SLaM, {"normalize": 1}, TypeError, "normalize must be a bool"),
    (SLaM, {"normalize": "yes"}, TypeError, "normalize must be a bool"),
    (SLaM, {"k": 1}, ValueError, "k must be an integer >= 2"),
    (SLaM, {"k": "3"}, ValueError, "k must be 'auto' or an integer >= 2"),
    (SLaM, {"k": True}, TypeError, "k must be an integer, got a bool"),
    (SLaM, {"k": 2.5}, ValueError, "k must be an integer"),
    (SLaM, {"top_k_target": 0.0}, ValueError, r"top_k_target must be finite and in \(0, 1\]"),
    (SLaM, {"top_k_target": 1.5}, ValueError, "top_k_target"),
    (SLaM, {"top_k_target": "0.9"}, TypeError, "top_k_target must be a real number"),
    (SLaM, {"alpha_floor": 0.4}, ValueError, "alpha_floor must be >= 1/2"),
    (SLaM, {"alpha_floor": 1.2}, ValueError, r"alpha_floor must be finite and in \[0, 1\]"),
    (SLaM, {"alpha_floor": 0.5, "normalize": True, "k": 2}, ValueError, "alpha_floor must be >= 1/k"),
    (SLaM, {"feature": "margins"}, ValueError, "feature='margins'"),
    (ForwardCorrection, {"smoothing": -1.0}, ValueError, "smoothing must be finite and >= 0"),
    (ForwardCorrection, {"smoothing": float("nan")}, ValueError, "smoothing"),
    (ForwardCorrection, {"smoothing": "1"}, TypeError, "smoothing must be a real number"),
    (ForwardCorrection, {"targets": "debiased"}, ValueError, "ForwardCorrection option targets"),
    (BackwardCorrection, {"smoothing": True}, TypeError, "BackwardCorrection option smoothing"),
    (BackwardCorrection, {"targets": None}, TypeError, "BackwardCorrection option targets must be a str"),
    (TaylorCE, {"order": 0}, ValueError, "order must be an integer >= 1"),
    (TaylorCE, {"order": True}, TypeError, "order must be an integer, got a bool"),
    (TaylorCE, {"order": 2.0}, ValueError, "order must be an integer"),
    (ConfidenceThreshold, {"threshold": 1.5}, ValueError, r"threshold must be finite and in \[0, 1\]"),
    (ConfidenceThreshold, {"threshold": -0.1}, ValueError, "threshold"),
    (ConfidenceThreshold, {"threshold": None}, TypeError, "threshold must be a real number"),
]


@pytest.mark.parametrize(("cls", "options", "error", "match"), BAD_OPTIONS)
def test_bad_options_are_refused_at_construction(cls, options, error, match):
    with pytest.raises(error, match=match):
        cls(**options)


def test_options_are_keyword_only():
    with pytest.raises(TypeError, match="positional"):
        Vanilla("hard")
    with pytest.raises(TypeError, match="positional"):
        TaylorCE("soft", 3)


# --------------------------------------------------------------------------------------------------------
# 3. Fitting


@pytest.mark.parametrize("name", sorted(NEEDS_FIT))
def test_methods_with_estimates_refuse_to_work_before_fit(name, inst):
    method = METHODS[name]()
    assert not method.is_fitted
    with pytest.raises(NotFittedError, match=r"not fitted yet: call fit\(teacher_probs_val, labels_val\)"):
        method.prepare(inst["t_pool"])
    with pytest.raises(NotFittedError, match="call fit"):
        method.prepare_labeled(inst["y_lab"])
    with pytest.raises(NotFittedError, match="call fit"):
        method.prepare_labeled(inst["y_lab"], num_classes=4)
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    if name in ("forward", "backward"):  # their loss needs T
        batch = to_tensors(Vanilla().prepare(inst["t_pool"]))
        with pytest.raises(NotFittedError):
            method.loss(torch.zeros(25, 4), batch)


@pytest.mark.parametrize("name", ["vanilla", "taylor", "confidence_threshold"])
def test_methods_without_estimates_prepare_before_fit(name, inst):
    method = METHODS[name]()
    batch = concat_batches(method.prepare_labeled(inst["y_lab"], num_classes=4), method.prepare(inst["t_pool"]))
    fitted = METHODS[name]().fit(inst["t_val"], inst["y_val"])
    ref = concat_batches(fitted.prepare_labeled(inst["y_lab"]), fitted.prepare(inst["t_pool"]))
    for key in ref:
        np.testing.assert_array_equal(batch[key], ref[key])
    z = torch.from_numpy(inst["logits"])
    torch.testing.assert_close(method.loss(z, to_tensors(batch)), fitted.loss(z, to_tensors(ref)), rtol=0, atol=0)
    with pytest.raises(NotFittedError, match="or pass num_classes"):
        method.prepare_labeled(inst["y_lab"])
    with pytest.raises(NotFittedError):
        method.info(batch)  # the teacher's validation accuracy is a fitted quantity


def test_fitted_attributes(inst):
    t_val, y_val = inst["t_val"], inst["y_val"]
    accuracy = float(np.mean(t_val.argmax(axis=1) == y_val))
    for cls in METHODS.values():
        method = cls().fit(t_val, y_val)
        assert method.is_fitted and method.num_classes_ == 4 and method.teacher_val_accuracy_ == accuracy
    slam = SLaM(top_k_target=0.95).fit(t_val, y_val)
    assert slam.k_ == choose_top_k(t_val, y_val, 0.95)
    assert SLaM(k=3).fit(t_val, y_val).k_ == 3
    ref = fit_teacher_accuracy(t_val, y_val, feature="entropy")
    for method in (
        SLaM(feature="entropy").fit(t_val, y_val),
        WeightedDistillation(feature="entropy").fit(t_val, y_val),
    ):
        np.testing.assert_array_equal(method.accuracy_model_.knots_x, ref.knots_x)
        np.testing.assert_array_equal(method.accuracy_model_.knots_y, ref.knots_y)
    for cls in (ForwardCorrection, BackwardCorrection):
        np.testing.assert_array_equal(
            cls(smoothing=0.5).fit(t_val, y_val).transition_, estimate_transition(t_val, y_val, smoothing=0.5)
        )


def test_fit_checks_its_inputs_and_the_options_against_k(inst):
    t_val, y_val = inst["t_val"], inst["y_val"]
    with pytest.raises(ValueError, match="labels_val has 119 entries"):
        Vanilla().fit(t_val, y_val[:-1])
    with pytest.raises(ValueError, match="teacher_probs_val rows must sum to 1"):
        Vanilla().fit(t_val * 2, y_val)
    with pytest.raises(TypeError, match="labels_val must hold integers"):
        Vanilla().fit(t_val, y_val.astype(float))
    with pytest.raises(ValueError, match="k = 5 exceeds the number of classes 4"):
        SLaM(k=5).fit(t_val, y_val)
    # k="auto" with the normalised mix: the floor is checked against the k found (here 2: 1/2 + 0.05)
    auto = SLaM(normalize=True, alpha_floor=0.5, top_k_target=0.01)
    with pytest.raises(ValueError, match=r"alpha_floor must be >= 1/k \+ 0.05 = 0.55 .* with k = 2"):
        auto.fit(t_val, y_val)
    assert not auto.is_fitted  # nothing half-fitted


def test_refit_replaces_the_state_and_the_device_copies(inst, monkeypatch):
    built = []
    original = L.BackwardCorrectedLoss

    def counting(*args, **kwargs):
        built.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(L, "BackwardCorrectedLoss", counting)
    method = BackwardCorrection().fit(inst["t_val"], inst["y_val"])
    batch = to_tensors(concat_batches(method.prepare_labeled(inst["y_lab"]), method.prepare(inst["t_pool"])))
    z = torch.from_numpy(inst["logits"])
    module = method._module(torch.device("cpu"))
    first = [method.loss(z, batch) for _ in range(3)]
    assert len(built) == 1 and method._module(torch.device("cpu")) is module  # built once at fit, not per call
    torch.testing.assert_close(first[0], first[2], rtol=0, atol=0)
    # refit on the validation set with the teacher's labels permuted: another T, another module
    y2 = (inst["y_val"] + 1) % 4
    method.fit(inst["t_val"], y2)
    assert len(built) == 2
    np.testing.assert_array_equal(method.transition_, estimate_transition(inst["t_val"], y2))
    want = L.backward_corrected_loss(z[6:], batch["targets"][6:], method.transition_)
    torch.testing.assert_close(method.loss(z, batch)[6:], want, rtol=1e-5, atol=1e-6)
    # K changes with the refit: the pool must follow
    method.fit(inst["t_val"][:, :3] / inst["t_val"][:, :3].sum(1, keepdims=True), inst["y_val"] % 3)
    assert method.num_classes_ == 3
    with pytest.raises(ValueError, match="teacher_probs has 4 classes but BackwardCorrection was fitted on 3"):
        method.prepare(inst["t_pool"])
    with pytest.raises(ValueError, match="num_classes = 4 but BackwardCorrection was fitted on 3"):
        method.prepare_labeled(inst["y_lab"], num_classes=4)
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        method.prepare_labeled(np.array([0, 3]))


@pytest.mark.parametrize(("name", "opts"), VARIANTS, ids=VARIANT_IDS)
def test_fitted_to_dict_is_json_and_restores_the_method(name, opts, inst):
    method, batch = build(name, opts, inst)
    d = json.loads(json.dumps(method.to_dict()))
    assert d["method"] == name and d["options"] == method.get_params()
    assert set(d["fitted"]) >= {"num_classes_", "teacher_val_accuracy_"} and d["fitted"]["num_classes_"] == 4
    restored = Method.from_dict(d)
    assert type(restored) is type(method) and restored.get_params() == method.get_params()
    again = concat_batches(restored.prepare_labeled(inst["y_lab"]), restored.prepare(inst["t_pool"]))
    for key in batch:
        np.testing.assert_array_equal(again[key], batch[key])
    z = torch.from_numpy(inst["logits"])
    torch.testing.assert_close(restored.loss(z, to_tensors(again)), method.loss(z, to_tensors(batch)), rtol=0, atol=0)
    assert restored.info(again) == method.info(batch)
    with pytest.raises(ValueError, match="got a"):
        (Vanilla if name != "vanilla" else TaylorCE).from_dict(d)


# --------------------------------------------------------------------------------------------------------
# 4. Batches


EXPECTED_KEYS = {
    "vanilla": ("targets", "weights", "labeled"),
    "weighted": ("targets", "weights", "labeled", "teacher_accuracy"),
    "slam": ("targets", "weights", "labeled", "alpha", "topk_index", "teacher_accuracy"),
    "forward": ("targets", "weights", "labeled"),
    "backward": ("targets", "weights", "labeled"),
    "taylor": ("targets", "weights", "labeled"),
    "confidence_threshold": ("targets", "weights", "labeled"),
}
DTYPES = {
    "targets": np.float32,
    "weights": np.float32,
    "labeled": np.bool_,
    "alpha": np.float32,
    "topk_index": np.int64,
    "teacher_accuracy": np.float32,
}


@pytest.mark.parametrize(("name", "opts"), VARIANTS, ids=VARIANT_IDS)
def test_prepare_gives_the_batch_format(name, opts, inst):
    method = METHODS[name](**opts).fit(inst["t_val"], inst["y_val"])
    t = inst["t_pool"]
    pool, lab = method.prepare(t), method.prepare_labeled(inst["y_lab"])
    for part, n in ((pool, 25), (lab, 6)):
        assert tuple(part) == EXPECTED_KEYS[name]
        for key, value in part.items():
            assert value.dtype == DTYPES[key] and value.shape[0] == n, key
        assert part["targets"].shape == (n, 4)
    assert not pool["labeled"].any() and lab["labeled"].all()
    np.testing.assert_array_equal(lab["targets"], np.eye(4, dtype=np.float32)[inst["y_lab"]])
    np.testing.assert_array_equal(lab["weights"], np.ones(6, dtype=np.float32))
    hard = np.eye(4)[t.argmax(axis=1)]
    kind = opts.get("targets", DEFAULTS[name].get("targets", "soft"))
    if kind == "hard":
        np.testing.assert_array_equal(pool["targets"], hard.astype(np.float32))
    elif name == "slam" and kind == "topk":  # t on its top-k set, renormalised
        on_top = np.where(topk_mask(t, method.k_) > 0, t, 0.0)
        np.testing.assert_allclose(pool["targets"], on_top / on_top.sum(axis=1, keepdims=True), rtol=1e-6, atol=1e-7)
    elif kind != "debiased":
        np.testing.assert_array_equal(pool["targets"], t.astype(np.float32))
    if name == "slam":
        k = method.k_
        assert pool["topk_index"].shape == (25, k) and lab["topk_index"].shape == (6, k)
        mask = np.zeros((25, 4), dtype=bool)
        np.put_along_axis(mask, pool["topk_index"], True, axis=1)
        np.testing.assert_array_equal(mask, topk_mask(t, k).astype(bool))
        assert all(y in row for y, row in zip(inst["y_lab"], lab["topk_index"]))  # the label is in the top-k
        raw = method.accuracy_model_.predict(t)
        np.testing.assert_array_equal(pool["teacher_accuracy"], raw.astype(np.float32))
        np.testing.assert_array_equal(
            pool["alpha"],
            clip_alpha(raw, opts.get("alpha_floor", 0.6), normalize=method.normalize, k=k).astype(np.float32),
        )
        assert np.all(lab["alpha"] == 1.0) and np.all(lab["teacher_accuracy"] == 1.0)
    elif name == "weighted":
        alpha = method.accuracy_model_.predict(t)
        np.testing.assert_array_equal(pool["teacher_accuracy"], alpha.astype(np.float32))
        if opts.get("targets") == "debiased":
            np.testing.assert_array_equal(pool["targets"], debiased_targets(t, alpha).astype(np.float32))
            np.testing.assert_array_equal(pool["weights"], np.ones(25, dtype=np.float32))
        else:
            w = normalize_weights(distillation_weights(alpha, 4, opts["scheme"]))
            np.testing.assert_array_equal(pool["weights"], w.astype(np.float32))
    elif name == "confidence_threshold":
        np.testing.assert_array_equal(pool["weights"], (t.max(axis=1) >= opts.get("threshold", 0.9)).astype(np.float32))
    else:
        np.testing.assert_array_equal(pool["weights"], np.ones(25, dtype=np.float32))


def test_prepare_labeled_accepts_an_empty_set_and_checks_labels(inst):
    slam = SLaM().fit(inst["t_val"], inst["y_val"])
    empty = slam.prepare_labeled([])
    assert tuple(empty) == EXPECTED_KEYS["slam"] and all(v.shape[0] == 0 for v in empty.values())
    assert empty["topk_index"].shape == (0, slam.k_) and empty["topk_index"].dtype == np.int64
    batch = concat_batches(empty, slam.prepare(inst["t_pool"]))
    assert batch["targets"].shape == (25, 4)
    with pytest.raises(TypeError, match="labels must hold integers"):
        slam.prepare_labeled([0.0, 1.0])
    with pytest.raises(ValueError, match="labels must be 1-D"):
        slam.prepare_labeled([[0, 1]])
    with pytest.raises(ValueError, match="teacher_probs rows must lie on the simplex"):
        slam.prepare(inst["t_pool"] - 0.5)


@pytest.mark.parametrize(("name", "opts"), VARIANTS, ids=VARIANT_IDS)
def test_an_empty_pool_gives_an_empty_batch_with_the_same_keys(name, opts, inst):
    """An active loop before its first query: prepare((0, K)) concatenates with the labeled rows."""
    method = METHODS[name](**opts).fit(inst["t_val"], inst["y_val"])
    empty = method.prepare(np.empty((0, 4)))
    full = method.prepare(inst["t_pool"])
    assert tuple(empty) == tuple(full)
    for key, value in empty.items():
        assert value.shape == (0, *full[key].shape[1:]) and value.dtype == full[key].dtype, key
    batch = concat_batches(method.prepare_labeled(inst["y_lab"]), empty)
    np.testing.assert_array_equal(batch["labeled"], np.ones(6, dtype=bool))
    with pytest.raises(ValueError, match="classes"):
        method.prepare(np.empty((0, 3)))  # the fitted K still holds


def test_concat_batches_and_to_tensors(inst):
    method = SLaM().fit(inst["t_val"], inst["y_val"])
    lab, pool = method.prepare_labeled(inst["y_lab"]), method.prepare(inst["t_pool"])
    batch = concat_batches(lab, pool)
    assert tuple(batch) == tuple(lab)
    for key in batch:
        np.testing.assert_array_equal(batch[key], np.concatenate([lab[key], pool[key]]))
    with pytest.raises(ValueError, match="at least one batch"):
        concat_batches()
    with pytest.raises(ValueError, match=r"batch 1 has \['labeled', 'targets', 'weights'\]"):
        concat_batches(lab, Vanilla().fit(inst["t_val"], inst["y_val"]).prepare(inst["t_pool"]))
    tensors = to_tensors(batch)
    want = {
        "targets": torch.float32,
        "weights": torch.float32,
        "labeled": torch.bool,
        "alpha": torch.float32,
        "topk_index": torch.int64,
        "teacher_accuracy": torch.float32,
    }
    assert {k: v.dtype for k, v in tensors.items()} == want
    for key in batch:
        np.testing.assert_array_equal(tensors[key].numpy(), batch[key])
    frozen = {k: v.copy() for k, v in batch.items()}
    for v in frozen.values():
        v.setflags(write=False)
    np.testing.assert_array_equal(to_tensors(frozen)["targets"].numpy(), batch["targets"])  # no warning, a copy


# --------------------------------------------------------------------------------------------------------
# 5. Losses: labeled rows, dtypes, devices, gradients


@pytest.mark.parametrize(("name", "opts"), VARIANTS, ids=VARIANT_IDS)
def test_labeled_rows_get_cross_entropy(name, opts, inst):
    method, batch = build(name, opts, inst)
    z = torch.from_numpy(inst["logits"])
    got = method.loss(z, to_tensors(batch))[:6]
    want = L.soft_cross_entropy(z[:6], torch.from_numpy(inst["y_lab"]))  # integer labels: one-hot inside
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    alone = method.loss(z[:6], to_tensors(method.prepare_labeled(inst["y_lab"])))
    torch.testing.assert_close(alone, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("name", "opts"), VARIANTS, ids=VARIANT_IDS)
def test_float64_logits_give_float64_losses_closer_to_the_oracle(name, opts, inst):
    method, batch = build(name, opts, inst)
    z64 = torch.from_numpy(inst["logits"]).double()
    got = method.loss(z64, to_tensors(batch))
    assert got.dtype == torch.float64
    want, scale = oracle(name, opts, inst, inst["logits"], float32_alpha=True)
    # the batch's float32 targets and weights are the only float32 roundings left (alpha is rounded as in the batch)
    assert_matches_oracle(got, want, scale, inst["logits"], f"{name} {opts}", rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("name", "opts"), VARIANTS, ids=VARIANT_IDS)
def test_gradients_are_finite_at_large_logits(name, opts, inst):
    method, batch = build(name, opts, inst)
    z = (torch.from_numpy(inst["logits"]) * 100.0).requires_grad_(True)  # |z| up to 1000
    loss = method.loss(z, to_tensors(batch))
    assert torch.isfinite(loss).all()
    loss.sum().backward()
    assert torch.isfinite(z.grad).all()
    assert (z.grad[:6].abs().sum(dim=1) > 0).any()  # labeled rows train the student
    # each row's gradient sums to 0 over the classes (a loss of softmax(z) is shift invariant)
    torch.testing.assert_close(z.grad.sum(dim=1), torch.zeros(31), rtol=0, atol=1e-4)


def test_loss_needs_the_method_keys(inst):
    slam = SLaM().fit(inst["t_val"], inst["y_val"])
    batch = to_tensors(slam.prepare(inst["t_pool"]))
    del batch["topk_index"]
    with pytest.raises(ValueError, match=r"batch lacks \['topk_index'\]"):
        slam.loss(torch.zeros(25, 4), batch)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("name", "opts"), VARIANTS, ids=VARIANT_IDS)
def test_loss_runs_on_cuda_like_on_the_cpu(name, opts, inst):
    method, batch = build(name, opts, inst)
    z = torch.from_numpy(inst["logits"])
    cpu = method.loss(z, to_tensors(batch))
    cuda = method.loss(z.cuda(), to_tensors(batch, "cuda"))
    assert cuda.device.type == "cuda" and cuda.dtype == torch.float32
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(method.loss(z.cuda(), to_tensors(batch, "cuda")), cuda, rtol=0, atol=0)
    if name == "backward":  # one module per device, kept
        device = torch.device("cuda", torch.cuda.current_device())
        assert method._module(device) is method._module(device) and method._module(device).inverse.is_cuda


# --------------------------------------------------------------------------------------------------------
# 6. Diagnostics


INFO_KEYS = {
    "vanilla": ["teacher_val_accuracy"],
    "weighted": ["teacher_val_accuracy", "alpha", "weights"],
    "slam": ["teacher_val_accuracy", "alpha", "k", "alpha_clipped"],
    "forward": ["teacher_val_accuracy", "transition_diagonal"],
    "backward": ["teacher_val_accuracy", "transition_diagonal"],
    "taylor": ["teacher_val_accuracy"],
    "confidence_threshold": ["teacher_val_accuracy", "kept_fraction"],
}


@pytest.mark.parametrize(("name", "opts"), VARIANTS, ids=VARIANT_IDS)
def test_info_summarises_the_pool_rows_and_the_fitted_state(name, opts, inst):
    method, batch = build(name, opts, inst)
    pool = method.prepare(inst["t_pool"])
    info = method.info(batch)
    assert list(info) == INFO_KEYS[name]
    assert json.loads(json.dumps(info)) == info
    assert info == method.info(pool) == method.info(to_tensors(batch))  # labeled rows are left out
    assert info["teacher_val_accuracy"] == float(np.mean(inst["t_val"].argmax(axis=1) == inst["y_val"]))
    t = inst["t_pool"]
    if name in ("weighted", "slam"):
        alpha = method.accuracy_model_.predict(t).astype(np.float32).astype(np.float64)
        assert list(info["alpha"]) == ["min", "p10", "median", "p90", "max", "mean"]
        assert info["alpha"]["min"] == alpha.min() and info["alpha"]["max"] == alpha.max()
        assert info["alpha"]["median"] == np.median(alpha) and info["alpha"]["mean"] == pytest.approx(
            alpha.mean(), rel=1e-12
        )
    if name == "weighted":
        assert info["weights"]["mean"] == pytest.approx(1.0, rel=1e-6)
    if name == "slam":
        assert info["k"] == method.k_
        assert info["alpha_clipped"]["min"] >= opts.get("alpha_floor", 0.6) - 1e-7 and info["alpha_clipped"][
            "min"
        ] == float(pool["alpha"].min())
    if name in ("forward", "backward"):
        assert info["transition_diagonal"] == np.diag(estimate_transition(inst["t_val"], inst["y_val"])).tolist()
    if name == "confidence_threshold":
        assert info["kept_fraction"] == np.mean(t.max(axis=1) >= opts.get("threshold", 0.9))


def test_the_package_example_runs():
    result = doctest.testmod(methods_package, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0
