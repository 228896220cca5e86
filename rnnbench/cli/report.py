"""``rnnbench report``: every dashboard chart in one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from rnnbench.cli.common import app, err, fail, warn
from rnnbench.results import store


@app.command()
def report(
    results: Annotated[list[Path] | None, typer.Argument(
        help="Results files or directories (default: results/).", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html"),
) -> None:
    """Write every dashboard chart into one self-contained HTML file (opens offline)."""
    from dashboard.data import file_signature
    from dashboard.report import build_report, write_report

    results = results or [Path("results")]  # like `rnnbench dashboard`
    files, problems = file_signature(results)
    missing = [p for p in problems if p.endswith("no such file or directory")]
    if missing:
        raise fail(missing[0])
    rows, runs, unreadable = store.read_many(path for path, _, _ in files)
    problems += unreadable
    if rows.empty:
        raise fail(f"no readable results in {', '.join(map(str, results))}"
                   + (f" ({problems[0]})" if problems else ""))
    for problem in problems:
        warn(f"skipped {problem}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=err, transient=True) as progress:
        from dashboard.charts import CHARTS

        task = progress.add_task("report", total=len(CHARTS))
        document = build_report(rows, runs, problems,
                                on_chart=lambda title: progress.update(task, advance=1, description=title))
    try:
        write_report(out, document)
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror or exc}") from None
    err.print(f"wrote {out} ({len(rows)} rows, {len(CHARTS)} charts)")
    print(out)
