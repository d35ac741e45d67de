"""PDF documents BrokerFlow hands to people: statements rendered from Jinja2 templates to PDF
with WeasyPrint (the first being introducing brokers' payout statements, arriving with IB
commissions).

Activities call into this package; it is pure rendering. It may import only `domain` (the value
types a document shows), Jinja2 and WeasyPrint, never the database, settings, the MT5 adapter
or workflows (see the layer table in docs/architecture.md). Rendering is CPU-bound: a caller
that renders many documents uses the package's process pool (`ib_statement.render_statements`,
`render_statement(..., pooled=True)`), one process per core.
"""
