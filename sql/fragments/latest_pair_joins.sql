-- Each pair's readings joined with what the ledger says of it and its shelf (the ledger_pairs and shelves CTEs).
-- Shared by shortages.sql and replenishment.sql; each adds its own join and keeps the latest reading.
from window_readings
left join ledger_pairs
    on window_readings.store_id = ledger_pairs.store_id and window_readings.product_id = ledger_pairs.product_id
left join shelves
    on window_readings.store_id = shelves.store_id and window_readings.product_id = shelves.product_id
