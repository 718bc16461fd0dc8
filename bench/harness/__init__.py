# File: bench/harness/__init__.py -- the bench driver's modules (see bench/run_bench.py).
