-- Shortages at a planning time: which store-products are short, and how much to send.
-- Grain: one row per (store_id, product_id) that is short and has no open request or dispatch.
-- Runs unchanged on Athena (Trino) and on the emulator (DuckDB); see shortages.md.
-- Identifiers {inventory_table} and {ledger_table} are validated names; values are :parameters.

with

readings as (
    select
        event_id,
        store_id,
        product_id,
        product_name,
        category,
        case_pack,
        on_hand,
        reorder_point,
        target_stock,
        units_sold,
        observed_at
    from {inventory_table}
    where
        -- partition predicates first: Athena reads only the window's dt/hour partitions
        (dt > :start_dt or (dt = :start_dt and hour >= :start_hour))
        and (dt < :end_dt or (dt = :end_dt and hour <= :end_hour))
        and observed_at > :window_start
        and observed_at <= :as_of
        and (:store_filter = '' or strpos(:store_filter, concat(',', store_id, ',')) > 0)
),

ranked as (
    select
        *,
        row_number() over (
            partition by store_id, product_id
            order by observed_at desc, event_id desc
        ) as recency
    from readings
),

window_sales as (
    select
        store_id,
        product_id,
        sum(units_sold) as units_sold_in_window
    from readings
    group by store_id, product_id
),

latest as (
    select
        ranked.*,
        window_sales.units_sold_in_window,
        cast(window_sales.units_sold_in_window as double) / :window_hours as sales_per_hour
    from ranked
    inner join window_sales
        on ranked.store_id = window_sales.store_id and ranked.product_id = window_sales.product_id
    where ranked.recency = 1
),

ledger as (
    select
        record_type,
        shortage_id,
        store_id,
        product_id,
        open_until,
        -- second-precision text: the same in both engines, whatever type the JSON reader infers
        substr(replace(cast(eta as varchar), 'T', ' '), 1, 19) as eta_text
    from {ledger_table}
    where dt >= :ledger_start_dt
),

dispatched as (
    select distinct shortage_id
    from ledger
    where record_type = 'dispatch'
),

open_requests as (
    select distinct
        store_id,
        product_id
    from ledger
    where
        record_type = 'request'
        and open_until > :as_of
        and shortage_id not in (select dispatched.shortage_id from dispatched)
),

last_dispatch as (
    select
        store_id,
        product_id,
        max(eta_text) as eta_text
    from ledger
    where record_type = 'dispatch'
    group by store_id, product_id
),

classified as (
    select
        latest.*,
        case when latest.sales_per_hour > 0 then latest.on_hand / latest.sales_per_hour end as hours_of_cover,
        case
            when latest.on_hand = 0 then 'out_of_stock'
            when latest.on_hand <= latest.reorder_point then 'below_reorder_point'
            when latest.sales_per_hour > 0 and latest.on_hand / latest.sales_per_hour < :lead_time_hours
                then 'at_risk'
        end as kind
    from latest
),

shortages as (
    select
        classified.*,
        case classified.kind when 'out_of_stock' then 1 when 'below_reorder_point' then 2 else 3 end as priority,
        cast(ceil(cast(classified.target_stock - classified.on_hand as double) / classified.case_pack) as integer)
        * classified.case_pack as quantity
    from classified
    left join open_requests
        on classified.store_id = open_requests.store_id and classified.product_id = open_requests.product_id
    left join last_dispatch
        on classified.store_id = last_dispatch.store_id and classified.product_id = last_dispatch.product_id
    where
        classified.kind is not null
        and open_requests.store_id is null
        -- a dispatch stays open until a reading taken after its arrival shows the delivered stock
        and (
            last_dispatch.eta_text is null
            or last_dispatch.eta_text <= substr(replace(cast(classified.observed_at as varchar), 'T', ' '), 1, 19)
        )
),

final as (
    select
        store_id,
        product_id,
        product_name,
        category,
        kind,
        priority,
        on_hand,
        reorder_point,
        target_stock,
        case_pack,
        quantity,
        units_sold_in_window,
        sales_per_hour,
        hours_of_cover,
        event_id as reading_event_id,
        observed_at
    from shortages
    where quantity > 0
)

select * from final
order by priority asc, hours_of_cover asc nulls last, store_id asc, product_id asc
