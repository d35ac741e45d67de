"""The reconciliation what-if: `python -m reconciliation.check FILE` (docs/reconciliation.md)."""
