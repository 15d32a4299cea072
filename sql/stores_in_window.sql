-- Which of the requested stores have readings in the planning window (to name unknown ids).
-- Grain: one row per store_id. Parameters as in shortages.sql (with a non-empty :store_filter);
-- The window predicate is the fragment sql/fragments/window_readings_predicate.sql.

with

window_stores as (
    select distinct store_id
    from {inventory_table}
    where
        {window_readings_predicate}
),

final as (
    select store_id from window_stores
)

select * from final
