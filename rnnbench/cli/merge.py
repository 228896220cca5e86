"""``rnnbench merge``: combine results files into one, keeping every run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnbench.cli.common import InputError, app, err, fail
from rnnbench.results import store


@app.command()
def merge(
    inputs: Annotated[list[Path], typer.Argument(help="Results files or directories of them.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The merged results file.")],
    force: Annotated[bool, typer.Option(
        help="Replace an existing output file that is not one of the inputs.")] = False,
) -> None:
    """Combine results files (checking their schema versions) into one, keeping every run."""
    try:
        paths = store.results_files(inputs)
        if not paths:
            raise InputError("no results files among the inputs")
        if out.exists() and not force and out.resolve() not in {p.resolve() for p in paths}:
            raise InputError(f"{out} exists and is not one of the inputs; "
                             "use --force to replace it, or list it as an input to add to it")
        table, metadata = store.merge(paths)
        store.write(out, table, metadata)
    except InputError as exc:
        raise fail(str(exc)) from None
    except store.ResultsFileError as exc:
        raise fail(f"{exc}; nothing written") from None
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror or exc}") from None
    err.print(f"merged {len(paths)} files ({len(metadata['runs'])} runs, {table.num_rows} rows) "
              f"-> {out}")
