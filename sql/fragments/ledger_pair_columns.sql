-- What a planning query reads of the ledger for a pair (from ledger_pairs_ctes): an open request, a delivery
-- pending until a reading taken after its arrival shows the delivered stock, the store's measured lead time.
coalesce(ledger_pairs.has_open_request, 0) = 1 as has_open_request,
coalesce(
    ledger_pairs.last_eta_text > substr(replace(cast(window_readings.observed_at as varchar), 'T', ' '), 1, 19),
    false
) as delivery_pending,
coalesce(
    cast(sum(ledger_pairs.lead_seconds) over (partition by window_readings.store_id) as double)
    / nullif(sum(ledger_pairs.lead_deliveries) over (partition by window_readings.store_id), 0) / 3600.0,
    :default_lead_time_hours
) as lead_time_hours
