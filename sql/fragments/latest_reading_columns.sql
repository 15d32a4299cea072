-- What a planning query keeps of a pair's latest reading (from window_reading_columns).
window_readings.event_id,
window_readings.store_id,
window_readings.product_id,
window_readings.product_name,
window_readings.category,
window_readings.case_pack,
window_readings.on_hand,
window_readings.observed_at,
window_readings.units_sold_in_window
