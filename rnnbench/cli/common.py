"""What every command shares: the Typer app, one-line errors, option parsers, output checks.

Errors in the user's input end with one line on stderr and exit status 2; progress goes
to stderr, so stdout carries only machine-readable output. The parsers raise
:class:`InputError` and know nothing of Typer, so planning functions and tests use them too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from rnnbench import backends

DEFAULT_MODELS = Path("models")
DEFAULT_HIDDEN = 64  # hidden size of the task models unless --hidden says otherwise
FORMATS = ("md", "csv", "json")
# Every integer lands in an int64 Parquet column (and numpy/torch seeds), so larger ones are
# refused up front instead of failing after the measurement.
INT64_MAX = 2**63 - 1

app = typer.Typer(
    help="Cost and accuracy of GRU, LSTM and the ReLU-and-addition gated RNN cell.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)


class InputError(Exception):
    """Bad user input: reported as one line, exit status 2."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as the one error line; raise the returned exit."""
    err.print(f"rnnbench: error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def warn(message: str) -> None:
    err.print(f"rnnbench: warning: {message}", markup=False, soft_wrap=True)


def check_int(value: int, option: str, minimum: int = 1) -> int:
    """``value`` if ``minimum <= value <= INT64_MAX``; else :class:`InputError`."""
    if value < minimum:
        raise InputError(f"{option} must be at least {minimum}, got {value}")
    if value > INT64_MAX:
        raise InputError(f"{option}: {value} is too large (at most {INT64_MAX})")
    return value


def check_positive_float(value: float, option: str) -> float:
    if not value > 0:
        raise InputError(f"{option} must be positive, got {value}")
    if not math.isfinite(value):
        raise InputError(f"{option} must be finite, got {value}")
    return value


def check_format(value: str, option: str = "--format") -> str:
    if value not in FORMATS:
        raise InputError(f"{option} must be {', '.join(FORMATS[:-1])} or {FORMATS[-1]}, got {value!r}")
    return value


def parse_names(value: str, valid: list[str], what: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``, each checked against ``valid``, duplicates removed."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise InputError(f"--{what} is empty; valid {what}: {', '.join(valid)}")
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise InputError(f"unknown {what} {', '.join(map(repr, unknown))}; "
                         f"valid {what}: {', '.join(valid)}")
    return list(dict.fromkeys(names))


def parse_list(value: str | int, option: str, convert: Callable[[str], Any], noun: str, example: str,
               check: Callable[[Any, str], Any]) -> list:
    """``"a,b"`` -> each item ``convert``-ed and ``check``-ed (``check(value, item)`` returns the
    value or raises :class:`InputError`), duplicates removed: one message for every option's list."""
    items = [v.strip() for v in str(value).split(",") if v.strip()]
    if not items:
        raise InputError(f"{option} is empty; give {noun}s like {example}")
    values = []
    for item in items:
        try:
            converted = convert(item)
        except ValueError:
            article = "an" if noun[0] in "aeiou" else "a"
            raise InputError(f"{option}: {item!r} is not {article} {noun}") from None
        values.append(check(converted, item))
    return list(dict.fromkeys(values))


def parse_ints(value: str | int, option: str, minimum: int = 1) -> list[int]:
    """``"10,100"`` -> ``[10, 100]``; each an integer in ``[minimum, INT64_MAX]``, duplicates removed."""

    def check(number: int, item: str) -> int:
        if number < minimum:
            what = {0: "non-negative", 1: "positive"}.get(minimum, f"at least {minimum}")
            raise InputError(f"{option}: {number} is not {what}")
        return check_int(number, option, minimum)  # the int64 bound

    return parse_list(value, option, int, "integer", "10,100", check)


def parse_positive_ints(value: str | int, option: str) -> list[int]:
    """``"10,100"`` -> ``[10, 100]``; every value a positive integer."""
    return parse_ints(value, option, minimum=1)


def parse_seeds(value: str | int, option: str = "--seed") -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; every value a non-negative integer."""
    return parse_ints(value, option, minimum=0)


def scalar(text: str) -> Any:
    """A command-line value as int, float or string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def param_values(items: list[str], selected: list[str], source: str = "--param"
                 ) -> dict[str, dict[str, list[Any]]]:
    """``["ckks.packing=batch,vector"]`` -> ``{"ckks": {"packing": ["batch", "vector"]}}``.

    Duplicate values are dropped; an empty list, a backend not in ``selected`` and a key
    given twice are refused (list every value in one ``-p``: ``ckks.packing=batch,vector``).
    """
    values: dict[str, dict[str, list[Any]]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        backend, dot, name = key.partition(".")
        if not (sep and dot and name):
            raise InputError(f"{source} {item!r}: expected BACKEND.KEY=VALUE[,VALUE...]")
        parsed = list(dict.fromkeys(scalar(v.strip()) for v in raw.split(",") if v.strip()))
        if not parsed:
            raise InputError(f"{source} {item!r}: no values given")
        if backend not in selected:
            raise InputError(f"{source} {item!r}: backend {backend!r} is not in --backends")
        if name in values.setdefault(backend, {}):
            raise InputError(f"{source} {key} is given twice; list every value in one: "
                             f"{key}=V1,V2")
        values[backend][name] = parsed
    return values


def backend_param_variants(
    backend_list: list[str], given: list[str], preset_given: list[str] = ()
) -> dict[str, list[dict]]:
    """Each selected backend's validated parameter variants from ``--param`` values.

    ``preset_given`` are a preset's own ``params``: those for backends not selected are
    dropped, and a key the user gives replaces the preset's.
    """
    preset_items = [p for p in preset_given if p.partition(".")[0] in backend_list]
    from_preset = param_values(preset_items, backend_list, source="the preset's param")
    from_user = param_values(given, backend_list)
    values = {name: {**from_preset.get(name, {}), **from_user.get(name, {})} for name in backend_list}
    try:
        return {name: backends.get(name).param_variants(values[name]) for name in backend_list}
    except backends.InvalidParams as exc:
        raise InputError(str(exc)) from None


def check_points(points: list) -> None:
    """Refuse, before anything runs, a backend setting that cannot work for a point's cell."""
    seen = set()
    for point in points:
        key = (point.backend, point.cell, point.params, point.seq_len)
        if key in seen:
            continue
        seen.add(key)
        try:
            backends.get(point.backend).check_cell(point.cell, point.backend_params, point.seq_len)
        except backends.InvalidParams as exc:
            raise InputError(str(exc)) from None


def results_path(out: Path, resume: bool, run_id: str) -> Path:
    """The results file for ``--out``, checked writable and, if it exists, readable back.

    Checked before any work, so a bad ``--out`` or a corrupt existing file (left untouched)
    ends the command at once.
    """
    from rnnbench.results import store

    path = store.resolve_output(out, run_id, resume)
    try:
        store.check_output(path)
    except OSError as exc:
        raise InputError(f"cannot write results to {out}: {exc.strerror or exc}") from None
    return path


def write_failure(path: Path, exc: OSError, hint: str = "") -> typer.Exit:
    """A results write that failed mid-command: one line saying what is kept (exit status 1)."""
    return fail(f"cannot write results to {path}: {exc.strerror or exc}; "
                f"what was written before is kept there{hint}", code=1)


def print_table(table: Any, fmt: str, markdown: Callable[[Any], str]) -> None:
    """A result table on stdout as Markdown, CSV or JSON records."""
    if fmt == "md":
        print(markdown(table))
    elif fmt == "csv":
        print(table.to_csv(index=False), end="")
    else:
        print(table.to_json(orient="records"))
