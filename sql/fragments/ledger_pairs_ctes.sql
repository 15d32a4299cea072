-- The dispatch ledger per pair over its open horizon: an open request (not yet dispatched), the last arrival,
-- and the lead times trucks achieved from request to arrival. Shared by shortages.sql and replenishment.sql.
ledger_shortages as (
    -- one row per shortage in the ledger's open horizon; times as second-precision text, the same in
    -- both engines whatever type the JSON reader infers
    select
        shortage_id,
        max(store_id) as store_id,
        max(product_id) as product_id,
        max(case when record_type = 'request' then open_until end) as request_open_until,
        max(case when record_type = 'request' then substr(replace(cast(recorded_at as varchar), 'T', ' '), 1, 19) end)
            as requested_text,
        sum(case when record_type = 'dispatch' then 1 else 0 end) as dispatch_rows,
        max(case when record_type = 'dispatch' then substr(replace(cast(eta as varchar), 'T', ' '), 1, 19) end)
            as eta_text
    from {ledger_table}
    where dt >= :ledger_start_dt
    group by shortage_id
),

ledger_pairs as (
    -- per pair: is a request still open (and not dispatched), when did the last dispatch arrive, and how
    -- long its deliveries took from request to arrival (the lead time trucks achieved)
    select
        store_id,
        product_id,
        max(case when dispatch_rows = 0 and request_open_until > :as_of then 1 else 0 end) as has_open_request,
        max(eta_text) as last_eta_text,
        sum(
            case
                when eta_text is not null and requested_text is not null
                    then date_diff('second', cast(requested_text as timestamp), cast(eta_text as timestamp))
            end
        ) as lead_seconds,
        sum(case when eta_text is not null and requested_text is not null then 1 else 0 end) as lead_deliveries
    from ledger_shortages
    group by store_id, product_id
)
