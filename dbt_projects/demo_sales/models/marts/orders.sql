with purchases as (
    select * from {{ ref('stg_purchases') }}
),

products as (
    select * from {{ ref('stg_products') }}
),

final as (
    select
        purchases.purchase_id as order_id,
        purchases.user_id,
        purchases.product_id,
        purchases.purchased_at,
        purchases.returned_at is not null as is_returned,
        products.price as amount
    from purchases
    inner join products on purchases.product_id = products.product_id
    where purchases.purchased_at is not null
)

select * from final
