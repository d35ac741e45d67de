"""Benchmarks: `python -m bench.NAME [--size N]`; each ends with a `RESULT key=value ...` line."""
