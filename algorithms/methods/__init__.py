"""Distillation methods as estimators: ``fit`` on the validation set, ``prepare`` per-example arrays of the
pool (and ``prepare_labeled`` of the labeled set), ``loss`` per example in torch.

>>> import torch
>>> method = METHODS["forward"]().fit([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [0, 1, 1])  # T from 3 rows
>>> method
ForwardCorrection(targets='soft', smoothing=1.0)
>>> batch = concat_batches(method.prepare_labeled([1]), method.prepare([[0.7, 0.3]]))
>>> batch["labeled"]
array([ True, False])
>>> method.loss(torch.tensor([[0.0, 0.0], [1.0, -1.0]]), to_tensors(batch))  # (B,): the caller reduces
tensor([0.6931, 0.6172])
>>> method.info(batch)["transition_diagonal"]
[0.6666666666666666, 0.5]

:data:`METHODS` maps the config names to the classes, in this order: ``vanilla`` (:class:`Vanilla`),
``weighted`` (:class:`WeightedDistillation`), ``slam`` (:class:`SLaM`), ``forward``
(:class:`ForwardCorrection`), ``backward`` (:class:`BackwardCorrection`), ``taylor`` (:class:`TaylorCE`),
``confidence_threshold`` (:class:`ConfidenceThreshold`). A new method is one class decorated with
:func:`register`; :func:`check_real` checks a real-valued option the way every method does.
"""

# isort: skip_file
# The import order below is the registration order, hence the order of METHODS: keep it.
from ._base import METHODS, Method, NotFittedError, check_real, concat_batches, register, to_tensors
from .vanilla import Vanilla
from .weighted import WeightedDistillation
from .slam import SLaM
from .correction import BackwardCorrection, ForwardCorrection
from .taylor import TaylorCE
from .confidence import ConfidenceThreshold

__all__ = [
    "METHODS",
    "BackwardCorrection",
    "ConfidenceThreshold",
    "ForwardCorrection",
    "Method",
    "NotFittedError",
    "SLaM",
    "TaylorCE",
    "Vanilla",
    "WeightedDistillation",
    "check_real",
    "concat_batches",
    "register",
    "to_tensors",
]
