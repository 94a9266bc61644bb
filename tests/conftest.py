"""Shared test set-up: tests run at the `ci` budget and never try to download data."""

import os

os.environ.setdefault("GENCOURSE_BUDGET", "ci")
os.environ.setdefault("GENCOURSE_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

# Property tests draw their examples from a fixed seed, so that a CI run is reproducible:
# a failure seen once is seen again on the next run, and a green run stays green.
from hypothesis import settings  # noqa: E402

settings.register_profile("gencourse", derandomize=True, print_blob=True)
settings.load_profile("gencourse")
