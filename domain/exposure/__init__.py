"""Exposure and margin of open positions and pending orders (issue 15): by symbol, MT5 group,
country, region and book, in lots and in notional converted to a reporting currency, with each
account's margin per MT5 calculation mode and the broker's own (house) net exposure.

`document` is the what-if document (MT5 Web API field names), `market` the symbols, quotes and
conversions made once per calculation, `compute` the calculation over plain rows and `report`
its JSON form. The format and every choice are in docs/risk-exposure.md.
"""
