with users as (
    select * from {{ ref('stg_users') }}
),

orders as (
    select * from {{ ref('orders') }}
),

age_bands as (
    select * from {{ ref('age_bands') }}
),

customer_orders as (
    select
        user_id,
        min(purchased_at) as first_order_at,
        max(purchased_at) as most_recent_order_at,
        count(order_id) as number_of_orders,
        sum(case when is_returned then 0 else amount end) as lifetime_value
    from orders
    group by user_id
),

final as (
    select
        users.user_id,
        users.full_name,
        users.age,
        age_bands.age_band,
        users.nationality,
        customer_orders.first_order_at,
        customer_orders.most_recent_order_at,
        coalesce(customer_orders.number_of_orders, 0) as number_of_orders,
        coalesce(customer_orders.lifetime_value, 0) as lifetime_value
    from users
    left join customer_orders on users.user_id = customer_orders.user_id
    left join age_bands on users.age between age_bands.min_age and age_bands.max_age
)

select * from final
