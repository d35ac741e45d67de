"""IB commissions: the pure calculation of what each introducing broker earns on its clients' deals.

`document` reads the what-if document (symbols, the IB tree, plans, attribution, MT5 deals),
`legs` turns deals into opened and closed volume, `amounts` prices one IB's plan on one deal,
`commissions` shares it across the tree into trace rows and totals, and `clawback` compares a
paid period with its recomputation. The rules are written down in docs/ib-commissions.md.
"""
