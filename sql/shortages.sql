-- Shortages at a planning time: which store-products are short, and how much to send.
-- Grain: one row per (store_id, product_id) that is short and has no open request or dispatch.
-- Runs unchanged on Athena (Trino) and on the emulator (DuckDB); see shortages.md.
-- Each table is read by one CTE that is referenced once: Trino inlines every reference to a
-- WITH query, so a second reference would scan the table again.
-- The table names (slots inventory_table, ledger_table) are validated identifiers; values are :parameters;
-- the fragments (sql/fragments/) are the window's readings (window_reading_columns,
-- window_readings_predicate), what is kept of the latest (latest_reading_columns) and the final
-- CTE every planning query shares (planning_result).

with

window_readings as (
    select
        {window_reading_columns},
        cast(sum(units_sold) over (partition by store_id, product_id) as double)
        / nullif(sum(period_hours) over (partition by store_id, product_id), 0) as sales_per_hour
    from {inventory_table}
    where
        {window_readings_predicate}
),

ledger_shortages as (
    -- one row per shortage in the ledger's open horizon
    select
        shortage_id,
        max(store_id) as store_id,
        max(product_id) as product_id,
        max(case when record_type = 'request' then open_until end) as request_open_until,
        sum(case when record_type = 'dispatch' then 1 else 0 end) as dispatch_rows,
        -- second-precision text: the same in both engines, whatever type the JSON reader infers
        max(case when record_type = 'dispatch' then substr(replace(cast(eta as varchar), 'T', ' '), 1, 19) end)
            as eta_text
    from {ledger_table}
    where dt >= :ledger_start_dt
    group by shortage_id
),

ledger_pairs as (
    -- per pair: is a request still open (and not dispatched), and when did the last dispatch arrive
    select
        store_id,
        product_id,
        max(case when dispatch_rows = 0 and request_open_until > :as_of then 1 else 0 end) as has_open_request,
        max(eta_text) as last_eta_text
    from ledger_shortages
    group by store_id, product_id
),

candidates as (
    -- each pair's latest reading, its cover and kind, and what the ledger says is still open
    select
        {latest_reading_columns},
        window_readings.sales_per_hour,
        case
            when window_readings.sales_per_hour > 0
                then window_readings.on_hand / window_readings.sales_per_hour
        end as hours_of_cover,
        case
            when window_readings.on_hand = 0 then 'out_of_stock'
            when window_readings.on_hand <= window_readings.reorder_point then 'below_reorder_point'
            when
                window_readings.sales_per_hour > 0
                and window_readings.on_hand / window_readings.sales_per_hour < :lead_time_hours
                then 'at_risk'
        end as kind,
        cast(
            ceil(cast(window_readings.target_stock - window_readings.on_hand as double) / window_readings.case_pack)
            as integer
        ) * window_readings.case_pack as quantity,
        coalesce(ledger_pairs.has_open_request, 0) = 1 as has_open_request,
        -- a dispatch stays open until a reading taken after its arrival shows the delivered stock
        coalesce(
            ledger_pairs.last_eta_text > substr(replace(cast(window_readings.observed_at as varchar), 'T', ' '), 1, 19),
            false
        ) as delivery_pending
    from window_readings
    left join ledger_pairs
        on window_readings.store_id = ledger_pairs.store_id and window_readings.product_id = ledger_pairs.product_id
    where window_readings.recency = 1
),

{planning_result}
