"""Shared test set-up: tests run at the `ci` budget and never try to download data."""

import os

os.environ.setdefault("GENCOURSE_BUDGET", "ci")
os.environ.setdefault("GENCOURSE_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

# Property tests draw their examples from a fixed seed, so that a CI run is reproducible:
# a failure seen once is seen again on the next run, and a green run stays green.
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("gencourse", derandomize=True, print_blob=True)
settings.load_profile("gencourse")

_STRICT_KEY = pytest.StashKey[str | None]()


# `make test` runs the notebooks on the strict logical device (GENCOURSE_STRICT_DEVICE=1, see
# gencourse.strict_device); the package's own tests run on the plain CPU (test_strict_device
# switches the mode on itself). These hooks apply to the items under tests/ only.
def pytest_runtest_setup(item):
    item.stash[_STRICT_KEY] = os.environ.pop("GENCOURSE_STRICT_DEVICE", None)


def pytest_runtest_teardown(item):
    from gencourse import strict_device

    strict_device.disable()
    saved = item.stash.get(_STRICT_KEY, None)
    if saved is not None:
        os.environ["GENCOURSE_STRICT_DEVICE"] = saved
