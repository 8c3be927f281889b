"""The GraphQL interface (Strawberry): the live board for people.

router.py         the schema, its limits, the FastAPI router, WebSocket authentication
context.py        per-request context: principal, services, loaders
permissions.py    role permission classes and tenant scoping
loaders.py        per-request DataLoaders over the views
types.py          object types, each built by `from_row(...)`
results.py        ledger refusals as typed mutation results and query errors
queries.py        board (cursor pagination), load (bitemporal), stock, vehicles, KPIs, queue
mutations.py      every dispatcher action
subscriptions.py  live board changes
"""

from api.graphql.router import graphql_router

__all__ = ["graphql_router"]
