{#
    Keys shared by the identity resolution models (int_customer_*) and the fact models
    that join int_customer_keys, so both compute a source key the same way.
#}

{#
    A bank-statement party name may start with the INN (and KPP): `7701234567, ООО "Ромашка"`,
    `ИНН 7701234567 КПП 770101001 ООО Ромашка`. Lower-cased, with that prefix removed.
#}
{% macro strip_inn_prefix(expr) -%}
    regexp_replace(lower(trim({{ expr }})), '^(инн)?[ ]*[0-9]{10,12}([ ]*кпп[ ]*[0-9]{9})?[ ,;]*', '')
{%- endmacro %}

{#
    A text that is one value written twice, `X X` (a bank payer exported both as
    `Плательщик` and as `Плательщик1`, which the statement parser joins), -> `X`.
#}
{% macro dedupe_repeated_text(expr) -%}
    case
        when length({{ expr }}) % 2 = 1
            and substr({{ expr }}, cast((length({{ expr }}) + 1) / 2 as integer), 1) = ' '
            and substr({{ expr }}, 1, cast((length({{ expr }}) - 1) / 2 as integer))
                = substr({{ expr }}, cast((length({{ expr }}) + 3) / 2 as integer))
            then substr({{ expr }}, 1, cast((length({{ expr }}) - 1) / 2 as integer))
        else {{ expr }}
    end
{%- endmacro %}

{# Normalised name of a 1C / bank party (INN prefix dropped, normalize_company_name, a doubled name undoubled). #}
{% macro party_name_key(expr) -%}
    {{ dedupe_repeated_text(normalize_company_name(strip_inn_prefix(expr))) }}
{%- endmacro %}

{#
    The source key of a 1C counterparty (invoice counterparty or bank payer): `inn:<INN>`
    when the INN is checksum-valid, else `name:<party_name_key(name)>`, else
    `raw_inn:<digits>`; null when there is nothing. `inn_digits` must already be digits
    only (staging's counterparty_inn / payer_inn). Join int_customer_keys on
    source_system = 'onec_counterparty' and source_key = this.
#}
{% macro onec_counterparty_key(inn_digits, name) -%}
    coalesce(
        case when {{ inn_is_valid(inn_digits) }} then 'inn:' || {{ inn_digits }} end,
        'name:' || {{ party_name_key(name) }},
        'raw_inn:' || {{ inn_digits }}
    )
{%- endmacro %}

{# Stable customer key from an anchor key (`inn:<INN>` or `<source_system>:<source_key>`). #}
{% macro customer_id_from_anchor(anchor_key) -%}
    {{ dbt.hash(anchor_key) }}
{%- endmacro %}

{# A JSON string from a key: quoted, with `"` and `\` dropped (keys never need them). #}
{% macro json_string(expr) -%}
    '"' || replace(replace({{ expr }}, chr(92), ''), '"', '') || '"'
{%- endmacro %}

{#
    Company-name matching key of identity resolution: normalize_company_name (lower case,
    ё = е, quotes and punctuation dropped, legal forms ООО/АО/ИП/LLC/Ltd/… removed), then
    folded across scripts, because a Salesforce org exporting ISO-8859-1 spells
    `ООО "Ромашка-Трейд"` as `Romashka-Treyd OOO`:
    Cyrillic is transliterated (ж zh, х h, ц c, ч ch, ш/щ sh, ю iu, я ia, й/ы i, ъ/ь
    dropped, the rest letter for letter), transliterated legal forms (ooo, zao, oao,
    pao, ao, ip, …) are removed, and the spelling variants of transliteration are
    folded (shch/sch → sh, kh → h, ts/tz → c, x → ks, w → v, ph → f, ck → k, y/j → i,
    ii → i); spaces are dropped last (`Альфа Строй` = `AlfaStroy`). A name written twice
    (`X X`) counts once. Null for placeholder names that name nobody (`none`,
    `[not provided]`, `частное лицо`, …) and for names with initials (`IP Belov A.P.`,
    `ИП Иванов И.И.`): «Белов А.П.» is Алексей as well as Андрей Петрович, so such a
    name identifies no one (full names of sole proprietors still match).
    `ООО "Ромашка-Трейд"`, `Romashka-Treyd OOO` and `АО «Ромашка Трейд»` -> `romashkatreid`.
#}
{% macro company_match_key(expr) -%}
    {{ company_key_from_normalized(dedupe_repeated_text(normalize_company_name(expr))) }}
{%- endmacro %}

{#
    company_match_key from an already normalised name (normalize_company_name, then
    dedupe_repeated_text). The expression is referenced several times: pass a column,
    not an expression, to keep the SQL small (int_customer_identifiers normalises in
    steps for that reason, and computes company_name_transliterated as a column of its
    own so that no single expression nests too deep for a SQL parser).
#}
{% macro company_key_from_normalized(base) -%}
    {{ company_key_from_transliterated(base, company_name_transliterated(base)) }}
{%- endmacro %}

{#
    First step of company_key_from_normalized: Cyrillic transliterated and the
    transliterated legal forms removed (a text padded with spaces).
#}
{% macro company_name_transliterated(base) -%}
    {%- set ns = namespace(sql=base) -%}
    {%- for cyr, lat in [('щ', 'sh'), ('ж', 'zh'), ('х', 'h'), ('ц', 'c'), ('ч', 'ch'), ('ш', 'sh'), ('ю', 'iu'), ('я', 'ia')] -%}
        {%- set ns.sql = "replace(" ~ ns.sql ~ ", '" ~ cyr ~ "', '" ~ lat ~ "')" -%}
    {%- endfor -%}
    {%- set ns.sql = "translate(" ~ ns.sql ~ ", 'абвгдеёзийклмнопрстуфыэъь', 'abvgdeeziiklmnoprstufie')" -%}
    {%- set forms = '(ooo|oao|zao|pao|ao|ip|nko|ano|fgup|gup|mup|too|chp|tov|oo|pjsc|ojsc|cjsc|plc|ag)' -%}
    {%- set padded = "(' ' || " ~ ns.sql ~ " || ' ')" -%}
    {{ regexp_replace_all(regexp_replace_all(padded, ' ' ~ forms ~ ' ', ' '), ' ' ~ forms ~ ' ', ' ') }}
{%- endmacro %}

{#
    Second step of company_key_from_normalized: from the normalised name `base` (for the
    placeholder and initials checks) and its company_name_transliterated form, the key
    (spelling variants folded, spaces dropped) or null.
#}
{% macro company_key_from_transliterated(base, transliterated) -%}
    {%- set ns = namespace(sql=transliterated) -%}
    {%- for variant, folded in [('shch', 'sh'), ('sch', 'sh'), ('kh', 'h'), ('ts', 'c'), ('tz', 'c'), ('x', 'ks'), ('w', 'v'), ('ph', 'f'), ('ck', 'k'), ('y', 'i'), ('j', 'i'), ('ii', 'i'), ('ii', 'i'), (' ', '')] -%}
        {%- set ns.sql = "replace(" ~ ns.sql ~ ", '" ~ variant ~ "', '" ~ folded ~ "')" -%}
    {%- endfor -%}
    case
        when {{ base }} in (
            'none', 'na', 'n a', 'null', 'unknown', 'not provided', 'no company', 'test',
            'нет', 'не указано', 'не указана', 'неизвестно', 'частное лицо',
            'физ лицо', 'физлицо', 'физическое лицо'
        ) then null
        when {{ regexp_matches_portable("' ' || " ~ base ~ " || ' '", ' [a-zа-я] [a-zа-я] ') }} then null
        else nullif({{ ns.sql }}, '')
    end
{%- endmacro %}

{# Boolean: the text matches a regular expression (dispatched: DuckDB regexp_matches, else rlike). #}
{% macro regexp_matches_portable(expr, pattern) -%}
    {{ return(adapter.dispatch('regexp_matches_portable', 'crm_warehouse')(expr, pattern)) }}
{%- endmacro %}

{% macro default__regexp_matches_portable(expr, pattern) -%}
    ({{ expr }} rlike '{{ pattern }}')
{%- endmacro %}

{% macro duckdb__regexp_matches_portable(expr, pattern) -%}
    regexp_matches({{ expr }}, '{{ pattern }}')
{%- endmacro %}

{#
    The identifiers identity resolution matches on, one row per record × identifier, with
    the rule's priority (crm_link 1, phone 2, email 3, company_name 4: the first rule that
    finds a match decides). A select for a CTE over `records` (int_customer_source_records)
    and `identifiers` (int_customer_identifiers).
#}
{% macro identity_matching_identifiers(records='records', identifiers='identifiers') -%}
    select
        {{ records }}.record_id,
        {{ records }}.can_anchor,
        {{ identifiers }}.match_kind,
        {{ identifiers }}.match_value,
        case {{ identifiers }}.match_kind
            when 'crm_link' then 1
            when 'phone' then 2
            when 'email' then 3
            else 4
        end as rule_priority
    from {{ identifiers }}
    inner join {{ records }}
        on {{ records }}.source_system = {{ identifiers }}.source_system
        and {{ records }}.source_key = {{ identifiers }}.source_key
    where {{ identifiers }}.match_kind in ('crm_link', 'phone', 'email', 'company_name')
{%- endmacro %}

{#
    How identity resolution decides a record's match among its `candidates` (a relation
    with record_id, rule_priority, match_kind, match_value, anchor_key, matched_record):
    only the candidates of the record's best (lowest) rule_priority count (CTE `decisive`);
    `decided` adds anchor_count (how many customers they name: 1 = placed, more = an
    ambiguous match) and evidence_rank (1 = the match reported: lowest value, then record).
    Two CTE definitions, named by the caller, without a trailing comma.
#}
{% macro identity_decision_ctes(candidates, decisive, decided) -%}
{{ decisive }} as (
    select candidates.*
    from {{ candidates }} as candidates
    inner join (
        select
            record_id,
            min(rule_priority) as best_priority
        from {{ candidates }}
        group by record_id
    ) as best
        on best.record_id = candidates.record_id
        and best.best_priority = candidates.rule_priority
),

{{ decided }} as (
    select
        decisive.*,
        anchors.anchor_count,
        row_number() over (
            partition by decisive.record_id
            order by decisive.match_value, decisive.matched_record
        ) as evidence_rank
    from {{ decisive }} as decisive
    inner join (
        select
            record_id,
            count(distinct anchor_key) as anchor_count
        from {{ decisive }}
        group by record_id
    ) as anchors
        on anchors.record_id = decisive.record_id
)
{%- endmacro %}

{#
    Identifier rows of one source relation, for a CTE of int_customer_identifiers: for
    each (match_kind, raw value expression, source_attribute[, condition]) of
    `identifiers`, a select of source_system, source_key, match_kind, raw_value and
    source_attribute from `relation`, the selects joined by union all. A row's condition,
    else `where`, filters that select (none: every row).
#}
{% macro identifier_rows(source_system, relation, source_key, identifiers, where=none) -%}
    {%- for identifier in identifiers %}
    {%- set condition = identifier[3] if identifier | length > 3 else where %}
    {%- if not loop.first %}

    union all
    {% endif %}
    select
        '{{ source_system }}' as source_system,
        {{ relation }}.{{ source_key }} as source_key,
        '{{ identifier[0] }}' as match_kind,
        {{ identifier[1] }} as raw_value,
        '{{ identifier[2] }}' as source_attribute
    from {{ relation }}
    {%- if condition is not none %}
    where {{ condition }}
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
