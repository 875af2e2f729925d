"""Benchmarks for LOUDSYNC TUI; run with `python -m benchmarks` (see run.py)."""
