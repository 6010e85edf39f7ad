{#
    Salesforce Ids come as 15-character (case-sensitive) or 18-character (15 + a
    3-character case-safe suffix) forms; the same record can appear in both. The first 15
    characters identify the record, so every Id and every reference is reduced to them.
#}
{% macro sf_id15(expr) -%}
    case
        when length(trim({{ expr }})) = 18 then substr(trim({{ expr }}), 1, 15)
        else nullif(trim({{ expr }}), '')
    end
{%- endmacro %}

{#
    E.164 phone number. Russian numbers written 8XXXXXXXXXX, 7XXXXXXXXXX, +7XXXXXXXXXX or
    with the 10-digit national number only ((916) 123-45-67) all become +7XXXXXXXXXX; a
    number written with '+' keeps its country code; an extension suffix (`доб. 12`, `ext`,
    `#`) is dropped. Internal extensions and garbage -> null.
#}
{% macro normalize_phone(expr) -%}
    {%- set base = regexp_replace_all("lower(trim(" ~ expr ~ "))", '(доб|ext|#).*$', '') -%}
    {%- set d = regexp_replace_all(base, '[^0-9]', '') -%}
    case
        when {{ d }} is null or {{ d }} = '' then null
        when trim({{ expr }}) like '+%' and length({{ d }}) between 8 and 15 then '+' || {{ d }}
        when length({{ d }}) = 11 and substr({{ d }}, 1, 1) = '8' then '+7' || substr({{ d }}, 2)
        when length({{ d }}) = 11 and substr({{ d }}, 1, 1) = '7' then '+' || {{ d }}
        when length({{ d }}) = 10 then '+7' || {{ d }}
        when substr({{ d }}, 1, 2) = '00' and length({{ d }}) between 10 and 17 then '+' || substr({{ d }}, 3)
    end
{%- endmacro %}

{#
    Russian taxpayer number (ИНН) checksum, on a digits-only expression (a character that
    is not a digit makes it invalid: try_cast, never a failed build).
    10 digits (organisations): n10 = (Σ w_i·d_i mod 11) mod 10, w = 2,4,10,3,5,9,4,6,8.
    12 digits (individuals): n11 with w = 7,2,4,10,3,5,9,4,6,8 and n12 with
    w = 3,7,2,4,10,3,5,9,4,6,8, each (Σ mod 11) mod 10. All zeros is not a valid INN.
#}
{% macro inn_is_valid(expr) -%}
    {%- set w10 = [2, 4, 10, 3, 5, 9, 4, 6, 8] -%}
    {%- set w11 = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8] -%}
    {%- set w12 = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8] -%}
    coalesce(
        case
            when {{ expr }} is null or {{ expr }} = '000000000000' or {{ expr }} = '0000000000' then false
            when length({{ expr }}) = 10 then
                {{ _inn_check_digit(expr, w10) }} = {{ try_cast('substr(' ~ expr ~ ', 10, 1)', 'integer') }}
            when length({{ expr }}) = 12 then
                {{ _inn_check_digit(expr, w11) }} = {{ try_cast('substr(' ~ expr ~ ', 11, 1)', 'integer') }}
                and {{ _inn_check_digit(expr, w12) }} = {{ try_cast('substr(' ~ expr ~ ', 12, 1)', 'integer') }}
            else false
        end,
        false
    )
{%- endmacro %}

{% macro _inn_check_digit(expr, weights) -%}
    ((
        {%- for w in weights -%}
            {{ w }} * {{ try_cast('substr(' ~ expr ~ ', ' ~ loop.index ~ ', 1)', 'integer') }}
            {%- if not loop.last %} + {% endif -%}
        {%- endfor -%}
    ) % 11 % 10)
{%- endmacro %}
