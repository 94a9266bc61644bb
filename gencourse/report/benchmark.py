"""The reference workload: a fixed piece of training that tells how fast a machine is.

It trains (a DCGAN of :mod:`gencourse.gan`), so it lives apart from the record and the pages;
its imports are made when it runs, so that importing the report does not import the models.
"""

from __future__ import annotations

import time


def reference_workload(steps: int = 100) -> float:
    """Seconds for a fixed piece of work on one thread: ``steps`` steps of :func:`gencourse.gan.train_gan`
    on the course's DCGAN (batch 64, non-saturating loss) with seeded random images. Timed at the
    start of a build, it tells how fast the machine was, so that builds on different days can
    be compared."""
    import torch

    from gencourse.gan import data_sampler, train_gan
    from gencourse.nets import DCGANDiscriminator, DCGANGenerator

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        g, d = DCGANGenerator(latent_dim=64), DCGANDiscriminator()
        images = torch.rand(512, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        start = time.perf_counter()
        train_gan(g, d, data_sampler(images), 64, steps=steps, seed=0)
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
