"""Stand-in payment processors: a card acquirer (CardCo) and a bank/crypto rail (BankCo).

Like the MT5 simulator it shares nothing with BrokerFlow. Each provider has its own API shape,
its own webhook signature scheme and a daily settlement report, as real processors do.
"""
