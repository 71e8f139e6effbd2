"""Micro-benchmarks for jshost (run as scripts, e.g. `python -m bench.bench_engine`)."""
