-- What every planning query keeps of a reading: its id, the pair, the product and the stock figures.
event_id,
store_id,
product_id,
product_name,
category,
case_pack,
on_hand,
reorder_point,
target_stock
