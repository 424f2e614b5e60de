"""Benchmarks for the portal, run with ``make bench`` (see ``bench.run`` and docs/benchmarks.md)."""
