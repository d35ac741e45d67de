"""The dealer-revenue what-if command (`python -m revenue.deal FILE`, docs/revenue.md)."""
