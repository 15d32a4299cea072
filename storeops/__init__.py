"""storeops: the pure core of the store replenishment system.

Nothing in this package imports Prefect: it is what the planning Lambda runs, and what
the Prefect tasks wrap. Three apps, each a package that imports only itself and the core:

- ``stores``: StoreApp, the simulated stores streaming readings into the lake.
- ``planning``: StorePlanningApp, the shortage analysis (the Lambda) and its requests.
- ``dispatch``: StoreTruckApp, claims, truck loads and the dispatch loop.

The shared core, which imports no app: ``contracts`` (the reading and the dispatch request,
with their rules), ``ledger`` (the dispatch ledger in the lake), ``directory`` (where stores
and depots are), ``clock``, ``settings``, ``aws`` (the client factory), ``sqs`` (batch calls),
``sql`` (loading queries), ``retry``, ``exceptions`` and ``cli``.
"""

__version__ = "0.1.0"
