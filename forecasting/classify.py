"""Demand classification per series (Syntetos-Boylan, as in the M5 benchmarks).

ADI = days of history / days with a sale (from the first sale on); CV² = squared coefficient of
variation of the non-zero sizes. Cut-offs 1.32 and 0.49 split smooth / erratic / intermittent / lumpy:
the class decides which candidate models are worth a backtest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49


def demand_class(adi: float, cv2: float) -> str:
    if np.isnan(adi):
        return "no_demand"
    if adi < ADI_CUTOFF:
        return "smooth" if cv2 < CV2_CUTOFF else "erratic"
    return "intermittent" if cv2 < CV2_CUTOFF else "lumpy"


def series_profile(units: np.ndarray) -> dict[str, Any]:
    """ADI, CV², class, history length (from the first sale) and mean daily volume of one series."""
    units = np.asarray(units, dtype=float)
    nonzero = np.flatnonzero(units > 0)
    if len(nonzero) == 0:
        return {"adi": np.nan, "cv2": np.nan, "demand_class": "no_demand", "history_days": 0, "mean_units": 0.0}
    active = units[nonzero[0] :]
    sizes = active[active > 0]
    adi = len(active) / len(sizes)
    cv2 = float((sizes.std() / sizes.mean()) ** 2) if len(sizes) > 1 else 0.0
    return {
        "adi": round(adi, 4),
        "cv2": round(cv2, 4),
        "demand_class": demand_class(adi, cv2),
        "history_days": int(len(active)),
        "mean_units": float(active.mean()),
    }


def classify_demand(sales: pd.DataFrame) -> pd.DataFrame:
    """One row per store x SKU of a long frame `store_id, sku, date, units` (missing days are zeros)."""
    rows = []
    for (store_id, sku), g in sales.groupby(["store_id", "sku"], sort=True):
        g = g.assign(date=pd.to_datetime(g["date"])).groupby("date")["units"].sum()
        daily = g.reindex(pd.date_range(g.index.min(), g.index.max(), freq="D"), fill_value=0.0)
        rows.append({"store_id": store_id, "sku": sku, **series_profile(daily.to_numpy())})
    return pd.DataFrame(rows)
