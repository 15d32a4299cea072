"""storeops: the pure core of the store replenishment system.

Nothing in this package imports Prefect: it is what the planning Lambda runs, and what
the Prefect tasks wrap. Modules are grouped by what they do:

- ``settings``: the one settings model (env prefix ``STOREOPS_``), built at entry points.
- ``aws``: the AWS client factory (endpoint, retries, timeouts) and stack outputs.
- ``exceptions``: every domain error.
"""

__version__ = "0.1.0"
