"""The schemas the three apps exchange, and their rules (no I/O).

- ``reading``: the inventory reading the stores write into the lake (and its rules, applied
  both one reading at a time and to whole arrays).
- ``dispatch_request``: the message the planner sends the trucks.

The ledger the planner and the trucks write is ``storeops.ledger``.
"""
