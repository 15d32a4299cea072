-- How many readings taken at one time (of one store, or of every store) Athena can read now:
-- the check that a run's readings have landed, and the post-deploy check's count.
-- Grain: one row. Parameters: :observed_at (the readings' exact timestamp), :store_id ('' for
-- every store), and the partition range :start_dt/:start_hour to :end_dt/:end_hour (the hours in
-- which Firehose may have delivered them).

with

landed as (
    select
        event_id
    from {inventory_table}
    where
        {partition_range}
        and observed_at = :observed_at
        and (:store_id = '' or store_id = :store_id)
),

final as (
    select
        count(*) as readings,
        count(distinct event_id) as distinct_readings
    from landed
)

select * from final
