-- The demand forecast of every store-product for the next days, from the daily rollup: computed once a day
-- (flows/forecast.py) into the table every plan of the day joins. Grain: one row per (store_id, product_id,
-- with the expected demand of the horizon days :h0_day, :h1_day, :h2_day. See forecast.md for the method. Each table is read by
-- one CTE that is referenced once (Trino inlines every reference). Runs unchanged on Athena (Trino) and on the
-- emulator (DuckDB). The table names (slots daily_table, products_table, promotions_table) are validated
-- identifiers; values are :parameters.

with

history as (
    -- the days the forecast learns from: [:first_day, :last_day]
    select
        store_id,
        product_id,
        category,
        case_pack,
        day,
        units_sold,
        empty_hours,
        promoted,
        price,
        sold_h00,
        sold_h01,
        sold_h02,
        sold_h03,
        sold_h04,
        sold_h05,
        sold_h06,
        sold_h07,
        sold_h08,
        sold_h09,
        sold_h10,
        sold_h11,
        sold_h12,
        sold_h13,
        sold_h14,
        sold_h15,
        sold_h16,
        sold_h17,
        sold_h18,
        sold_h19,
        sold_h20,
        sold_h21,
        sold_h22,
        sold_h23,
        empty_mask
    from {daily_table}
    where dt >= :first_day and dt <= :last_day
),

catalogue as (
    select
        product_id,
        price as regular_price
    from {products_table}
),

flagged as (
    -- each day's weekday (1 Monday .. 7 Sunday), age (1: the day before the forecast) and discount
    select
        history.*,
        (date_diff('day', date '2000-01-03', cast(history.day as date)) % 7) + 1 as weekday,
        date_diff('day', cast(history.day as date), cast(:h0_day as date)) as age,
        greatest(0.0, 1.0 - history.price / nullif(catalogue.regular_price, 0)) as discount
    from history
    left join catalogue on history.product_id = catalogue.product_id
),

profiled as (
    -- the hour-of-day sales of each store and category, pooled over its products and days
    select
        flagged.*,
        sum(sold_h00) over (partition by store_id, category) as hour_00,
        sum(sold_h01) over (partition by store_id, category) as hour_01,
        sum(sold_h02) over (partition by store_id, category) as hour_02,
        sum(sold_h03) over (partition by store_id, category) as hour_03,
        sum(sold_h04) over (partition by store_id, category) as hour_04,
        sum(sold_h05) over (partition by store_id, category) as hour_05,
        sum(sold_h06) over (partition by store_id, category) as hour_06,
        sum(sold_h07) over (partition by store_id, category) as hour_07,
        sum(sold_h08) over (partition by store_id, category) as hour_08,
        sum(sold_h09) over (partition by store_id, category) as hour_09,
        sum(sold_h10) over (partition by store_id, category) as hour_10,
        sum(sold_h11) over (partition by store_id, category) as hour_11,
        sum(sold_h12) over (partition by store_id, category) as hour_12,
        sum(sold_h13) over (partition by store_id, category) as hour_13,
        sum(sold_h14) over (partition by store_id, category) as hour_14,
        sum(sold_h15) over (partition by store_id, category) as hour_15,
        sum(sold_h16) over (partition by store_id, category) as hour_16,
        sum(sold_h17) over (partition by store_id, category) as hour_17,
        sum(sold_h18) over (partition by store_id, category) as hour_18,
        sum(sold_h19) over (partition by store_id, category) as hour_19,
        sum(sold_h20) over (partition by store_id, category) as hour_20,
        sum(sold_h21) over (partition by store_id, category) as hour_21,
        sum(sold_h22) over (partition by store_id, category) as hour_22,
        sum(sold_h23) over (partition by store_id, category) as hour_23
    from flagged
),

uncensored as (
    -- the share of a day's demand that fell in hours its shelf was stocked: an hour counts as censored when
    -- the reading before it found the shelf empty and it sold nothing (a night's empty hours weigh nothing)
    select
        profiled.*,
        1.0 - coalesce(
            (
                case when substr(empty_mask, 1, 1) = '1' and sold_h01 = 0 then hour_01 else 0 end
                + case when substr(empty_mask, 2, 1) = '1' and sold_h02 = 0 then hour_02 else 0 end
                + case when substr(empty_mask, 3, 1) = '1' and sold_h03 = 0 then hour_03 else 0 end
                + case when substr(empty_mask, 4, 1) = '1' and sold_h04 = 0 then hour_04 else 0 end
                + case when substr(empty_mask, 5, 1) = '1' and sold_h05 = 0 then hour_05 else 0 end
                + case when substr(empty_mask, 6, 1) = '1' and sold_h06 = 0 then hour_06 else 0 end
                + case when substr(empty_mask, 7, 1) = '1' and sold_h07 = 0 then hour_07 else 0 end
                + case when substr(empty_mask, 8, 1) = '1' and sold_h08 = 0 then hour_08 else 0 end
                + case when substr(empty_mask, 9, 1) = '1' and sold_h09 = 0 then hour_09 else 0 end
                + case when substr(empty_mask, 10, 1) = '1' and sold_h10 = 0 then hour_10 else 0 end
                + case when substr(empty_mask, 11, 1) = '1' and sold_h11 = 0 then hour_11 else 0 end
                + case when substr(empty_mask, 12, 1) = '1' and sold_h12 = 0 then hour_12 else 0 end
                + case when substr(empty_mask, 13, 1) = '1' and sold_h13 = 0 then hour_13 else 0 end
                + case when substr(empty_mask, 14, 1) = '1' and sold_h14 = 0 then hour_14 else 0 end
                + case when substr(empty_mask, 15, 1) = '1' and sold_h15 = 0 then hour_15 else 0 end
                + case when substr(empty_mask, 16, 1) = '1' and sold_h16 = 0 then hour_16 else 0 end
                + case when substr(empty_mask, 17, 1) = '1' and sold_h17 = 0 then hour_17 else 0 end
                + case when substr(empty_mask, 18, 1) = '1' and sold_h18 = 0 then hour_18 else 0 end
                + case when substr(empty_mask, 19, 1) = '1' and sold_h19 = 0 then hour_19 else 0 end
                + case when substr(empty_mask, 20, 1) = '1' and sold_h20 = 0 then hour_20 else 0 end
                + case when substr(empty_mask, 21, 1) = '1' and sold_h21 = 0 then hour_21 else 0 end
                + case when substr(empty_mask, 22, 1) = '1' and sold_h22 = 0 then hour_22 else 0 end
                + case when substr(empty_mask, 23, 1) = '1' and sold_h23 = 0 then hour_23 else 0 end
            )
            / nullif(cast((hour_00 + hour_01 + hour_02 + hour_03 + hour_04 + hour_05 + hour_06 + hour_07 + hour_08 + hour_09 + hour_10 + hour_11 + hour_12 + hour_13 + hour_14 + hour_15 + hour_16 + hour_17 + hour_18 + hour_19 + hour_20 + hour_21 + hour_22 + hour_23) as double), 0),
            0.0
        ) as in_stock
    from profiled
),

judged as (
    -- which days teach the level (regular price, at least :min_in_stock of their demand stocked) and the
    -- promotions' lift, and each such day's demand: its sales over its stocked share (sales of a censored day
    -- understate its demand; dropping it would keep only the days that sold little)
    select
        uncensored.*,
        promoted = 0 and in_stock >= :min_in_stock as base,
        promoted = 1 and in_stock >= :min_in_stock as promo_day,
        case when in_stock >= :min_in_stock then units_sold / in_stock end as demand
    from uncensored
),

pooled as (
    -- the weekday profile of each store and category (from its days' demand), pooled over its products
    select
        judged.*,
        (
            cast(sum(case when base then demand else 0 end) over (partition by store_id, category, weekday) as double)
            / nullif(sum(case when base then 1 else 0 end) over (partition by store_id, category, weekday), 0)
        )
        / nullif(
            cast(sum(case when base then demand else 0 end) over (partition by store_id, category) as double)
            / nullif(sum(case when base then 1 else 0 end) over (partition by store_id, category), 0),
            0
        ) as dow_factor,
        power(1.0 - :alpha_level, age - 1) as w_level,
        power(1.0 - :alpha_occurrence, age - 1) as w_occurrence,
        power(1.0 - :alpha_size, age - 1) as w_size
    from judged
),

pairs as (
    -- per pair: the smoothed level of its deseasonalised sales (exponential weights, base days only), its
    -- demand occurrence and size (TSB), the spread, what its promotions sold, its weekday profile
    select
        store_id,
        product_id,
        max(category) as category,
        max(case_pack) as case_pack,
        sum(case when base then w_level * demand / coalesce(nullif(dow_factor, 0), 1.0) end)
        / nullif(sum(case when base then w_level end), 0) as level,
        sum(case when base then w_level * power(demand / coalesce(nullif(dow_factor, 0), 1.0), 2) end)
        / nullif(sum(case when base then w_level end), 0) as level_square,
        sum(case when base then w_occurrence * (case when units_sold > 0 then 1.0 else 0.0 end) end)
        / nullif(sum(case when base then w_occurrence end), 0) as occurrence,
        sum(case when base and units_sold > 0 then w_size * demand / coalesce(nullif(dow_factor, 0), 1.0) end)
        / nullif(sum(case when base and units_sold > 0 then w_size end), 0) as size,
        sum(case when base then 1 else 0 end) as base_days,
        sum(case when base and units_sold > 0 then 1 else 0 end) as selling_days,
        cast(sum(units_sold) as double) / count(*) as all_days_mean,
        sum(case when promo_day then demand else 0 end) as promo_units,
        sum(case when promo_day then coalesce(dow_factor, 1.0) else 0 end) as promo_base_days,
        sum(case when promo_day then discount else 0 end) as promo_discount,
        sum(case when promo_day then 1 else 0 end) as promo_days,
        coalesce(max(case when weekday = 1 then dow_factor end), 1.0) as dow_1,
        coalesce(max(case when weekday = 2 then dow_factor end), 1.0) as dow_2,
        coalesce(max(case when weekday = 3 then dow_factor end), 1.0) as dow_3,
        coalesce(max(case when weekday = 4 then dow_factor end), 1.0) as dow_4,
        coalesce(max(case when weekday = 5 then dow_factor end), 1.0) as dow_5,
        coalesce(max(case when weekday = 6 then dow_factor end), 1.0) as dow_6,
        coalesce(max(case when weekday = 7 then dow_factor end), 1.0) as dow_7,
        max(hour_00) as hour_00,
        max(hour_01) as hour_01,
        max(hour_02) as hour_02,
        max(hour_03) as hour_03,
        max(hour_04) as hour_04,
        max(hour_05) as hour_05,
        max(hour_06) as hour_06,
        max(hour_07) as hour_07,
        max(hour_08) as hour_08,
        max(hour_09) as hour_09,
        max(hour_10) as hour_10,
        max(hour_11) as hour_11,
        max(hour_12) as hour_12,
        max(hour_13) as hour_13,
        max(hour_14) as hour_14,
        max(hour_15) as hour_15,
        max(hour_16) as hour_16,
        max(hour_17) as hour_17,
        max(hour_18) as hour_18,
        max(hour_19) as hour_19,
        max(hour_20) as hour_20,
        max(hour_21) as hour_21,
        max(hour_22) as hour_22,
        max(hour_23) as hour_23,
        count(*) as history_days
    from pooled
    group by store_id, product_id
),

estimated as (
    -- the method per pair (intermittent: TSB's occurrence x size; otherwise the level) and what promotions lift
    -- per unit of discount, pooled over the stores (a product's promotions are chain-wide) and its category
    select
        pairs.*,
        case when selling_days > 0 and cast(base_days as double) / selling_days >= :intermittent_adi then 'intermittent' else 'smooth' end
            as method,
        sum(promo_units) over (partition by product_id) as product_promo_units,
        sum(promo_base_days * coalesce(level, all_days_mean)) over (partition by product_id) as product_promo_expected,
        sum(promo_discount) over (partition by product_id) as product_promo_discount,
        sum(promo_days) over (partition by product_id) as product_promo_days,
        sum(promo_days) over (partition by category) as category_promo_days,
        sum(promo_units) over (partition by category) as category_promo_units,
        sum(promo_base_days * coalesce(level, all_days_mean)) over (partition by category) as category_promo_expected,
        sum(promo_discount) over (partition by category) as category_promo_discount,
        hour_00 + hour_01 + hour_02 + hour_03 + hour_04 + hour_05 + hour_06 + hour_07 + hour_08 + hour_09 + hour_10 + hour_11 + hour_12 + hour_13 + hour_14 + hour_15 + hour_16 + hour_17 + hour_18 + hour_19 + hour_20 + hour_21 + hour_22 + hour_23 as hour_total
    from pairs
),

models as (
    select
        estimated.*,
        coalesce(
            case when method = 'intermittent' then occurrence * size else level end, all_days_mean, 0.0
        ) as daily_level,
        (product_promo_days * coalesce(
            (product_promo_units / nullif(product_promo_expected, 0) - 1)
            / nullif(product_promo_discount / nullif(product_promo_days, 0), 0),
            :default_elasticity
        ) + :promo_prior_days * coalesce(
            (category_promo_units / nullif(category_promo_expected, 0) - 1)
            / nullif(category_promo_discount / nullif(category_promo_days, 0), 0),
            :default_elasticity
        )) / (product_promo_days + :promo_prior_days) as elasticity_raw
    from estimated
),

horizon_promotions as (
    -- the promotion plan of the horizon days, a column per day (a product's promotions never overlap)
    select
        product_id,
        max(case when start_date <= :h0_day and end_date >= :h0_day then discount_pct end) as discount_d0,
        max(case when start_date <= :h1_day and end_date >= :h1_day then discount_pct end) as discount_d1,
        max(case when start_date <= :h2_day and end_date >= :h2_day then discount_pct end) as discount_d2
    from {promotions_table}
    where end_date >= :h0_day and start_date <= :h2_day
    group by product_id
),

final as (
    -- one row per pair: the expected demand of each horizon day (its weekday and its promotion applied)
    select
        models.store_id,
        models.product_id,
        models.category,
        cast(models.case_pack as integer) as case_pack,
        models.method,
        models.daily_level as level,
        greatest(1.0, coalesce(
            (models.level_square - power(models.level, 2)) / nullif(models.level, 0), 1.0
        )) as dispersion,
        greatest(0.0, least(:max_elasticity, coalesce(models.elasticity_raw, :default_elasticity))) as elasticity,
        models.daily_level
        * case :h0_weekday
            when 1 then models.dow_1 when 2 then models.dow_2 when 3 then models.dow_3 when 4 then models.dow_4
            when 5 then models.dow_5 when 6 then models.dow_6 else models.dow_7
        end
        * (1.0 + greatest(0.0, least(:max_elasticity, coalesce(models.elasticity_raw, :default_elasticity)))
            * coalesce(horizon_promotions.discount_d0, 0) / 100.0) as mean_d0,
        coalesce(horizon_promotions.discount_d0, 0) as discount_d0,
        models.daily_level
        * case :h1_weekday
            when 1 then models.dow_1 when 2 then models.dow_2 when 3 then models.dow_3 when 4 then models.dow_4
            when 5 then models.dow_5 when 6 then models.dow_6 else models.dow_7
        end
        * (1.0 + greatest(0.0, least(:max_elasticity, coalesce(models.elasticity_raw, :default_elasticity)))
            * coalesce(horizon_promotions.discount_d1, 0) / 100.0) as mean_d1,
        coalesce(horizon_promotions.discount_d1, 0) as discount_d1,
        models.daily_level
        * case :h2_weekday
            when 1 then models.dow_1 when 2 then models.dow_2 when 3 then models.dow_3 when 4 then models.dow_4
            when 5 then models.dow_5 when 6 then models.dow_6 else models.dow_7
        end
        * (1.0 + greatest(0.0, least(:max_elasticity, coalesce(models.elasticity_raw, :default_elasticity)))
            * coalesce(horizon_promotions.discount_d2, 0) / 100.0) as mean_d2,
        coalesce(horizon_promotions.discount_d2, 0) as discount_d2,
        cast(hour_00 as double) / nullif(hour_total, 0) as share_h00,
        cast(hour_01 as double) / nullif(hour_total, 0) as share_h01,
        cast(hour_02 as double) / nullif(hour_total, 0) as share_h02,
        cast(hour_03 as double) / nullif(hour_total, 0) as share_h03,
        cast(hour_04 as double) / nullif(hour_total, 0) as share_h04,
        cast(hour_05 as double) / nullif(hour_total, 0) as share_h05,
        cast(hour_06 as double) / nullif(hour_total, 0) as share_h06,
        cast(hour_07 as double) / nullif(hour_total, 0) as share_h07,
        cast(hour_08 as double) / nullif(hour_total, 0) as share_h08,
        cast(hour_09 as double) / nullif(hour_total, 0) as share_h09,
        cast(hour_10 as double) / nullif(hour_total, 0) as share_h10,
        cast(hour_11 as double) / nullif(hour_total, 0) as share_h11,
        cast(hour_12 as double) / nullif(hour_total, 0) as share_h12,
        cast(hour_13 as double) / nullif(hour_total, 0) as share_h13,
        cast(hour_14 as double) / nullif(hour_total, 0) as share_h14,
        cast(hour_15 as double) / nullif(hour_total, 0) as share_h15,
        cast(hour_16 as double) / nullif(hour_total, 0) as share_h16,
        cast(hour_17 as double) / nullif(hour_total, 0) as share_h17,
        cast(hour_18 as double) / nullif(hour_total, 0) as share_h18,
        cast(hour_19 as double) / nullif(hour_total, 0) as share_h19,
        cast(hour_20 as double) / nullif(hour_total, 0) as share_h20,
        cast(hour_21 as double) / nullif(hour_total, 0) as share_h21,
        cast(hour_22 as double) / nullif(hour_total, 0) as share_h22,
        cast(hour_23 as double) / nullif(hour_total, 0) as share_h23,
        cast(models.base_days as integer) as base_days,
        cast(models.history_days as integer) as history_days
    from models
    left join horizon_promotions on horizon_promotions.product_id = models.product_id
)

select * from final
order by store_id asc, product_id asc
