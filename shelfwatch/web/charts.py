"""Plotly figures as JSON for the pages (rendered by the browser with the bundled plotly.min.js).

The figures are plain dicts in Plotly's JSON schema, not `plotly.graph_objects` figures: building
and validating those took ~20 ms a chart and put Plotly's whole default template (~40 KB) into every
page. The Chromium tests render them.

Plotly renders titles, hover texts and cell texts as HTML: text from users or data is escaped first
(the pages' plot config, deps.PLOT_CONFIG, offers no link to Plotly's cloud), and the JSON has no
"</" left in it, so it can sit inside an inline <script>.
"""

from __future__ import annotations

import html
import json
import math
from urllib.parse import quote

import pandas as pd

DAY = "%{x|%a %d %b %Y}"  # a day as hover text: "Tue 01 Dec 2026"
HOVER_LABEL = {"bgcolor": "#fff", "bordercolor": "#555", "font": {"color": "#222"}}
AXIS = {"gridcolor": "#e3e3e3", "linecolor": "#999", "zerolinecolor": "#ccc"}
# ColorBrewer's OrRd (plotly.js has no such named scale): pale for little risk, dark red for much
OR_RD = [
    [i / 8, c]
    for i, c in enumerate(
        ("#fff7ec", "#fee8c8", "#fdd49e", "#fdbb84", "#fc8d59", "#ef6548", "#d7301f", "#b30000", "#7f0000")
    )
]


def _json(fig: dict) -> str:
    return json.dumps(fig, separators=(",", ":")).replace("</", "<\\/")


def _numbers(values, digits: int = 3) -> list:
    """Floats rounded for the page (NaN as null)."""
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), digits) for v in values]


def _days(values) -> list[str]:
    return [pd.Timestamp(v).strftime("%Y-%m-%d") for v in values]


def hour_text(hour) -> str:
    """15.5 -> "15:30"; "" when unknown."""
    if hour is None or pd.isna(hour):
        return ""
    minutes = round(float(hour) * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def series_chart(view: dict, title: str) -> str:
    """History (stock-out days marked: they are masked when forecasting), the forecast mean and its 80 %
    interval. Hover: the day, units sold (and the hour the shelf went empty on stock-out days); on the
    forecast the mean to 1 decimal, the 80 % interval p10–p90 and the median p50."""
    history, forecast, stockouts = view["history"], view["forecast"], view["stockouts"]
    hours = stockouts["empty_from_hour"] if "empty_from_hour" in stockouts else [None] * len(stockouts)
    empty_from = dict(zip(_days(stockouts["date"]), (hour_text(h) for h in hours), strict=True))
    days, units = _days(history["date"]), _numbers(history["units"], 2)
    sold = [(d, u) for d, u in zip(days, units, strict=True) if d not in empty_from]
    out = [(d, u) for d, u in zip(days, units, strict=True) if d in empty_from]
    data = [
        {
            "type": "scatter",
            "x": [d for d, _ in sold],
            "y": [u for _, u in sold],
            "mode": "markers+lines",
            "name": "units sold",
            "line": {"color": "#1f4e79"},
            "marker": {"size": 5},
            "hovertemplate": f"{DAY}<br>sold %{{y:.4~f}} units<extra></extra>",
        },
        {
            "type": "scatter",
            "x": [d for d, _ in out],
            "y": [u for _, u in out],
            "mode": "markers",
            "name": "stock-out day (masked)",
            "customdata": [
                f"shelf empty from {empty_from[d]}" if empty_from[d] else "shelf empty during the day" for d, _ in out
            ],
            "marker": {"color": "#c0392b", "symbol": "x", "size": 9},
            "hovertemplate": f"{DAY}<br>sold %{{y:.4~f}} units<br><b>stock-out day</b>: %{{customdata}}<br>(masked "
            f"when forecasting)<extra></extra>",
        },
    ]
    if len(forecast):
        dates = _days(forecast["date"])
        low, high = _numbers(forecast["p10"]), _numbers(forecast["p90"])
        data.append(
            {
                "type": "scatter",
                "x": dates + dates[::-1],
                "y": high + low[::-1],
                "fill": "toself",
                "fillcolor": "rgba(230,126,34,0.25)",
                "line": {"width": 0},
                "name": "80 % interval (p10–p90)",
                "hoverinfo": "skip",
            }
        )
        quantiles = [list(q) for q in zip(low, _numbers(forecast["p50"]), high, strict=True)]
        data.append(
            {
                "type": "scatter",
                "x": dates,
                "y": _numbers(forecast["mean"]),
                "mode": "lines+markers",
                "name": "forecast mean",
                "line": {"color": "#e67e22", "width": 3},
                "marker": {"size": 5},
                "customdata": quantiles,
                "hovertemplate": f"{DAY}<br>forecast mean <b>%{{y:.1f}}</b> units<br>"
                "80 % interval %{customdata[0]:.1f}–%{customdata[2]:.1f}<br>median (p50) "
                "%{customdata[1]:.1f}<extra></extra>",
            }
        )
    layout = {
        "title": {"text": html.escape(title), "x": 0.01, "xanchor": "left"},
        "height": 380,
        "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
        "legend": {"orientation": "h"},
        "xaxis": {**AXIS, "type": "date"},
        "yaxis": {**AXIS, "title": {"text": "units/day"}, "rangemode": "tozero"},
        "hovermode": "closest",
        "hoverlabel": HOVER_LABEL,
        "plot_bgcolor": "#fff",
        "paper_bgcolor": "#fff",
    }
    return _json({"data": data, "layout": layout})


def alerts_link(store_id: str, category: str) -> str:
    """The store's alert inbox, filtered to one product category."""
    return f"/stores/{quote(str(store_id), safe='')}/alerts?category={quote(str(category), safe='')}"


def _alerts_phrase(n: int) -> str:
    return f"{n} open alert" if n == 1 else f"{n} open alerts"


def heatmap_cells(heat: pd.DataFrame) -> tuple[list, list, list[list[dict | None]]]:
    """queries.risk_heatmap's rows as a grid: stores (rows), categories (columns), and per cell
    None (no open stock-out alert) or {risk, alerts, text, link}; text is plain (not escaped)."""
    stores = sorted(heat["store_id"].unique().tolist())
    categories = sorted(heat["category"].unique().tolist())
    row_of, col_of = {s: i for i, s in enumerate(stores)}, {c: j for j, c in enumerate(categories)}
    grid: list[list[dict | None]] = [[None] * len(categories) for _ in stores]
    for r in heat.itertuples(index=False):
        grid[row_of[r.store_id]][col_of[r.category]] = {
            "risk": float(r.risk),
            "alerts": int(r.alerts),
            "link": alerts_link(r.store_id, r.category),
            "text": f"{r.store_id} · {r.category}: {float(r.risk):.1f} shelves expected to go empty, "
            f"{_alerts_phrase(int(r.alerts))}",
        }
    return stores, categories, grid


def risk_heatmap(heat: pd.DataFrame) -> str:
    """Stores x categories of open stock-out risk, the number in each cell; a cell's hover says what it
    means, and its link (customdata: the page's click handler follows it) opens that store's inbox
    filtered to the category."""
    stores, categories, grid = heatmap_cells(heat)
    z = [[round(c["risk"], 3) if c else 0.0 for c in row] for row in grid]
    cell_text = [[f"{c['risk']:.1f}" if c else "" for c in row] for row in grid]
    hover = [
        [
            html.escape(c["text"]) if c else html.escape(f"{s} · {cat}: no open stock-out alerts")
            for c, cat in zip(row, categories, strict=True)
        ]
        for row, s in zip(grid, stores, strict=True)
    ]
    links = [[c["link"] if c else "" for c in row] for row in grid]
    trace = {
        "type": "heatmap",
        "z": z,
        "x": [html.escape(str(c)) for c in categories],
        "y": [html.escape(str(s)) for s in stores],
        "colorscale": OR_RD,
        "zmin": 0,
        "text": cell_text,
        "texttemplate": "%{text}",
        "textfont": {"size": 12},
        "hovertext": hover,
        "customdata": links,
        "hovertemplate": "%{hovertext}<extra></extra>",
        "xgap": 1,
        "ygap": 1,
        "colorbar": {"title": {"text": "shelves expected<br>to go empty"}},
    }
    layout = {
        "title": {
            "text": "Stock-out risk: stores × categories (open alerts' expected empty shelves)",
            "x": 0.01,
            "xanchor": "left",
        },
        "height": max(300, 24 * len(stores) + 140),
        "margin": {"l": 60, "r": 10, "t": 40, "b": 60},
        "yaxis": {"autorange": "reversed", "type": "category"},
        "xaxis": {"type": "category", "side": "bottom"},
        "hoverlabel": HOVER_LABEL,
        "plot_bgcolor": "#fff",
        "paper_bgcolor": "#fff",
    }
    return _json({"data": [trace], "layout": layout})
