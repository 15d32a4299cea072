"""Forecast benchmark: the project's demand forecast (sql/forecast.sql) against statsforecast's models.

    python -m bench.forecast [--stores 30] [--products 50] [--days 56] [--horizon 7] [--seed 7] [--json]

Pure (no AWS, no emulator). The simulator (``storeops.stores``: the demand model the product runs on)
makes ``--days`` days of history and ``--horizon`` days after them, hour by hour from empty-ish shelves,
every shelf refilled once a day at the history's restock hour (``storeops.stores.backfill.RESTOCK_HOUR``
local: ``restock`` fills ambient shelves to capacity and perishables to a day and a half of mean demand),
so stock-outs censor sales as they do in the product's history. Each hour ends with a reading, rolled up
per pair and UTC day into the daily rollup's columns (``DAILY_COLUMNS``, labelled as ``sql/rollup_day.sql``
labels readings: by the UTC day and local hour of the reading's time) with the promotion calendar's flag
and shelf price of the day; the true demand (sold + lost) of every pair-day is kept as the target.

Rolling origin: for each horizon day d, every model forecasts d (one day ahead) from the ``--days`` days
before it, the project's on DuckDB (``bench.duckdb_sql``: the SQL as the emulator runs it) with the
product's reference tables (products, promotions), statsforecast's on the same censored daily sales
(``cross_validation``, h=1, a window per origin, the same ``--days`` days of input).

Scores, against demand actuals (and against sales actuals, for reference):

- MASE, pooled: the sum over every series and origin of the absolute errors over the sum of the scales,
  a series' scale being the in-sample mean absolute error of the weekly seasonal naive (lag 7) on its
  history (the ``--days`` days before the first origin). Pooled, a series weighs by its volume, not by
  how small its scale is (intermittent series have scales near 0).
- ``mase_vs_seasonal_naive``: the project's MASE over the seasonal naive's, which (the same scales
  divide both) is the relative MAE: MAE(project) / MAE(seasonal naive) over the same points.
- ``ratio_to_best_statsforecast``: the project's MASE over the lowest of the statsforecast models'.
- ``by_class``: the same by the Syntetos-Boylan class of each series' history (ADI 1.32, CV² 0.49).
- bias: the sum of the forecasts over the sum of the actuals.

Targets: ``mase_vs_seasonal_naive`` <= 0.85 and ``ratio_to_best_statsforecast`` <= 1.05. AutoETS is
fitted at the first origin only (its states updated at the next ones) unless ``--refit-ets``: fitting it at
every origin is most of a run's time. Needs the ``bench`` and ``local`` extras (statsforecast, duckdb); the
default run takes under a minute on 2 idle cores.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from bench.duckdb_sql import run_query
from bench.harness import run_benchmark
from storeops.calendar import local_hour
from storeops.cli import OneLineArgumentParser, emit_json, positive_int
from storeops.planning.forecast import DAILY_COLUMNS, forecast_parameters
from storeops.stores.backfill import RESTOCK_HOUR
from storeops.stores.catalog import Catalog, build_catalog
from storeops.stores.demand import DemandModel, syntetos_boylan
from storeops.stores.reference import products_table, promotions_table, shelf_prices
from storeops.stores.simulation import advance_to, initial_state, restock

FIRST_ORIGIN = date(2026, 3, 23)  # the day of flows.scenario's SCENARIO_START: the first forecast day
CLASSES = ("smooth", "erratic", "intermittent", "lumpy")
STATSFORECAST_MODELS = ("SeasonalNaive", "AutoETS", "CrostonSBA", "TSB")
PROJECT = "project"
DURATION = (
    " The default run takes about 1.5 minutes on 2 cores (95 s measured, most of it statsforecast's"
    " cross-validation); it grows with --stores x --products, --days and --horizon, and --refit-ets is several"
    " times slower."
)
ORACLE = "oracle"  # the demand model's expected demand of the day (what the simulator knows): a reference
TARGETS = {"mase_vs_seasonal_naive": 0.85, "ratio_to_best_statsforecast": 1.05}
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

Progress = Callable[[str, int, int], None]  # (task, done, total)


@dataclass(frozen=True)
class History:
    """A simulated history: the daily rollup's rows of every pair-day (``daily``, with ``dt``), the true
    demand of each (``actuals``: store_id, product_id, day, demand, sales) and the reference tables."""

    daily: pd.DataFrame
    actuals: pd.DataFrame
    products: pd.DataFrame
    promotions: pd.DataFrame
    first_day: date
    days: int


def simulate(catalog: Catalog, first_day: date, days: int, progress: Progress | None = None) -> History:
    """``days`` UTC days from ``first_day`` on, hour by hour: a reading at the end of every hour (the first
    at 00:00 UTC of ``first_day``, reporting the hour before), the shelves refilled at ``RESTOCK_HOUR`` local."""
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC) - HOUR
    state = initial_state(catalog, start)
    n, p = state.shape
    shape = (days, n, p)
    sold = np.zeros(shape, dtype=np.int64)
    lost = np.zeros(shape, dtype=np.int64)
    expired = np.zeros(shape, dtype=np.int64)
    empty = np.zeros(shape, dtype=np.int64)
    last_on_hand = np.zeros(shape, dtype=np.int64)
    by_hour = np.zeros((*shape, 24), dtype=np.int64)
    empty_by_hour = np.zeros((*shape, 24), dtype=bool)
    for index in range(days * 24):
        at = start + (index + 1) * HOUR
        tick = advance_to(state, at)
        local = local_hour(at)
        if local.hour == RESTOCK_HOUR:
            restock(state)
        day = (at.date() - first_day).days
        sold[day] += tick.units_sold
        lost[day] += tick.units_lost
        expired[day] += tick.units_expired
        empty[day] += state.on_hand == 0
        empty_by_hour[day, :, :, local.hour] |= state.on_hand == 0
        last_on_hand[day] = state.on_hand
        by_hour[day, :, :, local.hour] += tick.units_sold
        if progress is not None:
            progress("simulating the history", index + 1, days * 24)
    return History(
        daily=_daily_frame(catalog, first_day, sold, expired, empty, last_on_hand, by_hour, empty_by_hour),
        actuals=_actuals_frame(catalog, first_day, sold, lost),
        products=products_table(catalog),
        promotions=promotions_table(catalog),
        first_day=first_day,
        days=days,
    )


def _keys(catalog: Catalog, first_day: date, days: int) -> pd.DataFrame:
    """store_id, product_id, day of every pair-day, day-major then store-major (the arrays' order)."""
    n, p = catalog.shape
    labels = [(first_day + d * DAY).isoformat() for d in range(days)]
    return pd.DataFrame(
        {
            "store_id": np.tile(np.repeat(catalog.stores["store_id"].to_numpy(), p), days),
            "product_id": np.tile(catalog.products["product_id"].to_numpy(), days * n),
            "day": np.repeat(labels, n * p),
        }
    )


def _daily_frame(
    catalog: Catalog,
    first_day: date,
    sold: np.ndarray,
    expired: np.ndarray,
    empty: np.ndarray,
    last_on_hand: np.ndarray,
    by_hour: np.ndarray,
    empty_by_hour: np.ndarray,
) -> pd.DataFrame:
    days, n, _ = sold.shape
    frame = _keys(catalog, first_day, days)
    prices, promoted = zip(*(shelf_prices(catalog, first_day + d * DAY) for d in range(days)), strict=True)
    columns: dict[str, Any] = {
        "category": np.tile(catalog.products["category"].to_numpy(), days * n),
        "case_pack": np.tile(catalog.products["case_pack"].to_numpy().astype(np.int32), days * n),
        "units_sold": sold.reshape(-1),
        "units_expired": expired.reshape(-1),
        "hours_covered": 24.0,
        "empty_hours": empty.reshape(-1),
        "promoted": np.repeat(np.array(promoted, dtype=np.int32), n, axis=0).reshape(-1),
        "last_on_hand": last_on_hand.reshape(-1).astype(np.int32),
        "price": np.repeat(np.array(prices), n, axis=0).reshape(-1),
        **{f"sold_h{h:02d}": by_hour[..., h].reshape(-1) for h in range(24)},
        "rolled_hours": np.int64(24),
        # rollup_day.sql's empty_mask: character h + 1 is 1 when the reading of local hour h found the shelf empty
        "empty_mask": np.array(["".join(row) for row in np.where(empty_by_hour.reshape(-1, 24), "1", "0")]),
    }
    frame = frame.assign(**columns)[list(DAILY_COLUMNS)]
    return frame.assign(dt=frame["day"])


def _actuals_frame(catalog: Catalog, first_day: date, sold: np.ndarray, lost: np.ndarray) -> pd.DataFrame:
    frame = _keys(catalog, first_day, sold.shape[0])
    return frame.assign(demand=(sold + lost).reshape(-1).astype(float), sales=sold.reshape(-1).astype(float))


def project_forecasts(
    history: History, origins: list[date], history_days: int, progress: Progress | None = None
) -> pd.DataFrame:
    """The project's one-day-ahead forecast (``mean_d0``) of every pair from each origin: store_id,
    product_id, day, forecast."""
    import duckdb

    connection = duckdb.connect(":memory:")
    frames = []
    try:
        tables = {"daily_table": history.daily, "products_table": history.products}
        tables["promotions_table"] = history.promotions
        for index, origin in enumerate(origins):
            result = run_query("forecast", tables, forecast_parameters(origin, history_days), connection)
            frames.append(
                pd.DataFrame(
                    {
                        "store_id": result["store_id"],
                        "product_id": result["product_id"],
                        "day": origin.isoformat(),
                        "forecast": result["mean_d0"].astype(float),
                        "method": result["method"],
                    }
                )
            )
            if progress is not None:
                progress("the project's forecast (DuckDB)", index + 1, len(origins))
    finally:
        connection.close()
    return pd.concat(frames, ignore_index=True)


def statsforecast_forecasts(
    history: History, origins: list[date], history_days: int, n_jobs: int, refit_ets: bool = False
) -> pd.DataFrame:
    """statsforecast's one-day-ahead forecasts from each origin, on the censored daily sales: store_id,
    product_id, day and a column per model. Every model is fitted again at each origin on the ``history_days``
    days before it, but AutoETS (its model selection is most of the run time) unless ``refit_ets``: it is
    fitted at the first origin and its states are updated with the days after it (``refit=False``)."""
    from statsforecast import StatsForecast
    from statsforecast.models import TSB, AutoETS, CrostonSBA, SeasonalNaive

    daily = history.daily[history.daily["day"] <= origins[-1].isoformat()]
    frame = pd.DataFrame(
        {
            "unique_id": daily["store_id"] + "/" + daily["product_id"],
            "ds": pd.to_datetime(daily["day"]),
            "y": daily["units_sold"].astype(float),
        }
    )
    runs: list[tuple[list[Any], bool]] = [
        ([SeasonalNaive(season_length=7), CrostonSBA(), TSB(alpha_d=0.1, alpha_p=0.05)], True),
        ([AutoETS(season_length=7)], refit_ets),
    ]
    out: pd.DataFrame | None = None
    for models, refit in runs:
        engine = StatsForecast(models=models, freq="D", n_jobs=n_jobs)
        result = engine.cross_validation(
            h=1, df=frame, n_windows=len(origins), step_size=1, input_size=history_days, refit=refit
        )
        result = result.reset_index() if "unique_id" not in result.columns else result
        pair = result["unique_id"].str.split("/", n=1, expand=True)
        part = pd.DataFrame({"store_id": pair[0], "product_id": pair[1], "day": result["ds"].dt.strftime("%Y-%m-%d")})
        for model in models:
            name = str(model)
            part[name] = result[name].astype(float).fillna(0.0).clip(lower=0.0).to_numpy()
        keys = ["store_id", "product_id", "day"]
        out = part if out is None else out.merge(part, on=keys, how="inner", validate="one_to_one")
    assert out is not None
    return out[["store_id", "product_id", "day", *STATSFORECAST_MODELS]]


def seasonal_naive_scales(history: History, first_origin: date, history_days: int) -> pd.DataFrame:
    """Per series: the in-sample MAE of the weekly seasonal naive on its sales of the ``history_days`` days
    before ``first_origin`` (the MASE scale), its Syntetos-Boylan class and its mean sales."""
    first = (first_origin - history_days * DAY).isoformat()
    daily = history.daily[(history.daily["day"] >= first) & (history.daily["day"] < first_origin.isoformat())]
    wide = daily.pivot_table(index=["store_id", "product_id"], columns="day", values="units_sold", aggfunc="sum")
    values = wide.to_numpy(dtype=float)
    scale = np.abs(values[:, 7:] - values[:, :-7]).mean(axis=1)
    return pd.DataFrame(
        {
            "store_id": wide.index.get_level_values(0),
            "product_id": wide.index.get_level_values(1),
            "scale": scale,
            "class": [syntetos_boylan(row) for row in values],
        }
    )


def _scores(points: pd.DataFrame, actual: str, models: list[str]) -> dict[str, dict[str, float]]:
    """Per model: pooled MASE, MAE and bias over ``points`` (a row per series and origin, with its scale)."""
    scales = float(points["scale"].sum())
    total = float(points[actual].sum())
    out = {}
    for model in models:
        error = float((points[model] - points[actual]).abs().sum())
        out[model] = {
            "mase": error / scales if scales > 0 else float("nan"),
            "mae": error / len(points),
            "bias": float(points[model].sum()) / total if total > 0 else float("nan"),
        }
    return out


def _comparison(points: pd.DataFrame, actual: str, models: list[str]) -> dict[str, Any]:
    scores = _scores(points, actual, [*models, ORACLE])
    best_sf = min(STATSFORECAST_MODELS, key=lambda m: scores[m]["mase"])
    project, naive = scores[PROJECT], scores["SeasonalNaive"]
    return {
        "mase_vs_seasonal_naive": project["mae"] / naive["mae"] if naive["mae"] > 0 else float("nan"),
        "ratio_to_best_statsforecast": project["mase"] / scores[best_sf]["mase"],
        "best_statsforecast": best_sf,
        "best_model": min(models, key=lambda m: scores[m]["mase"]),
        "series": int(points[["store_id", "product_id"]].drop_duplicates().shape[0]),
        "models": scores,
    }


def evaluate(points: pd.DataFrame) -> dict[str, Any]:
    """The figures (see the module) of ``points``: a row per series and origin with the forecasts of every
    model, the actuals (demand, sales), the series' scale and class."""
    models = [PROJECT, *STATSFORECAST_MODELS]
    overall = _comparison(points, "demand", models)
    by_class = {}
    for name in CLASSES:
        part = points[points["class"] == name]
        if len(part):
            figures = _comparison(part, "demand", models)
            by_class[name] = {
                k: figures[k] for k in ("mase_vs_seasonal_naive", "ratio_to_best_statsforecast", "series", "best_model")
            }
            by_class[name]["mase"] = {m: figures["models"][m]["mase"] for m in [*models, ORACLE]}
    sales = _comparison(points, "sales", models)
    return {
        "mase_vs_seasonal_naive": overall["mase_vs_seasonal_naive"],
        "ratio_to_best_statsforecast": overall["ratio_to_best_statsforecast"],
        "best_statsforecast": overall["best_statsforecast"],
        "best_model": overall["best_model"],
        "mase": {m: overall["models"][m]["mase"] for m in [*models, ORACLE]},
        "bias": {m: overall["models"][m]["bias"] for m in [*models, ORACLE]},
        "by_class": by_class,
        "unclassified_series": int(
            points.loc[points["class"].isna(), ["store_id", "product_id"]].drop_duplicates().shape[0]
        ),
        "vs_sales": {
            "mase_vs_seasonal_naive": sales["mase_vs_seasonal_naive"],
            "ratio_to_best_statsforecast": sales["ratio_to_best_statsforecast"],
            "mase": {m: sales["models"][m]["mase"] for m in [*models, ORACLE]},
            "bias": {m: sales["models"][m]["bias"] for m in [*models, ORACLE]},
        },
    }


def oracle_means(catalog: Catalog, origins: list[date]) -> pd.DataFrame:
    """The demand model's expected demand of each pair on each origin (``DemandModel.expected_day_mean``)."""
    n, p = catalog.shape
    model = DemandModel(catalog, 0, n)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "store_id": np.repeat(catalog.stores["store_id"].to_numpy(), p),
                    "product_id": np.tile(catalog.products["product_id"].to_numpy(), n),
                    "day": origin.isoformat(),
                    ORACLE: model.expected_day_mean(origin).reshape(-1),
                }
            )
            for origin in origins
        ],
        ignore_index=True,
    )


def _forecast_points(
    catalog: Catalog, history: History, origins: list[date], days: int, project: pd.DataFrame, others: pd.DataFrame
) -> pd.DataFrame:
    """One row per pair and origin: every model's forecast, the oracle's mean, the actuals and the pair's
    seasonal naive scale."""
    keys = ["store_id", "product_id", "day"]
    return (
        project.rename(columns={"forecast": PROJECT})
        .merge(others, on=keys, how="inner", validate="one_to_one")
        .merge(oracle_means(catalog, origins), on=keys, how="left", validate="one_to_one")
        .merge(history.actuals, on=keys, how="left", validate="one_to_one")
        .merge(seasonal_naive_scales(history, FIRST_ORIGIN, days), on=["store_id", "product_id"], how="left")
    )


def _targets_met(figures: dict[str, Any], invalid: pd.Series) -> bool:
    """The project's forecast within both targets, and a number of units at every point."""
    return bool(
        figures["mase_vs_seasonal_naive"] <= TARGETS["mase_vs_seasonal_naive"]
        and figures["ratio_to_best_statsforecast"] <= TARGETS["ratio_to_best_statsforecast"]
        and not invalid.any()
    )


def run(
    stores: int,
    products: int,
    days: int,
    horizon: int,
    seed: int,
    progress: Progress | None = None,
    refit_ets: bool = False,
) -> dict[str, Any]:
    """The whole benchmark: simulate, forecast with every model from each origin, score."""
    started = time.perf_counter()
    catalog = build_catalog(stores, products, seed)
    first_day = FIRST_ORIGIN - days * DAY
    history = simulate(catalog, first_day, days + horizon, progress)
    simulated = time.perf_counter()
    origins = [FIRST_ORIGIN + k * DAY for k in range(horizon)]
    project = project_forecasts(history, origins, days, progress)
    projected = time.perf_counter()
    if progress is not None:
        progress("statsforecast (cross-validation)", 0, 1)
    others = statsforecast_forecasts(history, origins, days, min(2, os.cpu_count() or 1), refit_ets)
    if progress is not None:
        progress("statsforecast (cross-validation)", 1, 1)
    fitted = time.perf_counter()
    points = _forecast_points(catalog, history, origins, days, project, others)
    if len(points) != stores * products * horizon:
        raise RuntimeError(f"{len(points)} forecast points, expected {stores * products * horizon}")
    # a forecast that is not a number of units (NaN, infinite, negative) is scored as 0 and fails the targets
    invalid = ~np.isfinite(points[PROJECT]) | (points[PROJECT] < 0)
    points.loc[invalid, PROJECT] = 0.0
    figures = evaluate(points)
    finished = time.perf_counter()
    methods = project["method"].value_counts().to_dict()
    return {
        "stores": stores,
        "products": products,
        "history_days": days,
        "origins": horizon,
        "first_origin": FIRST_ORIGIN.isoformat(),
        "seed": seed,
        "points": len(points),
        "mase_aggregation": "pooled: sum of absolute errors / sum of scales (seasonal naive lag 7, in-sample)",
        "actuals": "demand (sold + lost); vs_sales: the same against sales",
        "autoets_refit": "every origin" if refit_ets else "first origin (states updated after)",
        **figures,
        "project_methods": {str(k): int(v) for k, v in methods.items()},
        "invalid_project_forecasts": int(invalid.sum()),
        "lost_sales_share": round(1.0 - float(history.actuals["sales"].sum() / history.actuals["demand"].sum()), 4),
        "censored_pair_days_share": round(float((history.daily["empty_hours"] > 0).mean()), 4),
        "targets": TARGETS,
        "targets_met": _targets_met(figures, invalid),
        "seconds": {
            "simulation": round(simulated - started, 2),
            "project": round(projected - simulated, 2),
            "statsforecast": round(fitted - projected, 2),
            "total": round(finished - started, 2),
        },
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def print_table(result: dict[str, Any]) -> None:
    """The figures as rich tables on stdout: MASE by model and class, then the project's ratios."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    models = [PROJECT, *STATSFORECAST_MODELS, ORACLE]
    headers = {"SeasonalNaive": "SNaive", "CrostonSBA": "SBA"}
    console.print(
        f"forecast benchmark: {result['stores']} stores x {result['products']} products, "
        f"{result['history_days']} days of history, {result['origins']} one-day-ahead origins from "
        f"{result['first_origin']} (seed {result['seed']}); pooled MASE against demand (sold + lost); "
        f"oracle: the demand model's expected demand (a reference, not a competitor)"
    )
    rows = [("all", result["stores"] * result["products"], result["mase"])]
    rows += [(name, f["series"], f["mase"]) for name, f in result["by_class"].items()]
    mase = Table(title="MASE", box=box.SIMPLE_HEAD)
    for name in ("series", "n", *(headers.get(m, m) for m in models)):
        mase.add_column(name, justify="left" if name == "series" else "right")
    for name, count, figures in rows:
        mase.add_row(name, str(count), *(f"{figures[m]:.3f}" for m in models))
    mase.add_row("vs sales", "", *(f"{result['vs_sales']['mase'][m]:.3f}" for m in models))
    mase.add_row("bias", "", *(f"{result['bias'][m]:.3f}" for m in models))
    console.print(mase)
    targets = result["targets"]
    ratios = Table(title="the project against statsforecast", box=box.SIMPLE_HEAD)
    ratios.add_column("series")
    ratios.add_column(f"project / SNaive (<= {targets['mase_vs_seasonal_naive']})", justify="right")
    ratios.add_column(f"project / best sf (<= {targets['ratio_to_best_statsforecast']})", justify="right")
    ratios.add_column("best")
    ratios.add_row(
        "all",
        f"{result['mase_vs_seasonal_naive']:.3f}",
        f"{result['ratio_to_best_statsforecast']:.3f}",
        str(result["best_model"]),
    )
    for name, figures in result["by_class"].items():
        ratios.add_row(
            name,
            f"{figures['mase_vs_seasonal_naive']:.3f}",
            f"{figures['ratio_to_best_statsforecast']:.3f}",
            figures["best_model"],
        )
    console.print(ratios)
    verdict = "met" if result["targets_met"] else "NOT met"
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items())
    console.print(
        f"best statsforecast model: {result['best_statsforecast']}; targets {verdict}; invalid project forecasts: "
        f"{result['invalid_project_forecasts']}; {seconds}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="python -m bench.forecast", description=__doc__.split("\n\n")[0] + DURATION)
    parser.add_argument("--stores", type=positive_int, default=30)
    parser.add_argument("--products", type=positive_int, default=50)
    parser.add_argument("--days", type=positive_int, default=56, help="history days each forecast learns from")
    parser.add_argument("--horizon", type=positive_int, default=7, help="forecast origins (one-day-ahead each)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--refit-ets", action="store_true", help="fit AutoETS again at every origin (several times slower)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    args = parser.parse_args(argv)
    missing = [name for name in ("statsforecast", "duckdb") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"error: {' and '.join(missing)} not installed: pip install -e '.[bench,local]'", file=sys.stderr)
        return 1
    if args.days < 15:
        parser.error("--days must be at least 15 (two weeks for the seasonal naive's scale)")
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    # the progress goes to stderr: stdout holds the table and the JSON line
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        tasks: dict[str, Any] = {}

        def progress(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done, total=total)

        result = _rounded(run(args.stores, args.products, args.days, args.horizon, args.seed, progress, args.refit_ets))
    print_table(result)
    if args.json:
        emit_json(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main))
