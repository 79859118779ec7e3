"""Repositories: the queries the pages and API routes need, by aggregate.

Routes hold no SQL: they call a service, or for a plain read one of these functions, each
taking the request's session. Nothing here commits; the request's unit of work does
(``store.db.UnitOfWork``).
"""
