-- Which of the requested stores have readings in the planning window (to name unknown ids).
-- Grain: one row per store_id. Parameters as in shortages.sql.

with

window_stores as (
    select distinct store_id
    from {inventory_table}
    where
        (dt > :start_dt or (dt = :start_dt and hour >= :start_hour))
        and (dt < :end_dt or (dt = :end_dt and hour <= :end_hour))
        and observed_at > :window_start
        and observed_at <= :as_of
        and strpos(:store_filter, concat(',', store_id, ',')) > 0
),

final as (
    select store_id from window_stores
)

select * from final
