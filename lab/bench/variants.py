"""`shelfwatch bench forecast-variants`: every way of turning backtested candidates into a forecast,
measured on the same outer rolling origins in one run.

Per outer window the engine backtests every candidate once (its inner windows) and forecasts the
horizon with every candidate; each variant then only decides how to use them, so the table compares
decisions, not luck of refits. Scored as `bench forecast` scores: M5 RMSSE on the days after the
cutoff (censored days left out), 80 % coverage of daily demand and of 7-day sums.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecasting.combine import COMBINATION_PREFIX, WindowResult, decide, mean_of
from forecasting.engine import EngineSettings, chunk_candidates, prices_of, store_chunks
from forecasting.parallel import map_in_processes
from lab.bench.forecast import complete, interval_scores, truth_arrays

FIXED_SIMPLE = ("ma28", "adida", "imapa")
DEFAULT_VARIANTS = ("select", "top2", "top3", "top5", "top3w", "top5w", "fixed_simple", "class_top3", "shrink_top3")


@dataclass
class SeriesDecision:
    model: str
    mean: np.ndarray
    dispersion: float


def candidates_of(args):
    chunk, promotions, prices, settings = args
    return chunk_candidates(chunk, promotions, settings, final_models="all", prices=prices)


def fixed_decision(
    windows: list[WindowResult], final: dict[str, np.ndarray], members: list[str]
) -> SeriesDecision | None:
    """The equal mean of fixed `members` (those the series has), with its own backtest dispersion."""
    members = [m for m in members if m in final]
    if not members:
        return None
    name, _, mean, dispersion, _ = mean_of(windows, final, members, np.full(len(members), 1.0 / len(members)))
    return SeriesDecision(name, mean, dispersion)


def variant_decisions(c, variant: str) -> dict[str, SeriesDecision]:
    """Decision per series of one chunk's candidates under `variant`: a `forecasting.combine`
    strategy, "fixed_simple" (mean of MA28, ADIDA, IMAPA), "only:MODEL" or "mean:A+B+..." (a fixed
    equal-weight mean)."""
    out = {}
    for uid in c.full:
        w, final = c.windows[uid], c.final[uid]
        if variant == "fixed_simple":
            d = fixed_decision(w, final, list(FIXED_SIMPLE))
        elif variant.startswith("only:"):
            d = fixed_decision(w, final, [variant[5:]])
        elif variant.startswith(COMBINATION_PREFIX):
            d = fixed_decision(w, final, variant[len(COMBINATION_PREFIX) :].split("+"))
        else:
            name, _, mean, dispersion, _ = decide(w, final, variant, c.pooled_for(uid))
            d = SeriesDecision(name, mean, dispersion) if name else None
        if d is not None:
            out[uid] = d
    return out


def run_variants(
    sales: pd.DataFrame,
    promotions=None,
    variants=DEFAULT_VARIANTS,
    windows: int = 3,
    horizon: int = 28,
    inner_windows: int = 3,
    workers: int = 0,
    log=print,
    prices=None,
) -> pd.DataFrame:
    """Mean RMSSE, daily and 7-day 80 % coverage per variant over `windows` outer origins."""
    sales = complete(sales.assign(stockout=sales.get("stockout", 0)))
    end = sales["date"].max()
    settings = replace(EngineSettings(horizon=horizon, windows=inner_windows), workers=workers)
    rows = []
    for w in range(windows, 0, -1):
        cutoff = end - pd.Timedelta(days=horizon * w)
        history = sales[sales["date"] <= cutoff]
        history = history[history.groupby(["store_id", "sku"])["units"].transform("sum") > 0]
        actual = sales[(sales["date"] > cutoff) & (sales["date"] <= cutoff + pd.Timedelta(days=horizon))]
        t0 = time.perf_counter()
        chunks = list(
            map_in_processes(
                candidates_of,
                [(c, promotions, prices_of(prices, c), settings) for c in store_chunks(history)],
                workers or os.cpu_count() or 1,
            )
        )
        log(
            f"window ending {cutoff + pd.Timedelta(days=horizon):%Y-%m-%d}: candidates in "
            f"{time.perf_counter() - t0:.0f}s"
        )
        truth = truth_arrays(actual, history)
        for variant in variants:
            decisions = {uid: d for c in chunks for uid, d in variant_decisions(c, variant).items()}
            s = interval_scores(truth, decisions).assign(variant=variant, cutoff=cutoff)
            log(f"  {variant:<14} mean RMSSE {s['rmsse'].mean():.4f}")
            rows.append(s)
    detail = pd.concat(rows, ignore_index=True)
    return detail


def summary(detail: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: mean RMSSE, coverage of daily values and of 7-day sums."""
    g = detail.groupby("variant", sort=False)
    return pd.DataFrame(
        {
            "mean_rmsse": g["rmsse"].mean(),
            "coverage80_daily": g["covered"].sum() / g["days"].sum(),
            "coverage80_7day": g["covered7"].sum() / g["weeks"].sum(),
        }
    ).reset_index()
