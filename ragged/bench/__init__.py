"""Benchmarks shipped with ragged: ``python -m ragged.bench``."""
