"""gencourse: the companion package of the course on deep generative models.

One module per idea of the course (see the book's "How this course is built" page):
``runtime`` (devices, seeds, budgets), ``data``, ``nets``, ``divergences``, ``vae``,
``plotting``, and the modules that later lectures add.
"""

from gencourse.runtime import budget, budget_level, get_device, progress, seed_everything
from gencourse.train import fit

__all__ = ["budget", "budget_level", "fit", "get_device", "progress", "seed_everything"]
__version__ = "0.1.0"
