{#- Custom schemas are used as they are (staging, marts), so other dbt projects can read them by name. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name | trim if custom_schema_name else target.schema }}
{%- endmacro %}
