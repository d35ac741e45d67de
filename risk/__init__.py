"""The risk desk's tools (issue 15): `python -m risk.exposure`, the exposure what-if."""
