-- Shortages at a planning time: which store-products are short, and how much to send.
-- Grain: one row per (store_id, product_id) that is short and has no open request or dispatch.
-- Runs unchanged on Athena (Trino) and on the emulator (DuckDB); see shortages.md.
-- Each table is read by one CTE that is referenced once: Trino inlines every reference to a
-- WITH query, so a second reference would scan the table again.
-- The window [window_start, as_of] is read from two tables, split by Firehose's (arrival) partitions, so
-- each reading is read once: the hourly rollup for the partitions before the watermark (one row per pair
-- and observed hour, kept from the window's first hour on), the raw readings for the partitions from the
-- watermark on. Without a rollup the watermark is the window's first partition: every reading raw.
-- The table names (slots inventory_table, rollup_table, ledger_table) are validated identifiers; values are
-- :parameters; the fragments (sql/fragments/) are the columns kept of a reading (reading_columns),
-- observed_at as text (observed_at_text), each reading's
-- totals and recency (window_reading_columns), what is kept of the latest (latest_reading_columns) and
-- the final CTE every planning query shares (planning_result).

with

rollup_hours as (
    -- the rolled partitions: per pair and observed hour, its latest reading and the hour's sums
    select
        {reading_columns},
        observed_at,
        cast(units_sold as bigint) as units_sold,
        cast(period_hours as double) as period_hours
    from {rollup_table}
    where
        (dt > :rollup_start_dt or (dt = :rollup_start_dt and hour >= :rollup_start_hour))
        and (dt < :rollup_end_dt or (dt = :rollup_end_dt and hour <= :rollup_end_hour))
        and observed_hour >= :window_start_hour
        and (:store_filter = '' or strpos(:store_filter, concat(',', store_id, ',')) > 0)
),

raw_readings as (
    -- the partitions from the watermark to the hour after as_of (a reading can arrive after as_of),
    -- then the exact observed_at bounds [window_start, as_of]
    select
        {reading_columns},
        {observed_at_text},
        cast(units_sold as bigint) as units_sold,
        cast(period_hours as double) as period_hours
    from {inventory_table}
    where
        (dt > :raw_start_dt or (dt = :raw_start_dt and hour >= :raw_start_hour))
        and (dt < :end_dt or (dt = :end_dt and hour <= :end_hour))
        and observed_at >= :window_start
        and observed_at <= :as_of
        and (:store_filter = '' or strpos(:store_filter, concat(',', store_id, ',')) > 0)
),

readings as (
    -- the window's readings, an hour of the rollup counting as one reading; observed_at is text in both
    select * from rollup_hours
    union all
    select * from raw_readings
),

window_readings as (
    select
        {window_reading_columns},
        cast(sum(units_sold) over (partition by store_id, product_id) as double)
        / nullif(sum(period_hours) over (partition by store_id, product_id), 0) as sales_per_hour
    from readings
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
