"""The benchmark: bench/run (see bench/bench.py and docs/performance.md)."""
