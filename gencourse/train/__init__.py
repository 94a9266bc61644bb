"""Training: the one loop of the course and the one way to train several copies at once.

* :func:`fit` trains one model on random mini-batches; :func:`adversarial_fit` trains a game of
  players (a discriminator, a generator, helpers), each written as a step function in the
  module of its paper. Both own the progress bar, the history, learning-rate schedules
  (:func:`cosine`, :func:`linear_decay`), evaluation callbacks, snapshots, train/eval modes and
  the device (:mod:`gencourse.train.loop`).
* :class:`EnsembleLinear` and :class:`EnsembleBatchNorm` hold S copies of a layer with stacked
  weights and apply them together, member s on its own slice of the input: the one way the course
  trains several seeds or settings at once (:mod:`gencourse.train.ensemble`, which also says why
  these and not ``torch.func.vmap``).
"""

from gencourse.train.ensemble import EnsembleBatchNorm, EnsembleLinear
from gencourse.train.loop import (
    Player,
    Step,
    adam,
    adversarial_fit,
    cosine,
    fit,
    linear_decay,
    require_int,
)

__all__ = [
    "EnsembleBatchNorm",
    "EnsembleLinear",
    "Player",
    "Step",
    "adam",
    "adversarial_fit",
    "cosine",
    "fit",
    "linear_decay",
    "require_int",
]
