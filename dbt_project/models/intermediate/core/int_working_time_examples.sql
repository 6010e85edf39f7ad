{#
    Worked examples of the working-time macros, computed against the real working
    calendar: seed `working_time_examples` holds moments with the working minutes,
    within-window flag and deadline computed by hand (the arithmetic is in the seed's
    description). Each example says which configuration it was computed for
    (`applies_to`: country, working hours, working weekdays); examples for another
    configuration than the current vars are left out, so the check is vacuous rather
    than wrong when a deployment changes its calendar. The data test on this model
    fails when the macros or the holiday seed disagree with the paper. A test fixture:
    it and its seed are built only with var `test_fixtures` true (the test suite), never
    into a production warehouse.
#}
{%- set hours = var('working_hours_start', '09:00') ~ '-' ~ var('working_hours_end', '18:00') -%}
{%- set weekdays = working_weekdays_list() | replace(', ', ',') -%}
{%- set configuration = var('country', 'RU') | upper ~ ' ' ~ hours ~ ' ' ~ weekdays -%}
{%- set configuration = configuration | replace(' 1,2,3,4,5', ' 1-5') -%}
with

examples as (
    select * from {{ ref('working_time_examples') }}
),

applicable as (
    select
        examples.example,
        cast(examples.start_at as timestamp) as start_at,
        cast(examples.end_at as timestamp) as end_at,
        examples.window_hours,
        examples.expected_minutes,
        examples.expected_within,
        cast(examples.expected_deadline as timestamp) as expected_deadline
    from examples
    where examples.applies_to = '{{ configuration }}'
),

indexed as (
    select
        applicable.*,
        {{ working_minutes_between('applicable.start_at', 'applicable.end_at') }} as actual_minutes,
        {{ within_working_hours('applicable.start_at', 'applicable.end_at', 'applicable.window_hours') }}
            as actual_within,
        {{ working_minute_index('applicable.start_at') }} + 60.0 * applicable.window_hours as deadline_index
    from applicable
),


{# add_working_hours(start_at, window_hours) in two steps, the form that also runs on
    Spark: the index of the deadline, then the moment at that index -#}
computed as (
    select
        indexed.*,
        {{ working_moment_at('indexed.deadline_index') }} as actual_deadline
    from indexed
),

final as (
    select
        example,
        start_at,
        end_at,
        window_hours,
        cast(expected_minutes as double) as expected_minutes,
        cast(actual_minutes as double) as actual_minutes,
        expected_within,
        actual_within,
        expected_deadline,
        cast(actual_deadline as timestamp) as actual_deadline
    from computed
)

select * from final
