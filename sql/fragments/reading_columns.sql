-- What every planning query keeps of a reading: its id, the pair, the product, the stock and the price.
event_id,
store_id,
product_id,
product_name,
category,
case_pack,
on_hand,
price,
on_promotion
