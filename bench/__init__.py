"""Benchmarks of the dlc-platform: ``python -m bench --help`` (results in BENCHMARKS.md)."""
