with orders as (
    select * from {{ source('sales_marts', 'orders') }}
),

final as (
    select
        cast(purchased_at as date) as order_date,
        count(*) as orders,
        sum(case when is_returned then 0 else amount end) as revenue
    from orders
    group by 1
)

select * from final
