-- The planning window's readings, read once each from two tables split at the rollup's watermark: the hourly
-- rollup for the partitions before it (an hour of a pair counting as one reading), the raw readings from it on;
-- then every reading with its pair's totals and recency (window_readings). Shared by shortages.sql and
-- replenishment.sql (their .md files name the parameters).
rollup_hours as (
    -- the rolled partitions: per pair and observed hour, its latest reading and the hour's sums
    select
        {reading_columns},
        observed_at,
        cast(units_sold as bigint) as units_sold,
        cast(period_hours as double) as period_hours,
        1 as copy_number
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
        cast(period_hours as double) as period_hours,
        row_number() over (partition by event_id) as copy_number
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
    where copy_number = 1  -- each raw reading once, however many copies Firehose delivered
)
