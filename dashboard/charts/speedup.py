"""How much faster reluadd is than GRU and LSTM on each backend, against the paper's claims."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.common import (
    DASHES,
    Traces,
    colour,
    discrete_log_ticks,
    empty_figure,
    facets,
    series_labels,
    series_sort_key,
)
from rnnbench.results import queries, stats

CANDIDATE = "reluadd"
BASELINES = ("gru", "lstm")
# Brännvall et al. 2023: reluadd runs about twice as fast as GRU in float and 1.5x when encrypted.
PAPER_CLAIMS = ((2.0, "paper's claim: 2x (float)"), (1.5, "paper's claim: 1.5x (encrypted)"))
_PEER_KEYS = [k for k in queries.POINT_KEYS if k != "cell"]


def speedups(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per (configuration, baseline): baseline time / reluadd time, with a 50% interval.

    Computed from the samples with :func:`rnnbench.results.stats.ratio_with_spread`; above 1
    means reluadd is faster.
    """
    _, samples = queries.latest_points(rows)
    times = samples.groupby(queries.POINT_KEYS, dropna=False)["time_per_step_s"].apply(list)
    lines = []
    for peer, group in times.groupby(level=_PEER_KEYS, dropna=False):
        by_cell = dict(zip(group.index.get_level_values("cell"), group, strict=True))
        if CANDIDATE not in by_cell:
            continue
        for baseline in BASELINES:
            if baseline in by_cell:
                ratio, low, high = stats.ratio_with_spread(by_cell[baseline], by_cell[CANDIDATE])
                lines.append({**dict(zip(_PEER_KEYS, peer, strict=True)), "baseline": baseline,
                              "speedup": ratio, "low": low, "high": high})
    return pd.DataFrame(lines, columns=[*_PEER_KEYS, "baseline", "speedup", "low", "high"])


def speedup_chart(rows: pd.DataFrame) -> go.Figure:
    """Speedup vs H per backend on a log axis, with 1x and the paper's claims as reference lines."""
    title = "Speedup of reluadd over GRU and LSTM (baseline time / reluadd time)"
    table = speedups(rows)
    if table.empty:
        return empty_figure(title, "Needs reluadd and GRU or LSTM timed on the same backend and sizes.")
    backends = sorted(table["backend"].unique())
    fig, positions = facets(backends)
    labels = series_labels(table, exclude=["hidden_size"])
    dash_of = {label: DASHES[i % len(DASHES)]
               for i, label in enumerate(sorted(labels.unique(), key=series_sort_key))}
    traces = Traces()
    for (row, col), backend in zip(positions, backends, strict=True):
        panel = table[table["backend"] == backend]
        for (baseline, label), line in panel.groupby([panel["baseline"], labels[panel.index]]):
            line = line.sort_values("hidden_size")
            name = f"vs {baseline} {label}".strip()
            traces.add(go.Scatter(
                x=line["hidden_size"], y=line["speedup"], mode="lines+markers", name=name,
                legendgroup=name, showlegend=traces.first(name),
                line={"color": colour(baseline), "dash": dash_of[label]},
                error_y={"type": "data", "symmetric": False, "array": line["high"] - line["speedup"],
                         "arrayminus": line["speedup"] - line["low"], "thickness": 1},
                hovertemplate=f"reluadd {name}<br>H=%{{x}}<br>speedup %{{y:.2f}}x<extra></extra>"),
                row, col)
        _reference_lines(traces, panel["hidden_size"], row, col)
        discrete_log_ticks(fig, "x", panel["hidden_size"], row, col)
    traces.into(fig)
    fig.update_xaxes(type="log", title_text="hidden size H")
    fig.update_yaxes(type="log", title_text="speedup (x)")
    fig.update_layout(title=title)
    return fig


def _reference_lines(traces: Traces, hidden_sizes: pd.Series, row: int, col: int) -> None:
    """1x (no speedup) and the paper's claims across the panel, labelled at their right end."""
    span = [hidden_sizes.min() / 1.5, hidden_sizes.max() * 1.5]  # visible even for one H
    for value, label, style in ((1.0, "1x: no speedup", {"color": "black", "width": 1}),
                                *((v, t, {"color": "#d62728", "width": 1, "dash": "dash"})
                                  for v, t in PAPER_CLAIMS)):
        traces.add(go.Scatter(
            x=span, y=[value, value], mode="lines+text", text=["", label], textposition="top left",
            textfont={"size": 10, "color": style["color"]}, line=style, name=label, legendgroup=label,
            showlegend=traces.first(label), hoverinfo="skip"), row, col)
