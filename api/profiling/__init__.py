"""Client profiles and the dealer's book decision (issue 15): list and detail with the
explanation, accept the suggested book or override it; each decision moves the account to its
book's MT5 group through a `BookMove` workflow."""
