"""Payment processors behind one interface (`gateway.PaymentProvider`), one module per provider."""
