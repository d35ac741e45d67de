"""Reconciliation runs, break cases and run reports for finance (docs/reconciliation.md)."""
