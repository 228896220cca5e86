"""How much faster reluadd is than GRU and LSTM on each backend, against the paper's claims."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.common import (
    WITHIN_PANEL,
    Traces,
    add_key_entries,
    colour,
    empty_figure,
    facets,
    legend_below,
    log_axis,
    machine_names,
    panel_titles,
    series_labels,
    series_sort_key,
    symbol_map,
)
from rnnbench.results import queries, stats

CANDIDATE = "reluadd"
BASELINES = ("gru", "lstm")
ENCRYPTED = ("ckks", "tfhe")  # backend names (or prefixes) that compute on ciphertexts
# Brännvall et al. 2023: reluadd about twice as fast as GRU in float (and integer) arithmetic,
# and 1.5x when encrypted; the 2026 version: 3-6x under TFHE (drawn at its lower end). Each
# claim is drawn only on the panels it is about.
FLOAT_CLAIM = (2.0, "paper's claim: 2x (float, integer)")
ENCRYPTED_CLAIM = (1.5, "paper's claim: 1.5x (encrypted)")
TFHE_CLAIM = (3.0, "paper's claim (2026): 3-6x (TFHE)")
_PEER_KEYS = queries.PEER_KEYS


def is_encrypted(backend: str) -> bool:
    return str(backend).startswith(ENCRYPTED)


def paper_claim(backend: str) -> tuple[float, str]:
    """The paper's speedup claim that applies to ``backend``."""
    if str(backend).startswith("tfhe"):
        return TFHE_CLAIM
    return ENCRYPTED_CLAIM if is_encrypted(backend) else FLOAT_CLAIM


def speedups(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per (configuration, machine, baseline): baseline time / reluadd time, 50% interval.

    Computed from the samples with :func:`rnnbench.results.stats.ratio_with_spread`; above 1
    means reluadd is faster. Both times come from the same machine, never from two.
    """
    _, samples = queries.latest_points(rows)
    columns = [*_PEER_KEYS, "machine_name", "baseline", "speedup", "low", "high"]
    if samples.empty:
        return pd.DataFrame(columns=columns)
    times = samples.groupby([*queries.POINT_KEYS, queries.MACHINE], dropna=False)["time_per_step_s"]
    times = times.apply(list)
    lines = []
    names = dict(zip(samples[queries.MACHINE], machine_names(samples), strict=True))
    for peer, group in times.groupby(level=_PEER_KEYS, dropna=False):
        by_cell = dict(zip(group.index.get_level_values("cell"), group, strict=True))
        if CANDIDATE not in by_cell:
            continue
        for baseline in BASELINES:
            if baseline in by_cell:
                ratio, low, high = stats.ratio_with_spread(by_cell[baseline], by_cell[CANDIDATE])
                peer_keys = dict(zip(_PEER_KEYS, peer, strict=True))
                lines.append({**peer_keys, "machine_name": names[peer_keys[queries.MACHINE]],
                              "baseline": baseline, "speedup": ratio, "low": low, "high": high})
    return pd.DataFrame(lines, columns=columns)


def speedup_chart(rows: pd.DataFrame) -> go.Figure:
    """Speedup vs H per backend (and B, machine) on a log axis, with 1x and the claim that applies."""
    title = "Speedup of reluadd over GRU and LSTM (baseline time / reluadd time)"
    table = speedups(rows)
    if table.empty:
        return empty_figure(title, "Needs reluadd and GRU or LSTM timed on the same backend, sizes "
                                   "and machine.")
    titles = panel_titles(table)
    labels = series_labels(table, exclude=["hidden_size", *WITHIN_PANEL], panels=titles)
    symbols = symbol_map(labels)
    order = sorted(titles.unique(), key=series_sort_key)
    fig, positions = facets(order)
    traces = Traces()
    for baseline in sorted(table["baseline"].unique()):
        name = f"vs {baseline}"
        traces.add(go.Scatter(x=[None], y=[None], mode="lines+markers", name=name, legendgroup=name,
                              legendgrouptitle_text="reluadd" if baseline == BASELINES[0] else None,
                              line={"color": colour(baseline)}, hoverinfo="skip"))
    add_key_entries(traces, symbols, "marker")
    for (row, col), panel_title in zip(positions, order, strict=True):
        panel = table[titles == panel_title]
        for (baseline, label), line in panel.groupby([panel["baseline"], labels[panel.index]]):
            line = line.sort_values("hidden_size")
            name = f"vs {baseline} {label}".strip()
            single = len(line) == 1
            traces.add(go.Scatter(
                x=line["hidden_size"], y=line["speedup"], mode="markers" if single else "lines+markers",
                name=name, legendgroup=f"vs {baseline}", showlegend=False,
                line={"color": colour(baseline)},
                marker={"color": colour(baseline), "symbol": symbols[label], "size": 9},
                error_y={"type": "data", "symmetric": False, "array": line["high"] - line["speedup"],
                         "arrayminus": line["speedup"] - line["low"], "thickness": 1},
                customdata=line[["low", "high", "machine_name"]].to_numpy(),
                hovertemplate=(f"reluadd {name}<br>H=%{{x}}<br>speedup %{{y:.2f}}x "
                               "(50%: %{customdata[0]:.2f}–%{customdata[1]:.2f})<br>%{customdata[2]}"
                               "<extra></extra>")), row, col)
        backend = panel["backend"].iloc[0]
        _reference_lines(traces, panel["hidden_size"], backend, row, col)
        log_axis(fig, "x", panel["hidden_size"], row, col, exact=True)
        claim, _ = paper_claim(backend)
        log_axis(fig, "y", [*panel["low"], *panel["high"], 1.0, claim], row, col)
    traces.into(fig)
    fig.update_xaxes(title_text="hidden size H")
    fig.update_yaxes(type="log", title_text="speedup (x)")
    fig.update_layout(title=title)
    return legend_below(fig, table["baseline"].nunique() + len(symbols) + 3)


def _reference_lines(traces: Traces, hidden_sizes: pd.Series, backend: str, row: int, col: int) -> None:
    """1x (no speedup) and the paper's claim for this backend, labelled at their right end."""
    span = [hidden_sizes.min() / 1.5, hidden_sizes.max() * 1.5]  # visible even for one H
    value, label = paper_claim(backend)
    for level, text, style in ((1.0, "1x: no speedup", {"color": "black", "width": 1}),
                               (value, label, {"color": "#d62728", "width": 1, "dash": "dash"})):
        traces.add(go.Scatter(
            x=span, y=[level, level], mode="lines+text", text=["", text.replace("paper's claim: ", "")],
            textposition="top left", textfont={"size": 10, "color": style["color"]}, line=style,
            name=text, legendgroup=text, showlegend=traces.first(text), hoverinfo="skip"), row, col)
