-- Each reading of the window with its pair's totals over the window and its recency (1 = latest).
{reading_columns},
observed_at,
sum(units_sold) over (partition by store_id, product_id) as units_sold_in_window,
-- the hours the window's readings cover: each reports the sales since its previous one
sum(period_hours) over (partition by store_id, product_id) as hours_in_window,
row_number() over (
    partition by store_id, product_id
    order by observed_at desc, event_id desc
) as recency
