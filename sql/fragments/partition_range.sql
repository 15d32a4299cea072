-- The dt/hour partitions from :start_dt/:start_hour to :end_dt/:end_hour (Athena reads only these).
(dt > :start_dt or (dt = :start_dt and hour >= :start_hour))
and (dt < :end_dt or (dt = :end_dt and hour <= :end_hour))
