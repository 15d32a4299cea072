-- A reading's observed_at as ISO-8601 UTC text with milliseconds (2026-11-27T10:05:00.120Z) in both
-- engines: Athena reads the reading's own text (which this leaves as it is), the emulator's JSON reader
-- a timestamp with time zone, whose text is 2026-11-27 10:05:00.12+00. Text of one width sorts in time
-- order, so rows of the rollup (Parquet text) and of the raw readings sort together.
concat(
    substr(replace(cast(observed_at as varchar), ' ', 'T'), 1, 19),
    '.',
    rpad(
        case
            when substr(cast(observed_at as varchar), 20, 1) = '.'
                then substr(split_part(substr(cast(observed_at as varchar), 21), '+', 1), 1, 3)
            else ''
        end,
        3,
        '0'
    ),
    'Z'
) as observed_at_text
