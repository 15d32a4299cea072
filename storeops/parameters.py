"""Every flow parameter, defined once: its type, limits, help text and default.

A flow's signature uses these aliases and defaults (``stores: Stores = STORES``); Prefect builds the
Run form (JSON schema, descriptions, limits) and validates every call from that signature, the
CLIs are generated from it (``flows/cli.py``), run names read its defaults (``flows/run_names.py``),
and the planning Lambda's event (``storeops.planning.models.PlanRequest``) uses the same aliases.
Pure (no Prefect): the Lambda imports it. A new parameter: add its alias (and default) here, then
put it in the flow's signature; nothing else to write.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

# ---- the simulated chain (store-data, scenario, demo)
STORES = 100
PRODUCTS = 50
SEED = 7
Stores = Annotated[int, Field(ge=1, le=10_000, description="Simulated stores.")]
Products = Annotated[int, Field(ge=1, le=5_000, description="Products per store.")]
Seed = Annotated[
    int, Field(ge=0, le=2**32 - 1, description="The simulation's seed: the same seed, the same stores and customers.")
]
AsOf = Annotated[
    AwareDatetime | None,
    Field(description="Time with a time zone, e.g. 2026-11-26T12:00:00Z; empty means now."),
]
BackfillDays = Annotated[
    int, Field(ge=0, le=400, description="First write this many days of hourly history into the lake.")
]
BackfillEveryHours = Annotated[int, Field(ge=1, le=24, description="Hours between backfilled readings.")]
Wait = Annotated[
    bool,
    Field(description="Return only once Athena counts every reading sent (up to Firehose's buffer plus 3 minutes)."),
]

# ---- planning (the plan flow, the scenario, the planning Lambda's event)
LOOKBACK_HOURS = 168.0
LEAD_TIME_HOURS = 4.0
REVIEW_HOURS = 1.0
MAX_LOOKBACK_HOURS = 24 * 31  # the longest planning window; the raw readings' retention is sized to it
MAX_REQUESTS = 10_000_000
MAX_PLAN_STORES = 1000
EXTRA_STOP_COST = 40.0  # GBP: an extra stop (15) and its share of a route's detour and kilometres
SAFETY_FACTOR = 1.0
LookbackHours = Annotated[
    float, Field(gt=0, le=MAX_LOOKBACK_HOURS, description="Window of readings and sales, in hours.")
]
LeadTimeHours = Annotated[
    float,
    Field(
        ge=0,
        le=24 * 14,
        description="Hours from request to delivery assumed for a store the ledger shows no delivery for yet "
        "(otherwise its achieved lead time is used).",
    ),
]
ReviewHours = Annotated[
    float, Field(gt=0, le=24 * 7, description="Hours until the next plan can order again (the planning cadence).")
]
MaxRequests = Annotated[
    int | None,
    Field(ge=0, le=MAX_REQUESTS, description="At most this many dispatch requests, by priority (empty: all)."),
]
PlanStores = Annotated[
    list[str] | None,
    Field(max_length=MAX_PLAN_STORES, description="Plan only these store ids (e.g. S0001); empty means every store."),
]
DryRun = Annotated[bool, Field(description="Only compute and show; send, move and record nothing.")]
ExtraStopCost = Annotated[
    float,
    Field(
        ge=0,
        le=10_000,
        description="What an extra delivery between a store's regular slots costs (GBP): it goes only where the "
        "margin it saves is worth more.",
    ),
]
SafetyFactor = Annotated[
    float, Field(gt=0, le=5, description="Scales the forecast's spread in the order-up-to levels (1: as forecast).")
]

# ---- rollup and forecast
CATCH_UP_HOURS = 48  # the hourly run looks back this far for hours without a marker
HOUR_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}$"
Hour = Annotated[
    str | None,
    Field(pattern=HOUR_PATTERN, description="An hour, UTC, e.g. 2026-11-27T10 (closed 10 minutes after it ends)."),
]
CatchUpHours = Annotated[
    int, Field(ge=1, le=CATCH_UP_HOURS, description="Catching up, look at this many of the latest closed hours.")
]
FORECAST_HISTORY_DAYS = 56  # the forecast's history: eight weeks (sql/forecast.md)
MAX_FORECAST_HISTORY_DAYS = 180
ForecastHistoryDays = Annotated[
    int, Field(ge=7, le=MAX_FORECAST_HISTORY_DAYS, description="Days of history the forecast learns from.")
]
ForecastDay = Annotated[date | None, Field(description="UTC day to forecast, e.g. 2026-11-28 (default today).")]

# ---- the trucks and the dead-letter queue
WINDOW_MESSAGES = 5_000
WINDOW_SECONDS = 10.0
UntilEmpty = Annotated[bool, Field(description="Stop once the queue is empty (a drain); otherwise run until stopped.")]
MaxSeconds = Annotated[float | None, Field(gt=0, description="Stop after this many seconds; empty means no limit.")]
WindowMessages = Annotated[int, Field(ge=1, le=10_000, description="Messages consolidated per window at most.")]
WindowSeconds = Annotated[
    float,
    Field(
        gt=0,
        le=60,
        description="Seconds a window gathers messages; with the queue's lease and long poll it must fit in the "
        "visibility timeout (10 s at the deployed values).",
    ),
]
DLQ_LIMIT = 10_000
DeadLetterLimit = Annotated[int, Field(ge=1, le=100_000, description="Look at this many dead letters at most.")]

# ---- the scenario (the closed loop in virtual time)
SCENARIO_DAYS = 14
SCENARIO_HISTORY_DAYS = 28
PLAN_EVERY_HOURS = 4
SCENARIO_START = datetime(2026, 3, 23, tzinfo=UTC)  # a Monday: the week before BST and Easter 2026 follow
POLICIES: tuple[str, ...] = ("storeops", "plain", "oracle", "workshop", "workshop-consolidated", "none")
Policy = Literal["storeops", "plain", "oracle", "workshop", "workshop-consolidated", "none"]
Days = Annotated[int, Field(ge=1, le=60, description="Virtual days to simulate.")]
PlanEveryHours = Annotated[int, Field(ge=1, le=24, description="Virtual hours between planning runs.")]
ScenarioPolicy = Annotated[
    Policy,
    Field(
        description="storeops (this planner), plain (the previous release's rule), oracle (this planner with the "
        "true demand distribution), workshop (the original rule, a truck per alert), workshop-consolidated (its "
        "alerts on our trucks) or none (no replenishment)."
    ),
]
ScenarioStart = Annotated[
    AwareDatetime,
    Field(description="Virtual start, a whole hour with a time zone (never the wall clock)."),
]
HistoryDays = Annotated[
    int, Field(ge=0, le=90, description="Days of sales history before the start for the planner to learn from.")
]
