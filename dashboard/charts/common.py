"""What every chart shares: per-point statistics, series labels, colours, facets, empty figures.

Charts read only stored columns and get their statistics from :mod:`rnnbench.results.stats`
and :mod:`rnnbench.results.queries`, so the dashboard, the summary table and ``compare``
agree on every number.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from rnnbench.results import queries, stats

CELL_COLOURS = {"gru": "#1f77b4", "lstm": "#ff7f0e", "reluadd": "#2ca02c"}
DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
TEMPLATE = "plotly_white"

# The configuration keys that tell two lines of one cell apart, with their short labels.
SERIES_KEYS = {"seq_len": "T", "hidden_size": "H", "batch_size": "B", "input_size": "I",
               "threads": "threads", "backend_params": "", "task": "task", "seed": "seed"}
# What tells a series apart within one panel of a chart (the panel's backend, B, machine and
# the cell's colour already say the rest).
WITHIN_PANEL = ["backend", "batch_size", "machine", "cell", "task", "seed"]


def colour(name: str) -> str:
    """A stable colour per cell (and any other name), the same in every chart."""
    if name in CELL_COLOURS:
        return CELL_COLOURS[name]
    palette = qualitative.D3[3:]
    return palette[sum(map(ord, name)) % len(palette)]


def band_colour(hex_colour: str, alpha: float = 0.18) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def empty_figure(title: str, message: str) -> go.Figure:
    """A figure that says why it has nothing to show (no data of this kind in the selection)."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 14, "color": "#666"})
    fig.update_layout(title=title, template=TEMPLATE, height=260,
                      xaxis={"visible": False}, yaxis={"visible": False})
    return fig


def is_empty(figure: go.Figure) -> bool:
    """True for :func:`empty_figure`'s figures: no traces, one message."""
    return not figure.data and len(figure.layout.annotations) == 1


def ok_status(rows: pd.DataFrame) -> pd.Series:
    return rows["status"].fillna("ok") == "ok"


def machine_names(rows: pd.DataFrame) -> pd.Series:
    """Each row's machine as people read it: CPU model @ host name (start of the machine key).

    The key itself (:func:`rnnbench.results.queries.machine_key`) is part of a point's
    identity; this is only its label in panel titles, legends, hovers and tables.
    """
    rows = queries.with_machine(rows)
    if rows.empty:
        return pd.Series([], index=rows.index, dtype=object)
    frame = rows.reindex(columns=["cpu_model", "hostname", queries.MACHINE]).astype(object)
    frame = frame.where(frame.notna(), "")
    return pd.Series([
        " @ ".join(v for v in (cpu, host) if v) + f" ({key[:8]})" if cpu or host else key
        for cpu, host, key in frame.itertuples(index=False)], index=rows.index, dtype=object)


def point_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per successfully measured timing point and machine (its newest run), with quartiles.

    Columns: every stored column of the point's rows (its facts: cost model, errors,
    CKKS counters), ``machine`` and its label ``machine_name``, ``n``, ``q1``, ``median``,
    ``q3`` of the time per step in seconds, and, over all runs of the point on that
    machine, ``runs`` and the lowest and highest run median (``run_low``, ``run_high``):
    how much reruns disagree.
    """
    rows = queries.with_machine(rows)
    latest, samples = queries.latest_points(rows)
    latest = latest.assign(machine_name=machine_names(latest))
    columns = {"n": 0, "q1": np.nan, "median": np.nan, "q3": np.nan, "runs": 0, "run_low": np.nan,
               "run_high": np.nan}
    if samples.empty:
        return latest.iloc[0:0].assign(**columns)
    keys = queries.IDENTITY
    quartiles = samples.groupby(keys)["time_per_step_s"].agg(lambda s: stats.quartiles(s.to_numpy()))
    table = latest.set_index(keys)
    table = table[table.index.isin(quartiles.index)].copy()
    table["n"] = samples.groupby(keys).size().reindex(table.index)
    for i, name in enumerate(("q1", "median", "q3")):
        table[name] = quartiles.str[i].reindex(table.index)
    run_medians = queries.timed_samples(rows).groupby([*keys, "run_id"])["time_per_step_s"].median()
    per_point = run_medians.groupby(level=keys)
    table["runs"] = queries.runs_per_point(rows).reindex(table.index).fillna(1).astype(int)
    table["run_low"] = per_point.min().reindex(table.index)
    table["run_high"] = per_point.max().reindex(table.index)
    return table.reset_index()


def format_params(value: object) -> str:
    """``'{"bits": 8}'`` -> ``'bits=8'``; empty parameters -> ``''``."""
    if not isinstance(value, str) or value in ("", "{}"):
        return ""
    try:
        params = json.loads(value)
    except json.JSONDecodeError:
        return value
    return " ".join(f"{k}={v}" for k, v in params.items())


def series_labels(frame: pd.DataFrame, exclude: Iterable[str] = (),
                  panels: pd.Series | None = None) -> pd.Series:
    """A short label per row from the configuration keys that vary in ``frame`` (e.g. ``'H=64 B=1'``).

    Keys that take one value in the whole frame (or, given ``panels``, within every
    panel: a key that only changes from panel to panel is already in the panel titles)
    are left out, so labels stay short and a chart of one configuration has none at all.
    """
    exclude = set(exclude)
    groups = panels if panels is not None else pd.Series(0, index=frame.index)
    parts = []
    for key, short in SERIES_KEYS.items():
        if key in exclude or key not in frame:
            continue
        if frame[key].groupby(groups).nunique(dropna=False).max() <= 1:
            continue
        values = varying_params(frame) if key == "backend_params" else frame[key]
        prefix = f"{short}=" if short else ""
        parts.append(values.map(lambda v, p=prefix: "" if pd.isna(v) or v == "" else f"{p}{v}"))
    if not parts:
        return pd.Series("", index=frame.index, dtype=object)
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.str.cat(part, sep=" ")
    return joined.str.strip().str.replace(r"\s+", " ", regex=True)


def model_name(activations: object) -> str:
    """``"ckks-aware model"`` for a model fine-tuned with other activations, ``""`` for one as trained
    (the ``model_activations`` column): the one wording of every table and chart."""
    return f"{activations}-aware model" if isinstance(activations, str) else ""


def varying_params(frame: pd.DataFrame) -> pd.Series:
    """Each row's backend parameters that vary within its backend (``'packing=batch'``).

    A parameter every point of a backend shares (CKKS's degrees at their defaults, say)
    says nothing about the difference between lines, so it stays out of the legend.
    """
    parsed = frame["backend_params"].map(lambda v: json.loads(v) if isinstance(v, str) and v else {})
    labels = pd.Series("", index=frame.index, dtype=object)
    for _, index in frame.groupby("backend").groups.items():
        params = parsed.loc[index]
        keys = sorted({key for p in params for key in p})
        varying = [k for k in keys if len({json.dumps(p.get(k)) for p in params}) > 1]
        labels.loc[index] = params.map(lambda p, v=varying: " ".join(f"{k}={p[k]}" for k in v if k in p))
    return labels


def series_sort_key(label: str) -> list:
    """Sort ``'H=16'`` before ``'H=128'``: numbers inside labels compare as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(label))]


def panel_titles(frame: pd.DataFrame, keys: Sequence[str] = ("backend", "batch_size")) -> pd.Series:
    """A panel title per row: the backend, then each of ``keys`` that varies, then the machine
    when the frame holds more than one (machines are never drawn in one panel)."""
    frame = queries.with_machine(frame)
    parts = [frame[keys[0]].astype(str)]
    for key in keys[1:]:
        if frame[key].nunique(dropna=False) > 1:
            short = SERIES_KEYS.get(key, key)
            parts.append(frame[key].map(lambda v, s=short: f"{s}={v}" if s else str(v)))
    if frame[queries.MACHINE].nunique() > 1:
        parts.append(machine_names(frame))
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.str.cat(part, sep=" · ")
    return joined


def facets(titles: Sequence[str], columns: int = 3, row_height: int = 300,
           **kwargs) -> tuple[go.Figure, list[tuple[int, int]]]:
    """A grid of panels, one per title (usually per backend), wrapped after ``columns``.

    Returns the figure and each panel's ``(row, col)``. Axes are independent: backends
    differ by orders of magnitude, and each panel is read for its cells' relation.
    """
    titles = list(titles) or [""]
    cols = min(columns, len(titles))
    rows = math.ceil(len(titles) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.08,
                        vertical_spacing=min(0.16, 0.5 / rows), **kwargs)
    fig.update_layout(template=TEMPLATE, height=120 + row_height * rows, margin={"t": 80, "r": 20})
    return fig, [(i // cols + 1, i % cols + 1) for i in range(len(titles))]


def log_ticks(values: Iterable[float]) -> list[float]:
    """Tick values for a log axis over ``values``: 1-2-5 per decade (1-3 or 1 on wide ranges),
    with one tick either side of the data so a single value still gets labelled neighbours."""
    values = [float(v) for v in values if pd.notna(v) and v > 0]
    if not values:
        return []
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    decades = high - low
    steps = (1, 1.5, 2, 3, 5, 7) if decades <= 2 else (1, 2, 5) if decades <= 3 else (1, 3) \
        if decades <= 6 else (1,)
    ticks = [float(f"{m * 10.0 ** e:.6g}") for e in range(low, high + 1) for m in steps]
    below = [t for t in ticks if t <= min(values)]
    above = [t for t in ticks if t >= max(values)]
    lo, hi = (below[-1] if below else ticks[0]), (above[0] if above else ticks[-1])
    return [t for t in ticks if lo <= t <= hi]


def tick_text(value: float, scientific: bool = False) -> str:
    """A full tick label: ``'2,000'``, ``'0.05'``; ``'2e-4'`` in scientific notation."""
    if scientific:
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    if value >= 1:
        return f"{value:,.0f}" if value == round(value) else f"{value:g}"
    return f"{value:.{max(1, -math.floor(math.log10(value)))}f}".rstrip("0")


def log_axis(fig: go.Figure, axis: str, values: Iterable[float], row: int | None = None,
             col: int | None = None, scientific: bool = False, exact: bool = False, **kwargs) -> None:
    """A log axis with every tick labelled in full (never Plotly's bare "2, 5" minor labels).

    ``exact``: tick the measured values themselves (H = 16, 64, 256), for a few discrete x.
    """
    values = [float(v) for v in values if pd.notna(v) and v > 0]
    ticks = sorted(set(values)) if exact and 0 < len(set(values)) <= 10 else log_ticks(values)
    text = [f"{v:g}" if exact else tick_text(v, scientific) for v in ticks]
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    update(type="log", tickvals=ticks, ticktext=text, row=row, col=col, **kwargs)


def legend_below(fig: go.Figure, entries: int, per_row: int = 6) -> go.Figure:
    """Put the legend under the plot in rows, with the figure grown to hold it: never cut off.

    A legend beside the plot scrolls once it is taller than the figure, and a static image
    (the report, a PNG) then loses the entries below the fold.
    """
    rows = max(1, math.ceil(entries / per_row))
    extra = 24 * rows + 30
    height = (fig.layout.height or 450) + extra
    fig.update_layout(
        height=height, margin={"b": 60 + extra},
        legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0,
                "xanchor": "left", "traceorder": "grouped", "groupclick": "togglegroup",
                "font": {"size": 12}})
    return fig


SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "star", "cross", "pentagon",
           "triangle-down", "hexagon"]


def symbol_map(labels: Iterable[str]) -> dict[str, str]:
    """A marker symbol per label, numerically sorted (``H=16`` circle, ``H=64`` square, ...)."""
    ordered = sorted({str(v) for v in labels}, key=series_sort_key)
    return {label: SYMBOLS[i % len(SYMBOLS)] for i, label in enumerate(ordered)}


def add_key_entries(traces: Traces, symbols: dict[str, str], group: str) -> None:
    """Legend-only grey markers that explain each symbol (the cells' colours have their own)."""
    for i, (label, symbol) in enumerate(symbols.items()):
        if label:
            traces.add(go.Scatter(
                x=[None], y=[None], mode="markers", name=label, legendgroup=f"key-{label}",
                legendgrouptitle_text=group if i == 0 else None,
                marker={"symbol": symbol, "color": "#777", "size": 9}, showlegend=True, hoverinfo="skip"))


def add_cell_entries(traces: Traces, cells: Iterable[str]) -> None:
    """One legend entry per cell (its colour), which toggles every trace of that cell."""
    for i, cell in enumerate(sorted(set(cells))):
        traces.add(go.Scatter(
            x=[None], y=[None], mode="lines+markers", name=cell, legendgroup=cell,
            legendgrouptitle_text="cell" if i == 0 else None,
            line={"color": colour(cell)}, marker={"color": colour(cell)}, showlegend=True,
            hoverinfo="skip"))


class Traces:
    """Collects the traces of a figure with panels and adds them in one call.

    One ``add_traces`` call is several times faster than a call per trace, which keeps
    the page responsive; :meth:`first` shows each legend entry once, however many
    panels draw the same series.
    """

    def __init__(self) -> None:
        self.items: list[tuple[go.BaseTraceType, int, int]] = []
        self.shown: set[str] = set()

    def first(self, name: str) -> bool:
        if name in self.shown:
            return False
        self.shown.add(name)
        return True

    def add(self, trace: go.BaseTraceType, row: int = 1, col: int = 1) -> None:
        self.items.append((trace, row, col))

    def into(self, fig: go.Figure) -> go.Figure:
        if self.items:
            traces, rows, cols = zip(*self.items, strict=True)
            fig.add_traces(list(traces), rows=list(rows), cols=list(cols))
        return fig


def provenance(frame: pd.DataFrame) -> np.ndarray:
    """The hover's provenance columns: newest run, runs on this machine and their spread, date."""
    dates = pd.to_datetime(frame["started_at"], utc=True, errors="coerce")
    return np.stack([
        frame["runs"].to_numpy(),
        frame["run_low"].to_numpy() * 1e6, frame["run_high"].to_numpy() * 1e6,
        frame["run_id"].astype(str).to_numpy(), frame["machine_name"].astype(str).to_numpy(),
        dates.dt.strftime("%Y-%m-%d %H:%M UTC").fillna("").to_numpy(),
    ], axis=-1)


def add_median_series(traces: Traces, frame: pd.DataFrame, x: str, name: str, cell: str,
                      symbol: str, row: int, col: int) -> None:
    """A cell's median µs per step vs ``x`` with its inter-quartile range.

    Several x values: a line with the IQR as a band; a single x value: a point with the
    IQR as an error bar (a "line" of one point would draw nothing but a legend entry).
    """
    frame = frame.sort_values(x)  # numpy, not Series: plotly validates arrays much faster
    xs = frame[x].to_numpy()
    lo, mid, hi = (frame[q].to_numpy() * 1e6 for q in ("q1", "median", "q3"))
    hex_colour = colour(cell)
    customdata = np.concatenate([np.stack([lo, hi, frame["n"].to_numpy(),
                                           mid * frame["seq_len"].to_numpy()], axis=-1).astype(object),
                                 provenance(frame)], axis=-1)
    hover = (f"{name}<br>{x}=%{{x}}<br>median %{{y:.3g}} µs/step"
             "<br>IQR %{customdata[0]:.3g}–%{customdata[1]:.3g} µs/step"
             "<br>%{customdata[3]:.3g} µs/sequence<br>n=%{customdata[2]} samples"
             "<br>%{customdata[4]} run(s) on this machine; run medians %{customdata[5]:.3g}–"
             "%{customdata[6]:.3g} µs<br>newest run %{customdata[7]} · %{customdata[8]}"
             "<br>%{customdata[9]}<extra></extra>")
    single = len(xs) == 1
    if not single:
        traces.add(go.Scatter(
            x=np.concatenate([xs, xs[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
            fillcolor=band_colour(hex_colour), mode="lines", line={"width": 0}, hoverinfo="skip",
            legendgroup=cell, showlegend=False, name=f"{name} IQR"), row, col)
    traces.add(go.Scatter(
        x=xs, y=mid, mode="markers" if single else "lines+markers", name=name, legendgroup=cell,
        showlegend=False, line={"color": hex_colour, "width": 2},
        marker={"color": hex_colour, "symbol": symbol, "size": 9},
        error_y={"type": "data", "symmetric": False, "array": hi - mid, "arrayminus": mid - lo,
                 "thickness": 1.2, "width": 4} if single else None,
        customdata=customdata, hovertemplate=hover), row, col)
