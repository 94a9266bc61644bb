"""The notebooks here are hostile fixtures for tests/test_grading.py: pytest (and nbval) must
never collect or run them."""

collect_ignore_glob = ["*"]
