"""A global model: one gradient-boosted tree model learnt across the series of a chunk (one store's
SKUs), as the M5 accuracy winners did. A single series' history is too short to learn how demand
reacts to its own recent level, weekday and trend; hundreds of series in the same store together are
not. Fitted on each series' baseline (stock-out and promotion days imputed) so the engine re-applies
promotion lift as for every other candidate; Tweedie loss because daily units are counts with many zeros.

The chunk is a function of the store's data alone and LightGBM runs single-threaded with a fixed
seed, so the same store always gets the same forecasts, whatever the shards or processes.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # imported where a model is fitted: the engine starts without LightGBM
    from mlforecast import MLForecast

GLOBAL_MODEL = "lgbm_global"
MIN_SERIES = 20  # fewer series than this teach a global model little: it is not a candidate there
FIT_DAYS = 364  # the last year of each series is what the trees learn from (bounded cost) ...
FEATURE_DAYS = 364 + 392  # ... with features that look back up to a year and 28 days before it
SCALE_DAYS = 91
MIN_SCALE = 0.05

LIGHTGBM_PARAMS: dict[str, Any] = dict(  # LGBMRegressor's keyword arguments, of mixed types
    objective="tweedie",
    tweedie_variance_power=1.2,
    n_estimators=150,
    learning_rate=0.05,
    num_leaves=31,
    min_child_samples=50,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.8,
    reg_lambda=1.0,
    max_bin=63,
    n_jobs=1,
    random_state=0,
    deterministic=True,
    force_row_wise=True,
    verbose=-1,
)


def on_own_scale(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Each series divided by its mean over its last SCALE_DAYS: a slow and a fast mover with the same
    dynamics then look alike to the trees, and a store's 30 series teach as much as 500."""
    recent = frame.groupby("unique_id", sort=False).tail(FEATURE_DAYS)
    scale = recent.groupby("unique_id", sort=False)["y"].apply(
        lambda y: max(float(y.tail(SCALE_DAYS).mean()), MIN_SCALE)
    )
    return recent.assign(y=recent["y"] / recent["unique_id"].map(scale)), scale


def fit_global(frame: pd.DataFrame) -> MLForecast | None:
    """The global model learnt from `unique_id, ds, y[, known-ahead features]` (consecutive days per
    series); None when there are too few series to learn from."""
    if frame["unique_id"].nunique() < MIN_SERIES:
        return None
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, SeasonalRollingMean

    model = MLForecast(
        models={GLOBAL_MODEL: lgb.LGBMRegressor(**LIGHTGBM_PARAMS)},
        freq="D",
        lags=[1, 7, 14, 28],
        lag_transforms={
            1: [RollingMean(window_size=7), RollingMean(window_size=28), RollingMean(window_size=91)],
            7: [SeasonalRollingMean(season_length=7, window_size=4)],
            336: [RollingMean(window_size=28)],
            364: [RollingMean(window_size=28)],
        },
        date_features=["dayofweek"],
        num_threads=1,
    )
    data, _ = on_own_scale(frame)
    with warnings.catch_warnings():
        # the year-ago features are missing in a series' first year, by design: the trees route them
        warnings.filterwarnings("ignore", message="Found null values", category=UserWarning)
        features: pd.DataFrame = model.preprocess(  # a frame: return_X_y is False
            data, id_col="unique_id", time_col="ds", target_col="y", static_features=[], dropna=False
        )
    rows = features.groupby("unique_id", sort=False).tail(FIT_DAYS)
    model.fit_models(rows[model.ts.features_order_], rows["y"].to_numpy())
    return model


def predict_global(
    model: MLForecast | None, frame: pd.DataFrame, future: pd.DataFrame | None, horizon: int
) -> dict[str, np.ndarray]:
    """Per unique_id of `frame` (its history up to now, as for `fit_global`) the next `horizon` days'
    mean, floored at 0. `future`: the known-ahead features over the horizon (`unique_id, ds,
    price_ratio, holiday`; engine.global_model_frames), or None. The model may have been fitted on an
    earlier cut of the same series: a backtest fits once and predicts every later window."""
    if model is None:
        return {}
    data, scale = on_own_scale(frame)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Found null values", category=UserWarning)
        fc = model.predict(h=horizon, new_df=data, X_df=future).sort_values(["unique_id", "ds"], kind="stable")
    fc[GLOBAL_MODEL] = fc[GLOBAL_MODEL] * fc["unique_id"].map(scale)
    values = np.maximum(fc[GLOBAL_MODEL].to_numpy(float), 0.0).reshape(-1, horizon)
    return dict(zip(fc["unique_id"].to_numpy()[::horizon], values, strict=True))


def global_forecasts(frame: pd.DataFrame, future: pd.DataFrame | None, horizon: int) -> dict[str, np.ndarray]:
    """Fit on `frame` and forecast its series' next `horizon` days (empty with too few series)."""
    return predict_global(fit_global(frame), frame, future, horizon)
