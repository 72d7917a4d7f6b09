with source as (
    select * from {{ source('faker', 'purchases') }}
),

renamed as (
    select
        id as purchase_id,
        user_id,
        product_id,
        cast(purchased_at as timestamp) as purchased_at,
        cast(returned_at as timestamp) as returned_at,
        cast(updated_at as timestamp) as updated_at
    from source
)

select * from renamed
