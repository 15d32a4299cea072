-- What the forecast-driven replenishment policy decides from (storeops/planning/policy.py): every pair's latest
-- reading joined with the day's demand forecast, its shelf, its product's economics and what the ledger says is
-- open or was delivered. Grain: one row per (store_id, product_id) with a reading in [window_start, as_of], sorted
-- by store so that the planner streams the result in chunks that never split a store. The decision (when a store
-- gets a delivery, how much of each product) is the policy's, in Python, chunk by chunk; this query only gathers.
-- Everything read is what a retailer's systems hold: readings, the forecast made from them, the planogram, the
-- product master and the dispatch ledger. Each table is read by one CTE that is referenced once (Trino inlines
-- every reference to a WITH query). The window and the ledger are read by the same fragments as in shortages.sql
-- (window_readings_ctes: the hourly rollup before the watermark, raw readings from it on; ledger_pairs_ctes).
-- The table names (slots inventory_table, rollup_table, ledger_table, planogram_table, products_table,
-- forecast_table) are validated identifiers; values are :parameters.

with

{window_readings_ctes},

{ledger_pairs_ctes},

{shelves},

catalogue as (
    -- the product master: what a unit earns and costs, how long it keeps
    select
        product_id,
        price as regular_price,
        unit_cost,
        shelf_life_days
    from {products_table}
),

day_forecast as (
    -- the forecast made on :forecast_day (flows/forecast.py), never recomputed here
    select
        *
    from {forecast_table}
    where dt = :forecast_day
),

final as (
    select
        window_readings.store_id,
        window_readings.product_id,
        window_readings.product_name,
        window_readings.category,
        cast(window_readings.case_pack as integer) as case_pack,
        cast(window_readings.on_hand as integer) as on_hand,
        window_readings.event_id as reading_event_id,
        window_readings.observed_at,
        cast(window_readings.units_sold_in_window as bigint) as units_sold_in_window,
        coalesce(window_readings.sales_per_hour, 0.0) as sales_per_hour,
        cast(coalesce(shelves.shelf_capacity, 999999) as integer) as shelf_capacity,
        coalesce(catalogue.regular_price, window_readings.price) as regular_price,
        coalesce(catalogue.unit_cost, 0.7 * window_readings.price) as unit_cost,
        cast(coalesce(catalogue.shelf_life_days, 0) as integer) as shelf_life_days,
        {ledger_pair_columns},
        day_forecast.product_id is not null as forecast_found,
        coalesce(day_forecast.method, 'none') as forecast_method,
        -- a pair the forecast does not know yet (new in the assortment): its trailing rate, flat
        coalesce(day_forecast.mean_d0, 24 * coalesce(window_readings.sales_per_hour, 0.0)) as mean_d0,
        coalesce(day_forecast.mean_d1, 24 * coalesce(window_readings.sales_per_hour, 0.0)) as mean_d1,
        coalesce(day_forecast.mean_d2, 24 * coalesce(window_readings.sales_per_hour, 0.0)) as mean_d2,
        coalesce(day_forecast.dispersion, 1.0) as dispersion,
        coalesce(day_forecast.share_h00, 0.0) as share_h00,
        coalesce(day_forecast.share_h01, 0.0) as share_h01,
        coalesce(day_forecast.share_h02, 0.0) as share_h02,
        coalesce(day_forecast.share_h03, 0.0) as share_h03,
        coalesce(day_forecast.share_h04, 0.0) as share_h04,
        coalesce(day_forecast.share_h05, 0.0) as share_h05,
        coalesce(day_forecast.share_h06, 0.0) as share_h06,
        coalesce(day_forecast.share_h07, 0.0) as share_h07,
        coalesce(day_forecast.share_h08, 0.0) as share_h08,
        coalesce(day_forecast.share_h09, 0.0) as share_h09,
        coalesce(day_forecast.share_h10, 0.0) as share_h10,
        coalesce(day_forecast.share_h11, 0.0) as share_h11,
        coalesce(day_forecast.share_h12, 0.0) as share_h12,
        coalesce(day_forecast.share_h13, 0.0) as share_h13,
        coalesce(day_forecast.share_h14, 0.0) as share_h14,
        coalesce(day_forecast.share_h15, 0.0) as share_h15,
        coalesce(day_forecast.share_h16, 0.0) as share_h16,
        coalesce(day_forecast.share_h17, 0.0) as share_h17,
        coalesce(day_forecast.share_h18, 0.0) as share_h18,
        coalesce(day_forecast.share_h19, 0.0) as share_h19,
        coalesce(day_forecast.share_h20, 0.0) as share_h20,
        coalesce(day_forecast.share_h21, 0.0) as share_h21,
        coalesce(day_forecast.share_h22, 0.0) as share_h22,
        coalesce(day_forecast.share_h23, 0.0) as share_h23
    {latest_pair_joins}
    left join catalogue
        on window_readings.product_id = catalogue.product_id
    left join day_forecast
        on window_readings.store_id = day_forecast.store_id and window_readings.product_id = day_forecast.product_id
    where window_readings.recency = 1
)

select * from final
order by store_id asc, product_id asc
