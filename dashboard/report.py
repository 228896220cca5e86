"""``rnnbench report``: every dashboard chart in one self-contained HTML file.

plotly.js is inlined once, before the first chart, so the file opens offline and can
be attached to a report or an e-mail.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from dashboard.charts import CHARTS
from dashboard.data import accuracy_summary, runs_table, summary_table, summary_view
from rnnbench.files import write_atomic

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1500px; color: #222; }
h1 { margin-bottom: 0.2rem; } section { margin: 2.5rem 0; } p.about { color: #555; margin: 0.2rem 0; }
table.runs { border-collapse: collapse; font-size: 0.9rem; }
table.runs td, table.runs th { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
.problems { color: #a00; }
div.scroll { max-height: 520px; overflow: auto; border: 1px solid #eee; }
"""


def build_report(rows: pd.DataFrame, runs: Sequence[dict], problems: Sequence[str],
                 on_chart: Callable[[str], None] | None = None) -> str:
    """The report as one HTML document: runs, unreadable files, the summary tables, then every chart.

    ``on_chart`` is called with each chart's title after it is built (progress).
    """
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        "<title>rnnbench report</title>", f"<style>{_STYLE}</style></head><body>",
        "<h1>rnnbench report</h1>",
        f"<p class='about'>Generated {generated} from {len(rows)} rows.</p>",
        "<h2>Runs</h2>", runs_table(rows, runs).to_html(index=False, classes="runs", border=0),
    ]
    timing, accuracy = summary_table(rows), accuracy_summary(rows)
    parts += ["<h2>Summary</h2>", "<p class='about'>Median µs per step of each point's newest run on its "
              "machine, IQR, and the ratio to GRU on the same backend, configuration and machine.</p>",
              "<div class='scroll'>", summary_view(timing).to_html(
                  index=False, classes="runs", border=0, na_rep="–", float_format="{:.4g}".format), "</div>"]
    if not accuracy.empty:
        parts += ["<h3>Accuracy</h3>", "<div class='scroll'>", accuracy.drop(columns=["train_step"]).to_html(
            index=False, classes="runs", border=0, float_format="{:.4g}".format, na_rep="–"), "</div>"]
    if problems:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
        parts.append(f"<h2>Files not loaded</h2><ul class='problems'>{items}</ul>")
    for i, chart in enumerate(CHARTS):
        figure = chart.build(rows).to_html(full_html=False, include_plotlyjs=i == 0,
                                           div_id=f"chart-{chart.key}", config={"displaylogo": False})
        parts.append(f"<section id='section-{chart.key}'><h2>{html.escape(chart.title)}</h2>"
                     f"<p class='about'>{html.escape(chart.about)}</p>{figure}</section>")
        if on_chart:
            on_chart(chart.title)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, document: str) -> None:
    """Write ``document`` to ``path`` atomically (a temporary file renamed over it)."""
    write_atomic(path, lambda temporary: temporary.write_text(document, encoding="utf-8"))
