"""What planners read: a plot per series and an accuracy report per store (and category)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from forecasting.engine import ForecastResult

HISTORY_DAYS_SHOWN = 120


def plot_series(
    history: pd.DataFrame, forecast: pd.DataFrame, title: str, path: Path, marker: pd.Timestamp | None = None
) -> Path:
    """History (`date, units[, stockout]`), forecast mean and 80 % band, stock-out days shaded: a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(history["date"], history["units"], color="#444", lw=1, label="sales")
    if "stockout" in history and history["stockout"].astype(bool).any():
        for day in history.loc[history["stockout"].astype(bool), "date"]:
            ax.axvspan(day - pd.Timedelta(hours=12), day + pd.Timedelta(hours=12), color="#c44e52", alpha=0.15, lw=0)
        ax.plot([], [], color="#c44e52", alpha=0.3, lw=6, label="stock-out day (masked)")
    ax.fill_between(
        forecast["date"], forecast["p10"], forecast["p90"], color="#4c72b0", alpha=0.25, label="80 % interval"
    )
    model = forecast["model"].iloc[0] if len(forecast) else "-"
    ax.plot(forecast["date"], forecast["mean"], color="#4c72b0", lw=1.5, label=f"forecast ({model})")
    if marker is not None and pd.notna(marker):
        ax.axvline(marker, color="#c44e52", ls="--", lw=1, label="expected empty")
    ax.set_title(title)
    ax.set_ylabel("units / day")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_all(
    sales: pd.DataFrame, result: ForecastResult, out_dir: Path, history_days: int = HISTORY_DAYS_SHOWN
) -> list[Path]:
    """One PNG per forecast series, named STORE_SKU.png."""
    models = result.models.set_index(["store_id", "sku"])
    paths = []
    history = sales.assign(stockout=sales["stockout"] if "stockout" in sales else 0)
    by_series = dict(tuple(history.groupby(["store_id", "sku"])))
    for (store_id, sku), fc in result.forecast.groupby(["store_id", "sku"], sort=True):
        h = (
            by_series[(store_id, sku)]
            .groupby("date", as_index=False)
            .agg(units=("units", "sum"), stockout=("stockout", "max"))
        )
        h = h.set_index("date").asfreq("D", fill_value=0).reset_index().tail(history_days)
        m = models.loc[(store_id, sku)]
        title = f"{store_id} · {sku} — {m['model']}, backtest RMSSE {m['backtest_rmsse']:.2f}, {m['demand_class']}"
        paths.append(plot_series(h, fc, title, Path(out_dir) / f"{safe_name(store_id)}_{safe_name(sku)}.png"))
    return paths


def safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))


def read_categories(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, usecols=["sku", "category"])


def accuracy_report(models: pd.DataFrame, categories: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per store (and category): series, mean backtest RMSSE, the share of each demand class and the
    most chosen model — where the forecasts are weakest, so planners know where to look."""
    frame = (
        models if categories is None else models.merge(categories, on="sku", how="left").fillna({"category": "unknown"})
    )
    keys = ["store_id"] + (["category"] if categories is not None else [])
    grouped = frame.groupby(keys)
    out = grouped.agg(
        series=("sku", "size"),
        mean_backtest_rmsse=("backtest_rmsse", "mean"),
        median_backtest_rmsse=("backtest_rmsse", "median"),
        censored_days=("censored_days", "sum"),
    )
    out["top_model"] = grouped["model"].agg(lambda m: m.value_counts().index[0])
    classes = pd.crosstab([frame[k] for k in keys], frame["demand_class"], normalize="index").add_prefix("share_")
    return out.join(classes).round(4).reset_index()
