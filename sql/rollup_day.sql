-- The daily rollup of the hourly one: what the forecast learns from, one row per store-product and day.
-- Grain: one row per (store_id, product_id, day) among the hourly rollup's rows observed in the days
-- [:first_day, :last_day] (UTC days; see rollup_day.md). One scan of the hourly rollup's partitions of those
-- days (one hour wider on each side: rollup partitions are Firehose's, by arrival). Runs unchanged on
-- Athena (Trino) and on the emulator (DuckDB). The table name (slot rollup_table) is a validated identifier.

with

hours as (
    -- the rolled hours of the days, each with its UTC day and the stores' local hour of day
    select
        store_id,
        product_id,
        category,
        case_pack,
        on_hand,
        price,
        on_promotion,
        observed_at,
        units_sold,
        units_expired,
        period_hours,
        substr(observed_hour, 1, 10) as day,
        (
            cast(substr(observed_hour, 12, 2) as integer)
            + case
                when (observed_hour >= :bst1_from and observed_hour < :bst1_until)
                    or (observed_hour >= :bst2_from and observed_hour < :bst2_until)
                    then 1
                else 0
            end
        ) % 24 as local_hour
    from {rollup_table}
    where
        {partition_range}
        and observed_hour >= :first_hour
        and observed_hour <= :last_hour
),

final as (
    -- the day's sums, its last reading's stock and price, the hours its shelf was seen empty (and which), the
    -- sales of each local hour of day
    select
        store_id,
        product_id,
        max(category) as category,
        cast(max(case_pack) as integer) as case_pack,
        day,
        cast(sum(units_sold) as bigint) as units_sold,
        cast(sum(units_expired) as bigint) as units_expired,
        cast(sum(period_hours) as double) as hours_covered,
        cast(sum(case when on_hand = 0 then 1 else 0 end) as bigint) as empty_hours,
        cast(max(case when on_promotion then 1 else 0 end) as integer) as promoted,
        cast(max_by(on_hand, observed_at) as integer) as last_on_hand,
        cast(max_by(price, observed_at) as double) as price,
        cast(sum(case when local_hour = 0 then units_sold else 0 end) as bigint) as sold_h00,
        cast(sum(case when local_hour = 1 then units_sold else 0 end) as bigint) as sold_h01,
        cast(sum(case when local_hour = 2 then units_sold else 0 end) as bigint) as sold_h02,
        cast(sum(case when local_hour = 3 then units_sold else 0 end) as bigint) as sold_h03,
        cast(sum(case when local_hour = 4 then units_sold else 0 end) as bigint) as sold_h04,
        cast(sum(case when local_hour = 5 then units_sold else 0 end) as bigint) as sold_h05,
        cast(sum(case when local_hour = 6 then units_sold else 0 end) as bigint) as sold_h06,
        cast(sum(case when local_hour = 7 then units_sold else 0 end) as bigint) as sold_h07,
        cast(sum(case when local_hour = 8 then units_sold else 0 end) as bigint) as sold_h08,
        cast(sum(case when local_hour = 9 then units_sold else 0 end) as bigint) as sold_h09,
        cast(sum(case when local_hour = 10 then units_sold else 0 end) as bigint) as sold_h10,
        cast(sum(case when local_hour = 11 then units_sold else 0 end) as bigint) as sold_h11,
        cast(sum(case when local_hour = 12 then units_sold else 0 end) as bigint) as sold_h12,
        cast(sum(case when local_hour = 13 then units_sold else 0 end) as bigint) as sold_h13,
        cast(sum(case when local_hour = 14 then units_sold else 0 end) as bigint) as sold_h14,
        cast(sum(case when local_hour = 15 then units_sold else 0 end) as bigint) as sold_h15,
        cast(sum(case when local_hour = 16 then units_sold else 0 end) as bigint) as sold_h16,
        cast(sum(case when local_hour = 17 then units_sold else 0 end) as bigint) as sold_h17,
        cast(sum(case when local_hour = 18 then units_sold else 0 end) as bigint) as sold_h18,
        cast(sum(case when local_hour = 19 then units_sold else 0 end) as bigint) as sold_h19,
        cast(sum(case when local_hour = 20 then units_sold else 0 end) as bigint) as sold_h20,
        cast(sum(case when local_hour = 21 then units_sold else 0 end) as bigint) as sold_h21,
        cast(sum(case when local_hour = 22 then units_sold else 0 end) as bigint) as sold_h22,
        cast(sum(case when local_hour = 23 then units_sold else 0 end) as bigint) as sold_h23,
        cast(count(*) as bigint) as rolled_hours,
        -- character h + 1 is 1 when a reading of local hour h found the shelf empty (the forecast uses it to
        -- tell a censored hour of a trading day from a night's)
        concat(
            max(case when local_hour = 0 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 1 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 2 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 3 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 4 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 5 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 6 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 7 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 8 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 9 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 10 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 11 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 12 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 13 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 14 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 15 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 16 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 17 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 18 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 19 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 20 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 21 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 22 and on_hand = 0 then '1' else '0' end),
            max(case when local_hour = 23 and on_hand = 0 then '1' else '0' end)
        ) as empty_mask
    from hours
    group by store_id, product_id, day
)

select * from final
order by day asc, store_id asc, product_id asc
