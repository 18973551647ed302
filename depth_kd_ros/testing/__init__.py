"""Fixtures for the tests and benchmarks (a synthetic contract model); setup.py leaves this package out of the
install, so robots never get it."""
