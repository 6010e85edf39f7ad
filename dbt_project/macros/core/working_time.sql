{#
    Working time: minutes that fall inside working hours (vars working_hours_start /
    working_hours_end) of working days (working_weekdays minus national holidays, plus
    transferred working weekends; see int_working_calendar).

    The idea: every moment has a *working-minute index*, the working minutes elapsed from
    the start of the calendar to that moment. For a moment on a working day that is
    working_minutes_before (all earlier days) + the part of today's working hours already
    past, clamped to [0, working_minutes]; on a non-working day it is
    working_minutes_before, so the clock does not move on weekends and holidays. The
    working time between two moments is the difference of their indexes, and a deadline
    "N working hours after t" is the moment whose index is index(t) + 60·N.

    Everything is set-based SQL against ref('int_working_calendar'): the macros expand to
    scalar subqueries correlated on the calendar date only (an equality join that the
    engine decorrelates into a hash join), never to per-row code. Pass fully qualified
    expressions (`calls.started_at`), not bare column names that the calendar also has.
    Timestamps are naive local time (company time zone), as everything leaving staging.
    Moments outside the calendar range (vars calendar_start_date / calendar_end_date)
    give null.

    For large self-joins (missed call × later calls of the same number) compute
    working_minute_index() once per row in a CTE and compare differences:
        with indexed as (
            select calls.*, {{ working_minute_index('calls.started_at') }} as wmi
            from calls
        )
        ... where callback.wmi - missed.wmi <= 60 * {{ var('response_window_working_hours') }}
#}

{#
    Working minutes from the calendar start to `ts` (double, seconds precision).
    Each scalar subquery aggregates calendar columns only, and the part that depends on
    `ts` stays outside them: Spark rejects an aggregate that mixes outer and local
    references (AGGREGATE_FUNCTION_MIXED_OUTER_LOCAL_REFERENCES). The working start of the
    day of `ts` is computed from `ts` itself, the way int_working_calendar computes
    working_start, and on a non-working day working_minutes is 0, which caps the part of
    the day elapsed at 0.
#}
{% macro working_minute_index(ts) -%}
    {%- set start_minutes = hhmm_to_minutes(var('working_hours_start', '09:00')) -%}
    {%- set day_start = dbt.dateadd('minute', start_minutes, 'cast(cast(' ~ ts ~ ' as date) as timestamp)') -%}
    (
        (
            select max(wcal_.working_minutes_before)
            from {{ ref('int_working_calendar') }} as wcal_
            where wcal_.date_day = cast({{ ts }} as date)
        )
        + least(
            greatest({{ ratio(dbt.datediff(day_start, ts, 'second'), 60) }}, cast(0 as double)),
            cast((
                select max(wcal_.working_minutes)
                from {{ ref('int_working_calendar') }} as wcal_
                where wcal_.date_day = cast({{ ts }} as date)
            ) as double)
        )
    )
{%- endmacro %}

{#
    Working minutes between two moments (double): index(end) − index(start). Negative when
    end_ts is before start_ts; null when either is null or outside the calendar.
#}
{% macro working_minutes_between(start_ts, end_ts) -%}
    ({{ working_minute_index(end_ts) }} - {{ working_minute_index(start_ts) }})
{%- endmacro %}

{#
    True when end_ts is not before start_ts and at most `hours` working hours after it
    (default: var response_window_working_hours, 24). "Within 24 working hours" of the
    metric contract is exactly this; null when either moment is null.
#}
{% macro within_working_hours(start_ts, end_ts, hours=none) -%}
    {%- set window = var('response_window_working_hours', 24) if hours is none else hours -%}
    (
        {{ end_ts }} >= {{ start_ts }}
        and {{ working_minutes_between(start_ts, end_ts) }} <= 60.0 * ({{ window }})
    )
{%- endmacro %}

{#
    The deadline `minutes` working minutes after `ts`: the first moment whose working-minute
    index reaches index(ts) + minutes, i.e. inside the working hours of the working day
    where that much working time has been used up (a window that ends exactly at closing
    time ends at the working_end of that day, not at the next morning). minutes must be
    > 0. Null outside the calendar. Set-based: working_moment_at(index(ts) + minutes), a
    lookup of the one calendar day whose working-minute range holds the target index.
    Note: a moment after the deadline can still be within the window by minutes when no
    working time passes in between (after closing time, weekends): test "within" with
    within_working_hours(), use the deadline to display or to age things.
#}
{% macro add_working_minutes(ts, minutes) -%}
    {{ working_moment_at('(' ~ working_minute_index(ts) ~ ' + (' ~ minutes ~ '))') }}
{%- endmacro %}

{#
    The moment whose working-minute index is `index`: inside the working hours of the
    working day whose range (working_minutes_before, working_minutes_before +
    working_minutes] holds it. Each scalar subquery aggregates calendar columns only and
    `index` appears in its filter alone (Spark rejects an aggregate that mixes outer and
    local references). On Spark pass a column computed in an earlier CTE, not an
    expression holding subqueries: Spark cannot plan a subquery inside a correlated
    subquery's filter. Null outside the calendar.
#}
{% macro working_moment_at(index) -%}
    {%- set holds = 'wcal_.is_working_day and wcal_.working_minutes_before < ' ~ index ~ ' and ' ~ index ~ ' <= wcal_.working_minutes_before + wcal_.working_minutes' -%}
    {{ dbt.dateadd(
        'second',
        'round((' ~ index ~ ' - (select max(wcal_.working_minutes_before) from ' ~ ref('int_working_calendar') ~ ' as wcal_ where ' ~ holds ~ ')) * 60)',
        '(select max(wcal_.working_start) from ' ~ ref('int_working_calendar') ~ ' as wcal_ where ' ~ holds ~ ')'
    ) }}
{%- endmacro %}

{# add_working_minutes in hours: the deadline `hours` working hours after `ts`. #}
{% macro add_working_hours(ts, hours) -%}
    {{ add_working_minutes(ts, '60.0 * (' ~ hours ~ ')') }}
{%- endmacro %}
