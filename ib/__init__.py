"""IB commissions as commands: `python -m ib.preview` tries a plan on a document of deals."""
