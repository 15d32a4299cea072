-- The readings of the planning window: partition predicates first (Athena reads only the
-- window's dt/hour partitions), then the exact observed_at bounds [window_start, as_of] and the store filter.
{partition_range}
and observed_at >= :window_start
and observed_at <= :as_of
and (:store_filter = '' or strpos(:store_filter, concat(',', store_id, ',')) > 0)
