"""Plotly figures as JSON for the pages (rendered by the browser with the bundled plotly.min.js)."""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

# Plotly renders titles and hover texts as HTML: text from users or data is escaped first (the
# pages' plot config, deps.PLOT_CONFIG, offers no link to Plotly's cloud).


def series_chart(view: dict, title: str) -> str:
    """History, masked stock-out days, forecast mean and its 80 % interval."""
    history, forecast = view["history"], view["forecast"]
    out_days = set(pd.to_datetime(view["stockouts"]["date"]))
    hist_dates = pd.to_datetime(history["date"])
    masked = hist_dates.isin(out_days)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=hist_dates[~masked], y=history["units"][~masked], mode="markers+lines", name="sales", line={"color": "#1f4e79"}))
    fig.add_trace(go.Scatter(x=hist_dates[masked], y=history["units"][masked], mode="markers", name="stock-out day (masked)",
                             marker={"color": "#c0392b", "symbol": "x", "size": 9}))
    if len(forecast):
        dates = pd.to_datetime(forecast["date"])
        fig.add_trace(go.Scatter(x=list(dates) + list(dates[::-1]), y=list(forecast["p90"]) + list(forecast["p10"][::-1]), fill="toself",
                                 fillcolor="rgba(230,126,34,0.25)", line={"width": 0}, name="80 % interval", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=dates, y=forecast["mean"], mode="lines", name="forecast", line={"color": "#e67e22", "width": 3}))
    fig.update_layout(title=html.escape(title), height=380, margin={"l": 40, "r": 10, "t": 40, "b": 40}, legend={"orientation": "h"}, yaxis_title="units/day")
    return fig.to_json()


def risk_heatmap(heat: pd.DataFrame) -> str:
    fig = go.Figure(go.Heatmap(z=heat.to_numpy(), x=[html.escape(str(c)) for c in heat.columns], y=[html.escape(str(i)) for i in heat.index], colorscale="OrRd",
                               colorbar={"title": "shelves at risk"}, hovertemplate="%{y} · %{x}: %{z:.1f}<extra></extra>"))
    fig.update_layout(title="Stock-out risk: stores × categories (sum of open alerts' probabilities)", height=max(300, 22 * len(heat) + 120),
                      margin={"l": 60, "r": 10, "t": 40, "b": 60})
    return fig.to_json()
