"""Sanctions and PEP screening: list parsers (`screening.formats`), the name normaliser
(`screening.normalise`, `screening.variants`) and the matcher (`screening.matcher.Screener`).

The value types and pure rules live in `domain.screening`; see docs/screening.md.
"""
