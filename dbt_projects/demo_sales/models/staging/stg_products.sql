with source as (
    select * from {{ source('faker', 'products') }}
),

renamed as (
    select
        id as product_id,
        make,
        model,
        cast(year as integer) as model_year,
        cast(price as numeric(12, 2)) as price
    from source
)

select * from renamed
