{#
    Helpers of the finance models (invoices, payments, receivables). Patterns avoid
    backslashes (Spark SQL string literals would eat them) and only use constructs RE2
    (DuckDB) and Java regex (Spark) share: character classes, (?:…), {m,n}.
#}

{#
    Matching key of an invoice number, as a bigint: the number's trailing run of digits
    without leading zeros (`123` -> 123, `0456` -> 456, `00БП-000123` -> 123). Null when
    the number does not end in a digit (`60-Ч`, a draft): such an invoice can only be
    matched by hand. Payment purposes are parsed to the same key.
#}
{% macro invoice_number_key(expr) -%}
    {{ try_cast("nullif(regexp_extract(trim(" ~ expr ~ "), '([0-9]{1,18})$', 1), '')", 'bigint') }}
{%- endmacro %}

{#
    A payment purpose prepared for parsing: lower case, every run of characters other
    than letters, digits, `№ # . , ; /` collapsed into one space, padded with spaces.
#}
{% macro _purpose_for_parsing(expr) -%}
    (' ' || {{ regexp_replace_all("lower(coalesce(" ~ expr ~ ", ''))", '[^0-9a-zа-яё№#.,;/]+', ' ') }} || ' ')
{%- endmacro %}

{# A date written after an invoice number: `от 05.03.2026`, `от 12.01.26`, `от 05.03.2026г.`. #}
{% macro _invoice_date_pattern() -%}
    {{- 'от ?[0-9]{1,2}[.][0-9]{1,2}[.]([0-9]{4}|[0-9]{2})(?: ?г[.]?)?' -}}
{%- endmacro %}

{#
    The invoice reference of a payment purpose: a word for "invoice" (счет/счёт in any
    case form, `сч.`, `invoice`, `inv`, optionally followed by `на оплату`), then a list
    of invoice numbers. Each number may be introduced by `№`, `№№`, `N`, `No`, `#` and
    followed by its date (`от DD.MM.YYYY`); numbers are separated by `,` `;` `/` `и`
    `and` `&`, optionally repeating the invoice word. Group 1 = the whole list.
    `Оплата по счету № 123 от 05.03.2026, в т.ч. НДС 20%` -> `№ 123 от 05.03.2026`;
    `Оплата по счетам № 692 от 22.10.2025 и № 730 от 05.11.2025` -> both numbers;
    `Оплата по сч. 601, 669`, `по счетам №№ 692, 730`, `по счетам 692/730`,
    `по счету 7 и счету 8`, `Предоплата по счёту №0112`, `оплата сч.№46 от 12.01.26`.
    A number that is not introduced by an invoice word (`по договору № Д-5/2026`, the
    VAT figure `- 3333-33`, `(20%)`) is never read.
#}
{% macro _invoice_reference_pattern() -%}
    {%- set word = '(?:сч[её]т[а-яё]*|сч|invoices?|inv)[.]?' -%}
    {%- set marker = '(?:№|no[.]?|n|#)' -%}
    {%- set item = '(?:' ~ marker ~ ' ?)*[.]? ?[0-9]+(?: ?' ~ _invoice_date_pattern() ~ ')?' -%}
    {%- set separator = '(?: ?[,;/] ?| и | and | & )(?:' ~ word ~ ' ?)?' -%}
    {{- '[^a-zа-яё]' ~ word ~ ' ?(?:на оплату ?)?(' ~ item ~ '(?:' ~ separator ~ item ~ ')*)' -}}
{%- endmacro %}

{# The list of a purpose's invoice reference (group 1 of the pattern), '' when none. #}
{% macro _purpose_invoice_list(expr) -%}
    regexp_extract({{ _purpose_for_parsing(expr) }}, '{{ _invoice_reference_pattern() }}', 1)
{%- endmacro %}

{# The invoice numbers a purpose names, in the order written, as digits separated by single spaces (`692 730`); null when none. #}
{% macro purpose_invoice_numbers(expr) -%}
    nullif(trim({{ regexp_replace_all(
        regexp_replace_all(_purpose_invoice_list(expr), _invoice_date_pattern(), ' '),
        '[^0-9]+', ' ') }}), '')
{%- endmacro %}

{# The year of the first invoice date written in the list (`от 05.03.2026` -> 2026, `от 12.01.26` -> 2026); null when none. #}
{% macro purpose_invoice_year(expr) -%}
    {%- set raw = "nullif(regexp_extract(" ~ _purpose_invoice_list(expr) ~ ", '" ~ _invoice_date_pattern() ~ "', 1), '')" -%}
    case
        when length({{ raw }}) = 2 then 2000 + {{ try_cast(raw, 'integer') }}
        else {{ try_cast(raw, 'integer') }}
    end
{%- endmacro %}

{#
    Aging bucket of a number of days overdue (metric contract, Receivables): `not_due`
    (0 or less: not yet due, or due today), `1-30`, `31-60`, `61-90`, `90+` (91 and more).
#}
{% macro aging_bucket(days_overdue) -%}
    case
        when {{ days_overdue }} <= 0 then 'not_due'
        when {{ days_overdue }} <= 30 then '1-30'
        when {{ days_overdue }} <= 60 then '31-60'
        when {{ days_overdue }} <= 90 then '61-90'
        else '90+'
    end
{%- endmacro %}

{# The "as of" date of receivables: the local date of var `as_of` (default: today, company time zone). #}
{% macro as_of_date() -%}
    cast({{ as_of_timestamp() }} as date)
{%- endmacro %}

{#
    The days receivables are measured on (mart_receivables_aging, mart_dso), for a CTE:
    every day of `dates` (dim_date) from the date of the first of `invoices` — or, with
    `whole_first_month`, from the first day of its month — to the as-of date, as
    date_day, month_start and is_month_end (the month's last day).
#}
{% macro receivables_days(dates, invoices, whole_first_month=false) -%}
    select
        dates.date_day,
        dates.month_start,
        dates.date_day = cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'dates.month_start')) }} as date) as is_month_end
    from {{ dates }} as dates
    cross join (
        select
            min(invoices.issued_on) as first_day,
            {{ as_of_date() }} as last_day
        from {{ invoices }} as invoices
    ) as bounds
    where dates.date_day >= {% if whole_first_month %}{{ month_start('bounds.first_day') }}{% else %}bounds.first_day{% endif %}
        and dates.date_day <= bounds.last_day
{%- endmacro %}

{#
    Condition: a bank statement line (stg_onec__bank_payment) is a payment received from
    a customer: credited to the statement's own account (or, with no statement account,
    dated as received), and not a transfer between accounts of one INN. `relation` is the
    alias qualifying the columns (none: unqualified).
#}
{% macro is_received_payment(relation=none) -%}
    {%- set p = relation ~ '.' if relation else '' -%}
    (
        {{ p }}recipient_account = {{ p }}statement_account
        or ({{ p }}statement_account is null and {{ p }}received_on is not null)
    )
    and (
        {{ p }}payer_inn is null
        or {{ p }}recipient_inn is null
        or {{ p }}payer_inn <> {{ p }}recipient_inn
    )
{%- endmacro %}

{#
    The customer of a 1C party (invoice counterparty, bank payer): its int_customer_keys
    row (`keys`) by the onec_counterparty key, else by its INN alone. The joins add the
    aliases counterparty_customers and inn_customers; onec_customer_columns() reads them.
#}
{% macro onec_customer_joins(keys, counterparty_key, inn) -%}
    left join {{ keys }} as counterparty_customers
        on
            counterparty_customers.source_system = 'onec_counterparty'
            and {{ counterparty_key }} = counterparty_customers.source_key
    left join {{ keys }} as inn_customers
        on
            inn_customers.source_system = 'inn'
            and {{ inn }} = inn_customers.source_key
{%- endmacro %}

{# customer_id and customer_match (the key that found it) of onec_customer_joins. #}
{% macro onec_customer_columns() -%}
    coalesce(counterparty_customers.customer_id, inn_customers.customer_id) as customer_id,
    case
        when counterparty_customers.customer_id is not null then 'onec_counterparty'
        when inn_customers.customer_id is not null then 'inn'
    end as customer_match
{%- endmacro %}

{#
    Join condition: the row of `relation` (a validity interval: valid_from inclusive,
    valid_to exclusive, null = still valid) that holds on the date `day`.
#}
{% macro valid_on(relation, day) -%}
    {{ day }} >= {{ relation }}.valid_from
    and ({{ relation }}.valid_to is null or {{ day }} < {{ relation }}.valid_to)
{%- endmacro %}

{#
    Join condition on int_currency_rates (alias `rates`): the rate of `currency` (default:
    the reporting currency, var reporting_currency) valid on the date `day`.
#}
{% macro rate_on(rates, day, currency=none) -%}
    {%- set currency_expr = currency if currency is not none else "'" ~ var('reporting_currency') ~ "'" -%}
    {{ rates }}.currency = {{ currency_expr }}
    and {{ valid_on(rates, day) }}
{%- endmacro %}

{#
    The invoices open at the end of a day, for a CTE: every row of `days` joined with each
    invoice whose open amount (`balances`: int_invoice_balances) at the end of the day in
    column `day_column` is above 0, adding invoice_id and open_amount.
#}
{% macro open_invoices_on(days, day_column, balances) -%}
    select
        days.*,
        balances.invoice_id,
        balances.open_amount
    from {{ days }} as days
    inner join {{ balances }} as balances
        on {{ valid_on('balances', 'days.' ~ day_column) }}
    where balances.open_amount > 0
{%- endmacro %}

{#
    Receivables snapshot dates kept by mart_receivables_aging (var
    `receivables_snapshot_grain`): `day` = every day; `month_end` = the last day of each
    month plus the as-of date. Expands to a boolean over a receivables_days alias.
#}
{% macro is_receivables_snapshot_date(days_alias) -%}
    {%- set grain = var('receivables_snapshot_grain', 'day') -%}
    {%- if grain == 'day' -%}
        true
    {%- elif grain == 'month_end' -%}
        (
            {{ days_alias }}.is_month_end
            or {{ days_alias }}.date_day = {{ as_of_date() }}
        )
    {%- else -%}
        {{ exceptions.raise_compiler_error("var receivables_snapshot_grain must be 'day' or 'month_end', got '" ~ grain ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#
    Greedy allocation check (applied to int_payment_allocations): for every candidate
    (payment, invoice) pair of `candidates`, the applied amount must equal
    max(0, min(payment amount − applied by the payment to its earlier invoices,
    invoice amount − applied to the invoice by earlier payments)), earlier = the
    allocation order (payment_order, invoice_order_in_payment). Fails with the pairs that
    differ: the allocation is then not the sequential greedy one (raise var
    payment_allocation_rounds).
#}
{% test payment_allocation_is_greedy(model, candidates) %}
    {{ config(severity = 'error') }}
    with

    candidates as (
        select * from {{ candidates }}
        where invoice_id is not null
    ),

    allocations as (
        select * from {{ model }}
    ),

    pairs as (
        select
            candidates.payment_id,
            candidates.invoice_id,
            candidates.payment_amount,
            candidates.invoice_amount,
            candidates.payment_order,
            candidates.invoice_order_in_payment,
            coalesce(allocations.applied_amount, 0) as applied_amount
        from candidates
        left join allocations
            on allocations.payment_id = candidates.payment_id
            and allocations.invoice_id = candidates.invoice_id
    ),

    with_before as (
        select
            pairs.*,
            coalesce(sum(pairs.applied_amount) over (
                partition by pairs.payment_id
                order by pairs.invoice_order_in_payment
                rows between unbounded preceding and 1 preceding
            ), 0) as payment_applied_before,
            coalesce(sum(pairs.applied_amount) over (
                partition by pairs.invoice_id
                order by pairs.payment_order
                rows between unbounded preceding and 1 preceding
            ), 0) as invoice_applied_before
        from pairs
    )

    select *
    from with_before
    where applied_amount <> greatest(
        least(
            payment_amount - payment_applied_before,
            coalesce(invoice_amount, 0) - invoice_applied_before
        ),
        0
    )
{% endtest %}

{#
    The snapshot of mart_receivables_aging on fct_invoice's as-of date agrees with
    fct_invoice: every invoice with an open amount in one has the same open amount in the
    other. Fails with the disagreeing invoices.
#}
{% test receivables_agree_with_invoices(model, invoices) %}
    {{ config(severity = 'error') }}
    with

    invoices as (
        select * from {{ invoices }}
        where open_amount > 0
            and issued_on <= as_of_date
    ),

    aging as (
        select * from {{ model }}
        where as_of_date = (select max(as_of_date) from {{ invoices }})
    )

    select
        coalesce(aging.invoice_id, invoices.invoice_id) as invoice_id,
        aging.open_amount as aging_open_amount,
        invoices.open_amount as invoice_open_amount
    from aging
    full outer join invoices
        on invoices.invoice_id = aging.invoice_id
    where aging.open_amount is null
        or invoices.open_amount is null
        or aging.open_amount <> invoices.open_amount
{% endtest %}
