"""gencourse: the companion package of the course on deep generative models.

One module per idea of the course; ``gencourse/README.md`` maps which module holds which idea
and the layers they form (runtime and data, the formulas, the training core, the shared
networks, the algorithms, the report and tools). Below: the few names every lecture uses.
"""

from gencourse.runtime import budget, budget_level, get_device, progress, seed_everything
from gencourse.train import fit

__all__ = ["budget", "budget_level", "fit", "get_device", "progress", "seed_everything"]
__version__ = "0.1.0"
