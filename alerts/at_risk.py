"""Members at risk of leaving because their favourites keep running out.

A favourite here is a store x SKU the member bought on at least `min_purchase_days` days of the last
`favourite_days`, recent or not: a member who stopped buying because the shelf was empty is exactly
who we look for. The score is the member's favourite outage-days, each weighted by the share of the
day's trading hours the shelf stood empty: those of the last 30 days, plus a third of those of the
last 90 (a shelf that keeps running out will do it again), plus a little for overdue visits.

Why this and not more: on the simulated world (`shelfwatch bench actions`, whose members leave after
repeated empty favourites) weighting each outage by how often the member buys the product (even by
their true rate), or by how recent it is, ranked no better than these plain counts; the simpler score
is the one a CX agent can check by hand.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

SCORE_WINDOW_DAYS = 30  # the score and the reason look at the last 30 days
LIST_WINDOW_DAYS = 90  # members with no favourite out in this many days are left off the list
PERSISTENCE_WEIGHT = 1 / 3  # each outage-day of the last 90 days adds a third: shelves that keep running out
BEHAVIOUR_WEIGHT = (
    0.05  # a missed usual visit counts as a twentieth of an outage-day: a tie-breaker (absences have many causes)
)
MAX_MISSED_VISITS = 4.0  # ...and at most four of them count: a member who moved away should not top the list

COLUMNS = [
    "member_id",
    "favourites",
    "favourites_out_30",
    "out_days_30",
    "favourites_out_90",
    "out_days_90",
    "missed_visits_30",
    "days_since_last_visit",
    "usual_interval_days",
    "score",
    "rank",
    "reason",
]


# a day or a time: a date, a datetime or pandas Timestamp (both dates too), or ISO text
AsOf = date | str


def _day(as_of: AsOf) -> pd.Timestamp:
    """`as_of` as a naive midnight (day granularity; a tz-aware time keeps its own calendar day)."""
    ts = pd.Timestamp(as_of)
    return (ts.tz_localize(None) if ts.tzinfo else ts).normalize()


def _before(frame: pd.DataFrame, today: pd.Timestamp, days: int) -> pd.DataFrame:
    """Rows dated in the `days` days before `today` (today itself is not over yet), `date` as datetime."""
    day = pd.to_datetime(frame["date"]).dt.normalize()
    return frame.assign(date=day)[(day >= today - pd.Timedelta(days=days)) & (day < today)]


def standing_favourites(
    lines: pd.DataFrame, as_of: AsOf, favourite_days: int = 180, min_purchase_days: int = 3
) -> pd.DataFrame:
    """Store x SKU a member bought on >= `min_purchase_days` distinct days of the `favourite_days` before
    `as_of`, however long ago the last one. Columns: member_id, store_id, sku, purchase_days, rate
    (purchase days per day of the window: the chance they buy it on a given day)."""
    cols = ["member_id", "store_id", "sku", "purchase_days", "rate"]
    window = _before(lines.dropna(subset=["member_id"]), _day(as_of), favourite_days)
    if window.empty:
        return pd.DataFrame(columns=cols)
    fav = window.groupby(["member_id", "store_id", "sku"])["date"].nunique().rename("purchase_days").reset_index()
    fav = fav[fav["purchase_days"] >= min_purchase_days]
    return fav.assign(rate=fav["purchase_days"] / favourite_days)[cols].reset_index(drop=True)


def daily_outages(outages: pd.DataFrame, as_of: AsOf, days: int) -> pd.DataFrame:
    """One row per store x SKU x day in the `days` before `as_of` (the caller merges sources, so a day
    may come twice: the larger empty share wins). Columns: store_id, sku, date, empty_share."""
    recent = _before(outages, _day(as_of), days)
    share = pd.to_numeric(recent["empty_share"], errors="coerce").fillna(1.0).clip(0.0, 1.0)
    recent = recent.assign(empty_share=share)
    return recent.groupby(["store_id", "sku", "date"], as_index=False)["empty_share"].max()


def favourite_outages(
    favourites: pd.DataFrame, outages: pd.DataFrame, as_of: AsOf, windows: tuple[int, ...] = (30, 90)
) -> pd.DataFrame:
    """Per member with favourites: how many favourites, and per window how many were out and on how many
    favourite-days (a day two favourites are out counts twice). Columns: member_id, favourites, then
    favourites_out_<w>, out_days_<w> for each window w."""
    count = favourites.groupby("member_id").size().rename("favourites")
    out = count.to_frame()
    daily = (
        daily_outages(outages, as_of, max(windows))
        if len(outages)
        else pd.DataFrame(columns=["store_id", "sku", "date"])
    )
    met = favourites[["member_id", "store_id", "sku"]].merge(daily[["store_id", "sku", "date"]], on=["store_id", "sku"])
    today = _day(as_of)
    for w in windows:
        within = met[met["date"] >= today - pd.Timedelta(days=w)]
        out[f"favourites_out_{w}"] = (
            within.drop_duplicates(["member_id", "store_id", "sku"]).groupby("member_id").size()
        )
        out[f"out_days_{w}"] = within.groupby("member_id").size()
    return out.fillna(0).astype(int).reset_index()


def empty_exposure(favourites: pd.DataFrame, outages: pd.DataFrame, as_of: AsOf) -> pd.Series:
    """The member's favourite outage-days weighted by how much of the day the shelf stood empty: the
    last SCORE_WINDOW_DAYS days in full, the last LIST_WINDOW_DAYS days x PERSISTENCE_WEIGHT.
    Indexed by member_id (members with none are absent)."""
    if favourites.empty or outages.empty:
        return pd.Series(dtype=float, name="exposure")
    keys = favourites[["member_id", "store_id", "sku"]]
    parts = []
    for days, weight in ((SCORE_WINDOW_DAYS, 1.0), (LIST_WINDOW_DAYS, PERSISTENCE_WEIGHT)):
        met = keys.merge(daily_outages(outages, as_of, days), on=["store_id", "sku"])
        parts.append(pd.Series(met["empty_share"].to_numpy(float) * weight, index=met["member_id"].to_numpy()))
    return pd.concat(parts).groupby(level=0).sum().rename("exposure")


def visit_rhythm(lines: pd.DataFrame, as_of: AsOf, days: int = 180) -> pd.DataFrame:
    """Each member's visits (distinct purchase days, any store) in the `days` before `as_of`: days since
    the last one and the usual interval (median gap between visits; NaN with fewer than three visits).
    Columns: member_id, days_since_last_visit, usual_interval_days."""
    today = _day(as_of)
    visits = _before(lines.dropna(subset=["member_id"]), today, days)[["member_id", "date"]].drop_duplicates()
    visits = visits.sort_values(["member_id", "date"])
    gap = visits.groupby("member_id")["date"].diff().dt.days
    rhythm = (
        visits.assign(gap=gap)
        .groupby("member_id")
        .agg(last=("date", "max"), usual_interval_days=("gap", "median"), gaps=("gap", "count"))
    )
    rhythm["usual_interval_days"] = rhythm["usual_interval_days"].where(rhythm["gaps"] >= 2)
    rhythm["days_since_last_visit"] = (today - rhythm["last"]).dt.days
    return rhythm.reset_index()[["member_id", "days_since_last_visit", "usual_interval_days"]]


def missed_visits(
    days_since_last_visit: npt.ArrayLike, usual_interval_days: npt.ArrayLike, days: int = SCORE_WINDOW_DAYS
) -> np.ndarray:
    """Usual visits missed since the last one, within the last `days`: (days since last / usual
    interval) - 1, at least 0; 0 when the rhythm is unknown."""
    since = np.minimum(np.asarray(days_since_last_visit, float), days)
    usual = np.asarray(usual_interval_days, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        missed = np.where(usual > 0, since / np.where(usual > 0, usual, 1.0) - 1.0, 0.0)
    at_least_zero: np.ndarray = np.clip(np.nan_to_num(missed), 0.0, None)
    return at_least_zero


def members_at_risk(
    lines: pd.DataFrame,
    outages: pd.DataFrame,
    as_of: AsOf,
    favourite_days: int = 180,
    min_purchase_days: int = 3,
) -> pd.DataFrame:
    """The ranked list of members whose favourites ran out in the last 90 days, most at risk first.

    `lines`: store_id, sku, date, member_id(, units); `outages`: store_id, sku, date, empty_share
    (share of the day's trading hours the shelf was empty; 1 when unknown). Only data before `as_of`'s
    day counts. score = empty_exposure + BEHAVIOUR_WEIGHT x min(missed_visits_30, MAX_MISSED_VISITS);
    ties by member_id. Columns: COLUMNS.
    """
    favourites = standing_favourites(lines, as_of, favourite_days, min_purchase_days)
    counts = favourite_outages(favourites, outages, as_of, (SCORE_WINDOW_DAYS, LIST_WINDOW_DAYS))
    counts = counts[counts[f"favourites_out_{LIST_WINDOW_DAYS}"] > 0]
    if counts.empty:
        return pd.DataFrame(columns=COLUMNS)
    risk = counts.merge(visit_rhythm(lines, as_of, favourite_days), on="member_id", how="left")
    risk = risk.join(empty_exposure(favourites, outages, as_of), on="member_id")
    risk["missed_visits_30"] = np.round(missed_visits(risk["days_since_last_visit"], risk["usual_interval_days"]), 1)
    behaviour = BEHAVIOUR_WEIGHT * np.minimum(risk["missed_visits_30"], MAX_MISSED_VISITS)
    risk["score"] = (risk["exposure"].fillna(0.0) + behaviour).round(4)
    risk = risk.sort_values(["score", "member_id"], ascending=[False, True], ignore_index=True)
    risk["rank"] = np.arange(1, len(risk) + 1)
    return risk.assign(reason=risk_reasons(risk))[COLUMNS]


def count_baseline_score(
    lines: pd.DataFrame,
    outages: pd.DataFrame,
    as_of: AsOf,
    favourite_days: int = 180,
    min_purchase_days: int = 3,
) -> pd.DataFrame:
    """The naive benchmark: favourite outage-days in the last 30 days, unweighted, for the same members
    members_at_risk lists. Columns: member_id, score, rank."""
    favourites = standing_favourites(lines, as_of, favourite_days, min_purchase_days)
    counts = favourite_outages(favourites, outages, as_of, (SCORE_WINDOW_DAYS, LIST_WINDOW_DAYS))
    counts = counts[counts[f"favourites_out_{LIST_WINDOW_DAYS}"] > 0]
    out = counts.assign(score=counts[f"out_days_{SCORE_WINDOW_DAYS}"].astype(float))
    out = out.sort_values(["score", "member_id"], ascending=[False, True], ignore_index=True)
    return out.assign(rank=np.arange(1, len(out) + 1))[["member_id", "score", "rank"]]


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def risk_reasons(risk: pd.DataFrame) -> list[str]:
    """Why each member is on the list, in words: the outages met, then the visit rhythm."""
    reasons = []
    for r in risk.itertuples(index=False):
        w, out, n = (
            (SCORE_WINDOW_DAYS, r.favourites_out_30, r.out_days_30)
            if r.favourites_out_30 > 0
            else (LIST_WINDOW_DAYS, r.favourites_out_90, r.out_days_90)
        )
        text = (
            f"{out} of their {r.favourites} favourite{'s' if r.favourites != 1 else ''} out {_times(int(n))}"
            f" in {w} days"
        )
        if pd.notna(r.days_since_last_visit):
            text += f"; last visit {int(r.days_since_last_visit)} day{'s' if r.days_since_last_visit != 1 else ''} ago"
            if pd.notna(r.usual_interval_days):
                text += f" (usually every {r.usual_interval_days:g})"
        reasons.append(text)
    return reasons
