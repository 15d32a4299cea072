-- The planogram CTE every planning query shares: nothing more than a pair's capacity fits on its shelf.
shelves as (
    select
        store_id,
        product_id,
        shelf_capacity
    from {planogram_table}
    where :store_filter = '' or strpos(:store_filter, concat(',', store_id, ',')) > 0
)
