"""The ``rnnbench`` command line: one module per command over pure planning functions.

:mod:`.common` holds the Typer app, the one-line errors and the option parsers;
:mod:`.plan` turns ``sweep``'s options into points, settings, output and executor;
the command modules (``sweep``, ``train``, ``tune``, ``compare``, ``merge``, ``compact``,
``dashboard``, ``report``, ``env``) parse, delegate and print. This package imports nothing heavy
itself, so :func:`main` handles a Ctrl-C even while the libraries are still loading.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

COMMANDS = ("sweep", "train", "tune", "compare", "merge", "compact", "dashboard", "report", "env")


def _app() -> Any:
    """The Typer app with every command registered."""
    import importlib

    from rnnbench.cli.common import app

    for name in COMMANDS:
        importlib.import_module(f"rnnbench.cli.{name}")
    return app


def __getattr__(name: str) -> Any:  # ``from rnnbench.cli import app`` (tests, plugins)
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # a ``kill`` outside a sweep ends as cleanly as Ctrl-C


def main() -> None:
    """Entry point: usage errors and interrupts become one line too, never a traceback."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        _main()
    except KeyboardInterrupt:
        sys.stderr.write("rnnbench: interrupted\n")
        sys.exit(130)


def _main() -> None:
    import typer

    from rnnbench.cli.common import err

    command = typer.main.get_command(_app())
    try:
        code = command.main(args=sys.argv[1:], prog_name="rnnbench", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("rnnbench: aborted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: bad option names or values
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message:  # (no message: the help was shown for a bare command)
            err.print(f"rnnbench: error: {message}", markup=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
