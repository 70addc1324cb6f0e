"""Benchmarks behind `k2tui bench ...`: each returns rows of measured figures against a target."""
