"""From backtested candidates to one forecast per series: combine the few best instead of picking one.

Picking the single model with the lowest error over three backtest windows is mostly picking noise: the
winner changes from one window to the next. The M4 competition's lesson holds on retail series too:
an equal-weight mean of the few best candidates is as good as the best one on average and far less
fragile. `decide` is the one place that turns a series' backtest into its forecast, so the engine and
the benchmarks of variants use the same rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from forecasting.distribution import level_evidence, level_share, nb_dispersion
from forecasting.metrics import scaled_rmse

COMBINATION_PREFIX = "mean:"
STRATEGY_PATTERN = re.compile(r"^(?:(select)|(top|class_top|shrink_top)(\d+)(w?)(?:_p(\d+(?:\.\d+)?))?)$")
DEFAULT_PRIOR_WINDOWS = 3.0


@dataclass(frozen=True)
class Strategy:
    """How a series' forecast is made from its backtested candidates.

    kind "own": rank by the series' own backtest; "class": by the pooled backtest of the series'
    demand class in its chunk; "shrink": the series' own score shrunk toward the class's pooled one,
    the pool counting as `prior_windows` windows of evidence. `members` best are averaged, with equal
    weights or (`weighted`) inversely to their mean squared scaled error."""

    kind: str = "own"
    members: int = 1
    weighted: bool = False
    prior_windows: float = DEFAULT_PRIOR_WINDOWS


def parse_strategy(text: str) -> Strategy:
    """ "select" (the best single candidate), "topK" / "topKw" (mean of the K best), "class_topK",
    "shrink_topK[_pN]" (see Strategy)."""
    match = STRATEGY_PATTERN.match(text)
    if not match:
        raise ValueError(
            f"unknown forecast combination {text!r}: use select, topK, topKw, class_topK or shrink_topK[_pN] (e.g. "
            "shrink_top3)"
        )
    if match.group(1):
        return Strategy()
    kind = {"top": "own", "class_top": "class", "shrink_top": "shrink"}[match.group(2)]
    prior = float(match.group(5)) if match.group(5) else DEFAULT_PRIOR_WINDOWS
    return Strategy(kind, max(1, int(match.group(3))), bool(match.group(4)), prior)


@dataclass
class WindowResult:
    """One backtest window of one series: what happened, and what every candidate had forecast."""

    actual: np.ndarray
    censored: np.ndarray
    scale: float  # M5 RMSSE denominator from the history before the window
    preds: dict[str, np.ndarray]


def mean_rmsse(windows: list[WindowResult], model: str) -> float:
    """Mean over windows of RMSSE, censored days not scored (their sales are not demand)."""
    values = []
    for r in windows:
        ok = ~r.censored
        if model in r.preds and ok.any():
            values.append(scaled_rmse(r.actual[ok], r.preds[model][ok], r.scale))
    return float(np.mean(values)) if values else float("nan")


def ranking(windows: list[WindowResult]) -> list[tuple[float, str]]:
    """(mean backtest RMSSE, model) of every candidate scored in the windows, best first (ties by name)."""
    models = sorted(set().union(*(r.preds for r in windows))) if windows else []
    scored = [(mean_rmsse(windows, m), m) for m in models]
    return sorted(x for x in scored if not np.isnan(x[0]))


def choose_model(windows: list[WindowResult]) -> tuple[str | None, float]:
    """The candidate with the lowest mean backtest RMSSE (ties: first by name)."""
    ranked = ranking(windows)
    return (ranked[0][1], ranked[0][0]) if ranked else (None, float("nan"))


def pooled_scores(windows: dict[str, list[WindowResult]], classes: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per demand class, each candidate's mean backtest RMSSE over the class's series: what the chunk's
    series together say about a model, which one series' three windows can't."""
    per_class: dict[str, dict[str, list[float]]] = {}
    for uid, w in windows.items():
        for value, model in ranking(w):
            per_class.setdefault(classes[uid], {}).setdefault(model, []).append(value)
    return {c: {m: float(np.mean(v)) for m, v in d.items()} for c, d in per_class.items()}


def ranked_for(
    windows: list[WindowResult], strategy: Strategy, pooled: dict[str, float] | None
) -> list[tuple[float, str]]:
    """(score, model) best first under the strategy; `pooled` is the series' class's pooled scores."""
    own = ranking(windows)
    if strategy.kind == "own" or not pooled:
        return own
    if strategy.kind == "class":
        scored = {m for _, m in own}
        return sorted((v, m) for m, v in pooled.items() if m in scored)
    n, prior = len(windows), strategy.prior_windows
    return sorted(((n * v + prior * pooled[m]) / (n + prior), m) for v, m in own if m in pooled)


def decision_members(
    windows: list[WindowResult], strategy: str | Strategy, pooled: dict[str, float] | None = None
) -> list[str]:
    """The candidates the series' forecast is made of under `strategy`, best first."""
    strategy = parse_strategy(strategy) if isinstance(strategy, str) else strategy
    return [m for _, m in ranked_for(windows, strategy, pooled)[: strategy.members]]


def member_weights(windows: list[WindowResult], members: list[str], weighted: bool) -> np.ndarray:
    if not weighted:
        return np.full(len(members), 1.0 / len(members))
    inverse = np.array([1.0 / max(mean_rmsse(windows, m), 1e-6) ** 2 for m in members])
    weights: np.ndarray = inverse / inverse.sum()
    return weights


def combination_name(members: list[str]) -> str:
    return members[0] if len(members) == 1 else COMBINATION_PREFIX + ",".join(members)


def with_combination(
    windows: list[WindowResult], name: str, members: list[str], weights: np.ndarray
) -> list[WindowResult]:
    """The windows with the combination's forecast added (windows lacking a member are left out)."""
    out = []
    for r in windows:
        if all(m in r.preds for m in members):
            combined = sum(w * r.preds[m] for w, m in zip(weights, members, strict=True))
            out.append(WindowResult(r.actual, r.censored, r.scale, {**r.preds, name: combined}))
    return out


def backtest_dispersion(windows: list[WindowResult], model: str) -> float:
    """Negative-binomial dispersion of `model`'s own backtest errors (censored days left out)."""
    scored = [r for r in windows if model in r.preds]
    if not scored:
        return 0.0
    actual = np.concatenate([np.where(r.censored, np.nan, r.actual) for r in scored])
    forecast = np.concatenate([r.preds[model] for r in scored])
    return nb_dispersion(actual, forecast)


class Decision(NamedTuple):
    """A series' forecast and what its backtest says of it."""

    model: str | None  # None when nothing could be backtested (too short a history)
    backtest_rmsse: float
    mean: np.ndarray | None
    dispersion: float  # NB dispersion of daily demand around the mean
    level: np.ndarray = np.empty((0, 3))  # its backtest's 7-day sums (distribution.level_evidence), pooled per class


NO_DECISION = Decision(None, float("nan"), None, 0.0)


def decide(
    windows: list[WindowResult],
    final: dict[str, np.ndarray],
    strategy: str | Strategy,
    pooled: dict[str, float] | None = None,
) -> Decision:
    """One series' decision. The dispersion, RMSSE and level evidence are the decision's own: the
    combination's errors in the same windows."""
    strategy = parse_strategy(strategy) if isinstance(strategy, str) else strategy
    members = [m for m in decision_members(windows, strategy, pooled) if m in final]
    if not members:
        return NO_DECISION
    return mean_of(windows, final, members, member_weights(windows, members, strategy.weighted))


def mean_of(
    windows: list[WindowResult], final: dict[str, np.ndarray], members: list[str], weights: np.ndarray
) -> Decision:
    """The weighted mean of `members`, scored on its own errors in the windows."""
    name = combination_name(members)
    scored = with_combination(windows, name, members, weights) if len(members) > 1 else windows
    mean = sum(w * final[m] for w, m in zip(weights, members, strict=True))
    dispersion = backtest_dispersion(scored, name)
    return Decision(name, mean_rmsse(scored, name), np.asarray(mean, float), dispersion, backtest_level(scored, name))


def backtest_level(windows: list[WindowResult], model: str) -> np.ndarray:
    """`model`'s 7-day sums over its backtest windows (distribution.level_evidence)."""
    parts = [level_evidence(r.actual, r.preds[model], r.censored) for r in windows if model in r.preds]
    return np.concatenate(parts) if parts else np.empty((0, 3))


def level_shares(decisions: dict[str, Decision], classes: dict[str, str]) -> dict[str, float]:
    """Per demand class (and "" for all series), the share of the daily dispersion that is level error
    shared by every day (distribution.level_share), calibrated on the backtest sums of the class's
    series together, since one series' few weeks can't say it. A series' level dispersion is its
    class's share x its own dispersion."""
    pooled: dict[str, list[tuple[np.ndarray, float]]] = {}
    for uid, d in decisions.items():
        if d.model is None or not len(d.level):
            continue
        for key in {classes.get(uid, ""), ""}:
            pooled.setdefault(key, []).append((d.level, d.dispersion))
    return {
        key: level_share(
            np.concatenate([e for e, _ in parts]), np.concatenate([np.full(len(e), disp) for e, disp in parts])
        )
        for key, parts in pooled.items()
    }
