"""Training: the one loop of the course and the one way to train several copies at once.

* :func:`fit` trains one model on random mini-batches; :func:`adversarial_fit` trains a game of
  players (a discriminator, a generator, helpers), each written as a step function in the
  module of its paper. Both own the progress bar, the history, learning-rate schedules
  (:func:`cosine`, :func:`linear_decay`), evaluation callbacks, snapshots, train/eval modes and
  the device (:mod:`gencourse.train.loop`).
* :class:`Ensemble` holds S networks of one architecture with stacked weights and evaluates them
  together, member s on its own slice of the input (:mod:`gencourse.train.ensemble`).
"""

from gencourse.train.ensemble import Ensemble, EnsembleBatchNorm, EnsembleLinear
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
    "Ensemble",
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
