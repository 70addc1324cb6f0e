"""Checks, procedures, checklists, fault scenarios, benchmarks and reports."""
