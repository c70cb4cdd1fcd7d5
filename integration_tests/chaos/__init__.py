"""Randomised runs of the whole loop with faults injected, and the invariants they must keep.

``make chaos`` (``python -m integration_tests.chaos``) runs at least 500;
``integration_tests/test_chaos_short.py`` runs a few tens in CI.
"""
