"""Datasets: one per mart, virtual only where a join to a dimension is needed.

Every dataset reads schema ``marts`` only (``pipelines.lib.superset.validate_bundle``
enforces it). Joins add what a dashboard filter or a reader needs and the mart does not
carry: the manager's name and team (``dim_manager``), the customer's name
(``dim_customer``). Datasets with per-manager rows expose ``manager_id`` for Row Level
Security. Phones and e-mails are masked in every dataset but ``customer_contacts``,
which only the roles allowed to see contacts may read (see ``dashboards/security.yaml``).
"""

from __future__ import annotations

from typing import Any

from dashboards.spec.definitions import definition
from dashboards.spec.model import (
    ATTRIBUTED,
    COUNT,
    DAYS,
    HOURS,
    MONEY,
    PERCENT,
    RATIO,
    Column,
    Dataset,
    Metric,
)

# --------------------------------------------------------------------------- helpers


def _manager_columns() -> list[Column]:
    return [
        Column("manager_id", "VARCHAR", "Manager id"),
        Column("manager_name", "VARCHAR", "Manager"),
        Column("team", "VARCHAR", "Team"),
    ]


MANAGER_JOIN = "left join marts.dim_manager as m on m.manager_id = {alias}.manager_id"
#: the select items of the manager's columns (``_manager_columns``), over a row ``{alias}``
MANAGER_ITEMS = (
    "{alias}.manager_id",
    "coalesce(m.name, 'unassigned') as manager_name",
    "coalesce(m.team, 'unassigned') as team",
)
MANAGER_SELECT = "\n".join(f"    {item}," for item in MANAGER_ITEMS)


def with_manager(
    mart: str,
    alias: str,
    *,
    columns: list[Column],
    computed: dict[str, str] | None = None,
    **dataset: Any,
) -> Dataset:
    """A virtual dataset over ``marts.<mart>`` (as ``alias``) with the manager's name and
    team from ``dim_manager``, under Row Level Security by manager. Its SQL selects the
    ``columns`` in their order: the manager's three (``_manager_columns``) from the join,
    a ``computed`` one from its SQL expression, one Superset computes (``expression``)
    not at all, any other the mart's column of that name."""
    manager = dict(zip(("manager_id", "manager_name", "team"), MANAGER_ITEMS, strict=True))
    computed = computed or {}
    items = [
        manager[c.name].format(alias=alias)
        if c.name in manager
        else f"{computed[c.name]} as {c.name}"
        if c.name in computed
        else f"{alias}.{c.name}"
        for c in columns
        if c.expression is None
    ]
    sql = (
        "select\n"
        + ",\n".join(f"    {item}" for item in items)
        + f"\nfrom marts.{mart} as {alias}\n{MANAGER_JOIN.format(alias=alias)}\n"
    )
    return Dataset(columns=columns, sql=sql, rls_column="manager_id", **dataset)


def mask_phone(expr: str) -> str:
    """SQL showing the first 3 and last 2 characters of an E.164 phone: ``+79*******67``."""
    return (
        f"case when {expr} is null then null "
        f"else left({expr}, 3) || repeat('*', greatest(length({expr}) - 5, 0)) "
        f"|| right({expr}, 2) end"
    )


def mask_email(expr: str) -> str:
    """SQL keeping the first character of the mailbox and the domain: ``i***@mail.ru``."""
    return f"regexp_replace({expr}, '^(.)[^@]*@', '\\1***@')"


def ratio(num: str, den: str) -> str:
    return f"{num} * 1.0 / NULLIF({den}, 0)"


def total(column: str, verbose: str, d3format: str) -> Metric:
    """The metric ``SUM(column)``, named and defined (``definition``) after the column."""
    return Metric(column, f"SUM({column})", verbose, d3format, definition(column))


def defined(key: str, expression: str, verbose: str, d3format: str | None) -> Metric:
    """The metric ``key`` computing ``expression``, defined (``definition``) by its own key."""
    return Metric(key, expression, verbose, d3format, definition(key))


def ratio_metric(key: str, num: str, den: str, verbose: str, d3format: str) -> Metric:
    """The metric ``key`` computing ``num / den`` (``ratio``), defined by its own key."""
    return defined(key, ratio(num, den), verbose, d3format)


def hours_since(timestamp: str) -> str:
    """SQL: the hours (one decimal) from the aggregate ``timestamp`` to now."""
    return f"ROUND(EPOCH(CAST(NOW() AS TIMESTAMP) - {timestamp}) / 3600.0, 1)"


# --------------------------------------------------------------------------- sales

#: won deals / closed (won or lost) deals, over fct_deal rows
WIN_RATE = ratio(
    "SUM(CASE WHEN status = 'won' THEN 1 ELSE 0 END)",
    "SUM(CASE WHEN status IN ('won', 'lost') THEN 1 ELSE 0 END)",
)

DEALS = with_manager(
    "fct_deal",
    "d",
    key="deals",
    uuid="7d3b2014-9937-4462-a718-be5445258ef4",
    table_name="deals",
    description=(
        "One row per deal (marts.fct_deal) with the manager's name and team "
        "(marts.dim_manager). The period column is closed_at: period filters count deals "
        "closed in the period."
    ),
    main_dttm_col="closed_at",
    columns=[
        Column("deal_id", "VARCHAR", "Deal"),
        Column("customer_id", "VARCHAR", "Customer id"),
        *_manager_columns(),
        Column("channel", "VARCHAR", "Channel"),
        Column("pipeline", "VARCHAR", "Pipeline"),
        Column("created_at", "TIMESTAMP", "Created at", is_dttm=True),
        Column("closed_at", "TIMESTAMP", "Closed at", is_dttm=True),
        Column("status", "VARCHAR", "Status"),
        Column("amount", "DECIMAL(18,2)", "Amount", unit="money"),
        Column("loss_reason", "VARCHAR", "Loss reason"),
        Column("last_stage_before_loss", "VARCHAR", "Last stage before loss"),
        Column("sales_cycle_days", "INTEGER", "Sales cycle, days"),
    ],
    metrics=[
        defined("count", "COUNT(*)", "Deals", COUNT),
        defined("won_deals", "SUM(CASE WHEN status = 'won' THEN 1 ELSE 0 END)", "Won deals", COUNT),
        defined(
            "lost_deals", "SUM(CASE WHEN status = 'lost' THEN 1 ELSE 0 END)", "Lost deals", COUNT
        ),
        defined(
            "open_deals", "SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END)", "Open deals", COUNT
        ),
        defined(
            "won_amount",
            "SUM(CASE WHEN status = 'won' THEN amount ELSE 0 END)",
            "Won amount",
            MONEY,
        ),
        defined(
            "lost_amount",
            "SUM(CASE WHEN status = 'lost' THEN amount ELSE 0 END)",
            "Lost amount",
            MONEY,
        ),
        defined("win_rate", WIN_RATE, "Win rate", PERCENT),
        defined(
            "avg_won_amount", "AVG(CASE WHEN status = 'won' THEN amount END)", "Avg won deal", MONEY
        ),
        defined(
            "avg_sales_cycle_days",
            "AVG(CASE WHEN status = 'won' THEN sales_cycle_days END)",
            "Avg sales cycle, days",
            DAYS,
        ),
        Metric(
            "sales_velocity",
            "SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END)"
            f" * ({WIN_RATE})"
            " * AVG(CASE WHEN status = 'won' THEN amount END)"
            " / NULLIF(AVG(CASE WHEN status = 'won' THEN sales_cycle_days END), 0)",
            "Sales velocity, per day",
            MONEY,
            definition("sales_velocity"),
        ),
    ],
)

STAGE_LABEL = (
    "pipeline || ' · ' || coalesce(lpad(cast(stage_order as varchar), 2, '0'), 'x') || ' ' || stage"
)

FUNNEL = Dataset(
    key="mart_funnel_velocity",
    uuid="b30d670b-f832-47fc-b048-9330026d70cb",
    table_name="mart_funnel_velocity",
    description=(
        "Funnel velocity per month × pipeline × stage (marts.mart_funnel_velocity). "
        "Counts only, no per-deal rows: every role that sees the sales dashboard sees it."
    ),
    main_dttm_col="month",
    columns=[
        Column("month", "DATE", "Month", is_dttm=True),
        Column("pipeline", "VARCHAR", "Pipeline"),
        Column("stage", "VARCHAR", "Stage name"),
        Column("stage_order", "INTEGER", "Stage order"),
        Column(
            "stage_label",
            "VARCHAR",
            "Stage",
            expression=STAGE_LABEL,
            description="Pipeline, order of the stage in it (x: not configured) and stage: "
            "sorts in funnel order.",
        ),
        Column("deals_entered", "BIGINT", "Deals entered"),
        Column("deals_converted", "BIGINT", "Deals converted"),
        Column("conversion_rate", "DOUBLE", "Conversion rate"),
        Column("avg_days_in_stage", "DOUBLE", "Avg days in stage"),
        Column("median_days_in_stage", "DOUBLE", "Median days in stage"),
        Column("p90_days_in_stage", "DOUBLE", "P90 days in stage", unit="days"),
    ],
    metrics=[
        total("deals_entered", "Deals entered", COUNT),
        total("deals_converted", "Deals converted", COUNT),
        ratio_metric(
            "conversion_rate",
            "SUM(deals_converted)",
            "SUM(deals_entered)",
            "Conversion rate",
            PERCENT,
        ),
    ],
)

STAGE_VISITS = Dataset(
    key="stage_visits_with_pipeline",
    uuid="c28205b7-ad20-468b-8e72-41107944b66c",
    table_name="stage_visits_with_pipeline",
    description=(
        "Stage visits (marts.fct_stage_visit) with the deal's pipeline, channel, manager "
        "and team, so the dashboard filters apply."
    ),
    main_dttm_col="entered_at",
    rls_column="manager_id",
    sql=f"""select
    v.deal_id,
    v.stage,
    v.stage_order,
    v.entered_at,
    v.exited_at,
    v.days_in_stage,
    v.is_open,
    d.pipeline,
    d.channel,
{MANAGER_SELECT.format(alias="d")}
from marts.fct_stage_visit as v
inner join marts.fct_deal as d on d.deal_id = v.deal_id
{MANAGER_JOIN.format(alias="d")}
""",
    columns=[
        Column("deal_id", "VARCHAR", "Deal"),
        Column("stage", "VARCHAR", "Stage name"),
        Column("stage_order", "INTEGER", "Stage order"),
        Column("stage_label", "VARCHAR", "Stage", expression=STAGE_LABEL),
        Column("entered_at", "TIMESTAMP", "Entered at", is_dttm=True),
        Column("exited_at", "TIMESTAMP", "Exited at", is_dttm=True),
        Column("days_in_stage", "DOUBLE", "Days in stage"),
        Column("is_open", "BOOLEAN", "Open visit"),
        Column("pipeline", "VARCHAR", "Pipeline"),
        Column("channel", "VARCHAR", "Channel"),
        *_manager_columns(),
    ],
    metrics=[
        defined("visits", "COUNT(*)", "Visits", COUNT),
        defined(
            "avg_days_in_stage",
            "AVG(CASE WHEN exited_at IS NOT NULL THEN days_in_stage END)",
            "Avg days",
            DAYS,
        ),
        defined(
            "median_days_in_stage",
            "MEDIAN(CASE WHEN exited_at IS NOT NULL THEN days_in_stage END)",
            "Median days",
            DAYS,
        ),
        defined(
            "p90_days_in_stage",
            "QUANTILE_CONT(CASE WHEN exited_at IS NOT NULL THEN days_in_stage END, 0.9)",
            "P90 days",
            DAYS,
        ),
    ],
)

STUCK_DEALS = Dataset(
    key="stuck_deals",
    table_name="stuck_deals",
    description=(
        "Stuck deals (marts.mart_stuck_deals, docs/metrics.md): open deals whose age in the "
        "current stage exceeds the 90th percentile of completed visits of that pipeline's "
        "stage that ended in the trailing 180 days (counted back from the latest stage "
        "change in the data). Customer phone masked."
    ),
    main_dttm_col="entered_at",
    rls_column="manager_id",
    sql=f"""select
    s.deal_id,
    s.pipeline,
    s.stage,
    s.stage_order,
    s.entered_at,
    s.age_days,
    s.p90_days_in_stage,
    s.completed_visits,
    s.amount,
    s.channel,
    s.customer_id,
    coalesce(c.name, 'unknown') as customer_name,
    {mask_phone("c.primary_phone")} as customer_phone_masked,
{MANAGER_SELECT.format(alias="s")}
    1 as one
from marts.mart_stuck_deals as s
left join marts.dim_customer as c on c.customer_id = s.customer_id
{MANAGER_JOIN.format(alias="s")}
""",
    columns=[
        Column("deal_id", "VARCHAR", "Deal"),
        Column("pipeline", "VARCHAR", "Pipeline"),
        Column("stage", "VARCHAR", "Stage"),
        Column("stage_order", "INTEGER", "Stage order"),
        Column("entered_at", "TIMESTAMP", "In stage since", is_dttm=True),
        Column("age_days", "DOUBLE", "Days in stage", unit="days"),
        Column("p90_days_in_stage", "DOUBLE", "P90 of the stage, days", unit="days"),
        Column("completed_visits", "BIGINT", "Completed visits (180 days)"),
        Column("amount", "DECIMAL(18,2)", "Amount", unit="money"),
        Column("channel", "VARCHAR", "Channel"),
        Column("customer_id", "VARCHAR", "Customer id"),
        Column("customer_name", "VARCHAR", "Customer"),
        Column("customer_phone_masked", "VARCHAR", "Phone (masked)"),
        *_manager_columns(),
        Column("one", "INTEGER", "One"),
    ],
    metrics=[
        defined("stuck_deals", "COUNT(*)", "Stuck deals", COUNT),
        defined("stuck_amount", "SUM(amount)", "Amount in stuck deals", MONEY),
    ],
)

LOST_REVENUE = with_manager(
    "mart_lost_revenue",
    "l",
    key="lost_revenue",
    table_name="lost_revenue",
    description=(
        "Lost revenue per month × loss reason × last stage × manager × channel "
        "(marts.mart_lost_revenue) with the manager's name and team."
    ),
    main_dttm_col="month",
    columns=[
        Column("month", "DATE", "Month", is_dttm=True),
        Column("loss_reason", "VARCHAR", "Loss reason"),
        Column("last_stage", "VARCHAR", "Last stage before loss"),
        Column("channel", "VARCHAR", "Channel"),
        *_manager_columns(),
        Column("lost_deals", "BIGINT", "Lost deals"),
        Column("lost_amount", "DECIMAL(18,2)", "Lost amount"),
    ],
    metrics=[
        total("lost_deals", "Lost deals", COUNT),
        total("lost_amount", "Lost amount", MONEY),
    ],
)

FORECAST = with_manager(
    "mart_pipeline_forecast",
    "f",
    computed={"remaining_plan": "greatest(f.plan_amount - f.won_to_date, 0)"},
    key="pipeline_forecast",
    table_name="pipeline_forecast",
    description=(
        "Quarterly plan, won revenue to date and weighted pipeline per manager "
        "(marts.mart_pipeline_forecast) with the manager's name and team. Coverage of a "
        "group = Σ weighted pipeline / Σ remaining plan (plan − won, not below 0)."
    ),
    main_dttm_col="quarter",
    columns=[
        Column("quarter", "DATE", "Quarter", is_dttm=True),
        *_manager_columns(),
        Column("plan_amount", "DECIMAL(18,2)", "Plan"),
        Column("won_to_date", "DECIMAL(18,2)", "Won to date"),
        Column("remaining_plan", "DECIMAL(18,2)", "Remaining plan"),
        Column("weighted_pipeline", "DECIMAL(18,2)", "Weighted pipeline"),
        Column("coverage", "DOUBLE", "Coverage"),
        Column("is_current_quarter", "BOOLEAN", "Current quarter"),
    ],
    metrics=[
        total("plan_amount", "Plan", MONEY),
        total("won_to_date", "Won", MONEY),
        total("remaining_plan", "Remaining plan", MONEY),
        total("weighted_pipeline", "Weighted pipeline", MONEY),
        ratio_metric(
            "attainment", "SUM(won_to_date)", "SUM(plan_amount)", "Plan attainment", PERCENT
        ),
        ratio_metric(
            "coverage", "SUM(weighted_pipeline)", "SUM(remaining_plan)", "Pipeline coverage", RATIO
        ),
    ],
)

SCORECARD = with_manager(
    "mart_manager_scorecard",
    "s",
    key="manager_scorecard",
    table_name="manager_scorecard",
    description="Manager scorecard per month (marts.mart_manager_scorecard) with name and team.",
    main_dttm_col="month",
    columns=[
        Column("month", "DATE", "Month", is_dttm=True),
        *_manager_columns(),
        Column("clients_in_work", "BIGINT", "Clients in work"),
        Column("new_leads", "BIGINT", "New leads"),
        Column("median_first_response_minutes", "DOUBLE", "Median first response, min"),
        Column("calls_made", "BIGINT", "Calls made"),
        Column("calls_answered", "BIGINT", "Calls answered"),
        Column("talk_minutes", "DOUBLE", "Talk minutes"),
        Column("tasks_done", "BIGINT", "Tasks done"),
        Column("tasks_overdue", "BIGINT", "Tasks overdue"),
        Column("deals_won", "BIGINT", "Deals won"),
        Column("deals_lost", "BIGINT", "Deals lost"),
        Column("win_rate", "DOUBLE", "Win rate"),
        Column("won_revenue", "DECIMAL(18,2)", "Won revenue"),
        Column("avg_cycle_days", "DOUBLE", "Avg cycle, days"),
        Column("receivables_overdue", "DECIMAL(18,2)", "Receivables overdue"),
    ],
    metrics=[
        defined("clients_in_work", "MAX(clients_in_work)", "Clients in work (max month)", COUNT),
        total("new_leads", "New leads", COUNT),
        defined(
            "median_first_response_hours",
            "MEDIAN(median_first_response_minutes) / 60.0",
            "First response, hours (median of months)",
            HOURS,
        ),
        total("calls_made", "Calls made", COUNT),
        total("calls_answered", "Calls answered", COUNT),
        defined("talk_hours", "SUM(talk_minutes) / 60.0", "Talk time, hours", HOURS),
        total("tasks_done", "Tasks done", COUNT),
        total("tasks_overdue", "Tasks overdue", COUNT),
        total("deals_won", "Deals won", COUNT),
        ratio_metric(
            "win_rate", "SUM(deals_won)", "SUM(deals_won + deals_lost)", "Win rate", PERCENT
        ),
        total("won_revenue", "Won revenue", MONEY),
        ratio_metric("avg_deal", "SUM(won_revenue)", "SUM(deals_won)", "Avg deal", MONEY),
        ratio_metric(
            "avg_cycle_days",
            "SUM(avg_cycle_days * deals_won)",
            "SUM(deals_won)",
            "Avg cycle, days",
            DAYS,
        ),
        defined(
            "receivables_overdue",
            "arg_max(receivables_overdue, month)",
            "Receivables overdue (latest month)",
            MONEY,
        ),
    ],
)

MISSED_CALLS = with_manager(
    "mart_missed_calls",
    "c",
    key="missed_calls",
    table_name="missed_calls",
    description=(
        "Missed inbound calls per day and manager (marts.mart_missed_calls); "
        "estimated_lost_value is an estimate (count × lead-to-won rate × average won amount)."
    ),
    main_dttm_col="day",
    columns=[
        Column("day", "DATE", "Day", is_dttm=True),
        *_manager_columns(),
        Column("missed_calls", "BIGINT", "Missed calls"),
        Column("missed_without_callback", "BIGINT", "Missed without callback"),
        Column("estimated_lost_value", "DECIMAL(18,2)", "Estimated lost value"),
    ],
    metrics=[
        total("missed_calls", "Missed calls", COUNT),
        total("missed_without_callback", "Missed, no callback", COUNT),
        total("estimated_lost_value", "Estimated lost value (estimate)", MONEY),
    ],
)

LEAD_PROCESSING = with_manager(
    "mart_lead_processing",
    "p",
    key="lead_processing",
    table_name="lead_processing",
    description=(
        "Lead processing (marts.mart_lead_processing): new leads, processed, ignored (no "
        "first response within 24 working hours) and converted, by month, source and manager."
    ),
    main_dttm_col="month",
    columns=[
        Column("month", "DATE", "Month", is_dttm=True),
        Column("channel", "VARCHAR", "Channel"),
        *_manager_columns(),
        Column("new_leads", "BIGINT", "New leads"),
        Column("processed_leads", "BIGINT", "Processed"),
        Column("ignored_leads", "BIGINT", "Ignored"),
        Column("converted_leads", "BIGINT", "Converted"),
    ],
    metrics=[
        total("new_leads", "New leads", COUNT),
        total("processed_leads", "Processed", COUNT),
        total("ignored_leads", "Ignored", COUNT),
        total("converted_leads", "Converted", COUNT),
        ratio_metric(
            "ignored_share", "SUM(ignored_leads)", "SUM(new_leads)", "Ignored share", PERCENT
        ),
    ],
)

# --------------------------------------------------------------------------- marketing

CHANNEL_ROI = Dataset(
    key="mart_channel_roi",
    table_name="mart_channel_roi",
    description=(
        "Channel ROI per month × channel × attribution model (marts.mart_channel_roi). "
        "Attribution models are never mixed: every chart groups by attribution_model, and "
        "spend repeats per model, so a sum over models would count it three times. Ratios "
        "are recomputed from sums (never averaged)."
    ),
    main_dttm_col="month",
    columns=[
        Column("month", "DATE", "Month", is_dttm=True),
        Column("channel", "VARCHAR", "Channel"),
        Column("attribution_model", "VARCHAR", "Attribution model"),
        Column("spend", "DECIMAL(18,2)", "Spend"),
        Column("leads", "BIGINT", "Leads"),
        Column("won_deals", "DOUBLE", "Won deals (attributed)"),
        Column("new_customers", "DOUBLE", "New customers (attributed)"),
        Column("attributed_revenue", "DECIMAL(18,2)", "Attributed revenue"),
        Column("attributed_gross_margin", "DECIMAL(18,2)", "Attributed gross margin"),
        Column("cost_per_lead", "DECIMAL(18,2)", "CPL"),
        Column("cac", "DECIMAL(18,2)", "CAC"),
        Column("romi", "DOUBLE", "ROMI"),
    ],
    metrics=[
        total("spend", "Spend", MONEY),
        total("leads", "Leads", COUNT),
        Metric(
            "won_deals",
            "SUM(won_deals)",
            "Won deals (attributed)",
            ATTRIBUTED,
            definition("won_deals_attributed"),
        ),
        total("attributed_revenue", "Attributed revenue", MONEY),
        total("attributed_gross_margin", "Attributed gross margin", MONEY),
        ratio_metric("cpl", "SUM(spend)", "SUM(leads)", "CPL", MONEY),
        ratio_metric("cac", "SUM(spend)", "SUM(new_customers)", "CAC", MONEY),
        ratio_metric("conversion", "SUM(won_deals)", "SUM(leads)", "Conversion lead→won", PERCENT),
        ratio_metric(
            "romi", "(SUM(attributed_gross_margin) - SUM(spend))", "SUM(spend)", "ROMI", PERCENT
        ),
    ],
)

# --------------------------------------------------------------------------- finance

BUCKET_LABEL = (
    "case bucket when 'not_due' then '0 not due' when '1-30' then '1 1–30 days' "
    "when '31-60' then '2 31–60 days' when '61-90' then '3 61–90 days' "
    "when '90+' then '4 over 90 days' else bucket end"
)

AGING_COLUMNS = [
    Column("as_of_date", "DATE", "As of", is_dttm=True),
    Column("as_of", "VARCHAR", "As of date"),
    Column("is_latest_snapshot", "BOOLEAN", "Latest snapshot"),
    Column("is_month_end", "BOOLEAN", "Month end"),
    Column("customer_id", "VARCHAR", "Customer id"),
    Column("customer_name", "VARCHAR", "Customer"),
    *_manager_columns(),
    Column("bucket", "VARCHAR", "Bucket"),
    Column("bucket_label", "VARCHAR", "Aging bucket", expression=BUCKET_LABEL),
    Column("is_overdue", "BOOLEAN", "Overdue"),
    Column("open_invoices", "BIGINT", "Open invoices"),
    Column("open_amount", "DECIMAL(18,2)", "Open amount"),
    Column("overdue_amount", "DECIMAL(18,2)", "Overdue amount"),
    Column("max_days_overdue", "INTEGER", "Max days overdue"),
]

AGING = Dataset(
    key="receivables_aging",
    table_name="receivables_aging",
    description=(
        "Receivables aging per as-of date × customer × manager × bucket "
        "(marts.mart_receivables_aging_by_customer, the sum of "
        "marts.mart_receivables_aging's open invoices). Pick one as-of date (`as_of`): "
        "summing several snapshots double-counts; `is_latest_snapshot` marks the latest one."
    ),
    main_dttm_col="as_of_date",
    rls_column="manager_id",
    sql="select\n"
    + ",\n".join(f"    a.{c.name}" for c in AGING_COLUMNS if c.expression is None)
    + "\nfrom marts.mart_receivables_aging_by_customer as a\n",
    columns=AGING_COLUMNS,
    metrics=[
        Metric(
            "open_amount", "SUM(open_amount)", "Open amount", MONEY, definition("open_amount_aging")
        ),
        Metric(
            "overdue_amount",
            "SUM(overdue_amount)",
            "Overdue amount",
            MONEY,
            definition("overdue_amount_aging"),
        ),
        defined("open_invoices", "SUM(open_invoices)", "Open invoices", COUNT),
        defined("max_days_overdue", "MAX(max_days_overdue)", "Max days overdue", DAYS),
    ],
)

DSO = Dataset(
    key="mart_dso",
    table_name="mart_dso",
    description="Days sales outstanding per month (marts.mart_dso).",
    main_dttm_col="month",
    columns=[
        Column("month", "DATE", "Month", is_dttm=True),
        Column("ar_at_period_end", "DECIMAL(18,2)", "AR at period end"),
        Column("invoiced_revenue", "DECIMAL(18,2)", "Invoiced revenue"),
        Column("days_in_period", "INTEGER", "Days in period"),
        Column("dso", "DOUBLE", "DSO, days"),
    ],
    metrics=[
        defined(
            "dso",
            "SUM(ar_at_period_end) * 1.0 / NULLIF(SUM(invoiced_revenue), 0) * MAX(days_in_period)",
            "DSO, days",
            DAYS,
        ),
        total("ar_at_period_end", "AR at month end", MONEY),
        total("invoiced_revenue", "Invoiced", MONEY),
    ],
)

INVOICES = Dataset(
    key="invoices",
    table_name="invoices",
    description=(
        "Invoices (marts.fct_invoice) with the customer's name, manager and team; "
        "open and paid amounts as of the build's as-of date."
    ),
    main_dttm_col="issued_on",
    rls_column="manager_id",
    sql=f"""select
    i.invoice_id,
    i.invoice_number,
    i.customer_id,
    coalesce(c.name, 'unknown') as customer_name,
{MANAGER_SELECT.format(alias="i")}
    i.deal_id,
    i.issued_on,
    i.due_on,
    i.amount,
    i.amount_net,
    i.paid_amount,
    i.open_amount,
    i.status
from marts.fct_invoice as i
left join marts.dim_customer as c on c.customer_id = i.customer_id
{MANAGER_JOIN.format(alias="i")}
""",
    columns=[
        Column("invoice_id", "VARCHAR", "Invoice"),
        Column("invoice_number", "VARCHAR", "Invoice number"),
        Column("customer_id", "VARCHAR", "Customer id"),
        Column("customer_name", "VARCHAR", "Customer"),
        *_manager_columns(),
        Column("deal_id", "VARCHAR", "Deal"),
        Column("issued_on", "DATE", "Issued on", is_dttm=True),
        Column("due_on", "DATE", "Due on", is_dttm=True),
        Column("amount", "DECIMAL(18,2)", "Amount", unit="money"),
        Column("amount_net", "DECIMAL(18,2)", "Amount net of VAT"),
        Column("paid_amount", "DECIMAL(18,2)", "Paid"),
        Column("open_amount", "DECIMAL(18,2)", "Open"),
        Column("status", "VARCHAR", "Status"),
    ],
    metrics=[
        defined("invoiced", "SUM(amount)", "Invoiced", MONEY),
        total("open_amount", "Open amount", MONEY),
        defined(
            "overdue_amount",
            "SUM(CASE WHEN status = 'overdue' THEN open_amount ELSE 0 END)",
            "Overdue receivables",
            MONEY,
        ),
        defined(
            "overdue_invoices",
            "SUM(CASE WHEN status = 'overdue' THEN 1 ELSE 0 END)",
            "Overdue invoices",
            COUNT,
        ),
    ],
)

PAYMENTS = Dataset(
    key="fct_payment",
    table_name="fct_payment",
    description=(
        "Incoming payments (marts.fct_payment); unmatched_amount ≠ 0: no invoice found "
        "or an over-payment, listed, never dropped."
    ),
    main_dttm_col="paid_on",
    columns=[
        Column("payment_id", "VARCHAR", "Payment"),
        Column("paid_on", "DATE", "Paid on", is_dttm=True),
        Column("payer_inn", "VARCHAR", "Payer INN"),
        Column("payer_name", "VARCHAR", "Payer"),
        Column("customer_id", "VARCHAR", "Customer id"),
        Column("amount", "DECIMAL(18,2)", "Amount", unit="money"),
        Column("matched_amount", "DECIMAL(18,2)", "Matched", unit="money"),
        Column("unmatched_amount", "DECIMAL(18,2)", "Unmatched", unit="money"),
        Column("unmatched_reason", "VARCHAR", "Why unmatched"),
    ],
    metrics=[
        defined("payments", "COUNT(*)", "Payments", COUNT),
        total("amount", "Amount", MONEY),
        total("unmatched_amount", "Unmatched amount", MONEY),
        defined(
            "unmatched_payments",
            "SUM(CASE WHEN unmatched_amount <> 0 THEN 1 ELSE 0 END)",
            "Unmatched payments",
            COUNT,
        ),
    ],
)

_OWNER_CTE = """owners as (
    select
        activity.customer_id,
        arg_max(activity.manager_id, activity.happened_at) as manager_id
    from (
        select customer_id, manager_id, created_at as happened_at
        from marts.fct_deal
        union all
        select customer_id, manager_id, cast(issued_on as timestamp) as happened_at
        from marts.fct_invoice
    ) as activity
    where activity.manager_id is not null
        and activity.customer_id is not null
    group by activity.customer_id
)"""

PROFITABILITY = Dataset(
    key="customer_profitability",
    table_name="customer_profitability",
    description=(
        "Customer profitability per customer × year (marts.mart_customer_profitability) "
        "with name and segment; manager = the manager of the customer's latest deal or invoice. "
        "CLV and classes are per year: `is_latest_year` marks the latest."
    ),
    main_dttm_col="year_start",
    rls_column="manager_id",
    sql=f"""with

{_OWNER_CTE}

select
    p.customer_id,
    coalesce(c.name, 'unknown') as customer_name,
    c.segment,
    p.year,
    make_date(p.year, 1, 1) as year_start,
    p.year = max(p.year) over () as is_latest_year,
    p.revenue,
    p.cogs,
    p.cost_to_serve,
    p.acquisition_cost,
    p.contribution_margin,
    p.clv_5y,
    p.rfm_segment,
    p.abc_class,
{MANAGER_SELECT.format(alias="o")}
    1 as one
from marts.mart_customer_profitability as p
left join marts.dim_customer as c on c.customer_id = p.customer_id
left join owners as o on o.customer_id = p.customer_id
{MANAGER_JOIN.format(alias="o")}
""",
    columns=[
        Column("customer_id", "VARCHAR", "Customer id"),
        Column("customer_name", "VARCHAR", "Customer"),
        Column("segment", "VARCHAR", "Segment"),
        Column("year", "INTEGER", "Year"),
        Column("year_start", "DATE", "Year", is_dttm=True),
        Column("is_latest_year", "BOOLEAN", "Latest year"),
        Column("revenue", "DECIMAL(18,2)", "Revenue"),
        Column("cogs", "DECIMAL(18,2)", "COGS"),
        Column("cost_to_serve", "DECIMAL(18,2)", "Cost to serve"),
        Column("acquisition_cost", "DECIMAL(18,2)", "Acquisition cost"),
        Column("contribution_margin", "DECIMAL(18,2)", "Contribution margin"),
        Column("clv_5y", "DECIMAL(18,2)", "CLV (5-year NPV)"),
        Column("rfm_segment", "VARCHAR", "RFM segment"),
        Column("abc_class", "VARCHAR", "ABC class"),
        *_manager_columns(),
        Column("one", "INTEGER", "One"),
    ],
    metrics=[
        Metric(
            "customers",
            "COUNT(DISTINCT customer_id)",
            "Customers",
            COUNT,
            definition("customers_active"),
        ),
        total("revenue", "Revenue", MONEY),
        total("cogs", "COGS", MONEY),
        total("cost_to_serve", "Cost to serve", MONEY),
        total("contribution_margin", "Contribution margin", MONEY),
        ratio_metric("margin_pct", "SUM(contribution_margin)", "SUM(revenue)", "Margin %", PERCENT),
        total("clv_5y", "CLV (5y NPV)", MONEY),
        defined("avg_clv_5y", "AVG(clv_5y)", "Avg CLV (5y NPV)", MONEY),
    ],
)


def _customers(fields: list[tuple[str, Column]], **dataset: Any) -> Dataset:
    """Resolved customers (marts.dim_customer), one row each: ``fields`` are (SQL over
    ``c``, column) pairs, followed by the manager who owns the customer (the manager of
    the latest deal or invoice, ``_OWNER_CTE``) for Row Level Security."""
    items = [sql if sql == f"c.{col.name}" else f"{sql} as {col.name}" for sql, col in fields]
    select = "".join(f"    {item},\n" for item in items)
    sql = f"""with

{_OWNER_CTE}

select
{select}{MANAGER_SELECT.format(alias="o")}
    1 as one
from marts.dim_customer as c
left join owners as o on o.customer_id = c.customer_id
{MANAGER_JOIN.format(alias="o")}
"""
    columns = [col for _, col in fields] + [*_manager_columns(), Column("one", "INTEGER", "One")]
    metrics = [defined("customers", "COUNT(*)", "Customers", COUNT)]
    return Dataset(
        sql=sql,
        columns=columns,
        metrics=metrics,
        main_dttm_col="first_won_at",
        rls_column="manager_id",
        **dataset,
    )


CUSTOMER_ID = ("c.customer_id", Column("customer_id", "VARCHAR", "Customer id"))
CUSTOMER_NAME = ("c.name", Column("customer_name", "VARCHAR", "Customer"))
SEGMENT = ("c.segment", Column("segment", "VARCHAR", "Segment"))
FIRST_WON = ("c.first_won_at", Column("first_won_at", "TIMESTAMP", "First won", is_dttm=True))

CUSTOMERS = _customers(
    [
        CUSTOMER_ID,
        CUSTOMER_NAME,
        SEGMENT,
        ("c.acquisition_channel", Column("channel", "VARCHAR", "Acquisition channel")),
        FIRST_WON,
        (mask_phone("c.primary_phone"), Column("phone_masked", "VARCHAR", "Phone (masked)")),
        (mask_email("c.primary_email"), Column("email_masked", "VARCHAR", "E-mail (masked)")),
    ],
    key="customers",
    table_name="customers",
    description=(
        "Resolved customers (marts.dim_customer) with phone and e-mail MASKED, for every "
        "role; manager = the manager of the customer's latest deal or invoice."
    ),
)

CUSTOMER_CONTACTS = _customers(
    [
        CUSTOMER_ID,
        CUSTOMER_NAME,
        ("c.inn", Column("inn", "VARCHAR", "INN")),
        SEGMENT,
        FIRST_WON,
        ("c.primary_phone", Column("primary_phone", "VARCHAR", "Phone")),
        ("c.primary_email", Column("primary_email", "VARCHAR", "E-mail")),
    ],
    key="customer_contacts",
    table_name="customer_contacts",
    description=(
        "Customers with their RAW phone and e-mail (marts.dim_customer), for finance "
        "(collections). Only roles listed for contacts in dashboards/security.yaml can read it."
    ),
    raw_contacts=True,
)

# --------------------------------------------------------------------------- quality

DATA_QUALITY = Dataset(
    key="mart_data_quality",
    table_name="mart_data_quality",
    description=(
        "Per load × source × table (marts.mart_data_quality): rows read, loaded, "
        "quarantined, duplicates merged, incomplete rows, checks run and failed, and the "
        "latest record time."
    ),
    main_dttm_col="loaded_at",
    columns=[
        Column("load_id", "VARCHAR", "Load"),
        Column("loaded_at", "TIMESTAMP", "Loaded at", is_dttm=True),
        Column("source", "VARCHAR", "Source"),
        Column("table_name", "VARCHAR", "Table"),
        Column("rows_read", "BIGINT", "Rows read"),
        Column("rows_loaded", "BIGINT", "Rows loaded"),
        Column("rows_quarantined", "BIGINT", "Rows quarantined"),
        Column("duplicates_merged", "BIGINT", "Duplicates merged"),
        Column("incomplete_rows", "BIGINT", "Incomplete rows"),
        Column("freshness_at", "TIMESTAMP", "Latest record", is_dttm=True),
        Column("checks_run", "BIGINT", "Checks run"),
        Column("failed_checks", "BIGINT", "Failed checks", unit="count"),
        Column("failed_blocking_checks", "BIGINT", "Failed blocking checks"),
        Column("failed_check_names", "VARCHAR", "Failed checks (names)"),
    ],
    metrics=[
        total("rows_read", "Rows read", COUNT),
        total("rows_loaded", "Rows loaded", COUNT),
        total("rows_quarantined", "Quarantined", COUNT),
        total("duplicates_merged", "Duplicates merged", COUNT),
        total("incomplete_rows", "Incomplete", COUNT),
        defined("tables", "COUNT(DISTINCT table_name)", "Tables", COUNT),
        total("checks_run", "Checks run", COUNT),
        total("failed_checks", "Failed checks", COUNT),
        total("failed_blocking_checks", "Failed blocking checks", COUNT),
        defined("last_loaded_at", "MAX(loaded_at)", "Last load", None),
        defined("latest_record_at", "MAX(freshness_at)", "Latest record", None),
        defined(
            "hours_since_latest_record",
            hours_since("MAX(freshness_at)"),
            "Hours since latest record",
            HOURS,
        ),
        defined(
            "hours_since_last_load",
            hours_since("MAX(loaded_at)"),
            "Hours since the last load",
            HOURS,
        ),
        ratio_metric(
            "quarantine_share",
            "SUM(rows_quarantined)",
            "SUM(rows_read)",
            "Quarantined share",
            PERCENT,
        ),
    ],
)

ALL = [
    DEALS,
    FUNNEL,
    STAGE_VISITS,
    STUCK_DEALS,
    LOST_REVENUE,
    FORECAST,
    SCORECARD,
    MISSED_CALLS,
    LEAD_PROCESSING,
    CHANNEL_ROI,
    AGING,
    DSO,
    INVOICES,
    PAYMENTS,
    PROFITABILITY,
    CUSTOMERS,
    CUSTOMER_CONTACTS,
    DATA_QUALITY,
]
