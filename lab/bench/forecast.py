"""`shelfwatch bench forecast`: Shelfwatch against Prophet alone, the 28-day moving average and seasonal
naive, on the same rolling origins, in the same run.

For each outer window the forecaster sees only the history up to the window's cutoff (it runs its own
inner backtest on that history to choose models), then forecasts the next 28 days, which are scored
with M5's RMSSE and the coverage of the 80 % interval. Censored (stock-out) days are not scored: their
sales are not demand.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from core.domain import CLOSE_HOUR
from forecasting.classify import series_profile
from forecasting.distribution import inside_interval, moment_dispersion, nb_cdf, sum_variance, window_sums
from forecasting.engine import KEY_SEP, EngineSettings, forecast, series_key
from forecasting.metrics import naive_scale, rmsse

BASELINES = ("prophet_alone", "autoets", "ma28", "adida", "simple_combination", "seasonal_naive")
SIMPLE_COMBINATION = (
    "ma28",
    "adida",
    "imapa",
)  # the plain mean that matched the best single model on real grocery data
SLOW_BASELINES = ("prophet_alone", "autoets")  # run on a sample of series when the set is large


@dataclass
class MethodScore:
    method: str
    series: int
    mean_rmsse: float
    coverage80: float
    seconds: float
    coverage80_7day: float = float("nan")

    @property
    def series_per_second(self) -> float:
        return self.series / self.seconds if self.seconds else float("nan")


def load_online_retail(path) -> pd.DataFrame:
    """The shared real file (item, ds, y; a missing day is no sales) as one store's long frame."""
    raw = pd.read_csv(path)
    return pd.DataFrame(
        {
            "store_id": "online",
            "sku": raw["item"].astype(str),
            "date": pd.to_datetime(raw["ds"]),
            "units": raw["y"].astype(float),
        }
    )


def load_world_sales(world_dir, stockout_from_hour: float = CLOSE_HOUR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A simulated world's daily sales with its stock-out days flagged (the shelf emptied before closing
    time), and its promotion calendar."""
    world_dir = Path(world_dir)
    sales = pd.read_csv(
        world_dir / "sales" / "sales_daily.csv", dtype={"store_id": str, "sku": str}, parse_dates=["date"]
    )
    out = pd.read_csv(world_dir / "stockout_days.csv", dtype={"store_id": str, "sku": str}, parse_dates=["date"])
    out = out[out["empty_from_hour"] < stockout_from_hour].assign(stockout=1)[["store_id", "sku", "date", "stockout"]]
    sales = sales.merge(out, on=["store_id", "sku", "date"], how="left").fillna({"stockout": 0})
    promotions = pd.read_csv(
        world_dir / "promotions.csv",
        dtype={"store_id": str, "sku": str},
        keep_default_na=False,
        parse_dates=["start_date", "end_date"],
    )
    return sales, promotions


def load_world_prices(world_dir) -> pd.DataFrame | None:
    """A simulated world's shelf prices (store_id, sku, date, price), if it has them."""
    path = Path(world_dir) / "prices.csv"
    if not path.exists():
        return None
    return pd.read_csv(path, dtype={"store_id": str, "sku": str}, keep_default_na=False, parse_dates=["date"])


def load_expected_demand(world_dir, last_days: int) -> pd.DataFrame | None:
    """The simulator's true mean demand over the last days (store_id, sku, date, mean), if recorded."""
    path = Path(world_dir) / "expected_demand.npz"
    if not path.exists():
        return None
    z = np.load(path, allow_pickle=True)
    mean = z["mean"][-last_days:]
    dates = pd.date_range(pd.Timestamp(str(z["start"])), periods=len(z["mean"]), freq="D")[-last_days:]
    d, s, k = np.meshgrid(np.arange(len(dates)), np.arange(len(z["stores"])), np.arange(len(z["skus"])), indexing="ij")
    return pd.DataFrame(
        {
            "store_id": z["stores"][s.ravel()].astype(str),
            "sku": z["skus"][k.ravel()].astype(str),
            "date": dates[d.ravel()],
            "mean": mean.ravel().astype(float),
        }
    )


def complete(sales: pd.DataFrame) -> pd.DataFrame:
    """Every series day by day from its first to the frame's last date (missing = 0, not censored)."""
    end = sales["date"].max()
    parts = []
    for (store_id, sku), g in sales.groupby(["store_id", "sku"], sort=True):
        d = g.groupby("date").agg(units=("units", "sum"), stockout=("stockout", "max"))
        d = d.reindex(pd.date_range(d.index.min(), end, freq="D")).fillna({"units": 0.0, "stockout": 0})
        parts.append(d.rename_axis("date").reset_index().assign(store_id=store_id, sku=sku))
    return pd.concat(parts, ignore_index=True)


def score(actual: pd.DataFrame, fc: pd.DataFrame, history: pd.DataFrame, method: str) -> pd.DataFrame:
    """RMSSE and 80 % coverage per series of one window; `fc` has store_id, sku, date, mean[, p10, p90]."""
    merged = actual.merge(fc, on=["store_id", "sku", "date"], how="inner")
    hist = {k: g["units"].to_numpy() for k, g in history.groupby(["store_id", "sku"])}
    rows = []
    for key, g in merged.groupby(["store_id", "sku"]):
        ok = g["stockout"].to_numpy() == 0
        y = g["units"].to_numpy()[ok]
        value = rmsse(y, g["mean"].to_numpy()[ok], hist[key])
        inside = ((y >= g["p10"].to_numpy()[ok]) & (y <= g["p90"].to_numpy()[ok])) if "p10" in g else np.array([])
        rows.append(
            {
                "store_id": key[0],
                "sku": key[1],
                "method": method,
                "rmsse": value,
                "covered": inside.sum() if len(inside) else np.nan,
                "days": ok.sum(),
            }
        )
    return pd.DataFrame(rows)


def statsforecast_baselines(history: pd.DataFrame, horizon: int, methods) -> pd.DataFrame:
    """The statsforecast baselines among `methods` on the sales as recorded (baselines know nothing of
    stock-outs or promotions): store_id, sku, date and per method its mean and, where the method has
    one, its 80 % interval (`<method>-lo-80`, `<method>-hi-80`; conformal for the moving average and
    ADIDA). The simple combination is the plain mean of MA28, ADIDA and IMAPA (no interval)."""
    from statsforecast import StatsForecast
    from statsforecast.models import ADIDA, IMAPA, AutoETS, SeasonalNaive, WindowAverage
    from statsforecast.utils import ConformalIntervals

    conformal = ConformalIntervals(h=horizon, n_windows=2)
    wanted = set(methods) | (set(SIMPLE_COMBINATION) if "simple_combination" in methods else set())
    models = [
        m
        for m in [
            WindowAverage(window_size=28, alias="ma28", prediction_intervals=conformal),
            ADIDA(alias="adida", prediction_intervals=conformal),
            IMAPA(alias="imapa", prediction_intervals=conformal),
            SeasonalNaive(season_length=7, alias="seasonal_naive"),
            AutoETS(season_length=7, alias="autoets"),
        ]
        if m.alias in wanted
    ]
    frame = history.assign(
        unique_id=[series_key(a, b) for a, b in zip(history["store_id"], history["sku"], strict=True)]
    )
    frame = frame.rename(columns={"date": "ds", "units": "y"})[["unique_id", "ds", "y"]]
    out = (
        StatsForecast(models=models, freq="D", n_jobs=1)
        .forecast(df=frame, h=horizon, level=[80])
        .reset_index(drop=False)
    )
    if "simple_combination" in methods:
        out["simple_combination"] = out[list(SIMPLE_COMBINATION)].mean(axis=1)
    keys = out["unique_id"].str.split(KEY_SEP, n=1, expand=True)
    return out.assign(store_id=keys[0], sku=keys[1], date=out["ds"])


def baseline_frame(fc: pd.DataFrame, method: str) -> pd.DataFrame:
    """One baseline's forecast as store_id, sku, date, mean[, p10, p90], floored at 0 like ours."""
    out = fc.assign(mean=fc[method].clip(lower=0))
    columns = ["store_id", "sku", "date", "mean"]
    if f"{method}-lo-80" in fc:
        out = out.assign(p10=fc[f"{method}-lo-80"].clip(lower=0), p90=fc[f"{method}-hi-80"])
        columns += ["p10", "p90"]
    return out[columns]


def prophet_alone(history: pd.DataFrame, horizon: int, workers: int) -> pd.DataFrame:
    """Prophet with its default settings (weekly + yearly as it decides, 80 % interval), floored at 0."""
    from lab.prophet_alone import forecast_frame

    return forecast_frame(history[["store_id", "sku", "date", "units"]], horizon=horizon, workers=workers)


@dataclass
class ForecastOf:
    """A method's forecast of one series as `interval_scores` reads it."""

    model: str
    mean: np.ndarray
    dispersion: float
    level_dispersion: float = 0.0


def shelfwatch_decisions(result) -> dict:
    """The engine's forecast per series with the dispersion it stored: what alerts read."""
    m = result.models
    level = m["level_dispersion"] if "level_dispersion" in m else pd.Series(0.0, index=m.index)
    dispersion = {
        series_key(a, b): (d, v) for a, b, d, v in zip(m["store_id"], m["sku"], m["dispersion"], level, strict=True)
    }
    fc = result.forecast.sort_values(["store_id", "sku", "date"])
    out = {}
    for (store_id, sku), g in fc.groupby(["store_id", "sku"], sort=False):
        uid = series_key(store_id, sku)
        d, v = dispersion.get(uid, (0.0, 0.0))
        out[uid] = ForecastOf(str(g["model"].iloc[0]), g["mean"].to_numpy(float), float(d), float(v))
    return out


def history_classes(history: pd.DataFrame) -> pd.DataFrame:
    """store_id, sku, demand_class of each series from the history before a cutoff."""
    rows = [
        {"store_id": k[0], "sku": k[1], "demand_class": series_profile(g["units"].to_numpy())["demand_class"]}
        for k, g in history.groupby(["store_id", "sku"])
    ]
    return pd.DataFrame(rows)


def run_bench(
    sales: pd.DataFrame,
    promotions=None,
    windows: int = 3,
    horizon: int = 28,
    workers: int = 0,
    prophet_sample: int | None = None,
    methods=("shelfwatch", *BASELINES),
    log=print,
    expected: pd.DataFrame | None = None,
    settings: EngineSettings | None = None,
    prices: pd.DataFrame | None = None,
) -> tuple[list[MethodScore], pd.DataFrame]:
    """Outer rolling-origin backtest of every method; `prophet_sample` limits the slow baselines
    (Prophet alone, AutoETS; and the Shelfwatch figure compared with them) to a random sample of series
    when the set is large. `expected` (a simulated world's true mean demand) adds the "perfect
    forecaster" as a lower bound. The detail has one row per method, window and series, with its
    demand class (from the history before the window). With `prices`, "shelfwatch_without_prices"
    (when among `methods`) measures what they are worth."""
    if expected is not None:
        methods = (*methods, "true_mean_demand")
    if "shelfwatch" in methods:
        methods = (*methods, *HINDSIGHT)
    settings = replace(settings or EngineSettings(), horizon=horizon, workers=workers)
    sales = complete(sales.assign(stockout=sales.get("stockout", 0)))
    end = sales["date"].max()
    keys = sales[["store_id", "sku"]].drop_duplicates()
    sample = None
    if prophet_sample and len(keys) > prophet_sample:
        sample = keys.sample(n=prophet_sample, random_state=0)
    scores, seconds = [], {m: 0.0 for m in methods}
    ours = None  # Shelfwatch's forecast of the window, for the hindsight references
    fast = [m for m in methods if m in BASELINES and m not in SLOW_BASELINES]
    for w in range(windows, 0, -1):
        cutoff = end - pd.Timedelta(days=horizon * w)
        history = sales[sales["date"] <= cutoff]
        history = history[history.groupby(["store_id", "sku"])["units"].transform("sum") > 0]
        actual = sales[(sales["date"] > cutoff) & (sales["date"] <= cutoff + pd.Timedelta(days=horizon))]
        classes = history_classes(history)
        sampled = history if sample is None else history.merge(sample, on=["store_id", "sku"])
        if fast:  # one statsforecast call fits every fast baseline; its time is shared out evenly
            t0 = time.perf_counter()
            baselines = statsforecast_baselines(history, horizon, fast)
            for m in fast:
                seconds[m] += (time.perf_counter() - t0) / len(fast)
        for method in methods:
            t0 = time.perf_counter()
            if method in ("shelfwatch", "shelfwatch_without_prices"):
                result = forecast(
                    history, settings, promotions=promotions, prices=prices if method == "shelfwatch" else None
                )
                decisions = shelfwatch_decisions(result)
                s = interval_scores(truth_arrays(actual, history), decisions).drop(columns="model")
                if method == "shelfwatch":
                    ours = result.forecast
                    independent = {u: replace(d, level_dispersion=0.0) for u, d in decisions.items()}
                    scores.append(
                        interval_scores(truth_arrays(actual, history), independent)
                        .drop(columns="model")
                        .assign(method=DAYS_INDEPENDENT, cutoff=cutoff)
                        .merge(classes, on=["store_id", "sku"], how="left")
                    )
            else:
                if method in HINDSIGHT:
                    fc = hindsight_level(actual, ours, flat=method == "hindsight_flat_level")
                elif method == "true_mean_demand":
                    fc = expected[
                        (expected["date"] > cutoff) & (expected["date"] <= cutoff + pd.Timedelta(days=horizon))
                    ]
                elif method == "prophet_alone":
                    fc = prophet_alone(sampled, horizon, workers)
                elif method == "autoets":
                    fc = baseline_frame(statsforecast_baselines(sampled, horizon, ["autoets"]), "autoets")
                else:
                    fc = baseline_frame(baselines, method)
                s = score(actual, fc, history, method)
            seconds[method] += time.perf_counter() - t0
            s = s.assign(method=method, cutoff=cutoff).merge(classes, on=["store_id", "sku"], how="left")
            scores.append(s)
            log(
                f"window ending {cutoff + pd.Timedelta(days=horizon):%Y-%m-%d}  {method:<18} mean RMSSE "
                f"{s['rmsse'].mean():.3f}  {seconds[method]:.1f}s"
            )
    detail = pd.concat(scores, ignore_index=True)
    out = []
    for method in [*methods, *([DAYS_INDEPENDENT] if "shelfwatch" in methods else [])]:
        d = detail[detail["method"] == method]
        n = len(sample) if (method in SLOW_BASELINES and sample is not None) else len(keys)
        out.append(
            MethodScore(
                method,
                n,
                float(d["rmsse"].mean()),
                coverage(d, "covered", "days"),
                seconds.get(method, float("nan")) / windows,
                coverage(d, "covered7", "weeks"),
            )
        )
    if sample is not None and any(m in methods for m in SLOW_BASELINES):
        d = detail[detail["method"] == "shelfwatch"].merge(sample, on=["store_id", "sku"])
        out.append(
            MethodScore(
                "shelfwatch (slow baselines' sample)",
                len(sample),
                float(d["rmsse"].mean()),
                coverage(d, "covered", "days"),
                float("nan"),
                coverage(d, "covered7", "weeks"),
            )
        )
    return out, detail


# References that know each window's true level in hindsight (its mean sales over the days scored):
# not forecasts, but what a perfect 28-day level is worth on the data, flat or with Shelfwatch's shape.
# On spiky data where they sit close to the forecasts, the rest of the error is day-to-day noise.
HINDSIGHT = ("hindsight_flat_level", "shelfwatch_at_hindsight_level")
# Shelfwatch's forecast with its days taken as independent (no shared level error): the lead-time
# distribution before issue 17, scored on the same forecasts.
DAYS_INDEPENDENT = "shelfwatch_days_independent"


def hindsight_level(actual: pd.DataFrame, ours: pd.DataFrame, flat: bool) -> pd.DataFrame:
    """store_id, sku, date, mean: each series' true mean over the window's uncensored days, flat
    (`flat`) or as Shelfwatch's forecast rescaled so its mean over those days is that (flat where it
    forecast nothing)."""
    scored = actual[actual["stockout"] == 0]
    level = scored.groupby(["store_id", "sku"])["units"].mean().rename("level").reset_index()
    fc = ours[["store_id", "sku", "date", "mean"]].merge(level, on=["store_id", "sku"], how="inner")
    if flat:
        return fc.assign(mean=fc["level"])[["store_id", "sku", "date", "mean"]]
    fc = fc.merge(actual[["store_id", "sku", "date", "stockout"]], on=["store_id", "sku", "date"], how="left")
    ours_level = fc["mean"].where(fc["stockout"] == 0).groupby([fc["store_id"], fc["sku"]]).transform("mean")
    shape = fc["mean"] / ours_level  # over the scored days, as the level is
    return fc.assign(mean=np.where(np.isfinite(shape), shape * fc["level"], fc["level"]))[
        ["store_id", "sku", "date", "mean"]
    ]


def coverage(detail: pd.DataFrame, covered: str, days: str) -> float:
    """Share of scored days (or weeks) inside the 80 % interval; NaN for a method without one."""
    if covered not in detail or not detail[covered].notna().any():
        return float("nan")
    d = detail[detail[covered].notna()]
    return float(d[covered].sum() / d[days].sum()) if d[days].sum() else float("nan")


def lead_time_table(detail: pd.DataFrame, method: str = "shelfwatch") -> pd.DataFrame:
    """80 % interval coverage of demand summed over 1, 2, 3, 5, 7 days (columns), per demand class
    and for all series (rows), and the PIT histogram of all series (rows "PIT bin b": the share of
    sums whose PIT falls in bin b; 1/PIT_BINS each when calibrated)."""
    d = detail[detail["method"] == method]
    if d.empty or "sums_h1" not in d:
        return pd.DataFrame()
    rows = {}
    for name, g in [*d.groupby("demand_class"), ("all", d)]:
        rows[name] = {
            f"{h} d": g[f"covered_h{h}"].sum() / g[f"sums_h{h}"].sum() if g[f"sums_h{h}"].sum() else np.nan
            for h in LEAD_DAYS
        }
    for b in range(PIT_BINS):
        rows[f"PIT bin {b + 1}/{PIT_BINS}"] = {
            f"{h} d": d[f"pit_h{h}_{b}"].sum() / max(d[f"sums_h{h}"].sum(), 1) for h in LEAD_DAYS
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def class_table(detail: pd.DataFrame) -> pd.DataFrame:
    """Mean RMSSE per demand class (rows) and method (columns), over the series every method scored."""
    return detail.pivot_table(index="demand_class", columns="method", values="rmsse", aggfunc="mean")


def room_captured(scores: list[MethodScore], ours: str = "shelfwatch") -> tuple[str, float] | None:
    """(best baseline, share of the room between it and the perfect forecaster that `ours` captures)."""
    by = {s.method: s for s in scores}
    if "true_mean_demand" not in by:
        return None
    best = best_baseline(scores)
    room = best.mean_rmsse - by["true_mean_demand"].mean_rmsse
    return best.method, (best.mean_rmsse - by[ours].mean_rmsse) / room if room > 0 else float("nan")


def best_baseline(scores: list[MethodScore]) -> MethodScore:
    """The best baseline measured on every series (a baseline run on a sample is compared apart)."""
    by = {s.method: s for s in scores}
    return min(
        (by[m] for m in BASELINES if m in by and by[m].series == by["shelfwatch"].series), key=lambda s: s.mean_rmsse
    )


def production_run(
    sales: pd.DataFrame, promotions, workers: int = 0, horizon: int = 28, prices=None
) -> tuple[float, int, pd.DataFrame]:
    """Time the real thing: every series, full history, `horizon` days with quantiles."""
    t0 = time.perf_counter()
    result = forecast(
        sales, replace(EngineSettings(horizon=horizon), workers=workers), promotions=promotions, prices=prices
    )
    return time.perf_counter() - t0, len(result.models), result.models


def target_lines(
    name: str,
    scores: list[MethodScore],
    margin: float,
    detail: pd.DataFrame | None = None,
    capture: float | None = None,
) -> list[tuple[str, bool]]:
    """The issue's targets for one data set: RMSSE at most (1 - margin) x the best baseline, 80 %
    coverage of days and of 7-day sums within 0.75-0.85; with a perfect forecaster, the share of the
    room captured (`capture`) and no demand class worse than the best baseline."""
    by = {s.method: s for s in scores}
    ours = by["shelfwatch"]
    best = best_baseline(scores)
    ratio = ours.mean_rmsse / best.mean_rmsse
    lines = [
        (
            f"{name}: Shelfwatch RMSSE {ours.mean_rmsse:.4f} vs best baseline {best.method} {best.mean_rmsse:.4f} "
            f"(ratio {ratio:.3f}; target <= {1 - margin:.2f})",
            ratio <= 1 - margin + 1e-12,
        ),
        (
            f"{name}: 80 % interval coverage of daily demand {ours.coverage80:.3f} (target 0.75-0.85)",
            0.75 <= ours.coverage80 <= 0.85,
        ),
        (
            f"{name}: 80 % interval coverage of 7-day sums {ours.coverage80_7day:.3f} (target 0.75-0.85)",
            0.75 <= ours.coverage80_7day <= 0.85,
        ),
    ]
    sample = by.get("shelfwatch (slow baselines' sample)")
    for slow in SLOW_BASELINES:
        if slow in by and sample is not None:
            lines.append(
                (
                    f"{name}: on the slow baselines' sample of {sample.series} series, Shelfwatch "
                    f"{sample.mean_rmsse:.4f} vs {slow} {by[slow].mean_rmsse:.4f}",
                    sample.mean_rmsse <= by[slow].mean_rmsse,
                )
            )
    captured = room_captured(scores)
    if captured is not None and capture is not None:
        lines.append(
            (
                f"{name}: {captured[1]:.0%} of the room between {captured[0]} and the perfect forecaster captured "
                f"(target >= {capture:.0%})",
                captured[1] >= capture,
            )
        )
    if detail is not None and captured is not None:
        table = class_table(detail)
        worse = [c for c in table.index if table.loc[c, "shelfwatch"] > table.loc[c, best.method] + 1e-12]
        lines.append(
            (f"{name}: no demand class worse than {best.method} (worse: {', '.join(worse) or 'none'})", not worse)
        )
    return lines


def forecast_one_shard(args: tuple) -> tuple[int, int, float]:
    """One Celery worker's share: shard i of n in its own process, one core (workers=1)."""
    sales, promotions, i, n, horizon = args
    t0 = time.perf_counter()
    result = forecast(sales, replace(EngineSettings(horizon=horizon), workers=1), promotions=promotions, shard=(i, n))
    return i, len(result.models), time.perf_counter() - t0


def shard_throughput(sales: pd.DataFrame, promotions, shard_counts=(1, 2, 4), horizon: int = 28) -> list[dict]:
    """Forecast every series split into n store shards, the shards running at once in n processes as
    n single-slot workers would; wall time and series/s per n, and the ratio to one shard."""
    from concurrent.futures import ProcessPoolExecutor

    out = []
    for n in shard_counts:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=n) as pool:
            parts = list(pool.map(forecast_one_shard, [(sales, promotions, i, n, horizon) for i in range(n)]))
        wall = time.perf_counter() - t0
        series = sum(p[1] for p in parts)
        out.append(
            {
                "shards": n,
                "series": series,
                "seconds": wall,
                "series_per_second": series / wall,
                "largest_shard": max(p[1] for p in parts),
                "shard_seconds": [round(p[2], 1) for p in parts],
            }
        )
    base = out[0]["series_per_second"]
    for row in out:
        row["speedup"] = row["series_per_second"] / base
    return out


def truth_arrays(actual: pd.DataFrame, history: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Per series key: units and censored flags of the scored days, and M5's scale from the history."""
    scale = {series_key(*k): naive_scale(g["units"].to_numpy()) for k, g in history.groupby(["store_id", "sku"])}
    out = {}
    for k, g in actual.sort_values("date").groupby(["store_id", "sku"]):
        uid = series_key(*k)
        if uid in scale:
            out[uid] = (g["units"].to_numpy(float), g["stockout"].to_numpy() > 0, scale[uid])
    return out


LEAD_DAYS = (1, 2, 3, 5, 7)  # lead times whose cumulative demand the bench checks
PIT_BINS = 5


def sum_scores(y, mean, censored, disp, level, h: int, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per series and h-day sum: inside the 80 % interval, scored (no censored day), and the mid PIT
    value (F(y-1) + F(y)) / 2 of the sum under the distribution the alerts use."""
    ys, ms = window_sums(y, h, step), window_sums(mean, h, step)
    qs = window_sums(mean**2, h, step)
    scored = window_sums(censored.astype(float), h, step) == 0
    d = moment_dispersion(ms, sum_variance(ms, qs, disp[:, None], level[:, None]))
    mid = (nb_cdf(np.floor(ys) - 1, ms, d) + nb_cdf(np.floor(ys), ms, d)) / 2
    return inside_interval(ys, ms, d) & scored, scored, mid


def interval_scores(truth: dict, decisions: dict) -> pd.DataFrame:
    """Per series: RMSSE of the mean, days inside the 80 % interval of daily demand, and the demand
    summed over h days inside the 80 % interval of its distribution (what alerts use: the days share
    the forecast's level error, `distribution.sum_variance`): non-overlapping weeks (`covered7`,
    `weeks`) and every h-day stretch of the horizon for h in LEAD_DAYS (`covered_h{h}`, `sums_h{h}`),
    with a histogram of their PIT values (`pit_h{h}_{b}`, PIT_BINS bins; flat when calibrated).
    Stretches with a censored day are not scored. `decisions`: key -> ForecastOf."""
    lead_columns = [f"{c}_h{h}" for h in LEAD_DAYS for c in ("covered", "sums")] + [
        f"pit_h{h}_{b}" for h in LEAD_DAYS for b in range(PIT_BINS)
    ]
    uids = [u for u in decisions if u in truth and len(truth[u][0]) == len(decisions[u].mean)]
    if not uids:
        return pd.DataFrame(
            columns=["store_id", "sku", "model", "rmsse", "covered", "days", "covered7", "weeks", *lead_columns]
        )
    y = np.stack([truth[u][0] for u in uids])
    censored = np.stack([truth[u][1] for u in uids])
    scale = np.array([truth[u][2] for u in uids])
    mean = np.maximum(np.stack([decisions[u].mean for u in uids]), 0.0)
    disp = np.array([decisions[u].dispersion for u in uids])
    level = np.array([getattr(decisions[u], "level_dispersion", 0.0) for u in uids])
    ok = ~censored
    sq = np.where(ok, (y - mean) ** 2, 0.0).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
    rmsse_values = np.where((scale > 0) & ok.any(axis=1), np.sqrt(sq / np.where(scale > 0, scale, 1.0)), np.nan)
    daily = inside_interval(y, mean, np.broadcast_to(disp[:, None], mean.shape)) & ok
    weekly, scored_w, _ = sum_scores(y, mean, censored, disp, level, 7, 7)
    keys = [u.split(KEY_SEP, 1) for u in uids]
    out = {
        "store_id": [k[0] for k in keys],
        "sku": [k[1] for k in keys],
        "model": [decisions[u].model for u in uids],
        "rmsse": rmsse_values,
        "covered": daily.sum(axis=1),
        "days": ok.sum(axis=1),
        "covered7": weekly.sum(axis=1),
        "weeks": scored_w.sum(axis=1),
    }
    for h in LEAD_DAYS:
        inside, scored, pit = sum_scores(y, mean, censored, disp, level, h, 1)
        out[f"covered_h{h}"], out[f"sums_h{h}"] = inside.sum(axis=1), scored.sum(axis=1)
        bins = np.minimum((pit * PIT_BINS).astype(int), PIT_BINS - 1)
        for b in range(PIT_BINS):
            out[f"pit_h{h}_{b}"] = ((bins == b) & scored).sum(axis=1)
    return pd.DataFrame(out)
