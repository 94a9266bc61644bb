"""Shared test set-up: tests run at the `ci` budget and never try to download data."""

import os

os.environ.setdefault("GENCOURSE_BUDGET", "ci")
os.environ.setdefault("GENCOURSE_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
