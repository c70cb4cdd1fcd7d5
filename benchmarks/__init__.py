"""Benchmarks of batchbridge against the tutorial's design (``make bench``); see
docs/benchmarks.md. The loop harness here is shared with the chaos suite."""
