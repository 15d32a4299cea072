-- The original workshop's rule, for comparison: every store-product whose latest reading is at or
-- below its threshold gets an alert, on every run; nothing is excluded, not even what is already on
-- its way. The workshop's record carried a threshold_level; here the threshold is the store's shelf
-- rule of thumb, a share of the planogram's capacity (:workshop_threshold), and the alert asks for the
-- whole cases that fill the shelf. Grain: one row per (store_id, product_id) at or below its threshold.
-- Same columns and parameters as shortages.sql (the ledger and the promotions are not read); see
-- workshop_alerts.md. The fragments (sql/fragments/) are the window's readings (window_reading_columns,
-- window_readings_predicate), what is kept of the latest (latest_reading_columns), the planogram (shelves)
-- and the final CTE every planning query shares (planning_result).

with

raw_readings as (
    -- the window's readings; copy_number > 1 marks a second copy Firehose delivered
    select
        *,
        row_number() over (partition by event_id) as copy_number
    from {inventory_table}
    where
        {window_readings_predicate}
),

window_readings as (
    select
        {window_reading_columns}
    from raw_readings
    where copy_number = 1
),

{shelves},

candidates as (
    -- every pair at or below its threshold; the rule remembers nothing, so nothing is open
    select
        {latest_reading_columns},
        shelves.shelf_capacity,
        cast(null as double) as sales_per_hour,
        cast(null as double) as hours_of_cover,
        cast(floor(shelves.shelf_capacity * :workshop_threshold) as integer) as reorder_point,
        shelves.shelf_capacity as target_stock,
        case when window_readings.on_hand = 0 then 'out_of_stock' else 'below_reorder_point' end as kind,
        false as has_open_request,
        false as delivery_pending
    from window_readings
    inner join shelves
        on window_readings.store_id = shelves.store_id and window_readings.product_id = shelves.product_id
    where
        window_readings.recency = 1
        and window_readings.on_hand <= floor(shelves.shelf_capacity * :workshop_threshold)
),

ordered as (
    -- the whole cases that fill the shelf, at least one
    select
        *,
        greatest(cast(floor(cast(shelf_capacity - on_hand as double) / case_pack) as integer), 1) * case_pack
            as quantity
    from candidates
),

{planning_result}
