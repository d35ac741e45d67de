"""Temporal workflows: deterministic code that only calls the typed steps of `contracts`."""
