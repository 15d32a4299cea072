-- The original workshop's rule, for comparison: every store-product whose latest reading is at
-- or below its threshold (the reorder point) gets an alert, on every run; nothing is excluded,
-- not even what is already on its way. The quantity is the same order-up-to amount as ours.
-- Grain: one row per (store_id, product_id) at or below its reorder point. Same columns and
-- parameters as shortages.sql (the ledger is not read); see workshop_alerts.md.
-- The fragments (sql/fragments/) are the window's readings (window_reading_columns,
-- window_readings_predicate), what is kept of the latest (latest_reading_columns) and the final
-- CTE every planning query shares (planning_result).

with

window_readings as (
    select
        {window_reading_columns}
    from {inventory_table}
    where
        {window_readings_predicate}
),

candidates as (
    -- every pair at or below its reorder point; the rule remembers nothing, so nothing is open
    select
        {latest_reading_columns},
        cast(null as double) as sales_per_hour,
        cast(null as double) as hours_of_cover,
        case when window_readings.on_hand = 0 then 'out_of_stock' else 'below_reorder_point' end as kind,
        cast(
            ceil(cast(window_readings.target_stock - window_readings.on_hand as double) / window_readings.case_pack)
            as integer
        ) * window_readings.case_pack as quantity,
        false as has_open_request,
        false as delivery_pending
    from window_readings
    where window_readings.recency = 1 and window_readings.on_hand <= window_readings.reorder_point
),

{planning_result}
