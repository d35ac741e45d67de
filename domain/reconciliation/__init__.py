"""Three-way reconciliation of a day: MT5 balance deals, the wallet ledger, the processors'
settlement reports (docs/reconciliation.md). Pure: the caller reads the sides."""
