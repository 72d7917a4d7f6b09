with source as (
    select * from {{ source('faker', 'users') }}
),

renamed as (
    select
        id as user_id,
        name as full_name,
        email,
        cast(age as integer) as age,
        gender,
        nationality,
        occupation,
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at
    from source
)

select * from renamed
