"""``rnnbench compare``: two runs point by point; exit 1 on a regression, 2 if nothing compared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rnnbench.cli.common import InputError, app, check_format, err, fail
from rnnbench.results import store


@app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="Results file of the reference run.")],
    candidate: Annotated[Path, typer.Argument(help="Results file of the run to judge.")],
    min_effect: Annotated[float, typer.Option(
        help="Smallest relative change that counts (0.05: 5% slower or faster).")] = 0.05,
    alpha: Annotated[float, typer.Option(
        help="Significance level of the Mann-Whitney U test.")] = 0.01,
    output_format: Annotated[str, typer.Option("--format", help="md, csv or json.")] = "md",
) -> None:
    """Compare two runs point by point; exit 1 if any point is significantly worse or failed.

    Exit 2 when no point could be compared (no timing rows, or no point in both runs).
    """
    from rnnbench.results import compare as comparison
    from rnnbench.results import queries

    try:
        check_format(output_format)
        if not min_effect >= 0:
            raise InputError(f"--min-effect must be zero or positive, got {min_effect}")
        if not 0 < alpha < 1:
            raise InputError(f"--alpha must be between 0 and 1, got {alpha}")
        base, _ = store.read(baseline)
        cand, _ = store.read(candidate)
        for path, rows in ((baseline, base), (candidate, cand)):
            if queries.of_kind(rows, "timing").empty:
                raise InputError(f"nothing to compare: {path} has no timing rows "
                                 "(accuracy results and training curves are not compared)")
    except InputError as exc:
        raise fail(str(exc)) from None
    except store.ResultsFileError as exc:
        raise fail(str(exc)) from None

    try:
        table = comparison.compare(base, cand, alpha=alpha, min_effect=min_effect)
    except comparison.MixedMachines as exc:
        raise fail(str(exc)) from None
    summary = comparison.summarize(table, alpha)
    note = comparison.environment_note(base, cand)
    if note:
        err.print(f"note: {note}", markup=False)
    if summary["underpowered"]:
        err.print(f"note: {summary['underpowered']} points have too few samples to reach "
                  f"p < {alpha:g} (raise --repeats)", markup=False)
    if output_format == "md":
        print(comparison.format_markdown(table, summary))
    elif output_format == "csv":
        print(table.to_csv(index=False), end="")
        err.print(comparison.summary_line(summary), markup=False)
    else:
        print(json.dumps({"summary": summary, "points": json.loads(table.to_json(orient="records"))}))
    if summary["regressed"]:
        raise typer.Exit(1)
    if not summary["compared"]:
        raise fail("nothing compared: no point has timed samples in both runs")
