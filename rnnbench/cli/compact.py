"""``rnnbench compact``: fold the fragments that runs left beside their results files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnbench.cli.common import app, err, fail
from rnnbench.results import store


@app.command()
def compact(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Results files or directories (default: results/).", show_default=False)] = None,
) -> None:
    """Fold the fragments of finished or killed runs into their results files.

    A run writes each point as a small fragment beside its results file and folds them
    in when it ends; a run killed before that leaves them (readers see them anyway).
    Runs still writing are left alone.
    """
    paths = paths or [Path("results")]
    missing = [str(p) for p in paths if not p.exists() and not store.exists(p)]
    if missing:
        raise fail(f"no such file or directory: {', '.join(missing)}")
    try:
        folded = store.compact(paths)
    except store.ResultsFileError as exc:
        raise fail(f"{exc}; nothing folded into it") from None
    except OSError as exc:
        raise fail(f"cannot compact: {exc.strerror or exc}") from None
    for path, rows in folded.items():
        err.print(f"{path}: folded {rows} rows")
    if not folded:
        err.print("nothing to fold")
