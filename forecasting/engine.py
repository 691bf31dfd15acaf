"""The Shelfwatch forecaster: per series, the mean of the candidates that backtest best, with
calibrated quantiles.

Per chunk (one store's series, at most CHUNK_SERIES of them: a pure function of that store's data, so
shards and process counts do not change any result):
1. complete every series day by day (missing days are zero sales), impute censored (stock-out) days and
   promotion days from same-weekday history, and learn each series' promotion lift; a thin series'
   weekday profile borrows the store's pooled weekly shape;
2. classify demand (ADI/CV², history, volume);
3. backtest over rolling origins a set of fast statsforecast models (plain and on weekday-adjusted
   history), a LightGBM model learnt across the chunk's series, and Prophet where the series is long
   and busy enough for it to have a chance;
4. combine (forecasting.combine): rank candidates by their backtest RMSSE shrunk toward their pooled
   score in the series' demand class, and average the best few (censored days not scored);
5. re-apply weekday profile and promotion lift, and turn the mean into a negative-binomial
   distribution per day whose dispersion comes from the combination's own backtest errors.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeAlias

import numpy as np
import pandas as pd

from forecasting.censoring import impute_masked
from forecasting.classify import series_profile
from forecasting.combine import WindowResult, decide, decision_members, level_shares, pooled_scores
from forecasting.distribution import nb_dispersion, nb_quantiles
from forecasting.global_model import GLOBAL_MODEL, fit_global, predict_global
from forecasting.metrics import naive_scale
from forecasting.parallel import map_in_processes

if TYPE_CHECKING:  # imported where the models are made: the engine's import stays light
    from mlforecast import MLForecast

KEY_SEP = "|"

# sku -> [(store_id or "" for every store, first day, last day)] as epoch days
PromotionIndex: TypeAlias = dict[str, list[tuple[str, int, int]]]
# sku -> [(store_id or "" for every store, first day as epoch day, price)]
PriceIndex: TypeAlias = dict[str, list[tuple[str, int, float]]]
# a chunk of sales with its promotions, prices and the settings: forecast_chunk's argument
ChunkTask: TypeAlias = tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None, "EngineSettings"]

MODEL_COLUMNS = [
    "store_id",
    "sku",
    "model",
    "backtest_rmsse",
    "backtest_windows",
    "dispersion",
    "level_dispersion",
    "promotion_lift",
    "censored_days",
    "adi",
    "cv2",
    "demand_class",
    "history_days",
    "mean_units",
]


@dataclass(frozen=True)
class EngineSettings:
    """What the forecaster does; defaults are the documented production settings."""

    horizon: int = 28
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    windows: int = 3  # rolling-origin windows used to choose a model per series
    prophet_min_units_per_day: float = 40.0  # Prophet is tried only on series at least this busy ...
    prophet_min_history_days: int = 180  # ... and this long
    holiday_country: str | None = None  # e.g. "GB": public holidays for Prophet and the global model
    weekday_weeks: int = 12  # weeks of history behind a series' weekday profile
    workers: int = 0  # processes; 0 = all cores
    global_model: bool = True  # a LightGBM model across each chunk's series as one more candidate
    combination: str = (
        "shrink_top2_p6"  # forecasting.combine.parse_strategy: select, topK[w], class_topK, shrink_topK[_pN]
    )


@dataclass
class ForecastResult:
    forecast: pd.DataFrame  # store_id, sku, date, mean, one pNN column per quantile level, model
    models: pd.DataFrame  # per series: chosen model, backtest RMSSE, class, dispersion, lift
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["store_id", "sku", "problem"]))


class StatsforecastModel(Protocol):
    """A model of statsforecast.models, as the engine reads it."""

    alias: str


def fast_models(horizon: int) -> list[StatsforecastModel]:
    """Cheap candidates, evaluated on every series: each fits 10k series in seconds."""
    from statsforecast.models import (
        ADIDA,
        IMAPA,
        TSB,
        CrostonSBA,
        SeasonalExponentialSmoothingOptimized,
        SeasonalNaive,
        SeasonalWindowAverage,
        SimpleExponentialSmoothingOptimized,
        WindowAverage,
    )

    return [
        WindowAverage(window_size=28, alias="ma28"),
        WindowAverage(window_size=7, alias="ma7"),
        SeasonalNaive(season_length=7, alias="seasonal_naive"),
        SeasonalWindowAverage(season_length=7, window_size=4, alias="seasonal_ma4w"),
        SimpleExponentialSmoothingOptimized(alias="ses"),
        SeasonalExponentialSmoothingOptimized(season_length=7, alias="seasonal_es"),
        CrostonSBA(alias="croston_sba"),
        TSB(alpha_d=0.1, alpha_p=0.1, alias="tsb"),
        ADIDA(alias="adida"),
        IMAPA(alias="imapa"),
    ]


# Models that already follow the weekly cycle are not refit on weekday-adjusted history.
WEEKLY_MODELS = {"seasonal_naive", "seasonal_ma4w", "seasonal_es"}
ADJUSTED_SUFFIX = "+weekday"


# ------------------------------------------------------------------------------------------- preparation


def series_key(store_id: str, sku: str) -> str:
    return f"{store_id}{KEY_SEP}{sku}"


@dataclass
class SeriesData:
    """One series as arrays over consecutive days from its first sale record: the raw material that
    every backtest window slices (no pandas work per window)."""

    store_id: str
    sku: str
    start: pd.Timestamp
    units: np.ndarray  # per day, missing days = 0
    stockout: np.ndarray  # per day, censored
    promo: np.ndarray  # per day, `horizon` days longer than units: promotions are planned ahead
    price: np.ndarray | None = None  # shelf price per day, `horizon` days longer too; None: no prices known


def promotion_index(promotions: pd.DataFrame | None) -> PromotionIndex:
    """sku -> [(store_id or "" for every store, first day, last day)] as epoch days, looked up per series."""
    index: PromotionIndex = {}
    if promotions is None or promotions.empty:
        return index
    start = pd.to_datetime(promotions["start_date"]).to_numpy("datetime64[D]").astype(int)
    end = pd.to_datetime(promotions["end_date"]).to_numpy("datetime64[D]").astype(int)
    for store_id, sku, a, b in zip(promotions["store_id"].fillna(""), promotions["sku"], start, end, strict=True):
        index.setdefault(str(sku), []).append((str(store_id), int(a), int(b)))
    return index


def promo_flags(index: PromotionIndex, store_id: str, sku: str, first_day: int, n_days: int) -> np.ndarray:
    """True on the days (from epoch day `first_day`) a promotion runs for this store and SKU."""
    flag = np.zeros(n_days, dtype=bool)
    for store, a, b in index.get(sku, ()):
        if store in ("", store_id):
            flag[max(a - first_day, 0) : max(b - first_day + 1, 0)] = True
    return flag


def price_index(prices: pd.DataFrame | None) -> PriceIndex:
    """sku -> [(store_id or "" for every store, first day as epoch day, price)], looked up per series."""
    index: PriceIndex = {}
    if prices is None or prices.empty:
        return index
    days = pd.to_datetime(prices["date"]).to_numpy("datetime64[D]").astype(int)
    for store_id, sku, day, price in zip(
        prices["store_id"].fillna(""), prices["sku"], days, prices["price"].astype(float), strict=True
    ):
        index.setdefault(str(sku), []).append((str(store_id), int(day), float(price)))
    return index


def price_path(index: PriceIndex, store_id: str, sku: str, first_day: int, n_days: int) -> np.ndarray | None:
    """The shelf price on each of `n_days` days from epoch day `first_day`: each row's price from its
    date until a later row (a store's own row is applied after a chain-wide one of the same date);
    before the first row, the first price. None when no price is known for the series."""
    rows = sorted((day, store != "", price) for store, day, price in index.get(sku, ()) if store in ("", store_id))
    if not rows:
        return None
    path = np.full(n_days, rows[0][2])
    for day, _, price in rows:
        path[max(day - first_day, 0) :] = price
    return path


def series_data(
    store_id: str,
    sku: str,
    day: np.ndarray,
    units: np.ndarray,
    stockout: np.ndarray,
    horizon: int,
    promos: PromotionIndex,
    prices: PriceIndex | None = None,
) -> SeriesData:
    """Arrays of one series from its rows (`day` = epoch days, duplicates summed)."""
    first = int(day.min())
    n = int(day.max()) - first + 1
    per_day = np.bincount(day - first, weights=units, minlength=n)
    censored = np.zeros(n, dtype=bool)
    censored[day[stockout > 0] - first] = True
    start = pd.Timestamp(np.datetime64(first, "D"))
    return SeriesData(
        str(store_id),
        str(sku),
        start,
        per_day,
        censored,
        promo_flags(promos, str(store_id), str(sku), first, n + horizon),
        price_path(prices or {}, str(store_id), str(sku), first, n + horizon),
    )


PROFILE_PRIOR_UNITS = 10.0  # the prior profile counts as this many units sold on each weekday


def weekday_profile(units: np.ndarray, weekday: np.ndarray, weeks: int, prior: np.ndarray | None = None) -> np.ndarray:
    """Seven multiplicative factors (mean 1) from the last `weeks` weeks, shrunk toward `prior` (the
    store's pooled profile; flat when none) when the series is thin: a slow mover borrows its store's
    weekly shape, a busy series keeps its own, a Saturday-closed shop gets ~0 on Saturdays."""
    prior = np.ones(7) if prior is None else prior
    recent = slice(max(0, len(units) - 7 * weeks), len(units))
    u, wd = units[recent], weekday[recent]
    total = u.sum()
    if total <= 0:
        return prior.copy()
    counts = np.bincount(wd, minlength=7)
    sums = np.bincount(wd, weights=u, minlength=7)
    overall = total / len(u)
    factors = np.where(
        counts > 0, (sums + PROFILE_PRIOR_UNITS * prior) / (counts * overall + PROFILE_PRIOR_UNITS), prior
    )
    profile: np.ndarray = factors / factors[wd].mean()
    return profile


def pooled_weekday_profile(series: list[SeriesData], n_days: list[int], weeks: int) -> np.ndarray:
    """The weekly shape of a chunk's series together over their last `weeks` weeks before each one's
    cut (`n_days`): each series on its own scale (sales over its mean), so the shape is every SKU's,
    not only the best sellers'. Flat when nothing sold."""
    sums, counts = np.zeros(7), np.zeros(7)
    for d, n in zip(series, n_days, strict=True):
        lo = max(0, n - 7 * weeks)
        u = d.units[lo:n]
        ok = ~d.stockout[lo:n] & ~d.promo[lo:n]
        mean = u[ok].mean() if ok.any() else 0.0
        if mean <= 0:
            continue
        wd = (d.start.dayofweek + np.arange(lo, n)) % 7
        sums += np.bincount(wd[ok], weights=u[ok] / mean, minlength=7)
        counts += np.bincount(wd[ok], minlength=7)
    if counts.min() <= 0:
        return np.ones(7)
    factors = sums / counts
    return factors / factors.mean() if factors.mean() > 0 else np.ones(7)


@dataclass
class PreparedSeries:
    store_id: str
    sku: str
    dates: pd.DatetimeIndex
    observed: np.ndarray  # units as sold
    censored: np.ndarray  # stock-out days
    promo: np.ndarray  # promotion days
    baseline: np.ndarray  # censored and promotion days imputed: demand without promotions
    weekday: np.ndarray
    profile: np.ndarray  # 7 weekday factors
    lift: float  # demand on promotion days / baseline
    future_dates: pd.DatetimeIndex
    future_promo: np.ndarray
    price_ratio: np.ndarray | None = None  # price over its median of the last PRICE_REFERENCE_DAYS, history + horizon


def promotion_lift(observed: np.ndarray, baseline: np.ndarray, promo: np.ndarray, censored: np.ndarray) -> float:
    """Units sold on (uncensored) promotion days over the imputed baseline there, shrunk toward 1 by
    three days of baseline so that one noisy promotion of a slow mover does not set the lift."""
    days = promo & ~censored
    if not days.any():
        return 1.0
    base = baseline[days].sum()
    prior = 3 * max(baseline[~promo].mean() if (~promo).any() else 0.0, 0.1)
    return float((observed[days].sum() + prior) / (base + prior))


def prepare_series(
    data: SeriesData,
    horizon: int,
    weekday_weeks: int,
    n_days: int | None = None,
    prior_profile: np.ndarray | None = None,
) -> PreparedSeries:
    """The series' first `n_days` (default all) with baseline, weekday profile (shrunk toward
    `prior_profile`) and promotion lift computed from those days only, and the `horizon` days after them."""
    n = len(data.units) if n_days is None else n_days
    observed, censored, promo = data.units[:n], data.stockout[:n], data.promo[:n]
    dates = pd.date_range(data.start, periods=n + horizon, freq="D")
    weekday = (data.start.dayofweek + np.arange(n)) % 7
    # Baseline: censored days carry no information on demand; promotion days are explained by the lift.
    baseline = impute_masked(observed, censored | promo, weekday, at_least_observed=censored & ~promo)
    return PreparedSeries(
        data.store_id,
        data.sku,
        dates[:n],
        observed,
        censored,
        promo,
        baseline,
        weekday,
        weekday_profile(baseline, weekday, weekday_weeks, prior_profile),
        promotion_lift(observed, baseline, promo, censored),
        dates[n:],
        data.promo[n : n + horizon],
        relative_price(data.price, n, horizon),
    )


PRICE_REFERENCE_DAYS = 91


def relative_price(price: np.ndarray | None, n: int, horizon: int) -> np.ndarray | None:
    """Price over its median of the last PRICE_REFERENCE_DAYS days known at the cut (day n), for the
    history and the horizon: 0.8 is 20 % cheaper than usual, whatever the currency or the product."""
    if price is None:
        return None
    reference = float(np.median(price[max(0, n - PRICE_REFERENCE_DAYS) : n]))
    return price[: n + horizon] / reference if reference > 0 else None


def adjusted_history(s: PreparedSeries) -> np.ndarray:
    """Baseline divided by the weekday profile; days the shop barely trades are interpolated."""
    factor = s.profile[s.weekday]
    adj = np.where(factor >= 0.05, s.baseline / np.maximum(factor, 0.05), np.nan)
    history: np.ndarray = pd.Series(adj).interpolate(limit_direction="both").fillna(0.0).to_numpy()
    return history


def reject_reason(data: SeriesData) -> str | None:
    if len(data.units) < 2:
        return "a single day of history: at least two days are needed to forecast"
    if data.units.sum() <= 0:
        return "no sales in the whole history (all zero): nothing to forecast from"
    return None


# -------------------------------------------------------------------------------------------- backtest


def fast_forecasts(series: list[PreparedSeries], horizon: int) -> pd.DataFrame:
    """Every fast model, plain and on weekday-adjusted history, fitted on each series' whole history:
    index unique_id, ds; columns are model names (still in the models' own units)."""
    from statsforecast import StatsForecast

    models = fast_models(horizon)
    both = []
    for adjusted in (False, True):
        sf = StatsForecast(
            models=[m for m in models if not (adjusted and m.alias in WEEKLY_MODELS)], freq="D", n_jobs=1
        )
        fc = sf.forecast(df=statsforecast_frame(series, adjusted), h=horizon).set_index(["unique_id", "ds"])
        both.append(fc.add_suffix(ADJUSTED_SUFFIX) if adjusted else fc)
    return pd.concat(both, axis=1)


def statsforecast_frame(series: list[PreparedSeries], adjusted: bool) -> pd.DataFrame:
    """statsforecast's `unique_id, ds, y` of the baseline (or weekday-adjusted baseline)."""
    return pd.DataFrame(
        {
            "unique_id": np.repeat([series_key(s.store_id, s.sku) for s in series], [len(s.dates) for s in series]),
            "ds": np.concatenate([s.dates.to_numpy() for s in series]),
            "y": np.concatenate([adjusted_history(s) if adjusted else s.baseline for s in series]),
        }
    )


def global_model_frames(
    series: list[PreparedSeries], horizon: int, holiday_country: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The global model's history (`unique_id, ds, y`, y the baseline, plus the features known ahead)
    and those features over the horizon (`unique_id, ds, ...`), None when there are none. Known
    ahead: `price_ratio` when any series has prices (NaN where one has none), `holiday` (0/1) when a
    holiday country is set."""
    frame = statsforecast_frame(series, adjusted=False)
    future = pd.DataFrame(
        {
            "unique_id": np.repeat([series_key(s.store_id, s.sku) for s in series], horizon),
            "ds": np.concatenate([s.future_dates[:horizon].to_numpy() for s in series]),
        }
    )
    if any(s.price_ratio is not None for s in series):
        ratio = [np.full(len(s.dates) + horizon, np.nan) if s.price_ratio is None else s.price_ratio for s in series]
        frame["price_ratio"] = np.concatenate([r[: len(s.dates)] for r, s in zip(ratio, series, strict=True)])
        future["price_ratio"] = np.concatenate([r[len(s.dates) :] for r, s in zip(ratio, series, strict=True)])
    if holiday_country:
        days = public_holidays(holiday_country, frame["ds"].min(), future["ds"].max())
        frame["holiday"] = frame["ds"].isin(days).astype(float)
        future["holiday"] = future["ds"].isin(days).astype(float)
    return frame, (future if len(future.columns) > 2 else None)


def public_holidays(country: str, first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
    """The country's public holidays between two days (the `holidays` package, as Prophet uses)."""
    import holidays

    return pd.DatetimeIndex(sorted(holidays.country_holidays(country, years=range(first.year, last.year + 1))))


def to_demand_units(forecasts: np.ndarray, s: PreparedSeries, model: str) -> np.ndarray:
    """A model's forecast of the next days as demand: weekday profile and promotion lift re-applied."""
    out = np.maximum(np.asarray(forecasts, float), 0.0)
    if model.endswith(ADJUSTED_SUFFIX):
        out = out * s.profile[s.future_dates.dayofweek.to_numpy()]
    if model != "prophet":
        out = np.where(s.future_promo, out * s.lift, out)
    demand: np.ndarray = out
    return demand


def candidate_forecasts(
    series: list[PreparedSeries],
    settings: EngineSettings,
    prophet_keys: set[str],
    fitted_global: MLForecast | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Per series, every candidate's forecast of the `horizon` days after its history, in demand units.
    `fitted_global`: a global model already fitted (on an earlier cut); otherwise it is fitted here."""
    h = settings.horizon
    fast = fast_forecasts(series, h).reset_index().sort_values(["unique_id", "ds"], kind="stable")
    models = [c for c in fast.columns if c not in ("unique_id", "ds")]
    values = fast[models].to_numpy(float).reshape(-1, h, len(models))
    row = {uid: i for i, uid in enumerate(fast["unique_id"].to_numpy()[::h])}
    learnt = {}
    if settings.global_model:
        frame, future = global_model_frames(series, h, settings.holiday_country)
        learnt = predict_global(fitted_global if fitted_global is not None else fit_global(frame), frame, future, h)
    out = {}
    for s in series:
        uid = series_key(s.store_id, s.sku)
        block = values[row[uid]]
        preds = {m: to_demand_units(block[:, j], s, m) for j, m in enumerate(models) if not np.isnan(block[:, j]).any()}
        if uid in learnt:
            preds[GLOBAL_MODEL] = to_demand_units(learnt[uid], s, GLOBAL_MODEL)
        if uid in prophet_keys:
            preds["prophet"] = prophet_fit_predict(s, h, settings.holiday_country)
        out[uid] = preds
    return out


def quiet_prophet_logs() -> None:
    """Prophet and cmdstanpy log every fit at INFO and warn about plotly; keep errors only."""
    for name in ("cmdstanpy", "prophet", "prophet.plot", "prophet.forecaster"):
        logging.getLogger(name).setLevel(logging.CRITICAL if name == "prophet.plot" else logging.ERROR)


def prophet_fit_predict(s: PreparedSeries, horizon: int, country: str | None) -> np.ndarray:
    """Prophet (weekly + yearly when a year exists, holidays, promotions as a regressor) on the history
    with censored days imputed; the next `horizon` days' mean, floored at 0. No sampling: the
    distribution comes from the backtest like every other model's."""
    quiet_prophet_logs()
    from prophet import Prophet

    quiet_prophet_logs()
    train = pd.DataFrame(
        {"ds": s.dates, "y": impute_masked(s.observed, s.censored, s.weekday), "promo": s.promo.astype(float)}
    )
    np.random.seed(zlib.crc32(series_key(s.store_id, s.sku).encode()))
    model = Prophet(
        weekly_seasonality=True, yearly_seasonality=len(train) >= 365, daily_seasonality=False, uncertainty_samples=0
    )
    if country:
        model.add_country_holidays(country_name=country)
    use_promo = bool(s.promo.any())
    if use_promo:
        model.add_regressor("promo", mode="multiplicative")
    model.fit(train if use_promo else train.drop(columns="promo"), algorithm="LBFGS")
    future = pd.DataFrame({"ds": s.future_dates[:horizon]})
    if use_promo:
        future["promo"] = s.future_promo[:horizon].astype(float)
    mean: np.ndarray = np.maximum(model.predict(future)["yhat"].to_numpy(), 0.0)
    return mean


def prophet_eligible(s: PreparedSeries, settings: EngineSettings) -> bool:
    """Prophet costs ~30x a fast model: try it only where trend, yearly cycle and holidays can matter."""
    active = s.baseline[np.argmax(s.observed > 0) :]
    return bool(
        len(active) >= settings.prophet_min_history_days and active[-365:].mean() >= settings.prophet_min_units_per_day
    )


MIN_TRAIN_DAYS = 28


def backtest(
    data: dict[str, SeriesData], settings: EngineSettings, prophet_keys: set[str]
) -> dict[str, list[WindowResult]]:
    """Rolling origins: for window w each series is cut `w * horizon` days before its end and everything
    (imputation, weekday profile, promotion lift, model fit) is redone on what was known then. The
    global model, the one costly fit, is fitted once at the earliest origin and forecasts the later
    windows from their own history: its backtest is, if anything, a little pessimistic."""
    h = settings.horizon
    out: dict[str, list[WindowResult]] = {uid: [] for uid in data}
    fitted_global = None
    for w in range(settings.windows, 0, -1):
        kept = []
        for d in data.values():
            n = len(d.units) - h * w
            sold = np.flatnonzero(d.units[: max(n, 0)] > 0)
            if n > 0 and len(sold) and n - sold[0] >= MIN_TRAIN_DAYS:
                kept.append((d, n))
        prior = pooled_weekday_profile([d for d, _ in kept], [n for _, n in kept], settings.weekday_weeks)
        cut = [prepare_series(d, h, settings.weekday_weeks, n_days=n, prior_profile=prior) for d, n in kept]
        if not cut:
            continue
        if settings.global_model and fitted_global is None:
            fitted_global = fit_global(global_model_frames(cut, h, settings.holiday_country)[0])
        preds = candidate_forecasts(cut, settings, prophet_keys, fitted_global)
        for t in cut:
            uid = series_key(t.store_id, t.sku)
            n, d = len(t.observed), data[uid]
            out[uid].append(WindowResult(d.units[n : n + h], d.stockout[n : n + h], m5_scale(t.observed), preds[uid]))
    return out


def m5_scale(history: np.ndarray) -> float:
    """`naive_scale`, kept usable for choosing a model: at least 1e-3 (a flat history), 1 when undefined."""
    scale = naive_scale(history)
    return 1.0 if np.isnan(scale) else max(scale, 1e-3)


# ------------------------------------------------------------------------------------- final forecast


def short_history_forecast(s: PreparedSeries, horizon: int) -> tuple[np.ndarray, float]:
    """Too short to backtest: the mean of what exists, weekday profile and promotions applied, with the
    dispersion of the history around that mean."""
    level = float(s.baseline[np.argmax(s.observed > 0) :].mean())
    mean = to_demand_units(np.full(horizon, level), s, "mean" + ADJUSTED_SUFFIX)
    return mean, nb_dispersion(s.baseline, np.full(len(s.baseline), level))


@dataclass
class ChunkCandidates:
    """Everything the decision per series rests on: the prepared series, every candidate's backtest
    windows and every candidate's forecast of the horizon from the whole history."""

    full: dict[str, PreparedSeries]
    windows: dict[str, list[WindowResult]]
    final: dict[str, dict[str, np.ndarray]]
    rejected: list[tuple[str, str, str]]
    classes: dict[str, str] = field(default_factory=dict)  # demand class per series
    pooled: dict[str, dict[str, float]] = field(default_factory=dict)  # per class: model -> mean backtest RMSSE

    def pooled_for(self, uid: str) -> dict[str, float]:
        return self.pooled.get(self.classes.get(uid, ""), {})


def chunk_series(
    sales: pd.DataFrame, promotions: pd.DataFrame | None, settings: EngineSettings, prices: pd.DataFrame | None = None
) -> tuple[dict[str, SeriesData], list[tuple[str, str, str]]]:
    """Arrays per series of a long frame with a `stockout` column, and the series that can't be forecast."""
    promos, price_rows = promotion_index(promotions), price_index(prices)
    rejected: list[tuple[str, str, str]] = []
    data: dict[str, SeriesData] = {}
    sales = sales.sort_values(["store_id", "sku"], kind="stable")
    day = sales["date"].to_numpy("datetime64[D]").astype(np.int64)
    units, stockout = sales["units"].to_numpy(float), sales["stockout"].to_numpy(float)
    keys = sales[["store_id", "sku"]].to_numpy()
    bounds = np.flatnonzero((keys[1:] != keys[:-1]).any(axis=1)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(keys)], strict=True):
        store_id, sku = keys[lo]
        d = series_data(store_id, sku, day[lo:hi], units[lo:hi], stockout[lo:hi], settings.horizon, promos, price_rows)
        problem = reject_reason(d)
        if problem:
            rejected.append((d.store_id, d.sku, problem))
        else:
            data[series_key(d.store_id, d.sku)] = d
    return data, rejected


def chunk_candidates(
    sales: pd.DataFrame,
    promotions: pd.DataFrame | None,
    settings: EngineSettings,
    final_models: str = "chosen",
    prices: pd.DataFrame | None = None,
) -> ChunkCandidates:
    """Backtest every candidate on every series of the chunk and forecast the horizon with them.
    Prophet's final fit is costly: with `final_models="chosen"` it is only made where the decision can
    use it (Prophet backtested best or among the combination), `"all"` fits it wherever eligible."""
    data, rejected = chunk_series(sales, promotions, settings, prices)
    prior = pooled_weekday_profile(list(data.values()), [len(d.units) for d in data.values()], settings.weekday_weeks)
    full = {
        uid: prepare_series(d, settings.horizon, settings.weekday_weeks, prior_profile=prior) for uid, d in data.items()
    }
    if not full:
        return ChunkCandidates({}, {}, {}, rejected)
    prophet_keys = {uid for uid, s in full.items() if prophet_eligible(s, settings)}
    windows = backtest(data, settings, prophet_keys)
    classes = {uid: series_profile(s.observed)["demand_class"] for uid, s in full.items()}
    pooled = pooled_scores(windows, classes)
    if final_models == "chosen":
        prophet_keys = {
            uid
            for uid in prophet_keys
            if "prophet" in decision_members(windows[uid], settings.combination, pooled.get(classes[uid]))
        }
    final = candidate_forecasts(list(full.values()), settings, prophet_keys)
    return ChunkCandidates(full, windows, final, rejected, classes, pooled)


def forecast_chunk(args: ChunkTask) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Forecast one chunk of series (a long frame with a `stockout` column): forecast, models, rejected."""
    sales, promotions, prices, settings = args
    h = settings.horizon
    c = chunk_candidates(sales, promotions, settings, prices=prices)
    decisions = {uid: decide(c.windows[uid], c.final[uid], settings.combination, c.pooled_for(uid)) for uid in c.full}
    shares = level_shares(decisions, c.classes)
    forecasts, models = [], []
    for uid, s in c.full.items():
        model, rmsse_value, mean, dispersion, _ = decisions[uid]
        if model is None:
            model = "short_history_mean"
            mean, dispersion = short_history_forecast(s, h)
        assert mean is not None  # a decision with a model has its mean (combine.mean_of)
        level_dispersion = shares.get(c.classes.get(uid, ""), shares.get("", 0.0)) * dispersion
        q = nb_quantiles(mean, np.full(h, dispersion), settings.quantiles)
        fc = pd.DataFrame({"store_id": s.store_id, "sku": s.sku, "date": s.future_dates, "mean": mean})
        for j, level in enumerate(settings.quantiles):
            fc[quantile_column(level)] = q[:, j]
        forecasts.append(fc.assign(model=model))
        models.append(
            {
                "store_id": s.store_id,
                "sku": s.sku,
                "model": model,
                "backtest_rmsse": rmsse_value,
                "backtest_windows": len(c.windows[uid]),
                "dispersion": dispersion,
                "level_dispersion": level_dispersion,
                "promotion_lift": s.lift,
                "censored_days": int(s.censored.sum()),
                **series_profile(s.observed),
            }
        )
    if not forecasts:
        return pd.DataFrame(), pd.DataFrame(), pd.DataFrame(c.rejected, columns=["store_id", "sku", "problem"])
    return (
        pd.concat(forecasts, ignore_index=True),
        pd.DataFrame(models),
        pd.DataFrame(c.rejected, columns=["store_id", "sku", "problem"]),
    )


def quantile_column(level: float) -> str:
    """0.1 -> p10, 0.975 -> p97.5"""
    return f"p{level * 100:g}"


# ----------------------------------------------------------------------------------------- public API


def shard_of(store_id: str, n_shards: int) -> int:
    """Stable shard of a store (crc32, not Python's salted hash): the same store always lands together."""
    return zlib.crc32(str(store_id).encode()) % n_shards


def select_shard(sales: pd.DataFrame, shard: tuple[int, int] | None) -> pd.DataFrame:
    if shard is None:
        return sales
    i, n = shard
    stores = sales["store_id"].drop_duplicates()
    keep = stores[[shard_of(s, n) == i for s in stores]]
    return sales[sales["store_id"].isin(keep)]


CHUNK_SERIES = 500


def store_chunks(sales: pd.DataFrame, size: int = CHUNK_SERIES) -> list[pd.DataFrame]:
    """The work units: one store's series in blocks of `size` SKUs (sorted). A chunk depends only on
    its store's data, so what is learnt across a chunk's series (pooled profiles, combination choices)
    is the same whatever the number of processes or shards."""
    keys = sales[["store_id", "sku"]].drop_duplicates().sort_values(["store_id", "sku"]).reset_index(drop=True)
    if keys.empty:
        return []
    keys["chunk"] = keys.groupby("store_id").cumcount() // size
    tagged = sales.merge(keys, on=["store_id", "sku"])
    return [g.drop(columns="chunk") for _, g in tagged.groupby(["store_id", "chunk"], sort=True)]


def prices_of(prices: pd.DataFrame | None, chunk: pd.DataFrame) -> pd.DataFrame | None:
    """The price rows a chunk can use (its store's and the chain-wide ones, for its SKUs): a year of
    daily prices for every SKU need not travel to every process."""
    if prices is None or prices.empty:
        return None
    store = chunk["store_id"].iloc[0]
    return prices[prices["store_id"].fillna("").isin(["", store]) & prices["sku"].isin(chunk["sku"].unique())]


def forecast(
    sales: pd.DataFrame,
    settings: EngineSettings = EngineSettings(),
    promotions: pd.DataFrame | None = None,
    shard: tuple[int, int] | None = None,
    progress: Callable[[int], object] | None = None,
    prices: pd.DataFrame | None = None,
) -> ForecastResult:
    """Forecast every store x SKU of `store_id, sku, date, units[, stockout]` (validated) over all cores.

    `promotions` (store_id or empty, sku, start_date, end_date) and `prices` (store_id or empty, sku,
    date, price: from that date on) may reach into the horizon. `shard=(i, n)` keeps only the stores
    of shard i of n. `progress(n)` is called as series finish. Results do not depend on shards or
    processes: what is learnt across series is learnt within one store's chunk.
    """
    sales = select_shard(sales, shard)
    if "stockout" not in sales.columns:
        sales = sales.assign(stockout=0)
    workers = settings.workers or os.cpu_count() or 1
    tasks = [(chunk, promotions, prices_of(prices, chunk), settings) for chunk in store_chunks(sales)]
    results = []
    for res in map_in_processes(forecast_chunk, tasks, workers):
        results.append(res)
        if progress:
            progress(len(res[1]) + len(res[2]))
    fc = [r[0] for r in results if len(r[0])]
    columns = ["store_id", "sku", "date", "mean", *[quantile_column(q) for q in settings.quantiles], "model"]
    empty = pd.DataFrame(
        {
            c: pd.Series(
                dtype="datetime64[ns]" if c == "date" else object if c in ("store_id", "sku", "model") else float
            )
            for c in columns
        }
    )
    forecast_frame = pd.concat(fc, ignore_index=True)[columns] if fc else empty
    models = [r[1] for r in results if len(r[1])]
    models = pd.concat(models, ignore_index=True) if models else pd.DataFrame(columns=MODEL_COLUMNS)
    rejected = (
        pd.concat([r[2] for r in results], ignore_index=True)
        if results
        else pd.DataFrame(columns=["store_id", "sku", "problem"])
    )
    return ForecastResult(
        forecast_frame.sort_values(["store_id", "sku", "date"]).reset_index(drop=True), models, rejected
    )
