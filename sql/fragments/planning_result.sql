-- The end of every planning query: its ordered candidates (one row per pair, with kind, levels, quantity
-- and what the ledger says is open) become the result every policy returns, by priority then cover.
final as (
    select
        store_id,
        product_id,
        product_name,
        category,
        kind,
        case kind when 'out_of_stock' then 1 when 'below_reorder_point' then 2 else 3 end as priority,
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
    from ordered
    where
        kind is not null
        and quantity > 0
        and not has_open_request
        and not delivery_pending
)

select * from final
-- cover rounded to a microhour: sums taken in another order (rollup or raw) must not reorder equal covers
order by priority asc, round(hours_of_cover, 6) asc nulls last, store_id asc, product_id asc
