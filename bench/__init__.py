"""The benchmark scripts (each run as a file: ``python bench/bench_node.py``); a package so that the tests import
the docs' table renderer as ``bench.readme_tables``."""
