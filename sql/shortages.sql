-- Shortages at a planning time: which store-products to replenish, and how much to send.
-- Grain: one row per (store_id, product_id) at or below its reorder point with no open request or
-- dispatch. Runs unchanged on Athena (Trino) and on the emulator (DuckDB); see shortages.md for the rule.
-- Everything the rule uses is what a retailer's systems hold: the readings (sales, stock as recorded,
-- prices), the planogram, the promotion plan and the dispatch ledger (the lead times trucks achieved).
-- Each table is read by one CTE that is referenced once: Trino inlines every reference to a
-- WITH query, so a second reference would scan the table again.
-- The window [window_start, as_of] is read from two tables, split by Firehose's (arrival) partitions, so
-- each reading is read once: the hourly rollup for the partitions before the watermark (one row per pair
-- and observed hour, kept from the window's first hour on), the raw readings for the partitions from the
-- watermark on. Without a rollup the watermark is the window's first partition: every reading raw.
-- The table names (slots inventory_table, rollup_table, ledger_table, planogram_table, promotions_table) are
-- validated identifiers; values are :parameters; the fragments (sql/fragments/) are the window's readings
-- (window_readings_ctes: the columns kept of a reading, observed_at as text, each reading's totals and recency),
-- the ledger per pair (ledger_pairs_ctes), what is kept of the latest reading (latest_reading_columns), the
-- planogram (shelves) and the final CTE every planning query shares (planning_result).

with

{window_readings_ctes},

{ledger_pairs_ctes},

{shelves},

promoted as (
    -- the products the promotion plan promotes on the plan's local day or the next
    select
        product_id,
        max(discount_pct) as discount_pct
    from {promotions_table}
    where start_date <= :promo_last_date and end_date >= :promo_first_date
    group by product_id
),

pairs as (
    -- each pair's latest reading with its trailing sales rate, its shelf, its promotion, what the ledger
    -- says is open, and its store's achieved lead time (the default where the store has no delivery yet)
    select
        {latest_reading_columns},
        coalesce(window_readings.sales_per_hour, 0) as sales_per_hour,
        coalesce(shelves.shelf_capacity, 999999) as shelf_capacity,
        case when promoted.discount_pct is not null then :promo_factor else 1.0 end as promo_factor,
        {ledger_pair_columns}
    {latest_pair_joins}
    left join promoted
        on window_readings.product_id = promoted.product_id
    where window_readings.recency = 1
),

levels as (
    -- the rule: the demand expected over the protection interval (review period + lead time) at the
    -- trailing rate, a safety margin on top; the order-up-to level adds a cycle's sales, capped by the shelf
    select
        *,
        case when sales_per_hour > 0 then on_hand / sales_per_hour end as hours_of_cover,
        greatest(
            cast(
                -- rounded to 6 decimals first: sums taken in another order (rollup or raw) must give the same ceiling
                ceil(round(sales_per_hour * promo_factor * (:review_hours + lead_time_hours) * (1 + :safety_margin), 6))
                as integer
            ),
            1
        ) as reorder_point
    from pairs
),

candidates as (
    select
        *,
        least(
            shelf_capacity,
            reorder_point
            + greatest(case_pack, cast(ceil(round(sales_per_hour * promo_factor * :cycle_hours, 6)) as integer))
        ) as target_stock,
        case
            when on_hand = 0 then 'out_of_stock'
            when on_hand <= reorder_point then 'below_reorder_point'
        end as kind
    from levels
),

ordered as (
    -- whole cases up to the target, never more than the shelf holds
    select
        *,
        least(
            cast(ceil(cast(target_stock - on_hand as double) / case_pack) as integer),
            cast(floor(cast(shelf_capacity - on_hand as double) / case_pack) as integer)
        ) * case_pack as quantity
    from candidates
),

{planning_result}
