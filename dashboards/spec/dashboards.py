"""The five dashboards, their charts and their native filters."""

from __future__ import annotations

from dashboards.spec import datasets as D
from dashboards.spec.model import (
    CURRENCY_MARK,
    DATA_DOCS_URL,
    Bundle,
    Chart,
    Dashboard,
    Markdown,
    NativeFilter,
    Where,
    big_number,
    category_bar,
    pie,
    raw_table,
    table,
    timeseries,
)

# --------------------------------------------------------------------------- sales

WON_DEALS = big_number(
    "won_deals",
    "Won deals",
    D.DEALS,
    "won_deals",
    description="Deals closed won in the period.",
    time_col="closed_at",
    uuid="4249f7cf-8362-404a-b43a-1b48046ca4ee",
    trend="P1M",
)
WON_AMOUNT = big_number(
    "won_amount",
    "Won amount",
    D.DEALS,
    "won_amount",
    description="Amount of deals closed won in the period, reporting currency.",
    time_col="closed_at",
    uuid="81cc4935-6e2c-43c6-ba34-b54a6aca96e6",
    trend="P1M",
)
WIN_RATE = big_number(
    "win_rate",
    "Win rate",
    D.DEALS,
    "win_rate",
    description="won / (won + lost) of deals closed in the period.",
    time_col="closed_at",
    uuid="d6c4f840-f7dc-4208-9dc4-d6bcf9353be3",
    trend="P1M",
)
AVG_CYCLE = big_number(
    "avg_sales_cycle",
    "Average sales cycle, days",
    D.DEALS,
    "avg_sales_cycle_days",
    description="Close date minus created date of the deals won in the period.",
    time_col="closed_at",
    trend="P1M",
)
FUNNEL = category_bar(
    "funnel",
    "Funnel: deals by stage",
    D.FUNNEL,
    description="Deals that entered each stage in the period and how many moved on, in "
    "pipeline order.",
    x="stage_label",
    metrics=["deals_entered", "deals_converted"],
    time_col="month",
    uuid="587da470-89ea-4959-ab99-b674aaa1f090",
)
CONVERSION = table(
    "conversion_by_stage",
    "Conversion by stage",
    D.FUNNEL,
    description="Share of the deals that entered a stage in the period and later reached a "
    "further stage or won.",
    groupby=["pipeline", "stage_order", "stage"],
    metrics=["deals_entered", "deals_converted", "conversion_rate"],
    order_by="deals_entered",
    time_col="month",
    uuid="df30dc17-98a4-4e42-a98a-45133b4517f2",
)
WON_BY_MONTH = timeseries(
    "won_by_month",
    "Won amount by month",
    D.DEALS,
    description="Amount of deals closed won, by month of closing.",
    x="closed_at",
    metrics=["won_amount"],
    where=[Where("status", "==", "won")],
    uuid="b6a5ddda-6df0-46b5-bbc1-e6c8fa7c24a8",
)
DAYS_IN_STAGE = category_bar(
    "days_in_stage",
    "Days in stage (completed visits)",
    D.STAGE_VISITS,
    description="Average, median and 90th percentile of days in each stage over completed "
    "visits (left for another stage) that entered it in the period; open visits excluded.",
    x="stage_label",
    metrics=["avg_days_in_stage", "median_days_in_stage", "p90_days_in_stage"],
    time_col="entered_at",
    where=[Where("exited_at", "IS NOT NULL")],
    y_title="days",
    uuid="3efcb97d-1373-4e50-9307-bff6bf0b7fa2",
)
STUCK_COUNT = big_number(
    "stuck_deals_count",
    "Stuck deals",
    D.STUCK_DEALS,
    "stuck_deals",
    description="Open deals older in their stage than the stage's 90th percentile "
    "(completed visits, trailing 180 days).",
    subheader="open deals now, any period",
)
STUCK_LIST = raw_table(
    "stuck_deals_list",
    "Stuck deals: longest in stage first",
    D.STUCK_DEALS,
    description="Open deals whose age in the current stage exceeds the stage's 90th "
    "percentile of completed visits (trailing 180 days). Phones masked.",
    columns=[
        "deal_id",
        "customer_name",
        "customer_phone_masked",
        "manager_name",
        "pipeline",
        "stage",
        "age_days",
        "p90_days_in_stage",
        "amount",
    ],
    order_by=[("age_days", False)],
)
LOST_BY_REASON = category_bar(
    "lost_by_reason_stage",
    "Lost revenue by reason and last stage",
    D.LOST_REVENUE,
    description="Amount of deals closed lost in the period, at their last known amount, by "
    "normalised loss reason, stacked by the last stage before the loss.",
    x="loss_reason",
    metrics=["lost_amount"],
    groupby=["last_stage"],
    time_col="month",
    stack=True,
)
LOST_TABLE = table(
    "lost_by_manager_channel",
    "Lost revenue by manager and channel",
    D.LOST_REVENUE,
    description="Deals closed lost in the period and their amount, by manager and channel.",
    groupby=["manager_name", "channel"],
    metrics=["lost_deals", "lost_amount"],
    order_by="lost_amount",
    time_col="month",
)
SCORECARD = table(
    "manager_scorecard",
    "Manager scorecard",
    D.SCORECARD,
    description="Per manager over the period: clients in work, new leads, first response, "
    "calls, talk time, tasks done and overdue, deals won, win rate, revenue, average deal "
    "and cycle, receivables overdue.",
    groupby=["manager_name", "team"],
    metrics=[
        "clients_in_work",
        "new_leads",
        "median_first_response_hours",
        "calls_made",
        "calls_answered",
        "talk_hours",
        "tasks_done",
        "tasks_overdue",
        "deals_won",
        "win_rate",
        "won_revenue",
        "avg_deal",
        "avg_cycle_days",
        "receivables_overdue",
    ],
    order_by="won_revenue",
    time_col="month",
)
MISSED_BY_MANAGER = category_bar(
    "missed_calls_by_manager",
    "Missed calls without callback, by manager",
    D.MISSED_CALLS,
    description="Inbound calls not answered and not called back (answered) within 24 working "
    "hours, by manager, in the period.",
    x="manager_name",
    metrics=["missed_without_callback", "missed_calls"],
    time_col="day",
    sort_by_x=False,
)
MISSED_VALUE = big_number(
    "missed_calls_value",
    "Missed calls: estimated lost value",
    D.MISSED_CALLS,
    "estimated_lost_value",
    description="ESTIMATE: missed calls without callback × lead-to-won rate × average won "
    "amount of the same period.",
    time_col="day",
    subheader="estimate",
    trend="P1M",
)
IGNORED_LEADS = timeseries(
    "ignored_leads_by_month",
    "Ignored leads by month",
    D.LEAD_PROCESSING,
    description="Leads with no first response (call, e-mail or task) within 24 working hours, "
    "beside processed and converted leads.",
    x="month",
    metrics=["ignored_leads", "processed_leads", "converted_leads"],
)
MY_CUSTOMERS = raw_table(
    "customers_masked",
    "Customers (contacts masked)",
    D.CUSTOMERS,
    description="Customers with the manager of their latest deal; phones and e-mails are "
    "masked outside finance.",
    columns=[
        "customer_name",
        "segment",
        "channel",
        "manager_name",
        "phone_masked",
        "email_masked",
        "first_won_at",
    ],
    order_by=[("customer_name", True)],
    row_limit=1000,
)

# --------------------------------------------------------------------------- executive

PLAN_VS_WON = timeseries(
    "won_vs_plan",
    "Won revenue vs plan by quarter",
    D.FORECAST,
    description="Quarterly plan (plan file) and won revenue to date.",
    x="quarter",
    grain="P3M",
    metrics=["plan_amount", "won_to_date"],
)
ATTAINMENT = big_number(
    "plan_attainment",
    "Plan attainment, current quarter",
    D.FORECAST,
    "attainment",
    description="Won revenue to date / plan of the current quarter.",
    where=[Where("is_current_quarter", "IS TRUE")],
)
COVERAGE = big_number(
    "pipeline_coverage",
    "Pipeline coverage, current quarter",
    D.FORECAST,
    "coverage",
    description="Weighted pipeline expected to close this quarter / remaining plan. Above 1: "
    "enough pipeline to make the plan.",
    where=[Where("is_current_quarter", "IS TRUE")],
)
COVERAGE_BY_TEAM = table(
    "coverage_by_team",
    "Plan, won and coverage by team, current quarter",
    D.FORECAST,
    description="Current quarter per team: plan, won to date, remaining plan, weighted "
    "pipeline and coverage.",
    groupby=["team"],
    metrics=["plan_amount", "won_to_date", "remaining_plan", "weighted_pipeline", "coverage"],
    where=[Where("is_current_quarter", "IS TRUE")],
)
VELOCITY = big_number(
    "sales_velocity",
    "Sales velocity, revenue per day",
    D.DEALS,
    "sales_velocity",
    description="Open deals × win rate × average won amount / average sales cycle, over all "
    "deals (not filtered by period).",
)
LOST_AMOUNT = big_number(
    "lost_amount",
    "Lost revenue",
    D.LOST_REVENUE,
    "lost_amount",
    description="Amount of deals closed lost in the period.",
    time_col="month",
    trend="P1M",
)
LOST_BY_MONTH = timeseries(
    "lost_by_month",
    "Lost revenue by month and reason",
    D.LOST_REVENUE,
    description="Amount of deals closed lost, by month and normalised loss reason.",
    x="month",
    metrics=["lost_amount"],
    groupby=["loss_reason"],
    stack=True,
)
OVERDUE = big_number(
    "overdue_receivables",
    "Overdue receivables",
    D.INVOICES,
    "overdue_amount",
    description="Open amount of invoices past their due date, as of the last build.",
)
FRESHNESS = table(
    "freshness_by_source",
    "Data freshness by source",
    D.DATA_QUALITY,
    description="Per source: the latest record time in the data, hours since, and the last "
    "load. A dashboard shows numbers only as fresh as this.",
    groupby=["source"],
    metrics=["latest_record_at", "hours_since_latest_record", "last_loaded_at"],
    order_by="source",
    ascending=True,
)

# --------------------------------------------------------------------------- marketing

_MODEL_NOTE = " Grouped by attribution model: the model's name is on every series and row."

ROI_TABLE = table(
    "channel_summary",
    "Channels: spend, leads, CPL, CAC, conversion, ROMI",
    D.CHANNEL_ROI,
    description="Per attribution model and channel over the period." + _MODEL_NOTE,
    groupby=["attribution_model", "channel"],
    metrics=[
        "spend",
        "leads",
        "cpl",
        "won_deals",
        "cac",
        "conversion",
        "attributed_revenue",
        "attributed_gross_margin",
        "romi",
    ],
    order_by="spend",
    time_col="month",
)


def _roi_series(key: str, title: str, metric: str, kind: str, what: str) -> Chart:
    return timeseries(
        key,
        title,
        D.CHANNEL_ROI,
        description=what + _MODEL_NOTE,
        x="month",
        metrics=[metric],
        groupby=["attribution_model", "channel"],
        kind=kind,
        stack=kind == "bar",
    )


SPEND = _roi_series(
    "spend_by_channel", "Spend by channel and month", "spend", "bar", "Marketing spend."
)
LEADS = _roi_series("leads_by_channel", "Leads by channel and month", "leads", "bar", "New leads.")
CPL = _roi_series("cpl_by_channel", "CPL by channel and month", "cpl", "line", "Spend / leads.")
CAC = _roi_series(
    "cac_by_channel",
    "CAC by channel and month",
    "cac",
    "line",
    "Spend / new customers attributed.",
)
CONV = _roi_series(
    "conversion_by_channel",
    "Conversion lead→won by channel and month",
    "conversion",
    "line",
    "Attributed won deals / leads.",
)
ROMI = _roi_series(
    "romi_by_channel",
    "ROMI by channel and month",
    "romi",
    "line",
    "(attributed gross margin − spend) / spend.",
)
ROMI_BAR = category_bar(
    "romi_by_channel_total",
    "ROMI by channel over the period",
    D.CHANNEL_ROI,
    description="(attributed gross margin − spend) / spend per channel." + _MODEL_NOTE,
    x="channel",
    metrics=["romi"],
    groupby=["attribution_model"],
    time_col="month",
    sort_by_x=False,
)

# --------------------------------------------------------------------------- finance

AGING_BUCKETS = category_bar(
    "aging_buckets",
    "Aging buckets as of the chosen date",
    D.AGING,
    description="Open receivables by days overdue on the as-of date picked in the 'As of "
    "date' filter (default: the latest snapshot). Saved query: the latest snapshot.",
    x="bucket_label",
    metrics=["open_amount"],
)
AGING_TREND = timeseries(
    "aging_at_month_ends",
    "Aging buckets at month ends",
    D.AGING,
    description="Open receivables by aging bucket at each month end.",
    x="as_of_date",
    grain="P1D",
    metrics=["open_amount"],
    groupby=["bucket_label"],
    where=[Where("is_month_end", "IS TRUE")],
    stack=True,
)
DSO_TREND = timeseries(
    "dso_trend",
    "DSO trend",
    D.DSO,
    description="Days sales outstanding per month: AR at month end / invoiced revenue × days.",
    x="month",
    metrics=["dso"],
    kind="line",
    y_title="days",
)
OVERDUE_BY_CUSTOMER = table(
    "overdue_by_customer",
    "Overdue by customer",
    D.AGING,
    description="Overdue open amount per customer and manager on the chosen as-of date.",
    groupby=["customer_name", "manager_name"],
    metrics=["overdue_amount", "open_amount", "max_days_overdue"],
    where=[Where("is_overdue", "IS TRUE")],
    row_limit=500,
)
OVERDUE_BY_MANAGER = category_bar(
    "overdue_by_manager",
    "Overdue by manager",
    D.AGING,
    description="Overdue open amount per manager on the chosen as-of date, by aging bucket.",
    x="manager_name",
    metrics=["overdue_amount"],
    groupby=["bucket_label"],
    where=[Where("is_overdue", "IS TRUE")],
    stack=True,
    sort_by_x=False,
)
UNMATCHED = raw_table(
    "unmatched_payments",
    "Unmatched payments",
    D.PAYMENTS,
    description="Incoming payments with an unmatched remainder (no invoice found, or an "
    "over-payment): listed, never dropped.",
    columns=[
        "paid_on",
        "payer_name",
        "payer_inn",
        "amount",
        "matched_amount",
        "unmatched_amount",
        "unmatched_reason",
    ],
    time_col="paid_on",
    where=[Where("unmatched_amount", "!=", 0)],
    order_by=[("paid_on", False)],
)
PROFIT_TABLE = table(
    "customer_profitability",
    "Customer profitability",
    D.PROFITABILITY,
    description="Per customer over the period's years: revenue (net of VAT), COGS, cost to "
    "serve, contribution margin and margin %.",
    groupby=["customer_name", "segment", "manager_name"],
    metrics=["revenue", "cogs", "cost_to_serve", "contribution_margin", "margin_pct"],
    order_by="contribution_margin",
    time_col="year_start",
    row_limit=500,
)
CLV_BY_ABC = category_bar(
    "clv_by_abc",
    "CLV by ABC class (latest year)",
    D.PROFITABILITY,
    description="5-year NPV of contribution margin, summed per ABC class (A = customers "
    "making 80% of revenue), latest year.",
    x="abc_class",
    metrics=["clv_5y", "revenue"],
    where=[Where("is_latest_year", "IS TRUE")],
)
ABC_CUSTOMERS = pie(
    "customers_by_abc",
    "Customers by ABC class (latest year)",
    D.PROFITABILITY,
    description="Number of customers per ABC class, latest year.",
    groupby=["abc_class"],
    metric="customers",
    where=[Where("is_latest_year", "IS TRUE")],
)

# On the dashboard the required "As of date" filter picks one snapshot (default: the
# latest); the saved query (chart data API, reports) has no dashboard filter, so it reads
# the latest snapshot itself rather than a sum over every date.
for _chart in (AGING_BUCKETS, OVERDUE_BY_CUSTOMER, OVERDUE_BY_MANAGER):
    _chart.query["filters"].append(Where("is_latest_snapshot", "IS TRUE").query())

# --------------------------------------------------------------------------- quality

DQ_LOADS = table(
    "loads_by_source",
    "Loads: rows read, loaded, quarantined, duplicates",
    D.DATA_QUALITY,
    description="Per load and source: rows read from the files, loaded, quarantined, "
    "duplicates merged, incomplete rows, checks run and failed, and the latest record time.",
    groupby=["loaded_at", "source", "table_name"],
    metrics=[
        "rows_read",
        "rows_loaded",
        "rows_quarantined",
        "duplicates_merged",
        "incomplete_rows",
        "checks_run",
        "failed_checks",
        "latest_record_at",
    ],
    order_by="loaded_at",
    time_col="loaded_at",
    row_limit=1000,
)
DQ_QUARANTINE = category_bar(
    "quarantine_by_source",
    "Quarantined and duplicate rows by source",
    D.DATA_QUALITY,
    description="Rows set aside (quarantined) and duplicates merged per source in the period.",
    x="source",
    metrics=["rows_quarantined", "duplicates_merged", "incomplete_rows"],
    time_col="loaded_at",
)
DQ_ROWS = category_bar(
    "rows_by_source",
    "Rows read and loaded by source",
    D.DATA_QUALITY,
    description="Rows read from the source files and loaded, per source, in the period.",
    x="source",
    metrics=["rows_read", "rows_loaded"],
    time_col="loaded_at",
)
DQ_CHECKS = category_bar(
    "checks_by_source",
    "Failed checks by source",
    D.DATA_QUALITY,
    description="Data-quality checks run on the loads of the period and how many failed "
    "(blocking ones stop the publish), per source.",
    x="source",
    metrics=["checks_run", "failed_checks", "failed_blocking_checks"],
    time_col="loaded_at",
)
DQ_FAILED_LIST = raw_table(
    "failed_checks_list",
    "Failed checks of the loads",
    D.DATA_QUALITY,
    description="Loads and tables with a failed check, newest first, with the checks' names.",
    columns=["loaded_at", "source", "table_name", "failed_checks", "failed_check_names"],
    order_by=[("loaded_at", False)],
    time_col="loaded_at",
    where=[Where("failed_checks", ">", 0)],
)
DQ_QUARANTINE_SHARE = big_number(
    "quarantine_share",
    "Quarantined share of rows read",
    D.DATA_QUALITY,
    "quarantine_share",
    description="Rows quarantined / rows read over the loads of the period.",
    time_col="loaded_at",
)
DQ_LAST_LOAD = big_number(
    "hours_since_last_load",
    "Hours since the last load",
    D.DATA_QUALITY,
    "hours_since_last_load",
    description="Hours between now and the last load of any source; per-source record "
    "freshness is in 'Data freshness by source'.",
)

AS_OF = big_number(
    "data_as_of",
    "Data as of",
    D.DATA_QUALITY,
    "last_loaded_at",
    description="The last load of any source: every figure on the dashboard is as of it.",
    timestamp=True,
)


def _meaning(key: str, period: str, notes: str = "") -> list[tuple[Markdown | Chart, int, int]]:
    """The first row of a dashboard: what its numbers mean, and the time they are as of."""
    text = (
        "#### What these numbers mean\n\n"
        f"**Period:** {period}\n\n"
        "**As of:** the last load, on the right. Open amounts, ages in stage and days overdue "
        "are counted up to it.\n\n"
        f"**Money** is in {CURRENCY_MARK}, the reporting currency: other currencies are "
        "converted at the rates of the exports.\n\n"
        + (f"{notes}\n\n" if notes else "")
        + "**Definitions:** each chart's description (chart menu → Show chart description) "
        "defines its measure in the words of the data dictionary (dbt docs)."
    )
    return [(Markdown(f"meaning_{key}", text), 9, 34), (AS_OF, 3, 34)]


# --------------------------------------------------------------------------- filters


def _period(description: str) -> NativeFilter:
    return NativeFilter("period", "Period", description, kind="time")


def _select(key: str, name: str, column: str, ds: D.Dataset, description: str) -> NativeFilter:
    return NativeFilter(key, name, description, column=column, dataset=ds)


MANAGER = _select("manager", "Manager", "manager_name", D.DEALS, "Responsible manager(s).")
TEAM = _select("team", "Team", "team", D.DEALS, "Sales team(s).")
CHANNEL = _select("channel", "Channel", "channel", D.DEALS, "Normalised lead channel(s).")
PIPELINE = _select(
    "pipeline",
    "Pipeline",
    "pipeline",
    D.FUNNEL,
    "Sales pipeline(s); empty: all. Each pipeline has its own stages.",
)

# --------------------------------------------------------------------------- dashboards

EXECUTIVE = Dashboard(
    key="executive",
    title="Executive overview",
    slug="executive",
    description="Revenue vs plan, win rate, velocity, coverage, lost revenue, receivables, "
    "freshness.",
    rows=[
        _meaning(
            "executive",
            "Deals and lost deals count in the month they closed; plan, won and coverage are of the current quarter.",
        ),
        [(ATTAINMENT, 3, 30), (COVERAGE, 3, 30), (WIN_RATE, 3, 30), (VELOCITY, 3, 30)],
        [(PLAN_VS_WON, 7, 60), (COVERAGE_BY_TEAM, 5, 60)],
        [(LOST_AMOUNT, 3, 30), (OVERDUE, 3, 30), (WON_AMOUNT, 3, 30), (DQ_LAST_LOAD, 3, 30)],
        [(LOST_BY_MONTH, 7, 60), (FRESHNESS, 5, 60)],
    ],
    filters=[
        _period("Closing month of deals and lost deals; quarters of the plan."),
        TEAM,
        MANAGER,
    ],
)

MARKETING = Dashboard(
    key="marketing",
    title="Marketing — channels",
    slug="marketing",
    description="Spend, leads, CPL, CAC, conversion and ROMI per channel, month and "
    "attribution model.",
    rows=[
        _meaning(
            "marketing",
            "Spend, leads and attributed deals count in their month.",
            "**Attribution:** one model at a time (filter above): first touch, last touch or linear; the model's name is on every series.",
        ),
        [(ROI_TABLE, 12, 60)],
        [(SPEND, 6, 55), (LEADS, 6, 55)],
        [(CPL, 6, 55), (CAC, 6, 55)],
        [(CONV, 6, 55), (ROMI, 6, 55)],
        [(ROMI_BAR, 12, 55)],
    ],
    filters=[
        NativeFilter(
            "attribution_model",
            "Attribution model",
            "Attribution model: first_touch, last_touch or linear. Never mixed: one at a time.",
            column="attribution_model",
            dataset=D.CHANNEL_ROI,
            multi=False,
            required=True,
            default=["last_touch"],
        ),
        _period("Month of spend, leads and attributed deals."),
        _select("channel", "Channel", "channel", D.CHANNEL_ROI, "Normalised channel(s)."),
    ],
)

SALES = Dashboard(
    key="sales",
    uuid="2f20cf9b-6b7f-4868-94d2-cf9034324497",
    title="Sales — funnel and managers",
    slug="sales-funnel",
    description="Funnel, days in stage, stuck deals, lost revenue, manager scorecard, missed "
    "calls, ignored leads.",
    rows=[
        _meaning(
            "sales",
            "Deals count in the month they closed, stage visits in the month they began, calls and leads on their day. Stuck deals are open deals now, whatever the period.",
            "**Trends:** the numbers at the top show the latest month of the period and its change against the month before.",
        ),
        [(WON_DEALS, 3, 30), (WON_AMOUNT, 3, 30), (WIN_RATE, 3, 30), (AVG_CYCLE, 3, 30)],
        [(FUNNEL, 12, 60)],
        [(CONVERSION, 7, 64), (WON_BY_MONTH, 5, 64)],
        [(DAYS_IN_STAGE, 12, 60)],
        [(STUCK_COUNT, 3, 30), (STUCK_LIST, 9, 60)],
        [(LOST_BY_REASON, 7, 60), (LOST_TABLE, 5, 60)],
        [(SCORECARD, 12, 60)],
        [(MISSED_VALUE, 3, 50), (MISSED_BY_MANAGER, 9, 50)],
        [(IGNORED_LEADS, 12, 50)],
        [(MY_CUSTOMERS, 12, 60)],
    ],
    filters=[
        _period("Deals closed, stages entered, funnel months, calls and leads in this range."),
        PIPELINE,
        TEAM,
        MANAGER,
        CHANNEL,
    ],
)

FINANCE = Dashboard(
    key="finance",
    title="Finance — receivables and profitability",
    slug="finance",
    description="Aging as of a chosen date, DSO, overdue by customer and manager, unmatched "
    "payments, customer profitability, CLV and ABC classes.",
    rows=[
        _meaning(
            "finance",
            "The as-of date picks one snapshot of receivables (default: the latest); DSO, payments and profitability count in their month or year.",
        ),
        [(AGING_BUCKETS, 6, 55), (OVERDUE_BY_MANAGER, 6, 55)],
        [(OVERDUE_BY_CUSTOMER, 6, 60), (AGING_TREND, 6, 60)],
        [(DSO_TREND, 6, 50), (UNMATCHED, 6, 50)],
        [(PROFIT_TABLE, 12, 60)],
        [(CLV_BY_ABC, 6, 50), (ABC_CUSTOMERS, 6, 50)],
    ],
    filters=[
        NativeFilter(
            "as_of",
            "As of date",
            "Snapshot date of the receivables (default: the latest). Aging never sums dates.",
            column="as_of",
            dataset=D.AGING,
            multi=False,
            required=True,
            first_item_desc=True,
            only=["aging_buckets", "overdue_by_customer", "overdue_by_manager"],
        ),
        _period("Months of DSO, payment dates, profitability years, month-end aging."),
        _select("team", "Team", "team", D.AGING, "Team(s) of the responsible manager."),
        _select("manager", "Manager", "manager_name", D.AGING, "Responsible manager(s)."),
    ],
)

QUALITY = Dashboard(
    key="quality",
    title="Data quality and freshness",
    slug="data-quality",
    description="Per source and load: rows read, loaded, quarantined, duplicates, freshness.",
    rows=[
        _meaning(
            "quality",
            "Loads count at the time they ran.",
        ),
        [(DQ_LAST_LOAD, 4, 25), (DQ_QUARANTINE_SHARE, 4, 25), (FRESHNESS, 4, 50)],
        [(DQ_ROWS, 6, 55), (DQ_QUARANTINE, 6, 55)],
        [(DQ_CHECKS, 6, 55), (DQ_FAILED_LIST, 6, 55)],
        [(DQ_LOADS, 12, 70)],
    ],
    filters=[
        _period("Load time."),
        _select("source", "Source", "source", D.DATA_QUALITY, "Source system(s)."),
    ],
    notes=[
        Markdown(
            "data_docs",
            "**Check details:** every expectation of every load, with the failing values, "
            f"is in the [Great Expectations Data Docs]({DATA_DOCS_URL}) "
            "(served by `crmwh serve`, rebuilt by every `crmwh run`).",
            height=10,
        )
    ],
)

DASHBOARDS = [EXECUTIVE, MARKETING, SALES, FINANCE, QUALITY]

BUNDLE = Bundle(datasets=D.ALL, dashboards=DASHBOARDS)
