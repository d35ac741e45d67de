"""What the what-if commands (`ib.preview`, `risk.exposure`, `reconciliation.check`) share."""
