"""Data sets of the course, one module per kind; every name is importable from here.

* :mod:`~gencourse.data.mnist` -- MNIST (downloaded where a network exists, its bundled 10k
  subset otherwise), ``binarize``;
* :mod:`~gencourse.data.mixtures2d` -- 2-D Gaussian mixtures, PacGAN's grid and ring;
* :mod:`~gencourse.data.phantoms` -- CT phantoms: Shepp–Logan, random ellipses (lecture 8);
* :mod:`~gencourse.data.discs` -- the planted two-factor disc data set (lecture 10).
"""

from gencourse.data.discs import (
    DISC_ANGLE_RANGE,
    DISC_RADIUS_RANGE,
    disc_factors_from_images,
    planted_discs,
    render_discs,
    sample_disc_factors,
)
from gencourse.data.mixtures2d import Mixture2D, grid_mixture, ring_mixture
from gencourse.data.mnist import (
    BUNDLED_TRAIN_SIZE,
    MNIST_FILES,
    SPLIT_SEED,
    BundledDataError,
    TensorImages,
    binarize,
    bundled_dir,
    data_root,
    load_mnist,
    read_idx_mnist,
)
from gencourse.data.phantoms import random_ellipse_phantom, random_ellipse_phantoms, shepp_logan

__all__ = [
    "BUNDLED_TRAIN_SIZE",
    "DISC_ANGLE_RANGE",
    "DISC_RADIUS_RANGE",
    "MNIST_FILES",
    "SPLIT_SEED",
    "BundledDataError",
    "Mixture2D",
    "TensorImages",
    "binarize",
    "bundled_dir",
    "data_root",
    "disc_factors_from_images",
    "grid_mixture",
    "load_mnist",
    "planted_discs",
    "random_ellipse_phantom",
    "random_ellipse_phantoms",
    "read_idx_mnist",
    "render_discs",
    "ring_mixture",
    "sample_disc_factors",
    "shepp_logan",
]
