"""StoreApp: the simulated stores and their readings into the lake.

- ``catalog``: stores and products, built from a seed.
- ``simulation``: stock that sales draw down and deliveries refill (vectorised, a chunk of stores at a time).
- ``encoding``: readings as NDJSON, a chunk at a time.
- ``firehose``: packing readings into gzip records and sending them without loss.
- ``ingest``: a store-data run (per chunk: load, simulate, validate, encode, send, save) and backfill.
- ``deliveries``: truck loads from the ledger reaching their stores.
"""
