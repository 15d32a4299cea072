-- The hourly rollup of one closed raw partition: what planning needs of the readings in it.
-- Grain: one row per (store_id, product_id, observed_hour) among the readings of partition :dt/:hour.
-- Runs unchanged on Athena (Trino) and on the emulator (DuckDB); see rollup_hour.md.
-- The partition is the raw table's own (Firehose names it by arrival), so every reading is rolled
-- exactly once; observed_hour keeps the few readings of the previous hour that arrived in this one
-- apart, so a plan's window can start exactly on an hour. One scan of one partition of the raw table.
-- Each reading counts once, by its event_id, however many copies of it the partition holds.
-- The fragments (sql/fragments/) are the columns kept of a reading and observed_at as ISO-8601 text.

with

partition_readings as (
    -- every reading of the partition, with observed_at as text; copy_number > 1 marks a second copy of a
    -- reading (Firehose delivers at least once, and a retried PutRecordBatch sends a record again)
    select
        {reading_columns},
        units_sold,
        units_expired,
        period_hours,
        {observed_at_text},
        row_number() over (partition by event_id) as copy_number
    from {inventory_table}
    where dt = :dt and hour = :hour
),

hour_readings as (
    -- each reading with its pair's sums over its observed hour and its recency in it (1 = latest)
    select
        *,
        substr(observed_at_text, 1, 13) as observed_hour,
        sum(units_sold) over (partition by store_id, product_id, substr(observed_at_text, 1, 13)) as hour_units_sold,
        sum(units_expired) over (partition by store_id, product_id, substr(observed_at_text, 1, 13))
            as hour_units_expired,
        sum(period_hours) over (partition by store_id, product_id, substr(observed_at_text, 1, 13))
            as hour_period_hours,
        count(*) over (partition by store_id, product_id, substr(observed_at_text, 1, 13)) as hour_readings,
        row_number() over (
            partition by store_id, product_id, substr(observed_at_text, 1, 13)
            order by observed_at_text desc, event_id desc
        ) as recency
    from partition_readings
    where copy_number = 1
),

final as (
    -- the latest reading (as planning orders them) and the sums, in the table's types
    select
        event_id,
        store_id,
        product_id,
        product_name,
        category,
        cast(case_pack as integer) as case_pack,
        cast(on_hand as integer) as on_hand,
        cast(price as double) as price,
        cast(on_promotion as boolean) as on_promotion,
        observed_at_text as observed_at,
        observed_hour,
        cast(hour_units_sold as bigint) as units_sold,
        cast(hour_units_expired as bigint) as units_expired,
        cast(hour_period_hours as double) as period_hours,
        cast(hour_readings as bigint) as readings
    from hour_readings
    where recency = 1
)

select * from final
order by store_id asc, product_id asc, observed_hour asc
