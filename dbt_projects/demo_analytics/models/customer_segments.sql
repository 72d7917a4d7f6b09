with customers as (
    select * from {{ source('sales_marts', 'customers') }}
),

final as (
    select
        coalesce(age_band, 'unknown') as age_band,
        count(*) as customers,
        sum(number_of_orders) as orders,
        sum(lifetime_value) as lifetime_value,
        avg(lifetime_value) as average_lifetime_value
    from customers
    group by 1
)

select * from final
