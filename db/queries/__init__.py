"""The query layer: one module per aggregate, with functions named for the question they answer
(`client_by_id`, `clients_to_screen`), shared by the API's services and the activities.

A function here reads (and, with `lock=True`, locks) rows in the caller's session and
transaction; it never commits, never writes an audit row and never raises an HTTP error: an
absent row is `None`, or `domain.errors.NotFound` from the `..._or_not_found` helpers, which
the API answers with 404 and an activity may turn into its own failure.
"""
